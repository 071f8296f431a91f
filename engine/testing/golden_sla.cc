// Golden runner for the 'sla' kind: SparseLinearAttention on [1, H, N, D] bf16 q/k/v against the
// upstream GPU output, sparse branch, block map and sorted block indices.
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/ops.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {
namespace {

// [N, H, D] on the backend → [1, H, N, D] host.
absl::StatusOr<Tensor> ToHeadMajor(const Ops& ops, const Tensor& t) {
  TV_ASSIGN_OR_RETURN(Tensor p, ops.Permute(t, {1, 0, 2}));
  TV_ASSIGN_OR_RETURN(Tensor host, ops.backend().Download(p));
  return host.Reshape({1, t.dim(1), t.dim(0), t.dim(2)});
}

// lut [1, N, n_q, K] I32: the selected key-block indices of every (head, query block), ascending.
absl::StatusOr<Tensor> LutFromMap(const Tensor& map_host) {
  const int64_t n = map_host.dim(1), nq = map_host.dim(2), nk = map_host.dim(3);
  std::vector<int32_t> lut;
  int64_t per_row = -1;
  for (int64_t row = 0; row < n * nq; ++row) {
    int64_t count = 0;
    for (int64_t j = 0; j < nk; ++j) {
      if (map_host.data<int8_t>()[row * nk + j] != 0) {
        lut.push_back(static_cast<int32_t>(j));
        ++count;
      }
    }
    if (per_row >= 0 && count != per_row) return absl::InternalError("sla: uneven block selection");
    per_row = count;
  }
  Tensor lut_t = Tensor::Zeros(DType::kI32, {1, n, nq, per_row});
  std::copy(lut.begin(), lut.end(), lut_t.data<int32_t>());
  return lut_t;
}

}  // namespace

absl::Status RunSlaCase(const GoldenCase& c, Backend& b, GoldenReport& r) {
  Ops ops(b);
  TV_ASSIGN_OR_RETURN(Tensor q_host, c.Input("q"));
  TV_ASSIGN_OR_RETURN(Tensor k_host, c.Input("k"));
  TV_ASSIGN_OR_RETURN(Tensor v_host, c.Input("v"));
  TV_ASSIGN_OR_RETURN(Tensor q, ToTokenMajor(ops, q_host, "sla"));
  TV_ASSIGN_OR_RETURN(Tensor k, ToTokenMajor(ops, k_host, "sla"));
  TV_ASSIGN_OR_RETURN(Tensor v, ToTokenMajor(ops, v_host, "sla"));
  const int64_t l = q.dim(0), n = q.dim(1), d = q.dim(2);

  TV_ASSIGN_OR_RETURN(io::WeightSet weights, c.LoadWeights());
  const std::string prefix = "blocks.0.self_attn.attn_op.local_attn.proj_l.";
  TV_ASSIGN_OR_RETURN(Tensor proj_w, weights.Take(prefix + "weight", {d, d}, b, b.compute_dtype()));
  TV_ASSIGN_OR_RETURN(Tensor proj_b, weights.Take(prefix + "bias", {d}, b, b.compute_dtype()));

  SlaOp op;
  op.q = &q;
  op.k = &k;
  op.v = &v;
  op.proj_w = &proj_w;
  op.proj_b = &proj_b;
  op.topk = static_cast<float>(c.json.NumberOr("topk", c.config().NumberOr("topk", 0.1)));
  op.block_q = static_cast<int>(c.config().IntOr("BLKQ", 128));
  op.block_k = static_cast<int>(c.config().IntOr("BLKK", 64));
  const int64_t nq = (l + op.block_q - 1) / op.block_q, nk = (l + op.block_k - 1) / op.block_k;
  TV_ASSIGN_OR_RETURN(Tensor out, ops.Empty({l, n, d}));
  TV_ASSIGN_OR_RETURN(Tensor sparse_out, ops.Empty({l, n, d}));
  TV_ASSIGN_OR_RETURN(Tensor map, b.Allocate(DType::kI8, {n, nq, nk}));
  op.out = &out;
  op.sparse_out = &sparse_out;
  op.sparse_map = &map;
  TV_RETURN_IF_ERROR(b.Run(op));

  const double tol = c.Tolerance(b.compute_dtype() == DType::kF32);
  TV_ASSIGN_OR_RETURN(Tensor o_host, ToHeadMajor(ops, out));
  TV_ASSIGN_OR_RETURN(Tensor os_host, ToHeadMajor(ops, sparse_out));
  TV_ASSIGN_OR_RETURN(Tensor want_o, c.Expected("o"));
  TV_ASSIGN_OR_RETURN(Tensor want_os, c.Expected("o_s"));
  r.Compare("o", o_host, want_o, tol);
  r.Compare("o_s", os_host, want_os, tol);

  TV_ASSIGN_OR_RETURN(Tensor map_host, b.Download(map));
  TV_ASSIGN_OR_RETURN(map_host, map_host.Reshape({1, n, nq, nk}));
  TV_ASSIGN_OR_RETURN(Tensor want_map, c.Expected("sparse_map"));
  r.Exact("sparse_map", map_host, want_map);

  TV_ASSIGN_OR_RETURN(Tensor lut_t, LutFromMap(map_host));
  TV_ASSIGN_OR_RETURN(Tensor want_lut, c.Expected("lut"));
  r.Exact("lut", lut_t, want_lut);
  return absl::OkStatus();
}

}  // namespace turbovid::engine::golden
