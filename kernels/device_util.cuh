// Device-side helpers shared by the kernel .cu files (not part of the launch API).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

#include "kernels/kernel_types.h"

namespace turbovid::kernels::detail {

__device__ __forceinline__ float Load(ConstBuf b, int64_t i) {
  return b.type == ElemType::kF32 ? static_cast<const float*>(b.data)[i]
                                  : __bfloat162float(static_cast<const __nv_bfloat16*>(b.data)[i]);
}
__device__ __forceinline__ float Load(MutBuf b, int64_t i) {
  return b.type == ElemType::kF32 ? static_cast<const float*>(b.data)[i]
                                  : __bfloat162float(static_cast<const __nv_bfloat16*>(b.data)[i]);
}
__device__ __forceinline__ void Store(MutBuf b, int64_t i, float v) {
  if (b.type == ElemType::kF32) {
    static_cast<float*>(b.data)[i] = v;
  } else {
    static_cast<__nv_bfloat16*>(b.data)[i] = __float2bfloat16_rn(v);
  }
}

__device__ __forceinline__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); all threads get it.
__device__ __forceinline__ float BlockSum(float v, float* smem32) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // smem32 may still be read from a previous call
  if (lane == 0) smem32[warp] = v;
  __syncthreads();
  float t = lane < warps ? smem32[lane] : 0.f;
  return WarpSum(t);
}

__device__ __forceinline__ float GeluTanh(float x) {
  constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.f + tanhf(kC * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ float Silu(float x) { return x / (1.f + expf(-x)); }

// 8 bf16 values in one 16-byte vector ↔ 8 floats.
__device__ __forceinline__ void Bf16x8ToFloat(const uint4& v, float* f) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}
__device__ __forceinline__ uint4 FloatToBf16x8(const float* f) {
  uint4 v;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return v;
}
// True when b is BF16 and 16-byte aligned (the vector paths' condition).
inline bool VecBf16(const void* p, ElemType t) {
  return t == ElemType::kBF16 && reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

inline unsigned GridFor(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

// Eight bf16 columns (a uint4) shifted by one column, for the conv kernels' kw taps.
// Eight bf16 columns starting one column left of `cur`: element e = cur[e − 1], e = 0 from prev[7].
__device__ __forceinline__ uint4 ColsMinus1(uint4 prev, uint4 cur) {
  return make_uint4(__funnelshift_r(prev.w, cur.x, 16), __funnelshift_r(cur.x, cur.y, 16),
                    __funnelshift_r(cur.y, cur.z, 16), __funnelshift_r(cur.z, cur.w, 16));
}
// Eight bf16 columns starting one column right of `cur`: element e = cur[e + 1], e = 7 from
// next[0].
__device__ __forceinline__ uint4 ColsPlus1(uint4 cur, uint4 next) {
  return make_uint4(__funnelshift_r(cur.x, cur.y, 16), __funnelshift_r(cur.y, cur.z, 16),
                    __funnelshift_r(cur.z, cur.w, 16), __funnelshift_r(cur.w, next.x, 16));
}

}  // namespace turbovid::kernels::detail
