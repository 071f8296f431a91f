// rCM sampler (see rcm.h).
#include "engine/samplers/rcm.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/parallel.h"
#include "engine/core/phase_profile.h"

namespace turbovid::engine {

float DoubleToBf16(double v) {
  if (std::isnan(v)) return static_cast<float>(v);
  if (v == 0 || std::isinf(v)) return static_cast<float>(v);
  // Round the double directly to 8 significant bits (one rounding, like torch's cast): drop the
  // low 45 of the 52 mantissa bits, ties to even; a carry correctly bumps the exponent.
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  constexpr int kDrop = 52 - 7;
  bits += (uint64_t{1} << (kDrop - 1)) - 1 + ((bits >> kDrop) & 1);
  bits &= ~((uint64_t{1} << kDrop) - 1);
  double out;
  std::memcpy(&out, &bits, sizeof out);
  if (std::abs(out) < 1.1754943508222875e-38) {  // bf16 subnormals: round through fp32 path
    return RoundToBf16(static_cast<float>(v));
  }
  return static_cast<float>(out);
}

absl::StatusOr<RcmSchedule> MakeRcmSchedule(int steps, double sigma_max) {
  if (steps < 1 || steps > 4) {
    return absl::InvalidArgumentError(absl::StrCat("num_steps: ", steps, " is outside [1, 4] for rCM"));
  }
  if (!(sigma_max > 0)) return absl::InvalidArgumentError(absl::StrCat("sigma_max: ", sigma_max, " <= 0"));
  const double mid[] = {1.5, 1.4, 1.0};
  std::vector<double> s = {std::atan(sigma_max)};
  for (int i = 0; i + 1 < steps; ++i) s.push_back(mid[i]);
  s.push_back(0.0);
  RcmSchedule out;
  for (double si : s) out.t.push_back(std::sin(si) / (std::sin(si) + std::cos(si)));
  for (int i = 0; i < steps; ++i) {
    out.net_timesteps.push_back(RoundToBf16(static_cast<float>(out.t[i]) * 1000.0f));
  }
  return out;
}

namespace {

// Elementwise loops over the latent (~2M values at 480p) split over the CPU pool.
constexpr int64_t kGrain = int64_t{1} << 15;

// One rCM update of x (float64) with velocity v: ODE x -= (t_cur - t_next)·v, else SDE
// x = (1 - t_next)(x - t_cur·v) + t_next·eps (eps unused when t_next is 0). Writes the next
// network input bf16(x) — or, after the last step, the F32 result — to `next` in the same pass.
void Update(int64_t n, double* x, const float* v, const float* eps, double t_cur, double t_next,
            bool ode, bool last, float* next) {
  ParallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double xi;
      if (ode) {
        xi = x[i] - (t_cur - t_next) * static_cast<double>(v[i]);
      } else {
        const double x0 = x[i] - t_cur * static_cast<double>(v[i]);
        xi = eps ? (1.0 - t_next) * x0 + t_next * static_cast<double>(eps[i]) : (1.0 - t_next) * x0;
      }
      x[i] = xi;
      next[i] = last ? static_cast<float>(xi) : DoubleToBf16(xi);
    }
  });
}

}  // namespace

absl::StatusOr<Tensor> RcmSample(const Tensor& init_noise, const RcmOptions& options,
                                 const RcmVelocityFn& velocity, const RcmNoiseFn& noise,
                                 const RcmStepFn& on_step, RcmTrace* trace) {
  TV_ASSIGN_OR_RETURN(RcmSchedule sched, MakeRcmSchedule(options.steps, options.sigma_max));
  if (!init_noise.defined() || init_noise.device() != Device::kCpu) {
    return absl::InvalidArgumentError("rcm: init_noise must be a host tensor");
  }
  Tensor noise0 = init_noise;
  if (noise0.dtype() != DType::kF32) {
    TV_ASSIGN_OR_RETURN(noise0, ToF32(init_noise));
  }
  const int64_t n = noise0.numel();
  // x_in doubles as the output buffer: the last update writes the F32 latent into it.
  Tensor x_in = Tensor::Zeros(DType::kF32, init_noise.shape());
  float* xin = x_in.data<float>();
  // Not zero-filled: the first parallel pass touches (and so faults in) its own part.
  const std::unique_ptr<double[]> x_owner(new double[n]);
  double* x = x_owner.get();
  const float* np = noise0.data<float>();
  ParallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      x[i] = static_cast<double>(np[i]) * sched.t[0];
      xin[i] = DoubleToBf16(x[i]);
    }
  });
  ProfileMark("rcm: x = t0 * noise, bf16 x_in");
  if (trace) trace->schedule = sched;
  bool low = false;
  for (int step = 0; step < options.steps; ++step) {
    const double t_cur = sched.t[step], t_next = sched.t[step + 1];
    if (options.boundary > 0 && !low && t_cur < options.boundary) low = true;
    if (trace) trace->x_in.push_back(x_in.Clone());
    TV_ASSIGN_OR_RETURN(Tensor v, velocity(x_in, sched.net_timesteps[step], low));
    ProfileMark("rcm: velocity call (outside the DiT's own phases)");
    if (v.numel() != n || v.dtype() != DType::kF32 || v.device() != Device::kCpu) {
      return absl::InternalError(absl::StrCat("rcm: velocity ", v.Describe(),
                                              " does not match latent ", init_noise.Describe()));
    }
    Tensor eps;
    if (!options.ode && t_next != 0) {
      eps = noise(step);
      if (eps.numel() != n || eps.dtype() != DType::kF32 || eps.device() != Device::kCpu) {
        return absl::InternalError("rcm: step noise does not match the latent");
      }
      ProfileMark("rcm: step noise");
    }
    Update(n, x, v.data<float>(), eps.defined() ? eps.data<float>() : nullptr, t_cur, t_next,
           options.ode, step + 1 == options.steps, xin);
    ProfileMark("rcm: update + bf16 x_in");
    if (trace) {
      trace->low_expert.push_back(low);
      trace->v.push_back(v);
    }
    if (on_step) TV_RETURN_IF_ERROR(on_step(step));
    ProfileMark("rcm: on_step (progress, cancel)");
  }
  return x_in;
}

}  // namespace turbovid::engine
