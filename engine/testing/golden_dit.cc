// Golden runner for dit_t2v, dit_i2v and dit_sla_t2v: one DiT forward against the upstream
// velocity, plus (SLA) the exact block map of every layer.
#include <map>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/models/dit.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {

absl::Status RunDitCase(const GoldenCase& c, Backend& b, GoldenReport& r) {
  TV_ASSIGN_OR_RETURN(std::string kind, c.json.GetString("kind"));
  TV_ASSIGN_OR_RETURN(DitConfig config, DitConfig::FromJson(c.config()));
  DitOptions options;
  options.parallel = c.parallel;
  // Golden DiTs may have fewer heads than ranks: their attention then runs replicated.
  options.allow_replicated_attention = true;
  DitForwardOptions attention;
  if (kind == "dit_sla_t2v") {
    options.require_sla = true;
    attention.attention = AttentionMode::kSla;
    attention.sla_topk = static_cast<float>(
        c.config().NumberOr("sla_topk", c.json.NumberOr("topk", attention.sla_topk)));
    options.sla_block_q = static_cast<int>(c.config().IntOr("sla_BLKQ", options.sla_block_q));
    options.sla_block_k = static_cast<int>(c.config().IntOr("sla_BLKK", options.sla_block_k));
  }
  TV_ASSIGN_OR_RETURN(io::WeightSet weights, c.LoadWeights());
  TV_ASSIGN_OR_RETURN(std::unique_ptr<WanDit> dit, WanDit::Load(config, weights, b, options));

  TV_ASSIGN_OR_RETURN(Tensor context_raw, c.Input("context"));
  TV_ASSIGN_OR_RETURN(Tensor context, ToF32(context_raw));
  TV_ASSIGN_OR_RETURN(Tensor x_raw, c.Input("x"));
  TV_ASSIGN_OR_RETURN(Tensor x, ToF32(x_raw));
  Tensor y;
  if (c.inputs.count("y") != 0) {
    TV_ASSIGN_OR_RETURN(y, ToF32(c.inputs.at("y")));
  }
  TV_ASSIGN_OR_RETURN(double timestep, c.json.GetNumber("timestep"));

  std::map<std::string, Tensor> probes;
  const TensorSink sink = [&probes](const std::string& name, const Tensor& host) {
    probes[name] = host;
  };
  TV_ASSIGN_OR_RETURN(WanDit::Context ctx, dit->PrepareContext(context));
  TV_ASSIGN_OR_RETURN(Tensor velocity,
                      dit->Forward(x, y.defined() ? &y : nullptr, timestep, ctx, attention, &sink));
  TV_ASSIGN_OR_RETURN(Tensor want, c.Expected("velocity"));
  r.Compare("velocity", velocity, want, c.Tolerance(b.compute_dtype() == DType::kF32));

  if (attention.attention == AttentionMode::kSla) {
    for (int i = 0; i < config.num_layers; ++i) {
      const std::string name = absl::StrCat("sparse_map_layer", i);
      if (c.expected.count(name) == 0) continue;
      auto it = probes.find(absl::StrCat("blocks.", i, ".self_attn.sparse_map"));
      if (it == probes.end()) {
        r.Fail(name, "the model reported no block map");
        continue;
      }
      r.Exact(name, it->second, c.expected.at(name));
    }
  }
  return absl::OkStatus();
}

}  // namespace turbovid::engine::golden
