// Peak activation bytes of a job, per stage, from its shape alone: what the CUDA backend's
// activation arena must hold (Backend::ReserveActivations). Computed by replaying, over shapes,
// the allocation order and tensor lifetimes of each model's forward (engine/models/t5.cc, dit.cc,
// vae.cc) and of the pipeline around them; weights and uploads are not activations and are not
// counted. activation_plan_test.cc holds every stage against the live bytes the CPU backend
// measures, so a model change that moves the peak fails there.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "engine/core/backend.h"
#include "engine/models/dit.h"
#include "engine/models/t5.h"
#include "engine/models/vae.h"

namespace turbovid::engine {

struct ModelDir;
struct GenerateRequest;

struct ActivationModels {
  T5Config t5;
  DitConfig dit;
  bool dit_quantized = false;  // W8A8 block linears
  bool dit_fp8 = false;        // FP8 e4m3 block linears (turbo-fp8)
  bool dit_residual_f32 = true;  // DitOptions::residual_f32 (F32 residual stream)
  int num_experts = 1;         // Wan2.2 I2V-MoE: 2, each with its own text context
  VaeConfig vae;
};

struct ActivationJob {
  int64_t text_tokens = 512;  // umT5 tokens; the pipeline plans for the 512 cap
  int64_t latent_frames = 1;  // latent [T, H, W] (video frames 1 + 4(T-1), pixels 8H x 8W)
  int64_t latent_height = 2;
  int64_t latent_width = 2;
  bool i2v = false;  // VAE-encodes the conditioning video; the DiT input gets y
  bool cfg = false;  // UniPC + CFG: negative-prompt umT5 and contexts beside the positive ones
  AttentionMode attention = AttentionMode::kDense;
  float sla_topk = 0.1f;
  int sla_block_q = 128;  // DitOptions defaults, which the pipeline loads with
  int sla_block_k = 64;
  DType dtype = DType::kBF16;  // the backend's compute dtype
  // The CUDA ops' own scratch (wide-head attention by GEMM, SLA workspace, int8 quantised x),
  // which the CPU reference does not allocate.
  bool cuda_scratch = false;
  int64_t alignment = 256;  // every tensor rounded up to this (the arena's block granularity)
};

// Peak live activation bytes of each stage (the stages run one after the other, each starting
// and ending with no activation live; 0 when absent), and the arena that holds them.
struct ActivationPlan {
  int64_t text_encode = 0;  // umT5 forward of the prompt
  int64_t vae_encode = 0;   // I2V: conditioning video → latent
  int64_t dit = 0;          // text contexts of every expert (CFG: both prompts), one forward
  int64_t vae_decode = 0;   // streamed decode, every latent frame
  // Bytes to reserve: a whole number of 2 MiB pages, at least peak() + 1/32, in which a best-fit
  // Arena (engine/core/arena.h) fits every stage's replayed allocations, fragmentation included.
  int64_t arena = 0;
  int64_t peak() const;
};

ActivationPlan PlanActivations(const ActivationModels& models, const ActivationJob& job);

// The models and job shape the pipeline plans `request` with (I2V with room for the adaptive
// resolution, see the .cc), for `backend`'s compute dtype and scratch.
absl::StatusOr<ActivationModels> PlannedModels(const ModelDir& dir, const WanDit& dit);
ActivationJob PlannedJob(const ModelDir& dir, const GenerateRequest& request, const Backend& backend);

// The pipeline's per-job call: plans `request` for these models (I2V with room for the adaptive
// resolution, see the .cc) and reserves the arena on `backend`. No-op on the CPU backend.
absl::Status ReserveJobActivations(Backend& backend, const ModelDir& dir, const WanDit& dit,
                                   const GenerateRequest& request);

}  // namespace turbovid::engine
