// The CUDA backend: BF16 activations with fp32 math inside the kernels (kernels/), cuBLASLt
// GEMMs. Ops it does not implement yet stay unregistered (Supports() is false).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"

namespace turbovid::engine {

// The backend on CUDA device `device`; Unavailable when no such device (or no driver) is present.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device = 0);

struct CudaDeviceInfo {
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3"
  int64_t memory_bytes = 0;  // total device memory
  int sm_version = 0;        // e.g. 90
};
absl::StatusOr<CudaDeviceInfo> QueryCudaDevice(int device);

}  // namespace turbovid::engine
