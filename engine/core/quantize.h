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

}  // namespace turbovid::engine
