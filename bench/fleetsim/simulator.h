// turbovid-fleetsim's discrete-event simulation: a workload's arrivals go through the scheduler's
// own queue (JobQueue, DispatchOrder) and placement (PlanDispatch over pools, with the
// ServiceTimeModel's estimates) on N simulated workers per node class, on a simulated clock.
// A worker is one pool member of its class, one job at a time, every model warm; a job runs for
// the model's estimate (times a seeded lognormal jitter when asked). docs/fleet.md §3.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/fleetsim/workload.h"
#include "scheduler/autoscale.h"
#include "scheduler/model_catalog.h"
#include "scheduler/service_time.h"

namespace turbovid::fleetsim {

struct FleetSpec {
  std::map<std::string, int> workers;  // node class -> workers (a class may have 0)
  // Device memory per GPU by class (catalog fit checks); a class not listed is not checked.
  std::map<std::string, int64_t> memory_bytes = {
      {"h100", 80ll << 30}, {"h200", 141ll << 30}, {"rtx5090", 32ll << 30}};
};

struct SimOptions {
  double jitter_cv = 0;     // coefficient of variation of the actual service time
  uint64_t seed = 1;        // of the jitter
  double tick_seconds = 1;  // dispatch passes while jobs are held (the scheduler's heartbeats)
  double autoscale_sample_seconds = 0;  // 0 = off; else sample the desired workers this often
  scheduler::AutoscaleOptions autoscale;
  double load_window_seconds = 300;  // of the offered load behind the autoscaling signal
};

struct ClassReport {
  std::string node_class;
  int workers = 0;
  double price_per_hour = 0;
  int64_t jobs = 0;
  double busy_seconds = 0;
  double utilization = 0;  // busy / (workers x span)
  double busy_cost = 0;    // price x busy time of the jobs it ran
  double fleet_cost = 0;   // price x workers x span
  double busy_cost_per_video = 0;
  double fleet_cost_per_video = 0;  // its provisioned cost over the videos it made
  double latency_p50 = 0, latency_p95 = 0, latency_p99 = 0;
  double desired_mean = 0, desired_max = 0;  // autoscaling signal over the samples
};

struct SimReport {
  std::string workload;
  int64_t jobs = 0;  // arrivals
  int64_t completed = 0;
  int64_t unservable = 0;  // no class of the fleet can run them (dropped at arrival)
  double latency_mean = 0, latency_p50 = 0, latency_p95 = 0, latency_p99 = 0, latency_max = 0;
  int64_t deadline_jobs = 0;
  int64_t deadline_misses = 0;
  double span_seconds = 0;  // first arrival to last completion
  double fleet_cost = 0;    // every worker paid for the whole span
  double fleet_cost_per_video = 0;
  double busy_cost_per_video = 0;
  std::vector<ClassReport> classes;
  int64_t dispatch_passes = 0;
  double wall_seconds = 0;  // of the simulation itself
};

// Latency at percentile `p` (0..100) of `values` (reordered), nearest rank.
double Percentile(std::vector<double>& values, double p);

absl::StatusOr<SimReport> Simulate(const Workload& workload, const FleetSpec& fleet,
                                   const scheduler::ServiceTimeModel& model,
                                   const scheduler::ModelCatalog& catalog,
                                   const SimOptions& options);

std::string FormatReport(const SimReport& report);
std::string ReportJson(const SimReport& report);

}  // namespace turbovid::fleetsim
