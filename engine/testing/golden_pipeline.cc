// Golden runner for pipeline_t2v: token ids → umT5 → rCM with a tiny DiT → VAE decode → frames.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/models/t5.h"
#include "engine/models/vae.h"
#include "engine/testing/golden.h"
#include "engine/testing/golden_rcm.h"
#include "engine/video/video.h"

namespace turbovid::engine::golden {

absl::Status RunPipelineCase(const GoldenCase& c, Backend& backend, GoldenReport& r) {
  const bool fp32 = backend.compute_dtype() == DType::kF32;
  const double tol = c.Tolerance(fp32);
  const Json* t5_json = c.config().Find("t5");
  const Json* dit_json = c.config().Find("dit");
  const Json* vae_json = c.config().Find("vae");
  if (!t5_json || !dit_json || !vae_json) {
    return absl::InvalidArgumentError(absl::StrCat(c.dir, ": config needs t5, dit and vae"));
  }
  // Text: ids → umT5 (real tokens only; the padded reference run is equivalent,
  // docs/model-math.md §4.3).
  TV_ASSIGN_OR_RETURN(T5Config t5_config, T5Config::FromJson(*t5_json));
  TV_ASSIGN_OR_RETURN(io::WeightSet t5_weights, c.LoadWeights("t5"));
  TV_ASSIGN_OR_RETURN(auto t5, UmT5Encoder::Load(t5_config, t5_weights, backend));
  TV_ASSIGN_OR_RETURN(Tensor ids_t, c.Input("ids"));
  std::vector<int64_t> ids(ids_t.data<int64_t>(), ids_t.data<int64_t>() + ids_t.numel());
  TV_ASSIGN_OR_RETURN(Tensor text_emb, t5->Encode(ids));
  TV_ASSIGN_OR_RETURN(Tensor want_emb, c.Expected("text_emb"));
  r.Compare("text_emb", text_emb, want_emb, tol);

  // Sampling: the script casts the embedding to bf16 before the DiT.
  TV_ASSIGN_OR_RETURN(auto dit, LoadCaseDit(c, *dit_json, "dit", backend));
  TV_ASSIGN_OR_RETURN(WanDit::Context ctx, dit->PrepareContext(Bf16Rounded(text_emb)));
  Tensor latent;
  TV_RETURN_IF_ERROR(RunRcmSampling(c, {{dit.get(), &ctx}}, nullptr, -1, backend, r, &latent));

  // Decode: VAE (no clamp inside), then TurboDiffusion's uint8 conversion.
  TV_ASSIGN_OR_RETURN(VaeConfig vae_config, VaeConfig::FromJson(*vae_json));
  TV_ASSIGN_OR_RETURN(io::WeightSet vae_weights, c.LoadWeights("vae"));
  TV_ASSIGN_OR_RETURN(auto vae, WanVae::Load(vae_config, vae_weights, backend, /*encoder=*/false,
                                             /*decoder=*/true));
  TV_ASSIGN_OR_RETURN(Tensor video, vae->Decode(latent));
  TV_ASSIGN_OR_RETURN(Tensor want_video, c.Expected("video"));
  r.Compare("video", video, want_video, tol);
  Tensor frames = video::VideoToFrames(video);
  TV_ASSIGN_OR_RETURN(Tensor want_frames, c.Expected("frames"));
  const Json* tolerance = c.json.Find("tolerance");
  const double frames_tol = tolerance ? tolerance->NumberOr("frames_max_rel_l2", 0.04) : 0.04;
  r.Compare("frames", frames, want_frames, frames_tol);
  return absl::OkStatus();
}

}  // namespace turbovid::engine::golden
