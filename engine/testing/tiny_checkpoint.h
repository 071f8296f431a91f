// Tensor inventories of the official checkpoints (names + shapes derived from a config) and the
// tiny random checkpoints made from them for tests and demos, in the official on-disk layout:
//   <dir>/config.json + diffusion_pytorch_model.safetensors      (T2V DiT; I2V-MoE: one per
//        high_noise_model/ and low_noise_model/)
//   <dir>/models_t5_umt5-xxl-enc-bf16.pth, <dir>/google/umt5-xxl/spiece.model
//   <dir>/Wan2.1_VAE.pth, <dir>/turbovid.json (tiny T5/VAE sizes, model kind)
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/core/tensor.h"
#include "engine/models/dit.h"
#include "engine/models/t5.h"
#include "engine/models/vae.h"

namespace turbovid::engine {

using TensorShapes = std::vector<std::pair<std::string, Shape>>;

// Official Wan names (5-D patch embedding); `sla` adds TurboDiffusion's proj_l per block.
TensorShapes DitTensorShapes(const DitConfig& config, bool sla);
TensorShapes T5TensorShapes(const T5Config& config);
TensorShapes VaeTensorShapes(const VaeConfig& config, bool encoder, bool decoder);

struct TinyModelSizes {
  DitConfig dit;
  T5Config t5;
  VaeConfig vae;
};
// The sizes used by make-tiny-checkpoint: DiT dim 128 (1 head of 128, 2 layers), umT5 dim 64
// with a 512-piece vocabulary, VAE base dim 4.
TinyModelSizes TinySizes(bool i2v);

// kind: "t2v" or "i2v-moe". Random bf16-exact weights, seeded, so runs are reproducible.
// `dit_heads` splits the DiT's 128 columns into that many heads (1 by default; 2 or 4 give a
// model that tensor / sequence parallel groups can split, docs/parallelism.md).
absl::Status MakeTinyCheckpoint(const std::string& kind, const std::string& dir, uint64_t seed = 1,
                                int dit_heads = 1);

}  // namespace turbovid::engine
