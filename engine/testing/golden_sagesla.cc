// Golden runner for the 'sagesla' kind: SageSparseLinearAttention on [1, H, N, D] bf16 q/k/v
// against upstream's GPU run: block map and lut, every quantised intermediate (q/k int8 codes and
// scales, k mean, V e4m3 codes and scales), the sparse branch and the output.
#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/ops.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {
namespace {

// [N, H, D] on the backend (any dtype) → [1, H, N, D] host.
absl::StatusOr<Tensor> ToHeadMajor(Backend& b, const Tensor& t) {
  TV_ASSIGN_OR_RETURN(Tensor host, b.Download(t));
  const int64_t l = t.dim(0), n = t.dim(1), d = t.dim(2);
  const size_t es = DTypeSize(host.dtype());
  Tensor out = Tensor::Zeros(host.dtype(), {1, n, l, d});
  const char* src = static_cast<const char*>(host.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t i = 0; i < l; ++i) {
    for (int64_t h = 0; h < n; ++h) {
      std::copy_n(src + ((i * n + h) * d) * es, d * es, dst + ((h * l + i) * d) * es);
    }
  }
  return out;
}

// lut [1, N, n_q, K] I32 as upstream's block_map_lut_triton writes it (its first K columns): the
// selected key blocks of each (head, query block) in ascending order, the first as an index and
// each later one as the step from the previous.
absl::StatusOr<Tensor> DeltaLutFromMap(const Tensor& map_host) {
  const int64_t n = map_host.dim(1), nq = map_host.dim(2), nk = map_host.dim(3);
  std::vector<int32_t> lut;
  int64_t per_row = -1;
  for (int64_t row = 0; row < n * nq; ++row) {
    int64_t count = 0, prev = 0;
    for (int64_t j = 0; j < nk; ++j) {
      if (map_host.data<int8_t>()[row * nk + j] != 0) {
        lut.push_back(static_cast<int32_t>(j - prev));
        prev = j;
        ++count;
      }
    }
    if (per_row >= 0 && count != per_row) {
      return absl::InternalError("sagesla: uneven block selection");
    }
    per_row = count;
  }
  Tensor lut_t = Tensor::Zeros(DType::kI32, {1, n, nq, per_row});
  std::copy(lut.begin(), lut.end(), lut_t.data<int32_t>());
  return lut_t;
}

// The variant named by the case (config.upstream_branch "sm89", else the sm90 one), checked
// against the block sizes the case states.
absl::StatusOr<SageSlaVariant> CaseVariant(const GoldenCase& c) {
  const SageSlaVariant v = c.config().StringOr("upstream_branch", "sm90") == "sm89"
                               ? SageSlaVariant::kSm89
                               : SageSlaVariant::kSm90;
  const int64_t bq = c.config().IntOr("BLKQ", SageSlaBlockQ(v));
  const int64_t bk = c.config().IntOr("BLKK", SageSlaBlockK(v));
  if (bq != SageSlaBlockQ(v) || bk != SageSlaBlockK(v)) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.dir, ": BLKQ ", bq, " x BLKK ", bk, " is not the ", SageSlaBlockQ(v), " x ",
        SageSlaBlockK(v), " of upstream branch ", c.config().StringOr("upstream_branch", "sm90")));
  }
  return v;
}

struct Probes {
  Tensor out, sparse_out, map, q_int8, q_scale, k_mean, k_int8, k_scale, v_fp8, v_scale;
};

absl::StatusOr<Probes> AllocateProbes(Backend& b, int64_t l, int64_t n, int64_t d,
                                      SageSlaVariant v) {
  const int64_t nq = (l + SageSlaBlockQ(v) - 1) / SageSlaBlockQ(v);
  const int64_t nk = (l + SageSlaBlockK(v) - 1) / SageSlaBlockK(v);
  Probes p;
  TV_ASSIGN_OR_RETURN(p.out, b.Allocate(b.compute_dtype(), {l, n, d}));
  TV_ASSIGN_OR_RETURN(p.sparse_out, b.Allocate(b.compute_dtype(), {l, n, d}));
  TV_ASSIGN_OR_RETURN(p.map, b.Allocate(DType::kI8, {n, nq, nk}));
  TV_ASSIGN_OR_RETURN(p.q_int8, b.Allocate(DType::kI8, {l, n, d}));
  TV_ASSIGN_OR_RETURN(p.q_scale, b.Allocate(DType::kF32, {n, nq}));
  TV_ASSIGN_OR_RETURN(p.k_mean, b.Allocate(DType::kF32, {n, d}));
  TV_ASSIGN_OR_RETURN(p.k_int8, b.Allocate(DType::kI8, {l, n, d}));
  TV_ASSIGN_OR_RETURN(p.k_scale, b.Allocate(DType::kF32, {n, nk}));
  TV_ASSIGN_OR_RETURN(p.v_fp8, b.Allocate(DType::kU8, {l, n, d}));
  TV_ASSIGN_OR_RETURN(p.v_scale, b.Allocate(DType::kF32, {n, d}));
  return p;
}

// Downloads `t` and gives it the expected tensor's shape (same element order).
absl::StatusOr<Tensor> AsExpected(Backend& b, const Tensor& t, const Tensor& want) {
  TV_ASSIGN_OR_RETURN(Tensor host, b.Download(t));
  if (host.numel() != want.numel()) return host;  // the comparison reports the shapes
  return host.Reshape(want.shape());
}

// Exact check of int8 / e4m3 codes, scale checks per element relative, per the case file.
absl::Status CheckQuantised(const GoldenCase& c, Backend& b, const Probes& p, GoldenReport& r) {
  const Json* tol = c.json.Find("tolerance");
  const double scale_rel = tol ? tol->NumberOr("scale_max_rel", 1e-6) : 1e-6;
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"q_int8", &p.q_int8},
                                {"k_int8", &p.k_int8},
                                {"v_fp8", &p.v_fp8}}) {
    TV_ASSIGN_OR_RETURN(Tensor want, c.Expected(name));
    TV_ASSIGN_OR_RETURN(Tensor got, ToHeadMajor(b, *t));
    r.Exact(name, got, want);
  }
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"q_scale", &p.q_scale},
                                {"k_scale", &p.k_scale},
                                {"k_mean", &p.k_mean},
                                {"v_scale", &p.v_scale}}) {
    TV_ASSIGN_OR_RETURN(Tensor want, c.Expected(name));
    TV_ASSIGN_OR_RETURN(Tensor got, AsExpected(b, *t, want));
    r.RelClose(name, got, want, scale_rel);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunSageSlaCase(const GoldenCase& c, Backend& b, GoldenReport& r) {
  Ops ops(b);
  TV_ASSIGN_OR_RETURN(const SageSlaVariant variant, CaseVariant(c));
  TV_ASSIGN_OR_RETURN(Tensor q_host, c.Input("q"));
  TV_ASSIGN_OR_RETURN(Tensor k_host, c.Input("k"));
  TV_ASSIGN_OR_RETURN(Tensor v_host, c.Input("v"));
  TV_ASSIGN_OR_RETURN(Tensor q, ToTokenMajor(ops, q_host, "sagesla"));
  TV_ASSIGN_OR_RETURN(Tensor k, ToTokenMajor(ops, k_host, "sagesla"));
  TV_ASSIGN_OR_RETURN(Tensor v, ToTokenMajor(ops, v_host, "sagesla"));
  const int64_t l = q.dim(0), n = q.dim(1), d = q.dim(2);

  TV_ASSIGN_OR_RETURN(io::WeightSet weights, c.LoadWeights());
  const std::string prefix = "blocks.0.self_attn.attn_op.local_attn.proj_l.";
  TV_ASSIGN_OR_RETURN(Tensor proj_w, weights.Take(prefix + "weight", {d, d}, b, b.compute_dtype()));
  TV_ASSIGN_OR_RETURN(Tensor proj_b, weights.Take(prefix + "bias", {d}, b, b.compute_dtype()));

  TV_ASSIGN_OR_RETURN(Probes p, AllocateProbes(b, l, n, d, variant));
  SageSlaOp op;
  op.q = &q;
  op.k = &k;
  op.v = &v;
  op.proj_w = &proj_w;
  op.proj_b = &proj_b;
  op.topk = static_cast<float>(c.json.NumberOr("topk", c.config().NumberOr("topk", 0.1)));
  op.variant = variant;
  op.out = &p.out;
  op.sparse_out = &p.sparse_out;
  op.sparse_map = &p.map;
  op.q_int8 = &p.q_int8;
  op.q_scale = &p.q_scale;
  op.k_mean = &p.k_mean;
  op.k_int8 = &p.k_int8;
  op.k_scale = &p.k_scale;
  op.v_fp8 = &p.v_fp8;
  op.v_scale = &p.v_scale;
  TV_RETURN_IF_ERROR(b.Run(op));

  TV_ASSIGN_OR_RETURN(Tensor want_map, c.Expected("sparse_map"));
  TV_ASSIGN_OR_RETURN(Tensor map_host, AsExpected(b, p.map, want_map));
  r.Exact("sparse_map", map_host, want_map);
  TV_ASSIGN_OR_RETURN(Tensor lut_t, DeltaLutFromMap(map_host));
  TV_ASSIGN_OR_RETURN(Tensor want_lut, c.Expected("lut"));
  r.Exact("lut", lut_t, want_lut);

  TV_RETURN_IF_ERROR(CheckQuantised(c, b, p, r));

  const Json* tol = c.json.Find("tolerance");
  const double tol_os = tol ? tol->NumberOr("max_rel_l2_o_s", 0) : 0;
  const double tol_o = tol ? tol->NumberOr("max_rel_l2_o", 0) : 0;
  TV_ASSIGN_OR_RETURN(Tensor os_host, ToHeadMajor(b, p.sparse_out));
  TV_ASSIGN_OR_RETURN(Tensor o_host, ToHeadMajor(b, p.out));
  TV_ASSIGN_OR_RETURN(Tensor want_os, c.Expected("o_s"));
  TV_ASSIGN_OR_RETURN(Tensor want_o, c.Expected("o"));
  r.Compare("o_s", os_host, want_os, tol_os);
  r.Compare("o", o_host, want_o, tol_o);
  return absl::OkStatus();
}

}  // namespace turbovid::engine::golden
