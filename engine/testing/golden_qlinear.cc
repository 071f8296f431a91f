// Golden runner for the 'qlinear' kind: offline weight quantisation and the W8A8 Int8LinearOp
// against the bit-level emulation of TurboDiffusion's quant/GEMM kernels.
#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/quantize.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {
namespace {

double MaxAbs(const Tensor& t) {
  auto f = ToF64(t);
  double m = 0;
  if (!f.ok()) return 0;
  for (int64_t i = 0; i < f->numel(); ++i) m = std::max(m, std::abs(f->data<double>()[i]));
  return m;
}

// The case holds one Linear ('<prefix>.weight', '<prefix>.bias'): finds the prefix and checks the
// offline quantisation of its weight; returns the prefix, int8 weight and scales.
absl::Status CheckWeightQuantisation(const GoldenCase& c, io::WeightSet& weights, double scale_rel,
                                     GoldenReport& r, std::string* prefix, Tensor* w_int8,
                                     Tensor* w_scale) {
  for (const auto& [name, entry] : weights.entries()) {
    if (absl::EndsWith(name, ".weight")) *prefix = name.substr(0, name.size() - 7);
  }
  if (prefix->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(c.dir, ": no '*.weight' tensor"));
  }
  const Tensor& w_raw = weights.Find(*prefix + ".weight")->tensor;
  if (w_raw.rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(*prefix, ".weight is not 2-D"));
  }
  TV_ASSIGN_OR_RETURN(Tensor w_host, ToF32(w_raw));
  TV_RETURN_IF_ERROR(QuantizeBlockInt8(w_host, w_int8, w_scale));
  TV_ASSIGN_OR_RETURN(Tensor want_wq, c.Expected(*prefix + ".int8_weight"));
  TV_ASSIGN_OR_RETURN(Tensor want_ws, c.Expected(*prefix + ".scale"));
  r.Exact(*prefix + ".int8_weight", *w_int8, want_wq);
  r.Close(*prefix + ".scale", *w_scale, want_ws, scale_rel * MaxAbs(want_ws));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunQlinearCase(const GoldenCase& c, Backend& b, GoldenReport& r) {
  TV_ASSIGN_OR_RETURN(io::WeightSet weights, c.LoadWeights());
  const Json* tol_json = c.json.Find("tolerance");
  const double scale_rel = tol_json ? tol_json->NumberOr("scale_max_rel", 1e-6) : 1e-6;
  std::string prefix;
  Tensor w_int8, w_scale;
  TV_RETURN_IF_ERROR(CheckWeightQuantisation(c, weights, scale_rel, r, &prefix, &w_int8, &w_scale));
  const int64_t n = w_int8.dim(0), k = w_int8.dim(1);

  TV_ASSIGN_OR_RETURN(Tensor x_raw, c.Input("x"));
  if (x_raw.rank() != 2 || x_raw.dim(1) != k) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.dir, ": x ", x_raw.Describe(), " vs weight ", w_int8.Describe()));
  }
  const int64_t m = x_raw.dim(0), blk = kInt8Block;
  TV_ASSIGN_OR_RETURN(Tensor x, b.Upload(x_raw, b.compute_dtype()));
  TV_ASSIGN_OR_RETURN(Tensor wq, b.Upload(w_int8, DType::kI8));
  TV_ASSIGN_OR_RETURN(Tensor ws, b.Upload(w_scale, DType::kF32));
  TV_ASSIGN_OR_RETURN(Tensor bias, weights.Take(prefix + ".bias", {n}, b, b.compute_dtype()));
  TV_ASSIGN_OR_RETURN(Tensor y, b.Allocate(b.compute_dtype(), {m, n}));
  TV_ASSIGN_OR_RETURN(Tensor xq, b.Allocate(DType::kI8, {m, k}));
  TV_ASSIGN_OR_RETURN(Tensor xs,
                      b.Allocate(DType::kF32, {(m + blk - 1) / blk, (k + blk - 1) / blk}));
  TV_ASSIGN_OR_RETURN(Tensor acc, b.Allocate(DType::kF32, {m, n}));
  Int8LinearOp op;
  op.x = &x;
  op.w_int8 = &wq;
  op.w_scale = &ws;
  op.bias = &bias;
  op.y = &y;
  op.x_int8 = &xq;
  op.x_scale = &xs;
  op.acc = &acc;
  TV_RETURN_IF_ERROR(b.Run(op));

  const double tol = c.Tolerance(b.compute_dtype() == DType::kF32);
  TV_ASSIGN_OR_RETURN(Tensor xq_host, b.Download(xq));
  TV_ASSIGN_OR_RETURN(Tensor xs_host, b.Download(xs));
  TV_ASSIGN_OR_RETURN(Tensor acc_host, b.Download(acc));
  TV_ASSIGN_OR_RETURN(Tensor y_host, b.Download(y));
  TV_ASSIGN_OR_RETURN(Tensor want_xq, c.Expected("x_int8"));
  TV_ASSIGN_OR_RETURN(Tensor want_xs, c.Expected("x_scale"));
  TV_ASSIGN_OR_RETURN(Tensor want_acc, c.Expected("acc_fp32"));
  TV_ASSIGN_OR_RETURN(Tensor want_out, c.Expected("out"));
  r.Exact("x_int8", xq_host, want_xq);
  r.Close("x_scale", xs_host, want_xs, scale_rel * MaxAbs(want_xs));
  r.Compare("acc_fp32", acc_host, want_acc, tol);
  r.Compare("out", y_host, want_out, tol);
  return absl::OkStatus();
}

}  // namespace turbovid::engine::golden
