// Elementwise and data-movement kernels (fp32 math): activations, broadcast add/mul, gated
// residual add, bias + activation epilogue, interleaved RoPE, embedding gather, strided copy.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/kernel_types.h"

namespace turbovid::kernels {

enum class UnaryFn : int { kIdentity = 0, kGeluTanh = 1, kSilu = 2 };

// y[i] = f(x[i]); y may alias x.
struct UnaryArgs {
  UnaryFn fn = UnaryFn::kIdentity;
  ConstBuf x;
  MutBuf y;
  int64_t n = 0;
};
cudaError_t LaunchUnary(const UnaryArgs& args, cudaStream_t stream);

enum class BinaryFn : int { kAdd = 0, kMul = 1 };
// y[i] = a[i] (op) b[i % nb]; y may alias a.
struct BinaryArgs {
  BinaryFn fn = BinaryFn::kAdd;
  ConstBuf a;
  ConstBuf b;
  MutBuf y;
  int64_t n = 0;
  int64_t nb = 0;
};
cudaError_t LaunchBinary(const BinaryArgs& args, cudaStream_t stream);

// x[r, c] += y[r, c] · gate[r·gate_row_stride + c] (gate null → plain add), fp32 math.
struct GatedAddArgs {
  MutBuf x;
  ConstBuf y;
  ConstBuf gate;
  int64_t gate_row_stride = 0;
  int64_t rows = 0;
  int64_t cols = 0;
};
cudaError_t LaunchGatedAdd(const GatedAddArgs& args, cudaStream_t stream);

// y[r, c] = f(y[r, c] + bias[c]) in place (bias may be null): the GEMM epilogue fallback.
struct BiasActArgs {
  MutBuf y;
  ConstBuf bias;
  UnaryFn fn = UnaryFn::kIdentity;
  int64_t rows = 0;
  int64_t cols = 0;
};
cudaError_t LaunchBiasAct(const BiasActArgs& args, cudaStream_t stream);

// In-place interleaved rotary embedding: x [L, N, D], cos/sin [L, D/2].
struct RopeArgs {
  MutBuf x;
  ConstBuf cos;
  ConstBuf sin;
  int64_t l = 0;
  int64_t heads = 0;
  int64_t d = 0;
};
cudaError_t LaunchRope(const RopeArgs& args, cudaStream_t stream);

// y[i, :] = table[ids[i], :]; ids are device int64 already range-checked by the caller.
struct EmbeddingArgs {
  ConstBuf table;
  const int64_t* ids = nullptr;
  MutBuf y;
  int64_t l = 0;
  int64_t cols = 0;
};
cudaError_t LaunchEmbedding(const EmbeddingArgs& args, cudaStream_t stream);

// Strided box copy of raw elements of `elem_bytes` (1, 2, 4 or 8); rank ≤ 6, strides in elements.
struct CopyArgs {
  static constexpr int kMaxRank = 6;
  const void* src = nullptr;
  void* dst = nullptr;
  int elem_bytes = 0;
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t src_strides[kMaxRank] = {};
  int64_t dst_strides[kMaxRank] = {};
  int64_t src_offset = 0;
  int64_t dst_offset = 0;
};
cudaError_t LaunchCopy(const CopyArgs& args, cudaStream_t stream);

// y[r, :] = softmax(x[r, :] · scale) per row, fp32 math (the GEMM-based attention path).
struct SoftmaxRowsArgs {
  ConstBuf x;  // [rows, cols]
  MutBuf y;    // [rows, cols]
  int64_t rows = 0;
  int64_t cols = 0;
  float scale = 1.f;
};
cudaError_t LaunchSoftmaxRows(const SoftmaxRowsArgs& args, cudaStream_t stream);

// Type conversion between F32 and BF16 buffers of n elements (RNE).
struct ConvertArgs {
  ConstBuf x;
  MutBuf y;
  int64_t n = 0;
};
cudaError_t LaunchConvert(const ConvertArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
