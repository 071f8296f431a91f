// Key normalisation: TurboDiffusion training / wrapper names → official Wan names.
#include <string>

#include "engine/io/weights.h"

namespace turbovid::engine::io {

std::string NormalizeKey(const std::string& key) {
  std::string k = key;
  if (k.rfind("net.", 0) == 0) k = k.substr(4);
  const std::string infix = "_checkpoint_wrapped_module.";
  for (size_t pos; (pos = k.find(infix)) != std::string::npos;) k.erase(pos, infix.size());
  return k;
}

}  // namespace turbovid::engine::io
