// Shared pieces of the rCM-based golden runners (rcm_* and pipeline_t2v).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/models/dit.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {

struct Expert {
  const WanDit* dit;
  const WanDit::Context* context;
};

absl::StatusOr<std::unique_ptr<WanDit>> LoadCaseDit(const GoldenCase& c, const Json& config,
                                                    const std::string& role, Backend& backend);
// Host F32 copy with every value rounded to bf16 (what upstream feeds its bf16 network).
Tensor Bf16Rounded(const Tensor& t);
// Samples with the case's noises; checks t_steps, net_timesteps, v_step*, x_in_step*,
// expert_is_low and latent; returns the latent through latent_out when non-null.
absl::Status RunRcmSampling(const GoldenCase& c, const std::vector<Expert>& experts,
                            const Tensor* y, double boundary, Backend& backend, GoldenReport& r,
                            Tensor* latent_out);

}  // namespace turbovid::engine::golden
