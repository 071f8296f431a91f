// turbovid-fleetsim: replays a workload through the scheduler's queue and placement on simulated
// workers (run), finds the cheapest mix of two node classes for a latency SLO and draws the
// cost/latency frontier (sweep), or writes a workload's arrivals as a trace CSV (trace).
// docs/fleet.md.
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/fleetsim/simulator.h"
#include "bench/fleetsim/sweep.h"
#include "bench/fleetsim/workload.h"
#include "common/status_macros.h"

namespace turbovid::fleetsim {
namespace {

constexpr char kUsage[] =
    "usage: turbovid-fleetsim run --workload FILE [--fleet CLASS=N,...] [common flags]\n"
    "       turbovid-fleetsim sweep --workload FILE --slo SECONDS [--percentile 50|95|99]\n"
    "                               [--max-miss-percent P (default 1)]\n"
    "                               [--classes A,B] [--max A=N,B=M] [--min A=N,B=M]\n"
    "                               [--grid N] [--threads N] [--svg FILE] [common flags]\n"
    "       turbovid-fleetsim trace --workload FILE --out FILE.csv [--jobs N]\n"
    "common flags: --jobs N (arrivals; overrides the workload's) --service-times FILE\n"
    "  (default configs/service-times.yaml) --models FILE (default configs/models.yaml)\n"
    "  --price CLASS=P,... (override prices) --memory-gib CLASS=G,... --jitter CV --seed N\n"
    "  --tick SECONDS --default-slo SECONDS --autoscale-sample SECONDS --json\n"
    "A workload is a YAML spec (arrival process and job mix) or a trace CSV with columns\n"
    "time,model,variant,resolution,frames,deadline[,steps,priority]; see docs/fleet.md.\n";

struct Flags {
  std::string command;
  std::map<std::string, std::string> values;
  bool Has(const std::string& key) const { return values.count(key) != 0; }
  std::string Get(const std::string& key, const std::string& fallback = "") const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
};

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  if (argc < 2) return absl::InvalidArgumentError("missing command");
  flags.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) return absl::InvalidArgumentError("unexpected '" + arg + "'");
    arg = arg.substr(2);
    if (arg == "json") {
      flags.values[arg] = "true";
      continue;
    }
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flags.values[arg.substr(0, eq)] = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      flags.values[arg] = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", arg, ": missing value"));
    }
  }
  return flags;
}

absl::StatusOr<double> Number(const Flags& flags, const std::string& key, double fallback) {
  if (!flags.Has(key)) return fallback;
  double v = 0;
  if (!absl::SimpleAtod(flags.Get(key), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", key, ": '", flags.Get(key), "' is not a number"));
  }
  return v;
}

// "a=1,b=2" -> {a: 1, b: 2}.
absl::StatusOr<std::map<std::string, double>> Pairs(const Flags& flags, const std::string& key) {
  std::map<std::string, double> out;
  if (!flags.Has(key)) return out;
  const std::vector<std::string> items = absl::StrSplit(flags.Get(key), ',', absl::SkipEmpty());
  for (const std::string& item : items) {
    std::vector<std::string> kv = absl::StrSplit(item, '=');
    double v = 0;
    if (kv.size() != 2 || !absl::SimpleAtod(kv[1], &v) || v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", key, ": '", item, "' is not CLASS=NUMBER (>= 0)"));
    }
    out[kv[0]] = v;
  }
  return out;
}

struct Setup {
  scheduler::ModelCatalog catalog;
  scheduler::ServiceTimeTable table;
  Workload workload;
  SimOptions sim;
  FleetSpec fleet;
};

absl::StatusOr<Setup> Load(const Flags& flags) {
  Setup s;
  TV_ASSIGN_OR_RETURN(
      s.catalog, scheduler::ModelCatalog::LoadFile(flags.Get("models", "configs/models.yaml")));
  TV_ASSIGN_OR_RETURN(s.table, scheduler::LoadServiceTimeTable(
                                   flags.Get("service-times", "configs/service-times.yaml")));
  TV_ASSIGN_OR_RETURN(auto prices, Pairs(flags, "price"));
  for (const auto& [node_class, price] : prices) {
    s.table.node_classes[node_class].price_per_hour = price;
  }
  TV_ASSIGN_OR_RETURN(auto memory, Pairs(flags, "memory-gib"));
  for (const auto& [node_class, gib] : memory) {
    s.fleet.memory_bytes[node_class] = static_cast<int64_t>(gib * (1ll << 30));
  }
  TV_ASSIGN_OR_RETURN(double jobs, Number(flags, "jobs", 0));
  if (!flags.Has("workload")) return absl::InvalidArgumentError("--workload: required");
  TV_ASSIGN_OR_RETURN(s.workload,
                      LoadWorkload(flags.Get("workload"), s.catalog, static_cast<int64_t>(jobs)));
  TV_ASSIGN_OR_RETURN(s.sim.jitter_cv, Number(flags, "jitter", 0));
  TV_ASSIGN_OR_RETURN(double seed, Number(flags, "seed", 1));
  s.sim.seed = static_cast<uint64_t>(seed);
  TV_ASSIGN_OR_RETURN(s.sim.tick_seconds, Number(flags, "tick", 1));
  TV_ASSIGN_OR_RETURN(s.sim.autoscale.default_slo_seconds, Number(flags, "default-slo", 300));
  TV_ASSIGN_OR_RETURN(s.sim.autoscale_sample_seconds, Number(flags, "autoscale-sample", 0));
  return s;
}

absl::Status RunCommand(const Flags& flags) {
  TV_ASSIGN_OR_RETURN(Setup s, Load(flags));
  TV_ASSIGN_OR_RETURN(auto fleet, Pairs(flags, "fleet"));
  if (fleet.empty()) return absl::InvalidArgumentError("--fleet: e.g. h100=4,rtx5090=8");
  for (const auto& [node_class, count] : fleet) s.fleet.workers[node_class] = int(count);
  const scheduler::ServiceTimeModel model(0.3, s.table);
  TV_ASSIGN_OR_RETURN(SimReport report, Simulate(s.workload, s.fleet, model, s.catalog, s.sim));
  std::printf("%s\n",
              flags.Has("json") ? ReportJson(report).c_str() : FormatReport(report).c_str());
  return absl::OkStatus();
}

absl::Status SweepCommand(const Flags& flags) {
  TV_ASSIGN_OR_RETURN(Setup s, Load(flags));
  SweepOptions o;
  o.fleet = s.fleet;
  o.sim = s.sim;
  if (!flags.Has("slo")) return absl::InvalidArgumentError("--slo: required (seconds)");
  TV_ASSIGN_OR_RETURN(o.slo_seconds, Number(flags, "slo", 0));
  TV_ASSIGN_OR_RETURN(o.slo_percentile, Number(flags, "percentile", 95));
  TV_ASSIGN_OR_RETURN(double max_miss, Number(flags, "max-miss-percent", 1));
  o.max_miss_rate = max_miss / 100;
  TV_ASSIGN_OR_RETURN(double grid, Number(flags, "grid", 6));
  TV_ASSIGN_OR_RETURN(double threads, Number(flags, "threads", 2));
  o.grid = static_cast<int>(grid);
  o.threads = static_cast<int>(threads);
  if (flags.Has("classes")) {
    std::vector<std::string> classes = absl::StrSplit(flags.Get("classes"), ',');
    if (classes.size() != 2) return absl::InvalidArgumentError("--classes: two, e.g. rtx5090,h100");
    o.class_a = classes[0];
    o.class_b = classes[1];
  }
  TV_ASSIGN_OR_RETURN(auto max, Pairs(flags, "max"));
  TV_ASSIGN_OR_RETURN(auto min, Pairs(flags, "min"));
  if (max.count(o.class_a)) o.max_a = static_cast<int>(max[o.class_a]);
  if (max.count(o.class_b)) o.max_b = static_cast<int>(max[o.class_b]);
  if (min.count(o.class_a)) o.min_a = static_cast<int>(min[o.class_a]);
  if (min.count(o.class_b)) o.min_b = static_cast<int>(min[o.class_b]);
  const scheduler::ServiceTimeModel model(0.3, s.table);
  TV_ASSIGN_OR_RETURN(SweepResult result, Sweep(s.workload, model, s.catalog, o));
  std::printf("%s", flags.Has("json") ? (SweepJson(result, o) + "\n").c_str()
                                      : FormatSweep(result, o).c_str());
  if (flags.Has("svg")) {
    const std::string title = absl::StrCat("Cost per video against latency: ", s.workload.name);
    std::ofstream out(flags.Get("svg"));
    out << FrontierSvg(result, o, title);
    out.close();
    if (!out) return absl::UnavailableError(absl::StrCat(flags.Get("svg"), ": cannot write"));
  }
  return absl::OkStatus();
}

absl::Status TraceCommand(const Flags& flags) {
  if (!flags.Has("out")) return absl::InvalidArgumentError("--out: required");
  TV_ASSIGN_OR_RETURN(
      auto catalog, scheduler::ModelCatalog::LoadFile(flags.Get("models", "configs/models.yaml")));
  TV_ASSIGN_OR_RETURN(double jobs, Number(flags, "jobs", 0));
  if (!flags.Has("workload")) return absl::InvalidArgumentError("--workload: required");
  TV_ASSIGN_OR_RETURN(Workload workload,
                      LoadWorkload(flags.Get("workload"), catalog, static_cast<int64_t>(jobs)));
  return WriteTrace(workload, flags.Get("out"));
}

int Main(int argc, char** argv) {
  absl::StatusOr<Flags> flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "error: %s\n%s", std::string(flags.status().message()).c_str(), kUsage);
    return 2;
  }
  absl::Status status;
  if (flags->command == "run") {
    status = RunCommand(*flags);
  } else if (flags->command == "sweep") {
    status = SweepCommand(*flags);
  } else if (flags->command == "trace") {
    status = TraceCommand(*flags);
  } else if (flags->command == "help" || flags->command == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  } else {
    std::fprintf(stderr, "error: unknown command '%s'\n%s", flags->command.c_str(), kUsage);
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
    return absl::IsInvalidArgument(status) ? 2 : 1;
  }
  return 0;
}

}  // namespace
}  // namespace turbovid::fleetsim

int main(int argc, char** argv) { return turbovid::fleetsim::Main(argc, argv); }
