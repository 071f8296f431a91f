// UniPC flow solver (see unipc.h). Latents and scalars in float64.
#include "engine/samplers/unipc.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/phase_profile.h"

namespace turbovid::engine {

absl::StatusOr<UniPcSchedule> MakeUniPcSchedule(int steps, double shift) {
  if (steps < 1 || steps > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("num_steps: ", steps, " is outside [1, 1000]"));
  }
  if (!(shift > 0)) return absl::InvalidArgumentError(absl::StrCat("shift: ", shift, " <= 0"));
  const double sigma_max = static_cast<double>(0.999f);
  UniPcSchedule out;
  for (int i = 0; i < steps; ++i) {
    const double u = sigma_max + i * (0.0 - sigma_max) / steps;
    const double s = shift * u / (1.0 + (shift - 1.0) * u);
    out.timesteps.push_back(static_cast<int>(1000.0 * s));
    out.sigma.push_back(static_cast<double>(static_cast<float>(s)));
  }
  out.sigma.push_back(0.0);
  return out;
}

absl::StatusOr<Tensor> UniPcSample(const Tensor& noise, int steps, double shift,
                                   const UniPcVelocityFn& velocity, const UniPcStepFn& on_step) {
  TV_ASSIGN_OR_RETURN(UniPcSchedule sched, MakeUniPcSchedule(steps, shift));
  TV_ASSIGN_OR_RETURN(Tensor x64, ToF64(noise));
  const int64_t n = x64.numel();
  using Vec = std::vector<double>;
  Vec x(x64.data<double>(), x64.data<double>() + n);
  Vec m_prev, m_prev2, x_hat_prev;
  auto alpha = [&](int i) { return 1.0 - sched.sigma[i]; };
  auto lambda = [&](int i) { return std::log(alpha(i)) - std::log(sched.sigma[i]); };
  int order_prev = 0;
  Tensor xf = Tensor::Zeros(DType::kF32, noise.shape());
  for (int i = 0; i < steps; ++i) {
    for (int64_t j = 0; j < n; ++j) xf.data<float>()[j] = static_cast<float>(x[j]);
    ProfileMark("unipc: F32 x_in");
    TV_ASSIGN_OR_RETURN(Tensor v, velocity(xf, sched.timesteps[i], i));
    ProfileMark("unipc: velocity call (outside the DiT's own phases)");
    if (v.numel() != n || v.dtype() != DType::kF32) {
      return absl::InternalError("unipc: velocity does not match the latent");
    }
    Vec m(n);
    for (int64_t j = 0; j < n; ++j) m[j] = x[j] - sched.sigma[i] * v.data<float>()[j];
    if (i >= 1) {  // corrector with the fresh model output
      const double h = lambda(i) - lambda(i - 1);
      const double phi = std::expm1(-h);
      const double ratio = sched.sigma[i] / sched.sigma[i - 1];
      const double a = alpha(i);
      double rho0 = 0, rho1 = 0.5, r = 1;
      if (order_prev == 2) {
        r = (lambda(i - 2) - lambda(i - 1)) / h;
        const double b1 = (phi / (-h) - 1.0) / phi;
        const double b2 = 2.0 * ((phi / (-h) - 1.0) / (-h) - 0.5) / phi;
        rho0 = (b1 - b2) / (1.0 - r);
        rho1 = b1 - rho0;
      }
      for (int64_t j = 0; j < n; ++j) {
        const double base = ratio * x_hat_prev[j] - a * phi * m_prev[j];
        const double delta = m[j] - m_prev[j];
        const double d = order_prev == 2 ? (m_prev2[j] - m_prev[j]) / r : 0.0;
        x[j] = base - a * phi * (rho0 * d + rho1 * delta);
      }
    }
    const int order = std::min({2, steps - i, i + 1});
    x_hat_prev = x;
    if (sched.sigma[i + 1] == 0) {
      x = m;
    } else {
      const double h = lambda(i + 1) - lambda(i);
      const double phi = std::expm1(-h);
      const double ratio = sched.sigma[i + 1] / sched.sigma[i];
      const double a = alpha(i + 1);
      const double r = order == 2 ? (lambda(i - 1) - lambda(i)) / h : 1.0;
      for (int64_t j = 0; j < n; ++j) {
        double next = ratio * x[j] - a * phi * m[j];
        if (order == 2) next -= a * phi * 0.5 * (m_prev[j] - m[j]) / r;
        x[j] = next;
      }
    }
    m_prev2 = std::move(m_prev);
    m_prev = std::move(m);
    order_prev = order;
    ProfileMark("unipc: predictor + corrector");
    if (on_step) TV_RETURN_IF_ERROR(on_step(i));
    ProfileMark("unipc: on_step (progress, cancel)");
  }
  Tensor out = Tensor::Zeros(DType::kF32, noise.shape());
  for (int64_t j = 0; j < n; ++j) out.data<float>()[j] = static_cast<float>(x[j]);
  return out;
}

}  // namespace turbovid::engine
