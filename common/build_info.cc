// GetBuildInfo: the values build_info.cmake writes into build_info_values.h at build time.
#include "common/build_info_values.h"
#include "common/process_metrics.h"

namespace turbovid::common::metrics {

const BuildInfo& GetBuildInfo() {
  static const BuildInfo info{TV_BUILD_VERSION, TV_BUILD_GIT_COMMIT, TV_BUILD_TYPE,
                              TV_BUILD_CUDA_ON != 0};
  return info;
}

}  // namespace turbovid::common::metrics
