// Activation plan (see activation_plan.h): the replay primitives, the umT5 and DiT replays, the
// pipeline's stages, and the per-job arena reservation. The VAE replay is activation_plan_vae.cc.
#include "engine/pipeline/activation_plan.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "common/status_macros.h"
#include "engine/io/weights.h"
#include "engine/pipeline/activation_plan_internal.h"
#include "engine/pipeline/model_dir.h"
#include "engine/pipeline/pipeline.h"

namespace turbovid::engine {
namespace plan {

int64_t Live::Add(int64_t bytes, int64_t arena_bytes) {
  live_ += bytes;
  peak_ = std::max(peak_, live_);
  const std::optional<int64_t> offset = arena_.Allocate(arena_bytes);
  if (!offset) {
    fit_ = false;
    return -1;
  }
  extent_ = std::max(extent_, *offset + Arena::RoundUp(arena_bytes));
  return *offset;
}

void Live::Sub(int64_t bytes, int64_t offset) {
  live_ -= bytes;
  if (offset >= 0) arena_.Free(offset);
}

Buf::Buf(Live& live, int64_t bytes, int64_t arena_bytes, Shape shape) : shape_(std::move(shape)) {
  const int64_t offset = live.Add(bytes, arena_bytes);
  block_ = std::make_shared<Block>(&live, bytes, offset);  // in place: ~Block releases the bytes
}

Buf Buf::Reshape(Shape shape) const {
  Buf b = *this;
  b.shape_ = std::move(shape);
  return b;
}

Buf Sim::Alloc(Shape shape, int64_t elem_bytes) const {
  const int64_t bytes = NumElements(shape) * elem_bytes;
  const int64_t a = std::max<int64_t>(job_.alignment, 1);
  return Buf(live_, (bytes + a - 1) / a * a, bytes, std::move(shape));
}

void Sim::Scratch(std::initializer_list<int64_t> bytes) const {
  if (!job_.cuda_scratch) return;
  std::vector<Buf> held;
  for (int64_t b : bytes) held.push_back(Alloc({b}, 1));
}

void Sim::AttentionScratch(int64_t lq, int64_t lk, int64_t n, int64_t d, int64_t dv,
                           bool bias) const {
  // The RunAttentionByGemm condition (bf16 activations on CUDA).
  if (bias || n != 1 || (d <= 128 && dv <= 128) || d % 8 != 0 || dv % 8 != 0 || lk % 8 != 0 ||
      lq * lk > (int64_t{1} << 27)) {
    return;
  }
  Scratch({lq * lk * 4, lq * lk * 2, dv * lk * 2});  // S F32, P bf16, vᵀ bf16
}

void Sim::SlaScratch(int64_t l, int64_t n, int64_t d) const {
  // kernels/sla.cu MakePlan, with the K^T V chunk count bounded for any GPU up to 192 SMs and the
  // per-row key stats counted as if the fast K^T V path were off. Each part is 256-aligned.
  const int64_t nq = (l + job_.sla_block_q - 1) / job_.sla_block_q;
  const int64_t nk = (l + job_.sla_block_k - 1) / job_.sla_block_k;
  const int64_t ksel = std::min<int64_t>(nk, static_cast<int64_t>(job_.sla_topk * nk) + 1);
  const int64_t nch = std::min<int64_t>((l + 63) / 64, std::max<int64_t>(1, 2 * 192 / n) + 1);
  const int64_t parts[] = {n * nq * d * 4,      n * nk * d * 4,  n * d * 4,     n * nq * ksel * 4,
                           n * nch * d * d * 4, n * nch * d * 4, n * d * d * 2, n * d * d * 4,
                           n * d * 4,           n * l * 8};
  int64_t total = 256;  // the op aligns the workspace itself
  for (int64_t p : parts) total += Arena::RoundUp(p);
  Scratch({total});
}

void Sim::Int8Scratch(int64_t m, int64_t k) const {
  Scratch({m * k, (m + 127) / 128 * ((k + 127) / 128) * 4});
}

void Sim::Fp8Scratch(int64_t m, int64_t k) const { Scratch({m * k, m * 4}); }

// engine/models/t5.cc UmT5EncoderImpl::Encode.
void ReplayT5Encode(const Sim& sim, const T5Config& c, int64_t l) {
  const int64_t n = c.num_heads, d = c.dim_attn / c.num_heads, df = c.dim_ffn;
  auto position_bias = [&] {
    Buf rows = sim.Empty({l * l, n});
    return sim.Empty({n, l, l});  // the [L, L, N] → [N, L, L] permute
  };
  Buf x = sim.Empty({l, c.dim});
  Buf shared_bias;
  if (c.shared_pos) shared_bias = position_bias();
  for (int i = 0; i < c.num_layers; ++i) {
    Buf bias = shared_bias;
    if (!c.shared_pos) bias = position_bias();
    {  // AttentionBlock
      Buf h = sim.Empty({l, c.dim});
      Buf q = sim.Empty({l, c.dim_attn}), k = sim.Empty({l, c.dim_attn});
      Buf v = sim.Empty({l, c.dim_attn});
      Buf a = sim.Empty({l, n, d});
      sim.AttentionScratch(l, l, n, d, d, /*bias=*/true);
      Buf y = sim.Empty({l, c.dim});
    }
    {  // FfnBlock
      Buf h = sim.Empty({l, c.dim});
      Buf g = sim.Empty({l, df});
      g = sim.Empty({l, df});  // GELU
      Buf u = sim.Empty({l, df});
      u = sim.Empty({l, df});  // u ⊙ g
      Buf y = sim.Empty({l, c.dim});
    }
  }
  Buf out = sim.Empty({l, c.dim});  // final norm, then downloaded
}

namespace {

// engine/models/dit.cc Linear::Apply: [m, k] → [m, n]; an int8 linear quantises x into scratch
// and applies the activation as a separate op while its own output is still held.
Buf Linear(const Sim& sim, int64_t m, int64_t k, int64_t n, LinearQuant quant, bool act = false) {
  if (quant == LinearQuant::kNone) return sim.Empty({m, n});
  Buf y = sim.Empty({m, n});
  if (quant == LinearQuant::kInt8) {
    sim.Int8Scratch(m, k);
  } else {
    sim.Fp8Scratch(m, k);
  }
  if (!act) return y;
  return sim.Empty({m, n});
}

// WanDitImpl::RunBlock (SelfAttention inlined) on x [L, E], given the block's normed input `a`;
// returns the norm after the block (fused with its last residual add).
Buf ReplayDitBlock(const Sim& sim, const DitConfig& c, LinearQuant quant, int64_t l, Buf a) {
  const int64_t e = c.dim, n = c.num_heads, d = c.head_dim();
  Buf cn;
  {
    Buf sa;
    {  // SelfAttention
      Buf q = Linear(sim, l, e, e, quant);
      q = sim.Empty({l, e});  // q/k norm + RoPE
      Buf k = Linear(sim, l, e, e, quant);
      k = sim.Empty({l, e});
      Buf v = Linear(sim, l, e, e, quant);
      Buf attn = sim.Empty({l, n, d});
      if (sim.job().attention == AttentionMode::kDense) {
        sim.AttentionScratch(l, l, n, d, d, false);
      } else {
        sim.SlaScratch(l, n, d);
      }
      sa = Linear(sim, l, e, e, quant);
    }
    a = Buf();
    cn = sim.Empty({l, e});  // x += sa · gate, fused norm3
  }
  Buf f;
  {  // cross-attention
    Buf q = Linear(sim, l, e, e, quant);
    cn = Buf();
    q = sim.Empty({l, e});
    Buf ca = sim.Empty({l, n, d});
    sim.AttentionScratch(l, c.text_len, n, d, d, false);
    q = Buf();
    ca = Linear(sim, l, e, e, quant);
    f = sim.Empty({l, e});  // x += ca, fused FFN norm
  }
  f = Linear(sim, l, e, c.ffn_dim, quant, /*act=*/true);
  f = Linear(sim, l, c.ffn_dim, e, quant);
  return sim.Empty({l, e});  // x += f · gate, fused next norm (then f is released)
}

}  // namespace

// WanDitImpl::PrepareContext (the padded context itself is an upload, not an activation).
DitContext ReplayDitContext(const Sim& sim, const DitConfig& c, LinearQuant quant) {
  const int64_t tl = c.text_len, e = c.dim;
  Buf hidden = Linear(sim, tl, c.text_dim, e, LinearQuant::kNone);
  Buf ctx = Linear(sim, tl, e, e, LinearQuant::kNone);
  DitContext out;
  for (int i = 0; i < c.num_layers; ++i) {
    Buf k = Linear(sim, tl, e, e, quant);
    k = sim.Empty({tl, e});  // RMSNorm
    Buf v = Linear(sim, tl, e, e, quant);
    out.k.push_back(k);
    out.v.push_back(v);
  }
  return out;
}

// WanDitImpl::Forward; the latent (and y) uploads and the RoPE tables are not activations.
void ReplayDitForward(const Sim& sim, const DitConfig& c, LinearQuant quant, const DitContext& context,
                      bool residual_f32) {
  (void)context;  // held by the caller: it is live throughout
  const ActivationJob& job = sim.job();
  const int64_t t = job.latent_frames, h = job.latent_height / 2, w = job.latent_width / 2;
  const int64_t l = t * h * w, e = c.dim;
  Buf patches;
  {  // Patchify: I2V concatenates x and y, then the patch permute
    Buf in;
    if (job.i2v) in = sim.Empty({c.in_dim, t, 2 * h, 2 * w});
    patches = sim.Empty({t, h, w, c.in_dim, 2, 2}).Reshape({l, 4 * int64_t{c.in_dim}});
  }
  Buf x;
  {
    Buf tokens = sim.Empty({l, e});
    patches = Buf();
    const bool widen = residual_f32 && DTypeSize(job.dtype) != 4;
    x = widen ? sim.Alloc({l, e}, 4) : tokens;  // the residual stream
  }
  Buf time_e, time_e0;
  {  // TimeEmbedding
    Buf hidden = Linear(sim, 1, c.freq_dim, e, LinearQuant::kNone);
    time_e = Linear(sim, 1, e, e, LinearQuant::kNone);
    Buf se = sim.Empty({1, e});
    time_e0 = Linear(sim, 1, e, 6 * e, LinearQuant::kNone);
  }
  Buf m = sim.Empty({6, e});
  Buf a = sim.Empty({l, e});
  for (int i = 0; i < c.num_layers; ++i) {
    Buf next_m = sim.Empty({i + 1 < c.num_layers ? 6 : 2, e});  // the head's after the last
    a = ReplayDitBlock(sim, c, quant, l, std::move(a));
    m = next_m;
  }
  x = Buf();
  Buf out = Linear(sim, l, e, 4 * int64_t{c.out_dim}, LinearQuant::kNone);  // Head
  out = sim.Empty({c.out_dim, t, 2 * h, 2 * w});  // unpatchify permute, then downloaded
}

}  // namespace plan

int64_t ActivationPlan::peak() const {
  return std::max({text_encode, vae_encode, dit, vae_decode});
}

namespace {

using StageFn = std::function<void(const plan::Sim&)>;

struct StageRun {
  int64_t peak = 0;
  int64_t extent = 0;
  bool fit = true;
};

StageRun RunStage(const ActivationJob& job, const StageFn& stage, int64_t capacity) {
  plan::Live live(capacity);
  {
    plan::Sim sim(live, job);
    stage(sim);
  }
  return StageRun{live.peak(), live.extent(), live.fit()};
}

}  // namespace

ActivationPlan PlanActivations(const ActivationModels& models, const ActivationJob& job) {
  using plan::Sim;
  const int64_t t = job.latent_frames, h = job.latent_height, w = job.latent_width;
  std::vector<std::pair<int64_t*, StageFn>> stages;
  ActivationPlan out;
  stages.emplace_back(&out.text_encode, [&](const Sim& sim) {
    plan::ReplayT5Encode(sim, models.t5, job.text_tokens);
  });
  if (job.i2v) {
    stages.emplace_back(&out.vae_encode, [&](const Sim& sim) {
      plan::ReplayVaeEncode(sim, models.vae, 1 + 4 * (t - 1), 8 * h, 8 * w);
    });
  }
  // engine/pipeline/pipeline.cc Sample: every expert's context, then (UniPC + CFG) the negative
  // prompt's umT5 and contexts, all live through the forwards (each forward alone).
  stages.emplace_back(&out.dit, [&](const Sim& sim) {
    const plan::LinearQuant quant = models.dit_fp8         ? plan::LinearQuant::kFp8
                                    : models.dit_quantized ? plan::LinearQuant::kInt8
                                                           : plan::LinearQuant::kNone;
    std::vector<plan::DitContext> contexts;
    for (int e = 0; e < models.num_experts; ++e) {
      contexts.push_back(plan::ReplayDitContext(sim, models.dit, quant));
    }
    if (job.cfg) {
      plan::ReplayT5Encode(sim, models.t5, job.text_tokens);
      for (int e = 0; e < models.num_experts; ++e) {
        contexts.push_back(plan::ReplayDitContext(sim, models.dit, quant));
      }
    }
    plan::ReplayDitForward(sim, models.dit, quant, contexts.front(), models.dit_residual_f32);
  });
  // The decode, beside the MP4 encoder's I420 pictures (pipeline.cc Mp4Encoder: a chunk's
  // pictures on the backend until its download is collected, after the next chunk's are queued,
  // so two chunks of at most four frames; held for the whole stage, an upper bound).
  stages.emplace_back(&out.vae_decode, [&](const Sim& sim) {
    const int64_t picture = (8 * h) * (8 * w) * 3 / 2;
    plan::Buf pictures[2] = {sim.Alloc({4, picture}, 1), sim.Alloc({4, picture}, 1)};
    plan::ReplayVaeDecode(sim, models.vae, t, h, w);
  });
  int64_t extent = 0;
  for (auto& [field, stage] : stages) {
    const StageRun run = RunStage(job, stage, plan::Live::kUnbounded);
    *field = run.peak;
    extent = std::max(extent, run.extent);
  }
  // The unbounded replay's extent, checked (and grown page by page if need be) with the real
  // capacity: a smaller top block can change best-fit choices.
  constexpr int64_t kPage = int64_t{2} << 20;
  int64_t capacity = std::max(extent, out.peak() + out.peak() / 32);
  capacity = std::max<int64_t>(kPage, (capacity + kPage - 1) / kPage * kPage);
  for (int tries = 0; tries < 64; ++tries) {
    bool fit = true;
    for (auto& [field, stage] : stages) fit = fit && RunStage(job, stage, capacity).fit;
    if (fit) break;
    capacity += std::max(kPage, capacity / 64 / kPage * kPage);
  }
  out.arena = capacity;
  return out;
}

absl::StatusOr<ActivationModels> PlannedModels(const ModelDir& dir, const WanDit& dit) {
  ActivationModels models;
  // The umT5 sizes as TextEncoder::Load reads them: turbovid.json "t5", else umT5-XXL.
  if (auto manifest = io::ReadJsonFile(dir.path + "/turbovid.json"); manifest.ok()) {
    if (const Json* t5 = manifest->Find("t5")) {
      TV_ASSIGN_OR_RETURN(models.t5, T5Config::FromJson(*t5));
    }
  }
  models.dit = dit.config();
  models.dit_quantized = dit.quantized();
  models.dit_fp8 = dit.fp8();
  models.dit_residual_f32 = dit.residual_dtype() == DType::kF32;
  models.num_experts = static_cast<int>(dir.dit_dirs.size());
  models.vae = dir.vae;
  return models;
}

ActivationJob PlannedJob(const ModelDir& dir, const GenerateRequest& request, const Backend& backend) {
  ActivationJob job;
  job.i2v = dir.i2v;
  // I2V takes its size from the image (AdaptiveSize keeps the area, rounding each side to 16
  // pixels), unknown before the image is decoded: plan for one more 16-pixel step per side.
  const int pad = dir.i2v ? 16 : 0;
  job.latent_frames = (request.frames - 1) / 4 + 1;
  job.latent_height = (request.height + pad) / 8;
  job.latent_width = (request.width + pad) / 8;
  job.cfg = request.sampler == SamplerKind::kUniPc;
  job.attention = request.attention;
  job.sla_topk = request.sla_topk;
  job.dtype = backend.compute_dtype();
  job.cuda_scratch = backend.device() == Device::kCuda;
  return job;
}

absl::Status ReserveJobActivations(Backend& backend, const ModelDir& dir, const WanDit& dit,
                                   const GenerateRequest& request) {
  if (backend.device() == Device::kCpu) return absl::OkStatus();
  TV_ASSIGN_OR_RETURN(ActivationModels models, PlannedModels(dir, dit));
  return backend.ReserveActivations(PlanActivations(models, PlannedJob(dir, request, backend)).arena);
}

}  // namespace turbovid::engine
