// Row norms over the last dimension with fp32 math: LayerNorm (+ optional affine, + modulation
// y·(1+scale)+shift), RmsNorm (· weight; tensor-parallel shards with a given Σx²) and the row
// sums of squares behind a sharded RmsNorm.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/kernel_types.h"

namespace turbovid::kernels {

struct LayerNormArgs {
  ConstBuf x;       // [rows, cols]
  ConstBuf weight;  // [cols] or data == nullptr
  ConstBuf bias;    // [cols] or null
  ConstBuf scale;   // [cols] (scale_row_stride 0) or [rows, cols] (stride cols), or null
  ConstBuf shift;   // same layout rules as scale
  int64_t scale_row_stride = 0;
  int64_t shift_row_stride = 0;
  MutBuf y;  // [rows, cols]
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-6f;
};
cudaError_t LaunchLayerNorm(const LayerNormArgs& args, cudaStream_t stream);

// The residual update fused with the next LayerNorm, one pass over each row:
//   x[r, c] += y[r, c] · gate[r·gate_row_stride + c]   (y null: x only read; gate null: plain add)
//   norm.y[r] = LayerNorm(x[r]) as LaunchLayerNorm with norm's weight/bias/scale/shift/eps,
// computed from x as stored (rounded to x's type), so the result equals the two ops in sequence.
// x may be F32 (the DiT's fp32 residual stream) or BF16; norm.x is ignored (x is the input),
// norm.rows/cols must equal rows/cols.
struct AddLayerNormArgs {
  MutBuf x;  // [rows, cols]
  ConstBuf y;
  ConstBuf gate;
  int64_t gate_row_stride = 0;
  LayerNormArgs norm;
};
cudaError_t LaunchAddLayerNorm(const AddLayerNormArgs& args, cudaStream_t stream);

struct RmsNormArgs {
  ConstBuf x;       // [rows, cols]
  ConstBuf weight;  // [cols] or null
  MutBuf y;         // [rows, cols]
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-6f;
  // Optional fused RoPE: [rows, rope_pairs] fp32 tables; pair (2j, 2j+1) of the row uses column
  // j % rope_pairs (heads of width 2·rope_pairs). cols must be a multiple of 2·rope_pairs.
  const float* rope_cos = nullptr;
  const float* rope_sin = nullptr;
  int64_t rope_pairs = 0;
  // Tensor parallel: x is a shard of rows norm_cols wide and the mean square is
  // row_sum_sq[row] / norm_cols (the whole row's Σx²) instead of the shard's own.
  const float* row_sum_sq = nullptr;  // [rows] fp32 or null
  int64_t norm_cols = 0;              // with row_sum_sq: >= cols
};
cudaError_t LaunchRmsNorm(const RmsNormArgs& args, cudaStream_t stream);

// y[row] = Σ_j x[row, j]², fp32 (the partial statistic of a tensor-parallel RmsNorm).
struct RowSumSquaresArgs {
  ConstBuf x;          // [rows, cols]
  float* y = nullptr;  // [rows]
  int64_t rows = 0;
  int64_t cols = 0;
};
cudaError_t LaunchRowSumSquares(const RowSumSquaresArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
