// FP8 e4m3 linear pieces besides the GEMM (docs/model-math.md §11.6): the per-row quantiser (codes
// and fp32 scales, bit-identical to engine/core/quantize.cc) and the bf16 epilogue (bias add, or
// the whole dequantisation when cuBLASLt's per-row/per-column scaling is not available).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/kernel_types.h"

namespace turbovid::kernels {

inline constexpr float kFp8E4m3Max = 448.f;

// Per row r of x: v = bf16(x), amax = max|v|, scale[r] = amax/448, q = e4m3_rn_satfinite(v·448/amax)
// (a zero row: scale 0, codes ±0).
struct QuantizeFp8Args {
  ConstBuf x;              // [rows, cols] BF16 or F32
  uint8_t* q = nullptr;    // [rows, cols] e4m3 codes
  float* scale = nullptr;  // [rows]
  int64_t rows = 0;
  int64_t cols = 0;
};
cudaError_t LaunchQuantizeFp8Rows(const QuantizeFp8Args& args, cudaStream_t stream);

// In place on y [rows, cols]: v = bf16(y), or, with acc, v = bf16(acc·row_scale·col_scale);
// then with a bias v = bf16(v + bf16(bias[c])). y is BF16 or F32 (holding bf16 values).
struct Fp8EpilogueArgs {
  MutBuf y;
  const float* acc = nullptr;        // [rows, cols] fp32 accumulator or null
  const float* row_scale = nullptr;  // [rows], with acc
  const float* col_scale = nullptr;  // [cols], with acc
  ConstBuf bias;                     // [cols] or null
  int64_t rows = 0;
  int64_t cols = 0;
};
cudaError_t LaunchFp8Epilogue(const Fp8EpilogueArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
