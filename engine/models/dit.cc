// Wan DiT over the Backend interface: config parsing, checked weight loading (bf16 / int8,
// dense / SLA, 2-D or 5-D patch embedding) and the forward pass of docs/model-math.md §3.
#include "engine/models/dit.h"

#include <cmath>
#include <mutex>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/ops.h"
#include "engine/core/parallel.h"
#include "engine/core/phase_profile.h"

namespace turbovid::engine {
namespace {

// One Linear of the model: bf16/fp32 weight, or TurboDiffusion int8 weight + 128x128 scales.
struct Linear {
  Tensor w;       // [out, in] compute dtype (unquantised)
  Tensor w_int8;  // [out, in] I8 (quantised)
  Tensor scale;   // [ceil(out/128), ceil(in/128)] F32 (quantised)
  Tensor b;       // [out]
  bool quantized = false;

  absl::StatusOr<Tensor> Apply(const Ops& ops, const Tensor& x,
                               Activation act = Activation::kNone) const {
    if (!quantized) return ops.Linear(x, w, &b, act);
    TV_ASSIGN_OR_RETURN(Tensor y, ops.Empty({x.dim(0), w_int8.dim(0)}));
    Int8LinearOp op;
    op.x = &x;
    op.w_int8 = &w_int8;
    op.w_scale = &scale;
    op.bias = &b;
    op.y = &y;
    TV_RETURN_IF_ERROR(ops.backend().Run(op));
    if (act == Activation::kNone) return y;
    return ops.Unary(act == Activation::kGeluTanh ? UnaryKind::kGeluTanh : UnaryKind::kSilu, y);
  }
};

struct Block {
  Tensor modulation;  // [6, E]
  Linear sa_q, sa_k, sa_v, sa_o, ca_q, ca_k, ca_v, ca_o, ffn0, ffn2;
  Tensor sa_norm_q, sa_norm_k, ca_norm_q, ca_norm_k;  // [E]
  Tensor norm3_w, norm3_b;                            // [E]
  Tensor proj_l_w, proj_l_b;                          // [D, D], [D] (SLA only)
};

// Loader state: the weight set, the target backend and whether block linears are int8.
struct Loader {
  io::WeightSet& ws;
  Backend& backend;
  bool quantized;

  absl::StatusOr<Tensor> Take(const std::string& name, const Shape& shape) {
    return ws.Take(name, shape, backend, backend.compute_dtype());
  }
  absl::StatusOr<Linear> TakeLinear(const std::string& prefix, int64_t out, int64_t in,
                                    bool allow_int8) {
    Linear l;
    l.quantized = allow_int8 && quantized;
    if (l.quantized) {
      const std::string wname = prefix + ".int8_weight";
      const io::WeightSet::Entry* e = ws.Find(wname);
      if (e != nullptr && e->tensor.dtype() != DType::kI8) {
        return absl::InvalidArgumentError(
            absl::StrCat(e->file, ": tensor '", wname, "' is ", e->tensor.Describe(), ", want I8"));
      }
      TV_ASSIGN_OR_RETURN(l.w_int8, ws.Take(wname, {out, in}, backend, DType::kI8));
      const int64_t bs = 128;
      TV_ASSIGN_OR_RETURN(
          l.scale, ws.Take(prefix + ".scale", {(out + bs - 1) / bs, (in + bs - 1) / bs}, backend,
                           DType::kF32));
    } else {
      TV_ASSIGN_OR_RETURN(l.w, Take(prefix + ".weight", {out, in}));
    }
    TV_ASSIGN_OR_RETURN(l.b, Take(prefix + ".bias", {out}));
    return l;
  }
};

class WanDitImpl : public WanDit {
 public:
  WanDitImpl(const DitConfig& config, const DitOptions& options, Backend& backend, bool quantized)
      : config_(config),
        options_(options),
        backend_(backend),
        ops_(backend),
        quantized_(quantized) {}

  absl::Status LoadAll(io::WeightSet& ws);
  absl::StatusOr<Context> PrepareContext(const Tensor& context) const override;
  absl::StatusOr<Tensor> Forward(const Tensor& x, const Tensor* y, double timestep,
                                 const Context& context, const DitForwardOptions& attention,
                                 const TensorSink* sink) const override;
  absl::Status CheckForwardOptions(const DitForwardOptions& attention) const override;
  const DitConfig& config() const override { return config_; }
  bool quantized() const override { return quantized_; }

 private:
  absl::StatusOr<Tensor> Patchify(const Tensor& x, const Tensor* y) const;
  absl::StatusOr<std::pair<Tensor, Tensor>> TimeEmbedding(double timestep) const;
  absl::Status RopeTables(int64_t f, int64_t h, int64_t w, Tensor* cos, Tensor* sin) const;
  absl::Status RunBlock(int i, Tensor& x, const Tensor& e0, const Tensor& cos, const Tensor& sin,
                        const Context& context, const DitForwardOptions& attention,
                        const TensorSink* sink) const;
  absl::StatusOr<Tensor> SelfAttention(int i, const Tensor& a, const Tensor& cos, const Tensor& sin,
                                       const DitForwardOptions& attention,
                                       const TensorSink* sink) const;
  absl::StatusOr<Tensor> SparseLinearAttention(int i, const Tensor& q, const Tensor& k,
                                               const Tensor& v, float topk,
                                               const TensorSink* sink) const;
  absl::StatusOr<Tensor> SageSparseLinearAttention(int i, const Tensor& q, const Tensor& k,
                                                   const Tensor& v,
                                                   const DitForwardOptions& attention,
                                                   const TensorSink* sink) const;
  absl::StatusOr<Tensor> Head(const Tensor& x, const Tensor& e, int64_t f, int64_t h,
                              int64_t w) const;

  DitConfig config_;
  DitOptions options_;
  Backend& backend_;
  Ops ops_;
  bool quantized_;
  bool has_proj_l_ = false;  // every block loaded proj_l (SLA possible)
  Tensor patch_w_;           // [E, in_dim·4], columns (c, q, r)
  Tensor patch_b_;           // [E]
  Linear text0_, text2_, time0_, time2_, time_proj_, head_;
  Tensor head_modulation_;  // [2, E]
  std::vector<Block> blocks_;
  // RoPE tables of the last latent grid (f, h, w): every step of a job reuses them.
  mutable std::mutex rope_mu_;
  mutable std::tuple<int64_t, int64_t, int64_t> rope_key_{-1, -1, -1};
  mutable Tensor rope_cos_, rope_sin_;
};

absl::Status WanDitImpl::LoadAll(io::WeightSet& ws) {
  const int64_t e = config_.dim, d = config_.head_dim();
  Loader ld{ws, backend_, quantized_};
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
  for (int i = 0; i < config_.num_layers; ++i) {
    Block& b = blocks_[i];
    const std::string p = absl::StrCat("blocks.", i, ".");
    TV_ASSIGN_OR_RETURN(Tensor mod, ld.Take(p + "modulation", {1, 6, e}));
    TV_ASSIGN_OR_RETURN(b.modulation, mod.Reshape({6, e}));
    TV_ASSIGN_OR_RETURN(b.sa_q, ld.TakeLinear(p + "self_attn.q", e, e, true));
    TV_ASSIGN_OR_RETURN(b.sa_k, ld.TakeLinear(p + "self_attn.k", e, e, true));
    TV_ASSIGN_OR_RETURN(b.sa_v, ld.TakeLinear(p + "self_attn.v", e, e, true));
    TV_ASSIGN_OR_RETURN(b.sa_o, ld.TakeLinear(p + "self_attn.o", e, e, true));
    TV_ASSIGN_OR_RETURN(b.sa_norm_q, ld.Take(p + "self_attn.norm_q.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.sa_norm_k, ld.Take(p + "self_attn.norm_k.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.ca_q, ld.TakeLinear(p + "cross_attn.q", e, e, true));
    TV_ASSIGN_OR_RETURN(b.ca_k, ld.TakeLinear(p + "cross_attn.k", e, e, true));
    TV_ASSIGN_OR_RETURN(b.ca_v, ld.TakeLinear(p + "cross_attn.v", e, e, true));
    TV_ASSIGN_OR_RETURN(b.ca_o, ld.TakeLinear(p + "cross_attn.o", e, e, true));
    TV_ASSIGN_OR_RETURN(b.ca_norm_q, ld.Take(p + "cross_attn.norm_q.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.ca_norm_k, ld.Take(p + "cross_attn.norm_k.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.norm3_w, ld.Take(p + "norm3.weight", {e}));
    TV_ASSIGN_OR_RETURN(b.norm3_b, ld.Take(p + "norm3.bias", {e}));
    TV_ASSIGN_OR_RETURN(b.ffn0, ld.TakeLinear(p + "ffn.0", config_.ffn_dim, e, true));
    TV_ASSIGN_OR_RETURN(b.ffn2, ld.TakeLinear(p + "ffn.2", e, config_.ffn_dim, true));
    const std::string pl = p + "self_attn.attn_op.local_attn.proj_l.";
    if (options_.require_sla || (ws.Has(pl + "weight") && ws.Has(pl + "bias"))) {
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

absl::StatusOr<WanDit::Context> WanDitImpl::PrepareContext(const Tensor& context) const {
  if (context.rank() != 2 || context.dim(1) != config_.text_dim ||
      context.dim(0) > config_.text_len) {
    return absl::InvalidArgumentError(absl::StrCat("dit context: ", context.Describe(),
                                                   ", want [L ≤ ", config_.text_len, ", ",
                                                   config_.text_dim, "]"));
  }
  // Zero rows up to text_len go through the text MLP and are attended (docs/model-math.md §3.4).
  TV_ASSIGN_OR_RETURN(Tensor host, ToF32(context));
  Tensor padded = Tensor::Zeros(DType::kF32, {config_.text_len, config_.text_dim});
  std::copy(host.data<float>(), host.data<float>() + host.numel(), padded.data<float>());
  TV_ASSIGN_OR_RETURN(Tensor ctx, backend_.Upload(padded, backend_.compute_dtype()));
  TV_ASSIGN_OR_RETURN(Tensor hidden, text0_.Apply(ops_, ctx, Activation::kGeluTanh));
  TV_ASSIGN_OR_RETURN(ctx, text2_.Apply(ops_, hidden));
  Context out;
  const Shape lnd{config_.text_len, config_.num_heads, config_.head_dim()};
  for (const Block& b : blocks_) {
    TV_ASSIGN_OR_RETURN(Tensor k, b.ca_k.Apply(ops_, ctx));
    TV_ASSIGN_OR_RETURN(k, ops_.RmsNorm(k, &b.ca_norm_k, config_.eps));
    TV_ASSIGN_OR_RETURN(Tensor v, b.ca_v.Apply(ops_, ctx));
    TV_ASSIGN_OR_RETURN(k, k.Reshape(lnd));
    TV_ASSIGN_OR_RETURN(v, v.Reshape(lnd));
    out.k.push_back(std::move(k));
    out.v.push_back(std::move(v));
  }
  return out;
}

// Tokens [L, in_dim·4]: token (f, h, w) in raster order, patch vector (c, q, r)
// (docs/model-math.md §3.2).
absl::StatusOr<Tensor> WanDitImpl::Patchify(const Tensor& x, const Tensor* y) const {
  const int64_t cy = y ? y->dim(0) : 0;
  if (x.rank() != 4 || (y && (y->rank() != 4 || y->dim(1) != x.dim(1) || y->dim(2) != x.dim(2) ||
                              y->dim(3) != x.dim(3)))) {
    return absl::InvalidArgumentError(absl::StrCat("dit input: x ", x.Describe(), " and y ",
                                                   y ? y->Describe() : "<none>",
                                                   " must be [C, T, H, W] of one grid"));
  }
  if (x.dim(0) + cy != config_.in_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("dit input: ", x.dim(0), " + ", cy, " channels != in_dim ", config_.in_dim));
  }
  const int64_t t = x.dim(1), h = x.dim(2), w = x.dim(3);
  if (t < 1 || h < 2 || w < 2 || h % 2 != 0 || w % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dit input: latent ", x.Describe(), " needs even H and W"));
  }
  TV_ASSIGN_OR_RETURN(Tensor in, backend_.Upload(x, backend_.compute_dtype()));
  if (y) {
    TV_ASSIGN_OR_RETURN(Tensor yd, backend_.Upload(*y, backend_.compute_dtype()));
    TV_ASSIGN_OR_RETURN(in, ops_.Concat({in, yd}, 0));
  }
  const int64_t c = config_.in_dim;
  TV_ASSIGN_OR_RETURN(Tensor v6, in.Reshape({c, t, h / 2, 2, w / 2, 2}));
  TV_ASSIGN_OR_RETURN(Tensor p, ops_.Permute(v6, {1, 2, 4, 0, 3, 5}));  // [T, Hg, Wg, C, q, r]
  return p.Reshape({t * (h / 2) * (w / 2), c * 4});
}

// e = time MLP(sinusoid) [1, E] and e0 = time_projection(SiLU(e)) [6, E] (docs/model-math.md §3.3).
// Wan2.2 feeds one equal timestep per token for T2V/I2V, so the per-token result is this row
// broadcast.
absl::StatusOr<std::pair<Tensor, Tensor>> WanDitImpl::TimeEmbedding(double timestep) const {
  const int half = config_.freq_dim / 2;
  Tensor sinus = Tensor::Zeros(DType::kF32, {1, config_.freq_dim});
  for (int i = 0; i < half; ++i) {
    const double arg = timestep * std::pow(10000.0, -static_cast<double>(i) / half);
    sinus.data<float>()[i] = static_cast<float>(std::cos(arg));
    sinus.data<float>()[half + i] = static_cast<float>(std::sin(arg));
  }
  TV_ASSIGN_OR_RETURN(Tensor s, backend_.Upload(sinus, backend_.compute_dtype()));
  TV_ASSIGN_OR_RETURN(Tensor hidden, time0_.Apply(ops_, s, Activation::kSilu));
  TV_ASSIGN_OR_RETURN(Tensor e, time2_.Apply(ops_, hidden));
  TV_ASSIGN_OR_RETURN(Tensor se, ops_.Unary(UnaryKind::kSilu, e));
  TV_ASSIGN_OR_RETURN(Tensor e0, time_proj_.Apply(ops_, se));
  TV_ASSIGN_OR_RETURN(e0, e0.Reshape({6, config_.dim}));
  return std::make_pair(std::move(e), std::move(e0));
}

// cos/sin [L, D/2] F32 of the 3-D RoPE (docs/model-math.md §3.7): pairs split t/h/w, interleaved,
// float64 angles.
absl::Status WanDitImpl::RopeTables(int64_t f, int64_t h, int64_t w, Tensor* cos,
                                    Tensor* sin) const {
  std::lock_guard<std::mutex> lock(rope_mu_);
  if (rope_key_ == std::make_tuple(f, h, w)) {
    *cos = rope_cos_;
    *sin = rope_sin_;
    return absl::OkStatus();
  }
  const int64_t pairs = config_.head_dim() / 2;
  const int64_t ph = pairs / 3, pt = pairs - 2 * ph;
  const int64_t l = f * h * w;
  Tensor c = Tensor::Zeros(DType::kF32, {l, pairs});
  Tensor s = Tensor::Zeros(DType::kF32, {l, pairs});
  std::vector<int> axis(pairs);
  std::vector<double> theta(pairs);
  for (int64_t j = 0; j < pairs; ++j) {
    axis[j] = j < pt ? 0 : (j < pt + ph ? 1 : 2);
    const int64_t base = axis[j] == 0 ? 0 : (axis[j] == 1 ? pt : pt + ph);
    const int64_t width = 2 * (axis[j] == 0 ? pt : ph);  // the axis' own rotary width D_a
    theta[j] = std::pow(10000.0, -2.0 * static_cast<double>(j - base) / width);
  }
  // ~2M cos/sin pairs at 480p: built once per latent grid, over all cores.
  ParallelFor(l, 1024, [&](int64_t t0, int64_t t1) {
    for (int64_t tok = t0; tok < t1; ++tok) {
      const int64_t pos[3] = {tok / (h * w), (tok / w) % h, tok % w};
      for (int64_t j = 0; j < pairs; ++j) {
        const double angle = static_cast<double>(pos[axis[j]]) * theta[j];
        c.data<float>()[tok * pairs + j] = static_cast<float>(std::cos(angle));
        s.data<float>()[tok * pairs + j] = static_cast<float>(std::sin(angle));
      }
    }
  });
  TV_ASSIGN_OR_RETURN(*cos, backend_.Upload(c, DType::kF32));
  TV_ASSIGN_OR_RETURN(*sin, backend_.Upload(s, DType::kF32));
  rope_key_ = std::make_tuple(f, h, w);
  rope_cos_ = *cos;
  rope_sin_ = *sin;
  return absl::OkStatus();
}

absl::StatusOr<Tensor> WanDitImpl::SelfAttention(int i, const Tensor& a, const Tensor& cos,
                                                 const Tensor& sin,
                                                 const DitForwardOptions& attention,
                                                 const TensorSink* sink) const {
  const Block& b = blocks_[i];
  const int64_t l = a.dim(0), n = config_.num_heads, d = config_.head_dim();
  // q/k RMSNorm across heads fused with the 3-D RoPE (one op each).
  TV_ASSIGN_OR_RETURN(Tensor q, b.sa_q.Apply(ops_, a));
  TV_ASSIGN_OR_RETURN(q, ops_.RmsNormRope(q, &b.sa_norm_q, config_.eps, cos, sin));
  TV_ASSIGN_OR_RETURN(Tensor k, b.sa_k.Apply(ops_, a));
  TV_ASSIGN_OR_RETURN(k, ops_.RmsNormRope(k, &b.sa_norm_k, config_.eps, cos, sin));
  TV_ASSIGN_OR_RETURN(Tensor v, b.sa_v.Apply(ops_, a));
  TV_ASSIGN_OR_RETURN(q, q.Reshape({l, n, d}));
  TV_ASSIGN_OR_RETURN(k, k.Reshape({l, n, d}));
  TV_ASSIGN_OR_RETURN(v, v.Reshape({l, n, d}));
  Tensor attn;
  switch (attention.attention) {
    case AttentionMode::kDense: {
      TV_ASSIGN_OR_RETURN(
          attn, ops_.Attention(q, k, v, nullptr, 1.0f / std::sqrt(static_cast<float>(d))));
      break;
    }
    case AttentionMode::kSla: {
      TV_ASSIGN_OR_RETURN(attn, SparseLinearAttention(i, q, k, v, attention.sla_topk, sink));
      break;
    }
    case AttentionMode::kSageSla: {
      TV_ASSIGN_OR_RETURN(attn, SageSparseLinearAttention(i, q, k, v, attention, sink));
      break;
    }
  }
  TV_ASSIGN_OR_RETURN(attn, attn.Reshape({l, n * d}));
  return b.sa_o.Apply(ops_, attn);
}

// q, k, v: [L, N, D] → [L, N, D]; the tile sizes are the loaded ones, topk is per call.
absl::StatusOr<Tensor> WanDitImpl::SparseLinearAttention(int i, const Tensor& q, const Tensor& k,
                                                         const Tensor& v, float topk,
                                                         const TensorSink* sink) const {
  const Block& b = blocks_[i];
  const int64_t l = q.dim(0), n = q.dim(1), d = q.dim(2);
  TV_ASSIGN_OR_RETURN(Tensor attn, ops_.Empty({l, n, d}));
  const int64_t nq = (l + options_.sla_block_q - 1) / options_.sla_block_q;
  const int64_t nk = (l + options_.sla_block_k - 1) / options_.sla_block_k;
  Tensor map;
  if (sink != nullptr) {
    TV_ASSIGN_OR_RETURN(map, backend_.Allocate(DType::kI8, {n, nq, nk}));
  }
  SlaOp op;
  op.q = &q;
  op.k = &k;
  op.v = &v;
  op.proj_w = &b.proj_l_w;
  op.proj_b = &b.proj_l_b;
  op.topk = topk;
  op.block_q = options_.sla_block_q;
  op.block_k = options_.sla_block_k;
  op.out = &attn;
  op.sparse_map = sink ? &map : nullptr;
  TV_RETURN_IF_ERROR(backend_.Run(op));
  if (sink != nullptr) {
    TV_ASSIGN_OR_RETURN(Tensor host, backend_.Download(map));
    TV_ASSIGN_OR_RETURN(host, host.Reshape({1, n, nq, nk}));
    (*sink)(absl::StrCat("blocks.", i, ".self_attn.sparse_map"), host);
  }
  return attn;
}

// q, k, v: [L, N, D] → [L, N, D]; block sizes and quantisation follow the SageSLA variant.
absl::StatusOr<Tensor> WanDitImpl::SageSparseLinearAttention(int i, const Tensor& q,
                                                             const Tensor& k, const Tensor& v,
                                                             const DitForwardOptions& attention,
                                                             const TensorSink* sink) const {
  const Block& b = blocks_[i];
  const int64_t l = q.dim(0), n = q.dim(1), d = q.dim(2);
  const int bq = SageSlaBlockQ(attention.sagesla), bk = SageSlaBlockK(attention.sagesla);
  TV_ASSIGN_OR_RETURN(Tensor attn, ops_.Empty({l, n, d}));
  Tensor map;
  if (sink != nullptr) {
    TV_ASSIGN_OR_RETURN(map,
                        backend_.Allocate(DType::kI8, {n, (l + bq - 1) / bq, (l + bk - 1) / bk}));
  }
  SageSlaOp op;
  op.q = &q;
  op.k = &k;
  op.v = &v;
  op.proj_w = &b.proj_l_w;
  op.proj_b = &b.proj_l_b;
  op.topk = attention.sla_topk;
  op.variant = attention.sagesla;
  op.out = &attn;
  op.sparse_map = sink ? &map : nullptr;
  TV_RETURN_IF_ERROR(backend_.Run(op));
  if (sink != nullptr) {
    TV_ASSIGN_OR_RETURN(Tensor host, backend_.Download(map));
    TV_ASSIGN_OR_RETURN(host, host.Reshape({1, map.dim(0), map.dim(1), map.dim(2)}));
    (*sink)(absl::StrCat("blocks.", i, ".self_attn.sparse_map"), host);
  }
  return attn;
}

// One transformer block (docs/model-math.md §3.5); m = modulation + e0 rows: shift/scale/gate for
// SA, then FFN.
absl::Status WanDitImpl::RunBlock(int i, Tensor& x, const Tensor& e0, const Tensor& cos,
                                  const Tensor& sin, const Context& context,
                                  const DitForwardOptions& attention,
                                  const TensorSink* sink) const {
  const Block& b = blocks_[i];
  const int64_t l = x.dim(0), n = config_.num_heads, d = config_.head_dim();
  TV_ASSIGN_OR_RETURN(Tensor m, ops_.Binary(BinaryKind::kAdd, b.modulation, e0));
  const Tensor shift_sa = m.Slice0(0, 1), scale_sa = m.Slice0(1, 2), gate_sa = m.Slice0(2, 3);
  const Tensor shift_ffn = m.Slice0(3, 4), scale_ffn = m.Slice0(4, 5), gate_ffn = m.Slice0(5, 6);
  TV_ASSIGN_OR_RETURN(Tensor a,
                      ops_.LayerNorm(x, nullptr, nullptr, &scale_sa, &shift_sa, config_.eps));
  TV_ASSIGN_OR_RETURN(Tensor sa, SelfAttention(i, a, cos, sin, attention, sink));
  TV_RETURN_IF_ERROR(ops_.GatedAdd(x, sa, &gate_sa));
  // Cross-attention: affine norm3, RMSNorm'd q, cached text K/V, ungated residual.
  TV_ASSIGN_OR_RETURN(Tensor c,
                      ops_.LayerNorm(x, &b.norm3_w, &b.norm3_b, nullptr, nullptr, config_.eps));
  TV_ASSIGN_OR_RETURN(Tensor q, b.ca_q.Apply(ops_, c));
  TV_ASSIGN_OR_RETURN(q, ops_.RmsNorm(q, &b.ca_norm_q, config_.eps));
  TV_ASSIGN_OR_RETURN(q, q.Reshape({l, n, d}));
  TV_ASSIGN_OR_RETURN(Tensor ca, ops_.Attention(q, context.k[i], context.v[i], nullptr,
                                                1.0f / std::sqrt(static_cast<float>(d))));
  TV_ASSIGN_OR_RETURN(ca, ca.Reshape({l, n * d}));
  TV_ASSIGN_OR_RETURN(ca, b.ca_o.Apply(ops_, ca));
  TV_RETURN_IF_ERROR(ops_.GatedAdd(x, ca, nullptr));
  TV_ASSIGN_OR_RETURN(Tensor f,
                      ops_.LayerNorm(x, nullptr, nullptr, &scale_ffn, &shift_ffn, config_.eps));
  TV_ASSIGN_OR_RETURN(f, b.ffn0.Apply(ops_, f, Activation::kGeluTanh));
  TV_ASSIGN_OR_RETURN(f, b.ffn2.Apply(ops_, f));
  TV_RETURN_IF_ERROR(ops_.GatedAdd(x, f, &gate_ffn));
  if (sink != nullptr) {
    TV_ASSIGN_OR_RETURN(Tensor host, backend_.Download(x));
    (*sink)(absl::StrCat("blocks.", i), host);
  }
  return absl::OkStatus();
}

// Head with e (no SiLU) modulation, then unpatchify ((q, r), c) → [C, T, H, W]
// (docs/model-math.md §3.10).
absl::StatusOr<Tensor> WanDitImpl::Head(const Tensor& x, const Tensor& e, int64_t f, int64_t h,
                                        int64_t w) const {
  TV_ASSIGN_OR_RETURN(Tensor m, ops_.Binary(BinaryKind::kAdd, head_modulation_, e));
  const Tensor shift = m.Slice0(0, 1), scale = m.Slice0(1, 2);
  TV_ASSIGN_OR_RETURN(Tensor a, ops_.LayerNorm(x, nullptr, nullptr, &scale, &shift, config_.eps));
  TV_ASSIGN_OR_RETURN(Tensor out, head_.Apply(ops_, a));
  const int64_t c = config_.out_dim;
  TV_ASSIGN_OR_RETURN(out, out.Reshape({f, h, w, 2, 2, c}));
  TV_ASSIGN_OR_RETURN(out, ops_.Permute(out, {5, 0, 1, 3, 2, 4}));  // [C, T, Hg, q, Wg, r]
  TV_ASSIGN_OR_RETURN(out, out.Reshape({c, f, 2 * h, 2 * w}));
  return backend_.Download(out);
}

absl::StatusOr<Tensor> WanDitImpl::Forward(const Tensor& x, const Tensor* y, double timestep,
                                           const Context& context,
                                           const DitForwardOptions& attention,
                                           const TensorSink* sink) const {
  TV_RETURN_IF_ERROR(CheckForwardOptions(attention));
  if (context.k.size() != blocks_.size() || context.v.size() != blocks_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("dit context: ", context.k.size(),
                                                   " cached blocks, model has ", blocks_.size()));
  }
  TV_ASSIGN_OR_RETURN(Tensor patches, Patchify(x, y));
  const int64_t f = x.dim(1), h = x.dim(2) / 2, w = x.dim(3) / 2;
  TV_ASSIGN_OR_RETURN(Tensor tokens, ops_.Linear(patches, patch_w_, &patch_b_));
  ProfileMark("dit: upload x + patch embedding");
  TV_ASSIGN_OR_RETURN(auto time, TimeEmbedding(timestep));
  Tensor cos, sin;
  TV_RETURN_IF_ERROR(RopeTables(f, h, w, &cos, &sin));
  ProfileMark("dit: time embedding + RoPE tables (cached per grid)");
  for (int i = 0; i < static_cast<int>(blocks_.size()); ++i) {
    TV_RETURN_IF_ERROR(RunBlock(i, tokens, time.second, cos, sin, context, attention, sink));
  }
  ProfileMark("dit: transformer blocks");
  TV_ASSIGN_OR_RETURN(Tensor v, Head(tokens, time.first, f, h, w));
  ProfileMark("dit: head + unpatchify + download v");
  return v;
}

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

}  // namespace

absl::StatusOr<DitConfig> DitConfig::FromJson(const Json& json) {
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
  const bool quantized = weights.Has("blocks.0.self_attn.q.int8_weight");
  auto dit = std::make_unique<WanDitImpl>(config, options, backend, quantized);
  TV_RETURN_IF_ERROR(dit->LoadAll(weights));
  return std::unique_ptr<WanDit>(std::move(dit));
}

}  // namespace turbovid::engine
