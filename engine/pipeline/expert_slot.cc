// ExpertSlot and PinWeights (see expert_slot.h).
#include "engine/pipeline/expert_slot.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine {

absl::StatusOr<WeightGroups> PinWeights(Backend& backend, const WeightGroups& groups) {
  WeightGroups host(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    for (const Tensor& t : groups[g]) {
      TV_ASSIGN_OR_RETURN(Tensor h, backend.AllocatePinned(t.dtype(), t.shape()));
      TV_RETURN_IF_ERROR(backend.CopyToHost(t, h));
      host[g].push_back(std::move(h));
    }
  }
  return host;
}

absl::Status ExpertSlot::Init(Backend& backend, WeightGroups device, std::vector<WeightGroups> host,
                              int current) {
  for (size_t e = 0; e < host.size(); ++e) {
    if (host[e].size() != device.size()) {
      return absl::InvalidArgumentError(absl::StrCat("expert slot: expert ", e, " has ", host[e].size(),
                                                     " weight groups, the slot ", device.size()));
    }
    for (size_t g = 0; g < device.size(); ++g) {
      if (host[e][g].size() != device[g].size()) {
        return absl::InvalidArgumentError(absl::StrCat("expert slot: expert ", e, " group ", g, " has ",
                                                       host[e][g].size(), " tensors, the slot ",
                                                       device[g].size()));
      }
      for (size_t i = 0; i < device[g].size(); ++i) {
        const Tensor& a = host[e][g][i];
        const Tensor& b = device[g][i];
        if (a.dtype() != b.dtype() || a.shape() != b.shape()) {
          return absl::InvalidArgumentError(absl::StrCat("expert slot: expert ", e, " group ", g,
                                                         " tensor ", i, " is ", a.Describe(),
                                                         ", the slot's ", b.Describe()));
        }
      }
    }
  }
  if (current < 0 || current >= static_cast<int>(host.size())) {
    return absl::InvalidArgumentError(absl::StrCat("expert slot: no expert ", current));
  }
  backend_ = &backend;
  device_ = std::move(device);
  host_ = std::move(host);
  pending_.assign(device_.size(), nullptr);
  current_ = current;
  return absl::OkStatus();
}

absl::Status ExpertSlot::Prepare(int expert) {
  if (backend_ == nullptr) return absl::FailedPreconditionError("expert slot: not initialised");
  if (expert < 0 || expert >= static_cast<int>(host_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("expert slot: no expert ", expert));
  }
  if (expert == current_) return absl::OkStatus();
  // Uploads of the previous switch must be waited for by compute before new ones overwrite the
  // slot (they are ordered on the copy stream anyway; this keeps the fences simple).
  TV_RETURN_IF_ERROR(WaitAll());
  for (size_t g = 0; g < device_.size(); ++g) {
    TV_ASSIGN_OR_RETURN(pending_[g], backend_->CopyToDeviceAsync(host_[expert][g], device_[g]));
  }
  current_ = expert;
  return absl::OkStatus();
}

absl::Status ExpertSlot::Wait(int group) {
  if (backend_ == nullptr || group < 0 || group >= static_cast<int>(pending_.size())) {
    return absl::OkStatus();
  }
  if (pending_[group] == nullptr) return absl::OkStatus();
  TV_RETURN_IF_ERROR(backend_->WaitFence(pending_[group]));
  pending_[group] = nullptr;
  return absl::OkStatus();
}

absl::Status ExpertSlot::WaitAll() {
  for (size_t g = 0; g < pending_.size(); ++g) TV_RETURN_IF_ERROR(Wait(static_cast<int>(g)));
  return absl::OkStatus();
}

}  // namespace turbovid::engine
