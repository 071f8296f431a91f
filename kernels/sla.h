// SLA (TurboDiffusion sparse-linear attention, docs/model-math.md §9) on the GPU: block map
// (pooled q / smoothed k scores, top-k per query block), block-sparse softmax branch and the global
// linear branch with proj_l, summed. q, k, v, out, sparse_out: [L, N, D] bf16.
// Sparse-branch paths: D 128 with 128×64 blocks on sm_90a → TMA + wgmma kernel (sla_sm90.cu;
// SlaArgs::path kWgmma picks the simpler cp.async wgmma kernel, sla_wgmma_sm90.cu, and kPortable
// the mma.sync one); D 64/128 with 128×64 blocks → mma.sync kernels; anything else (D ≤ 256, any
// block sizes) → simple CUDA-core kernels.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernel_options.h"
#include "kernels/kernel_types.h"

namespace turbovid::kernels {

// The kernels LaunchSla runs, in launch order (SlaArgs::kernel_ms, SlaKernelName).
enum SlaKernel : int {
  kSlaKvPartial,  // Σ φ(k)ᵀ v partials (and the key block sums on the tensor-core path)
  kSlaKvReduce,   // partials summed, proj_l folded in
  kSlaPoolQ,      // query block sums
  kSlaPoolK,      // key block sums (only off the tensor-core path)
  kSlaKMean,      // smoothing mean of k
  kSlaScoreTopk,  // block scores and top-k → LUT, block map
  kSlaSparse,     // block-sparse softmax branch + linear branch output (SageSLA: sparse alone)
  kSlaSageQuant,  // SageSLA: k/v statistics, q/k int8 and V e4m3 quantisers
  kSlaSageLinearOut,  // SageSLA: o_s + the linear branch's output
  kSlaNumKernels
};
const char* SlaKernelName(int kernel);

// SageSLA (docs/model-math.md §10): SLA with the sparse branch quantised the SpargeAttn way, in
// the numerics of one upstream build. kSm90 (H100 build): 64×128 blocks, P·V with fp32
// accumulators; kSm89 (RTX 4090/5090 build): 128×64 blocks, P·V with fp16 accumulators per block.
// Both run on the portable mma.sync kernel (sm_89 and later); on an sm_90a device kSm90 at D 128
// takes the wgmma kernel instead (SlaArgs::sage_path).
enum class SageNumerics : int { kOff = 0, kSm90 = 1, kSm89 = 2 };
// The quantised intermediates, written where non-null (golden checks): codes [L, N, D] in token
// order, scales [N, nq] / [N, nk] / [N, D], k_mean [N, D] (bf16 values).
struct SageProbes {
  int8_t* q_int8 = nullptr;
  float* q_scale = nullptr;
  float* k_mean = nullptr;
  int8_t* k_int8 = nullptr;
  float* k_scale = nullptr;
  uint8_t* v_fp8 = nullptr;
  float* v_scale = nullptr;
};

struct SlaArgs {
  const void* q = nullptr;       // [L, N, D] bf16
  const void* k = nullptr;       // [L, N, D] bf16
  const void* v = nullptr;       // [L, N, D] bf16
  ConstBuf proj_w;               // [D, D] bf16 or f32 (nn.Linear weight: y = x·Wᵀ + b)
  ConstBuf proj_b;               // [D] bf16 or f32
  void* out = nullptr;           // [L, N, D] bf16: o_s + proj_l(o_l)
  void* sparse_out = nullptr;    // [L, N, D] bf16: o_s alone, or null
  int8_t* sparse_map = nullptr;  // [N, nq, nk] I8 (1 = selected), or null
  int64_t l = 0;
  int64_t heads = 0;
  int d = 0;          // ≤ kSlaMaxHeadDim; 64 and 128 take the tensor-core path
  int block_q = 128;  // rows per query block (128 with block_k 64 takes the tensor-core path)
  int block_k = 64;   // rows per key block
  int ksel = 0;       // selected key blocks per query block, 0 ≤ ksel ≤ ceil(L / block_k)
  // Optional [kSlaNumKernels]: when set, LaunchSla times each kernel with cudaEvents, waits for
  // `stream`, and writes the milliseconds (-1 for a kernel the plan did not run). For profiling.
  float* kernel_ms = nullptr;
  // Sparse-branch kernel on an sm_90a device (KernelOptions::sla); kAuto = the TMA kernel.
  SlaPath path = SlaPath::kAuto;
  // SageSLA instead of the bf16 sparse branch: block_q × block_k must be the variant's (64×128
  // for kSm90, 128×64 for kSm89) and D 64 or 128.
  SageNumerics sage = SageNumerics::kOff;
  SageProbes sage_probes;
  // SageSLA's output (o_s + the linear branch): false = on tensor cores with bf16 SLA's epilogue
  // (D 64/128), true = the one-warp-per-row CUDA-core kernel (KernelOptions::sage_linear_simple).
  bool sage_linear_simple = false;
  // SageSLA's attention kernel (KernelOptions::sagesla): kAuto / kWgmma take the sm_90a wgmma one
  // where it runs (sm_90a device, kSm90, D 128), else the mma.sync one.
  SageSlaPath sage_path = SageSlaPath::kAuto;
};
constexpr int kSlaMaxHeadDim = 256;

// Whether SageSLA's sm_90a wgmma attention kernel runs on the current device: built (TV_CUDA_ARCHS
// has 90a) and a compute capability 9.0 device. The plan then takes it for kSm90 at D 128 unless
// SlaArgs::sage_path is kMma.
bool SageSlaWgmmaAvailable();

// Scratch bytes LaunchSla needs for `args` (pooled blocks, LUT, K^T V partials, proj-folded KV).
size_t SlaWorkspaceBytes(const SlaArgs& args);
// Runs the whole op on `stream`; `workspace` holds at least SlaWorkspaceBytes(args) bytes, 256-byte
// aligned, and is fully overwritten.
cudaError_t LaunchSla(const SlaArgs& args, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream);

}  // namespace turbovid::kernels
