// TV_CHECK failure handler.
#include <cstdio>
#include <cstdlib>

#include "common/status_macros.h"

namespace turbovid::common {
void CheckFailed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "%s:%d: TV_CHECK failed: %s\n", file, line, cond);
  std::abort();
}
}  // namespace turbovid::common
