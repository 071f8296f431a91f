// models.yaml parsing and the resolution presets (Wan's 480p = 832x480, 720p = 1280x720 at 16:9;
// other aspects keep about the same pixel count, sides multiples of 16).
#include "scheduler/model_catalog.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/status_macros.h"

namespace turbovid::scheduler {
namespace {

using common::ConfigNode;

absl::StatusOr<VariantSpec> ParseVariant(const ConfigNode& node) {
  VariantSpec v;
  TV_RETURN_IF_ERROR(node.Require("name", &v.name));
  TV_RETURN_IF_ERROR(node.Require("sampler", &v.sampler));
  TV_RETURN_IF_ERROR(node.Require("default_steps", &v.default_steps));
  TV_RETURN_IF_ERROR(node.Require("max_steps", &v.max_steps));
  TV_RETURN_IF_ERROR(node.Require("attention", &v.attention));
  TV_RETURN_IF_ERROR(node.Read("sla_topk", &v.sla_topk));
  TV_RETURN_IF_ERROR(node.Read("weights", &v.weights));
  TV_RETURN_IF_ERROR(node.Read("is_i2v", &v.is_i2v));
  TV_RETURN_IF_ERROR(node.Read("cfg", &v.cfg));
  TV_RETURN_IF_ERROR(node.Read("checkpoint", &v.checkpoint));
  if (v.sampler != "rcm" && v.sampler != "unipc") {
    return node.Error(absl::StrCat("sampler: '", v.sampler, "' is not rcm or unipc"));
  }
  if (v.attention != "dense" && v.attention != "sla" && v.attention != "sagesla") {
    return node.Error(
        absl::StrCat("attention: '", v.attention, "' is not dense, sla or sagesla"));
  }
  if (!(v.sla_topk > 0 && v.sla_topk <= 1)) {
    return node.Error(absl::StrCat("sla_topk: ", v.sla_topk, " is outside (0, 1]"));
  }
  if (v.sampler == "rcm" && v.max_steps > 4) {
    return node.Error(absl::StrCat("max_steps: ", v.max_steps, " > 4, rcm is distilled for 1-4"));
  }
  if (v.max_steps < 1 || v.default_steps < 1 || v.default_steps > v.max_steps) {
    return node.Error("need 1 <= default_steps <= max_steps");
  }
  TV_ASSIGN_OR_RETURN(ConfigNode memory, node.Child("memory_gib"));
  for (const std::string& node_class : memory.Keys()) {
    TV_ASSIGN_OR_RETURN(ConfigNode value, memory.Child(node_class));
    TV_ASSIGN_OR_RETURN(double gib, value.AsDouble());
    if (gib <= 0) return value.Error("must be > 0");
    v.memory_bytes[node_class] = static_cast<int64_t>(std::llround(gib * (1ll << 30)));
  }
  if (v.memory_bytes.empty()) return memory.Error("lists no node class");
  // GPUs one worker (group) must have to run it, per node class (docs/parallelism.md §5).
  if (node.Has("gpus")) {
    TV_ASSIGN_OR_RETURN(ConfigNode gpus, node.Child("gpus"));
    for (const std::string& node_class : gpus.Keys()) {
      TV_ASSIGN_OR_RETURN(ConfigNode value, gpus.Child(node_class));
      TV_ASSIGN_OR_RETURN(int64_t n, value.AsInt());
      if (n < 1 || n > 8) return value.Error("must be 1..8 (one node's GPUs)");
      if (v.memory_bytes.count(node_class) == 0) {
        return value.Error(absl::StrCat("node class ", node_class, " has no memory_gib entry"));
      }
      v.gpus[node_class] = static_cast<int>(n);
    }
  }
  return v;
}

absl::StatusOr<ModelSpec> ParseModel(const ConfigNode& node) {
  ModelSpec m;
  TV_RETURN_IF_ERROR(node.Require("id", &m.id));
  TV_RETURN_IF_ERROR(node.Read("arch", &m.arch));
  TV_RETURN_IF_ERROR(node.Read("experts", &m.experts));
  TV_RETURN_IF_ERROR(node.Require("default_variant", &m.default_variant));
  TV_RETURN_IF_ERROR(node.Read("default_resolution", &m.default_resolution));
  TV_RETURN_IF_ERROR(node.Read("default_aspect", &m.default_aspect));
  TV_RETURN_IF_ERROR(node.Read("default_width_pixels", &m.default_width_pixels));
  TV_RETURN_IF_ERROR(node.Read("default_height_pixels", &m.default_height_pixels));
  TV_RETURN_IF_ERROR(node.Read("default_num_frames", &m.default_num_frames));
  if (m.default_width_pixels > 0 || m.default_height_pixels > 0) {
    if (m.default_width_pixels % 16 != 0 || m.default_height_pixels % 16 != 0 ||
        m.default_width_pixels <= 0 || m.default_height_pixels <= 0) {
      return node.Error("default_width_pixels/default_height_pixels: positive multiples of 16");
    }
  } else {
    int w = 0;
    int h = 0;
    absl::Status preset = PresetSize(m.default_resolution, m.default_aspect, &w, &h);
    if (!preset.ok()) return node.Error(std::string(preset.message()));
  }
  if (m.default_num_frames < 1 || (m.default_num_frames - 1) % 4 != 0) {
    return node.Error(absl::StrCat("default_num_frames: ", m.default_num_frames, " is not 4k+1"));
  }
  TV_ASSIGN_OR_RETURN(ConfigNode variants, node.Child("variants"));
  TV_ASSIGN_OR_RETURN(std::vector<ConfigNode> items, variants.Elements());
  std::set<std::string> names;
  for (const ConfigNode& item : items) {
    TV_ASSIGN_OR_RETURN(VariantSpec variant, ParseVariant(item));
    if (!names.insert(variant.name).second) return item.Error("duplicate variant name");
    m.variants.push_back(std::move(variant));
  }
  if (m.FindVariant(m.default_variant) == nullptr) {
    return node.Error(absl::StrCat("default_variant: '", m.default_variant, "' is not listed"));
  }
  return m;
}

}  // namespace

const VariantSpec* ModelSpec::FindVariant(const std::string& name) const {
  for (const VariantSpec& v : variants) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

absl::StatusOr<ModelCatalog> ModelCatalog::LoadFile(const std::string& path) {
  TV_ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::LoadFile(path));
  return Parse(root);
}

absl::StatusOr<ModelCatalog> ModelCatalog::Parse(const ConfigNode& root) {
  ModelCatalog catalog;
  TV_ASSIGN_OR_RETURN(ConfigNode models, root.Child("models"));
  TV_ASSIGN_OR_RETURN(std::vector<ConfigNode> items, models.Elements());
  std::set<std::string> ids;
  for (const ConfigNode& item : items) {
    TV_ASSIGN_OR_RETURN(ModelSpec model, ParseModel(item));
    if (!ids.insert(model.id).second) return item.Error("duplicate model id");
    catalog.models_.push_back(std::move(model));
  }
  if (catalog.models_.empty()) return models.Error("no models");
  return catalog;
}

const ModelSpec* ModelCatalog::Find(const std::string& model_id) const {
  for (const ModelSpec& m : models_) {
    if (m.id == model_id) return &m;
  }
  return nullptr;
}

std::string ModelCatalog::ModelIds() const {
  std::vector<std::string> ids;
  for (const ModelSpec& m : models_) ids.push_back(m.id);
  return absl::StrJoin(ids, ", ");
}

std::set<std::string> ModelCatalog::NodeClasses() const {
  std::set<std::string> classes;
  for (const ModelSpec& m : models_) {
    for (const VariantSpec& v : m.variants) {
      for (const auto& [node_class, bytes] : v.memory_bytes) classes.insert(node_class);
    }
  }
  return classes;
}

absl::Status PresetSize(const std::string& resolution, const std::string& aspect, int* width,
                        int* height) {
  struct Preset {
    const char* resolution;
    const char* aspect;
    int width;
    int height;
  };
  static constexpr Preset kPresets[] = {
      {"480p", "16:9", 832, 480},  {"480p", "9:16", 480, 832}, {"480p", "4:3", 704, 544},
      {"480p", "3:4", 544, 704},   {"480p", "1:1", 624, 624},  {"720p", "16:9", 1280, 720},
      {"720p", "9:16", 720, 1280}, {"720p", "4:3", 1104, 832}, {"720p", "3:4", 832, 1104},
      {"720p", "1:1", 960, 960},
  };
  const std::string res = resolution;
  const std::string asp = aspect.empty() ? "16:9" : aspect;
  if (res != "480p" && res != "720p") {
    return absl::InvalidArgumentError(
        absl::StrCat("size.resolution: '", res, "' is not one of 480p, 720p"));
  }
  for (const Preset& p : kPresets) {
    if (res == p.resolution && asp == p.aspect) {
      *width = p.width;
      *height = p.height;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("size.aspect: '", asp, "' is not one of 16:9, 9:16, 4:3, 3:4, 1:1"));
}

}  // namespace turbovid::scheduler
