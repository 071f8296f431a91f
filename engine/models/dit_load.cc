// Wan DiT loading: config parsing, checked weight loading (bf16 / int8, dense / SLA, 2-D or 5-D
// patch embedding), tensor-parallel shards of the block weights, and the attention-mode check.
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/models/dit_internal.h"

namespace turbovid::engine {
namespace dit {

absl::StatusOr<Tensor> Linear::Apply(const Ops& ops, const Tensor& x, Activation act) const {
  const Tensor* bias = shard == Shard::kInputs ? nullptr : &b;
  if (!quantized && !fp8) return ops.Linear(x, w, bias, act);
  Tensor y;
  if (fp8) {
    TV_ASSIGN_OR_RETURN(y, ops.Uninit({x.dim(0), w_fp8.dim(0)}));
    Fp8LinearOp op;
    op.x = &x;
    op.w_fp8 = &w_fp8;
    op.w_scale = &fp8_scale;
    op.bias = bias;
    op.y = &y;
    TV_RETURN_IF_ERROR(ops.backend().Run(op));
  } else {
    TV_ASSIGN_OR_RETURN(y, ops.Empty({x.dim(0), w_int8.dim(0)}));
    Int8LinearOp op;
    op.x = &x;
    op.w_int8 = &w_int8;
    op.w_scale = &scale;
    op.bias = bias;
    op.y = &y;
    TV_RETURN_IF_ERROR(ops.backend().Run(op));
  }
  if (act == Activation::kNone) return y;
  return ops.Unary(act == Activation::kGeluTanh ? UnaryKind::kGeluTanh : UnaryKind::kSilu, y);
}

absl::StatusOr<Tensor> Loader::Take(const std::string& name, const Shape& shape) {
  return ws.Take(name, shape, backend, backend.compute_dtype());
}

absl::StatusOr<Tensor> Loader::TakeShardRows(const std::string& name, const Shape& shape) {
  if ((tp_size == 1 && !shard_at_one) || !split_heads) return Take(name, shape);
  const int64_t n = shape[0] / tp_size;
  return ws.TakeRows(name, shape, tp_rank * n, (tp_rank + 1) * n, backend, backend.compute_dtype());
}

namespace {

// The int8 scales cover 128 x 128 tiles: a shard must start and end on a tile edge (or at the
// tensor's end) to own whole tiles, and the activation quantiser then sees the same tiles too.
absl::Status CheckTileAligned(const std::string& name, int64_t begin, int64_t end, int64_t n,
                              int tp) {
  if (begin % 128 == 0 && (end % 128 == 0 || end == n)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      name, ": tensor_parallel_size ", tp, " cuts its ", n, " int8 rows/columns at ", begin, "..",
      end, ", not on the 128-wide scale tiles (W8A8 shards must be tile-aligned)"));
}

}  // namespace

absl::StatusOr<Linear> Loader::TakeLinear(const std::string& prefix, int64_t out, int64_t in,
                                          bool allow_int8, Shard shard) {
  Linear l;
  l.quantized = allow_int8 && quantized;
  l.fp8 = allow_int8 && fp8;
  l.shard = tp_size == 1 && !shard_at_one ? Shard::kNone : shard;
  const int64_t split = l.shard == Shard::kOutputs ? out : (l.shard == Shard::kInputs ? in : 0);
  const int64_t begin = split / tp_size * tp_rank, end = split / tp_size * (tp_rank + 1);
  const DType dt = backend.compute_dtype();
  // The weight (or its int8 codes) as this rank's cut of a [out, in] tensor.
  auto take_matrix = [&](const std::string& name, DType dtype) -> absl::StatusOr<Tensor> {
    switch (l.shard) {
      case Shard::kNone:
        return ws.Take(name, {out, in}, backend, dtype);
      case Shard::kOutputs:
        return ws.TakeRows(name, {out, in}, begin, end, backend, dtype);
      case Shard::kInputs:
        return ws.TakeColumns(name, {out, in}, begin, end, backend, dtype);
    }
    return absl::InternalError("dit: unknown shard");
  };
  if (l.quantized) {
    const std::string wname = prefix + ".int8_weight";
    const io::WeightSet::Entry* e = ws.Find(wname);
    if (e != nullptr && e->tensor.dtype() != DType::kI8) {
      return absl::InvalidArgumentError(
          absl::StrCat(e->file, ": tensor '", wname, "' is ", e->tensor.Describe(), ", want I8"));
    }
    TV_ASSIGN_OR_RETURN(l.w_int8, take_matrix(wname, DType::kI8));
    const int64_t bs = 128;
    const Shape scale_shape = {(out + bs - 1) / bs, (in + bs - 1) / bs};
    const std::string sname = prefix + ".scale";
    if (l.shard != Shard::kNone) {
      TV_RETURN_IF_ERROR(CheckTileAligned(prefix, begin, end, split, tp_size));
    }
    const int64_t t0 = begin / bs, t1 = (end + bs - 1) / bs;
    absl::StatusOr<Tensor> scale = absl::InternalError("dit: unknown shard");
    switch (l.shard) {
      case Shard::kNone:
        scale = ws.Take(sname, scale_shape, backend, DType::kF32);
        break;
      case Shard::kOutputs:
        scale = ws.TakeRows(sname, scale_shape, t0, t1, backend, DType::kF32);
        break;
      case Shard::kInputs:
        scale = ws.TakeColumns(sname, scale_shape, t0, t1, backend, DType::kF32);
        break;
    }
    TV_ASSIGN_OR_RETURN(l.scale, std::move(scale));
  } else if (l.fp8) {
    // The rank's cut in the compute dtype, quantised per row on the backend; the bf16 tensor
    // is dropped on return, so only one layer's bf16 weight is live at a time.
    TV_ASSIGN_OR_RETURN(Tensor w, take_matrix(prefix + ".weight", dt));
    TV_ASSIGN_OR_RETURN(l.w_fp8, backend.AllocateWeight(DType::kU8, w.shape()));
    TV_ASSIGN_OR_RETURN(l.fp8_scale, backend.AllocateWeight(DType::kF32, {w.dim(0)}));
    Fp8QuantizeOp q;
    q.x = &w;
    q.q = &l.w_fp8;
    q.scale = &l.fp8_scale;
    TV_RETURN_IF_ERROR(backend.Run(q));
  } else {
    TV_ASSIGN_OR_RETURN(l.w, take_matrix(prefix + ".weight", dt));
  }
  if (l.shard == Shard::kOutputs) {
    TV_ASSIGN_OR_RETURN(l.b, ws.TakeRows(prefix + ".bias", {out}, begin, end, backend, dt));
  } else {
    TV_ASSIGN_OR_RETURN(l.b, Take(prefix + ".bias", {out}));
  }
  return l;
}

WanDitImpl::WanDitImpl(const DitConfig& config, const DitOptions& options, Backend& backend,
                       bool quantized)
    : config_(config),
      options_(options),
      parallel_(options.parallel),
      backend_(backend),
      ops_(backend),
      quantized_(quantized) {}

absl::Status WanDitImpl::LoadAll(io::WeightSet& ws) {
  const int64_t e = config_.dim, d = config_.head_dim();
  Loader ld{ws,   backend_,       quantized_, options_.fp8_linears,
            parallel_ ? parallel_->tp_rank() : 0, tp(), attention_tp(), at_one()};
  const int64_t patch_in = int64_t{config_.in_dim} * 4;
  const io::WeightSet::Entry* pe = ws.Find("patch_embedding.weight");
  if (pe != nullptr && pe->tensor.rank() == 2) {
    // TurboDiffusion stores the Conv3d kernel flattened for its Linear patch embedder
    // (docs/model-math.md §2.3).
    TV_ASSIGN_OR_RETURN(patch_w_, ld.Take("patch_embedding.weight", {e, patch_in}));
  } else {
    TV_ASSIGN_OR_RETURN(Tensor w5, ld.Take("patch_embedding.weight", {e, config_.in_dim, 1, 2, 2}));
    TV_ASSIGN_OR_RETURN(patch_w_, w5.Reshape({e, patch_in}));
  }
  TV_ASSIGN_OR_RETURN(patch_b_, ld.Take("patch_embedding.bias", {e}));
  TV_ASSIGN_OR_RETURN(text0_, ld.TakeLinear("text_embedding.0", e, config_.text_dim, false));
  TV_ASSIGN_OR_RETURN(text2_, ld.TakeLinear("text_embedding.2", e, e, false));
  TV_ASSIGN_OR_RETURN(time0_, ld.TakeLinear("time_embedding.0", e, config_.freq_dim, false));
  TV_ASSIGN_OR_RETURN(time2_, ld.TakeLinear("time_embedding.2", e, e, false));
  TV_ASSIGN_OR_RETURN(time_proj_, ld.TakeLinear("time_projection.1", 6 * e, e, false));
  TV_ASSIGN_OR_RETURN(head_, ld.TakeLinear("head.head", int64_t{config_.out_dim} * 4, e, false));
  TV_ASSIGN_OR_RETURN(Tensor hm, ld.Take("head.modulation", {1, 2, e}));
  TV_ASSIGN_OR_RETURN(head_modulation_, hm.Reshape({2, e}));
  blocks_.resize(config_.num_layers);
  has_proj_l_ = true;
  const Shard out = Shard::kOutputs, in = Shard::kInputs;
  // Attention linears follow the heads; replicated when the heads do not split.
  const Shard heads_out = attention_tp() ? out : Shard::kNone;
  const Shard heads_in = attention_tp() ? in : Shard::kNone;
  for (int i = 0; i < config_.num_layers; ++i) {
    Block& b = blocks_[i];
    const std::string p = absl::StrCat("blocks.", i, ".");
    TV_ASSIGN_OR_RETURN(Tensor mod, ld.Take(p + "modulation", {1, 6, e}));
    TV_ASSIGN_OR_RETURN(b.modulation, mod.Reshape({6, e}));
    // Attention by heads: Q/K/V outputs and the q/k norm weights of this rank's heads, O by its
    // inputs; the FFN by its hidden columns (docs/parallelism.md §2).
    TV_ASSIGN_OR_RETURN(b.sa_q, ld.TakeLinear(p + "self_attn.q", e, e, true, heads_out));
    TV_ASSIGN_OR_RETURN(b.sa_k, ld.TakeLinear(p + "self_attn.k", e, e, true, heads_out));
    TV_ASSIGN_OR_RETURN(b.sa_v, ld.TakeLinear(p + "self_attn.v", e, e, true, heads_out));
    TV_ASSIGN_OR_RETURN(b.sa_o, ld.TakeLinear(p + "self_attn.o", e, e, true, heads_in));
    TV_ASSIGN_OR_RETURN(b.sa_norm_q, ld.TakeShardRows(p + "self_attn.norm_q.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.sa_norm_k, ld.TakeShardRows(p + "self_attn.norm_k.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.ca_q, ld.TakeLinear(p + "cross_attn.q", e, e, true, heads_out));
    TV_ASSIGN_OR_RETURN(b.ca_k, ld.TakeLinear(p + "cross_attn.k", e, e, true, heads_out));
    TV_ASSIGN_OR_RETURN(b.ca_v, ld.TakeLinear(p + "cross_attn.v", e, e, true, heads_out));
    TV_ASSIGN_OR_RETURN(b.ca_o, ld.TakeLinear(p + "cross_attn.o", e, e, true, heads_in));
    TV_ASSIGN_OR_RETURN(b.ca_norm_q, ld.TakeShardRows(p + "cross_attn.norm_q.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.ca_norm_k, ld.TakeShardRows(p + "cross_attn.norm_k.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.norm3_w, ld.Take(p + "norm3.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.norm3_b, ld.Take(p + "norm3.bias", {e}));
    TV_ASSIGN_OR_RETURN(b.ffn0, ld.TakeLinear(p + "ffn.0", config_.ffn_dim, e, true, out));
    TV_ASSIGN_OR_RETURN(b.ffn2, ld.TakeLinear(p + "ffn.2", e, config_.ffn_dim, true, in));
    const std::string pl = p + "self_attn.attn_op.local_attn.proj_l.";
    if (options_.require_sla || (ws.Has(pl + "weight") && ws.Has(pl + "bias"))) {
      // SLA's proj_l acts on each head alike: every rank holds all of it.
      TV_ASSIGN_OR_RETURN(b.proj_l_w, ld.Take(pl + "weight", {d, d}));
      TV_ASSIGN_OR_RETURN(b.proj_l_b, ld.Take(pl + "bias", {d}));
    } else {
      // Dense mode: proj_l has no dense counterpart (docs/model-math.md §9.5, issue #67), so a
      // stray half is ignored.
      ws.Ignore(pl + "weight");
      ws.Ignore(pl + "bias");
      has_proj_l_ = false;
    }
  }
  return ws.CheckAllUsed();
}

absl::Status WanDitImpl::CheckForwardOptions(const DitForwardOptions& attention) const {
  switch (attention.attention) {
    case AttentionMode::kDense:
      return absl::OkStatus();
    case AttentionMode::kSla:
    case AttentionMode::kSageSla:
      if (!has_proj_l_) {
        return absl::FailedPreconditionError(absl::StrCat(
            "dit: ", AttentionModeName(attention.attention),
            " needs blocks.*.self_attn.attn_op.local_attn.proj_l, absent from this checkpoint"));
      }
      if (!(attention.sla_topk > 0.f && attention.sla_topk <= 1.f)) {
        return absl::InvalidArgumentError(
            absl::StrCat("dit: sla_topk ", attention.sla_topk, " outside (0, 1]"));
      }
      if (attention.attention == AttentionMode::kSageSla &&
          !backend_.Supports(OpKindOf<SageSlaOp>())) {
        return absl::UnimplementedError(absl::StrCat("dit: SageSLA is not implemented on backend ",
                                                     std::string(backend_.name())));
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("dit: attention mode ",
                                                 static_cast<int>(attention.attention),
                                                 " is not dense, SLA or SageSLA"));
}

namespace {

absl::StatusOr<int> IntKey(const Json& json, std::string_view key, int fallback, bool required) {
  const Json* v = json.Find(key);
  if (v == nullptr) {
    if (required)
      return absl::InvalidArgumentError(
          absl::StrCat("dit config: missing '", std::string(key), "'"));
    return fallback;
  }
  if (!v->is_integer() || v->integer() <= 0 || v->integer() > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dit config: '", std::string(key), "' must be a positive integer"));
  }
  return static_cast<int>(v->integer());
}

// Heads split over tp × sp ranks (each tensor rank's heads again over its sequence group), the
// FFN's hidden columns over tp; 1.3B (12 heads) cannot run on 8, 14B (40 heads) can.
absl::Status CheckLayoutFits(const DitConfig& c, const comm::ParallelGroups& g,
                             bool allow_replicated_attention) {
  const comm::ParallelLayout& l = g.layout();
  if (g.world().size() != l.world()) {
    return absl::InvalidArgumentError(absl::StrCat("dit: layout ", l.ToString(), " needs ",
                                                   l.world(), " ranks, the group has ",
                                                   g.world().size()));
  }
  if (c.num_heads % l.world() != 0 && !allow_replicated_attention) {
    return absl::InvalidArgumentError(
        absl::StrCat("dit: ", c.num_heads, " heads do not split over tensor_parallel_size ",
                     l.tensor_parallel, " x sequence_parallel_size ", l.sequence_parallel, " = ",
                     l.world(), " ranks (the product must divide the heads)"));
  }
  if (c.ffn_dim % l.tensor_parallel != 0) {
    return absl::InvalidArgumentError(absl::StrCat("dit: ffn_dim ", c.ffn_dim,
                                                   " does not split over tensor_parallel_size ",
                                                   l.tensor_parallel));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace dit

absl::StatusOr<DitConfig> DitConfig::FromJson(const Json& json) {
  using dit::IntKey;
  if (!json.is_object()) return absl::InvalidArgumentError("dit config: not a JSON object");
  DitConfig c;
  c.model_type = json.StringOr("model_type", "t2v");
  if (c.model_type != "t2v" && c.model_type != "i2v") {
    return absl::UnimplementedError(
        absl::StrCat("dit config: model_type '", c.model_type, "' (supported: t2v, i2v)"));
  }
  TV_ASSIGN_OR_RETURN(c.dim, IntKey(json, "dim", c.dim, true));
  TV_ASSIGN_OR_RETURN(c.ffn_dim, IntKey(json, "ffn_dim", c.ffn_dim, true));
  TV_ASSIGN_OR_RETURN(c.num_heads, IntKey(json, "num_heads", c.num_heads, true));
  TV_ASSIGN_OR_RETURN(c.num_layers, IntKey(json, "num_layers", c.num_layers, true));
  TV_ASSIGN_OR_RETURN(c.in_dim, IntKey(json, "in_dim", c.model_type == "i2v" ? 36 : 16, false));
  TV_ASSIGN_OR_RETURN(c.out_dim, IntKey(json, "out_dim", c.out_dim, false));
  TV_ASSIGN_OR_RETURN(c.freq_dim, IntKey(json, "freq_dim", c.freq_dim, false));
  TV_ASSIGN_OR_RETURN(c.text_dim, IntKey(json, "text_dim", c.text_dim, false));
  TV_ASSIGN_OR_RETURN(c.text_len, IntKey(json, "text_len", c.text_len, false));
  c.eps = static_cast<float>(json.NumberOr("eps", c.eps));
  if (!(c.eps > 0)) return absl::InvalidArgumentError("dit config: 'eps' must be positive");
  if (const Json* p = json.Find("patch_size"); p != nullptr) {
    TV_ASSIGN_OR_RETURN(std::vector<int64_t> ps, json.GetIntArray("patch_size"));
    if (ps != std::vector<int64_t>{1, 2, 2}) {
      return absl::UnimplementedError("dit config: 'patch_size' other than [1, 2, 2]");
    }
  }
  if (c.dim % c.num_heads != 0 || c.head_dim() % 2 != 0 || c.head_dim() < 6) {
    return absl::InvalidArgumentError(absl::StrCat("dit config: 'dim' ", c.dim, " / 'num_heads' ",
                                                   c.num_heads, " is not an even head dim ≥ 6"));
  }
  if (c.freq_dim % 2 != 0) return absl::InvalidArgumentError("dit config: 'freq_dim' must be even");
  return c;
}

absl::StatusOr<std::unique_ptr<WanDit>> WanDit::Load(const DitConfig& config,
                                                     io::WeightSet& weights, Backend& backend,
                                                     const DitOptions& options) {
  if (options.sla_block_q <= 0 || options.sla_block_k <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("dit: SLA blocks ", options.sla_block_q, "x",
                                                   options.sla_block_k, " must be positive"));
  }
  if (options.parallel != nullptr) {
    TV_RETURN_IF_ERROR(
        dit::CheckLayoutFits(config, *options.parallel, options.allow_replicated_attention));
  }
  const bool quantized = weights.Has("blocks.0.self_attn.q.int8_weight");
  if (quantized && options.fp8_linears) {
    return absl::InvalidArgumentError(
        "dit: fp8 linears (turbo-fp8) are quantised at load from a bf16 checkpoint; this one "
        "holds int8 weights (blocks.0.self_attn.q.int8_weight)");
  }
  if (options.fp8_linears && !backend.Supports(OpKindOf<Fp8LinearOp>())) {
    return absl::UnimplementedError(absl::StrCat("dit: fp8 linears are not implemented on backend ",
                                                 std::string(backend.name())));
  }
  DitOptions opts = options;
  if (const char* env = std::getenv("TV_DIT_RESIDUAL"); env != nullptr && *env != '\0') {
    const std::string v(env);
    if (v != "bf16" && v != "f32") {
      return absl::InvalidArgumentError(
          absl::StrCat("TV_DIT_RESIDUAL: '", v, "' is neither 'f32' nor 'bf16'"));
    }
    opts.residual_f32 = v == "f32";
  }
  auto model = std::make_unique<dit::WanDitImpl>(config, opts, backend, quantized);
  TV_RETURN_IF_ERROR(model->LoadAll(weights));
  return std::unique_ptr<WanDit>(std::move(model));
}

}  // namespace turbovid::engine
