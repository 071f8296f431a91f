// Worker fit checks and the per-step time statistics behind ETAs.
#include "scheduler/placement.h"

namespace turbovid::scheduler {

double LatentTokens(const PlacementRequest& r) {
  const double frames = (r.num_frames - 1) / 4 + 1;
  return frames * (r.width_pixels / 16) * (r.height_pixels / 16);
}

void StepStats::Record(const std::string& node_class, const PlacementRequest& r, double seconds) {
  if (!(seconds > 0)) return;
  auto blend = [this](std::map<Key, double>::mapped_type* slot, double value, bool fresh) {
    *slot = fresh ? value : alpha_ * value + (1 - alpha_) * *slot;
  };
  const Key key{node_class, r.model_id, r.width_pixels, r.height_pixels, r.num_frames};
  auto [it, fresh] = exact_.try_emplace(key, seconds);
  blend(&it->second, seconds, fresh);
  const double tokens = LatentTokens(r);
  if (tokens > 0) {
    auto [rate, rate_fresh] = per_token_.try_emplace({node_class, r.model_id}, seconds / tokens);
    blend(&rate->second, seconds / tokens, rate_fresh);
  }
}

std::optional<double> StepStats::Estimate(const std::string& node_class,
                                          const PlacementRequest& r) const {
  auto it = exact_.find(Key{node_class, r.model_id, r.width_pixels, r.height_pixels, r.num_frames});
  if (it != exact_.end()) return it->second;
  auto rate = per_token_.find({node_class, r.model_id});
  if (rate != per_token_.end()) return rate->second * LatentTokens(r);
  return std::nullopt;
}

bool CanRun(const PlacementRequest& request, const WorkerView& worker) {
  return !worker.draining && worker.free_slots > 0 && Fits(request, worker);
}

bool Fits(const PlacementRequest& request, const WorkerView& worker) {
  if (request.variant == nullptr) return false;
  if (worker.variants.count({request.model_id, request.variant->name}) == 0) return false;
  auto need = request.variant->memory_bytes.find(worker.node_class);
  if (need == request.variant->memory_bytes.end()) return false;
  // A variant that needs a group of GPUs (14B on H100s) goes to a worker group that large.
  auto gpus = request.variant->gpus.find(worker.node_class);
  if (gpus != request.variant->gpus.end() && worker.gpu_count < gpus->second) return false;
  if (worker.memory_bytes > 0) {
    const int64_t have = worker.memory_bytes * (worker.gpu_count > 0 ? worker.gpu_count : 1);
    if (need->second > have) return false;
  }
  return true;
}

}  // namespace turbovid::scheduler
