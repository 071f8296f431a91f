// LayerNorm (+ affine, + modulation), RmsNorm (optionally of a tensor-parallel shard) and row sums
// of squares: one block per row, fp32 two-pass statistics.
#include "kernels/norm.h"

#include "kernels/device_util.cuh"

namespace turbovid::kernels {
namespace {

using detail::BlockSum;
using detail::Load;
using detail::Store;

constexpr int kThreads = 256;  // 8 warps: enough to cover E = 1536..5120 rows in a few strides

__global__ void LayerNormKernel(LayerNormArgs a) {
  __shared__ float smem[32];
  const int64_t row = blockIdx.x;
  const int64_t base = row * a.cols;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) s += Load(a.x, base + j);
  const float mean = BlockSum(s, smem) / static_cast<float>(a.cols);
  float v = 0.f;
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    const float d = Load(a.x, base + j) - mean;
    v += d * d;
  }
  const float var = BlockSum(v, smem) / static_cast<float>(a.cols);
  const float inv = rsqrtf(var + a.eps);
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    float y = (Load(a.x, base + j) - mean) * inv;
    if (a.weight.data) y *= Load(a.weight, j);
    if (a.bias.data) y += Load(a.bias, j);
    if (a.scale.data) y *= 1.f + Load(a.scale, row * a.scale_row_stride + j);
    if (a.shift.data) y += Load(a.shift, row * a.shift_row_stride + j);
    Store(a.y, base + j, y);
  }
}

// rsqrt(mean square + eps) of a row: its own Σx² (`own`, every thread holds the block sum), or
// the whole row's from row_sum_sq when x is a tensor-parallel shard.
__device__ __forceinline__ float RmsInv(const RmsNormArgs& a, int64_t row, float own) {
  if (a.row_sum_sq != nullptr) {
    return rsqrtf(a.row_sum_sq[row] / static_cast<float>(a.norm_cols) + a.eps);
  }
  return rsqrtf(own / static_cast<float>(a.cols) + a.eps);
}

__global__ void RowSumSquaresKernel(RowSumSquaresArgs a) {
  __shared__ float smem[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * a.cols;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    const float x = Load(a.x, base + j);
    s += x * x;
  }
  const float total = BlockSum(s, smem);
  if (threadIdx.x == 0) a.y[blockIdx.x] = total;
}

__global__ void RmsNormKernel(RmsNormArgs a) {
  __shared__ float smem[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * a.cols;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    const float x = Load(a.x, base + j);
    s += x * x;
  }
  const float inv = RmsInv(a, blockIdx.x, BlockSum(s, smem));
  if (a.rope_pairs > 0) {
    const int64_t trow = static_cast<int64_t>(blockIdx.x) * a.rope_pairs;
    for (int64_t j = threadIdx.x; j < a.cols / 2; j += blockDim.x) {
      float re = Load(a.x, base + 2 * j) * inv, im = Load(a.x, base + 2 * j + 1) * inv;
      if (a.weight.data) {
        re *= Load(a.weight, 2 * j);
        im *= Load(a.weight, 2 * j + 1);
      }
      const int64_t p = trow + j % a.rope_pairs;
      const float c = a.rope_cos[p], sn = a.rope_sin[p];
      Store(a.y, base + 2 * j, re * c - im * sn);
      Store(a.y, base + 2 * j + 1, re * sn + im * c);
    }
    return;
  }
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    float y = Load(a.x, base + j) * inv;
    if (a.weight.data) y *= Load(a.weight, j);
    Store(a.y, base + j, y);
  }
}

// Vector paths for BF16 rows with cols % 8 == 0: each thread keeps V 16-byte vectors of its row in
// registers, so x is read once; statistics are the same two-pass fp32 sums.
template <int V>
__global__ void LayerNormVecKernel(LayerNormArgs a) {
  __shared__ float smem[32];
  const int64_t row = blockIdx.x;
  const int64_t nvec = a.cols / 8;
  const uint4* xr = static_cast<const uint4*>(a.x.data) + row * nvec;
  float v[V][8];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j < nvec) {
      detail::Bf16x8ToFloat(xr[j], v[i]);
#pragma unroll
      for (int e = 0; e < 8; ++e) s += v[i][e];
    }
  }
  const float mean = BlockSum(s, smem) / static_cast<float>(a.cols);
  float q = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j < nvec) {
#pragma unroll
      for (int e = 0; e < 8; ++e) q += (v[i][e] - mean) * (v[i][e] - mean);
    }
  }
  const float inv = rsqrtf(BlockSum(q, smem) / static_cast<float>(a.cols) + a.eps);
  uint4* yr = static_cast<uint4*>(a.y.data) + row * nvec;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j >= nvec) continue;
    float o[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int64_t c = j * 8 + e;
      float y = (v[i][e] - mean) * inv;
      if (a.weight.data) y *= Load(a.weight, c);
      if (a.bias.data) y += Load(a.bias, c);
      if (a.scale.data) y *= 1.f + Load(a.scale, row * a.scale_row_stride + c);
      if (a.shift.data) y += Load(a.shift, row * a.shift_row_stride + c);
      o[e] = y;
    }
    yr[j] = detail::FloatToBf16x8(o);
  }
}

template <int V>
__global__ void RmsNormVecKernel(RmsNormArgs a) {
  __shared__ float smem[32];
  const int64_t row = blockIdx.x;
  const int64_t nvec = a.cols / 8;
  const uint4* xr = static_cast<const uint4*>(a.x.data) + row * nvec;
  float v[V][8];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j < nvec) {
      detail::Bf16x8ToFloat(xr[j], v[i]);
#pragma unroll
      for (int e = 0; e < 8; ++e) s += v[i][e] * v[i][e];
    }
  }
  const float inv = RmsInv(a, row, BlockSum(s, smem));
  uint4* yr = static_cast<uint4*>(a.y.data) + row * nvec;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j >= nvec) continue;
    float o[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      o[e] = v[i][e] * inv;
      if (a.weight.data) o[e] *= Load(a.weight, j * 8 + e);
    }
    if (a.rope_pairs > 0) {
#pragma unroll
      for (int e = 0; e < 8; e += 2) {
        const int64_t p = row * a.rope_pairs + ((j * 8 + e) / 2) % a.rope_pairs;
        const float c = a.rope_cos[p], sn = a.rope_sin[p];
        const float re = o[e], im = o[e + 1];
        o[e] = re * c - im * sn;
        o[e + 1] = re * sn + im * c;
      }
    }
    yr[j] = detail::FloatToBf16x8(o);
  }
}

// Threads per row for the vector kernels and the vectors each thread holds (0: not taken).
int VecPlan(int64_t cols, const void* x, ElemType xt, const void* y, ElemType yt, int* threads) {
  if (cols % 8 != 0 || !detail::VecBf16(x, xt) || !detail::VecBf16(y, yt)) return 0;
  const int64_t nvec = cols / 8;
  for (int v : {1, 2, 4}) {
    const int64_t t = (nvec + v - 1) / v;
    if (t <= 1024) {
      *threads = static_cast<int>((t + 31) / 32 * 32);
      return v;
    }
  }
  return 0;
}

}  // namespace

cudaError_t LaunchLayerNorm(const LayerNormArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0 || args.rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  int threads = 0;
  switch (VecPlan(args.cols, args.x.data, args.x.type, args.y.data, args.y.type, &threads)) {
    case 1:
      LayerNormVecKernel<1><<<static_cast<unsigned>(args.rows), threads, 0, stream>>>(args);
      return cudaGetLastError();
    case 2:
      LayerNormVecKernel<2><<<static_cast<unsigned>(args.rows), threads, 0, stream>>>(args);
      return cudaGetLastError();
    case 4:
      LayerNormVecKernel<4><<<static_cast<unsigned>(args.rows), threads, 0, stream>>>(args);
      return cudaGetLastError();
    default:
      break;
  }
  LayerNormKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const RmsNormArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0 || args.rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (args.rope_pairs < 0 || (args.rope_pairs > 0 && (args.cols % (2 * args.rope_pairs) != 0 ||
                                                      !args.rope_cos || !args.rope_sin))) {
    return cudaErrorInvalidValue;
  }
  if (args.row_sum_sq != nullptr && args.norm_cols < args.cols) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  int threads = 0;
  // The vector path needs each 8-wide vector to hold whole rope pairs (always: pairs are 2-wide).
  switch (VecPlan(args.cols, args.x.data, args.x.type, args.y.data, args.y.type, &threads)) {
    case 1:
      RmsNormVecKernel<1><<<static_cast<unsigned>(args.rows), threads, 0, stream>>>(args);
      return cudaGetLastError();
    case 2:
      RmsNormVecKernel<2><<<static_cast<unsigned>(args.rows), threads, 0, stream>>>(args);
      return cudaGetLastError();
    case 4:
      RmsNormVecKernel<4><<<static_cast<unsigned>(args.rows), threads, 0, stream>>>(args);
      return cudaGetLastError();
    default:
      break;
  }
  RmsNormKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t LaunchRowSumSquares(const RowSumSquaresArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0 || args.rows > 0x7fffffff || args.y == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (args.rows == 0) return cudaSuccess;
  RowSumSquaresKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace turbovid::kernels
