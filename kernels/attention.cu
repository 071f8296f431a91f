// Baseline attention: one warp per (query row, head); each lane keeps up to 4 of the D (≤ 128)
// q and accumulator values in registers; keys are visited one at a time with an fp32 online
// softmax (running max m, running sum l). Correct for any lengths; not tuned (no tensor cores).
#include "kernels/attention.h"

#include "kernels/device_util.cuh"

namespace turbovid::kernels {
namespace {

using detail::Load;
using detail::Store;
using detail::WarpSum;

constexpr int kWarpsPerBlock = 4;
constexpr int kPerLane = kAttentionMaxHeadDim / 32;

__global__ void AttentionKernel(AttentionArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (item >= a.lq * a.heads) return;  // whole warps exit together
  const int64_t i = item / a.heads, h = item % a.heads;
  float q[kPerLane], acc[kPerLane];
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) {
    const int c = lane + 32 * t;
    q[t] = c < a.d ? Load(a.q, (i * a.heads + h) * a.d + c) * a.scale : 0.f;
    acc[t] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int64_t j = 0; j < a.lk; ++j) {
    float part = 0.f;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int c = lane + 32 * t;
      if (c < a.d) part += q[t] * Load(a.k, (j * a.heads + h) * a.d + c);
    }
    float s = WarpSum(part);
    if (a.bias.data) s += Load(a.bias, (h * a.lq + i) * a.lk + j);
    const float m_new = fmaxf(m, s);
    if (m_new == -INFINITY) continue;  // fully masked so far: nothing to accumulate
    const float corr = __expf(m - m_new);  // exp(-inf) = 0 on the first key
    const float p = __expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int c = lane + 32 * t;
      const float vv = c < a.dv ? Load(a.v, (j * a.heads + h) * a.dv + c) : 0.f;
      acc[t] = acc[t] * corr + p * vv;
    }
    m = m_new;
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) {
    const int c = lane + 32 * t;
    if (c < a.dv) Store(a.out, (i * a.heads + h) * a.dv + c, acc[t] * inv);
  }
}

}  // namespace

cudaError_t LaunchAttention(const AttentionArgs& args, cudaStream_t stream) {
  if (args.d <= 0 || args.dv <= 0 || args.d > kAttentionMaxHeadDim || args.dv > kAttentionMaxHeadDim ||
      args.lq < 0 || args.lk <= 0 || args.heads <= 0) {
    return cudaErrorInvalidValue;
  }
  const int64_t items = args.lq * args.heads;
  if (items == 0) return cudaSuccess;
  const int64_t blocks = (items + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  AttentionKernel<<<static_cast<unsigned>(blocks), 32 * kWarpsPerBlock, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace turbovid::kernels
