// SLA on the GPU (docs/model-math.md §9; following engine/cpu/sla_ops.cc): the plan (which
// kernels run, the workspace layout) and the driver that runs the three stages (sla_plan.cuh).
// The kernels are in sla_linear.cu, sla_block_map.cu, sla_sparse.cu and the sm_90a files.
#include <algorithm>
#include <cstdint>

#include "kernels/sla.h"
#include "kernels/sla_plan.cuh"
#include "kernels/sla_tiles.cuh"

namespace turbovid::kernels {
namespace {

using namespace sla_plan;  // NOLINT(build/namespaces): the plan's constants and stages

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

cudaError_t MakePlan(const SlaArgs& a, Plan* p) {
  if (a.q == nullptr || a.k == nullptr || a.v == nullptr || a.out == nullptr ||
      a.proj_w.data == nullptr || a.proj_b.data == nullptr || a.l <= 0 || a.heads <= 0 ||
      a.heads > 65535 || a.d <= 0 || a.d > kSlaMaxHeadDim || a.block_q <= 0 || a.block_k <= 0) {
    return cudaErrorInvalidValue;
  }
  p->nq = (a.l + a.block_q - 1) / a.block_q;
  p->nk = (a.l + a.block_k - 1) / a.block_k;
  if (a.ksel < 0 || a.ksel > p->nk) return cudaErrorInvalidValue;
  int dev = 0, sms = 0, smem_optin = 0, major = 0, minor = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  if (e != cudaSuccess) return e;
  // Largest scoring group whose [qg, nk] score rows fit in shared memory.
  p->qg = 16;
  while (p->qg > 1 && ScoreSmemBytes(p->qg, a.d, p->nk) > size_t(smem_optin)) p->qg /= 2;
  if (ScoreSmemBytes(p->qg, a.d, p->nk) > size_t(smem_optin)) return cudaErrorInvalidValue;
  // K^T V chunks: at most two CTAs per SM over all heads (one wave: 2 CTAs fit an SM), whole
  // 64-row tiles.
  const int64_t per_head = std::max<int64_t>(1, 2 * int64_t(sms) / a.heads);
  int64_t rows = (a.l + per_head - 1) / per_head;
  p->chunk_rows = std::max<int64_t>(kBn, (rows + kBn - 1) / kBn * kBn);
  p->nch = (a.l + p->chunk_rows - 1) / p->chunk_rows;

  // The tensor-core kernels index [L, N, D] with 32-bit offsets.
  const bool tc_dim = (a.d == 64 || a.d == 128) && a.l * a.heads * a.d < (int64_t(1) << 31);
  const bool io_aligned = Aligned16(a.q) && Aligned16(a.k) && Aligned16(a.v) && Aligned16(a.out) &&
                          (a.sparse_out == nullptr || Aligned16(a.sparse_out));
  p->fast_attn = tc_dim && io_aligned && a.block_q == kBm && a.block_k == kBn &&
                 SparseSmemBytes(a.d) <= size_t(smem_optin);
  // wgmma and TMA exist on sm_90a only (TV_CUDA_ARCHS builds 90a). On an H100 the sparse branch
  // takes the TMA kernel; SlaArgs::path (TV_SLA_PATH) picks the simpler wgmma one or the mma.sync
  // one instead, for comparing them.
  const bool hopper = p->fast_attn && a.d == 128 && major == 9 && a.path != SlaPath::kPortable;
  p->sm90 = hopper && a.path != SlaPath::kWgmma && sla_tiles::SlaSm90Built() &&
            sla_tiles::SlaSm90SmemBytes() <= size_t(smem_optin);
  p->wgmma = hopper && !p->sm90 && sla_tiles::SlaWgmmaBuilt() &&
             sla_tiles::SlaWgmmaSmemBytes() <= size_t(smem_optin);
  p->fast_kv = tc_dim && Aligned16(a.k) && Aligned16(a.v) && KvSmemBytes(a.d) <= size_t(smem_optin);
  p->kblk_in_kv = p->fast_kv && a.block_k == kBn;
  p->vec_pool_q = a.d % 8 == 0 && Aligned16(a.q);
  p->vec_pool_k = a.d % 8 == 0 && Aligned16(a.k);

  const size_t n = size_t(a.heads), d = size_t(a.d);
  size_t off = 0;
  auto take = [&off](size_t bytes) {
    const size_t at = off;
    off += (bytes + 255) / 256 * 256;
    return at;
  };
  p->qsum = take(n * p->nq * d * 4);
  p->kblk = take(n * p->nk * d * 4);
  p->kmean = take(n * d * 4);
  p->lut = take(n * p->nq * size_t(a.ksel) * 4);
  p->kv_part = take(n * p->nch * d * d * 4);
  p->ks_part = take(n * p->nch * d * 4);
  p->m16 = take(n * d * d * 2);
  p->m32 = take(n * d * d * 4);
  p->ksum = take(n * d * 4);
  p->kstats = take(p->fast_kv ? 0 : n * size_t(a.l) * 8);
  if (a.sage != SageNumerics::kOff) {
    const bool blocks = a.sage == SageNumerics::kSm90 ? a.block_q == 64 && a.block_k == 128
                                                      : a.block_q == 128 && a.block_k == 64;
    if (!blocks || (a.d != 64 && a.d != 128) || a.l * a.heads * a.d >= (int64_t(1) << 31) ||
        !Aligned16(a.q) || !Aligned16(a.k) || !Aligned16(a.v) || !Aligned16(a.out) ||
        (a.sparse_out != nullptr && !Aligned16(a.sparse_out))) {
      return cudaErrorInvalidValue;
    }
    // The sm_90a wgmma kernel where it runs (sm_90a code needs compute capability 9.0).
    p->sage_wgmma = a.sage == SageNumerics::kSm90 && a.d == 128 && major == 9 && minor == 0 &&
                    a.sage_path != SageSlaPath::kMma && SageWgmmaBuilt() &&
                    SageWgmmaSmemBytes() <= size_t(smem_optin);
    p->nst = (a.l + kSageStatRows - 1) / kSageStatRows;
    p->lpad = p->nk * a.block_k;  // whole 32-key chunks
    const size_t lnd = size_t(a.l) * n * d;
    p->sq8 = take(lnd);
    p->sk8 = take(lnd);
    p->sv8 = take(n * d * size_t(p->lpad));
    p->sqs = take(n * p->nq * 4);
    p->sks = take(n * p->nk * 4);
    p->svs = take(n * d * 4);
    p->sksum = take(n * p->nst * d * 8);
    p->svmax = take(n * p->nst * d * 4);
    p->skmean = take(n * d * 4);
    p->svfac = take(n * d * 4);
    p->sos = take(a.sparse_out == nullptr ? lnd * 2 : 0);
  }
  p->total = off;
  return cudaSuccess;
}

}  // namespace

bool SageSlaWgmmaAvailable() {
  int dev = 0, major = 0, minor = 0, smem_optin = 0;
  return sla_plan::SageWgmmaBuilt() && cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) ==
             cudaSuccess &&
         major == 9 && minor == 0 && sla_plan::SageWgmmaSmemBytes() <= size_t(smem_optin);
}

size_t SlaWorkspaceBytes(const SlaArgs& args) {
  Plan plan;
  return MakePlan(args, &plan) == cudaSuccess ? plan.total : 0;
}

cudaError_t LaunchSla(const SlaArgs& args, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream) {
  Plan plan;
  if (cudaError_t e = MakePlan(args, &plan); e != cudaSuccess) return e;
  if (workspace == nullptr || workspace_bytes < plan.total ||
      (reinterpret_cast<uintptr_t>(workspace) & 255) != 0) {
    return cudaErrorInvalidValue;
  }
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  KernelTimer timer(args.kernel_ms, stream);
  if (cudaError_t e = timer.Start(); e != cudaSuccess) return e;
  // The K^T V pass first: on the tensor-core path it also produces the key block sums.
  if (cudaError_t e = LaunchLinear(args, plan, ws, timer, stream); e != cudaSuccess) return e;
  if (cudaError_t e = LaunchBlockMap(args, plan, ws, timer, stream); e != cudaSuccess) return e;
  if (args.sage != SageNumerics::kOff) {
    if (cudaError_t e = LaunchSageSparse(args, plan, ws, timer, stream); e != cudaSuccess) return e;
  } else if (cudaError_t e = LaunchSparse(args, plan, ws, timer, stream); e != cudaSuccess) {
    return e;
  }
  return timer.Finish();
}

const char* SlaKernelName(int kernel) {
  switch (kernel) {
    case kSlaKvPartial:
      return "kv_partial";
    case kSlaKvReduce:
      return "kv_reduce";
    case kSlaPoolQ:
      return "pool_q";
    case kSlaPoolK:
      return "pool_k";
    case kSlaKMean:
      return "kmean";
    case kSlaScoreTopk:
      return "score_topk";
    case kSlaSparse:
      return "sparse";
    case kSlaSageQuant:
      return "sage_quant";
    case kSlaSageLinearOut:
      return "sage_linear_out";
    default:
      return "?";
  }
}

}  // namespace turbovid::kernels
