// bf16 GEMM through cuBLASLt with fp32 accumulation: y[M,N] = act(x[M,K]·w[N,K]ᵀ + bias[N]).
// x and w are BF16; y is BF16 or F32; bias matches y (else it is applied by a separate kernel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <cuda_runtime_api.h>

#include "kernels/elementwise.h"
#include "kernels/kernel_types.h"

namespace turbovid::kernels {

// Why libcublasLt could not be opened ("" when it was); GemmContext::Init fails in that case.
std::string GemmLoadError();

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

  // cuBLASLt's heuristic answer per problem (m, n, k, epilogue, output type), kept so that the
  // 30-block DiT loop asks once per shape instead of once per call. 64 bytes each (opaque algo).
  using AlgoKey = std::tuple<int64_t, int64_t, int64_t, int, int>;
  struct AlgoBytes {
    uint64_t data[8];
  };
  bool FindAlgo(const AlgoKey& key, AlgoBytes* algo) const;
  void StoreAlgo(const AlgoKey& key, const AlgoBytes& algo) const;

 private:
  void* handle_ = nullptr;
  void* workspace_ = nullptr;
  mutable std::mutex algo_mu_;
  mutable std::map<AlgoKey, AlgoBytes> algos_;
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

// FP8 e4m3 GEMM through cuBLASLt (docs/model-math.md §11.8): y[m,n] = (x·wᵀ)·x_scale[m]·w_scale[n]
// with fp32 accumulation, written as y's type (BF16 or F32, rounded once). As the bf16 GEMM, the
// column-major product yᵀ = wᵀ·x: A = w (TN: the only FP8 layout Hopper has), B = x, and the
// scales as per-row/per-column vectors (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F: A's over the
// n outputs, B's over the m tokens). With `outer_vec` false (fallback) no scales are passed and y
// (F32) receives the raw accumulator. k must be a multiple of 16. Returns 0, a positive
// cublasStatus_t (CUBLAS_STATUS_NOT_SUPPORTED: the heuristic had no algorithm), or -cudaError_t.
// cublasStatus_t CUBLAS_STATUS_NOT_SUPPORTED, for callers that do not include cuBLAS.
inline constexpr int kGemmNotSupported = 15;

struct GemmFp8Args {
  const void* x = nullptr;         // e4m3 [m, k]
  const float* x_scale = nullptr;  // [m], with outer_vec
  const void* w = nullptr;         // e4m3 [n, k]
  const float* w_scale = nullptr;  // [n], with outer_vec
  MutBuf y;                        // [m, n]
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  bool outer_vec = true;
  // CUBLASLT_MATMUL_DESC_FAST_ACCUM: the tensor cores' own accumulator for the whole K loop
  // (no periodic promotion to fp32): faster, less exact (TV_FP8_FAST_ACCUM=1).
  bool fast_accum = false;
};
int LaunchGemmFp8(const GemmContext& ctx, const GemmFp8Args& args, cudaStream_t stream);

}  // namespace turbovid::kernels
