// A model folder in the official layout: which DiT folders (one, or high/low-noise experts), the
// VAE file and sizes, and the optional turbovid.json manifest that tiny checkpoints carry.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/weights.h"
#include "engine/models/dit.h"
#include "engine/models/vae.h"

namespace turbovid::engine {

// Wan's default negative prompt for CFG (docs/model-math.md §4.4).
extern const char kWanNegativePrompt[];

struct ModelDir {
  std::string path;
  bool i2v = false;                   // Wan2.2 I2V-A14B layout (two experts)
  std::vector<std::string> dit_dirs;  // [root] or [high_noise_model, low_noise_model]
  std::string vae_path;               // Wan2.1_VAE.pth (or .safetensors)
  VaeConfig vae;
  double boundary = 0.9;              // expert switch (RF time) for I2V-MoE

  static absl::StatusOr<ModelDir> Open(const std::string& path);
};

// config.json beside the DiT weights, else the sizes implied by the tensors themselves
// (TurboDiffusion ships bare .pth files).
absl::StatusOr<DitConfig> LoadDitConfig(const std::string& dit_dir, const io::WeightSet& weights);

}  // namespace turbovid::engine
