// The CUDA backend: BF16 activations with fp32 math inside the kernels (kernels/), cuBLASLt
// GEMMs. Ops it does not implement yet stay unregistered (Supports() is false).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"

namespace turbovid::engine {

// The backend on CUDA device 0; Unavailable when no device (or no driver) is present.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend();

}  // namespace turbovid::engine
