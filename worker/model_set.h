// The models a worker can run and the ones it holds: preloaded ones load at startup, lazy ones
// with the first task that needs them; least-recently-used idle models are evicted so that the
// weights held stay within the memory budget (docs/design.md §5.7).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/pipeline/pipeline.h"
#include "turbovid/v1/worker_hub.pb.h"
#include "worker/metrics.h"
#include "worker/worker_config.h"

namespace turbovid::worker {

namespace v1 = ::turbovid::v1;

class ModelSet;

// One task's hold on a loaded model: the model is not evicted while a lease on it lives.
class ModelLease {
 public:
  ModelLease() = default;
  ModelLease(ModelLease&& other) noexcept { *this = std::move(other); }
  ModelLease& operator=(ModelLease&& other) noexcept;
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;
  ~ModelLease() { Release(); }

  engine::Pipeline* pipeline() const { return pipeline_; }
  // Gives the model back (it stays loaded); the destructor does this too.
  void Release();

 private:
  friend class ModelSet;
  ModelSet* set_ = nullptr;
  size_t index_ = 0;
  engine::Pipeline* pipeline_ = nullptr;
};

class ModelSet {
 public:
  // How a model folder is sized and loaded. The engine's by default (EngineLoader); tests
  // substitute their own.
  struct Loader {
    std::function<absl::StatusOr<int64_t>(const ModelEntry& entry)> estimate_bytes;
    std::function<absl::StatusOr<std::unique_ptr<engine::Pipeline>>(const ModelEntry& entry)> load;
  };
  // Size: the checkpoint's tensor bytes (engine::CheckpointBytes; FP8 block linears at 1 byte
  // plus a scale per row); load: engine::Pipeline::Load, with fp8_linears for an FP8 entry.
  static Loader EngineLoader(engine::Backend& backend);

  // `budget_bytes`: the most bytes of weights held at once; 0 = no limit.
  ModelSet(std::vector<ModelEntry> entries, int64_t budget_bytes, Loader loader,
           WorkerMetrics& metrics);
  ModelSet(const ModelSet&) = delete;
  ModelSet& operator=(const ModelSet&) = delete;

  // Loads the entries with preload set, in order (startup). ResourceExhausted naming each one and
  // its size when together they exceed the budget; a load error names the model and its path.
  absl::Status LoadPreloaded();

  // Pins (model_id, variant) for a task. A cold model is loaded first: `on_load` runs before the
  // load starts, and least-recently-used models without a lease are evicted until it fits.
  // FailedPrecondition when the worker does not list it; ResourceExhausted when it is bigger than
  // the budget, or does not fit beside the models in use; a load error keeps its code and names
  // the model and its path. Loads are serialised; a failed one leaves the model cold.
  absl::StatusOr<ModelLease> Acquire(const std::string& model_id, const std::string& variant,
                                     const std::function<void()>& on_load = nullptr);

  // Every listed model, `loaded` = held now (RegisterWorker.models, Heartbeat.models).
  std::vector<v1::ModelVariant> Describe() const;
  // Changes whenever a model is loaded or evicted.
  uint64_t generation() const;
  // Estimated bytes of the models held now.
  int64_t held_bytes() const;
  int64_t budget_bytes() const { return budget_bytes_; }

 private:
  friend class ModelLease;
  struct Slot {
    ModelEntry entry;
    std::unique_ptr<engine::Pipeline> pipeline;  // null while cold
    int64_t bytes = 0;                           // estimate of what it holds (0 while cold)
    int leases = 0;                              // tasks using it: never evicted while > 0
    uint64_t last_used = 0;                      // tick of its last lease or release
  };

  // Loads the cold slot `index` of `bytes` (estimated) after making room for it; the caller holds
  // load_mu_, not mu_.
  absl::Status LoadSlot(size_t index, int64_t bytes);
  // Evicts idle models, least recently used first, until `need` more bytes fit the budget.
  // The evicted pipelines go to `evicted` (freed by the caller outside mu_).
  absl::Status MakeRoomLocked(size_t index, int64_t need,
                              std::vector<std::unique_ptr<engine::Pipeline>>* evicted);
  int64_t HeldBytesLocked() const;
  void ReleaseSlot(size_t index);

  const int64_t budget_bytes_;
  const Loader loader_;
  WorkerMetrics& metrics_;
  std::mutex load_mu_;     // one Acquire at a time
  mutable std::mutex mu_;  // the slots (Describe and lease releases come from other threads)
  std::vector<Slot> slots_;
  uint64_t tick_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace turbovid::worker
