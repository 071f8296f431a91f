// Golden runners for 'vae_decode' (normalised latent → video clamped to [-1, 1], as the upstream
// wrapper returns it) and 'vae_encode' (video → normalised μ latent), Wan2.1 VAE in fp32.
#include <algorithm>

#include "common/status_macros.h"
#include "engine/models/vae.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {
namespace {

absl::StatusOr<std::unique_ptr<WanVae>> LoadVae(const GoldenCase& c, Backend& b, bool encoder) {
  // The case's top-level vae_mean/vae_std and its "config" object are both read by FromJson.
  TV_ASSIGN_OR_RETURN(VaeConfig config, VaeConfig::FromJson(c.json));
  TV_ASSIGN_OR_RETURN(io::WeightSet weights, c.LoadWeights());
  return WanVae::Load(config, weights, b, encoder, !encoder);
}

}  // namespace

absl::Status RunVaeDecodeCase(const GoldenCase& c, Backend& b, GoldenReport& r) {
  TV_ASSIGN_OR_RETURN(std::unique_ptr<WanVae> vae, LoadVae(c, b, /*encoder=*/false));
  TV_ASSIGN_OR_RETURN(Tensor z_raw, c.Input("z"));
  TV_ASSIGN_OR_RETURN(Tensor z, ToF32(z_raw));
  TV_ASSIGN_OR_RETURN(Tensor video, vae->Decode(z));
  float* v = video.data<float>();
  for (int64_t i = 0; i < video.numel(); ++i) v[i] = std::clamp(v[i], -1.0f, 1.0f);
  TV_ASSIGN_OR_RETURN(Tensor want, c.Expected("video"));
  r.Compare("video", video, want, c.Tolerance(b.compute_dtype() == DType::kF32));
  return absl::OkStatus();
}

absl::Status RunVaeEncodeCase(const GoldenCase& c, Backend& b, GoldenReport& r) {
  TV_ASSIGN_OR_RETURN(std::unique_ptr<WanVae> vae, LoadVae(c, b, /*encoder=*/true));
  TV_ASSIGN_OR_RETURN(Tensor video_raw, c.Input("video"));
  TV_ASSIGN_OR_RETURN(Tensor video, ToF32(video_raw));  // stored BF16; the upcast is exact
  TV_ASSIGN_OR_RETURN(Tensor latent, vae->Encode(video));
  TV_ASSIGN_OR_RETURN(Tensor want, c.Expected("latent"));
  r.Compare("latent", latent, want, c.Tolerance(b.compute_dtype() == DType::kF32));
  return absl::OkStatus();
}

}  // namespace turbovid::engine::golden
