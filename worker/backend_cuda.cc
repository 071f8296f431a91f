// MakeBackend for builds with the CUDA engine: `cpu` or `cuda` on the configured device.
#include "absl/strings/str_cat.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "worker/task_runner.h"

namespace turbovid::worker {

absl::StatusOr<std::unique_ptr<engine::Backend>> MakeBackend(const WorkerConfig& config) {
  if (config.backend == "cpu") return engine::MakeCpuBackend();
  if (config.backend == "cuda") return engine::MakeCudaBackend(config.device);
  return absl::InvalidArgumentError(absl::StrCat("backend: '", config.backend, "' is not cpu or cuda"));
}

absl::Status FillDeviceInfo(WorkerConfig* config) {
  if (config->backend != "cuda") return absl::OkStatus();
  auto info = engine::QueryCudaDevice(config->device);
  if (!info.ok()) return info.status();
  if (config->gpu_name.empty()) config->gpu_name = info->name;
  if (config->memory_bytes == 0) config->memory_bytes = info->memory_bytes;
  return absl::OkStatus();
}

}  // namespace turbovid::worker
