// turbovid_build_info: what the binary was built from. The values come from a header that
// common/build_info.cmake writes at build time, in their own library (tv_build_info) that only
// the service binaries link, so a new commit relinks those alone.
#pragma once

#include <string>

#include "common/metrics.h"

namespace turbovid::common::metrics {

struct BuildInfo {
  std::string version;     // the CMake project version
  std::string git_commit;  // short commit of the source tree, "unknown" outside a git checkout
  std::string build_type;  // CMAKE_BUILD_TYPE
  bool cuda = false;       // the CUDA backend was compiled in
};
const BuildInfo& GetBuildInfo();

// turbovid_build_info{version,git_commit,build_type,cuda} 1. Once per registry.
void AddBuildInfo(Registry& registry);

}  // namespace turbovid::common::metrics
