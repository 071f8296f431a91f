// SLA block map (docs/model-math.md §9): pooled query / key block sums, the smoothing mean of k,
// block scores and top-k per query block → the LUT of selected key blocks and the optional map.
// q, k: [L, N, D] bf16; sums fp32 in the workspace (sla_plan.cuh).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/device_util.cuh"
#include "kernels/sla.h"
#include "kernels/sla_plan.cuh"
#include "kernels/sla_tiles.cuh"

namespace turbovid::kernels {
namespace {

using detail::Load;
using namespace sla_plan;   // NOLINT(build/namespaces): the plan's constants
using namespace sla_tiles;  // NOLINT(build/namespaces): the shared tile helpers

// sums[h, b, :] = Σ rows [b·blk, min(L, (b+1)·blk)) of head h. vec: 16-byte loads of 8 columns
// (D % 8 == 0, aligned), else one column per thread.
__global__ void __launch_bounds__(256)
    PoolSumKernel(const bf16* x, int64_t l, int64_t heads, int d, int blk, int64_t nblocks,
                  bool vec, float* sums) {
  __shared__ float red[2048];
  const int64_t b = blockIdx.x, h = blockIdx.y;
  const int w = vec ? 8 : 1;
  const int dc = d / w;        // column groups per row
  const int lanes = 256 / dc;  // rows summed in parallel
  const int c = threadIdx.x % dc, r = threadIdx.x / dc;
  const int64_t t0 = b * blk, t1 = min(l, t0 + blk);
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (r < lanes) {
    for (int64_t t = t0 + r; t < t1; t += lanes) {
      const bf16* src = x + (t * heads + h) * d + c * w;
      if (vec) {
        const uint4 raw = *reinterpret_cast<const uint4*>(src);
        const uint32_t w4[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          acc[2 * i] += LoBf16(w4[i]);
          acc[2 * i + 1] += HiBf16(w4[i]);
        }
      } else {
        acc[0] += __bfloat162float(src[0]);
      }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (i < w) red[r * d + c * w + i] = acc[i];
    }
  }
  __syncthreads();  // every row lane's partial sums are in red
  for (int col = threadIdx.x; col < d; col += blockDim.x) {
    float s = 0.f;
    for (int i = 0; i < lanes; ++i) s += red[i * d + col];
    sums[(h * nblocks + b) * d + col] = s;
  }
}

// kmean[h, :] = Σ_j kblk[h, j, :] / L (the smooth-K mean over all tokens).
// CTA (head, 32 columns): warp w sums blocks j ≡ w (mod 8) in double for its lane's column, then
// warp 0 adds the 8 partials in order (deterministic); 8 loads in flight per column, not one.
__global__ void __launch_bounds__(256)
    KMeanKernel(const float* kblk, int64_t nk, int64_t l, int d, float* kmean) {
  __shared__ double part[8][32];
  const int64_t h = blockIdx.x;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int c = blockIdx.y * 32 + lane;
  double s = 0;
  if (c < d) {
    for (int64_t j = w; j < nk; j += 8) s += kblk[(h * nk + j) * d + c];
  }
  part[w][lane] = s;
  __syncthreads();  // every warp's partial sums are in shared memory
  if (w == 0 && c < d) {
    double t = 0;
    for (int i = 0; i < 8; ++i) t += part[i][lane];
    kmean[h * d + c] = static_cast<float>(t / static_cast<double>(l));
  }
}

// Order-preserving unsigned key of a float (larger float → larger key; -0 folded onto +0).
__device__ __forceinline__ uint32_t OrderKey(float f) {
  const uint32_t u = __float_as_uint(f == 0.f ? 0.f : f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct ScoreParams {
  const float* qsum;   // [N, nq, D] block sums of q
  const float* kblk;   // [N, nk, D] block sums of k
  const float* kmean;  // [N, D]
  int* lut;            // [N, nq, ksel] selected key blocks, ascending
  int8_t* map;         // [N, nq, nk] or null
  int64_t l, nq, nk;
  int d, block_q, block_k, ksel, qg;
};

// One CTA per (head, qg query blocks); warp w owns query block qb0 + w: its scores against every
// key block go to shared memory, then the warp selects the top ksel (ties → lower index).
__global__ void __launch_bounds__(512) ScoreTopkKernel(ScoreParams p) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int d = p.d;
  float* qp = reinterpret_cast<float*>(smem);  // [qg, D] pooled q
  float* kt = qp + p.qg * d;                   // [32, kts] pooled smoothed k (padded rows)
  const int kts = ScoreRowStride(d);
  float* sc = kt + kScoreTile * kts;  // [qg, nk] scores
  const int64_t h = blockIdx.y, qb0 = int64_t(blockIdx.x) * p.qg;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t qb = qb0 + w;
  for (int i = threadIdx.x; i < p.qg * d; i += blockDim.x) {
    const int64_t b = qb0 + i / d;
    float v = 0.f;
    if (b < p.nq) {
      const int64_t cnt = min(p.l, (b + 1) * p.block_q) - b * p.block_q;
      v = p.qsum[(h * p.nq + b) * d + i % d] / static_cast<float>(cnt);
    }
    qp[i] = v;
  }
  for (int64_t j0 = 0; j0 < p.nk; j0 += kScoreTile) {
    __syncthreads();  // qp written / previous kt tile consumed
    for (int i = threadIdx.x; i < kScoreTile * d; i += blockDim.x) {
      const int jj = i / d, c = i % d;
      const int64_t j = j0 + jj;
      float v = 0.f;
      if (j < p.nk) {
        const int64_t cnt = min(p.l, (j + 1) * p.block_k) - j * p.block_k;
        v = p.kblk[(h * p.nk + j) * d + c] / static_cast<float>(cnt) - p.kmean[h * d + c];
      }
      kt[jj * kts + c] = v;
    }
    __syncthreads();  // kt tile complete
    if (qb < p.nq && j0 + lane < p.nk) {
      float s = 0.f;
      if (d % 4 == 0) {
        const float4* qv = reinterpret_cast<const float4*>(qp + w * d);
        const float4* kv = reinterpret_cast<const float4*>(kt + lane * kts);
        for (int c4 = 0; c4 < d / 4; ++c4) {
          const float4 a = qv[c4], b = kv[c4];
          s = fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, fmaf(a.x, b.x, s))));
        }
      } else {
        for (int c = 0; c < d; ++c) s = fmaf(qp[w * d + c], kt[lane * kts + c], s);
      }
      sc[w * p.nk + j0 + lane] = s;
    }
  }
  __syncwarp();  // each warp reads back only the scores it wrote
  if (qb >= p.nq) return;
  const float* row = sc + w * p.nk;
  int8_t* map = p.map ? p.map + (h * p.nq + qb) * p.nk : nullptr;
  if (p.ksel == 0) {
    if (map) {
      for (int64_t j = lane; j < p.nk; j += 32) map[j] = 0;
    }
    return;
  }
  // thr = the ksel-th largest key: the largest value with count(key ≥ thr) ≥ ksel, bit by bit.
  uint32_t thr = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t cand = thr | (1u << bit);
    int cnt = 0;
    for (int64_t j = lane; j < p.nk; j += 32) cnt += OrderKey(row[j]) >= cand ? 1 : 0;
    if (__reduce_add_sync(0xffffffffu, cnt) >= p.ksel) thr = cand;
  }
  int gt = 0;
  for (int64_t j = lane; j < p.nk; j += 32) gt += OrderKey(row[j]) > thr ? 1 : 0;
  const int need = p.ksel - __reduce_add_sync(0xffffffffu, gt);  // ≥ 1 ties at thr to take
  int* lut = p.lut + (h * p.nq + qb) * p.ksel;
  const unsigned below = (1u << lane) - 1u;
  int eq_seen = 0, sel_seen = 0;
  for (int64_t base = 0; base < p.nk; base += 32) {
    const int64_t j = base + lane;
    const bool in = j < p.nk;
    const uint32_t key = in ? OrderKey(row[j]) : 0u;
    const bool eq = in && key == thr;
    const unsigned eq_mask = __ballot_sync(0xffffffffu, eq);
    const bool sel = in && (key > thr || (eq && eq_seen + __popc(eq_mask & below) < need));
    const unsigned sel_mask = __ballot_sync(0xffffffffu, sel);
    if (sel) lut[sel_seen + __popc(sel_mask & below)] = static_cast<int>(j);
    if (map && in) map[j] = sel ? 1 : 0;
    eq_seen += __popc(eq_mask);
    sel_seen += __popc(sel_mask);
  }
}

}  // namespace

namespace sla_plan {

cudaError_t LaunchBlockMap(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                           cudaStream_t stream) {
  float* qsum = reinterpret_cast<float*>(ws + pl.qsum);
  float* kblk = reinterpret_cast<float*>(ws + pl.kblk);
  float* kmean = reinterpret_cast<float*>(ws + pl.kmean);
  const bf16* q = static_cast<const bf16*>(a.q);
  const bf16* k = static_cast<const bf16*>(a.k);
  const dim3 gq(static_cast<unsigned>(pl.nq), static_cast<unsigned>(a.heads));
  const dim3 gk(static_cast<unsigned>(pl.nk), static_cast<unsigned>(a.heads));
  PoolSumKernel<<<gq, 256, 0, stream>>>(q, a.l, a.heads, a.d, a.block_q, pl.nq, pl.vec_pool_q,
                                        qsum);
  if (cudaError_t e = timer.Mark(kSlaPoolQ); e != cudaSuccess) return e;
  if (!pl.kblk_in_kv) {
    PoolSumKernel<<<gk, 256, 0, stream>>>(k, a.l, a.heads, a.d, a.block_k, pl.nk, pl.vec_pool_k,
                                          kblk);
    if (cudaError_t e = timer.Mark(kSlaPoolK); e != cudaSuccess) return e;
  }
  const dim3 gm(static_cast<unsigned>(a.heads), static_cast<unsigned>((a.d + 31) / 32));
  KMeanKernel<<<gm, 256, 0, stream>>>(kblk, pl.nk, a.l, a.d, kmean);
  if (cudaError_t e = timer.Mark(kSlaKMean); e != cudaSuccess) return e;
  ScoreParams sp{qsum,         kblk,      kmean,     reinterpret_cast<int*>(ws + pl.lut),
                 a.sparse_map, a.l,       pl.nq,     pl.nk,
                 a.d,          a.block_q, a.block_k, a.ksel,
                 pl.qg};
  const size_t smem = ScoreSmemBytes(pl.qg, a.d, pl.nk);
  if (cudaError_t e = SetSmem(ScoreTopkKernel, smem); e != cudaSuccess) return e;
  const dim3 gs(static_cast<unsigned>((pl.nq + pl.qg - 1) / pl.qg), static_cast<unsigned>(a.heads));
  ScoreTopkKernel<<<gs, 32 * pl.qg, smem, stream>>>(sp);
  if (cudaError_t e = timer.Mark(kSlaScoreTopk); e != cudaSuccess) return e;
  return cudaGetLastError();
}

}  // namespace sla_plan
}  // namespace turbovid::kernels
