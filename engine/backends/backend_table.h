// The backends built into this binary: one table, defined by backend_table_cpu.cc or
// backend_table_cuda.cc (CMake picks one), read by backends.cc.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/backends/backends.h"
#include "engine/core/backend.h"

namespace turbovid::engine::internal {

struct BackendEntry {
  std::string_view name;
  absl::StatusOr<std::unique_ptr<Backend>> (*make)(int device);
  absl::StatusOr<DeviceInfo> (*query)(int device);
};

std::span<const BackendEntry> BuiltBackendTable();

// The device communicator of a non-CPU backend of this table (NCCL for CUDA).
absl::StatusOr<std::unique_ptr<comm::Communicator>> MakeTableDeviceCommunicator(
    Backend& backend, int device, comm::Communicator& host);

// The CPU entry, shared by both tables.
absl::StatusOr<std::unique_ptr<Backend>> MakeCpuEntry(int device);
absl::StatusOr<DeviceInfo> QueryCpuEntry(int device);

}  // namespace turbovid::engine::internal
