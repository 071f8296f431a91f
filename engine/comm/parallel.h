// A job's parallel layout over the GPUs (or threads, or processes) of one group: tensor
// parallelism × sequence parallelism, and the communicators of one rank (docs/parallelism.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/comm/communicator.h"

namespace turbovid::engine::comm {

struct ParallelLayout {
  int tensor_parallel = 1;    // heads and FFN columns split over this many ranks
  int sequence_parallel = 1;  // tokens split over this many ranks (Ulysses)
  // Every collective runs even where its group has one rank (the weights are then "sharded"
  // into one whole shard and the all-reduce, all-to-all and gathers run over one rank). The
  // output equals the plain path within fp32 noise; used to test and time a communicator on one
  // device (NCCL on one GPU, docs/parallelism.md §8). Off: a group of one skips its collectives.
  bool collectives_at_one_rank = false;
  int world() const { return tensor_parallel * sequence_parallel; }
  std::string ToString() const;  // "tp2xsp4" (+ "+collectives")
};

// Sizes in 1..8 whose product is `world` (when world > 0). InvalidArgument naming the key.
absl::Status ValidateLayout(const ParallelLayout& layout);

// The communicators of one rank. World rank w = s·tp + t: the tensor-parallel group of a rank is
// the tp consecutive world ranks that share its sequence rank s (on a GPU node, neighbours),
// the sequence-parallel group the sp ranks that share its tensor rank t.
class ParallelGroups {
 public:
  // Splits `world` (size tp·sp) into the two groups; collective over `world`.
  static absl::StatusOr<std::unique_ptr<ParallelGroups>> Create(std::unique_ptr<Communicator> world,
                                                                ParallelLayout layout);

  const ParallelLayout& layout() const { return layout_; }
  Communicator& world() const { return *world_; }
  Communicator& tp() const { return *tp_; }
  Communicator& sp() const { return *sp_; }
  int tp_rank() const { return tp_->rank(); }
  int sp_rank() const { return sp_->rank(); }
  // Aborts every group of this rank (a peer died): the collectives return Unavailable.
  void Abort() const;

 private:
  ParallelLayout layout_;
  std::unique_ptr<Communicator> world_, tp_, sp_;
};

// Contiguous split of `n` items over `parts` ranks: the first n % parts ranks take one more.
std::vector<int64_t> SplitCounts(int64_t n, int parts);

}  // namespace turbovid::engine::comm
