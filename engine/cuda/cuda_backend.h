// The CUDA backend: BF16 activations with fp32 math inside the kernels (kernels/), cuBLASLt
// GEMMs. Ops it does not implement yet stay unregistered (Supports() is false).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "kernels/kernel_options.h"

namespace turbovid::engine {

// The backend on CUDA device `device`; Unavailable when no such device (or no driver) is present.
// Its kernel options come from the environment (CudaKernelOptionsFromEnv), read here once.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device = 0);
// The same with the given kernel options instead of the environment's.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device,
                                                         const kernels::KernelOptions& options);

// The kernel-path switches of the environment: TV_ATTENTION=simple|flash|sm90,
// TV_FA_SM90=s2|s2pp|s3pp|s2ppp, TV_SLA_PATH=sm90|wgmma|portable, TV_SLA_PORTABLE=0|1,
// TV_CONV3D_PATH=direct|gemm|halo|sm90, TV_CONV_SM90_DEBUG=0|1, TV_INT8_GEMM=mma|sm90, and
// TV_KERNELS=auto|portable
// (portable: every kAuto above takes its non-Hopper kernel, SageSLA the sm_89/sm_120 numerics: the
// RTX 4090/5090's code paths on an H100); unset or empty → the default.
// InvalidArgument naming the variable for any other value.
absl::StatusOr<kernels::KernelOptions> CudaKernelOptionsFromEnv();
// Reads / replaces the kernel options of a backend MakeCudaBackend made, for tests and benchmarks
// that switch kernel paths between ops; InvalidArgument for any other backend.
absl::StatusOr<kernels::KernelOptions> GetCudaKernelOptions(const Backend& backend);
absl::Status SetCudaKernelOptions(Backend& backend, const kernels::KernelOptions& options);

// The CUDA stream (a cudaStream_t) a backend made by MakeCudaBackend queues its work on, for
// work queued beside it (NCCL collectives); InvalidArgument for any other backend.
absl::StatusOr<void*> GetCudaStream(const Backend& backend);

struct CudaDeviceInfo {
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3"
  int64_t memory_bytes = 0;  // total device memory
  int sm_version = 0;        // e.g. 90
  std::string pci_bus_id;    // "0000:65:00.0", as NVML and nvidia-smi write it
};
absl::StatusOr<CudaDeviceInfo> QueryCudaDevice(int device);

}  // namespace turbovid::engine
