// Parallel layouts and the split of a world group into tensor- and sequence-parallel groups.
#include "engine/comm/parallel.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::comm {

std::string ParallelLayout::ToString() const {
  return absl::StrCat("tp", tensor_parallel, "xsp", sequence_parallel,
                      collectives_at_one_rank ? "+collectives" : "");
}

absl::Status ValidateLayout(const ParallelLayout& layout) {
  if (layout.tensor_parallel < 1 || layout.tensor_parallel > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor_parallel_size: ", layout.tensor_parallel, " is outside 1..8"));
  }
  if (layout.sequence_parallel < 1 || layout.sequence_parallel > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence_parallel_size: ", layout.sequence_parallel, " is outside 1..8"));
  }
  if (layout.world() > 8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor_parallel_size x sequence_parallel_size: ", layout.tensor_parallel, " x ",
        layout.sequence_parallel, " = ", layout.world(), " GPUs, more than a node's 8"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ParallelGroups>> ParallelGroups::Create(
    std::unique_ptr<Communicator> world, ParallelLayout layout) {
  if (world == nullptr) return absl::InvalidArgumentError("parallel groups: no world group");
  if (world->size() != layout.world()) {
    return absl::InvalidArgumentError(absl::StrCat("parallel groups: layout ", layout.ToString(),
                                                   " needs ", layout.world(),
                                                   " ranks, the group has ", world->size()));
  }
  const int w = world->rank(), tp = layout.tensor_parallel;
  auto groups = std::make_unique<ParallelGroups>();
  groups->layout_ = layout;
  TV_ASSIGN_OR_RETURN(groups->tp_, world->Split(/*color=*/w / tp, /*key=*/w));
  TV_ASSIGN_OR_RETURN(groups->sp_, world->Split(/*color=*/w % tp, /*key=*/w));
  groups->world_ = std::move(world);
  return groups;
}

void ParallelGroups::Abort() const {
  world_->Abort();
  tp_->Abort();
  sp_->Abort();
}

std::vector<int64_t> SplitCounts(int64_t n, int parts) {
  std::vector<int64_t> counts(parts, n / parts);
  for (int64_t i = 0; i < n % parts; ++i) ++counts[i];
  return counts;
}

}  // namespace turbovid::engine::comm
