// Wan's flow-matching UniPC multistep solver (order 2, bh2, x0-prediction) with shift, used for
// undistilled ("original") checkpoints together with classifier-free guidance.
// Math: docs/model-math.md §8.2–§8.5 (experts: §6.4).
#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine {

struct UniPcSchedule {
  std::vector<double> sigma;     // S+1 values (float32-rounded), last = 0
  std::vector<int> timesteps;    // S integer timesteps trunc(1000 σ_i) fed to the DiT
};
absl::StatusOr<UniPcSchedule> MakeUniPcSchedule(int steps, double shift);

// v(x, timestep, step): the (already guided) velocity at x for integer timestep.
using UniPcVelocityFn =
    std::function<absl::StatusOr<Tensor>(const Tensor& x, int timestep, int step)>;
using UniPcStepFn = std::function<absl::Status(int step)>;

// Samples from noise (F32 latent-shaped) and returns the final x0 estimate as F32.
absl::StatusOr<Tensor> UniPcSample(const Tensor& noise, int steps, double shift,
                                   const UniPcVelocityFn& velocity, const UniPcStepFn& on_step);

}  // namespace turbovid::engine
