// Workloads for turbovid-fleetsim: a YAML spec (arrival process + job mix) expanded into a list
// of arrivals with a seeded generator, or a trace CSV (docs/fleet.md §3 gives both formats).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "scheduler/model_catalog.h"
#include "scheduler/placement.h"
#include "scheduler/service_time.h"

namespace turbovid::fleetsim {

// One kind of job in a mix, or one row of a trace. Empty/0 fields take the catalog defaults.
struct JobKind {
  double weight = 1;  // share in the mix (specs only)
  std::string model{};
  std::string variant{};
  std::string resolution{};  // "480p", "720p" (16:9) or "WxH"
  int frames = 0;
  int steps = 0;
  double deadline_seconds = 0;  // after arrival; 0 = none
  int priority = 0;
};

struct WorkloadSpec {
  std::string name;
  // "poisson": rate_per_second throughout. "bursty": rate_per_second, and burst_rate_per_second
  // for the first burst_seconds of every period_seconds.
  std::string process = "poisson";
  double rate_per_second = 1;
  double burst_rate_per_second = 0;
  double burst_seconds = 0;
  double period_seconds = 0;
  int64_t jobs = 10000;  // arrivals generated
  uint64_t seed = 1;
  std::vector<JobKind> mix;
};

// A distinct job shape with its catalog entries (pointers into the catalog).
struct SimShape {
  scheduler::JobShape shape;
  scheduler::PlacementRequest request;  // model, variant, size, frames
};

struct Arrival {
  double time = 0;  // seconds from the start
  int shape = 0;    // index into Workload::shapes
  double deadline_seconds = 0;
  int priority = 0;
};

struct Workload {
  std::string name;
  std::vector<SimShape> shapes;
  std::vector<Arrival> arrivals;  // by time
};

absl::StatusOr<WorkloadSpec> LoadWorkloadSpec(const std::string& path);
// Arrivals of `spec`; `jobs` overrides spec.jobs when > 0. The catalog must outlive the result.
absl::StatusOr<Workload> GenerateWorkload(const WorkloadSpec& spec,
                                          const scheduler::ModelCatalog& catalog, int64_t jobs);
// A trace CSV: header naming at least time, model, variant, resolution, frames, deadline (any
// order; steps and priority optional), one job per row.
absl::StatusOr<Workload> ReadTrace(const std::string& path, const scheduler::ModelCatalog& catalog);
absl::Status WriteTrace(const Workload& workload, const std::string& path);
// .csv: ReadTrace; anything else: LoadWorkloadSpec + GenerateWorkload.
absl::StatusOr<Workload> LoadWorkload(const std::string& path,
                                      const scheduler::ModelCatalog& catalog, int64_t jobs);

}  // namespace turbovid::fleetsim
