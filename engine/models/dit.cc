// Wan DiT forward pass over the Backend interface (docs/model-math.md §3): text context,
// patchify, time embedding, RoPE, the transformer blocks (dense / SLA / SageSLA self-attention)
// and the head, on one rank or on a tensor x sequence parallel group (dit_parallel.cc).
#include <cmath>
#include <mutex>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/ops.h"
#include "engine/core/parallel.h"
#include "engine/core/phase_profile.h"
#include "engine/models/dit_internal.h"

namespace turbovid::engine::dit {

namespace {
void AddLinear(const Linear& l, std::vector<Tensor>* out) {
  for (const Tensor* t : {&l.w, &l.w_int8, &l.scale, &l.w_fp8, &l.fp8_scale, &l.b}) {
    if (t->defined()) out->push_back(*t);
  }
}
void AddTensors(std::initializer_list<const Tensor*> tensors, std::vector<Tensor>* out) {
  for (const Tensor* t : tensors) {
    if (t->defined()) out->push_back(*t);
  }
}
}  // namespace

std::vector<std::vector<Tensor>> WanDitImpl::WeightGroups() const {
  std::vector<std::vector<Tensor>> groups(1 + blocks_.size());
  AddTensors({&patch_w_, &patch_b_, &head_modulation_}, &groups[0]);
  for (const Linear* l : {&text0_, &text2_, &time0_, &time2_, &time_proj_, &head_}) AddLinear(*l, &groups[0]);
  // Every block's modulation (6·E values) is in group 0: Forward adds block i+1's to e0 before
  // block i's last residual add, which it fuses with block i+1's first norm.
  for (const Block& b : blocks_) AddTensors({&b.modulation}, &groups[0]);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    std::vector<Tensor>& g = groups[1 + i];
    AddTensors({&b.sa_norm_q, &b.sa_norm_k, &b.ca_norm_q, &b.ca_norm_k, &b.norm3_w,
                &b.norm3_b, &b.proj_l_w, &b.proj_l_b},
               &g);
    for (const Linear* l : {&b.sa_q, &b.sa_k, &b.sa_v, &b.sa_o, &b.ca_q, &b.ca_k, &b.ca_v, &b.ca_o,
                            &b.ffn0, &b.ffn2}) {
      AddLinear(*l, &g);
    }
  }
  return groups;
}

absl::StatusOr<WanDit::Context> WanDitImpl::PrepareContext(
    const Tensor& context, const std::function<absl::Status(int group)>* before_group) const {
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
  if (before_group != nullptr) TV_RETURN_IF_ERROR((*before_group)(0));
  TV_ASSIGN_OR_RETURN(Tensor hidden, text0_.Apply(ops_, ctx, Activation::kGeluTanh));
  TV_ASSIGN_OR_RETURN(ctx, text2_.Apply(ops_, hidden));
  Context out;
  // Cross-attention K/V of this rank's heads only (docs/parallelism.md §2).
  const Shape lnd{config_.text_len, local_heads(), config_.head_dim()};
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    if (before_group != nullptr) TV_RETURN_IF_ERROR((*before_group)(static_cast<int>(1 + i)));
    TV_ASSIGN_OR_RETURN(Tensor k, b.ca_k.Apply(ops_, ctx));
    TV_ASSIGN_OR_RETURN(k, QkNorm(k, b.ca_norm_k, nullptr, nullptr));
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
                                                 const Tensor& sin, const TokenSplit& split,
                                                 const DitForwardOptions& attention,
                                                 const TensorSink* sink) const {
  const Block& b = blocks_[i];
  const int64_t l = a.dim(0), n = local_heads(), d = config_.head_dim();
  // q/k RMSNorm across all heads fused with the 3-D RoPE (one op each; tensor parallel: Σx²
  // all-reduced first). Then, sequence parallel, every token of a share of the heads.
  TV_ASSIGN_OR_RETURN(Tensor q, b.sa_q.Apply(ops_, a));
  TV_ASSIGN_OR_RETURN(q, QkNorm(q, b.sa_norm_q, &cos, &sin));
  TV_ASSIGN_OR_RETURN(Tensor k, b.sa_k.Apply(ops_, a));
  TV_ASSIGN_OR_RETURN(k, QkNorm(k, b.sa_norm_k, &cos, &sin));
  TV_ASSIGN_OR_RETURN(Tensor v, b.sa_v.Apply(ops_, a));
  // Heads that do not split over the sequence ranks: every rank attends with all tokens' q/k/v.
  const bool gather = sp() > 1 && !attention_sp();
  if (gather) {
    TV_ASSIGN_OR_RETURN(q, GatherTokens(q, split));
    TV_ASSIGN_OR_RETURN(k, GatherTokens(k, split));
    TV_ASSIGN_OR_RETURN(v, GatherTokens(v, split));
  }
  const int64_t lq = q.dim(0);
  TV_ASSIGN_OR_RETURN(q, q.Reshape({lq, n, d}));
  TV_ASSIGN_OR_RETURN(k, k.Reshape({lq, n, d}));
  TV_ASSIGN_OR_RETURN(v, v.Reshape({lq, n, d}));
  if (!gather) {
    TV_ASSIGN_OR_RETURN(q, SeqToHeads(q, split));
    TV_ASSIGN_OR_RETURN(k, SeqToHeads(k, split));
    TV_ASSIGN_OR_RETURN(v, SeqToHeads(v, split));
  }
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
  if (gather) {
    attn = attn.Slice0(split.first, split.last);  // this rank's tokens
  } else {
    TV_ASSIGN_OR_RETURN(attn, HeadsToSeq(attn, split));
  }
  TV_ASSIGN_OR_RETURN(attn, attn.Reshape({l, n * d}));
  return RowParallel(b.sa_o, attn);
}

// q, k, v: [L, N, D] (N: the heads of this rank) → [L, N, D]; the tile sizes are the loaded ones, topk is per call.
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
  TV_RETURN_IF_ERROR(SinkSparseMap(i, map, sink));
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
  TV_RETURN_IF_ERROR(SinkSparseMap(i, map, sink));
  return attn;
}

// One transformer block (docs/model-math.md §3.5) over this rank's tokens x [Ls, E]; m = modulation
// + e0 rows: shift/scale/gate for SA, then FFN. Each residual add is fused with the norm that
// follows it, and every activation is released as soon as its last reader is done, so the FFN
// runs beside x and its own tensors only.
absl::StatusOr<Tensor> WanDitImpl::RunBlock(int i, Tensor& x, Tensor a, const Tensor& m,
                                            const Tensor& next_scale, const Tensor& next_shift,
                                            const Tensor& cos, const Tensor& sin,
                                            const TokenSplit& split, const Context& context,
                                            const DitForwardOptions& attention,
                                            const TensorSink* sink) const {
  const Block& b = blocks_[i];
  const int64_t l = x.dim(0), n = local_heads(), d = config_.head_dim();
  const Tensor gate_sa = m.Slice0(2, 3);
  const Tensor shift_ffn = m.Slice0(3, 4), scale_ffn = m.Slice0(4, 5), gate_ffn = m.Slice0(5, 6);
  // Self-attention, then x += sa · gate with the affine norm3 of the cross-attention fused.
  Tensor c;
  {
    TV_ASSIGN_OR_RETURN(Tensor sa, SelfAttention(i, a, cos, sin, split, attention, sink));
    a = Tensor();
    TV_ASSIGN_OR_RETURN(c, ops_.GatedAddLayerNorm(x, sa, &gate_sa, &b.norm3_w, &b.norm3_b,
                                                  nullptr, nullptr, config_.eps));
  }
  // Cross-attention: RMSNorm'd q, cached text K/V, ungated residual; the FFN's norm fused.
  Tensor f;
  {
    TV_ASSIGN_OR_RETURN(Tensor q, b.ca_q.Apply(ops_, c));
    c = Tensor();
    TV_ASSIGN_OR_RETURN(q, QkNorm(q, b.ca_norm_q, nullptr, nullptr));
    TV_ASSIGN_OR_RETURN(q, q.Reshape({l, n, d}));
    TV_ASSIGN_OR_RETURN(Tensor ca, ops_.Attention(q, context.k[i], context.v[i], nullptr,
                                                  1.0f / std::sqrt(static_cast<float>(d))));
    q = Tensor();
    TV_ASSIGN_OR_RETURN(ca, ca.Reshape({l, n * d}));
    TV_ASSIGN_OR_RETURN(ca, RowParallel(b.ca_o, ca));
    TV_ASSIGN_OR_RETURN(f, ops_.GatedAddLayerNorm(x, ca, nullptr, nullptr, nullptr, &scale_ffn,
                                                  &shift_ffn, config_.eps));
  }
  TV_ASSIGN_OR_RETURN(f, b.ffn0.Apply(ops_, f, Activation::kGeluTanh));
  TV_ASSIGN_OR_RETURN(f, RowParallel(b.ffn2, f));
  TV_ASSIGN_OR_RETURN(Tensor next, ops_.GatedAddLayerNorm(x, f, &gate_ffn, nullptr, nullptr,
                                                          &next_scale, &next_shift, config_.eps));
  f = Tensor();
  if (sink != nullptr) {
    TV_ASSIGN_OR_RETURN(Tensor all, GatherTokens(x, split));
    TV_ASSIGN_OR_RETURN(Tensor host, backend_.Download(all));
    if (host.dtype() != DType::kF32) {
      TV_ASSIGN_OR_RETURN(host, ToF32(host));
    }
    (*sink)(absl::StrCat("blocks.", i), host);
  }
  return next;
}

// Head on this rank's normed tokens (the last block's fused norm with the head's e modulation, no
// SiLU), every rank's tokens gathered, then unpatchify ((q, r), c) → [C, T, H, W]
// (docs/model-math.md §3.10).
absl::StatusOr<Tensor> WanDitImpl::Head(const Tensor& a, const TokenSplit& split, int64_t f,
                                        int64_t h, int64_t w) const {
  TV_ASSIGN_OR_RETURN(Tensor mine, head_.Apply(ops_, a));
  TV_ASSIGN_OR_RETURN(Tensor out, GatherTokens(mine, split));  // [L, out_dim·4]
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
  if (attention.before_group != nullptr) TV_RETURN_IF_ERROR((*attention.before_group)(0));
  const int64_t f = x.dim(1), h = x.dim(2) / 2, w = x.dim(3) / 2;
  // Sequence parallel: this rank's contiguous share of the tokens (all of them on one rank).
  const TokenSplit split = TokenSplit::Of(f * h * w, sp(), parallel_ ? parallel_->sp_rank() : 0);
  // The residual stream x: F32 (DitOptions::residual_f32) or the compute dtype.
  Tensor x_res;
  {
    TV_ASSIGN_OR_RETURN(Tensor tokens,
                        ops_.Linear(patches.Slice0(split.first, split.last), patch_w_, &patch_b_));
    patches = Tensor();
    if (residual_dtype() == tokens.dtype()) {
      x_res = std::move(tokens);
    } else {
      TV_ASSIGN_OR_RETURN(x_res, backend_.Allocate(residual_dtype(), tokens.shape()));
      TV_RETURN_IF_ERROR(ops_.GatedAdd(x_res, tokens, nullptr));  // 0 + tokens, widened
    }
  }
  ProfileMark("dit: upload x + patch embedding");
  TV_ASSIGN_OR_RETURN(auto time, TimeEmbedding(timestep));
  Tensor all_cos, all_sin;
  TV_RETURN_IF_ERROR(RopeTables(f, h, w, &all_cos, &all_sin));
  const Tensor cos = all_cos.Slice0(split.first, split.last);
  const Tensor sin = all_sin.Slice0(split.first, split.last);
  ProfileMark("dit: time embedding + RoPE tables (cached per grid)");
  // Modulation rows of block i (modulation + e0: shift, scale, gate of SA, then of the FFN), or
  // of the head (head_modulation + e: shift, scale) after the last block.
  const int layers = static_cast<int>(blocks_.size());
  auto modulation = [&](int i) -> absl::StatusOr<Tensor> {
    if (i < layers) return ops_.Binary(BinaryKind::kAdd, blocks_[i].modulation, time.second);
    return ops_.Binary(BinaryKind::kAdd, head_modulation_, time.first);
  };
  TV_ASSIGN_OR_RETURN(Tensor m, modulation(0));
  Tensor a;
  {
    const Tensor shift = m.Slice0(0, 1), scale = m.Slice0(1, 2);
    TV_ASSIGN_OR_RETURN(a, ops_.LayerNorm(x_res, nullptr, nullptr, &scale, &shift, config_.eps));
  }
  for (int i = 0; i < layers; ++i) {
    if (attention.before_group != nullptr) TV_RETURN_IF_ERROR((*attention.before_group)(1 + i));
    TV_ASSIGN_OR_RETURN(Tensor next_m, modulation(i + 1));
    const Tensor shift = next_m.Slice0(0, 1), scale = next_m.Slice0(1, 2);
    TV_ASSIGN_OR_RETURN(a, RunBlock(i, x_res, std::move(a), m, scale, shift, cos, sin, split,
                                    context, attention, sink));
    m = std::move(next_m);
  }
  x_res = Tensor();
  ProfileMark("dit: transformer blocks");
  TV_ASSIGN_OR_RETURN(Tensor v, Head(a, split, f, h, w));
  ProfileMark("dit: head + unpatchify + download v");
  return v;
}

}  // namespace turbovid::engine::dit
