// turbovid-engine subcommand (being written).
#include <cstdio>

#include "engine/tools/commands.h"

namespace turbovid::engine::tools {
int MakeTinyCheckpointCommand(const std::vector<std::string>&) {
  std::fprintf(stderr, "not built yet\n");
  return 2;
}
}  // namespace turbovid::engine::tools
