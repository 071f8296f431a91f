// rCM sampler (see rcm.h).
#include "engine/samplers/rcm.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine {

float DoubleToBf16(double v) {
  if (std::isnan(v)) return static_cast<float>(v);
  // Round the double directly to 8 mantissa bits (one rounding, like torch's cast).
  if (v == 0 || std::isinf(v)) return static_cast<float>(v);
  int exp;
  double m = std::frexp(v, &exp);        // v = m * 2^exp, 0.5 <= |m| < 1
  double scaled = std::ldexp(m, 8);      // 8 significant bits
  double r = std::nearbyint(scaled);     // default rounding mode: ties to even
  double out = std::ldexp(r, exp - 8);
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

absl::StatusOr<Tensor> RcmSample(const Tensor& init_noise, const RcmOptions& options,
                                 const RcmVelocityFn& velocity, const RcmNoiseFn& noise,
                                 const RcmStepFn& on_step, RcmTrace* trace) {
  TV_ASSIGN_OR_RETURN(RcmSchedule sched, MakeRcmSchedule(options.steps, options.sigma_max));
  TV_ASSIGN_OR_RETURN(Tensor noise0, ToF64(init_noise));
  const int64_t n = noise0.numel();
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = noise0.data<double>()[i] * sched.t[0];
  if (trace) trace->schedule = sched;
  bool low = false;
  for (int step = 0; step < options.steps; ++step) {
    const double t_cur = sched.t[step], t_next = sched.t[step + 1];
    if (options.boundary > 0 && !low && t_cur < options.boundary) low = true;
    Tensor x_in = Tensor::Zeros(DType::kF32, init_noise.shape());
    for (int64_t i = 0; i < n; ++i) x_in.data<float>()[i] = DoubleToBf16(x[i]);
    TV_ASSIGN_OR_RETURN(Tensor v, velocity(x_in, sched.net_timesteps[step], low));
    if (v.numel() != n || v.dtype() != DType::kF32) {
      return absl::InternalError(absl::StrCat("rcm: velocity ", v.Describe(), " does not match latent ",
                                              init_noise.Describe()));
    }
    const float* vp = v.data<float>();
    if (options.ode) {
      for (int64_t i = 0; i < n; ++i) x[i] -= (t_cur - t_next) * static_cast<double>(vp[i]);
    } else {
      Tensor eps = noise(step);
      if (eps.numel() != n || eps.dtype() != DType::kF32) {
        return absl::InternalError("rcm: step noise does not match the latent");
      }
      const float* ep = eps.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        const double x0 = x[i] - t_cur * static_cast<double>(vp[i]);
        x[i] = (1.0 - t_next) * x0 + t_next * static_cast<double>(ep[i]);
      }
    }
    if (trace) {
      trace->low_expert.push_back(low);
      trace->x_in.push_back(x_in);
      trace->v.push_back(v);
    }
    if (on_step) TV_RETURN_IF_ERROR(on_step(step));
  }
  Tensor out = Tensor::Zeros(DType::kF32, init_noise.shape());
  for (int64_t i = 0; i < n; ++i) out.data<float>()[i] = static_cast<float>(x[i]);
  return out;
}

}  // namespace turbovid::engine
