// The one backend-by-name factory: "cpu" always, "cuda" when this binary was built with the CUDA
// backend (CMake compiles backend_table_cuda.cc instead of backend_table_cpu.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/comm/communicator.h"
#include "engine/core/backend.h"

namespace turbovid::engine {

// The backend `name` on device `device` (ignored by "cpu"). InvalidArgument for a name that is no
// backend, Unimplemented for one not built into this binary, Unavailable when the device is absent.
absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(std::string_view name, int device = 0);

struct DeviceInfo {
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3", or "host CPU"
  int64_t memory_bytes = 0;  // total device memory; 0 for the host
  int sm_version = 0;        // e.g. 90; 0 for the host
  // "0000:65:00.0" (domain:bus:device.function): the key that finds the same GPU in NVML, whose
  // numbering ignores CUDA_VISIBLE_DEVICES; "" for the host.
  std::string pci_bus_id;
};
// What backend `name` would run on at `device`, without creating the backend; errors as
// MakeBackend.
absl::StatusOr<DeviceInfo> QueryDevice(std::string_view name, int device = 0);

// The communicator a parallel group's model code uses on `backend` (docs/parallelism.md §5):
// on the CPU backend a group over `host` itself (Split, sharing its transport: in-process
// threads or sockets between processes); on CUDA an NCCL communicator on `device` and the
// backend's stream, bootstrapped over `host`. Collective over `host`.
absl::StatusOr<std::unique_ptr<comm::Communicator>> MakeDeviceCommunicator(
    Backend& backend, int device, comm::Communicator& host);

// The backend names built into this binary, in preference order ("cpu" first).
std::vector<std::string> BuiltBackends();

}  // namespace turbovid::engine
