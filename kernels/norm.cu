// LayerNorm (+ affine, + modulation) and RmsNorm: one block per row, fp32 two-pass statistics.
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

__global__ void RmsNormKernel(RmsNormArgs a) {
  __shared__ float smem[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * a.cols;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    const float x = Load(a.x, base + j);
    s += x * x;
  }
  const float inv = rsqrtf(BlockSum(s, smem) / static_cast<float>(a.cols) + a.eps);
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

}  // namespace

cudaError_t LaunchLayerNorm(const LayerNormArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0 || args.rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  LayerNormKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const RmsNormArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0 || args.rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (args.rope_pairs < 0 || (args.rope_pairs > 0 && (args.cols % (2 * args.rope_pairs) != 0 ||
                                                      !args.rope_cos || !args.rope_sin))) {
    return cudaErrorInvalidValue;
  }
  if (args.rows == 0) return cudaSuccess;
  RmsNormKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace turbovid::kernels
