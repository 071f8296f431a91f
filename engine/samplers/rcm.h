// TurboDiffusion rCM few-step sampler (docs/model-math.md §7): TrigFlow times
// [atan(σmax), 1.5, 1.4, 1.0][:N] + [0] → RF t = sin s / (sin s + cos s); float64 state; the net
// sees bf16(x) and bf16(float32(t)·1000); SDE (default) or Euler ODE update; optional two-expert
// switch when t < boundary.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine {

struct RcmSchedule {
  std::vector<double> t;             // N+1 RF times, last = 0
  std::vector<float> net_timesteps;  // N values the net receives: bf16(float32(t_i) * 1000)
};
absl::StatusOr<RcmSchedule> MakeRcmSchedule(int steps, double sigma_max);

struct RcmOptions {
  int steps = 4;
  double sigma_max = 80;
  bool ode = false;
  double boundary = -1;  // > 0: start with the high-noise expert, switch for good when t < boundary
};

// v = net(x_in, net_timestep, use_low_expert); x_in: bf16-rounded latent as F32, valid only during
// the call (the sampler reuses its buffer for the next step).
using RcmVelocityFn =
    std::function<absl::StatusOr<Tensor>(const Tensor& x_in, float net_timestep, bool low_expert)>;
// The fresh noise drawn after step i (SDE only; never asked for after the last step, whose noise
// weight t_next is 0).
using RcmNoiseFn = std::function<Tensor(int step)>;
// Called after each step (0-based); a non-OK status (e.g. Cancelled) stops sampling.
using RcmStepFn = std::function<absl::Status(int step)>;

struct RcmTrace {
  RcmSchedule schedule;
  std::vector<bool> low_expert;  // per step
  std::vector<Tensor> x_in;      // per step, F32
  std::vector<Tensor> v;         // per step, F32
};

// init_noise: host latent-shaped noise. Returns the final latent as F32. The float64 state and
// its elementwise updates run on the host over all cores (ParallelFor); with a profile
// installed (phase_profile.h) each phase of a step is marked.
absl::StatusOr<Tensor> RcmSample(const Tensor& init_noise, const RcmOptions& options,
                                 const RcmVelocityFn& velocity, const RcmNoiseFn& noise,
                                 const RcmStepFn& on_step, RcmTrace* trace = nullptr);

// Rounds a float64 value to the nearest bf16 (ties to even), as torch's double → bf16 cast.
float DoubleToBf16(double v);

}  // namespace turbovid::engine
