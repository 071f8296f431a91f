// Families every turbovid process exports beside its own (docs/design.md §12.5): the standard
// process_* set read from /proc on each scrape and the free space of a directory's file system
// (turbovid_build_info is in build_info.h).
#pragma once

#include <string>
#include <vector>

#include "common/metrics.h"

namespace turbovid::common::metrics {

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds (the names and meanings of
// Prometheus' client libraries), sampled from /proc/self on every Render. Once per registry.
void AddProcessMetrics(Registry& registry);

// A directory whose file system turbovid_<prefix>_free_bytes / _capacity_bytes{dir=label}
// report (statvfs on every Render; a directory that cannot be read is left out of that scrape).
struct WatchedDir {
  std::string label;  // bounded: "db", "artifacts", ...
  std::string path;
};
void AddDiskMetrics(Registry& registry, const std::string& prefix, std::vector<WatchedDir> dirs);

// /proc readings, exposed for tests. False when /proc/self cannot be read.
struct ProcessSample {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // unix time
  double open_fds = 0;
  double max_fds = 0;
};
bool ReadProcessSample(ProcessSample* out);

}  // namespace turbovid::common::metrics
