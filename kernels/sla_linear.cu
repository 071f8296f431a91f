// SLA linear branch, first half (docs/model-math.md §9): per-chunk partials of Σ φ(k)ᵀ v and
// Σ φ(k) (mma.sync for D 64/128, simple kernels otherwise), then the reduce with proj_l folded in:
// M = KV·Wᵀ [N, D, D] (bf16 and fp32), ksum [N, D]. k, v: [L, N, D] bf16.
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

struct KvParams {
  const bf16* k;         // [L, N, D]
  const bf16* v;         // [L, N, D]
  const float2* kstats;  // [N, L] (max, Σexp) of k rows (generic path only)
  float* kv_part;        // [N, nch, D, D]
  float* ks_part;        // [N, nch, D]
  float* kblk;           // [N, nk, D] block sums of k (64-row key blocks), or null
  int64_t l, heads, chunk_rows, nch, nk;
  int d;
};

// Tensor-core partial: CTA (chunk, head) walks its rows in 64-row tiles; φ(k) (softmax over D,
// rounded to bf16 like upstream's bf16 feature map) goes to shared memory, then
// acc[a, c] += Σ_t φ[t, a] v[t, c] with warp w owning rows a of 32 (D=128) or 16 (D=64). With kblk
// set (block_k = 64: a tile is a key block) it also writes the block sums of raw k for the block
// map, saving the block map a pass over k.
template <int D>
__global__ void __launch_bounds__(kThreads) KvPartialKernel(KvParams p) {
  constexpr int kChunks = D / 8, kTile = kBn * D * 2, kMt = D / 64, kNt = D / 8, kPer = D / 32;
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t s_base = SmemAddr(smem);
  const uint32_t s_k0 = s_base, s_v0 = s_base + 2 * kTile, s_phi = s_base + 4 * kTile;
  float* red = reinterpret_cast<float*>(smem + 5 * kTile);  // [4, D] per-warp column sums
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int h = blockIdx.y, ch = blockIdx.x;
  const int stride = static_cast<int>(p.heads) * D;
  const int r0 = ch * static_cast<int>(p.chunk_rows);
  const int r1 = min(static_cast<int>(p.l), r0 + static_cast<int>(p.chunk_rows));
  const int ntiles = (r1 - r0 + kBn - 1) / kBn;
  const bf16* kg = p.k + h * D;
  const bf16* vg = p.v + h * D;
  LoadTile<D, kBn>(s_k0, kg, r0, r1, stride, tid);
  LoadTile<D, kBn>(s_v0, vg, r0, r1, stride, tid);
  CpAsyncCommit();

  float acc[kMt][kNt][4];
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0.f;
  float ks[kPer];  // Σ φ over this warp's rows for columns c0..c0+kPer-1
#pragma unroll
  for (int i = 0; i < kPer; ++i) ks[i] = 0.f;
  const int c0 = lane * kPer;
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr uint32_t kRowBytes = D * 2;
  const int r7 = lane & 7;
  uint32_t v_off[4], phi_off[kMt];
  PairOffsets(v_off, (((lane >> 3) & 1) * 8 + r7) * kRowBytes, r7, lane >> 4);  // B from V (.trans)
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt) {  // A = φᵀ: features 16·cp.. are chunk pair cp of the φ rows
    const int cp = warp * kMt + mt;
    phi_off[mt] = ((lane >> 4) * 8 + r7) * kRowBytes + (cp >> 2) * 128 +
                  ((((2 * (cp & 3)) | ((lane >> 3) & 1)) ^ r7) << 4);
  }

  for (int it = 0; it < ntiles; ++it) {
    const int buf = it & 1;
    if (it + 1 < ntiles) {
      const int nr = r0 + (it + 1) * kBn;
      LoadTile<D, kBn>(s_k0 + (buf ^ 1) * kTile, kg, nr, r1, stride, tid);
      LoadTile<D, kBn>(s_v0 + (buf ^ 1) * kTile, vg, nr, r1, stride, tid);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();  // tile `it` landed for every thread's copies
    const uint32_t s_k = s_k0 + buf * kTile, s_v = s_v0 + buf * kTile;
    const int trow0 = r0 + it * kBn;
    // φ rows: warp w does rows 16w..16w+15; lane holds kPer consecutive columns.
    float kraw[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) kraw[i] = 0.f;
    for (int rr = 0; rr < 16; ++rr) {
      const int r = warp * 16 + rr;
      const uint32_t off = Swz<kChunks>(r, c0 / 8) + (c0 % 8) * 2;
      float x[kPer];
      if constexpr (kPer == 4) {
        const uint2 raw = *reinterpret_cast<const uint2*>(smem + (s_k - s_base) + off);
        x[0] = LoBf16(raw.x);
        x[1] = HiBf16(raw.x);
        x[2] = LoBf16(raw.y);
        x[3] = HiBf16(raw.y);
      } else {
        const uint32_t raw = *reinterpret_cast<const uint32_t*>(smem + (s_k - s_base) + off);
        x[0] = LoBf16(raw);
        x[1] = HiBf16(raw);
      }
      float mx = x[0];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        kraw[i] += x[i];  // zero-filled tail rows add nothing
        mx = fmaxf(mx, x[i]);
      }
      mx = WarpMax(mx);
      float sum = 0.f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        x[i] = Exp2((x[i] - mx) * kLog2e);
        sum += x[i];
      }
      sum = detail::WarpSum(sum);
      const bool valid = trow0 + r < r1;  // zero-filled tail rows must not count
      const float inv = valid ? 1.f / sum : 0.f;
      uint32_t packed[kPer / 2];
#pragma unroll
      for (int i = 0; i < kPer / 2; ++i) {
        packed[i] = PackBf16(x[2 * i] * inv, x[2 * i + 1] * inv);
        ks[2 * i] += LoBf16(packed[i]);
        ks[2 * i + 1] += HiBf16(packed[i]);
      }
      if constexpr (kPer == 4) {
        *reinterpret_cast<uint2*>(smem + (s_phi - s_base) + off) = make_uint2(packed[0], packed[1]);
      } else {
        *reinterpret_cast<uint32_t*>(smem + (s_phi - s_base) + off) = packed[0];
      }
    }
    if (p.kblk != nullptr) {
#pragma unroll
      for (int i = 0; i < kPer; ++i) red[warp * D + c0 + i] = kraw[i];
    }
    __syncthreads();  // φ tile (and the per-warp k column sums) complete
    if (p.kblk != nullptr) {
      for (int c = tid; c < D; c += kThreads) {
        p.kblk[(int64_t(h) * p.nk + trow0 / kBn) * D + c] =
            red[c] + red[D + c] + red[2 * D + c] + red[3 * D + c];
      }
    }
#pragma unroll
    for (int kk = 0; kk < kBn / 16; ++kk) {
      uint32_t a[kMt][4];
#pragma unroll
      for (int mt = 0; mt < kMt; ++mt) {
        // A = φᵀ (features × tokens) from the token-major tile: transposed 8×8 loads.
        LdMatrixX4Trans(a[mt], s_phi + phi_off[mt] + kk * 16 * kRowBytes);
      }
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t b[4];
        LdMatrixX4Trans(b, s_v + PairAt(v_off, np) + kk * 16 * kRowBytes);
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt) {
          MmaBf16(acc[mt][2 * np], a[mt], b[0], b[1]);
          MmaBf16(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // buffers `buf` and φ are free for the next prefetch / tile
  }

  float* out = p.kv_part + (int64_t(h) * p.nch + ch) * D * D;
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt) {
    const int a0 = warp * kMt * 16 + mt * 16 + g;
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt) {
      const int c = nt * 8 + 2 * t4;
      *reinterpret_cast<float2*>(out + a0 * D + c) = make_float2(acc[mt][nt][0], acc[mt][nt][1]);
      *reinterpret_cast<float2*>(out + (a0 + 8) * D + c) =
          make_float2(acc[mt][nt][2], acc[mt][nt][3]);
    }
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) red[warp * D + c0 + i] = ks[i];
  __syncthreads();  // all warps' column sums are in red
  for (int c = tid; c < D; c += kThreads) {
    p.ks_part[(int64_t(h) * p.nch + ch) * D + c] =
        red[c] + red[D + c] + red[2 * D + c] + red[3 * D + c];
  }
}

// (max, Σ exp(x - max)) over D of every row of one head: the softmax feature map's statistics.
__global__ void RowStatsKernel(const bf16* x, int64_t l, int64_t heads, int d, float2* stats) {
  const int lane = threadIdx.x & 31;
  const int64_t item = int64_t(blockIdx.x) * kGenericWarps + (threadIdx.x >> 5);
  if (item >= l * heads) return;
  const int64_t h = item / l, t = item % l;
  const bf16* r = x + (t * heads + h) * d;
  float mx = -INFINITY;
  for (int c = lane; c < d; c += 32) mx = fmaxf(mx, __bfloat162float(r[c]));
  mx = WarpMax(mx);
  float s = 0.f;
  for (int c = lane; c < d; c += 32) s += expf(__bfloat162float(r[c]) - mx);
  s = detail::WarpSum(s);
  if (lane == 0) stats[h * l + t] = make_float2(mx, s);
}

// Simple partial for any D: CTA (chunk, feature a, head), thread per value column c.
__global__ void KvPartialGenericKernel(KvParams p) {
  const int64_t ch = blockIdx.x, h = blockIdx.z;
  const int a = blockIdx.y, d = p.d;
  const int64_t r0 = ch * p.chunk_rows, r1 = min(p.l, r0 + p.chunk_rows);
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float acc = 0.f, ksa = 0.f;
    for (int64_t t = r0; t < r1; ++t) {
      const float2 st = p.kstats[h * p.l + t];
      const float phi = expf(__bfloat162float(p.k[(t * p.heads + h) * d + a]) - st.x) / st.y;
      acc += phi * __bfloat162float(p.v[(t * p.heads + h) * d + c]);
      ksa += phi;
    }
    p.kv_part[((h * p.nch + ch) * d + a) * d + c] = acc;
    if (c == 0) p.ks_part[(h * p.nch + ch) * d + a] = ksa;
  }
}

struct ReduceParams {
  const float* kv_part;  // [N, nch, D, D]
  const float* ks_part;  // [N, nch, D]
  ConstBuf w;            // [D, D] proj_l weight
  bf16* m16;             // [N, D, D] M = KV·Wᵀ, bf16 (tensor-core epilogue operand)
  float* m32;            // [N, D, D] the same in fp32 (generic path)
  float* ksum;           // [N, D]
  int64_t nch;
  int d;
};

// KV[a, :] = Σ_chunks partials; M[a, r] = Σ_c KV[a, c]·W[r, c], so proj_l(o_l) = φ(q)·M / den + b.
__global__ void __launch_bounds__(256) KvReduceKernel(ReduceParams p) {
  __shared__ float rows[kReduceRows * kSlaMaxHeadDim];
  const int d = p.d;
  const int64_t h = blockIdx.y;
  const int a0 = blockIdx.x * kReduceRows;
  for (int i = threadIdx.x; i < kReduceRows * d; i += blockDim.x) {
    const int a = a0 + i / d, c = i % d;
    float s = 0.f;
    if (a < d) {
      for (int64_t ch = 0; ch < p.nch; ++ch) s += p.kv_part[((h * p.nch + ch) * d + a) * d + c];
    }
    rows[i] = s;
  }
  if (blockIdx.x == 0) {
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
      float s = 0.f;
      for (int64_t ch = 0; ch < p.nch; ++ch) s += p.ks_part[(h * p.nch + ch) * d + c];
      p.ksum[h * d + c] = s;
    }
  }
  __syncthreads();  // summed KV rows are in shared memory
  for (int i = threadIdx.x; i < kReduceRows * d; i += blockDim.x) {
    const int ar = i / d, r = i % d, a = a0 + ar;
    if (a >= d) continue;
    float s = 0.f;
    for (int c = 0; c < d; ++c) s = fmaf(rows[ar * d + c], Load(p.w, int64_t(r) * d + c), s);
    p.m32[(h * d + a) * d + r] = s;
    p.m16[(h * d + a) * d + r] = __float2bfloat16_rn(s);
  }
}

}  // namespace

namespace sla_plan {

cudaError_t LaunchLinear(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                         cudaStream_t stream) {
  KvParams kp;
  kp.k = static_cast<const bf16*>(a.k);
  kp.v = static_cast<const bf16*>(a.v);
  kp.kstats = reinterpret_cast<const float2*>(ws + pl.kstats);
  kp.kv_part = reinterpret_cast<float*>(ws + pl.kv_part);
  kp.ks_part = reinterpret_cast<float*>(ws + pl.ks_part);
  kp.kblk = pl.kblk_in_kv ? reinterpret_cast<float*>(ws + pl.kblk) : nullptr;
  kp.l = a.l;
  kp.heads = a.heads;
  kp.chunk_rows = pl.chunk_rows;
  kp.nch = pl.nch;
  kp.nk = pl.nk;
  kp.d = a.d;
  const dim3 grid(static_cast<unsigned>(pl.nch), static_cast<unsigned>(a.heads));
  if (pl.fast_kv && a.d == 128) {
    if (cudaError_t e = SetSmem(KvPartialKernel<128>, KvSmemBytes(128)); e != cudaSuccess) return e;
    KvPartialKernel<128><<<grid, kThreads, KvSmemBytes(128), stream>>>(kp);
  } else if (pl.fast_kv && a.d == 64) {
    if (cudaError_t e = SetSmem(KvPartialKernel<64>, KvSmemBytes(64)); e != cudaSuccess) return e;
    KvPartialKernel<64><<<grid, kThreads, KvSmemBytes(64), stream>>>(kp);
  } else {
    const int64_t items = a.l * a.heads;
    RowStatsKernel<<<static_cast<unsigned>((items + kGenericWarps - 1) / kGenericWarps),
                     kGenericWarps * 32, 0, stream>>>(kp.k, a.l, a.heads, a.d,
                                                      reinterpret_cast<float2*>(ws + pl.kstats));
    const dim3 gg(static_cast<unsigned>(pl.nch), static_cast<unsigned>(a.d),
                  static_cast<unsigned>(a.heads));
    KvPartialGenericKernel<<<gg, 128, 0, stream>>>(kp);
  }
  if (cudaError_t e = timer.Mark(kSlaKvPartial); e != cudaSuccess) return e;
  ReduceParams rp{kp.kv_part,
                  kp.ks_part,
                  a.proj_w,
                  reinterpret_cast<bf16*>(ws + pl.m16),
                  reinterpret_cast<float*>(ws + pl.m32),
                  reinterpret_cast<float*>(ws + pl.ksum),
                  pl.nch,
                  a.d};
  const dim3 gr(static_cast<unsigned>((a.d + kReduceRows - 1) / kReduceRows),
                static_cast<unsigned>(a.heads));
  KvReduceKernel<<<gr, 256, 0, stream>>>(rp);
  if (cudaError_t e = timer.Mark(kSlaKvReduce); e != cudaSuccess) return e;
  return cudaGetLastError();
}

}  // namespace sla_plan
}  // namespace turbovid::kernels
