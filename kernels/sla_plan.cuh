// SLA launch plan shared by the stage files (sla.cu: plan and driver; sla_linear.cu,
// sla_block_map.cu, sla_sparse.cu: the kernels of each stage and their launches): tile constants,
// shared-memory sizes, the workspace layout, the per-kernel timer. Internal to the SLA kernels.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/sla.h"

namespace turbovid::kernels::sla_plan {

constexpr int kBm = 128;        // query rows per sparse CTA (= block_q on the tensor-core path)
constexpr int kBn = 64;         // keys per tile (= block_k on the tensor-core path)
constexpr int kThreads = 128;   // 4 warps × 32 query rows: two m16 tiles per warp halve the
                                // shared-memory reads of K/V per mma against one-m-tile warps
constexpr int kScoreTile = 32;  // key blocks per shared tile in the scoring kernel
constexpr int kReduceRows = 8;  // KV rows per CTA in the reduce/proj kernel
constexpr int kGenericWarps = 8;
constexpr int kSageStatRows = 512;  // tokens per SageSLA statistics chunk

constexpr size_t SparseSmemBytes(int d) {
  return size_t(kBm) * d * 2 + 4 * size_t(kBn) * d * 2 + 2 * d * 4;
}
constexpr size_t KvSmemBytes(int d) { return 5 * size_t(kBn) * d * 2 + 4 * d * 4; }
// Padded row stride (floats) of the pooled-k tile: conflict-free for the lanes reading one row
// each, and 16-byte rows for float4 reads when D % 4 == 0.
__host__ __device__ constexpr int ScoreRowStride(int d) { return d % 4 == 0 ? d + 4 : d + 1; }
inline size_t ScoreSmemBytes(int qg, int d, int64_t nk) {
  return (size_t(qg) * d + size_t(kScoreTile) * ScoreRowStride(d) + size_t(qg) * nk) * 4;
}

// Which path runs and where each scratch array lives in the workspace.
struct Plan {
  int64_t nq = 0, nk = 0, nch = 0, chunk_rows = 0;
  int qg = 0;  // query blocks per scoring CTA
  bool fast_attn = false, fast_kv = false, vec_pool_q = false, vec_pool_k = false;
  bool sm90 = false;        // sm_90a TMA + wgmma kernel (kernels/sla_sm90.cu), D = 128
  bool wgmma = false;       // the simpler sm_90a wgmma kernel (sla_wgmma_sm90.cu)
  bool kblk_in_kv = false;  // the K^T V kernel also writes the key block sums (block_k = 64)
  bool sage_wgmma = false;  // SageSLA's attention on the sm_90a wgmma kernel (sagesla_sm90.cu)
  size_t qsum = 0, kblk = 0, kmean = 0, lut = 0, kv_part = 0, ks_part = 0, m16 = 0, m32 = 0,
         ksum = 0, kstats = 0, total = 0;
  // SageSLA: statistics chunks, padded key count, and its buffers (codes, scales, statistics,
  // the o_s scratch when the caller does not ask for sparse_out).
  int64_t nst = 0, lpad = 0;
  size_t sq8 = 0, sk8 = 0, sv8 = 0, sqs = 0, sks = 0, svs = 0, sksum = 0, svmax = 0, sos = 0,
         skmean = 0, svfac = 0;
};

// SageSLA's block-sparse attention over the quantised operands (sagesla.cu quantises them): the
// arguments of the mma.sync kernel (sagesla.cu) and of the sm_90a wgmma one (sagesla_sm90.cu).
struct SageAttnArgs {
  const int8_t* q8;      // [L, N, D]
  const int8_t* k8;      // [L, N, D]
  const uint8_t* v8t;    // [N, D, lpad] permuted per 32-key chunk (sagesla.cu KeyAt)
  const float* q_scale;  // [N, nq]
  const float* k_scale;  // [N, nk]
  const float* v_scale;  // [N, D]
  const int* lut;        // [N, nq, ksel]
  void* os;              // [L, N, D] bf16 o_s
  int64_t l, heads, nq, nk, lpad;
  int ksel;
  float qk_scale;  // fp32(1/sqrt(D))·log2(e)
};
// The sm_90a kernel (TMA + wgmma: IGMMA for Q·Kᵀ, QGMMA for P·V) for SageNumerics::kSm90 at D =
// 128: built when TV_CUDA_ARCHS has 90a; its launcher reports NotSupported otherwise and
// InvalidValue for arguments it does not take.
bool SageWgmmaBuilt();
size_t SageWgmmaSmemBytes();
cudaError_t LaunchSageAttnWgmma(const SageAttnArgs& a, cudaStream_t stream);

template <typename Kernel>
cudaError_t SetSmem(Kernel kernel, size_t bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(bytes));
}

// Per-kernel cudaEvent timing for SlaArgs::kernel_ms; without it every call is a no-op.
class KernelTimer {
 public:
  KernelTimer(float* ms, cudaStream_t stream) : ms_(ms), stream_(stream) {
    if (ms_ != nullptr) {
      for (int i = 0; i < kSlaNumKernels; ++i) ms_[i] = -1.f;
    }
  }
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;
  ~KernelTimer() {
    for (int i = 0; i < n_; ++i) cudaEventDestroy(ev_[i]);
  }
  cudaError_t Start() { return ms_ != nullptr ? Record(-1) : cudaSuccess; }
  // Marks the end of kernel `which`, launched since the previous mark.
  cudaError_t Mark(int which) { return ms_ != nullptr ? Record(which) : cudaSuccess; }
  // Waits for the last mark and writes each marked kernel's time.
  cudaError_t Finish() {
    if (ms_ == nullptr || n_ == 0) return cudaSuccess;
    cudaError_t e = cudaEventSynchronize(ev_[n_ - 1]);
    for (int i = 1; i < n_ && e == cudaSuccess; ++i) {
      float t = 0.f;
      e = cudaEventElapsedTime(&t, ev_[i - 1], ev_[i]);
      ms_[which_[i]] = std::max(ms_[which_[i]], 0.f) + t;
    }
    return e;
  }

 private:
  cudaError_t Record(int which) {
    if (n_ == kMax) return cudaErrorInvalidValue;
    if (cudaError_t e = cudaEventCreate(&ev_[n_]); e != cudaSuccess) return e;
    which_[n_++] = which;
    return cudaEventRecord(ev_[n_ - 1], stream_);
  }
  static constexpr int kMax = 16;
  float* ms_;
  cudaStream_t stream_;
  cudaEvent_t ev_[kMax] = {};
  int which_[kMax] = {};
  int n_ = 0;
};

// The stages, in launch order (sla.cu's LaunchSla). Each launches its kernels on `stream` and
// marks them on `timer`; ws is the workspace laid out by the plan.
// Linear branch: Σ φ(k)ᵀ v partials, then the reduce with proj_l folded in (sla_linear.cu).
cudaError_t LaunchLinear(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                         cudaStream_t stream);
// Block map: pooled sums, smoothing mean, scores and top-k (sla_block_map.cu).
cudaError_t LaunchBlockMap(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                           cudaStream_t stream);
// SageSLA's sparse branch, then o_s plus the linear branch's output (sagesla.cu).
cudaError_t LaunchSageSparse(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                             cudaStream_t stream);
// Sparse softmax branch plus the linear branch's output (sla_sparse.cu).
cudaError_t LaunchSparse(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                         cudaStream_t stream);

}  // namespace turbovid::kernels::sla_plan
