// SageSLA's sparse branch on the GPU (docs/model-math.md §10; the CPU reference is
// engine/cpu/sagesla_ops.cc): the quantisers (q and smoothed k to int8 per block, V to FP8 e4m3 per
// channel, with upstream's approximate division and reciprocal) and the block-sparse attention
// kernel on mma.sync (int8 Q·Kᵀ with s32 accumulators, P in e4m3, P·V on e4m3 tensor-core
// instructions with fp32 or fp16 accumulators as the variant's upstream build). The portable
// kernel runs on sm_89 and later (H100, RTX 4090/5090); on an sm_90a device the H100 variant at
// D 128 runs its attention on wgmma instead (sagesla_sm90.cu: the same softmax, the same P codes).
// Block map and linear branch are SLA's.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/device_util.cuh"
#include "kernels/ptx.cuh"
#include "kernels/sla.h"
#include "kernels/sla_plan.cuh"
#include "kernels/sla_tiles.cuh"

namespace turbovid::kernels {
namespace {

using bf16 = __nv_bfloat16;
using detail::Load;
using namespace sla_plan;  // NOLINT(build/namespaces): the plan's constants

constexpr float kMasked = -5000000.f;  // scores of keys past L in the last block (as upstream)
constexpr float kPOffset = 8.807f;     // exp2 offset: the largest P is ≈ 448, e4m3's top
constexpr float kVScaleMax = 2.25f;    // |v / v_scale| ≤ 2.25

// The GPU's approximate instructions upstream's fast-math build emits.
__device__ __forceinline__ float DivFull(float a, float b) {
  float y;
  asm("div.full.f32 %0, %1, %2;\n" : "=f"(y) : "f"(a), "f"(b));
  return y;
}
__device__ __forceinline__ float RcpApprox(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
// (lo, hi) → two e4m3 bytes, round to nearest, saturating; lo in the low byte.
__device__ __forceinline__ uint32_t PackE4m3(float lo, float hi) {
  uint16_t r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(r) : "f"(hi), "f"(lo));
  return r;
}

// int8 code of x in a block of `scale` (docs/model-math.md §10.2): x/scale with upstream's
// division, ± 0.5, truncated, saturated; NaN → 0.
__device__ __forceinline__ int8_t Int8Code(float x, float scale) {
  float y = DivFull(x, scale);
  if (isnan(y)) return 0;
  y = __fadd_rn(y, y >= 0.f ? 0.5f : -0.5f);
  y = truncf(y);
  return static_cast<int8_t>(fminf(fmaxf(y, -128.f), 127.f));
}

// Position p (0..31) of a 32-key chunk of the transposed V tile holds key KeyAt(p): the keys the
// P·V A-fragment of lane quad-index t carries in its bytes 4t..4t+3 are the score columns it
// holds, 2t, 2t + 1, 8 + 2t, 9 + 2t (and 16 more for bytes 16 + 4t..).
__device__ __forceinline__ int KeyAt(int p) {
  const int half = p & 16, q = p & 15, t = q >> 2, i = q & 3;
  return half + 2 * t + (i & 1) + ((i & 2) << 2);
}

struct QuantParams {
  const bf16* x;       // [L, N, D] q or k
  const float* kmean;  // [N, D] k's smoothing mean (bf16 values), or null for q
  int8_t* codes;       // [L, N, D]
  float* scale;        // [N, nb]
  int64_t l, heads, nb;
  int block;
};

// One CTA per (block, head): the block's amax, its scale, then the codes. For k the smoothing mean
// (bf16 of the fp32 mean over tokens, FinishStatsKernel) is subtracted first, in bf16 as
// upstream's Triton kernel. Each thread owns 8 consecutive channels (one 16-byte load per row);
// the max is exact in any order and every code is elementwise, so the layout changes no bit.
template <int D>
__global__ void __launch_bounds__(256) QuantBlockKernel(QuantParams p) {
  constexpr int kPerRow = D / 8, kRowStep = 256 / kPerRow;
  __shared__ float s_red[8];
  const int64_t b = blockIdx.x, h = blockIdx.y;
  const int c0 = (threadIdx.x % kPerRow) * 8, r = threadIdx.x / kPerRow;
  float mean[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) mean[j] = p.kmean != nullptr ? p.kmean[h * D + c0 + j] : 0.f;
  const int64_t r0 = b * p.block, rows = min(int64_t(p.block), p.l - r0);
  auto load = [&](int64_t row, float(&x)[8]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p.x + ((r0 + row) * p.heads + h) * D + c0);
    const bf16* v = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      x[j] = __bfloat162float(v[j]);
      if (p.kmean != nullptr)
        x[j] = __bfloat162float(__float2bfloat16_rn(__fsub_rn(x[j], mean[j])));
    }
  };
  float amax = 0.f;
  for (int64_t row = r; row < rows; row += kRowStep) {
    float x[8];
    load(row, x);
#pragma unroll
    for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(x[j]));
  }
  amax = ptx::WarpMax(amax);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) s_red[warp] = amax;
  __syncthreads();
  if (warp == 0) {
    float m = lane < 8 ? s_red[lane] : 0.f;
    m = ptx::WarpMax(m);
    if (lane == 0) s_red[0] = m;
  }
  __syncthreads();
  // amax/127 + 1e-7 as the compiled Triton kernel: fma with the rounded reciprocal of 127.
  const float scale = __fmaf_rn(s_red[0], 1.f / 127.f, 1e-7f);
  if (threadIdx.x == 0) p.scale[h * p.nb + b] = scale;
  for (int64_t row = r; row < rows; row += kRowStep) {
    float x[8];
    load(row, x);
    uint32_t w[2] = {0u, 0u};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      w[j >> 2] |= uint32_t(uint8_t(Int8Code(x[j], scale))) << (8 * (j & 3));
    }
    *reinterpret_cast<uint2*>(p.codes + ((r0 + row) * p.heads + h) * D + c0) =
        make_uint2(w[0], w[1]);
  }
}

// One CTA per head, one thread per channel, after StatsKernel: k's smoothing mean (fp64 sum of the
// chunks' sums in chunk order, over L, to fp32, to bf16), V's per-channel amax, its scale amax/2.25
// and its code factor fl(2.25·rcp.approx(amax)) — once per head instead of in every quantiser CTA.
__global__ void FinishStatsKernel(const double* ksum, const float* vmax, int64_t l, int d,
                                  int64_t nst, float* kmean, float* v_factor, float* v_scale,
                                  float* mean_probe) {
  const int64_t h = blockIdx.x;
  const int c = threadIdx.x;
  if (c >= d) return;
  double s = 0;
  float amax = 0.f;
  for (int64_t i = 0; i < nst; ++i) {
    s += ksum[(h * nst + i) * d + c];
    amax = fmaxf(amax, vmax[(h * nst + i) * d + c]);
  }
  const float mean =
      __bfloat162float(__float2bfloat16_rn(static_cast<float>(s / static_cast<double>(l))));
  kmean[h * d + c] = mean;
  if (mean_probe != nullptr) mean_probe[h * d + c] = mean;
  v_factor[h * d + c] = __fmul_rn(kVScaleMax, RcpApprox(amax));
  v_scale[h * d + c] = __fmul_rn(amax, 1.f / kVScaleMax);
}

// Per chunk of kSageStatRows tokens and head: Σ k per channel (fp64, for the smoothing mean)
// and max |v| per channel. Fixed summation order: deterministic.
__global__ void __launch_bounds__(256)
    StatsKernel(const bf16* k, const bf16* v, int64_t l, int64_t heads, int d, int64_t nst,
                double* ksum, float* vmax) {
  __shared__ double s_sum[256];
  __shared__ float s_max[256];
  const int64_t ch = blockIdx.x, h = blockIdx.y;
  const int groups = static_cast<int>(blockDim.x) / d, c = threadIdx.x % d, g = threadIdx.x / d;
  double s = 0;
  float m = 0.f;
  if (g < groups) {
    const int64_t end = min(l, (ch + 1) * kSageStatRows);
    for (int64_t t = ch * kSageStatRows + g; t < end; t += groups) {
      const int64_t at = (t * heads + h) * d + c;
      s += static_cast<double>(__bfloat162float(k[at]));
      m = fmaxf(m, fabsf(__bfloat162float(v[at])));
    }
  }
  s_sum[threadIdx.x] = s;
  s_max[threadIdx.x] = m;
  __syncthreads();
  if (threadIdx.x < d) {
    for (int i = 1; i < groups; ++i) {
      s += s_sum[i * d + threadIdx.x];
      m = fmaxf(m, s_max[i * d + threadIdx.x]);
    }
    ksum[(h * nst + ch) * d + threadIdx.x] = s;
    vmax[(h * nst + ch) * d + threadIdx.x] = m;
  }
}

// One CTA per (32-key chunk, head), one thread per channel: the e4m3 codes of v·fl(2.25·rcp(amax))
// (the factor from FinishStatsKernel) into the transposed, permuted tile layout [N, D, lpad] the
// attention kernels read, and the token-order probe.
__global__ void QuantVKernel(const bf16* v, const float* v_factor, int64_t l, int64_t heads, int d,
                             int64_t lpad, uint8_t* v8t, uint8_t* v_probe) {
  const int64_t chunk = blockIdx.x, h = blockIdx.y;
  const int c = threadIdx.x;
  if (c >= d) return;
  const float factor = v_factor[h * d + c];
  uint32_t words[8];
#pragma unroll
  for (int w = 0; w < 8; ++w) {
    uint32_t word = 0;
#pragma unroll
    for (int i = 0; i < 4; i += 2) {
      const int64_t k0 = chunk * 32 + KeyAt(4 * w + i), k1 = chunk * 32 + KeyAt(4 * w + i + 1);
      const float x0 =
          k0 < l ? __fmul_rn(__bfloat162float(v[(k0 * heads + h) * d + c]), factor) : 0.f;
      const float x1 =
          k1 < l ? __fmul_rn(__bfloat162float(v[(k1 * heads + h) * d + c]), factor) : 0.f;
      const uint32_t pair = PackE4m3(x0, x1);
      word |= pair << (8 * i);
      if (v_probe != nullptr) {
        if (k0 < l) v_probe[(k0 * heads + h) * d + c] = static_cast<uint8_t>(pair & 0xFF);
        if (k1 < l) v_probe[(k1 * heads + h) * d + c] = static_cast<uint8_t>(pair >> 8);
      }
    }
    words[w] = word;
  }
  uint4* dst = reinterpret_cast<uint4*>(v8t + (h * d + c) * lpad + chunk * 32);
  dst[0] = make_uint4(words[0], words[1], words[2], words[3]);
  dst[1] = make_uint4(words[4], words[5], words[6], words[7]);
}

__device__ __forceinline__ void MmaS8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                      uint32_t b1) {
  ptx::MmaS8(d, a, b0, b1);
}
// d (16×8 fp32) = a (16×32 e4m3) · b (32×8 e4m3) + c.
__device__ __forceinline__ void MmaE4m3F32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                           uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// The same with fp16 accumulators (two f16x2 registers: row g, row g + 8).
__device__ __forceinline__ void MmaE4m3F16(uint32_t (&d)[2], const uint32_t (&a)[4], uint32_t b0,
                                           uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f16.e4m3.e4m3.f16 {%0, %1}, {%2, %3, %4, %5}, "
      "{%6, %7}, {%0, %1};\n"
      : "+r"(d[0]), "+r"(d[1])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

using AttnParams = SageAttnArgs;  // sla_plan.cuh

// One CTA per (query block, head); warp w owns rows 16w..16w+15 of the block (one m16 tile). Per
// selected key block: K codes [BK, D] and V codes [D, BK] into shared memory, S = Q·Kᵀ in s32,
// the online softmax in the log2 domain as upstream's kernel (scores scaled by the dequantisation,
// P = 2^(s − m + 8.807) rounded to e4m3, row-sum partials per lane), the block's P·V on e4m3
// tensor cores from zero, added to the fp32 output. kF16: fp16 accumulators (the sm_89 build),
// whose last two blocks fold the dequantisation into the scores (sm_90: the last block).
template <int D, int BQ, int BK, bool kF16>
__global__ void __launch_bounds__(BQ * 2) SageAttnKernel(AttnParams p) {
  constexpr int kKs = D + 16, kVs = BK + 16;  // padded shared rows: conflict-free fragment reads
  constexpr int kNt = BK / 8, kKc = D / 32, kPc = BK / 32, kDt = D / 8;
  __shared__ __align__(16) uint8_t s_k[BK * kKs];
  __shared__ __align__(16) uint8_t s_v[D * kVs];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t qb = blockIdx.x, h = blockIdx.y;
  const int64_t row0 = qb * BQ + warp * 16 + g, row1 = row0 + 8;
  const int64_t stride = p.heads * D;
  bf16* os = static_cast<bf16*>(p.os);
  uint32_t qa[kKc][4];
#pragma unroll
  for (int kc = 0; kc < kKc; ++kc) {
    const int8_t* r0 = p.q8 + row0 * stride + h * D + kc * 32 + 4 * t;
    const int8_t* r1 = p.q8 + row1 * stride + h * D + kc * 32 + 4 * t;
    qa[kc][0] = row0 < p.l ? *reinterpret_cast<const uint32_t*>(r0) : 0u;
    qa[kc][1] = row1 < p.l ? *reinterpret_cast<const uint32_t*>(r1) : 0u;
    qa[kc][2] = row0 < p.l ? *reinterpret_cast<const uint32_t*>(r0 + 16) : 0u;
    qa[kc][3] = row1 < p.l ? *reinterpret_cast<const uint32_t*>(r1 + 16) : 0u;
  }
  const float q_scale = p.q_scale[h * p.nq + qb];
  float o[kDt][4];
#pragma unroll
  for (int i = 0; i < kDt; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m0 = kMasked, m1 = kMasked;  // running max of rows g and g + 8 (scaled, log2 domain)
  float d0 = 1.f, d1 = 1.f;          // this lane's row-sum partials (the first rescale zeroes them)
  const int* lut = p.lut + (h * p.nq + qb) * p.ksel;
  for (int it = 0; it < p.ksel; ++it) {
    const int64_t blk = lut[it];
    const bool last = it == p.ksel - 1;
    const bool late = kF16 ? it >= p.ksel - 2 : last;
    __syncthreads();  // the previous block's tiles are no longer read
    for (int i = tid; i < BK * D / 16; i += BQ * 2) {
      const int r = i / (D / 16), cch = i % (D / 16);
      const int64_t key = blk * BK + r;
      uint4 val = make_uint4(0, 0, 0, 0);
      if (key < p.l) val = *reinterpret_cast<const uint4*>(p.k8 + key * stride + h * D + cch * 16);
      *reinterpret_cast<uint4*>(s_k + r * kKs + cch * 16) = val;
    }
    for (int i = tid; i < D * BK / 16; i += BQ * 2) {
      const int c = i / (BK / 16), cch = i % (BK / 16);
      *reinterpret_cast<uint4*>(s_v + c * kVs + cch * 16) =
          *reinterpret_cast<const uint4*>(p.v8t + (h * D + c) * p.lpad + blk * BK + cch * 16);
    }
    __syncthreads();
    float sc[kNt][4];
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
      int acc[4] = {0, 0, 0, 0};
      const uint8_t* kr = s_k + (j * 8 + g) * kKs + 4 * t;
#pragma unroll
      for (int kc = 0; kc < kKc; ++kc) {
        MmaS8(acc, qa[kc], *reinterpret_cast<const uint32_t*>(kr + kc * 32),
              *reinterpret_cast<const uint32_t*>(kr + kc * 32 + 16));
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) sc[j][i] = static_cast<float>(acc[i]);  // |dot| < 2^24: exact
    }
    const float dequant = __fmul_rn(q_scale, p.k_scale[h * p.nk + blk]);
    const float scale = late ? p.qk_scale : __fmul_rn(p.qk_scale, dequant);
    float mx0 = kMasked, mx1 = kMasked;
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        if (late) sc[j][i] = __fmul_rn(sc[j][i], dequant);
        const int64_t key = blk * BK + j * 8 + 2 * t + (i & 1);
        if (last && key >= p.l) sc[j][i] = kMasked;
      }
      mx0 = fmaxf(mx0, fmaxf(sc[j][0], sc[j][1]));
      mx1 = fmaxf(mx1, fmaxf(sc[j][2], sc[j][3]));
    }
    mx0 = ptx::QuadMax(mx0);
    mx1 = ptx::QuadMax(mx1);
    const float mn0 = fmaxf(m0, __fmul_rn(mx0, scale)), mn1 = fmaxf(m1, __fmul_rn(mx1, scale));
    const float r0 = ptx::Exp2(__fsub_rn(m0, mn0)), r1 = ptx::Exp2(__fsub_rn(m1, mn1));
    m0 = mn0;
    m1 = mn1;
    d0 = __fmul_rn(d0, r0);
    d1 = __fmul_rn(d1, r1);
#pragma unroll
    for (int i = 0; i < kDt; ++i) {
      o[i][0] = __fmul_rn(o[i][0], r0);
      o[i][1] = __fmul_rn(o[i][1], r0);
      o[i][2] = __fmul_rn(o[i][2], r1);
      o[i][3] = __fmul_rn(o[i][3], r1);
    }
    const float nm0 = __fadd_rn(-mn0, kPOffset), nm1 = __fadd_rn(-mn1, kPOffset);
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
      sc[j][0] = ptx::Exp2(__fmaf_rn(sc[j][0], scale, nm0));
      sc[j][1] = ptx::Exp2(__fmaf_rn(sc[j][1], scale, nm0));
      sc[j][2] = ptx::Exp2(__fmaf_rn(sc[j][2], scale, nm1));
      sc[j][3] = ptx::Exp2(__fmaf_rn(sc[j][3], scale, nm1));
    }
    // Row-sum partials per 16-key tile, in upstream's order: ((p0 + p1) + p8) + p9.
#pragma unroll
    for (int f = 0; f < kNt / 2; ++f) {
      d0 = __fadd_rn(d0,
                     __fadd_rn(__fadd_rn(__fadd_rn(sc[2 * f][0], sc[2 * f][1]), sc[2 * f + 1][0]),
                               sc[2 * f + 1][1]));
      d1 = __fadd_rn(d1,
                     __fadd_rn(__fadd_rn(__fadd_rn(sc[2 * f][2], sc[2 * f][3]), sc[2 * f + 1][2]),
                               sc[2 * f + 1][3]));
    }
    uint32_t pa[kPc][4];
#pragma unroll
    for (int c = 0; c < kPc; ++c) {
      const int a = 4 * c;
      pa[c][0] = PackE4m3(sc[a][0], sc[a][1]) | (PackE4m3(sc[a + 1][0], sc[a + 1][1]) << 16);
      pa[c][1] = PackE4m3(sc[a][2], sc[a][3]) | (PackE4m3(sc[a + 1][2], sc[a + 1][3]) << 16);
      pa[c][2] =
          PackE4m3(sc[a + 2][0], sc[a + 2][1]) | (PackE4m3(sc[a + 3][0], sc[a + 3][1]) << 16);
      pa[c][3] =
          PackE4m3(sc[a + 2][2], sc[a + 2][3]) | (PackE4m3(sc[a + 3][2], sc[a + 3][3]) << 16);
    }
#pragma unroll
    for (int nt = 0; nt < kDt; ++nt) {
      const uint8_t* vr = s_v + (nt * 8 + g) * kVs + 4 * t;
      if constexpr (kF16) {
        uint32_t acc[2] = {0u, 0u};
#pragma unroll
        for (int c = 0; c < kPc; ++c) {
          MmaE4m3F16(acc, pa[c], *reinterpret_cast<const uint32_t*>(vr + c * 32),
                     *reinterpret_cast<const uint32_t*>(vr + c * 32 + 16));
        }
        const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&acc[0]));
        const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&acc[1]));
        o[nt][0] = __fadd_rn(o[nt][0], lo.x);
        o[nt][1] = __fadd_rn(o[nt][1], lo.y);
        o[nt][2] = __fadd_rn(o[nt][2], hi.x);
        o[nt][3] = __fadd_rn(o[nt][3], hi.y);
      } else {
        float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int c = 0; c < kPc; ++c) {
          MmaE4m3F32(acc, pa[c], *reinterpret_cast<const uint32_t*>(vr + c * 32),
                     *reinterpret_cast<const uint32_t*>(vr + c * 32 + 16));
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) o[nt][i] = __fadd_rn(o[nt][i], acc[i]);
      }
    }
  }
  // Row sums: the four partials of a row, (d0 + d1) + (d2 + d3) in quad-index order.
  auto row_sum = [&](float part) {
    const int base = lane & ~3;
    const float a = __shfl_sync(0xffffffffu, part, base),
                b = __shfl_sync(0xffffffffu, part, base + 1);
    const float c = __shfl_sync(0xffffffffu, part, base + 2),
                e = __shfl_sync(0xffffffffu, part, base + 3);
    return __fadd_rn(__fadd_rn(a, b), __fadd_rn(c, e));
  };
  const float rs0 = RcpApprox(row_sum(d0)), rs1 = RcpApprox(row_sum(d1));
  const float* vs = p.v_scale + h * D;
#pragma unroll
  for (int nt = 0; nt < kDt; ++nt) {
    const int c = nt * 8 + 2 * t;
    const float s0 = vs[c], s1 = vs[c + 1];
    if (row0 < p.l) {
      const float a = p.ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][0], rs0), s0) : 0.f;
      const float b = p.ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][1], rs0), s1) : 0.f;
      *reinterpret_cast<__nv_bfloat162*>(os + row0 * stride + h * D + c) =
          __floats2bfloat162_rn(a, b);
    }
    if (row1 < p.l) {
      const float a = p.ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][2], rs1), s0) : 0.f;
      const float b = p.ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][3], rs1), s1) : 0.f;
      *reinterpret_cast<__nv_bfloat162*>(os + row1 * stride + h * D + c) =
          __floats2bfloat162_rn(a, b);
    }
  }
}

struct LinearOutParams {
  const bf16* q;      // [L, N, D]
  const bf16* os;     // [L, N, D] o_s
  const float* m32;   // [N, D, D] KV·proj_lᵀ
  const float* ksum;  // [N, D]
  ConstBuf bias;      // [D]
  bf16* out;          // [L, N, D]
  int64_t l, heads;
  int d;
};

// out = bf16(o_s + φ(q)·M / (φ(q)·ksum + 1e-5·Σφ) + b), one warp per (token, head); φ = softmax
// over the head's channels (SLA's feature map, as the SLA kernels' epilogue).
constexpr int kLinWarps = 8;
__global__ void __launch_bounds__(kLinWarps * 32) LinearOutKernel(LinearOutParams p) {
  constexpr int kPer = kSlaMaxHeadDim / 32;
  __shared__ float s_e[kLinWarps][kSlaMaxHeadDim];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t item = int64_t(blockIdx.x) * kLinWarps + w;
  if (item >= p.l * p.heads) return;  // whole warps exit together
  const int64_t t = item / p.heads, h = item % p.heads;
  const int d = p.d;
  float q[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = lane + 32 * i;
    q[i] = c < d ? __bfloat162float(p.q[(t * p.heads + h) * d + c]) : 0.f;
  }
  const float rden = sla_tiles::FeatureRow(q, d, lane, p.ksum + h * d, s_e[w]);
  const float* m32 = p.m32 + h * d * d;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int r = lane + 32 * i;
    if (r >= d) continue;
    const float lin = sla_tiles::LinearAt(s_e[w], m32, d, r);
    const int64_t at = (t * p.heads + h) * d + r;
    p.out[at] = __float2bfloat16_rn(__bfloat162float(p.os[at]) + lin * rden + Load(p.bias, r));
  }
}

struct LinearOutMmaParams {
  const bf16* q;      // [L, N, D]
  const bf16* os;     // [L, N, D] o_s
  const bf16* m16;    // [N, D, D] KV·proj_lᵀ in bf16
  const float* ksum;  // [N, D]
  ConstBuf bias;      // [D]
  bf16* out;          // [L, N, D]
  int64_t l, heads;
};

// The same output on tensor cores, with bf16 SLA's own epilogue (sla_tiles::LinearEpilogue, as
// SparseAttnKernel ends): CTA per (128 query rows, head), warp w rows 32w..32w+31 as two m16 tiles.
// o_s comes back from global memory (bf16, as the sparse kernel stored it) into the mma
// accumulator layout; then out = (o_s·den + φ(q)·M) / den + b. Shared memory as the sparse
// kernel's: Q tile, M over the first two K buffers, staging over the V buffers, ksum and bias.
template <int D>
__global__ void __launch_bounds__(kThreads) LinearOutMmaKernel(LinearOutMmaParams p) {
  constexpr int kTileQ = kBm * D * 2, kTileKv = kBn * D * 2, kDt = D / 8;
  constexpr uint32_t kRowBytes = D * 2;
  static_assert(2 * kTileKv >= D * D * 2 && 2 * kTileKv >= 4 * 32 * D * 2, "shared buffers");
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t s_base = sla_tiles::SmemAddr(smem);
  const uint32_t s_q = s_base, s_m = s_base + kTileQ;
  float* s_vec = reinterpret_cast<float*>(smem + kTileQ + 4 * kTileKv);  // ksum [D], bias [D]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3, r7 = lane & 7;
  const int h = blockIdx.y;
  const int stride = static_cast<int>(p.heads) * D;
  const int q0 = blockIdx.x * kBm, l = static_cast<int>(p.l);
  uint32_t q_off[4];
  sla_tiles::PairOffsets(q_off, (warp * 32 + (lane & 15)) * kRowBytes, r7, lane >> 4);
  sla_tiles::LoadTile<D, kBm>(s_q, p.q + h * D, q0, l, stride, tid);
  sla_tiles::LoadM<D, kThreads>(s_m, p.m16 + int64_t(h) * D * D, tid);
  sla_tiles::CpAsyncCommit();
  for (int c = tid; c < D; c += kThreads) {
    s_vec[c] = p.ksum[h * D + c];
    s_vec[D + c] = Load(p.bias, c);
  }
  const int row0 = q0 + warp * 32;
  float o[2][kDt][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
    const int r = row0 + mt * 16 + g;
    const bf16* lo = p.os + int64_t(r) * stride + h * D + 2 * t4;
    const bf16* hi = lo + int64_t(8) * stride;
#pragma unroll
    for (int dt = 0; dt < kDt; ++dt) {
      float2 a = make_float2(0.f, 0.f), b = make_float2(0.f, 0.f);
      if (r < l) a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(lo + dt * 8));
      if (r + 8 < l) b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(hi + dt * 8));
      o[mt][dt][0] = a.x;
      o[mt][dt][1] = a.y;
      o[mt][dt][2] = b.x;
      o[mt][dt][3] = b.y;
    }
  }
  sla_tiles::CpAsyncWait<0>();
  __syncthreads();  // Q, M_h, ksum and bias are in shared memory
  uint8_t* stage = smem + kTileQ + 2 * kTileKv + warp * (32 * D * 2);
  sla_tiles::LinearEpilogue<D, 2, 128, kRowBytes>(o, q_off, s_q, s_m, s_vec, stage, p.out + h * D,
                                                  row0, l, stride, lane);
}

template <int D>
cudaError_t LaunchLinearOutMma(const LinearOutMmaParams& lp, cudaStream_t stream) {
  if (cudaError_t e = SetSmem(LinearOutMmaKernel<D>, SparseSmemBytes(D)); e != cudaSuccess)
    return e;
  const dim3 grid(static_cast<unsigned>((lp.l + kBm - 1) / kBm), static_cast<unsigned>(lp.heads));
  LinearOutMmaKernel<D><<<grid, kThreads, SparseSmemBytes(D), stream>>>(lp);
  return cudaGetLastError();
}

template <int D, int BQ, int BK, bool kF16>
cudaError_t LaunchAttn(const AttnParams& ap, dim3 grid, cudaStream_t stream) {
  SageAttnKernel<D, BQ, BK, kF16><<<grid, BQ * 2, 0, stream>>>(ap);
  return cudaGetLastError();
}

}  // namespace

namespace sla_plan {

cudaError_t LaunchSageSparse(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                             cudaStream_t stream) {
  const int d = a.d;
  const unsigned heads = static_cast<unsigned>(a.heads);
  int8_t* q8 = reinterpret_cast<int8_t*>(ws + pl.sq8);
  int8_t* k8 = reinterpret_cast<int8_t*>(ws + pl.sk8);
  uint8_t* v8t = ws + pl.sv8;
  float* q_scale = reinterpret_cast<float*>(ws + pl.sqs);
  float* k_scale = reinterpret_cast<float*>(ws + pl.sks);
  float* v_scale = reinterpret_cast<float*>(ws + pl.svs);
  double* ksum = reinterpret_cast<double*>(ws + pl.sksum);
  float* vmax = reinterpret_cast<float*>(ws + pl.svmax);
  bf16* os = a.sparse_out != nullptr ? static_cast<bf16*>(a.sparse_out)
                                     : reinterpret_cast<bf16*>(ws + pl.sos);
  const bf16* q = static_cast<const bf16*>(a.q);
  const bf16* k = static_cast<const bf16*>(a.k);
  const bf16* v = static_cast<const bf16*>(a.v);
  float* kmean = reinterpret_cast<float*>(ws + pl.skmean);
  float* v_factor = reinterpret_cast<float*>(ws + pl.svfac);
  StatsKernel<<<dim3(static_cast<unsigned>(pl.nst), heads), 256, 0, stream>>>(k, v, a.l, a.heads, d,
                                                                              pl.nst, ksum, vmax);
  FinishStatsKernel<<<heads, d, 0, stream>>>(ksum, vmax, a.l, d, pl.nst, kmean, v_factor, v_scale,
                                             a.sage_probes.k_mean);
  const QuantParams qp{q, nullptr, q8, q_scale, a.l, a.heads, pl.nq, a.block_q};
  const QuantParams kp{k, kmean, k8, k_scale, a.l, a.heads, pl.nk, a.block_k};
  const dim3 qgrid(static_cast<unsigned>(pl.nq), heads), kgrid(static_cast<unsigned>(pl.nk), heads);
  if (d == 128) {
    QuantBlockKernel<128><<<qgrid, 256, 0, stream>>>(qp);
    QuantBlockKernel<128><<<kgrid, 256, 0, stream>>>(kp);
  } else {
    QuantBlockKernel<64><<<qgrid, 256, 0, stream>>>(qp);
    QuantBlockKernel<64><<<kgrid, 256, 0, stream>>>(kp);
  }
  QuantVKernel<<<dim3(static_cast<unsigned>(pl.lpad / 32), heads), d, 0, stream>>>(
      v, v_factor, a.l, a.heads, d, pl.lpad, v8t, a.sage_probes.v_fp8);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  if (cudaError_t e = timer.Mark(kSlaSageQuant); e != cudaSuccess) return e;

  AttnParams ap{
      q8,
      k8,
      v8t,
      q_scale,
      k_scale,
      v_scale,
      reinterpret_cast<const int*>(ws + pl.lut),
      os,
      a.l,
      a.heads,
      pl.nq,
      pl.nk,
      pl.lpad,
      a.ksel,
      static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))) * 1.44269504088896340736f};
  const dim3 grid(static_cast<unsigned>(pl.nq), heads);
  cudaError_t e = cudaErrorInvalidValue;
  if (pl.sage_wgmma) {
    e = LaunchSageAttnWgmma(ap, stream);  // sagesla_sm90.cu: the same numerics on wgmma
  } else if (a.sage == SageNumerics::kSm90) {
    e = d == 128 ? LaunchAttn<128, 64, 128, false>(ap, grid, stream)
                 : LaunchAttn<64, 64, 128, false>(ap, grid, stream);
  } else if (a.sage == SageNumerics::kSm89) {
    e = d == 128 ? LaunchAttn<128, 128, 64, true>(ap, grid, stream)
                 : LaunchAttn<64, 128, 64, true>(ap, grid, stream);
  }
  if (e != cudaSuccess) return e;
  if (cudaError_t e2 = timer.Mark(kSlaSparse); e2 != cudaSuccess) return e2;

  // Tensor cores for the model's head sizes (the 32-bit offsets of LoadTile need L·N·D < 2^31).
  const bool mma_out =
      !a.sage_linear_simple && (d == 64 || d == 128) && a.l * a.heads * d < (int64_t{1} << 31) &&
      reinterpret_cast<uintptr_t>(q) % 16 == 0 && reinterpret_cast<uintptr_t>(a.out) % 16 == 0;
  if (mma_out) {
    const LinearOutMmaParams mp{q,
                                os,
                                reinterpret_cast<const bf16*>(ws + pl.m16),
                                reinterpret_cast<const float*>(ws + pl.ksum),
                                a.proj_b,
                                static_cast<bf16*>(a.out),
                                a.l,
                                a.heads};
    const cudaError_t em =
        d == 128 ? LaunchLinearOutMma<128>(mp, stream) : LaunchLinearOutMma<64>(mp, stream);
    if (em != cudaSuccess) return em;
    if (cudaError_t e4 = timer.Mark(kSlaSageLinearOut); e4 != cudaSuccess) return e4;
  }
  LinearOutParams lp{q,
                     os,
                     reinterpret_cast<const float*>(ws + pl.m32),
                     reinterpret_cast<const float*>(ws + pl.ksum),
                     a.proj_b,
                     static_cast<bf16*>(a.out),
                     a.l,
                     a.heads,
                     d};
  const int64_t items = a.l * a.heads;
  if (!mma_out) {
    LinearOutKernel<<<static_cast<unsigned>((items + kLinWarps - 1) / kLinWarps), kLinWarps * 32, 0,
                      stream>>>(lp);
    if (cudaError_t e3 = cudaGetLastError(); e3 != cudaSuccess) return e3;
    if (cudaError_t e4 = timer.Mark(kSlaSageLinearOut); e4 != cudaSuccess) return e4;
  }
  // Probes in the op's layouts: the codes are already [L, N, D]; scales are [N, blocks or D].
  const size_t lnd = size_t(a.l) * heads * d;
  const struct {
    void* dst;
    const void* src;
    size_t bytes;
  } copies[] = {{a.sage_probes.q_int8, q8, lnd},
                {a.sage_probes.k_int8, k8, lnd},
                {a.sage_probes.q_scale, q_scale, size_t(heads) * pl.nq * 4},
                {a.sage_probes.k_scale, k_scale, size_t(heads) * pl.nk * 4},
                {a.sage_probes.v_scale, v_scale, size_t(heads) * d * 4}};
  for (const auto& c : copies) {
    if (c.dst == nullptr) continue;
    if (cudaError_t e5 = cudaMemcpyAsync(c.dst, c.src, c.bytes, cudaMemcpyDeviceToDevice, stream);
        e5 != cudaSuccess) {
      return e5;
    }
  }
  return cudaSuccess;
}

}  // namespace sla_plan
}  // namespace turbovid::kernels
