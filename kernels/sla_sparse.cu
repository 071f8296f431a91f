// SLA sparse softmax branch + the linear branch's output (docs/model-math.md §9): the mma.sync
// block-sparse kernel (D 64/128, 128×64 blocks), the generic one, and the dispatch to the sm_90a
// kernels (sla_sm90.cu, sla_wgmma_sm90.cu). q, k, v, out, sparse_out: [L, N, D] bf16.
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

// One CTA per (query block of 128 rows, head); warp w owns rows 32w..32w+31 as two m16 tiles.
// Main loop over the LUT's key blocks (K/V double-buffered with cp.async): S = QKᵀ, fp32 online
// softmax in exp2, O += PV with P rounded to bf16. Epilogue: o_s = O/l; φ(q) from the Q tile;
// out = o_s + φ(q)·M / (φ(q)·ksum + 1e-5·Σφ) + b, staged through shared memory.
template <int D>
__global__ void __launch_bounds__(kThreads, 2) SparseAttnKernel(SparseParams p) {
  constexpr int kTileQ = kBm * D * 2, kTileKv = kBn * D * 2;
  constexpr int kDt = D / 8;                // n8 tiles over D
  constexpr int kSub = D == 128 ? 32 : 64;  // keys per online-softmax step (register budget)
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t s_base = SmemAddr(smem);
  const uint32_t s_q = s_base, s_k0 = s_base + kTileQ, s_v0 = s_k0 + 2 * kTileKv;
  float* s_vec = reinterpret_cast<float*>(smem + kTileQ + 4 * kTileKv);  // ksum [D], bias [D]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int t4 = lane & 3;
  const int qb = blockIdx.x, h = blockIdx.y;
  const int stride = static_cast<int>(p.heads) * D;
  const int q0 = qb * kBm, l = static_cast<int>(p.l);
  const bf16* qg = p.q + h * D;
  const bf16* kg = p.k + h * D;
  const bf16* vg = p.v + h * D;
  const int* lut = p.lut + (int64_t(h) * p.nq + qb) * p.ksel;
  const int nsel = p.ksel;
  const float sl2 = p.scale * 1.4426950408889634f;
  constexpr uint32_t kRowBytes = D * 2;
  const int r7 = lane & 7;
  uint32_t q_off[4], k_off[4], v_off[4];
  PairOffsets(q_off, (warp * 32 + (lane & 15)) * kRowBytes, r7, lane >> 4);     // A from Q rows
  PairOffsets(k_off, ((lane >> 4) * 8 + r7) * kRowBytes, r7, (lane >> 3) & 1);  // B from K rows
  PairOffsets(v_off, (((lane >> 3) & 1) * 8 + r7) * kRowBytes, r7,
              lane >> 4);  // B from V / M (.trans)

  LoadTile<D, kBm>(s_q, qg, q0, l, stride, tid);
  int kb_next = 0;
  if (nsel > 0) {
    const int kb = lut[0];
    LoadTile<D, kBn>(s_k0, kg, kb * kBn, l, stride, tid);
    LoadTile<D, kBn>(s_v0, vg, kb * kBn, l, stride, tid);
    kb_next = nsel > 1 ? lut[1] : 0;
  }
  CpAsyncCommit();

  float o[2][kDt][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int dt = 0; dt < kDt; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
  float m_run[2][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}};
  float l_run[2][2] = {{0.f, 0.f}, {0.f, 0.f}};

  int kb_cur = nsel > 0 ? lut[0] : 0;
  for (int it = 0; it < nsel; ++it) {
    const int buf = it & 1;
    if (it + 1 < nsel) {
      LoadTile<D, kBn>(s_k0 + (buf ^ 1) * kTileKv, kg, kb_next * kBn, l, stride, tid);
      LoadTile<D, kBn>(s_v0 + (buf ^ 1) * kTileKv, vg, kb_next * kBn, l, stride, tid);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();  // tile `it` (and Q) landed for every thread's copies
    const int kb_after = it + 2 < nsel ? lut[it + 2] : 0;  // read early: hides the global latency
    const uint32_t s_k = s_k0 + buf * kTileKv, s_v = s_v0 + buf * kTileKv;
    const int valid = min(kBn, l - kb_cur * kBn);

    // The 64-key tile in sub-tiles of kSub keys, each a full online-softmax step: for D = 128 the
    // S accumulators of 32 keys (32 registers) leave room for O (128) without spilling.
#pragma unroll
    for (int sub = 0; sub < kBn / kSub; ++sub) {
      constexpr int kSt = kSub / 8;  // n8 tiles of keys
      float s[2][kSt][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
          LdMatrixX4(a[mt], s_q + PairAt(q_off, ks) + mt * 16 * kRowBytes);
#pragma unroll
        for (int np = 0; np < kSt / 2; ++np) {
          uint32_t b[4];
          LdMatrixX4(b, s_k + PairAt(k_off, ks) + (sub * kSub + np * 16) * kRowBytes);
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            MmaBf16(s[mt][2 * np], a[mt], b[0], b[1]);
            MmaBf16(s[mt][2 * np + 1], a[mt], b[2], b[3]);
          }
        }
      }
      if (valid < kBn) {  // tail key block: keys ≥ L do not exist
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
          for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              if (sub * kSub + nt * 8 + 2 * t4 + (e & 1) >= valid) s[mt][nt][e] = -INFINITY;
            }
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          float mx = -INFINITY;
#pragma unroll
          for (int nt = 0; nt < kSt; ++nt)
            mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hr], s[mt][nt][2 * hr + 1]));
          mx = QuadMax(mx);
          // A sub-tile may be all tail (mx = -inf); m_use keeps exp2 away from (-inf) - (-inf).
          const float m_new = fmaxf(m_run[mt][hr], mx * sl2);
          const float m_use = m_new == -INFINITY ? 0.f : m_new;
          const float corr = Exp2(m_run[mt][hr] - m_use);  // 0 while m_run is -inf
          m_run[mt][hr] = m_new;
          float sum = 0.f;
#pragma unroll
          for (int nt = 0; nt < kSt; ++nt) {
#pragma unroll
            for (int e = 2 * hr; e < 2 * hr + 2; ++e) {
              const float pv = Exp2(fmaf(s[mt][nt][e], sl2, -m_use));
              s[mt][nt][e] = pv;
              sum += pv;
            }
          }
          l_run[mt][hr] = l_run[mt][hr] * corr + sum;
#pragma unroll
          for (int dt = 0; dt < kDt; ++dt) {
            o[mt][dt][2 * hr] *= corr;
            o[mt][dt][2 * hr + 1] *= corr;
          }
        }
      }
#pragma unroll
      for (int j = 0; j < kSub / 16; ++j) {
        uint32_t a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2;
             ++mt) {  // the S accumulator layout of keys 16j..16j+15 is the A layout
          a[mt][0] = PackBf16(s[mt][2 * j][0], s[mt][2 * j][1]);
          a[mt][1] = PackBf16(s[mt][2 * j][2], s[mt][2 * j][3]);
          a[mt][2] = PackBf16(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
          a[mt][3] = PackBf16(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t b[4];
          LdMatrixX4Trans(b, s_v + PairAt(v_off, dp) + (sub * kSub + j * 16) * kRowBytes);
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            MmaBf16(o[mt][2 * dp], a[mt], b[0], b[1]);
            MmaBf16(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
          }
        }
      }
    }
    kb_cur = kb_next;
    kb_next = kb_after;
    __syncthreads();  // buffer `buf` is free for the prefetch of tile it + 2
  }

  // ---- epilogue ----
  CpAsyncWait<0>();
  __syncthreads();  // with no selected block only Q was loaded; K/V buffers are free either way
  const uint32_t s_m = s_k0;  // M_h [D, D] bf16 reuses the K buffers (2·kTileKv ≥ D·D·2 bytes)
  static_assert(2 * kTileKv >= D * D * 2 && 2 * kTileKv >= 4 * 32 * D * 2, "epilogue buffers");
  LoadM<D, kThreads>(s_m, p.m16 + h * D * D, tid);
  CpAsyncCommit();
  for (int c = tid; c < D; c += kThreads) {
    s_vec[c] = p.ksum[h * D + c];
    s_vec[D + c] = Load(p.bias, c);
  }
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const float lsum = QuadSum(l_run[mt][hr]);
      const float inv = lsum > 0.f ? 1.f / lsum : 0.f;  // no selected block → o_s = 0
#pragma unroll
      for (int dt = 0; dt < kDt; ++dt) {
        o[mt][dt][2 * hr] *= inv;
        o[mt][dt][2 * hr + 1] *= inv;
      }
    }
  uint8_t* stage = smem + (s_v0 - s_base) + warp * (32 * D * 2);  // V buffers: 32 rows per warp
  const int row0 = q0 + warp * 32;
  if (p.sparse_out != nullptr) {
    StageTiles<D, 2>(o, stage, lane);
    __syncwarp();
    FlushStage<D, 32>(stage, p.sparse_out + h * D, row0, l, stride, lane);
    __syncwarp();  // staging is rewritten below
  }
  CpAsyncWait<0>();
  __syncthreads();  // M_h, ksum and bias are in shared memory
  LinearEpilogue<D, 2, 128, kRowBytes>(o, q_off, s_q, s_m, s_vec, stage, p.out + h * D, row0, l,
                                       stride, lane);
}

// Any D ≤ 256, any block sizes: one warp per (query row, head), keys one at a time (correctness
// path; the tensor-core kernel covers the model's shapes).
__global__ void __launch_bounds__(kGenericWarps * 32) SparseAttnGenericKernel(SparseParams p) {
  constexpr int kPer = kSlaMaxHeadDim / 32;
  __shared__ float s_e[kGenericWarps][kSlaMaxHeadDim];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t item = int64_t(blockIdx.x) * kGenericWarps + w;
  if (item >= p.l * p.heads) return;  // whole warps exit together
  const int64_t t = item / p.heads, h = item % p.heads;
  const int d = p.d;
  float q[kPer], acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = lane + 32 * i;
    q[i] = c < d ? __bfloat162float(p.q[(t * p.heads + h) * d + c]) : 0.f;
    acc[i] = 0.f;
  }
  const int* lut = p.lut + (h * p.nq + t / p.block_q) * p.ksel;
  float m = -INFINITY, lsum = 0.f;
  for (int sidx = 0; sidx < p.ksel; ++sidx) {
    const int64_t j0 = int64_t(lut[sidx]) * p.block_k, j1 = min(p.l, j0 + p.block_k);
    for (int64_t j = j0; j < j1; ++j) {
      float part = 0.f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int c = lane + 32 * i;
        if (c < d) part += q[i] * __bfloat162float(p.k[(j * p.heads + h) * d + c]);
      }
      const float sc = detail::WarpSum(part) * p.scale;
      const float m_new = fmaxf(m, sc);
      const float corr = expf(m - m_new), pw = expf(sc - m_new);
      lsum = lsum * corr + pw;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int c = lane + 32 * i;
        const float vv = c < d ? __bfloat162float(p.v[(j * p.heads + h) * d + c]) : 0.f;
        acc[i] = acc[i] * corr + pw * vv;
      }
      m = m_new;
    }
  }
  const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
  const float rden = FeatureRow(q, d, lane, p.ksum + h * d, s_e[w]);
  const float* m32 = p.m32 + h * d * d;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int r = lane + 32 * i;
    if (r >= d) continue;
    const float lin = LinearAt(s_e[w], m32, d, r);
    const float os = acc[i] * inv;
    const int64_t at = (t * p.heads + h) * d + r;
    if (p.sparse_out) p.sparse_out[at] = __float2bfloat16_rn(os);
    p.out[at] = __float2bfloat16_rn(os + lin * rden + Load(p.bias, r));
  }
}

}  // namespace

namespace sla_plan {

cudaError_t LaunchSparse(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                         cudaStream_t stream) {
  SparseParams sp{static_cast<const bf16*>(a.q),
                  static_cast<const bf16*>(a.k),
                  static_cast<const bf16*>(a.v),
                  reinterpret_cast<const int*>(ws + pl.lut),
                  reinterpret_cast<const bf16*>(ws + pl.m16),
                  reinterpret_cast<const float*>(ws + pl.m32),
                  reinterpret_cast<const float*>(ws + pl.ksum),
                  a.proj_b,
                  static_cast<bf16*>(a.out),
                  static_cast<bf16*>(a.sparse_out),
                  a.l,
                  a.heads,
                  pl.nq,
                  a.d,
                  a.block_q,
                  a.block_k,
                  a.ksel,
                  1.0f / std::sqrt(static_cast<float>(a.d))};
  const dim3 grid(static_cast<unsigned>(pl.nq), static_cast<unsigned>(a.heads));
  if (pl.sm90) {
    sla_tiles::SlaSm90Args s9;
    s9.q = sp.q;
    s9.k = sp.k;
    s9.v = sp.v;
    s9.lut = sp.lut;
    s9.m16 = sp.m16;
    s9.ksum = sp.ksum;
    s9.bias = sp.bias;
    s9.out = sp.out;
    s9.sparse_out = sp.sparse_out;
    s9.l = a.l;
    s9.heads = a.heads;
    s9.nq = pl.nq;
    s9.ksel = a.ksel;
    s9.scale = sp.scale;
    if (cudaError_t e = sla_tiles::LaunchSlaSparseSm90(s9, stream); e != cudaSuccess) return e;
    return timer.Mark(kSlaSparse);
  }
  if (pl.wgmma) {
    if (cudaError_t e = sla_tiles::LaunchSlaSparseWgmma(sp, stream); e != cudaSuccess) return e;
  } else if (pl.fast_attn && a.d == 128) {
    if (cudaError_t e = SetSmem(SparseAttnKernel<128>, SparseSmemBytes(128)); e != cudaSuccess)
      return e;
    SparseAttnKernel<128><<<grid, kThreads, SparseSmemBytes(128), stream>>>(sp);
  } else if (pl.fast_attn && a.d == 64) {
    if (cudaError_t e = SetSmem(SparseAttnKernel<64>, SparseSmemBytes(64)); e != cudaSuccess)
      return e;
    SparseAttnKernel<64><<<grid, kThreads, SparseSmemBytes(64), stream>>>(sp);
  } else {
    const int64_t items = a.l * a.heads;
    SparseAttnGenericKernel<<<static_cast<unsigned>((items + kGenericWarps - 1) / kGenericWarps),
                              kGenericWarps * 32, 0, stream>>>(sp);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  return timer.Mark(kSlaSparse);
}

}  // namespace sla_plan
}  // namespace turbovid::kernels
