// FP8 e4m3 quantiser and epilogue (kernels/fp8.h, docs/model-math.md §11.6). The quantiser is
// bit-identical to the CPU reference: correctly rounded fp32 divisions for 448/amax and amax/448,
// an fp32 product, and cvt.rn.satfinite for the code.
#include "kernels/fp8.h"

#include <cuda_bf16.h>

#include "kernels/device_util.cuh"

namespace turbovid::kernels {
namespace {

using detail::Load;
using detail::Store;

constexpr int kQuantThreads = 256;

__device__ __forceinline__ float RoundBf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// (lo, hi) → two e4m3 bytes (round to nearest even, saturating to ±448); lo in the low byte.
__device__ __forceinline__ uint16_t PackE4m3x2(float lo, float hi) {
  uint16_t r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ __forceinline__ float BlockMax(float v, float* smem32) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) smem32[warp] = v;
  __syncthreads();
  float t = lane < warps ? smem32[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

// 8 values → 8 codes (one uint2).
__device__ __forceinline__ uint2 QuantizeX8(const uint4& packed, float inv) {
  float f[8];
  detail::Bf16x8ToFloat(packed, f);
  uint2 out;
  out.x = static_cast<uint32_t>(PackE4m3x2(__fmul_rn(f[0], inv), __fmul_rn(f[1], inv))) |
          (static_cast<uint32_t>(PackE4m3x2(__fmul_rn(f[2], inv), __fmul_rn(f[3], inv))) << 16);
  out.y = static_cast<uint32_t>(PackE4m3x2(__fmul_rn(f[4], inv), __fmul_rn(f[5], inv))) |
          (static_cast<uint32_t>(PackE4m3x2(__fmul_rn(f[6], inv), __fmul_rn(f[7], inv))) << 16);
  return out;
}

// One block per row, two passes over x (amax, then codes); `vec`: x is BF16, 16-byte aligned
// rows and cols % 8 == 0 (8 values a load). Rows too long for QuantizeFp8RowsRegKernel, and the
// scalar case.
template <bool kVec>
__global__ void QuantizeFp8RowsKernel(QuantizeFp8Args a) {
  __shared__ float smem[32];
  const int64_t r = blockIdx.x;
  const int64_t base = r * a.cols;
  float amax = 0.f;
  if constexpr (kVec) {
    const uint4* x = reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(a.x.data) + base);
    for (int64_t i = threadIdx.x; i < a.cols / 8; i += blockDim.x) {
      float f[8];
      detail::Bf16x8ToFloat(x[i], f);
#pragma unroll
      for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(f[j]));
    }
  } else {
    for (int64_t i = threadIdx.x; i < a.cols; i += blockDim.x) {
      amax = fmaxf(amax, fabsf(RoundBf16(Load(a.x, base + i))));
    }
  }
  amax = BlockMax(amax, smem);
  const float inv = amax == 0.f ? 0.f : __fdiv_rn(kFp8E4m3Max, amax);
  if (threadIdx.x == 0) a.scale[r] = amax == 0.f ? 0.f : __fdiv_rn(amax, kFp8E4m3Max);
  if constexpr (kVec) {
    const uint4* x = reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(a.x.data) + base);
    uint2* q = reinterpret_cast<uint2*>(a.q + base);
    for (int64_t i = threadIdx.x; i < a.cols / 8; i += blockDim.x) q[i] = QuantizeX8(x[i], inv);
  } else {
    for (int64_t i = threadIdx.x; i < a.cols; i += blockDim.x) {
      const float v = __fmul_rn(RoundBf16(Load(a.x, base + i)), inv);
      a.q[base + i] = static_cast<uint8_t>(PackE4m3x2(v, 0.f) & 0xFF);
    }
  }
}

// The vector case with the whole row in registers (up to kRegVecs 16-byte vectors a thread):
// one read of x instead of two. Every Wan width fits (13,824 = 1,728 vectors ≤ 256 · 8).
constexpr int kRegVecs = 8;
__global__ void QuantizeFp8RowsRegKernel(QuantizeFp8Args a) {
  __shared__ float smem[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * a.cols;
  const int nvec = static_cast<int>(a.cols / 8);
  const uint4* x = reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(a.x.data) + base);
  uint4 v[kRegVecs];
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < kRegVecs; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < nvec) {
      v[j] = x[i];
      float f[8];
      detail::Bf16x8ToFloat(v[j], f);
#pragma unroll
      for (int t = 0; t < 8; ++t) amax = fmaxf(amax, fabsf(f[t]));
    }
  }
  amax = BlockMax(amax, smem);
  const float inv = amax == 0.f ? 0.f : __fdiv_rn(kFp8E4m3Max, amax);
  if (threadIdx.x == 0) a.scale[blockIdx.x] = amax == 0.f ? 0.f : __fdiv_rn(amax, kFp8E4m3Max);
  uint2* q = reinterpret_cast<uint2*>(a.q + base);
#pragma unroll
  for (int j = 0; j < kRegVecs; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < nvec) q[i] = QuantizeX8(v[j], inv);
  }
}

__global__ void Fp8EpilogueKernel(Fp8EpilogueArgs a) {
  const int64_t n = a.rows * a.cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % a.cols;
    float v;
    if (a.acc != nullptr) {
      v = RoundBf16(__fmul_rn(__fmul_rn(a.acc[i], a.row_scale[i / a.cols]), a.col_scale[c]));
    } else {
      v = RoundBf16(Load(a.y, i));  // an F32 y holds the unrounded product
    }
    if (a.bias.data != nullptr) v = RoundBf16(__fadd_rn(v, RoundBf16(Load(a.bias, c))));
    Store(a.y, i, v);
  }
}

// Bias only, y BF16 and 16-byte aligned, cols % 8 == 0: 8 values a thread.
__global__ void Fp8BiasBf16x8Kernel(__nv_bfloat16* y, ConstBuf bias, int64_t rows, int64_t cols) {
  const int64_t vecs = rows * cols / 8;
  uint4* yv = reinterpret_cast<uint4*>(y);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < vecs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c0 = (i * 8) % cols;
    float f[8];
    detail::Bf16x8ToFloat(yv[i], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) f[j] = __fadd_rn(f[j], RoundBf16(Load(bias, c0 + j)));
    yv[i] = detail::FloatToBf16x8(f);
  }
}

unsigned Blocks(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 65535 * 16) b = 65535 * 16;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

}  // namespace

cudaError_t LaunchQuantizeFp8Rows(const QuantizeFp8Args& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols < 0 || args.rows > 0x7FFFFFFF) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  if (args.cols == 0) return cudaMemsetAsync(args.scale, 0, args.rows * sizeof(float), stream);
  const bool vec = detail::VecBf16(args.x.data, args.x.type) && args.cols % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(args.q) % 8 == 0;
  const dim3 grid(static_cast<unsigned>(args.rows));
  const int64_t nvec = args.cols / 8;
  if (vec && nvec <= 128 * kRegVecs) {
    QuantizeFp8RowsRegKernel<<<grid, 128, 0, stream>>>(args);  // narrow rows: fewer idle threads
  } else if (vec && nvec <= kQuantThreads * kRegVecs) {
    QuantizeFp8RowsRegKernel<<<grid, kQuantThreads, 0, stream>>>(args);
  } else if (vec) {
    QuantizeFp8RowsKernel<true><<<grid, kQuantThreads, 0, stream>>>(args);
  } else {
    QuantizeFp8RowsKernel<false><<<grid, kQuantThreads, 0, stream>>>(args);
  }
  return cudaGetLastError();
}

cudaError_t LaunchFp8Epilogue(const Fp8EpilogueArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0) return cudaErrorInvalidValue;
  const int64_t n = args.rows * args.cols;
  // A bf16 y without bias is final; an F32 y still needs its bf16 rounding.
  if (n == 0 || (args.acc == nullptr && args.bias.data == nullptr && args.y.type == ElemType::kBF16)) {
    return cudaSuccess;
  }
  constexpr int kThreads = 256;
  if (args.acc == nullptr && detail::VecBf16(args.y.data, args.y.type) && args.cols % 8 == 0) {
    Fp8BiasBf16x8Kernel<<<Blocks(n / 8, kThreads), kThreads, 0, stream>>>(
        static_cast<__nv_bfloat16*>(args.y.data), args.bias, args.rows, args.cols);
  } else {
    Fp8EpilogueKernel<<<Blocks(n, kThreads), kThreads, 0, stream>>>(args);
  }
  return cudaGetLastError();
}

}  // namespace turbovid::kernels
