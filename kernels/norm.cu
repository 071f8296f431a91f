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

// Vector path for BF16 rows with cols % 8 == 0: each thread keeps V 16-byte vectors of its row in
// registers, so x is read once; statistics are the same two-pass fp32 sums. (The LayerNorm's own
// vector path is AddLayerNormVecKernel without y, below.)
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

// AddLayerNorm (and, without y, LayerNorm's vector path): one block per row; each thread keeps V
// groups of 8 consecutive columns of the updated row in registers (read once, written once). x F32 (two 16-byte vectors per group) or
// BF16 (one); y and the output BF16 16-byte vectors.
template <int V, bool kXF32>
__global__ void AddLayerNormVecKernel(AddLayerNormArgs a) {
  __shared__ float smem[32];
  const LayerNormArgs& n = a.norm;
  const int64_t row = blockIdx.x;
  const int64_t nvec = n.cols / 8;
  const uint4* yr = a.y.data ? static_cast<const uint4*>(a.y.data) + row * nvec : nullptr;
  float v[V][8];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j >= nvec) continue;
    if constexpr (kXF32) {
      const float4* xr = static_cast<const float4*>(a.x.data) + row * nvec * 2;
      const float4 lo = xr[2 * j], hi = xr[2 * j + 1];
      v[i][0] = lo.x, v[i][1] = lo.y, v[i][2] = lo.z, v[i][3] = lo.w;
      v[i][4] = hi.x, v[i][5] = hi.y, v[i][6] = hi.z, v[i][7] = hi.w;
    } else {
      detail::Bf16x8ToFloat(static_cast<const uint4*>(a.x.data)[row * nvec + j], v[i]);
    }
    if (yr != nullptr) {
      float yv[8];
      detail::Bf16x8ToFloat(yr[j], yv);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float g = a.gate.data ? Load(a.gate, row * a.gate_row_stride + j * 8 + e) : 1.f;
        v[i][e] += yv[e] * g;
      }
      if constexpr (kXF32) {
        float4* xw = static_cast<float4*>(a.x.data) + row * nvec * 2;
        xw[2 * j] = make_float4(v[i][0], v[i][1], v[i][2], v[i][3]);
        xw[2 * j + 1] = make_float4(v[i][4], v[i][5], v[i][6], v[i][7]);
      } else {
        const uint4 packed = detail::FloatToBf16x8(v[i]);
        static_cast<uint4*>(a.x.data)[row * nvec + j] = packed;
        detail::Bf16x8ToFloat(packed, v[i]);  // the norm sees x as stored
      }
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) s += v[i][e];
  }
  const float mean = BlockSum(s, smem) / static_cast<float>(n.cols);
  float q = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j < nvec) {
#pragma unroll
      for (int e = 0; e < 8; ++e) q += (v[i][e] - mean) * (v[i][e] - mean);
    }
  }
  const float inv = rsqrtf(BlockSum(q, smem) / static_cast<float>(n.cols) + n.eps);
  uint4* out = static_cast<uint4*>(n.y.data) + row * nvec;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (j >= nvec) continue;
    float o[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int64_t c = j * 8 + e;
      float y = (v[i][e] - mean) * inv;
      if (n.weight.data) y *= Load(n.weight, c);
      if (n.bias.data) y += Load(n.bias, c);
      if (n.scale.data) y *= 1.f + Load(n.scale, row * n.scale_row_stride + c);
      if (n.shift.data) y += Load(n.shift, row * n.shift_row_stride + c);
      o[e] = y;
    }
    out[j] = detail::FloatToBf16x8(o);
  }
}

// Any types and widths: the update written first, then the LayerNorm kernel's passes over x as
// stored (each thread re-reads only the columns it wrote, so no barrier is needed between them).
__global__ void AddLayerNormKernel(AddLayerNormArgs a) {
  const int64_t row = blockIdx.x, base = row * a.norm.cols;
  if (a.y.data) {
    for (int64_t j = threadIdx.x; j < a.norm.cols; j += blockDim.x) {
      const float g = a.gate.data ? Load(a.gate, row * a.gate_row_stride + j) : 1.f;
      Store(a.x, base + j, Load(a.x, base + j) + Load(a.y, base + j) * g);
    }
  }
  LayerNormArgs n = a.norm;
  n.x = ConstBuf{a.x.data, a.x.type};
  __shared__ float smem[32];
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < n.cols; j += blockDim.x) s += Load(n.x, base + j);
  const float mean = BlockSum(s, smem) / static_cast<float>(n.cols);
  float q = 0.f;
  for (int64_t j = threadIdx.x; j < n.cols; j += blockDim.x) {
    const float d = Load(n.x, base + j) - mean;
    q += d * d;
  }
  const float inv = rsqrtf(BlockSum(q, smem) / static_cast<float>(n.cols) + n.eps);
  for (int64_t j = threadIdx.x; j < n.cols; j += blockDim.x) {
    float y = (Load(n.x, base + j) - mean) * inv;
    if (n.weight.data) y *= Load(n.weight, j);
    if (n.bias.data) y += Load(n.bias, j);
    if (n.scale.data) y *= 1.f + Load(n.scale, row * n.scale_row_stride + j);
    if (n.shift.data) y += Load(n.shift, row * n.shift_row_stride + j);
    Store(n.y, base + j, y);
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

// The vector path of AddLayerNorm: x F32 or BF16, y BF16 or absent, output BF16, all 16-byte
// aligned, cols % 8 == 0. Returns false when not taken.
bool LaunchAddLayerNormVec(const AddLayerNormArgs& a, cudaStream_t stream, cudaError_t* err) {
  const LayerNormArgs& n = a.norm;
  const bool x_f32 = a.x.type == ElemType::kF32;
  if (n.cols % 8 != 0 || reinterpret_cast<uintptr_t>(a.x.data) % 16 != 0 ||
      !(x_f32 || a.x.type == ElemType::kBF16) || !detail::VecBf16(n.y.data, n.y.type) ||
      (a.y.data != nullptr && !detail::VecBf16(a.y.data, a.y.type))) {
    return false;
  }
  int threads = 0;
  // VecPlan's thread count for cols (its bf16 checks are met by the output twice).
  const int v = VecPlan(n.cols, n.y.data, n.y.type, n.y.data, n.y.type, &threads);
  const unsigned grid = static_cast<unsigned>(n.rows);
#define TV_ADD_LN(V, F) AddLayerNormVecKernel<V, F><<<grid, threads, 0, stream>>>(a)
  switch (v * 2 + (x_f32 ? 1 : 0)) {
    case 2: TV_ADD_LN(1, false); break;
    case 3: TV_ADD_LN(1, true); break;
    case 4: TV_ADD_LN(2, false); break;
    case 5: TV_ADD_LN(2, true); break;
    case 8: TV_ADD_LN(4, false); break;
    case 9: TV_ADD_LN(4, true); break;
    default: return false;
  }
#undef TV_ADD_LN
  *err = cudaGetLastError();
  return true;
}

}  // namespace

cudaError_t LaunchLayerNorm(const LayerNormArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0 || args.rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  // The vector path (x BF16 or F32, y BF16): AddLayerNorm's kernel without y.
  AddLayerNormArgs add;
  add.x = MutBuf{const_cast<void*>(args.x.data), args.x.type};  // only read without y
  add.norm = args;
  cudaError_t err = cudaSuccess;
  if (LaunchAddLayerNormVec(add, stream, &err)) return err;
  LayerNormKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}


cudaError_t LaunchAddLayerNorm(const AddLayerNormArgs& args, cudaStream_t stream) {
  const LayerNormArgs& n = args.norm;
  if (n.rows < 0 || n.cols <= 0 || n.rows > 0x7fffffff || args.x.data == nullptr ||
      n.y.data == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (n.rows == 0) return cudaSuccess;
  cudaError_t err = cudaSuccess;
  if (LaunchAddLayerNormVec(args, stream, &err)) return err;
  AddLayerNormKernel<<<static_cast<unsigned>(n.rows), kThreads, 0, stream>>>(args);
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
