// Shape validation of op structs shared by every backend, so the CPU reference and the CUDA
// backend reject the same calls with the same messages. Dtype/device checks stay per backend.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"

namespace turbovid::engine {

// InvalidArgument "op: what is <desc>, want <shape>" (or "is missing").
absl::Status ExpectShape(const std::string& op, const std::string& what, const Tensor* t,
                         const Shape& shape);
// A modulation/gate operand: E values broadcast to every row (stride 0) or M·E values (stride E);
// null → 0.
absl::StatusOr<int64_t> RowStride(const std::string& op, const std::string& what, const Tensor* t,
                                  int64_t m, int64_t e);

struct LinearDims {
  int64_t m, n, k;
};
absl::StatusOr<LinearDims> CheckLinear(const LinearOp& op);

struct LayerNormDims {
  int64_t m, e, scale_stride, shift_stride;
};
absl::StatusOr<LayerNormDims> CheckLayerNorm(const LayerNormOp& op);

struct GatedAddDims {
  int64_t m, e, gate_stride;
  LayerNormDims norm;  // with norm_y: the fused LayerNorm's (else zeros)
};
absl::StatusOr<GatedAddDims> CheckGatedAdd(const GatedAddOp& op);
// The LayerNormOp a GatedAddOp's fused norm stands for (x = the updated op.x).
LayerNormOp FusedLayerNorm(const GatedAddOp& op);

struct RmsNormDims {
  int64_t m, e;
  int64_t rope_pairs;  // P of the fused RoPE (head width 2P), 0 without
};
absl::StatusOr<RmsNormDims> CheckRmsNorm(const RmsNormOp& op);
// M (rows) of a valid RowSumSquaresOp.
absl::StatusOr<int64_t> CheckRowSumSquares(const RowSumSquaresOp& op);

struct AttentionDims {
  int64_t lq, lk, n, d, dv;
};
absl::StatusOr<AttentionDims> CheckAttention(const AttentionOp& op);

// Conv3dOp's fused fields (norm_gamma, norm_inv_rms, norm_inv_rms_prev, silu, residual) against
// x [cin, t, h, w] (t: x's own frames), x_prev's tp frames and y [cout, to, ho, wo]: shapes, the
// F32 statistics, the pairings (norm_gamma with norm_inv_rms; norm_inv_rms_prev exactly when
// x_prev is normed) and the residual's dtype (y's). Errors name the field.
absl::Status CheckConv3dFusion(const Conv3dOp& op, int64_t cin, int64_t t, int64_t h, int64_t w,
                               int64_t tp, const Shape& y_shape);
// P (positions) of a valid ChannelRmsStatsOp (inv_rms F32 [P] for x [C, P]).
absl::StatusOr<int64_t> CheckChannelRmsStats(const ChannelRmsStatsOp& op);

// Fp8LinearOp / Fp8QuantizeOp: shapes, and the dtypes that are the same on every backend (codes
// U8, scales F32); x, bias and y dtypes stay per backend. Errors name the tensor.
struct Fp8Dims {
  int64_t m, n, k;
};
absl::StatusOr<Fp8Dims> CheckFp8Linear(const Fp8LinearOp& op);
struct Fp8QuantizeDims {
  int64_t rows, cols;
};
absl::StatusOr<Fp8QuantizeDims> CheckFp8Quantize(const Fp8QuantizeOp& op);

}  // namespace turbovid::engine
