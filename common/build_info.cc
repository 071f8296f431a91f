// GetBuildInfo and turbovid_build_info: the values build_info.cmake writes into
// build_info_values.h at build time.
#include "common/build_info.h"

#include "common/build_info_values.h"

namespace turbovid::common::metrics {

const BuildInfo& GetBuildInfo() {
  static const BuildInfo info{TV_BUILD_VERSION, TV_BUILD_GIT_COMMIT, TV_BUILD_TYPE,
                              TV_BUILD_CUDA_ON != 0};
  return info;
}

void AddBuildInfo(Registry& registry) {
  const BuildInfo& info = GetBuildInfo();
  registry
      .AddGauge("turbovid_build_info",
                "1, labelled with the version, git commit, build type and CUDA (on/off) of the "
                "binary.",
                {"version", "git_commit", "build_type", "cuda"})
      .WithLabels({info.version, info.git_commit, info.build_type, info.cuda ? "on" : "off"})
      .Set(1);
}

}  // namespace turbovid::common::metrics
