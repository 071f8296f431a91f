// Collective communication between the ranks of one group, the one path of tensor and sequence
// parallelism (docs/parallelism.md): the Communicator interface and the argument checks that
// every implementation (in-process, socket, NCCL) shares.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::comm {

// One rank's end of a group of `size()` ranks. Every rank of the group calls the same
// collectives in the same order with matching shapes (SPMD); a call blocks until the group has
// done its part. Tensors live where the implementation works: host memory (in-process, socket)
// or the rank's GPU (NCCL). Parts are concatenated along the flattened elements, in rank order.
// Not thread-safe: one thread per rank drives its communicators.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string_view kind() const = 0;  // "in-process", "socket", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // x ← Σ over the ranks of x (same shape and dtype everywhere). The host implementations add
  // in rank order in float64, so every rank gets the same bits whatever the timing.
  virtual absl::Status AllReduceSum(Tensor& x) = 0;
  // out ← in(rank 0) ++ in(rank 1) ++ …; rank r sends counts[r] elements (in.numel()).
  virtual absl::Status AllGatherV(const Tensor& in, Tensor& out,
                                  const std::vector<int64_t>& counts) = 0;
  // out ← Σ over the ranks of part `rank()` of in, in split into size() equal parts.
  virtual absl::Status ReduceScatterSum(const Tensor& in, Tensor& out) = 0;
  // Part j of in (send_counts[j] elements, parts in order) goes to rank j; part i of out
  // (recv_counts[i] elements) comes from rank i. recv_counts[i] must equal rank i's
  // send_counts[rank()].
  virtual absl::Status AllToAllV(const Tensor& in, const std::vector<int64_t>& send_counts,
                                 Tensor& out, const std::vector<int64_t>& recv_counts) = 0;
  // x ← root's x on every rank.
  virtual absl::Status Broadcast(Tensor& x, int root) = 0;
  virtual absl::Status Barrier() = 0;
  // Collective over this group: a communicator over the ranks that passed the same `color`,
  // ranked by (key, rank()). It shares this one's transport; drive both from the same thread.
  virtual absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) = 0;
  // From any thread: every collective of this rank, running or later, fails with Unavailable
  // (a peer died, or this rank gives up). Groups split from this one are aborted too (socket
  // and NCCL: every group sharing the transport, the one it was split from included).
  virtual void Abort() = 0;

  // Equal parts: out.numel() == size() · in.numel().
  absl::Status AllGather(const Tensor& in, Tensor& out);
  // Equal parts: in and out have the same numel, a multiple of size().
  absl::Status AllToAll(const Tensor& in, Tensor& out);
  // Point-to-point with the neighbours in rank order (a halo exchange): in holds `to_prev`
  // elements for rank − 1 then `to_next` for rank + 1; out receives `from_prev` elements from
  // rank − 1 then `from_next` from rank + 1. Rank 0 has no previous rank and the last no next
  // one (their counts must be 0); counts must match the neighbours' (my from_prev = rank − 1's
  // to_next). Collective: every rank of the group calls it. It is AllToAllV with only the
  // neighbours' counts non-zero: NCCL sends and receives just those parts (ncclSend/ncclRecv in
  // one group), the host communicators move nothing else.
  absl::Status NeighbourExchange(const Tensor& in, int64_t to_prev, int64_t to_next, Tensor& out,
                                 int64_t from_prev, int64_t from_next);
};

namespace internal {

// Offsets (prefix sums) of `counts`, with the total last: size counts.size() + 1.
std::vector<int64_t> Offsets(const std::vector<int64_t>& counts);
// Shared argument checks; errors name the collective and the tensor.
absl::Status CheckTensor(const char* op, const char* what, const Tensor& t);
absl::Status CheckSumDType(const char* op, const Tensor& t, bool host);
// The host implementations move host memory only.
absl::Status CheckOnHost(const char* op, const Tensor& t);
absl::Status CheckAllGatherV(const Communicator& c, const Tensor& in, const Tensor& out,
                             const std::vector<int64_t>& counts);
absl::Status CheckReduceScatter(const Communicator& c, const Tensor& in, const Tensor& out);
absl::Status CheckAllToAllV(const Communicator& c, const Tensor& in,
                            const std::vector<int64_t>& send_counts, const Tensor& out,
                            const std::vector<int64_t>& recv_counts);
absl::Status CheckRoot(const Communicator& c, int root);
// dst[i] = Σ_r parts[r][i], in rank order in float64 (F32, F64, BF16 host data).
void SumInRankOrder(DType dtype, const std::vector<const void*>& parts, int64_t n, void* dst);

}  // namespace internal

}  // namespace turbovid::engine::comm
