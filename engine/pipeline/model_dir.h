// A model folder in the official layout: which DiT folders (one, or high/low-noise experts), the
// VAE file and sizes, and the optional turbovid.json manifest that tiny checkpoints carry.
#pragma once

#include <cstdint>
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

// Bytes of every tensor Pipeline::Load would read from the folder (DiT or both experts, umT5,
// VAE) as stored on disk: read from the checkpoint headers (mmap, no tensor data touched), the
// worker's estimate of a model's memory before loading it. With `fp8_blocks` (turbo-fp8) the DiT
// block linears count as they will be held: 1 byte per weight plus an F32 scale per row.
// Errors as ModelDir::Open and io::WeightSet::Load.
absl::StatusOr<int64_t> CheckpointBytes(const std::string& model_dir, bool fp8_blocks = false);

// Whether a DiT tensor is one of the block linears that int8/fp8 variants quantise:
// blocks.*.weight of rank 2, except SLA's proj_l.
bool IsQuantizedBlockLinear(const std::string& name, size_t rank);

// config.json beside the DiT weights, else the sizes implied by the tensors themselves
// (TurboDiffusion ships bare .pth files).
absl::StatusOr<DitConfig> LoadDitConfig(const std::string& dit_dir, const io::WeightSet& weights);

}  // namespace turbovid::engine
