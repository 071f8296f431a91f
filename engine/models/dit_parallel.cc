// The DiT's tensor- and sequence-parallel steps (docs/parallelism.md §2, §3): row-parallel
// linears with their all-reduce, the q/k RMSNorm over heads split across ranks, Ulysses
// all-to-alls between token and head splits, and the gathers of tokens and probes.
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/models/dit_internal.h"

namespace turbovid::engine::dit {

TokenSplit TokenSplit::Of(int64_t total, int parts, int rank) {
  TokenSplit s;
  s.counts = comm::SplitCounts(total, parts);
  s.total = total;
  for (int r = 0; r < rank; ++r) s.first += s.counts[r];
  s.last = s.first + s.counts[rank];
  return s;
}

absl::StatusOr<Tensor> WanDitImpl::RowParallel(const Linear& l, const Tensor& x) const {
  if (l.shard != Shard::kInputs) return l.Apply(ops_, x);
  TV_ASSIGN_OR_RETURN(Tensor y, l.Apply(ops_, x));  // this rank's partial sums, no bias
  TV_RETURN_IF_ERROR(parallel_->tp().AllReduceSum(y));
  // The bias once, after the sum (every rank adds it to the same sums: same bits everywhere).
  return ops_.Binary(BinaryKind::kAdd, y, l.b);
}

absl::StatusOr<Tensor> WanDitImpl::QkNorm(const Tensor& x, const Tensor& weight, const Tensor* cos,
                                          const Tensor* sin) const {
  if (!tp_collectives() || !attention_tp()) {
    if (cos != nullptr) return ops_.RmsNormRope(x, &weight, config_.eps, *cos, *sin);
    return ops_.RmsNorm(x, &weight, config_.eps);
  }
  // Wan normalises q and k over all E = N·D columns, not per head: each rank holds E/tp of
  // them, so the row statistic is the sum of the ranks' partial Σx².
  TV_ASSIGN_OR_RETURN(Tensor sum_sq, ops_.RowSumSquares(x));
  TV_RETURN_IF_ERROR(parallel_->tp().AllReduceSum(sum_sq));
  return ops_.RmsNormShard(x, &weight, config_.eps, sum_sq, config_.dim, cos, sin);
}

absl::StatusOr<Tensor> WanDitImpl::SeqToHeads(const Tensor& x, const TokenSplit& split) const {
  const int s = sp();
  if (!sp_collectives()) return x;
  const int64_t ls = x.dim(0), nl = x.dim(1), d = x.dim(2), hs = nl / s;
  // [Ls, S, H, D] → [S, Ls, H, D]: part j (the heads of rank j) contiguous for the all-to-all.
  TV_ASSIGN_OR_RETURN(Tensor x4, x.Reshape({ls, s, hs, d}));
  TV_ASSIGN_OR_RETURN(Tensor parts, ops_.Permute(x4, {1, 0, 2, 3}));
  std::vector<int64_t> send(s, ls * hs * d), recv(s);
  for (int r = 0; r < s; ++r) recv[r] = split.counts[r] * hs * d;
  // Rank r's tokens arrive as rows [first_r, last_r): token order is kept.
  TV_ASSIGN_OR_RETURN(Tensor out, ops_.Uninit({split.total, hs, d}));
  TV_RETURN_IF_ERROR(parallel_->sp().AllToAllV(parts, send, out, recv));
  return out;
}

absl::StatusOr<Tensor> WanDitImpl::HeadsToSeq(const Tensor& x, const TokenSplit& split) const {
  const int s = sp();
  if (!sp_collectives()) return x;
  const int64_t hs = x.dim(1), d = x.dim(2), ls = split.last - split.first;
  std::vector<int64_t> send(s), recv(s, ls * hs * d);
  for (int r = 0; r < s; ++r) send[r] = split.counts[r] * hs * d;
  TV_ASSIGN_OR_RETURN(Tensor parts, ops_.Uninit({s, ls, hs, d}));  // [S, Ls, H, D]
  TV_RETURN_IF_ERROR(parallel_->sp().AllToAllV(x, send, parts, recv));
  TV_ASSIGN_OR_RETURN(Tensor out, ops_.Permute(parts, {1, 0, 2, 3}));  // [Ls, S, H, D]
  return out.Reshape({ls, s * hs, d});
}

absl::StatusOr<Tensor> WanDitImpl::GatherTokens(const Tensor& x, const TokenSplit& split) const {
  if (!sp_collectives()) return x;
  const int64_t c = x.dim(1);
  std::vector<int64_t> counts;
  for (int64_t n : split.counts) counts.push_back(n * c);
  // x's own dtype: the F32 residual stream (the golden sinks) as well as compute-dtype outputs.
  TV_ASSIGN_OR_RETURN(Tensor all, backend_.AllocateUninitialized(x.dtype(), {split.total, c}));
  TV_RETURN_IF_ERROR(parallel_->sp().AllGatherV(x, all, counts));
  return all;
}

absl::Status WanDitImpl::SinkSparseMap(int i, const Tensor& map, const TensorSink* sink) const {
  if (sink == nullptr) return absl::OkStatus();
  Tensor all = map;  // [heads, nq, nk] I8
  // The heads of a sequence rank come in sp-rank order within its tensor rank's heads, and the
  // tensor ranks' heads in tp-rank order: two gathers give the model's head order.
  // A replicated attention (heads that do not split) already holds every head there.
  for (comm::Communicator* g : {parallel_ && attention_sp() ? &parallel_->sp() : nullptr,
                                parallel_ && attention_tp() ? &parallel_->tp() : nullptr}) {
    if (g == nullptr || (g->size() == 1 && !at_one())) continue;
    TV_ASSIGN_OR_RETURN(Tensor gathered, backend_.Allocate(DType::kI8, {all.dim(0) * g->size(),
                                                                        all.dim(1), all.dim(2)}));
    TV_RETURN_IF_ERROR(g->AllGather(all, gathered));
    all = gathered;
  }
  TV_ASSIGN_OR_RETURN(Tensor host, backend_.Download(all));
  TV_ASSIGN_OR_RETURN(host, host.Reshape({1, all.dim(0), all.dim(1), all.dim(2)}));
  (*sink)(absl::StrCat("blocks.", i, ".self_attn.sparse_map"), host);
  return absl::OkStatus();
}

}  // namespace turbovid::engine::dit
