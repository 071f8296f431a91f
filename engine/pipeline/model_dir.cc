// Model folder discovery (see model_dir.h).
#include "engine/pipeline/model_dir.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/json.h"
#include "engine/models/text_encoder.h"

namespace turbovid::engine {

const char kWanNegativePrompt[] =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的"
    "肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

namespace {

namespace fs = std::filesystem;

absl::StatusOr<Json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto json = Json::Parse(ss.str());
  if (!json.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", std::string(json.status().message())));
  return json;
}

}  // namespace

absl::StatusOr<ModelDir> ModelDir::Open(const std::string& path) {
  if (!fs::is_directory(path)) return absl::NotFoundError(absl::StrCat("model_dir: '", path, "' is not a directory"));
  ModelDir dir;
  dir.path = path;
  Json manifest;
  if (fs::exists(path + "/turbovid.json")) {
    TV_ASSIGN_OR_RETURN(manifest, ReadJson(path + "/turbovid.json"));
  }
  const bool has_experts = fs::is_directory(path + "/high_noise_model") && fs::is_directory(path + "/low_noise_model");
  const std::string kind = manifest.StringOr("kind", has_experts ? "i2v-moe" : "t2v");
  if (kind == "i2v-moe") {
    if (!has_experts) {
      return absl::NotFoundError(absl::StrCat(path, ": I2V-MoE needs high_noise_model/ and low_noise_model/"));
    }
    dir.i2v = true;
    dir.dit_dirs = {path + "/high_noise_model", path + "/low_noise_model"};
  } else if (kind == "t2v") {
    dir.dit_dirs = {path};
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, "/turbovid.json: kind '", kind, "' is not t2v or i2v-moe"));
  }
  dir.boundary = manifest.NumberOr("boundary", 0.9);
  for (const char* name : {"Wan2.1_VAE.pth", "Wan2.1_VAE.safetensors"}) {
    if (fs::exists(path + "/" + name)) {
      dir.vae_path = path + "/" + name;
      break;
    }
  }
  if (dir.vae_path.empty()) return absl::NotFoundError(absl::StrCat(path, ": no Wan2.1_VAE.pth"));
  const Json* vae = manifest.Find("vae");
  TV_ASSIGN_OR_RETURN(dir.vae, VaeConfig::FromJson(vae ? *vae : Json()));
  return dir;
}

bool IsQuantizedBlockLinear(const std::string& name, size_t rank) {
  return name.starts_with("blocks.") && name.ends_with(".weight") && rank == 2 &&
         name.find("proj_l") == std::string::npos;
}

absl::StatusOr<int64_t> CheckpointBytes(const std::string& model_dir, bool fp8_blocks) {
  TV_ASSIGN_OR_RETURN(ModelDir dir, ModelDir::Open(model_dir));
  std::vector<std::string> paths = dir.dit_dirs;
  const size_t dits = paths.size();
  TV_ASSIGN_OR_RETURN(std::string t5, TextEncoder::WeightsPath(model_dir));
  paths.push_back(std::move(t5));
  paths.push_back(dir.vae_path);
  int64_t total = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    TV_ASSIGN_OR_RETURN(io::WeightSet weights, io::WeightSet::Load(paths[i]));
    for (const auto& [name, entry] : weights.entries()) {
      const Tensor& t = entry.tensor;
      if (fp8_blocks && i < dits && IsQuantizedBlockLinear(name, t.rank())) {
        total += t.numel() + t.dim(0) * 4;  // e4m3 codes + per-row F32 scales
      } else {
        total += static_cast<int64_t>(t.nbytes());
      }
    }
  }
  return total;
}

absl::StatusOr<DitConfig> LoadDitConfig(const std::string& dit_dir, const io::WeightSet& weights) {
  if (fs::exists(dit_dir + "/config.json")) {
    TV_ASSIGN_OR_RETURN(Json json, ReadJson(dit_dir + "/config.json"));
    auto config = DitConfig::FromJson(json);
    if (!config.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(dit_dir, "/config.json: ", std::string(config.status().message())));
    }
    return config;
  }
  // Infer from shapes: patch embedding [dim, in_dim(·4)], ffn.0 [ffn, dim], text_embedding.0
  // [dim, text_dim], head [4·out, dim], blocks.N.*; head_dim is 128 for every Wan model.
  const auto* pe = weights.Find("patch_embedding.weight");
  const auto* ffn = weights.Find("blocks.0.ffn.0.bias");
  const auto* text = weights.Find("text_embedding.0.weight");
  const auto* head = weights.Find("head.head.weight");
  if (!pe || !ffn || !text || !head) {
    return absl::NotFoundError(absl::StrCat(dit_dir, ": no config.json and the weights lack the tensors to infer it"));
  }
  DitConfig c;
  c.dim = static_cast<int>(pe->tensor.dim(0));
  c.in_dim = static_cast<int>(pe->tensor.rank() == 2 ? pe->tensor.dim(1) / 4 : pe->tensor.dim(1));
  c.model_type = c.in_dim == 36 ? "i2v" : "t2v";
  c.ffn_dim = static_cast<int>(ffn->tensor.dim(0));
  c.text_dim = static_cast<int>(text->tensor.dim(1));
  c.out_dim = static_cast<int>(head->tensor.dim(0) / 4);
  c.num_heads = c.dim / 128;
  c.num_layers = 0;
  while (weights.Find(absl::StrCat("blocks.", c.num_layers, ".ffn.0.bias"))) ++c.num_layers;
  return c;
}

}  // namespace turbovid::engine
