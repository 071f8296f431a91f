// FillDeviceInfo: the GPU name and memory of the configured device, through the engine's backend
// factory (engine/backends/backends.h), so that this file is the same with and without CUDA.
#include "common/status_macros.h"
#include "engine/backends/backends.h"
#include "worker/task_runner.h"

namespace turbovid::worker {

absl::Status FillDeviceInfo(WorkerConfig* config) {
  if (config->backend == "cpu") return absl::OkStatus();
  TV_ASSIGN_OR_RETURN(engine::DeviceInfo info,
                      engine::QueryDevice(config->backend, config->device));
  if (config->gpu_name.empty()) config->gpu_name = info.name;
  if (config->memory_bytes == 0) config->memory_bytes = info.memory_bytes;
  return absl::OkStatus();
}

}  // namespace turbovid::worker
