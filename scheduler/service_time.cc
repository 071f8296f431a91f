// The service-time model: prior table parsing, moving averages, estimates and their fallbacks.
#include "scheduler/service_time.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/status_macros.h"

namespace turbovid::scheduler {
namespace {

using common::ConfigNode;

absl::Status CheckShapeField(const ConfigNode& node, const char* key, int value, int multiple) {
  if (value <= 0 || value % multiple != 0) {
    return node.Error(absl::StrCat(key, ": ", value, " is not a positive multiple of ", multiple));
  }
  return absl::OkStatus();
}

absl::StatusOr<PriorEntry> ParsePrior(const ConfigNode& node) {
  TV_RETURN_IF_ERROR(
      node.CheckKeys({"node_class", "layout", "model", "variant", "width_pixels", "height_pixels",
                      "frames", "step_seconds", "fixed_seconds", "load_seconds", "basis"}));
  PriorEntry e;
  TV_RETURN_IF_ERROR(node.Require("node_class", &e.node_class));
  TV_RETURN_IF_ERROR(node.Read("layout", &e.layout));
  TV_RETURN_IF_ERROR(node.Require("model", &e.model_id));
  TV_RETURN_IF_ERROR(node.Require("variant", &e.variant));
  TV_RETURN_IF_ERROR(node.Require("width_pixels", &e.width_pixels));
  TV_RETURN_IF_ERROR(node.Require("height_pixels", &e.height_pixels));
  TV_RETURN_IF_ERROR(node.Require("frames", &e.num_frames));
  TV_RETURN_IF_ERROR(node.Require("step_seconds", &e.step_seconds));
  TV_RETURN_IF_ERROR(node.Require("fixed_seconds", &e.fixed_seconds));
  TV_RETURN_IF_ERROR(node.Read("load_seconds", &e.load_seconds));
  TV_RETURN_IF_ERROR(node.Require("basis", &e.basis));
  TV_RETURN_IF_ERROR(CheckShapeField(node, "width_pixels", e.width_pixels, 16));
  TV_RETURN_IF_ERROR(CheckShapeField(node, "height_pixels", e.height_pixels, 16));
  if (e.num_frames < 1 || (e.num_frames - 1) % 4 != 0) {
    return node.Error(absl::StrCat("frames: ", e.num_frames, " is not 4k+1"));
  }
  if (!(e.step_seconds > 0) || !std::isfinite(e.step_seconds)) {
    return node.Error(absl::StrCat("step_seconds: ", e.step_seconds, " must be > 0"));
  }
  if (!(e.fixed_seconds >= 0) || !std::isfinite(e.fixed_seconds)) {
    return node.Error(absl::StrCat("fixed_seconds: ", e.fixed_seconds, " must be >= 0"));
  }
  if (!std::isfinite(e.load_seconds)) return node.Error("load_seconds: not a finite number");
  if (e.basis != "measured" && e.basis != "derived" && e.basis != "estimate") {
    return node.Error(
        absl::StrCat("basis: '", e.basis, "' is not one of measured, derived, estimate"));
  }
  if (e.layout.empty()) return node.Error("layout: empty");
  return e;
}

}  // namespace

double ShapeTokens(const JobShape& s) {
  if (s.num_frames < 1 || s.width_pixels < 16 || s.height_pixels < 16) return 0;
  const double frames = (s.num_frames - 1) / 4 + 1;
  return frames * (s.width_pixels / 16) * (s.height_pixels / 16);
}

std::string ParallelLayout(int gpu_count, int tensor_parallel_size, int sequence_parallel_size) {
  const int tp = std::max(1, tensor_parallel_size);
  const int sp = std::max(1, sequence_parallel_size);
  if (tp > 1 && sp > 1) return absl::StrCat("tp", tp, "sp", sp);
  if (tp > 1) return absl::StrCat("tp", tp);
  if (sp > 1) return absl::StrCat("sp", sp);
  return absl::StrCat(std::max(1, gpu_count), "gpu");
}

const char* EstimateSourceName(EstimateSource source) {
  switch (source) {
    case EstimateSource::kMeasured:
      return "measured";
    case EstimateSource::kPriorCalibrated:
      return "prior-calibrated";
    case EstimateSource::kPrior:
      return "prior";
    case EstimateSource::kPriorScaled:
      return "prior-scaled";
    case EstimateSource::kMeasuredScaled:
      return "measured-scaled";
  }
  return "unknown";
}

absl::StatusOr<ServiceTimeTable> LoadServiceTimeTable(const std::string& path) {
  TV_ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::LoadFile(path));
  return ParseServiceTimeTable(root);
}

absl::StatusOr<ServiceTimeTable> ParseServiceTimeTable(const ConfigNode& root) {
  TV_RETURN_IF_ERROR(root.CheckKeys({"node_classes", "priors"}));
  ServiceTimeTable table;
  if (root.Has("node_classes")) {
    TV_ASSIGN_OR_RETURN(ConfigNode classes, root.Child("node_classes"));
    if (!classes.IsMap()) return classes.Error("expected a map of node class -> price");
    for (const std::string& name : classes.Keys()) {
      TV_ASSIGN_OR_RETURN(ConfigNode node, classes.Child(name));
      TV_RETURN_IF_ERROR(node.CheckKeys({"price_per_hour", "basis"}));
      NodeClassPrice price;
      TV_RETURN_IF_ERROR(node.Require("price_per_hour", &price.price_per_hour));
      TV_RETURN_IF_ERROR(node.Read("basis", &price.basis));
      if (!(price.price_per_hour >= 0) || !std::isfinite(price.price_per_hour)) {
        return node.Error(absl::StrCat("price_per_hour: ", price.price_per_hour, " must be >= 0"));
      }
      table.node_classes[name] = price;
    }
  }
  if (root.Has("priors")) {
    TV_ASSIGN_OR_RETURN(ConfigNode priors, root.Child("priors"));
    TV_ASSIGN_OR_RETURN(std::vector<ConfigNode> entries, priors.Elements());
    std::set<std::tuple<std::string, std::string, std::string, std::string, int, int, int>> seen;
    for (const ConfigNode& node : entries) {
      TV_ASSIGN_OR_RETURN(PriorEntry e, ParsePrior(node));
      if (!seen.insert({e.node_class, e.layout, e.model_id, e.variant, e.width_pixels,
                        e.height_pixels, e.num_frames})
               .second) {
        return node.Error(absl::StrCat("duplicate prior for ", e.node_class, "/", e.layout, " ",
                                       e.model_id, ":", e.variant, " ", e.width_pixels, "x",
                                       e.height_pixels, "x", e.num_frames));
      }
      table.priors.push_back(std::move(e));
    }
  }
  return table;
}

ServiceTimeModel::ServiceTimeModel(double alpha, ServiceTimeTable table)
    : alpha_(alpha), table_(std::move(table)) {
  for (size_t i = 0; i < table_.priors.size(); ++i) {
    const PriorEntry& e = table_.priors[i];
    families_[FamilyKey{e.node_class, e.layout, e.model_id, e.variant}].priors.push_back(i);
  }
}

ServiceTimeModel::FamilyKey ServiceTimeModel::FamilyOf(const ServiceKey& k) {
  return FamilyKey{k.node_class, k.layout, k.shape.model_id, k.shape.variant};
}

ServiceTimeModel::ExactKey ServiceTimeModel::ExactOf(const ServiceKey& k) {
  return ExactKey{FamilyOf(k), k.shape.width_pixels, k.shape.height_pixels, k.shape.num_frames,
                  k.shape.num_steps};
}

void ServiceTimeModel::Blend(Ewma* slot, double value) const {
  slot->value = slot->samples == 0 ? value : alpha_ * value + (1 - alpha_) * slot->value;
  ++slot->samples;
}

// The prior at exactly this size and frame count, else the entry nearest in latent tokens scaled
// linearly by tokens (attention grows faster than linearly: long clips are underestimated).
std::optional<std::pair<double, EstimateSource>> ServiceTimeModel::FromPriors(
    const Family& family, const JobShape& shape) const {
  const double tokens = ShapeTokens(shape);
  if (family.priors.empty() || tokens <= 0 || shape.num_steps < 1) return std::nullopt;
  const PriorEntry* nearest = nullptr;
  double nearest_distance = std::numeric_limits<double>::infinity();
  for (size_t index : family.priors) {
    const PriorEntry& e = table_.priors[index];
    if (e.width_pixels == shape.width_pixels && e.height_pixels == shape.height_pixels &&
        e.num_frames == shape.num_frames) {
      return std::make_pair(e.fixed_seconds + shape.num_steps * e.step_seconds,
                            EstimateSource::kPrior);
    }
    const double entry_tokens =
        ShapeTokens({e.model_id, e.variant, e.width_pixels, e.height_pixels, e.num_frames, 1});
    const double distance = std::abs(std::log(tokens / entry_tokens));
    if (distance < nearest_distance) {
      nearest_distance = distance;
      nearest = &e;
    }
  }
  const double scale = tokens / ShapeTokens({"", "", nearest->width_pixels, nearest->height_pixels,
                                             nearest->num_frames, 1});
  return std::make_pair(scale * (nearest->fixed_seconds + shape.num_steps * nearest->step_seconds),
                        EstimateSource::kPriorScaled);
}

void ServiceTimeModel::RecordJob(const ServiceKey& key, double total, double denoise) {
  if (!(total > 0) || !std::isfinite(total)) return;
  const ExactKey exact = ExactOf(key);
  auto it = exact_.find(exact);
  if (it != exact_.end()) {
    Blend(&it->second, total);
  } else if (exact_.size() < kMaxExactKeys) {
    Blend(&exact_[exact], total);
  }
  Family& family = families_[FamilyOf(key)];
  if (auto prior = FromPriors(family, key.shape)) Blend(&family.calibration, total / prior->first);
  const double tokens = ShapeTokens(key.shape);
  if (tokens <= 0 || key.shape.num_steps < 1) return;
  // Without step reports the whole time counts as denoising: it then scales with the steps.
  if (!(denoise > 0) || denoise > total) denoise = total;
  Blend(&family.fixed_per_token, (total - denoise) / tokens);
  Blend(&family.step_per_token, denoise / key.shape.num_steps / tokens);
}

void ServiceTimeModel::RecordLoad(const ServiceKey& key, double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return;
  Blend(&families_[FamilyOf(key)].load, seconds);
}

std::optional<ServiceEstimate> ServiceTimeModel::Estimate(const ServiceKey& key) const {
  auto exact = exact_.find(ExactOf(key));
  if (exact != exact_.end()) {
    return ServiceEstimate{exact->second.value, EstimateSource::kMeasured, exact->second.samples};
  }
  auto family = families_.find(FamilyOf(key));
  if (family == families_.end()) return std::nullopt;
  const Family& f = family->second;
  if (auto prior = FromPriors(f, key.shape)) {
    if (f.calibration.samples > 0) {
      return ServiceEstimate{prior->first * f.calibration.value, EstimateSource::kPriorCalibrated,
                             f.calibration.samples};
    }
    return ServiceEstimate{prior->first, prior->second, 0};
  }
  const double tokens = ShapeTokens(key.shape);
  if (f.step_per_token.samples > 0 && tokens > 0 && key.shape.num_steps >= 1) {
    const double seconds =
        tokens * (f.fixed_per_token.value + key.shape.num_steps * f.step_per_token.value);
    return ServiceEstimate{seconds, EstimateSource::kMeasuredScaled, f.step_per_token.samples};
  }
  return std::nullopt;
}

std::optional<double> ServiceTimeModel::PriorEstimate(const ServiceKey& key) const {
  auto family = families_.find(FamilyOf(key));
  if (family == families_.end()) return std::nullopt;
  auto prior = FromPriors(family->second, key.shape);
  if (!prior.has_value()) return std::nullopt;
  return prior->first;
}

std::optional<double> ServiceTimeModel::LoadSeconds(const ServiceKey& key) const {
  auto family = families_.find(FamilyOf(key));
  if (family == families_.end()) return std::nullopt;
  if (family->second.load.samples > 0) return family->second.load.value;
  for (size_t index : family->second.priors) {
    if (table_.priors[index].load_seconds >= 0) return table_.priors[index].load_seconds;
  }
  return std::nullopt;
}

double ServiceTimeModel::PricePerHour(const std::string& node_class) const {
  auto it = table_.node_classes.find(node_class);
  return it == table_.node_classes.end() ? 0 : it->second.price_per_hour;
}

std::vector<ServiceTimeModel::Measured> ServiceTimeModel::MeasuredEntries() const {
  std::vector<Measured> out;
  out.reserve(exact_.size());
  for (const auto& [key, ewma] : exact_) {
    const auto& [family, width, height, frames, steps] = key;
    const auto& [node_class, layout, model_id, variant] = family;
    out.push_back(Measured{
        ServiceKey{node_class, layout, JobShape{model_id, variant, width, height, frames, steps}},
        ewma.value, ewma.samples});
  }
  return out;
}

}  // namespace turbovid::scheduler
