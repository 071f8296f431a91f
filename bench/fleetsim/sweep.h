// Sweep mode of turbovid-fleetsim: for a workload and a latency SLO (a percentile of end-to-end
// latency), the cheapest mix of two node classes, and the cost/latency frontier drawn as SVG by
// our own writer. For each count of the first class the search counts up the workers of the
// second until the SLO is met, and a coarse grid of larger mixes is simulated too; every
// simulated mix is a point of the picture.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/fleetsim/simulator.h"

namespace turbovid::fleetsim {

struct SweepOptions {
  std::string class_a = "rtx5090";
  std::string class_b = "h100";
  int min_a = 0, max_a = 16;
  int min_b = 0, max_b = 16;
  double slo_seconds = 60;
  double slo_percentile = 95;
  double max_miss_rate = 0.01;  // and at most this share of deadline jobs late
  int grid = 6;                 // grid points per axis, besides the searches
  int threads = 2;              // simulations run in parallel
  FleetSpec fleet;  // other classes' workers and the memory table; a and b are set per mix
  SimOptions sim;
};

struct SweepPoint {
  int a = 0, b = 0;
  double latency = 0;         // at the SLO percentile
  double cost_per_video = 0;  // every worker paid for the span
  double fleet_cost_per_hour = 0;
  double deadline_miss_rate = 0;
  bool served_all = false;  // nothing unservable
  bool meets = false;       // served_all, latency <= SLO, deadline misses <= max_miss_rate
  bool frontier = false;    // no other served mix is both faster and cheaper
  bool fewest_b = false;    // the search's answer: the fewest of class b meeting the SLO at this a
};

struct SweepResult {
  std::vector<SweepPoint> points;  // by (a, b)
  int best = -1;                   // cheapest point that meets the SLO, -1 if none
  int simulations = 0;
};

absl::StatusOr<SweepResult> Sweep(const Workload& workload,
                                  const scheduler::ServiceTimeModel& model,
                                  const scheduler::ModelCatalog& catalog,
                                  const SweepOptions& options);

std::string FormatSweep(const SweepResult& result, const SweepOptions& options);
std::string SweepJson(const SweepResult& result, const SweepOptions& options);
// The cost/latency picture: every mix, the frontier, the SLO and the cheapest mix meeting it.
std::string FrontierSvg(const SweepResult& result, const SweepOptions& options,
                        const std::string& title);

}  // namespace turbovid::fleetsim
