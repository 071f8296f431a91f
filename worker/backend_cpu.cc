// MakeBackend for builds without the CUDA engine: the CPU reference backend only.
#include "absl/strings/str_cat.h"
#include "engine/cpu/cpu_backend.h"
#include "worker/task_runner.h"

namespace turbovid::worker {

absl::StatusOr<std::unique_ptr<engine::Backend>> MakeBackend(const WorkerConfig& config) {
  if (config.backend == "cpu") return engine::MakeCpuBackend();
  return absl::UnimplementedError(
      absl::StrCat("backend: '", config.backend, "' is not built into this turbovid-worker"));
}

absl::Status FillDeviceInfo(WorkerConfig* config) {
  if (config->backend == "cpu") return absl::OkStatus();
  return absl::UnimplementedError(
      absl::StrCat("backend: '", config->backend, "' is not built into this turbovid-worker"));
}

}  // namespace turbovid::worker
