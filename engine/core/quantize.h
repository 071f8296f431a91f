// TurboDiffusion 128x128 block int8 quantisation (docs/model-math.md §11.2), shared by the offline
// weight converter (tiny -quant checkpoints, golden qlinear), the DiT and the CPU Int8LinearOp; in
// core so that the CPU backend need not include models/.
#pragma once

#include "absl/status/status.h"
#include "engine/core/tensor.h"

namespace turbovid::engine {

// Tile edge of the block quantiser and of the int8 GEMM's K blocks.
inline constexpr int64_t kInt8Block = 128;

// Quantises the bf16-rounded values of `w` per 128x128 tile (partial edge tiles use only their
// real elements): amax = max(1e-8, max|x|), q = round-half-even(x · (128/amax)) saturated to
// [-128, 127], stored scale = amax/128 (note the 128 divisor: +amax saturates to 127).
// w: [R, C] host F32; q_i8: [R, C] I8 (allocated); scale: [ceil(R/128), ceil(C/128)] F32.
absl::Status QuantizeBlockInt8(const Tensor& w, Tensor* q_i8, Tensor* scale);

// Per-row FP8 e4m3 quantiser (docs/model-math.md §11.7), the one definition the CPU backend's
// Fp8QuantizeOp / Fp8LinearOp use and the CUDA kernel reproduces bit for bit: v = bf16(x),
// amax = max|v| over the row (NaN ignored, as fmaxf does), inv = 448/amax and scale = amax/448
// (correctly rounded fp32 divisions), code = e4m3_rn_satfinite(v · inv) (fp32 product). A row
// with amax 0 gets scale 0 and inv 0 (codes ±0).
struct Fp8RowScale {
  float scale;  // amax / 448: the dequantisation factor
  float inv;    // 448 / amax: the quantisation factor
};
Fp8RowScale Fp8ScaleOfRow(const float* row, int64_t cols);
// x: [R, C] host F32; q: [R, C] U8 e4m3 codes (allocated); scale: [R] F32 (allocated).
absl::Status QuantizeRowsFp8(const Tensor& x, Tensor* q, Tensor* scale);

}  // namespace turbovid::engine
