// Ops helpers (see ops.h).
#include "engine/core/ops.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine {

std::vector<int64_t> ContiguousStrides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

absl::StatusOr<Tensor> Ops::Empty(Shape shape) const {
  return backend_.Allocate(backend_.compute_dtype(), std::move(shape));
}

absl::StatusOr<Tensor> Ops::Uninit(Shape shape) const {
  return backend_.AllocateUninitialized(backend_.compute_dtype(), std::move(shape));
}

absl::StatusOr<Tensor> Ops::Linear(const Tensor& x, const Tensor& w, const Tensor* bias,
                                   Activation act) const {
  TV_ASSIGN_OR_RETURN(Tensor y, Uninit({x.dim(0), w.dim(0)}));
  TV_RETURN_IF_ERROR(backend_.Run(LinearOp{&x, &w, bias, act, &y}));
  return y;
}

absl::StatusOr<Tensor> Ops::LayerNorm(const Tensor& x, const Tensor* weight, const Tensor* bias,
                                      const Tensor* scale, const Tensor* shift, float eps) const {
  TV_ASSIGN_OR_RETURN(Tensor y, Uninit(x.shape()));
  TV_RETURN_IF_ERROR(backend_.Run(LayerNormOp{&x, weight, bias, scale, shift, eps, &y}));
  return y;
}

absl::StatusOr<Tensor> Ops::RmsNorm(const Tensor& x, const Tensor* weight, float eps) const {
  TV_ASSIGN_OR_RETURN(Tensor y, Uninit(x.shape()));
  TV_RETURN_IF_ERROR(backend_.Run(RmsNormOp{&x, weight, eps, &y}));
  return y;
}

absl::StatusOr<Tensor> Ops::RmsNormRope(const Tensor& x, const Tensor* weight, float eps,
                                        const Tensor& cos, const Tensor& sin) const {
  TV_ASSIGN_OR_RETURN(Tensor y, Uninit(x.shape()));
  RmsNormOp op{&x, weight, eps, &y};
  op.rope_cos = &cos;
  op.rope_sin = &sin;
  TV_RETURN_IF_ERROR(backend_.Run(op));
  return y;
}

absl::StatusOr<Tensor> Ops::RmsNormShard(const Tensor& x, const Tensor* weight, float eps,
                                         const Tensor& row_sum_sq, int64_t full_width,
                                         const Tensor* cos, const Tensor* sin) const {
  TV_ASSIGN_OR_RETURN(Tensor y, Uninit(x.shape()));
  RmsNormOp op{&x, weight, eps, &y};
  op.rope_cos = cos;
  op.rope_sin = sin;
  op.row_sum_sq = &row_sum_sq;
  op.full_width = full_width;
  TV_RETURN_IF_ERROR(backend_.Run(op));
  return y;
}

absl::StatusOr<Tensor> Ops::RowSumSquares(const Tensor& x) const {
  if (x.rank() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("row_sum_squares: x ", x.Describe(), " must be [M, E]"));
  }
  TV_ASSIGN_OR_RETURN(Tensor y, backend_.AllocateUninitialized(DType::kF32, {x.dim(0)}));
  TV_RETURN_IF_ERROR(backend_.Run(RowSumSquaresOp{&x, &y}));
  return y;
}

absl::Status Ops::Rope(Tensor& x, const Tensor& cos, const Tensor& sin) const {
  return backend_.Run(RopeOp{&x, &cos, &sin});
}

absl::StatusOr<Tensor> Ops::Attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const Tensor* bias, float scale) const {
  TV_ASSIGN_OR_RETURN(Tensor out, Uninit({q.dim(0), q.dim(1), v.dim(2)}));
  TV_RETURN_IF_ERROR(backend_.Run(AttentionOp{&q, &k, &v, bias, scale, &out}));
  return out;
}

absl::StatusOr<Tensor> Ops::Unary(UnaryKind kind, const Tensor& x) const {
  TV_ASSIGN_OR_RETURN(Tensor y, Uninit(x.shape()));
  TV_RETURN_IF_ERROR(backend_.Run(UnaryOp{kind, &x, &y}));
  return y;
}

absl::StatusOr<Tensor> Ops::Binary(BinaryKind kind, const Tensor& a, const Tensor& b) const {
  TV_ASSIGN_OR_RETURN(Tensor y, Uninit(a.shape()));
  TV_RETURN_IF_ERROR(backend_.Run(BinaryOp{kind, &a, &b, &y}));
  return y;
}

absl::Status Ops::GatedAdd(Tensor& x, const Tensor& y, const Tensor* gate) const {
  return backend_.Run(GatedAddOp{&x, &y, gate});
}

absl::StatusOr<Tensor> Ops::GatedAddLayerNorm(Tensor& x, const Tensor& y, const Tensor* gate,
                                              const Tensor* weight, const Tensor* bias,
                                              const Tensor* scale, const Tensor* shift,
                                              float eps) const {
  TV_ASSIGN_OR_RETURN(Tensor n, Uninit(x.shape()));
  GatedAddOp op{&x, &y, gate};
  op.norm_y = &n;
  op.norm_weight = weight;
  op.norm_bias = bias;
  op.norm_scale = scale;
  op.norm_shift = shift;
  op.norm_eps = eps;
  TV_RETURN_IF_ERROR(backend_.Run(op));
  return n;
}

absl::StatusOr<Tensor> Ops::Permute(const Tensor& x, const std::vector<int>& perm) const {
  if (static_cast<int>(perm.size()) != x.rank() || x.rank() > CopyOp::kMaxRank) {
    return absl::InvalidArgumentError(absl::StrCat("permute: bad permutation for ", x.Describe()));
  }
  Shape out_shape(perm.size());
  std::vector<int64_t> src_strides = ContiguousStrides(x.shape());
  CopyOp op;
  op.src = &x;
  op.rank = x.rank();
  for (size_t i = 0; i < perm.size(); ++i) {
    out_shape[i] = x.dim(perm[i]);
    op.shape[i] = out_shape[i];
    op.src_strides[i] = src_strides[perm[i]];
  }
  TV_ASSIGN_OR_RETURN(Tensor y, backend_.AllocateUninitialized(x.dtype(), out_shape));
  std::vector<int64_t> dst_strides = ContiguousStrides(out_shape);
  for (size_t i = 0; i < perm.size(); ++i) op.dst_strides[i] = dst_strides[i];
  op.dst = &y;
  TV_RETURN_IF_ERROR(backend_.Run(op));
  return y;
}

absl::StatusOr<Tensor> Ops::Narrow(const Tensor& x, int axis, int64_t start, int64_t len) const {
  if (axis < 0) axis += x.rank();
  if (axis < 0 || axis >= x.rank() || start < 0 || len < 0 || start + len > x.dim(axis) ||
      x.rank() > CopyOp::kMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("narrow: [", start, ", ", start + len, ") on axis ", axis, " of ", x.Describe()));
  }
  Shape out_shape = x.shape();
  out_shape[axis] = len;
  TV_ASSIGN_OR_RETURN(Tensor y, backend_.AllocateUninitialized(x.dtype(), out_shape));
  if (len == 0) return y;
  std::vector<int64_t> ss = ContiguousStrides(x.shape()), ds = ContiguousStrides(out_shape);
  CopyOp op;
  op.src = &x;
  op.dst = &y;
  op.rank = x.rank();
  for (int i = 0; i < x.rank(); ++i) {
    op.shape[i] = out_shape[i];
    op.src_strides[i] = ss[i];
    op.dst_strides[i] = ds[i];
  }
  op.src_offset = start * ss[axis];
  TV_RETURN_IF_ERROR(backend_.Run(op));
  return y;
}

absl::Status Ops::CopyInto(const Tensor& src, Tensor& dst, const std::vector<int64_t>& offsets) const {
  if (src.rank() != dst.rank() || static_cast<int>(offsets.size()) != src.rank() ||
      src.rank() > CopyOp::kMaxRank) {
    return absl::InvalidArgumentError(absl::StrCat("copy_into: ", src.Describe(), " into ", dst.Describe()));
  }
  std::vector<int64_t> ss = ContiguousStrides(src.shape()), ds = ContiguousStrides(dst.shape());
  CopyOp op;
  op.src = &src;
  op.dst = &dst;
  op.rank = src.rank();
  for (int i = 0; i < src.rank(); ++i) {
    if (offsets[i] < 0 || offsets[i] + src.dim(i) > dst.dim(i)) {
      return absl::InvalidArgumentError(absl::StrCat("copy_into: ", src.Describe(), " at offset ", offsets[i],
                                                     " of axis ", i, " exceeds ", dst.Describe()));
    }
    op.shape[i] = src.dim(i);
    op.src_strides[i] = ss[i];
    op.dst_strides[i] = ds[i];
    op.dst_offset += offsets[i] * ds[i];
  }
  if (src.numel() == 0) return absl::OkStatus();
  return backend_.Run(op);
}

absl::StatusOr<Tensor> Ops::Concat(const std::vector<Tensor>& xs, int axis) const {
  if (xs.empty()) return absl::InvalidArgumentError("concat: no inputs");
  if (axis < 0) axis += xs[0].rank();
  Shape out_shape = xs[0].shape();
  out_shape[axis] = 0;
  for (const Tensor& x : xs) {
    for (int i = 0; i < x.rank(); ++i) {
      if (i != axis && (x.rank() != xs[0].rank() || x.dim(i) != xs[0].dim(i))) {
        return absl::InvalidArgumentError(
            absl::StrCat("concat: ", x.Describe(), " does not match ", xs[0].Describe()));
      }
    }
    out_shape[axis] += x.dim(axis);
  }
  TV_ASSIGN_OR_RETURN(Tensor y, backend_.AllocateUninitialized(xs[0].dtype(), out_shape));
  std::vector<int64_t> offsets(out_shape.size(), 0);
  for (const Tensor& x : xs) {
    TV_RETURN_IF_ERROR(CopyInto(x, y, offsets));
    offsets[axis] += x.dim(axis);
  }
  return y;
}

}  // namespace turbovid::engine
