// General attention: out = softmax(scale * q k^T + bias) v with an fp32 online softmax; q, k, v,
// out: [L, N, D] F32 or BF16 (each its own), bias [N, Lq, Lk] or null; D, Dv <= 512.
// A block of 4 warps takes 16 queries of one head (4 per warp); tiles of 16 keys are staged in
// shared memory as fp32. Scores: lane = (key, half of D), the halves meet through one shuffle.
// Values: each lane owns the output columns lane + 32 t. CUDA cores only (not the fast path).
#include "kernels/attention.h"
#include "kernels/device_util.cuh"

namespace turbovid::kernels {
namespace {

using detail::Load;
using detail::Store;

constexpr int kWarps = 4;
constexpr int kQueriesPerWarp = 4;
constexpr int kQueries = kWarps * kQueriesPerWarp;  // per block
constexpr int kKeys = 16;                           // per tile: one per lane of a half-warp

// Shared-memory layout, in floats. Each row of K and Q is split into two halves of `half` values
// stored `hs` apart, hs odd, so the 32 lanes reading column c of 32 different half-rows hit 32
// different banks.
struct SimpleLayout {
  int half;  // ceil(d / 2)
  int hs;    // half rounded up to odd
  int k_off, v_off, q_off, floats;
};

SimpleLayout LayoutFor(int d, int dv) {
  SimpleLayout s;
  s.half = (d + 1) / 2;
  s.hs = s.half | 1;
  s.k_off = 0;                           // [kKeys][2][hs]
  s.v_off = s.k_off + kKeys * 2 * s.hs;  // [kKeys][dv]
  s.q_off = s.v_off + kKeys * dv;        // [kQueries][2][hs], pre-scaled
  s.floats = s.q_off + kQueries * 2 * s.hs;
  return s;
}

template <int kPerLane>
__global__ void __launch_bounds__(kWarps * 32) AttentionKernel(AttentionArgs a, SimpleLayout lay) {
  extern __shared__ float sm[];
  float* ks = sm + lay.k_off;
  float* vs = sm + lay.v_off;
  float* qs = sm + lay.q_off;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kQueries;
  const int64_t h = blockIdx.y;
  const int64_t nh = a.heads;
  const int half = lay.half, hs = lay.hs, dv = a.dv;

  // Q rows (zero past lq and in the padding), scaled once.
  for (int idx = tid; idx < kQueries * 2 * hs; idx += kWarps * 32) {
    const int qi = idx / (2 * hs), rem = idx % (2 * hs), part = rem / hs, c = rem % hs;
    const int col = part * half + c;
    const int64_t gi = i0 + qi;
    qs[idx] =
        (c < half && col < a.d && gi < a.lq) ? Load(a.q, (gi * nh + h) * a.d + col) * a.scale : 0.f;
  }

  float acc[kQueriesPerWarp][kPerLane];
  float m[kQueriesPerWarp], l[kQueriesPerWarp];
#pragma unroll
  for (int w = 0; w < kQueriesPerWarp; ++w) {
    m[w] = -INFINITY;
    l[w] = 0.f;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) acc[w][t] = 0.f;
  }
  const int key = lane & 15, part = lane >> 4;

  for (int64_t k0 = 0; k0 < a.lk; k0 += kKeys) {
    __syncthreads();  // every warp is done with the previous tile
    for (int idx = tid; idx < kKeys * 2 * hs; idx += kWarps * 32) {
      const int kj = idx / (2 * hs), rem = idx % (2 * hs), pt = rem / hs, c = rem % hs;
      const int col = pt * half + c;
      const int64_t gj = k0 + kj;
      ks[idx] = (c < half && col < a.d && gj < a.lk) ? Load(a.k, (gj * nh + h) * a.d + col) : 0.f;
    }
    for (int idx = tid; idx < kKeys * dv; idx += kWarps * 32) {
      const int kj = idx / dv, c = idx % dv;
      const int64_t gj = k0 + kj;
      vs[idx] = gj < a.lk ? Load(a.v, (gj * nh + h) * dv + c) : 0.f;
    }
    __syncthreads();  // the tile (and, on the first pass, Q) is visible to all warps

    float sc[kQueriesPerWarp];
#pragma unroll
    for (int w = 0; w < kQueriesPerWarp; ++w) sc[w] = 0.f;
    const float* krow = ks + (key * 2 + part) * hs;
    const float* qrow = qs + (warp * kQueriesPerWarp * 2 + part) * hs;
    for (int c = 0; c < half; ++c) {
      const float kv = krow[c];
#pragma unroll
      for (int w = 0; w < kQueriesPerWarp; ++w) sc[w] += qrow[w * 2 * hs + c] * kv;
    }
    const bool valid = k0 + key < a.lk;
#pragma unroll
    for (int w = 0; w < kQueriesPerWarp; ++w) {
      const int64_t gi = i0 + warp * kQueriesPerWarp + w;
      float s = sc[w] + __shfl_xor_sync(0xffffffffu, sc[w], 16);
      if (a.bias.data != nullptr && valid && gi < a.lq)
        s += Load(a.bias, (h * a.lq + gi) * a.lk + k0 + key);
      if (!valid) s = -INFINITY;
      float mx = s;
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_new = fmaxf(m[w], mx);  // the same in every lane
      if (m_new == -INFINITY) continue;     // everything masked so far: nothing to add
      const float corr = __expf(m[w] - m_new);
      const float p = __expf(s - m_new);
      float ps = p;
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o);
      l[w] = l[w] * corr + ps;
      m[w] = m_new;
#pragma unroll
      for (int t = 0; t < kPerLane; ++t) acc[w][t] *= corr;
#pragma unroll 4
      for (int j = 0; j < kKeys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        const float* vrow = vs + j * dv;
#pragma unroll
        for (int t = 0; t < kPerLane; ++t) {
          const int c = lane + 32 * t;
          if (c < dv) acc[w][t] += pj * vrow[c];
        }
      }
    }
  }

#pragma unroll
  for (int w = 0; w < kQueriesPerWarp; ++w) {
    const int64_t gi = i0 + warp * kQueriesPerWarp + w;
    if (gi >= a.lq) continue;
    const float inv = l[w] > 0.f ? 1.f / l[w] : 0.f;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int c = lane + 32 * t;
      if (c < dv) Store(a.out, (gi * nh + h) * dv + c, acc[w][t] * inv);
    }
  }
}

template <int kPerLane>
cudaError_t LaunchSimple(const AttentionArgs& a, cudaStream_t stream) {
  const SimpleLayout lay = LayoutFor(a.d, a.dv);
  const size_t bytes = static_cast<size_t>(lay.floats) * sizeof(float);
  const auto kernel = AttentionKernel<kPerLane>;
  if (bytes > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(bytes));
    if (e != cudaSuccess) return e;
  }
  const dim3 grid(static_cast<unsigned>((a.lq + kQueries - 1) / kQueries),
                  static_cast<unsigned>(a.heads));
  kernel<<<grid, kWarps * 32, bytes, stream>>>(a, lay);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchAttention(const AttentionArgs& args, cudaStream_t stream) {
  if (args.d <= 0 || args.dv <= 0 || args.d > kAttentionMaxHeadDim ||
      args.dv > kAttentionMaxHeadDim || args.lq < 0 || args.lk <= 0 || args.heads <= 0 ||
      args.heads > 65535) {
    return cudaErrorInvalidValue;
  }
  if (args.lq == 0) return cudaSuccess;
  if ((args.lq + kQueries - 1) / kQueries > 0x7fffffff) return cudaErrorInvalidValue;
  if (args.dv <= 128) return LaunchSimple<4>(args, stream);
  if (args.dv <= 256) return LaunchSimple<8>(args, stream);
  if (args.dv <= 384) return LaunchSimple<12>(args, stream);
  return LaunchSimple<16>(args, stream);
}

}  // namespace turbovid::kernels
