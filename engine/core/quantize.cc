// Block int8 quantiser (see quantize.h); bit-exact with TurboDiffusion's quant_cuda / int8_quant.
#include "engine/core/quantize.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/core/fp8.h"
#include "engine/core/parallel.h"
#include "engine/core/rcp_approx.h"

namespace turbovid::engine {

absl::Status QuantizeBlockInt8(const Tensor& w, Tensor* q_i8, Tensor* scale) {
  if (!w.defined() || w.dtype() != DType::kF32 || w.rank() != 2 || w.device() != Device::kCpu) {
    return absl::InvalidArgumentError(absl::StrCat("quantize_int8: input ",
                                                   w.defined() ? w.Describe() : "<none>",
                                                   " must be a host F32 [R, C] tensor"));
  }
  const int64_t rows = w.dim(0), cols = w.dim(1);
  const int64_t row_tiles = (rows + kInt8Block - 1) / kInt8Block;
  const int64_t col_tiles = (cols + kInt8Block - 1) / kInt8Block;
  *q_i8 = Tensor::Zeros(DType::kI8, {rows, cols});
  *scale = Tensor::Zeros(DType::kF32, {row_tiles, col_tiles});
  const float* x = w.data<float>();
  int8_t* q = q_i8->data<int8_t>();
  float* s = scale->data<float>();
  for (int64_t rt = 0; rt < row_tiles; ++rt) {
    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t r0 = rt * kInt8Block, r1 = std::min(rows, r0 + kInt8Block);
      const int64_t c0 = ct * kInt8Block, c1 = std::min(cols, c0 + kInt8Block);
      float amax = 1e-8f;  // the kernel's atomicMax starts here, so an all-zero tile stays finite
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c)
          amax = std::max(amax, std::fabs(RoundToBf16(x[r * cols + c])));
      }
      // fp32 multiply by 128/amax, then cvt.rni.sat.s8: nearbyint rounds half to even in the
      // default rounding mode; saturation maps +amax·128/amax = 128 to 127. 128/amax as
      // upstream's fast-math build computes it: 128·rcp.approx(amax), exact scaling of the
      // approximate reciprocal (docs/model-math.md §11.3).
      const float inv = 128.f * RcpApprox(amax);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) {
          const float v = std::nearbyint(RoundToBf16(x[r * cols + c]) * inv);
          q[r * cols + c] = static_cast<int8_t>(std::clamp(v, -128.f, 127.f));
        }
      }
      s[rt * col_tiles + ct] = amax / 128.f;
    }
  }
  return absl::OkStatus();
}

Fp8RowScale Fp8ScaleOfRow(const float* row, int64_t cols) {
  float amax = 0.f;
  for (int64_t c = 0; c < cols; ++c) amax = std::fmax(amax, std::fabs(RoundToBf16(row[c])));
  if (amax == 0.f) return {0.f, 0.f};
  return {amax / kE4m3Max, kE4m3Max / amax};
}

absl::Status QuantizeRowsFp8(const Tensor& x, Tensor* q, Tensor* scale) {
  if (!x.defined() || x.dtype() != DType::kF32 || x.rank() != 2 || x.device() != Device::kCpu) {
    return absl::InvalidArgumentError(absl::StrCat("fp8_quantize: input ",
                                                   x.defined() ? x.Describe() : "<none>",
                                                   " must be a host F32 [R, C] tensor"));
  }
  const int64_t rows = x.dim(0), cols = x.dim(1);
  *q = Tensor::Zeros(DType::kU8, {rows, cols});
  *scale = Tensor::Zeros(DType::kF32, {rows});
  const float* v = x.data<float>();
  uint8_t* codes = q->data<uint8_t>();
  float* s = scale->data<float>();
  ParallelFor(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = v + r * cols;
      const Fp8RowScale rs = Fp8ScaleOfRow(row, cols);
      s[r] = rs.scale;
      for (int64_t c = 0; c < cols; ++c) codes[r * cols + c] = F32ToE4m3(RoundToBf16(row[c]) * rs.inv);
    }
  });
  return absl::OkStatus();
}

}  // namespace turbovid::engine
