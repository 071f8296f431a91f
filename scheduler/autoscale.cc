// Routing with unlimited workers, the per-class drain and arrival terms, the decaying rate.
#include "scheduler/autoscale.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace turbovid::scheduler {

int GroupGpus(const PlacementRequest& request, const std::string& node_class) {
  if (request.variant == nullptr) return 1;
  auto it = request.variant->gpus.find(node_class);
  return it == request.variant->gpus.end() ? 1 : std::max(1, it->second);
}

std::string FreshLayout(const PlacementRequest& request, const std::string& node_class) {
  const int gpus = GroupGpus(request, node_class);
  return gpus > 1 ? absl::StrCat("tp", gpus) : "1gpu";
}

std::vector<ClassCapacity> CatalogClassCapacity(const ModelCatalog& catalog,
                                                const ServiceTimeModel& model) {
  std::vector<ClassCapacity> out;
  for (const std::string& node_class : catalog.NodeClasses()) {
    ClassCapacity c;
    c.probe.worker_id = node_class;
    c.probe.node_class = node_class;
    c.probe.gpu_count = kMaxGroupGpus;
    for (const ModelSpec& m : catalog.models()) {
      for (const VariantSpec& v : m.variants) {
        if (v.memory_bytes.count(node_class) != 0) c.probe.variants.insert({m.id, v.name});
      }
    }
    c.price_per_hour = model.PricePerHour(node_class);
    out.push_back(std::move(c));
  }
  return out;
}

int RouteJob(double now, const PlacementJob& job, int job_index,
             const std::vector<ClassCapacity>& classes, const ClassSecondsFn& seconds,
             const AutoscaleOptions& options, double* seconds_out) {
  const double slack =
      std::isfinite(job.deadline) ? job.deadline - now : options.default_slo_seconds;
  int best = -1;
  bool best_feasible = false;
  double best_cost = 0;
  double best_seconds = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    if (!Fits(*job.request, classes[c].probe)) continue;
    const std::optional<double> s = seconds(job_index, static_cast<int>(c));
    if (!s.has_value() || !(*s >= 0) || !std::isfinite(*s)) continue;
    const bool feasible = *s <= slack;
    const double cost = classes[c].price_per_hour *
                        GroupGpus(*job.request, classes[c].probe.node_class) * *s / 3600;
    // Feasible beats infeasible; among feasible the cheaper (then faster), else the faster.
    const bool better =
        best < 0 || (feasible && !best_feasible) ||
        (feasible == best_feasible &&
         (feasible ? std::make_pair(cost, *s) < std::make_pair(best_cost, best_seconds)
                   : *s < best_seconds));
    if (better) {
      best = static_cast<int>(c);
      best_feasible = feasible;
      best_cost = cost;
      best_seconds = *s;
    }
  }
  if (best >= 0 && seconds_out != nullptr) *seconds_out = best_seconds;
  return best;
}

std::vector<ClassDemand> DesiredWorkers(double now, const std::vector<PlacementJob>& queued,
                                        const std::vector<ClassCapacity>& classes,
                                        const std::vector<ClassLoad>& loads,
                                        const ClassSecondsFn& seconds,
                                        const AutoscaleOptions& options) {
  std::vector<ClassDemand> out(classes.size());
  std::vector<std::vector<std::pair<double, double>>> due(classes.size());  // (slack, seconds)
  for (size_t j = 0; j < queued.size(); ++j) {
    double s = 0;
    const int c = RouteJob(now, queued[j], static_cast<int>(j), classes, seconds, options, &s);
    if (c < 0) continue;
    const double slack =
        std::isfinite(queued[j].deadline) ? queued[j].deadline - now : options.default_slo_seconds;
    // A job that cannot make its slack still needs a worker for its whole service time.
    due[c].emplace_back(std::max(slack, s), s);
    ++out[c].queued_jobs;
    out[c].queued_seconds += s;
  }
  for (size_t c = 0; c < classes.size(); ++c) {
    const ClassLoad load = c < loads.size() ? loads[c] : ClassLoad{};
    std::sort(due[c].begin(), due[c].end());
    double cumulative = load.running_remaining_seconds;
    double drain = 0;
    for (const auto& [slack, s] : due[c]) {
      cumulative += s;
      if (slack > 0) drain = std::max(drain, cumulative / slack);
    }
    ClassDemand& d = out[c];
    d.drain_workers = drain;
    d.arrival_workers = options.target_utilization > 0
                            ? std::max(0.0, load.offered_load) / options.target_utilization
                            : 0;
    // ceil with a little slack: 2.0000000001 workers from rounding is 2.
    const double total = d.drain_workers + d.arrival_workers;
    d.desired_workers = std::max(load.busy_workers, static_cast<int>(std::ceil(total - 1e-9)));
  }
  return out;
}

void DecayingRate::Add(double now, double amount) {
  value_ = Value(now) + amount / window_;
  at_ = started_ ? std::max(at_, now) : now;
  started_ = true;
}

double DecayingRate::Value(double now) const {
  if (!started_) return 0;
  return value_ * std::exp(-std::max(0.0, now - at_) / window_);
}

}  // namespace turbovid::scheduler
