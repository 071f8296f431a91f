// Golden runners for rcm_t2v / rcm_i2v_moe (TurboDiffusion rCM sampling with tiny DiTs) and
// pipeline_t2v (umT5 → rCM → VAE decode → uint8 frames).
#include "engine/testing/golden_rcm.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/models/dit.h"
#include "engine/pipeline/conditioning.h"
#include "engine/samplers/rcm.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {

absl::StatusOr<std::unique_ptr<WanDit>> LoadCaseDit(const GoldenCase& c, const Json& config,
                                                    const std::string& role, Backend& backend) {
  TV_ASSIGN_OR_RETURN(DitConfig dit_config, DitConfig::FromJson(config));
  TV_ASSIGN_OR_RETURN(io::WeightSet weights, c.LoadWeights(role));
  DitOptions options;
  options.parallel = c.parallel;
  // Golden DiTs may have fewer heads than ranks: their attention then runs replicated.
  options.allow_replicated_attention = true;
  return WanDit::Load(dit_config, weights, backend, options);
}

Tensor Bf16Rounded(const Tensor& t) {
  Tensor out = ToF32(t).value();
  for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = RoundToBf16(out.data<float>()[i]);
  return out;
}

absl::Status RunRcmSampling(const GoldenCase& c, const std::vector<Expert>& experts,
                            const Tensor* y, double boundary, Backend& backend, GoldenReport& r,
                            Tensor* latent_out) {
  const bool fp32 = backend.compute_dtype() == DType::kF32;
  const double tol = c.Tolerance(fp32);
  RcmOptions options;
  TV_ASSIGN_OR_RETURN(options.steps, c.json.GetInt("num_steps"));
  TV_ASSIGN_OR_RETURN(options.sigma_max, c.json.GetNumber("sigma_max"));
  options.ode = c.json.BoolOr("ode", false);
  options.boundary = boundary;
  TV_ASSIGN_OR_RETURN(Tensor init_noise, c.Input("noise_init"));
  TV_ASSIGN_OR_RETURN(init_noise, ToF32(init_noise));
  std::vector<Tensor> step_noise;
  for (int i = 0; i < options.steps; ++i) {
    TV_ASSIGN_OR_RETURN(Tensor n, c.Input(absl::StrCat("noise_step", i)));
    TV_ASSIGN_OR_RETURN(n, ToF32(n));
    step_noise.push_back(n);
  }
  RcmTrace trace;
  TV_ASSIGN_OR_RETURN(
      Tensor latent,
      RcmSample(
          init_noise, options,
          [&](const Tensor& x_in, float t, bool low) {
            const Expert& e = experts[low && experts.size() > 1 ? 1 : 0];
            return e.dit->Forward(x_in, y, t, *e.context, DitForwardOptions{});
          },
          [&](int step) { return step_noise[step]; }, nullptr, &trace));
  TV_ASSIGN_OR_RETURN(Tensor want_t, c.Expected("t_steps"));
  Tensor got_t = Tensor::Zeros(DType::kF64, {static_cast<int64_t>(trace.schedule.t.size())});
  for (size_t i = 0; i < trace.schedule.t.size(); ++i) got_t.data<double>()[i] = trace.schedule.t[i];
  r.Close("t_steps", got_t, want_t, 1e-12);
  TV_ASSIGN_OR_RETURN(Tensor want_net_t, c.Expected("net_timesteps"));
  Tensor got_net_t = Tensor::Zeros(DType::kF32, {options.steps});
  for (int i = 0; i < options.steps; ++i) got_net_t.data<float>()[i] = trace.schedule.net_timesteps[i];
  r.Exact("net_timesteps", got_net_t, want_net_t);
  for (int i = 0; i < options.steps; ++i) {
    if (auto want = c.Expected(absl::StrCat("v_step", i)); want.ok()) {
      r.Compare(absl::StrCat("v_step", i), trace.v[i], *want, tol);
    }
    if (auto want = c.Expected(absl::StrCat("x_in_step", i)); want.ok()) {
      r.Compare(absl::StrCat("x_in_step", i), trace.x_in[i], *want, tol);
    }
  }
  if (auto want = c.Expected("expert_is_low"); want.ok()) {
    Tensor got = Tensor::Zeros(DType::kU8, {options.steps});
    for (int i = 0; i < options.steps; ++i) got.data<uint8_t>()[i] = trace.low_expert[i] ? 1 : 0;
    r.Exact("expert_is_low", got, *want);
  }
  TV_ASSIGN_OR_RETURN(Tensor want_latent, c.Expected("latent"));
  r.Compare("latent", latent, want_latent, tol);
  if (latent_out) *latent_out = latent;
  return absl::OkStatus();
}

namespace {

// The TurboDiffusion .pth copy of the weights must hold exactly the safetensors tensors.
absl::Status CheckPthWeights(const GoldenCase& c, GoldenReport& r) {
  const Json* pth = c.json.Find("weights_pth");
  if (pth == nullptr || !pth->is_string()) return absl::OkStatus();
  TV_ASSIGN_OR_RETURN(io::WeightSet from_pth, io::WeightSet::Load(c.dir + "/" + pth->str()));
  TV_ASSIGN_OR_RETURN(io::WeightSet from_st, c.LoadWeights());
  int64_t mismatched = 0;
  for (const auto& [name, e] : from_st.entries()) {
    const io::WeightSet::Entry* p = from_pth.Find(name);
    if (p == nullptr || p->tensor.dtype() != e.tensor.dtype() || p->tensor.shape() != e.tensor.shape() ||
        std::memcmp(p->tensor.raw(), e.tensor.raw(), e.tensor.nbytes()) != 0) {
      ++mismatched;
    }
  }
  if (mismatched != 0 || from_pth.entries().size() != from_st.entries().size()) {
    r.Fail("weights_pth", absl::StrCat(mismatched, " tensors differ from the safetensors copy"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunRcmCase(const GoldenCase& c, Backend& backend, GoldenReport& r) {
  TV_ASSIGN_OR_RETURN(std::string kind, c.json.GetString("kind"));
  TV_RETURN_IF_ERROR(CheckPthWeights(c, r));
  std::vector<std::unique_ptr<WanDit>> owned;
  double boundary = -1;
  if (kind == "rcm_i2v_moe") {
    const Json* high = c.config().Find("high_noise");
    const Json* low = c.config().Find("low_noise");
    if (high == nullptr || low == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(c.dir, ": config needs high_noise and low_noise"));
    }
    TV_ASSIGN_OR_RETURN(auto h, LoadCaseDit(c, *high, "high_noise", backend));
    TV_ASSIGN_OR_RETURN(auto l, LoadCaseDit(c, *low, "low_noise", backend));
    owned.push_back(std::move(h));
    owned.push_back(std::move(l));
    TV_ASSIGN_OR_RETURN(boundary, c.json.GetNumber("boundary"));
  } else {
    TV_ASSIGN_OR_RETURN(auto d, LoadCaseDit(c, c.config(), "", backend));
    owned.push_back(std::move(d));
  }
  TV_ASSIGN_OR_RETURN(Tensor context, c.Input("context"));
  // The net receives bf16(context), zero-padded to text_len by the model.
  TV_ASSIGN_OR_RETURN(WanDit::Context high_ctx, owned[0]->PrepareContext(Bf16Rounded(context)));
  WanDit::Context low_ctx;
  if (owned.size() > 1) {
    TV_ASSIGN_OR_RETURN(low_ctx, owned[1]->PrepareContext(Bf16Rounded(context)));
  }
  std::optional<Tensor> y;
  if (kind == "rcm_i2v_moe") {
    TV_ASSIGN_OR_RETURN(Tensor latents, c.Input("encoded_latents"));
    y = I2vCondition(Bf16Rounded(latents));
    if (auto want = c.Expected("y"); want.ok()) r.Compare("y", *y, *want, c.Tolerance(true));
  }
  std::vector<Expert> experts = {{owned[0].get(), &high_ctx}};
  if (owned.size() > 1) experts.push_back({owned[1].get(), &low_ctx});
  return RunRcmSampling(c, experts, y ? &*y : nullptr, boundary, backend, r, nullptr);
}

}  // namespace turbovid::engine::golden
