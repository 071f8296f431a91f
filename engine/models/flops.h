// Analytic FLOP counts of the Wan models (2 FLOP per multiply-add), for achieved-TFLOP/s figures in
// `turbovid-engine bench` and bench/torch_reference.py (which carries the same formulas). They
// reproduce the totals of docs/model-math.md §12: 1.3B-480p DiT blocks 283.0 TFLOP, one 14B block
// at 720p 163.1, umT5 on 512 tokens 4.84, VAE decode 480p 275.4 and 720p 639.2 (FlopCounterMode).
#pragma once

#include <cstdint>

#include "engine/models/dit.h"
#include "engine/models/t5.h"
#include "engine/models/vae.h"

namespace turbovid::engine {

// One DiT forward on a latent [C, F, H, W] (tokens L = F·H/2·W/2) with a text context padded to
// text_len rows, as the model computes it. Cross-attention K/V projections are counted (once per
// forward, as upstream computes them) although the engine caches them per prompt: they are 0.004%
// of a 1.3B-480p forward.
struct DitFlops {
  double linear = 0;           // all block GEMMs + patch/text/time embeddings + head
  double self_attention = 0;   // dense: 4·L²·D·N per layer; SLA: the work SLA does (below)
  double cross_attention = 0;  // 4·L·text_len·D·N per layer
  // SLA parts of self_attention (zero when dense): the sparse softmax branch over the selected
  // blocks only (tail blocks at their real size), the global linear branch + proj_l, and the block
  // scoring (pooled q·k̄ᵀ). self_attention_dense is the dense count for the same shape, which
  // "dense-equivalent" TFLOP/s figures divide by.
  double sla_sparse = 0;
  double sla_linear = 0;
  double sla_select = 0;
  double self_attention_dense = 0;
  double blocks_only = 0;  // the anchors' definition: block GEMMs + attention, no embeddings/head

  double total() const { return linear + self_attention + cross_attention; }
};

struct SlaShape {
  float topk = 0.1f;
  int block_q = 128;
  int block_k = 64;
};

// K_sel = min(n_k, floor(topk·n_k)), the same for every query block (docs/model-math.md §9.2).
int64_t SlaSelectedBlocks(int64_t n_k, float topk);

DitFlops DitForwardFlops(const DitConfig& config, int64_t latent_frames, int64_t latent_height,
                         int64_t latent_width, const SlaShape* sla);
// umT5 encoder on `tokens` real tokens (the engine runs no padding).
double T5EncodeFlops(const T5Config& config, int64_t tokens);
// VAE decode of a latent [z, F, H, W] to [3, 1+4(F-1), 8H, 8W]: every conv at its output size
// (the causal zero frames cost nothing extra), the middle attention per frame.
double VaeDecodeFlops(const VaeConfig& config, int64_t latent_frames, int64_t latent_height,
                      int64_t latent_width);

}  // namespace turbovid::engine
