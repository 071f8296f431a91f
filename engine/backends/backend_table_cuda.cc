// The backend table of a build with the CUDA backend: the CPU reference backend and CUDA.
#include <array>

#include "engine/backends/backend_table.h"
#include "engine/comm/nccl_communicator.h"
#include "engine/cuda/cuda_backend.h"

namespace turbovid::engine::internal {
namespace {

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaEntry(int device) {
  return MakeCudaBackend(device);
}

absl::StatusOr<DeviceInfo> QueryCudaEntry(int device) {
  absl::StatusOr<CudaDeviceInfo> info = QueryCudaDevice(device);
  if (!info.ok()) return info.status();
  return DeviceInfo{info->name, info->memory_bytes, info->sm_version, info->pci_bus_id};
}

}  // namespace

std::span<const BackendEntry> BuiltBackendTable() {
  static constexpr std::array<BackendEntry, 2> kTable = {{
      {"cpu", &MakeCpuEntry, &QueryCpuEntry},
      {"cuda", &MakeCudaEntry, &QueryCudaEntry},
  }};
  return kTable;
}

absl::StatusOr<std::unique_ptr<comm::Communicator>> MakeTableDeviceCommunicator(
    Backend& backend, int device, comm::Communicator& host) {
  absl::StatusOr<void*> stream = GetCudaStream(backend);
  if (!stream.ok()) return stream.status();
  return comm::MakeNcclCommunicator(host, device, *stream);
}

}  // namespace turbovid::engine::internal
