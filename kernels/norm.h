// Row norms over the last dimension with fp32 math: LayerNorm (+ optional affine, + modulation
// y·(1+scale)+shift) and RmsNorm (· weight).
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
};
cudaError_t LaunchRmsNorm(const RmsNormArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
