// bf16 GEMM through cuBLASLt with fp32 accumulation: y[M,N] = act(x[M,K]·w[N,K]ᵀ + bias[N]).
// x and w are BF16; y is BF16 or F32; bias matches y (else it is applied by a separate kernel).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/elementwise.h"
#include "kernels/kernel_types.h"

namespace turbovid::kernels {

// Owns a cuBLASLt handle and workspace; create once per device (not thread-safe per handle).
class GemmContext {
 public:
  static constexpr size_t kWorkspaceBytes = 32u << 20;
  GemmContext() = default;
  ~GemmContext();
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;
  // Returns 0 on success, else a cuBLAS status or a CUDA error code (negated).
  int Init();
  void* handle() const { return handle_; }
  void* workspace() const { return workspace_; }

 private:
  void* handle_ = nullptr;
  void* workspace_ = nullptr;
};

struct GemmArgs {
  const void* x = nullptr;  // BF16 [m, k]
  const void* w = nullptr;  // BF16 [n, k]
  ConstBuf bias;            // [n] or null
  MutBuf y;                 // [m, n]
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  UnaryFn act = UnaryFn::kIdentity;
};
// Returns 0 on success; a positive cublasStatus_t from cuBLASLt, or -cudaError_t from a kernel.
int LaunchGemm(const GemmContext& ctx, const GemmArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
