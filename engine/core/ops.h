// Functional helpers over a Backend: allocate the output, fill the op struct, run it.
// Model code uses these so that a forward pass reads like the math.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"

namespace turbovid::engine {

class Ops {
 public:
  explicit Ops(const Backend& backend) : backend_(const_cast<Backend&>(backend)) {}
  Backend& backend() const { return backend_; }

  absl::StatusOr<Tensor> Empty(Shape shape) const;  // compute dtype, zero-filled
  // Compute dtype, contents undefined: for tensors the next op overwrites entirely.
  absl::StatusOr<Tensor> Uninit(Shape shape) const;
  absl::StatusOr<Tensor> Linear(const Tensor& x, const Tensor& w, const Tensor* bias,
                                Activation act = Activation::kNone) const;
  absl::StatusOr<Tensor> LayerNorm(const Tensor& x, const Tensor* weight, const Tensor* bias,
                                   const Tensor* scale, const Tensor* shift, float eps) const;
  absl::StatusOr<Tensor> RmsNorm(const Tensor& x, const Tensor* weight, float eps) const;
  // RmsNorm over [M, E] then RoPE on each D = 2·cos.dim(1) wide head, in one op.
  absl::StatusOr<Tensor> RmsNormRope(const Tensor& x, const Tensor* weight, float eps, const Tensor& cos,
                                     const Tensor& sin) const;
  // Tensor-parallel RMSNorm of x, one rank's columns of rows full_width wide: the mean square is
  // row_sum_sq / full_width (row_sum_sq [M] F32: Σx² all-reduced over the ranks); RoPE as above
  // when cos/sin are given.
  absl::StatusOr<Tensor> RmsNormShard(const Tensor& x, const Tensor* weight, float eps,
                                      const Tensor& row_sum_sq, int64_t full_width,
                                      const Tensor* cos, const Tensor* sin) const;
  // [M] F32: Σ over each row of x².
  absl::StatusOr<Tensor> RowSumSquares(const Tensor& x) const;
  absl::Status Rope(Tensor& x, const Tensor& cos, const Tensor& sin) const;
  absl::StatusOr<Tensor> Attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const Tensor* bias, float scale) const;
  absl::StatusOr<Tensor> Unary(UnaryKind kind, const Tensor& x) const;
  absl::StatusOr<Tensor> Binary(BinaryKind kind, const Tensor& a, const Tensor& b) const;
  absl::Status GatedAdd(Tensor& x, const Tensor& y, const Tensor* gate) const;
  // x += y · gate, then LayerNorm(x) (compute dtype) as LayerNorm() would give, in one op.
  absl::StatusOr<Tensor> GatedAddLayerNorm(Tensor& x, const Tensor& y, const Tensor* gate,
                                           const Tensor* weight, const Tensor* bias,
                                           const Tensor* scale, const Tensor* shift,
                                           float eps) const;

  // Data movement (CopyOp): new contiguous tensors.
  absl::StatusOr<Tensor> Permute(const Tensor& x, const std::vector<int>& perm) const;
  // x[..., start:start+len, ...] along `axis`.
  absl::StatusOr<Tensor> Narrow(const Tensor& x, int axis, int64_t start, int64_t len) const;
  // Concatenation along `axis`; all other dims must agree.
  absl::StatusOr<Tensor> Concat(const std::vector<Tensor>& xs, int axis) const;
  // Copies `src` into `dst` at `offsets` (one per dim of src/dst, equal ranks).
  absl::Status CopyInto(const Tensor& src, Tensor& dst, const std::vector<int64_t>& offsets) const;

 private:
  Backend& backend_;
};

// Row-major strides of `shape` in elements.
std::vector<int64_t> ContiguousStrides(const Shape& shape);

}  // namespace turbovid::engine
