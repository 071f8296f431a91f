// Memory planner arithmetic (see memory_plan.h, docs/memory.md §2).
#include "engine/core/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace turbovid::engine {

const char* ExpertResidencyName(ExpertResidency r) {
  return r == ExpertResidency::kAllResident ? "all-resident" : "stream-inactive";
}

const char* TextResidencyName(TextResidency r) {
  return r == TextResidency::kResident ? "resident" : "offload-after-encode";
}

std::string FormatGib(int64_t bytes) {
  return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

std::string MemoryPlan::Describe() const {
  return absl::StrCat("experts=", ExpertResidencyName(experts), " text=", TextResidencyName(text),
                      " peak=", FormatGib(peak), " (text ", FormatGib(text_stage), ", vae encode ",
                      FormatGib(vae_encode_stage), ", dit ", FormatGib(dit_stage), ", vae decode ",
                      FormatGib(vae_decode_stage), ")");
}

MemoryPlan EvaluateMemoryPlan(const MemoryNeeds& needs, ExpertResidency experts,
                              TextResidency text) {
  MemoryPlan plan;
  plan.experts = experts;
  plan.text = text;
  const int64_t all = std::accumulate(needs.expert_bytes.begin(), needs.expert_bytes.end(), int64_t{0});
  const int64_t largest = needs.expert_bytes.empty()
                              ? 0
                              : *std::max_element(needs.expert_bytes.begin(), needs.expert_bytes.end());
  plan.dit_slot_bytes = experts == ExpertResidency::kAllResident ? all : largest;
  // Held through every stage: the DiT slot and the VAE; the text encoder too unless offloaded.
  const int64_t held = plan.dit_slot_bytes + needs.vae_bytes +
                       (text == TextResidency::kResident ? needs.text_encoder_bytes : 0);
  // The encode stage has the text encoder on the device in either case.
  plan.text_stage = plan.dit_slot_bytes + needs.vae_bytes + needs.text_encoder_bytes +
                    needs.text_activations;
  plan.vae_encode_stage = needs.vae_encode_activations > 0 ? held + needs.vae_encode_activations : 0;
  plan.dit_stage = held + needs.dit_activations;
  plan.vae_decode_stage = held + needs.vae_decode_activations;
  plan.peak = std::max({plan.text_stage, plan.vae_encode_stage, plan.dit_stage, plan.vae_decode_stage});
  return plan;
}

absl::StatusOr<MemoryPlan> PlanMemory(const MemoryNeeds& needs, int64_t budget_bytes) {
  struct Choice {
    ExpertResidency experts;
    TextResidency text;
  };
  std::vector<Choice> choices = {{ExpertResidency::kAllResident, TextResidency::kResident},
                                 {ExpertResidency::kAllResident, TextResidency::kOffloadAfterEncode}};
  if (needs.expert_bytes.size() > 1) {
    choices.push_back({ExpertResidency::kStreamInactive, TextResidency::kResident});
    choices.push_back({ExpertResidency::kStreamInactive, TextResidency::kOffloadAfterEncode});
  }
  if (budget_bytes <= 0) return EvaluateMemoryPlan(needs, choices[0].experts, choices[0].text);
  MemoryPlan smallest;
  bool have_smallest = false;
  for (const Choice& c : choices) {
    MemoryPlan plan = EvaluateMemoryPlan(needs, c.experts, c.text);
    if (plan.peak <= budget_bytes) return plan;
    if (!have_smallest || plan.peak < smallest.peak) {
      smallest = plan;
      have_smallest = true;
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "memory: the job needs ", FormatGib(smallest.peak), " (", smallest.peak,
      " bytes) of device memory in its smallest plan (", smallest.Describe(),
      "), over the memory budget of ", FormatGib(budget_bytes), " (", budget_bytes, " bytes)"));
}

}  // namespace turbovid::engine
