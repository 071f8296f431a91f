// Process and disk families: /proc/self/stat, /proc/stat's btime, /proc/self/fd, statvfs.
#include "common/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace turbovid::common::metrics {
namespace {

// Seconds since the epoch at boot (the `btime` line of /proc/stat); 0 when unreadable.
double BootTime() {
  std::ifstream stat("/proc/stat");
  std::string key;
  while (stat >> key) {
    if (key == "btime") {
      double value = 0;
      stat >> value;
      return value;
    }
    stat.ignore(1 << 20, '\n');
  }
  return 0;
}

double CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the descriptor opendir holds
}

}  // namespace

bool ReadProcessSample(ProcessSample* out) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  // Field 2 (comm) may hold spaces and parentheses: fields 3.. start after the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;  // f[0] = field 3 (state)
  std::string token;
  while (fields >> token) f.push_back(token);
  if (f.size() < 22) return false;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  out->cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime (14, 15)
  out->start_time_seconds = BootTime() + std::stod(f[19]) / ticks;    // starttime (22)
  out->virtual_bytes = std::stod(f[20]);                              // vsize (23)
  out->resident_bytes = std::stod(f[21]) * page;                      // rss pages (24)
  out->open_fds = CountOpenFds();
  rlimit limit{};
  out->max_fds = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<double>(limit.rlim_cur) : 0;
  return true;
}

void AddProcessMetrics(Registry& registry) {
  struct Families {
    CounterFamily* cpu;
    GaugeFamily* resident;
    GaugeFamily* virtual_bytes;
    GaugeFamily* open_fds;
    GaugeFamily* max_fds;
    GaugeFamily* start_time;
    std::mutex mu;
    double cpu_seen = 0;  // what the counter holds: it only moves forward by the difference
  };
  auto f = std::make_shared<Families>();
  f->cpu = &registry.AddCounter("process_cpu_seconds_total",
                                "User and system CPU time of the process, in seconds.");
  f->resident = &registry.AddGauge("process_resident_memory_bytes", "Resident memory size.");
  f->virtual_bytes = &registry.AddGauge("process_virtual_memory_bytes", "Virtual memory size.");
  f->open_fds = &registry.AddGauge("process_open_fds", "Open file descriptors.");
  f->max_fds = &registry.AddGauge("process_max_fds", "Limit of open file descriptors.");
  f->start_time = &registry.AddGauge("process_start_time_seconds",
                                     "Start time of the process since the unix epoch, in seconds.");
  registry.AddCollectHook([f] {
    ProcessSample s;
    if (!ReadProcessSample(&s)) return;
    std::lock_guard<std::mutex> lock(f->mu);
    if (s.cpu_seconds > f->cpu_seen) {
      f->cpu->Get().Increment(s.cpu_seconds - f->cpu_seen);
      f->cpu_seen = s.cpu_seconds;
    }
    f->resident->Get().Set(s.resident_bytes);
    f->virtual_bytes->Get().Set(s.virtual_bytes);
    f->open_fds->Get().Set(s.open_fds);
    f->max_fds->Get().Set(s.max_fds);
    f->start_time->Get().Set(s.start_time_seconds);
  });
}

void AddDiskMetrics(Registry& registry, const std::string& prefix, std::vector<WatchedDir> dirs) {
  GaugeFamily& free_bytes = registry.AddGauge(
      "turbovid_" + prefix + "_free_bytes",
      "Bytes available to the process on the file system of each data directory.", {"dir"});
  GaugeFamily& capacity = registry.AddGauge("turbovid_" + prefix + "_capacity_bytes",
                                            "Size of the file system of each data directory.",
                                            {"dir"});
  registry.AddCollectHook([&free_bytes, &capacity, dirs = std::move(dirs)] {
    for (const WatchedDir& dir : dirs) {
      struct statvfs fs {};
      if (statvfs(dir.path.c_str(), &fs) != 0) continue;
      const double unit = static_cast<double>(fs.f_frsize);
      free_bytes.WithLabels({dir.label}).Set(static_cast<double>(fs.f_bavail) * unit);
      capacity.WithLabels({dir.label}).Set(static_cast<double>(fs.f_blocks) * unit);
    }
  });
}

}  // namespace turbovid::common::metrics
