// Placement inputs (pure, no locks): the worker and request views, whether a worker fits a job
// (lists the variant, its node class has a memory entry for the variant that fits, it has the
// GPUs the variant needs there: a worker group's count) and can take it now (not draining, a free
// slot), and the per-step time EWMA behind ETAs. Which fitting worker gets a job is
// cost_placement.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "scheduler/model_catalog.h"

namespace turbovid::scheduler {

struct WorkerView {
  std::string worker_id;
  std::string node_class;
  int64_t memory_bytes = 0;  // per GPU; 0 = not reported (no memory check)
  int gpu_count = 1;  // a worker group: all its GPUs
  int free_slots = 0;
  bool draining = false;
  std::set<std::pair<std::string, std::string>> variants;  // (model_id, variant) it can run
  std::set<std::pair<std::string, std::string>> loaded;    // the warm ones
};

struct PlacementRequest {
  std::string model_id;
  const VariantSpec* variant = nullptr;
  int width_pixels = 0;
  int height_pixels = 0;
  int num_frames = 0;
};

// Seconds per denoising step, EWMA per (node class, model, resolution), with a per-(node class,
// model) rate per latent token as the fallback for resolutions not measured yet.
class StepStats {
 public:
  explicit StepStats(double alpha) : alpha_(alpha) {}
  void Record(const std::string& node_class, const PlacementRequest& request, double seconds);
  std::optional<double> Estimate(const std::string& node_class,
                                 const PlacementRequest& request) const;

 private:
  using Key = std::tuple<std::string, std::string, int, int, int>;
  double alpha_;
  std::map<Key, double> exact_;
  std::map<std::pair<std::string, std::string>, double> per_token_;
};

// Latent tokens of a request (Wan: 8x spatial, 4x temporal VAE stride, 2x2 patches).
double LatentTokens(const PlacementRequest& request);

// Whether `worker` lists the variant and its node class has the memory for it (busy or not).
bool Fits(const PlacementRequest& request, const WorkerView& worker);

// Whether `worker` can take `request` now: it fits, is not draining and has a free slot.
bool CanRun(const PlacementRequest& request, const WorkerView& worker);

}  // namespace turbovid::scheduler
