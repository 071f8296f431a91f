// The memory planner (docs/memory.md): given the device bytes a job's parts need — each DiT
// expert's weights, the text encoder, the VAE, and each stage's activation peak — and a budget,
// chooses where the weights live so that every stage fits, or says that none of its plans fits
// and what the smallest one needs. Pure arithmetic over byte counts, no backend: the byte counts
// come from engine/pipeline/memory_needs.h (model configs + job shape, or measured weights).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace turbovid::engine {

struct MemoryNeeds {
  std::vector<int64_t> expert_bytes;  // device bytes of each DiT expert's weights (1 or 2)
  int64_t text_encoder_bytes = 0;     // umT5 weights on the device
  int64_t vae_bytes = 0;              // VAE weights (the halves the model loads)
  // Peak activation bytes of each stage, which run one after the other (engine/pipeline/
  // activation_plan.h): umT5 forward, I2V VAE encode (0 for T2V), DiT (contexts + one forward),
  // VAE decode (streamed one latent frame at a time, the smallest chunk its causal cache allows).
  int64_t text_activations = 0;
  int64_t vae_encode_activations = 0;
  int64_t dit_activations = 0;
  int64_t vae_decode_activations = 0;
};

// Where the DiT experts live during a job.
enum class ExpertResidency : uint8_t {
  kAllResident,     // every expert on the device for the whole job
  kStreamInactive,  // one device slot sized for the largest expert; the expert a step needs is
                    // uploaded into it from pinned host memory when it is not there (Wan2.2
                    // A14B: at the boundary switch and at the next job's start), block by block,
                    // each block's compute waiting only for its own upload
};
// Where the text encoder's weights live.
enum class TextResidency : uint8_t {
  kResident,            // on the device always
  kOffloadAfterEncode,  // uploaded from pinned host memory for an encode and dropped after it; a
                        // prompt found in the prompt-embedding cache needs no upload at all
};
const char* ExpertResidencyName(ExpertResidency r);
const char* TextResidencyName(TextResidency r);

struct MemoryPlan {
  ExpertResidency experts = ExpertResidency::kAllResident;
  TextResidency text = TextResidency::kResident;
  // Peak device bytes of each stage under this residency, and the job's peak (their maximum).
  int64_t text_stage = 0;
  int64_t vae_encode_stage = 0;
  int64_t dit_stage = 0;
  int64_t vae_decode_stage = 0;
  int64_t peak = 0;
  int64_t dit_slot_bytes = 0;  // device bytes held for DiT weights (one or every expert)
  std::string Describe() const;  // "experts=stream-inactive text=offload-after-encode peak=… GiB"
};

// Stage peaks of one residency choice (no budget involved).
MemoryPlan EvaluateMemoryPlan(const MemoryNeeds& needs, ExpertResidency experts,
                              TextResidency text);

// The fastest plan whose peak is within `budget_bytes` (≤ 0: no budget → everything resident).
// Preference order (cheapest transfer first): all resident; text offloaded; inactive expert
// streamed; both. With one expert, streaming saves nothing and is not tried. None fits →
// ResourceExhausted naming the smallest plan's need and the budget.
absl::StatusOr<MemoryPlan> PlanMemory(const MemoryNeeds& needs, int64_t budget_bytes);

// "12.34 GiB" (two decimals).
std::string FormatGib(int64_t bytes);

}  // namespace turbovid::engine
