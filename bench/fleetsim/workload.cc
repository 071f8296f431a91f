// Workload specs and traces: parsing, shape resolution against the catalog, the seeded arrival
// generator (Poisson, or Poisson with periodic bursts), CSV in and out.
#include "bench/fleetsim/workload.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config.h"
#include "common/status_macros.h"

namespace turbovid::fleetsim {
namespace {

using common::ConfigNode;
using scheduler::JobShape;
using scheduler::ModelCatalog;
using scheduler::ModelSpec;
using scheduler::VariantSpec;

absl::Status ParseSize(const std::string& text, int* width, int* height) {
  std::vector<std::string> parts = absl::StrSplit(text, 'x');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], width) ||
      !absl::SimpleAtoi(parts[1], height)) {
    return absl::InvalidArgumentError(
        absl::StrCat("resolution: '", text, "' is not 480p, 720p or WxH"));
  }
  return absl::OkStatus();
}

// Interns job shapes: one SimShape per distinct (model, variant, size, frames, steps).
class ShapeTable {
 public:
  ShapeTable(const ModelCatalog& catalog, Workload* workload)
      : catalog_(catalog), workload_(workload) {}

  absl::StatusOr<int> Resolve(const JobKind& kind) {
    const ModelSpec* model = catalog_.Find(kind.model);
    if (model == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("model: unknown model '", kind.model,
                                                     "' (known: ", catalog_.ModelIds(), ")"));
    }
    const VariantSpec* variant =
        model->FindVariant(kind.variant.empty() ? model->default_variant : kind.variant);
    if (variant == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("variant: '", kind.variant, "' is not a variant of ", model->id));
    }
    JobShape s{model->id,
               variant->name,
               0,
               0,
               kind.frames > 0 ? kind.frames : model->default_num_frames,
               kind.steps > 0 ? kind.steps : variant->default_steps};
    if (kind.resolution.empty()) {
      s.width_pixels = model->default_width_pixels;
      s.height_pixels = model->default_height_pixels;
      if (s.width_pixels <= 0) {
        TV_RETURN_IF_ERROR(scheduler::PresetSize(model->default_resolution, model->default_aspect,
                                                 &s.width_pixels, &s.height_pixels));
      }
    } else if (kind.resolution == "480p" || kind.resolution == "720p") {
      TV_RETURN_IF_ERROR(
          scheduler::PresetSize(kind.resolution, "16:9", &s.width_pixels, &s.height_pixels));
    } else {
      TV_RETURN_IF_ERROR(ParseSize(kind.resolution, &s.width_pixels, &s.height_pixels));
    }
    if (s.width_pixels < 16 || s.width_pixels % 16 != 0 || s.height_pixels < 16 ||
        s.height_pixels % 16 != 0) {
      return absl::InvalidArgumentError(absl::StrCat("resolution: ", s.width_pixels, "x",
                                                     s.height_pixels,
                                                     " is not a multiple of 16 on both sides"));
    }
    if ((s.num_frames - 1) % 4 != 0) {
      return absl::InvalidArgumentError(absl::StrCat("frames: ", s.num_frames, " is not 4k+1"));
    }
    if (s.num_steps > variant->max_steps) {
      return absl::InvalidArgumentError(absl::StrCat("steps: ", s.num_steps, " > ",
                                                     variant->max_steps, " for ", model->id, ":",
                                                     variant->name));
    }
    if (!(kind.deadline_seconds >= 0) || !std::isfinite(kind.deadline_seconds)) {
      return absl::InvalidArgumentError(
          absl::StrCat("deadline: ", kind.deadline_seconds, " must be >= 0"));
    }
    const auto key = std::make_tuple(s.model_id, s.variant, s.width_pixels, s.height_pixels,
                                     s.num_frames, s.num_steps);
    auto [it, fresh] = index_.try_emplace(key, static_cast<int>(workload_->shapes.size()));
    if (fresh) {
      workload_->shapes.push_back(
          SimShape{s, scheduler::PlacementRequest{model->id, variant, s.width_pixels,
                                                  s.height_pixels, s.num_frames}});
    }
    return it->second;
  }

 private:
  const ModelCatalog& catalog_;
  Workload* workload_;
  std::map<std::tuple<std::string, std::string, int, int, int, int>, int> index_;
};

absl::StatusOr<JobKind> ParseKind(const ConfigNode& node) {
  TV_RETURN_IF_ERROR(node.CheckKeys({"weight", "model", "variant", "resolution", "frames", "steps",
                                     "deadline_seconds", "priority"}));
  JobKind k;
  TV_RETURN_IF_ERROR(node.Read("weight", &k.weight));
  TV_RETURN_IF_ERROR(node.Require("model", &k.model));
  TV_RETURN_IF_ERROR(node.Read("variant", &k.variant));
  TV_RETURN_IF_ERROR(node.Read("resolution", &k.resolution));
  TV_RETURN_IF_ERROR(node.Read("frames", &k.frames));
  TV_RETURN_IF_ERROR(node.Read("steps", &k.steps));
  TV_RETURN_IF_ERROR(node.Read("deadline_seconds", &k.deadline_seconds));
  TV_RETURN_IF_ERROR(node.Read("priority", &k.priority));
  if (!(k.weight > 0)) return node.Error(absl::StrCat("weight: ", k.weight, " must be > 0"));
  return k;
}

}  // namespace

absl::StatusOr<WorkloadSpec> LoadWorkloadSpec(const std::string& path) {
  TV_ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::LoadFile(path));
  TV_RETURN_IF_ERROR(root.CheckKeys({"name", "arrival", "jobs", "seed", "mix"}));
  WorkloadSpec spec;
  TV_RETURN_IF_ERROR(root.Read("name", &spec.name));
  TV_RETURN_IF_ERROR(root.Read("jobs", &spec.jobs));
  int64_t seed = 1;
  TV_RETURN_IF_ERROR(root.Read("seed", &seed));
  spec.seed = static_cast<uint64_t>(seed);
  TV_ASSIGN_OR_RETURN(ConfigNode arrival, root.Child("arrival"));
  TV_RETURN_IF_ERROR(arrival.CheckKeys(
      {"process", "rate_per_second", "burst_rate_per_second", "burst_seconds", "period_seconds"}));
  TV_RETURN_IF_ERROR(arrival.Require("process", &spec.process));
  TV_RETURN_IF_ERROR(arrival.Require("rate_per_second", &spec.rate_per_second));
  TV_RETURN_IF_ERROR(arrival.Read("burst_rate_per_second", &spec.burst_rate_per_second));
  TV_RETURN_IF_ERROR(arrival.Read("burst_seconds", &spec.burst_seconds));
  TV_RETURN_IF_ERROR(arrival.Read("period_seconds", &spec.period_seconds));
  if (spec.process != "poisson" && spec.process != "bursty") {
    return arrival.Error(absl::StrCat("process: '", spec.process, "' is not poisson or bursty"));
  }
  if (!(spec.rate_per_second > 0)) return arrival.Error("rate_per_second: must be > 0");
  if (spec.process == "bursty" && !(spec.burst_rate_per_second > 0 && spec.burst_seconds > 0 &&
                                    spec.period_seconds > spec.burst_seconds)) {
    return arrival.Error(
        "bursty: needs burst_rate_per_second > 0 and 0 < burst_seconds < period_seconds");
  }
  if (spec.jobs <= 0) return root.Error("jobs: must be > 0");
  TV_ASSIGN_OR_RETURN(ConfigNode mix, root.Child("mix"));
  TV_ASSIGN_OR_RETURN(std::vector<ConfigNode> kinds, mix.Elements());
  for (const ConfigNode& node : kinds) {
    TV_ASSIGN_OR_RETURN(JobKind kind, ParseKind(node));
    spec.mix.push_back(std::move(kind));
  }
  if (spec.mix.empty()) return mix.Error("empty: at least one kind of job");
  return spec;
}

absl::StatusOr<Workload> GenerateWorkload(const WorkloadSpec& spec, const ModelCatalog& catalog,
                                          int64_t jobs) {
  Workload workload;
  workload.name = spec.name;
  ShapeTable shapes(catalog, &workload);
  std::vector<int> kind_shape;
  std::vector<double> weights;
  for (const JobKind& kind : spec.mix) {
    absl::StatusOr<int> shape = shapes.Resolve(kind);
    if (!shape.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("mix entry ", kind_shape.size() + 1, ": ", shape.status().message()));
    }
    kind_shape.push_back(*shape);
    weights.push_back(kind.weight);
  }
  const int64_t count = jobs > 0 ? jobs : spec.jobs;
  std::mt19937_64 rng(spec.seed);
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::exponential_distribution<double> unit(1.0);
  workload.arrivals.reserve(static_cast<size_t>(count));
  double t = 0;
  while (static_cast<int64_t>(workload.arrivals.size()) < count) {
    double rate = spec.rate_per_second;
    double boundary = std::numeric_limits<double>::infinity();
    if (spec.process == "bursty") {
      const double phase = std::fmod(t, spec.period_seconds);
      const bool burst = phase < spec.burst_seconds;
      rate = burst ? spec.burst_rate_per_second : spec.rate_per_second;
      boundary = t - phase + (burst ? spec.burst_seconds : spec.period_seconds);
    }
    const double next = t + unit(rng) / rate;
    if (next >= boundary) {  // exponential gaps are memoryless: restart at the rate change
      t = boundary;
      continue;
    }
    t = next;
    const int k = pick(rng);
    workload.arrivals.push_back(
        Arrival{t, kind_shape[k], spec.mix[k].deadline_seconds, spec.mix[k].priority});
  }
  return workload;
}

absl::StatusOr<Workload> ReadTrace(const std::string& path, const ModelCatalog& catalog) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  Workload workload;
  workload.name = std::filesystem::path(path).stem().string();
  ShapeTable shapes(catalog, &workload);
  std::string line;
  std::map<std::string, int> column;
  int line_number = 0;
  auto field = [&](const std::vector<std::string>& cells, const char* a, const char* b) {
    for (const char* name : {a, b}) {
      auto it = column.find(name);
      if (it != column.end() && it->second < static_cast<int>(cells.size())) {
        return std::string(absl::StripAsciiWhitespace(cells[it->second]));
      }
    }
    return std::string();
  };
  while (std::getline(in, line)) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty() || line[0] == '#') continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (column.empty()) {
      for (size_t i = 0; i < cells.size(); ++i) {
        column[std::string(absl::StripAsciiWhitespace(cells[i]))] = static_cast<int>(i);
      }
      for (const char* need : {"model", "variant", "resolution", "frames"}) {
        if (column.count(need) == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ":", line_number, ": header has no '", need, "' column"));
        }
      }
      if (column.count("time") + column.count("time_seconds") == 0 ||
          column.count("deadline") + column.count("deadline_seconds") == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line_number, ": header needs a time and a deadline column"));
      }
      continue;
    }
    auto bad = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": ", what));
    };
    JobKind kind;
    kind.model = field(cells, "model", "model");
    kind.variant = field(cells, "variant", "variant");
    kind.resolution = field(cells, "resolution", "resolution");
    double time = 0;
    const std::string time_text = field(cells, "time", "time_seconds");
    if (!absl::SimpleAtod(time_text, &time) || !(time >= 0)) {
      return bad(absl::StrCat("time: '", time_text, "' is not a time >= 0"));
    }
    for (auto [name, out] : {std::pair<const char*, int*>{"frames", &kind.frames},
                             {"steps", &kind.steps},
                             {"priority", &kind.priority}}) {
      const std::string text = field(cells, name, name);
      if (!text.empty() && !absl::SimpleAtoi(text, out)) {
        return bad(absl::StrCat(name, ": '", text, "' is not an integer"));
      }
    }
    const std::string deadline = field(cells, "deadline", "deadline_seconds");
    if (!deadline.empty() && !absl::SimpleAtod(deadline, &kind.deadline_seconds)) {
      return bad(absl::StrCat("deadline: '", deadline, "' is not a number"));
    }
    absl::StatusOr<int> shape = shapes.Resolve(kind);
    if (!shape.ok()) return bad(std::string(shape.status().message()));
    workload.arrivals.push_back(Arrival{time, *shape, kind.deadline_seconds, kind.priority});
  }
  std::stable_sort(workload.arrivals.begin(), workload.arrivals.end(),
                   [](const Arrival& a, const Arrival& b) { return a.time < b.time; });
  if (workload.arrivals.empty()) return absl::InvalidArgumentError(path + ": no jobs");
  return workload;
}

absl::Status WriteTrace(const Workload& workload, const std::string& path) {
  std::ofstream out(path);
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": cannot write"));
  out << "time,model,variant,resolution,frames,deadline,steps,priority\n";
  for (const Arrival& a : workload.arrivals) {
    const JobShape& s = workload.shapes[a.shape].shape;
    out << absl::StrCat(absl::StrFormat("%.3f", a.time), ",", s.model_id, ",", s.variant, ",",
                        s.width_pixels, "x", s.height_pixels, ",", s.num_frames, ",",
                        a.deadline_seconds, ",", s.num_steps, ",", a.priority, "\n");
  }
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<Workload> LoadWorkload(const std::string& path, const ModelCatalog& catalog,
                                      int64_t jobs) {
  if (path.size() > 4 && path.substr(path.size() - 4) == ".csv") {
    TV_ASSIGN_OR_RETURN(Workload workload, ReadTrace(path, catalog));
    if (jobs > 0 && static_cast<int64_t>(workload.arrivals.size()) > jobs) {
      workload.arrivals.resize(static_cast<size_t>(jobs));
    }
    return workload;
  }
  TV_ASSIGN_OR_RETURN(WorkloadSpec spec, LoadWorkloadSpec(path));
  return GenerateWorkload(spec, catalog, jobs);
}

}  // namespace turbovid::fleetsim
