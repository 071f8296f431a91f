// ModelSet: startup preloading, loading on first use, LRU eviction under the memory budget.
#include "worker/model_set.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "engine/pipeline/model_dir.h"

namespace turbovid::worker {
namespace {

std::string NameOf(const ModelEntry& entry) {
  return absl::StrCat(entry.model_id, ":", entry.variant);
}

// A failed size estimate or load, with the model and its folder in front of the engine's message.
absl::Status LoadError(const ModelEntry& entry, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("loading ", NameOf(entry), " from ", entry.path,
                                                  ": ", status.message()));
}

}  // namespace

ModelLease& ModelLease::operator=(ModelLease&& other) noexcept {
  if (this != &other) {
    Release();
    set_ = std::exchange(other.set_, nullptr);
    index_ = other.index_;
    pipeline_ = std::exchange(other.pipeline_, nullptr);
  }
  return *this;
}

void ModelLease::Release() {
  if (set_ != nullptr) set_->ReleaseSlot(index_);
  set_ = nullptr;
  pipeline_ = nullptr;
}

ModelSet::Loader ModelSet::EngineLoader(engine::Backend& backend) {
  Loader loader;
  loader.estimate_bytes = [](const ModelEntry& entry) {
    return engine::CheckpointBytes(entry.path, Fp8Weights(entry));
  };
  loader.load = [&backend](const ModelEntry& entry) {
    engine::PipelineOptions options;
    options.fp8_linears = Fp8Weights(entry);
    return engine::Pipeline::Load(entry.path, backend, nullptr, options);
  };
  return loader;
}

ModelSet::ModelSet(std::vector<ModelEntry> entries, int64_t budget_bytes, Loader loader,
                   WorkerMetrics& metrics)
    : budget_bytes_(budget_bytes), loader_(std::move(loader)), metrics_(metrics) {
  slots_.resize(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) slots_[i].entry = std::move(entries[i]);
}

absl::Status ModelSet::LoadPreloaded() {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::vector<std::pair<size_t, int64_t>> preload;  // (slot, estimated bytes)
  std::vector<std::string> sizes;
  int64_t total = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const ModelEntry& entry = slots_[i].entry;
    if (!entry.preload) {
      TV_LOG(INFO) << NameOf(entry) << " (" << entry.path << ") is lazy: loaded by its first task";
      continue;
    }
    absl::StatusOr<int64_t> bytes = loader_.estimate_bytes(entry);
    if (!bytes.ok()) return LoadError(entry, bytes.status());
    preload.emplace_back(i, *bytes);
    sizes.push_back(absl::StrCat(NameOf(entry), " ", *bytes, " bytes"));
    total += *bytes;
  }
  if (budget_bytes_ > 0 && total > budget_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memory_budget_bytes: the preloaded models need ", total, " bytes, more than ",
                     budget_bytes_, " (", absl::StrJoin(sizes, ", "), ")"));
  }
  for (const auto& [index, bytes] : preload) TV_RETURN_IF_ERROR(LoadSlot(index, bytes));
  return absl::OkStatus();
}

absl::StatusOr<ModelLease> ModelSet::Acquire(const std::string& model_id,
                                             const std::string& variant,
                                             const std::function<void()>& on_load) {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  size_t index = slots_.size();
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].entry.model_id == model_id && slots_[i].entry.variant == variant) index = i;
  }
  if (index == slots_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job.model_id: ", model_id, ":", variant, " is not listed by this worker"));
  }
  bool cold;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cold = slots_[index].pipeline == nullptr;
  }
  if (cold) {
    if (on_load) on_load();
    const ModelEntry& entry = slots_[index].entry;
    absl::StatusOr<int64_t> bytes = loader_.estimate_bytes(entry);
    if (!bytes.ok()) return LoadError(entry, bytes.status());
    TV_RETURN_IF_ERROR(LoadSlot(index, *bytes));
  }
  // Only Acquire evicts, and load_mu_ is still held: the model is loaded now.
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[index];
  ++slot.leases;
  slot.last_used = ++tick_;
  ModelLease lease;
  lease.set_ = this;
  lease.index_ = index;
  lease.pipeline_ = slot.pipeline.get();
  return lease;
}

absl::Status ModelSet::LoadSlot(size_t index, int64_t bytes) {
  const ModelEntry& entry = slots_[index].entry;
  if (budget_bytes_ > 0 && bytes > budget_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(NameOf(entry), " (", entry.path, ") needs ", bytes,
                     " bytes, more than memory_budget_bytes ", budget_bytes_));
  }
  std::vector<std::unique_ptr<engine::Pipeline>> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Status room = MakeRoomLocked(index, bytes, &evicted);
    if (!evicted.empty()) ++generation_;
    if (!room.ok()) return room;
  }
  evicted.clear();  // frees their weights before the new ones arrive
  TV_LOG(INFO) << "loading " << NameOf(entry) << " from " << entry.path << " (" << bytes
               << " bytes)";
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<engine::Pipeline>> pipeline = loader_.load(entry);
  if (!pipeline.ok()) return LoadError(entry, pipeline.status());
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  metrics_.model_load_seconds.WithLabels({entry.model_id, entry.variant}).Observe(seconds);
  TV_LOG(INFO) << "loaded " << NameOf(entry) << " in " << seconds << " s ("
               << ((*pipeline)->is_i2v() ? "i2v" : "t2v") << ")";
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[index];
  slot.pipeline = std::move(*pipeline);
  slot.bytes = bytes;
  slot.last_used = ++tick_;
  ++generation_;
  return absl::OkStatus();
}

absl::Status ModelSet::MakeRoomLocked(size_t index, int64_t need,
                                      std::vector<std::unique_ptr<engine::Pipeline>>* evicted) {
  if (budget_bytes_ <= 0) return absl::OkStatus();
  int64_t held = HeldBytesLocked();
  while (held + need > budget_bytes_) {
    Slot* lru = nullptr;
    for (Slot& slot : slots_) {
      if (slot.pipeline == nullptr || slot.leases > 0) continue;
      if (lru == nullptr || slot.last_used < lru->last_used) lru = &slot;
    }
    if (lru == nullptr) {
      std::vector<std::string> in_use;
      for (const Slot& slot : slots_) {
        if (slot.pipeline != nullptr) in_use.push_back(NameOf(slot.entry));
      }
      const ModelEntry& entry = slots_[index].entry;
      return absl::ResourceExhaustedError(
          absl::StrCat(NameOf(entry), " (", entry.path, ") needs ", need, " bytes; ", held, " of ",
                       "memory_budget_bytes ", budget_bytes_, " are held by models in use (",
                       absl::StrJoin(in_use, ", "), ")"));
    }
    TV_LOG(INFO) << "evicting " << NameOf(lru->entry) << " (" << lru->bytes
                 << " bytes, least recently used) to load " << NameOf(slots_[index].entry);
    held -= lru->bytes;
    lru->bytes = 0;
    evicted->push_back(std::move(lru->pipeline));
  }
  return absl::OkStatus();
}

void ModelSet::ReleaseSlot(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[index];
  --slot.leases;
  slot.last_used = ++tick_;
}

std::vector<v1::ModelVariant> ModelSet::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::ModelVariant> out;
  for (const Slot& slot : slots_) {
    v1::ModelVariant m;
    m.set_model_id(slot.entry.model_id);
    m.set_variant(slot.entry.variant);
    m.set_loaded(slot.pipeline != nullptr);
    out.push_back(std::move(m));
  }
  return out;
}

uint64_t ModelSet::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

int64_t ModelSet::held_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return HeldBytesLocked();
}

int64_t ModelSet::HeldBytesLocked() const {
  int64_t held = 0;
  for (const Slot& slot : slots_) held += slot.bytes;
  return held;
}

}  // namespace turbovid::worker
