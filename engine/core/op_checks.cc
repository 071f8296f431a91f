// Shared op shape checks (see op_checks.h).
#include "engine/core/op_checks.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine {

absl::Status ExpectShape(const std::string& op, const std::string& what, const Tensor* t,
                         const Shape& shape) {
  if (t == nullptr || !t->defined()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is missing"));
  }
  if (t->shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is ", t->Describe(), ", want ",
                                                   ShapeString(shape)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RowStride(const std::string& op, const std::string& what, const Tensor* t,
                                  int64_t m, int64_t e) {
  if (t == nullptr) return 0;
  if (t->numel() == e) return 0;
  if (t->numel() == m * e) return e;
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " ", t->Describe(), " holds neither ",
                                                 e, " nor ", m, "x", e, " values"));
}

namespace {
absl::Status ExpectF32Shape(const std::string& op, const std::string& what, const Tensor* t,
                            const Shape& shape) {
  TV_RETURN_IF_ERROR(ExpectShape(op, what, t, shape));
  if (t->dtype() != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", what, " is ", t->Describe(), ", want F32"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status CheckConv3dFusion(const Conv3dOp& op, int64_t cin, int64_t t, int64_t h, int64_t w,
                               int64_t tp, const Shape& y_shape) {
  const bool norm = op.norm_gamma != nullptr;
  if (norm != (op.norm_inv_rms != nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("conv3d: ", norm ? "norm_inv_rms is missing (norm_gamma is set)"
                                      : "norm_gamma is missing (norm_inv_rms is set)"));
  }
  if (norm) {
    TV_RETURN_IF_ERROR(ExpectShape("conv3d", "norm_gamma", op.norm_gamma, {cin}));
    TV_RETURN_IF_ERROR(ExpectF32Shape("conv3d", "norm_inv_rms", op.norm_inv_rms, {t, h, w}));
  }
  const bool want_prev = norm && tp > 0;
  if (want_prev) {
    TV_RETURN_IF_ERROR(
        ExpectF32Shape("conv3d", "norm_inv_rms_prev", op.norm_inv_rms_prev, {tp, h, w}));
  } else if (op.norm_inv_rms_prev != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("conv3d: norm_inv_rms_prev ", op.norm_inv_rms_prev->Describe(),
                     " is set without ", norm ? "x_prev" : "norm_gamma"));
  }
  if (op.residual != nullptr) {
    TV_RETURN_IF_ERROR(ExpectShape("conv3d", "residual", op.residual, y_shape));
    if (op.y != nullptr && op.residual->dtype() != op.y->dtype()) {
      return absl::InvalidArgumentError(
          absl::StrCat("conv3d: residual ", op.residual->Describe(), " is not ",
                       std::string(DTypeName(op.y->dtype())), " like y"));
    }
    const auto overlaps = [](const Tensor& a, const Tensor& b) {
      if (a.storage() != b.storage()) return false;
      const size_t a0 = a.byte_offset(), b0 = b.byte_offset();
      return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
    };
    if (overlaps(*op.residual, *op.x) ||
        (op.x_prev != nullptr && overlaps(*op.residual, *op.x_prev))) {
      return absl::InvalidArgumentError(
          absl::StrCat("conv3d: residual ", op.residual->Describe(), " overlaps x or x_prev"));
    }
    if (op.y != nullptr && overlaps(*op.residual, *op.y) &&
        (op.residual->byte_offset() != op.y->byte_offset())) {
      return absl::InvalidArgumentError(absl::StrCat("conv3d: residual ", op.residual->Describe(),
                                                     " overlaps y without being y"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CheckChannelRmsStats(const ChannelRmsStatsOp& op) {
  if (op.x == nullptr || !op.x->defined() || op.x->rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel_rms_stats: x ", op.x != nullptr ? op.x->Describe() : "missing", " is not [C, P]"));
  }
  TV_RETURN_IF_ERROR(ExpectF32Shape("channel_rms_stats", "inv_rms", op.inv_rms, {op.x->dim(1)}));
  return op.x->dim(1);
}

absl::StatusOr<LinearDims> CheckLinear(const LinearOp& op) {
  if (op.x == nullptr || op.w == nullptr || op.x->rank() != 2 || op.w->rank() != 2 ||
      op.x->dim(1) != op.w->dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat("linear: x ", op.x ? op.x->Describe() : "missing",
                                                   " and w ", op.w ? op.w->Describe() : "missing",
                                                   " do not chain"));
  }
  const LinearDims d{op.x->dim(0), op.w->dim(0), op.x->dim(1)};
  TV_RETURN_IF_ERROR(ExpectShape("linear", "y", op.y, {d.m, d.n}));
  if (op.bias != nullptr) TV_RETURN_IF_ERROR(ExpectShape("linear", "bias", op.bias, {d.n}));
  return d;
}

namespace {

absl::Status ExpectTyped(const std::string& op, const std::string& what, const Tensor* t,
                         DType dtype, const Shape& shape) {
  TV_RETURN_IF_ERROR(ExpectShape(op, what, t, shape));
  if (t->dtype() != dtype) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is ", t->Describe(), ", want ",
                                                   std::string(DTypeName(dtype))));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Fp8Dims> CheckFp8Linear(const Fp8LinearOp& op) {
  constexpr char kOp[] = "fp8_linear";
  if (op.x == nullptr || !op.x->defined() || op.x->rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": x ", op.x && op.x->defined() ? op.x->Describe() : "missing", " must be [M, K]"));
  }
  if (op.w_fp8 == nullptr || !op.w_fp8->defined() || op.w_fp8->rank() != 2 ||
      op.w_fp8->dtype() != DType::kU8) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": w_fp8 ", op.w_fp8 && op.w_fp8->defined() ? op.w_fp8->Describe() : "missing",
                     " must be U8 [N, K] (e4m3 codes)"));
  }
  if (op.x->dim(1) != op.w_fp8->dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": x ", op.x->Describe(), " and w_fp8 ",
                                                   op.w_fp8->Describe(), " do not chain"));
  }
  const Fp8Dims d{op.x->dim(0), op.w_fp8->dim(0), op.x->dim(1)};
  TV_RETURN_IF_ERROR(ExpectTyped(kOp, "w_scale", op.w_scale, DType::kF32, {d.n}));
  if (op.bias != nullptr) TV_RETURN_IF_ERROR(ExpectShape(kOp, "bias", op.bias, {d.n}));
  TV_RETURN_IF_ERROR(ExpectShape(kOp, "y", op.y, {d.m, d.n}));
  if (op.x_fp8 != nullptr) TV_RETURN_IF_ERROR(ExpectTyped(kOp, "x_fp8", op.x_fp8, DType::kU8, {d.m, d.k}));
  if (op.x_scale != nullptr) {
    TV_RETURN_IF_ERROR(ExpectTyped(kOp, "x_scale", op.x_scale, DType::kF32, {d.m}));
  }
  return d;
}

absl::StatusOr<Fp8QuantizeDims> CheckFp8Quantize(const Fp8QuantizeOp& op) {
  constexpr char kOp[] = "fp8_quantize";
  if (op.x == nullptr || !op.x->defined() || op.x->rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": x ", op.x && op.x->defined() ? op.x->Describe() : "missing", " must be [R, C]"));
  }
  const Fp8QuantizeDims d{op.x->dim(0), op.x->dim(1)};
  TV_RETURN_IF_ERROR(ExpectTyped(kOp, "q", op.q, DType::kU8, {d.rows, d.cols}));
  TV_RETURN_IF_ERROR(ExpectTyped(kOp, "scale", op.scale, DType::kF32, {d.rows}));
  return d;
}

absl::StatusOr<LayerNormDims> CheckLayerNorm(const LayerNormOp& op) {
  if (op.x == nullptr || op.x->rank() != 2) return absl::InvalidArgumentError("layer_norm: x must be [M, E]");
  LayerNormDims d{op.x->dim(0), op.x->dim(1), 0, 0};
  TV_RETURN_IF_ERROR(ExpectShape("layer_norm", "y", op.y, {d.m, d.e}));
  if (op.weight) TV_RETURN_IF_ERROR(ExpectShape("layer_norm", "weight", op.weight, {d.e}));
  if (op.bias) TV_RETURN_IF_ERROR(ExpectShape("layer_norm", "bias", op.bias, {d.e}));
  TV_ASSIGN_OR_RETURN(d.scale_stride, RowStride("layer_norm", "scale", op.scale, d.m, d.e));
  TV_ASSIGN_OR_RETURN(d.shift_stride, RowStride("layer_norm", "shift", op.shift, d.m, d.e));
  return d;
}

LayerNormOp FusedLayerNorm(const GatedAddOp& op) {
  LayerNormOp ln;
  ln.x = op.x;
  ln.weight = op.norm_weight;
  ln.bias = op.norm_bias;
  ln.scale = op.norm_scale;
  ln.shift = op.norm_shift;
  ln.eps = op.norm_eps;
  ln.y = op.norm_y;
  return ln;
}

absl::StatusOr<GatedAddDims> CheckGatedAdd(const GatedAddOp& op) {
  if (op.x == nullptr || !op.x->defined() || op.x->rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gated_add: x ", op.x && op.x->defined() ? op.x->Describe() : "<missing>", " must be [M, E]"));
  }
  GatedAddDims d{op.x->dim(0), op.x->dim(1), 0, {0, 0, 0, 0}};
  TV_RETURN_IF_ERROR(ExpectShape("gated_add", "y", op.y, {d.m, d.e}));
  TV_ASSIGN_OR_RETURN(d.gate_stride, RowStride("gated_add", "gate", op.gate, d.m, d.e));
  if (op.norm_y == nullptr) {
    for (const auto& [what, t] : {std::pair{"norm_weight", op.norm_weight}, {"norm_bias", op.norm_bias},
                                  {"norm_scale", op.norm_scale}, {"norm_shift", op.norm_shift}}) {
      if (t != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("gated_add: ", what, " is set without norm_y"));
      }
    }
    return d;
  }
  const absl::StatusOr<LayerNormDims> norm = CheckLayerNorm(FusedLayerNorm(op));
  if (!norm.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("gated_add (fused norm_*): ", norm.status().message()));
  }
  d.norm = *norm;
  return d;
}

absl::StatusOr<AttentionDims> CheckAttention(const AttentionOp& op) {
  if (op.q == nullptr || op.k == nullptr || op.v == nullptr || op.q->rank() != 3 ||
      op.k->rank() != 3 || op.v->rank() != 3) {
    return absl::InvalidArgumentError("attention: q, k, v must be [L, N, D]");
  }
  const AttentionDims d{op.q->dim(0), op.k->dim(0), op.q->dim(1), op.q->dim(2), op.v->dim(2)};
  TV_RETURN_IF_ERROR(ExpectShape("attention", "k", op.k, {d.lk, d.n, d.d}));
  TV_RETURN_IF_ERROR(ExpectShape("attention", "v", op.v, {d.lk, d.n, d.dv}));
  TV_RETURN_IF_ERROR(ExpectShape("attention", "out", op.out, {d.lq, d.n, d.dv}));
  if (op.bias) TV_RETURN_IF_ERROR(ExpectShape("attention", "bias", op.bias, {d.n, d.lq, d.lk}));
  return d;
}

absl::StatusOr<RmsNormDims> CheckRmsNorm(const RmsNormOp& op) {
  if (op.x == nullptr || !op.x->defined()) return absl::InvalidArgumentError("rms_norm: x is missing");
  if (op.x->rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("rms_norm: x ", op.x->Describe(), " must be [M, E]"));
  }
  RmsNormDims d{op.x->dim(0), op.x->dim(1), 0};
  TV_RETURN_IF_ERROR(ExpectShape("rms_norm", "y", op.y, {d.m, d.e}));
  if (op.weight) TV_RETURN_IF_ERROR(ExpectShape("rms_norm", "weight", op.weight, {d.e}));
  if ((op.rope_cos == nullptr) != (op.rope_sin == nullptr)) {
    return absl::InvalidArgumentError("rms_norm: rope_cos and rope_sin must be given together");
  }
  if (op.rope_cos != nullptr) {
    if (op.rope_cos->rank() != 2 || op.rope_cos->dim(0) != d.m || op.rope_cos->dim(1) <= 0 ||
        d.e % (2 * op.rope_cos->dim(1)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("rms_norm: rope_cos ", op.rope_cos->Describe(),
                                                     " must be [", d.m, ", P] with E = ", d.e,
                                                     " a multiple of 2P"));
    }
    d.rope_pairs = op.rope_cos->dim(1);
    TV_RETURN_IF_ERROR(ExpectShape("rms_norm", "rope_sin", op.rope_sin, {d.m, d.rope_pairs}));
    if (op.rope_cos->dtype() != DType::kF32 || op.rope_sin->dtype() != DType::kF32) {
      return absl::InvalidArgumentError("rms_norm: rope tables must be F32");
    }
  }
  if (op.row_sum_sq != nullptr) {
    TV_RETURN_IF_ERROR(ExpectShape("rms_norm", "row_sum_sq", op.row_sum_sq, {d.m}));
    if (op.row_sum_sq->dtype() != DType::kF32 || op.full_width < d.e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rms_norm: row_sum_sq ", op.row_sum_sq->Describe(), " must be F32 with full_width ",
          op.full_width, " >= E = ", d.e));
    }
  }
  return d;
}

absl::StatusOr<int64_t> CheckRowSumSquares(const RowSumSquaresOp& op) {
  if (op.x == nullptr || !op.x->defined() || op.x->rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "row_sum_squares: x ", op.x ? op.x->Describe() : "(missing)", " must be [M, E]"));
  }
  TV_RETURN_IF_ERROR(ExpectShape("row_sum_squares", "y", op.y, {op.x->dim(0)}));
  if (op.y->dtype() != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat("row_sum_squares: y ", op.y->Describe(), " must be F32"));
  }
  return op.x->dim(0);
}

}  // namespace turbovid::engine
