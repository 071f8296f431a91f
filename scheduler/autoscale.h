// The autoscaling signal (docs/fleet.md §4): per node class, the workers the service-time model
// says the current queue and the recent arrivals need to meet their deadlines (or, for jobs
// without one, the default SLO). The scheduler exports it as turbovid_pool_desired_workers;
// turbovid-fleetsim reports it over a simulated run. Pure functions, no locks.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/cost_placement.h"

namespace turbovid::scheduler {

// What a fresh worker of a class can run: catalog variants with a memory entry for the class,
// as a group as large as the variant needs there.
struct ClassCapacity {
  WorkerView probe;           // node_class, variants, kMaxGroupGpus; memory 0 (no check), none warm
  double price_per_hour = 0;  // per GPU
};

// The largest worker group (one node, docs/parallelism.md §1).
inline constexpr int kMaxGroupGpus = 8;

// GPUs one worker of `node_class` needs for `request`: the variant's `gpus` entry, at least 1.
int GroupGpus(const PlacementRequest& request, const std::string& node_class);
// The layout a fresh worker of the class runs it with: "1gpu", or "tp<g>" for a group of g.
std::string FreshLayout(const PlacementRequest& request, const std::string& node_class);

// One ClassCapacity per node class named in the catalog's memory tables, in name order, with the
// model's prices.
std::vector<ClassCapacity> CatalogClassCapacity(const ModelCatalog& catalog,
                                                const ServiceTimeModel& model);

// Expected seconds of candidate `job` on a fresh worker of class `cls`; nullopt when unknown.
using ClassSecondsFn = std::function<std::optional<double>(int job, int cls)>;

struct AutoscaleOptions {
  double default_slo_seconds = 300;  // the slack of a job without a deadline
  double target_utilization = 0.8;   // busy share the arrival term aims at, (0, 1]
};

// The class a job goes to when every class has a free worker: the cheapest (price per GPU x the
// GPUs it needs there x seconds) expected to finish within its slack (deadline - now, or the
// default SLO), else the fastest. -1 when no class can run it or none has an estimate.
// `seconds_out` gets the expected seconds there.
int RouteJob(double now, const PlacementJob& job, int job_index,
             const std::vector<ClassCapacity>& classes, const ClassSecondsFn& seconds,
             const AutoscaleOptions& options, double* seconds_out);

struct ClassLoad {
  double running_remaining_seconds = 0;  // expected work left on this class's running jobs
  int busy_workers = 0;                  // workers of the class running a job now
  double offered_load = 0;  // expected seconds of work arriving per second (busy workers' worth)
};

struct ClassDemand {
  int queued_jobs = 0;         // queued jobs routed to this class
  double queued_seconds = 0;   // their expected work
  double drain_workers = 0;    // to finish running + queued work within each job's slack
  double arrival_workers = 0;  // offered_load / target_utilization
  int desired_workers = 0;     // max(busy, ceil(drain + arrival))
};

// `loads` parallel to `classes`. Queued jobs sorted by slack: the drain term is the largest
// (running work + work due by slack s) / s, the fluid bound on workers that meet every slack.
std::vector<ClassDemand> DesiredWorkers(double now, const std::vector<PlacementJob>& queued,
                                        const std::vector<ClassCapacity>& classes,
                                        const std::vector<ClassLoad>& loads,
                                        const ClassSecondsFn& seconds,
                                        const AutoscaleOptions& options);

// Seconds of work per second, averaged with exponential decay over `window_seconds`.
class DecayingRate {
 public:
  explicit DecayingRate(double window_seconds) : window_(window_seconds) {}
  void Add(double now, double amount);
  double Value(double now) const;

 private:
  double window_;
  double value_ = 0;
  double at_ = 0;
  bool started_ = false;
};

}  // namespace turbovid::scheduler
