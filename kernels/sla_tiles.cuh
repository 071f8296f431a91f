// Device helpers shared by the SLA kernels (sla_linear.cu, sla_block_map.cu, sla_sparse.cu and the
// sm_90a sla_sm90.cu, sla_wgmma_sm90.cu): swizzled tiles and their loads, the sparse kernels'
// arguments, and the epilogue that adds the linear branch to the sparse output.
// Internal to the SLA kernels; not part of the launch API (kernels/sla.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

#include "kernels/device_util.cuh"
#include "kernels/kernel_types.h"
#include "kernels/ptx.cuh"
#include "kernels/sla_plan.cuh"

namespace turbovid::kernels::sla_tiles {

using bf16 = __nv_bfloat16;

// The PTX wrappers (kernels/ptx.cuh) the SLA kernels use.
using ptx::CpAsync16;
using ptx::CpAsyncCommit;
using ptx::CpAsyncWait;
using ptx::Exp2;
using ptx::HiBf16;
using ptx::LdMatrixX4;
using ptx::LdMatrixX4Trans;
using ptx::LoBf16;
using ptx::MmaBf16;
using ptx::PackBf16;
using ptx::QuadMax;
using ptx::QuadSum;
using ptx::SmemAddr;
using ptx::WarpMax;

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of kChunks chunks per row. XOR with
// the row's low 3 bits so the 8 rows an ldmatrix phase reads hit 8 different bank groups.
template <int kChunks>
__device__ __forceinline__ uint32_t Swz(int row, int chunk) {
  static_assert(kChunks >= 8, "swizzle needs at least 8 chunks per row");
  return static_cast<uint32_t>((row * kChunks + (chunk ^ (row & 7))) * 16);
}

// Per-thread ldmatrix offsets: a lane reads row `row` (row & 7 == r7 for every tile row base, which
// are multiples of 8) and chunk 2·cp + sel of chunk pair cp. off[cp & 3] + 128·(cp >> 2) + row base
// is then the swizzled byte offset, the last two terms compile-time constants, so the unrolled
// loops need 4 address registers per operand instead of one per (row tile, chunk) pair.
__device__ __forceinline__ void PairOffsets(uint32_t (&off)[4], uint32_t row_bytes, int r7,
                                            int sel) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
    off[i] = row_bytes + static_cast<uint32_t>((((2 * i) | sel) ^ r7) << 4);
}
__device__ __forceinline__ uint32_t PairAt(const uint32_t (&off)[4], int cp) {
  return off[cp & 3] + static_cast<uint32_t>((cp >> 2) * 128);
}

// The linear branch's output for one (token, head) row, computed by one warp on CUDA cores (the
// generic SLA kernel and SageSLA's output kernel): lane holds q[i] = q[c] for c = lane + 32·i < d.
// Writes φ(q) = exp(q − max q) into the warp's shared row s_e [d] and returns the denominator's
// reciprocal 1 / (φ(q)·ksum + 1e-5·Σφ); LinearAt then gives φ(q)·M[:, r] for output channel r.
template <int kPer>
__device__ __forceinline__ float FeatureRow(const float (&q)[kPer], int d, int lane,
                                            const float* ksum, float* s_e) {
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    if (lane + 32 * i < d) mx = fmaxf(mx, q[i]);
  }
  mx = WarpMax(mx);
  float se = 0.f, sk = 0.f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = lane + 32 * i;
    if (c < d) {
      const float e = expf(q[i] - mx);
      s_e[c] = e;
      se += e;
      sk += e * ksum[c];
    }
  }
  const float rden = 1.f / (detail::WarpSum(sk) + 1e-5f * detail::WarpSum(se));
  __syncwarp();  // s_e row complete
  return rden;
}
__device__ __forceinline__ float LinearAt(const float* s_e, const float* m32, int d, int r) {
  float lin = 0.f;
  for (int a = 0; a < d; ++a) lin = fmaf(s_e[a], m32[a * d + r], lin);
  return lin;
}

// Launch arguments of the block-sparse kernels (sla_sparse.cu, sla_wgmma_sm90.cu).
struct SparseParams {
  const bf16* q;  // [L, N, D]
  const bf16* k;
  const bf16* v;
  const int* lut;     // [N, nq, ksel]
  const bf16* m16;    // [N, D, D]
  const float* m32;   // [N, D, D]
  const float* ksum;  // [N, D]
  ConstBuf bias;      // [D]
  bf16* out;          // [L, N, D]
  bf16* sparse_out;   // [L, N, D] or null
  int64_t l, heads, nq;
  int d, block_q, block_k, ksel;
  float scale;  // 1/sqrt(D)
};

// Rows [row0, row0 + kRows) of one head of an [L, N, D] bf16 tensor (g points at head h's first
// element, row stride `stride` elements) into a swizzled tile; rows ≥ limit are zero-filled.
// 32-bit offsets (the plan keeps L·N·D < 2^31 on this path) and one base address per thread keep
// the per-iteration prefetch to a few registers.
template <int D, int kRows, int kNumThreads = sla_plan::kThreads>
__device__ __forceinline__ void LoadTile(uint32_t dst, const bf16* g, int row0, int limit,
                                         int stride, int tid) {
  constexpr int kChunks = D / 8, kRowStep = kNumThreads / kChunks, kIters = kRows / kRowStep;
  static_assert(kRowStep % 8 == 0 && kRows % kRowStep == 0,
                "rows must split evenly, swizzle-aligned");
  const int r = tid / kChunks, c = tid % kChunks;
  const uint32_t d0 = dst + Swz<kChunks>(r, c);  // row r + k·kRowStep keeps r's swizzle
  const int first = row0 + r;
  const bf16* src = g + first * stride + c * 8;
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const bool ok = first + it * kRowStep < limit;
    CpAsync16(d0 + it * kRowStep * kChunks * 16, ok ? src + it * kRowStep * stride : g, ok);
  }
}

// Warp-private staging of kRows rows × D bf16 → coalesced 16-byte global stores (rows < L only).
template <int D, int kRows>
__device__ __forceinline__ void FlushStage(const uint8_t* stage, bf16* g, int row0, int l,
                                           int stride, int lane) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int it = 0; it < kRows * kChunks / 32; ++it) {
    const int i = lane + it * 32;
    const int r = i / kChunks, c = i % kChunks;
    if (row0 + r < l) {
      *reinterpret_cast<uint4*>(g + (row0 + r) * stride + c * 8) =
          *reinterpret_cast<const uint4*>(stage + Swz<kChunks>(r, c));
    }
  }
}

// o (kMt m16 tiles of this warp, fp32) → staging as bf16 (rows 16·mt + g, + 8).
template <int D, int kMt>
__device__ __forceinline__ void StageTiles(const float (&o)[kMt][D / 8][4], uint8_t* stage,
                                           int lane) {
  constexpr int kChunks = D / 8;
  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      const int r = mt * 16 + g;
      *reinterpret_cast<uint32_t*>(stage + Swz<kChunks>(r, dt) + 4 * t4) =
          PackBf16(o[mt][dt][0], o[mt][dt][1]);
      *reinterpret_cast<uint32_t*>(stage + Swz<kChunks>(r + 8, dt) + 4 * t4) =
          PackBf16(o[mt][dt][2], o[mt][dt][3]);
    }
}

// Copies M_h [D, D] bf16 (row-major, rows a) into a swizzled tile for ldmatrix.trans B loads.
template <int D, int kNumThreads>
__device__ __forceinline__ void LoadM(uint32_t s_m, const bf16* mg, int tid) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int it = 0; it < D * kChunks / kNumThreads; ++it) {
    const int i = tid + it * kNumThreads;
    CpAsync16(s_m + Swz<kChunks>(i / kChunks, i % kChunks),
              mg + (i / kChunks) * D + (i % kChunks) * 8, true);
  }
}

// The linear branch for this warp's rows, o holding o_s (normalised): e = exp(q - max) per row
// from the Q tile's A fragments (address of m-tile mt, chunk pair cp: s_q + q_off[cp & 3] +
// (cp >> 2)·kQGroup + mt·16·kQRow), den = e·ksum + 1e-5·Σe, out = (o_s·den + e·M) / den + b,
// staged and stored. s_m: M_h swizzled (LoadM); s_vec: ksum [D], bias [D].
template <int D, int kMt, int kQGroup, int kQRow>
__device__ __forceinline__ void LinearEpilogue(float (&o)[kMt][D / 8][4],
                                               const uint32_t (&q_off)[4], uint32_t s_q,
                                               uint32_t s_m, const float* s_vec, uint8_t* stage,
                                               bf16* out, int row0, int l, int stride, int lane) {
  constexpr int kChunks = D / 8;
  constexpr uint32_t kRowBytes = D * 2;
  constexpr float kLog2e = 1.4426950408889634f;
  const int g = lane >> 2, t4 = lane & 3, r7 = lane & 7;
  uint32_t m_off[4];
  PairOffsets(m_off, (((lane >> 3) & 1) * 8 + r7) * kRowBytes, r7, lane >> 4);  // B from M (.trans)
  auto q_addr = [&](int mt, int ks) {
    return s_q + q_off[ks & 3] + (ks >> 2) * kQGroup + mt * 16 * kQRow;
  };
  float mxl2[kMt][2], den[kMt][2];
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt) {
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t a[4];
      LdMatrixX4(a, q_addr(mt, ks));
#pragma unroll
      for (int i = 0; i < 4; ++i) mx[i & 1] = fmaxf(mx[i & 1], fmaxf(LoBf16(a[i]), HiBf16(a[i])));
    }
    float se[2] = {0.f, 0.f}, sk[2] = {0.f, 0.f};
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) mxl2[mt][hr] = QuadMax(mx[hr]) * kLog2e;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t a[4];
      LdMatrixX4(a, q_addr(mt, ks));
#pragma unroll
      for (int i = 0; i < 4;
           ++i) {  // a[i]: row g + 8·(i&1), columns 16ks + 8·(i>>1) + 2·t4 + {0,1}
        const int c = 16 * ks + 8 * (i >> 1) + 2 * t4;
        const float e0 = Exp2(fmaf(LoBf16(a[i]), kLog2e, -mxl2[mt][i & 1]));
        const float e1 = Exp2(fmaf(HiBf16(a[i]), kLog2e, -mxl2[mt][i & 1]));
        se[i & 1] += e0 + e1;
        sk[i & 1] += e0 * s_vec[c] + e1 * s_vec[c + 1];
      }
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) den[mt][hr] = QuadSum(sk[hr]) + 1e-5f * QuadSum(se[hr]);
  }
  // One m16 tile and 64 output columns at a time; the mma accumulates onto o_s·den, so those O
  // registers die as the pass starts (bounds registers at D = 128).
  constexpr int kPassCols = 64;
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt) {
    const float rden[2] = {1.f / den[mt][0], 1.f / den[mt][1]};
#pragma unroll
    for (int pass = 0; pass < D / kPassCols; ++pass) {
      float acc[8][4];
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[nt][e] = o[mt][pass * 8 + nt][e] * den[mt][e >> 1];
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t a[4];
        LdMatrixX4(a, q_addr(mt, ks));
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          a[i] = PackBf16(Exp2(fmaf(LoBf16(a[i]), kLog2e, -mxl2[mt][i & 1])),
                          Exp2(fmaf(HiBf16(a[i]), kLog2e, -mxl2[mt][i & 1])));
        }
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t b[4];
          LdMatrixX4Trans(b,
                          s_m + PairAt(m_off, pass * (kPassCols / 16) + np) + ks * 16 * kRowBytes);
          MmaBf16(acc[2 * np], a, b[0], b[1]);
          MmaBf16(acc[2 * np + 1], a, b[2], b[3]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int dt = pass * 8 + nt, c = dt * 8 + 2 * t4, r = mt * 16 + g;
        const float b0 = s_vec[D + c], b1 = s_vec[D + c + 1];
        *reinterpret_cast<uint32_t*>(stage + Swz<kChunks>(r, dt) + 4 * t4) =
            PackBf16(fmaf(acc[nt][0], rden[0], b0), fmaf(acc[nt][1], rden[0], b1));
        *reinterpret_cast<uint32_t*>(stage + Swz<kChunks>(r + 8, dt) + 4 * t4) =
            PackBf16(fmaf(acc[nt][2], rden[1], b0), fmaf(acc[nt][3], rden[1], b1));
      }
    }
  }
  __syncwarp();
  FlushStage<D, 16 * kMt>(stage, out, row0, l, stride, lane);
}

// Launch arguments of the sm_90a block-sparse kernel (kernels/sla_sm90.cu): D = 128, 128-row query
// blocks, 64-row key blocks. Tensors [L, N, 128] bf16, 16-byte aligned, L·N·128 < 2^31.
struct SlaSm90Args {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const int* lut = nullptr;     // [N, nq, ksel] selected key blocks
  const bf16* m16 = nullptr;    // [N, 128, 128] proj-folded KV, bf16
  const float* ksum = nullptr;  // [N, 128]
  ConstBuf bias;                // [128]
  bf16* out = nullptr;
  bf16* sparse_out = nullptr;  // or null
  int64_t l = 0, heads = 0, nq = 0;
  int ksel = 0;
  float scale = 0.f;
};
// True when this build has the sm_90a kernel (TV_CUDA_ARCHS holds 90a).
bool SlaSm90Built();
// Shared memory the kernel needs (the caller checks it against the device's opt-in limit).
size_t SlaSm90SmemBytes();
cudaError_t LaunchSlaSparseSm90(const SlaSm90Args& args, cudaStream_t stream);

// The simpler sm_90a wgmma kernel (kernels/sla_wgmma_sm90.cu: cp.async loads, no warp
// specialisation), D = 128 with 128×64 blocks; built and shared memory as above.
bool SlaWgmmaBuilt();
size_t SlaWgmmaSmemBytes();
cudaError_t LaunchSlaSparseWgmma(const SparseParams& params, cudaStream_t stream);

}  // namespace turbovid::kernels::sla_tiles
