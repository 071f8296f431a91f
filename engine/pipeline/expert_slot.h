// The DiT weight slot of the streamed-expert residency (docs/memory.md §4): one device model's
// weight tensors hold whichever expert a step needs; every expert's bytes are kept in pinned host
// memory, and switching queues their upload on the backend's copy stream, one fence per weight
// group (the embeddings and head, then each block), so that a forward or context preparation
// waits for a group only just before it uses it: the upload of block i+1 … overlaps block i's
// compute. Backend-agnostic: the CPU backend copies at once and its fences are null.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/tensor.h"

namespace turbovid::engine {

// [group][tensor] weight tensors (WanDit::WeightGroups).
using WeightGroups = std::vector<std::vector<Tensor>>;

// Pinned host copies of `groups`' bytes (Backend::AllocatePinned + CopyToHost).
absl::StatusOr<WeightGroups> PinWeights(Backend& backend, const WeightGroups& groups);

class ExpertSlot {
 public:
  ExpertSlot() = default;
  // `device`: the slot's tensors, holding expert `current` now; `host[e]`: expert e's pinned
  // bytes, each with the slot's layout (InvalidArgument naming the group and tensor otherwise).
  absl::Status Init(Backend& backend, WeightGroups device, std::vector<WeightGroups> host,
                    int current);
  bool active() const { return backend_ != nullptr; }
  int current() const { return current_; }
  // Queues the upload of every group of `expert` unless it is the slot's expert already.
  absl::Status Prepare(int expert);
  // Makes compute queued from now on wait for group g's upload (no-op once waited).
  absl::Status Wait(int group);
  absl::Status WaitAll();
  void Reset() { *this = ExpertSlot(); }

 private:
  Backend* backend_ = nullptr;
  WeightGroups device_;
  std::vector<WeightGroups> host_;
  std::vector<CopyFence> pending_;  // per group, null once waited (or on CPU)
  int current_ = 0;
};

}  // namespace turbovid::engine
