// Weight and per-job byte counts for the memory planner (see memory_needs.h, docs/memory.md §1).
#include "engine/pipeline/memory_needs.h"

#include <algorithm>

#include "engine/pipeline/model_dir.h"

namespace turbovid::engine {

int64_t WeightBytes(const WeightInventory& inventory, DType dtype, bool int8_blocks,
                    const AccountFn& account) {
  return WeightBytes(inventory, dtype,
                     int8_blocks ? BlockLinearWeights::kInt8 : BlockLinearWeights::kDense, account);
}

int64_t WeightBytes(const WeightInventory& inventory, DType dtype, BlockLinearWeights blocks,
                    const AccountFn& account) {
  const auto acc = [&](int64_t b) { return account ? account(b) : b; };
  int64_t total = 0;
  for (const auto& [name, shape] : inventory) {
    const bool block_linear = IsQuantizedBlockLinear(name, shape.size());
    if (blocks == BlockLinearWeights::kInt8 && block_linear) {
      const int64_t n = shape[0], k = shape[1];
      total += acc(n * k) + acc(((n + 127) / 128) * ((k + 127) / 128) * 4);
    } else if (blocks == BlockLinearWeights::kFp8 && block_linear) {
      const int64_t n = shape[0], k = shape[1];
      total += acc(n * k) + acc(n * 4);
    } else {
      total += acc(NumElements(shape) * static_cast<int64_t>(DTypeSize(dtype)));
    }
  }
  return total;
}

MemoryNeeds JobMemoryNeeds(const ActivationModels& models, const ActivationJob& job,
                           std::vector<int64_t> expert_bytes, int64_t text_encoder_bytes,
                           int64_t vae_bytes) {
  const ActivationPlan plan = PlanActivations(models, job);
  const int64_t e = static_cast<int64_t>(DTypeSize(job.dtype));
  const int64_t t = job.latent_frames, h = job.latent_height, w = job.latent_width;
  const int64_t tokens = t * (h / 2) * (w / 2);
  const int64_t pixels = (1 + 4 * (t - 1)) * 8 * h * 8 * w;
  MemoryNeeds n;
  n.expert_bytes = std::move(expert_bytes);
  n.text_encoder_bytes = text_encoder_bytes;
  n.vae_bytes = vae_bytes;
  // umT5: the token ids (I64) beside its forward.
  n.text_activations = plan.text_encode + job.text_tokens * 8;
  // I2V: the pixel video [3, F, 8H, 8W] uploaded in the compute dtype.
  n.vae_encode_activations = job.i2v ? plan.vae_encode + 3 * pixels * e : 0;
  // DiT: the padded text context of each prompt (text_len x text_dim), the patchified x | y
  // tokens (in_dim x 4 per token), the RoPE cos/sin tables (F32 [L, D/2] each, kept per grid).
  const int64_t prompts = job.cfg ? 2 : 1;
  n.dit_activations = plan.dit + prompts * models.dit.text_len * models.dit.text_dim * e +
                      tokens * models.dit.in_dim * 4 * e + tokens * models.dit.head_dim() * 4;
  // VAE decode: the latent [z_dim, T, H, W].
  n.vae_decode_activations = plan.vae_decode + int64_t{models.vae.z_dim} * t * h * w * e;
  return n;
}

}  // namespace turbovid::engine
