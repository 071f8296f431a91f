// turbovid-engine make-tiny-checkpoint --kind t2v|i2v-moe --out DIR [--seed N] [--heads N]
#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "engine/testing/tiny_checkpoint.h"
#include "engine/tools/commands.h"

namespace turbovid::engine::tools {

int MakeTinyCheckpointCommand(const std::vector<std::string>& args) {
  std::string kind, out;
  uint64_t seed = 1;
  int heads = 1;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--kind") {
      kind = args[i + 1];
    } else if (args[i] == "--out") {
      out = args[i + 1];
    } else if (args[i] == "--seed") {
      if (!absl::SimpleAtoi(args[i + 1], &seed)) {
        std::fprintf(stderr, "make-tiny-checkpoint: --seed '%s' is not a number\n", args[i + 1].c_str());
        return 2;
      }
    } else if (args[i] == "--heads") {
      if (!absl::SimpleAtoi(args[i + 1], &heads)) {
        std::fprintf(stderr, "make-tiny-checkpoint: --heads '%s' is not a number\n", args[i + 1].c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "make-tiny-checkpoint: unknown flag %s\n", args[i].c_str());
      return 2;
    }
  }
  if (kind.empty() || out.empty() || args.size() % 2 != 0) {
    std::fprintf(stderr, "usage: turbovid-engine make-tiny-checkpoint --kind t2v|i2v-moe --out DIR [--seed N] [--heads N]\n");
    return 2;
  }
  absl::Status s = MakeTinyCheckpoint(kind, out, seed, heads);
  if (!s.ok()) {
    std::fprintf(stderr, "make-tiny-checkpoint: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace turbovid::engine::tools
