// umT5 encoder over the Backend interface: token embedding, per-layer relative-bias attention
// without scaling, gated tanh-GELU FFN, T5 RMS norms. Math and keys: docs/model-math.md §4.
#include "engine/models/t5.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/ops.h"

namespace turbovid::engine {
namespace {

// Reads an optional positive integer field; errors name the key.
absl::Status ReadInt(const Json& json, std::string_view key, int* out) {
  const Json* v = json.Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_integer() || v->integer() <= 0 || v->integer() > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("t5 config: ", std::string(key), " must be a positive integer"));
  }
  *out = static_cast<int>(v->integer());
  return absl::OkStatus();
}

absl::Status Validate(const T5Config& c) {
  if (c.vocab <= 0 || c.dim <= 0 || c.dim_attn <= 0 || c.dim_ffn <= 0 || c.num_heads <= 0 ||
      c.num_layers <= 0) {
    return absl::InvalidArgumentError("t5 config: sizes must be positive");
  }
  if (c.dim_attn % c.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "t5 config: dim_attn ", c.dim_attn, " is not a multiple of num_heads ", c.num_heads));
  }
  // Bidirectional buckets: half per direction, half of that exact, the rest logarithmic.
  if (c.num_buckets < 4 || c.num_buckets % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("t5 config: num_buckets ", c.num_buckets, " must be even and >= 4"));
  }
  if (c.max_distance <= c.num_buckets / 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("t5 config: max_distance ", c.max_distance, " must exceed num_buckets / 4"));
  }
  if (!(c.eps > 0)) return absl::InvalidArgumentError("t5 config: eps must be positive");
  return absl::OkStatus();
}

// Prefixes an error with the module path it came from (blocks.3.attn: ...).
absl::Status Annotate(const absl::Status& s, const std::string& where) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
}

struct T5Block {
  Tensor norm1;  // [dim]
  Tensor q;      // [dim_attn, dim]
  Tensor k;      // [dim_attn, dim]
  Tensor v;      // [dim_attn, dim]
  Tensor o;      // [dim, dim_attn]
  Tensor norm2;  // [dim]
  Tensor gate;   // [dim_ffn, dim] (GELU branch)
  Tensor fc1;    // [dim_ffn, dim] (linear branch)
  Tensor fc2;    // [dim, dim_ffn]
  Tensor pos;    // [num_buckets, N] (per layer; empty when shared_pos)
};

class UmT5EncoderImpl final : public UmT5Encoder {
 public:
  UmT5EncoderImpl(const T5Config& config, Backend& backend) : config_(config), backend_(backend) {}

  absl::Status LoadWeights(io::WeightSet& w);
  absl::StatusOr<Tensor> Encode(const std::vector<int64_t>& ids) const override;
  const T5Config& config() const override { return config_; }

 private:
  // table: [num_buckets, N]; buckets: [L·L] I64 host → [N, L, L] compute dtype.
  absl::StatusOr<Tensor> PositionBias(const Tensor& table, const Tensor& buckets, int64_t l) const;
  // bias: [N, L, L]; x: [L, dim] updated in place.
  absl::Status AttentionBlock(const T5Block& b, const Tensor& bias, Tensor& x) const;
  // x: [L, dim] updated in place.
  absl::Status FfnBlock(const T5Block& b, Tensor& x) const;

  T5Config config_;
  Backend& backend_;
  Tensor embedding_;   // [vocab, dim]
  Tensor shared_pos_;  // [num_buckets, N] when shared_pos
  Tensor norm_;        // [dim]
  std::vector<T5Block> blocks_;
};

absl::Status UmT5EncoderImpl::LoadWeights(io::WeightSet& w) {
  const DType dt = backend_.compute_dtype();
  const int64_t dim = config_.dim, da = config_.dim_attn, df = config_.dim_ffn;
  const int64_t nb = config_.num_buckets, n = config_.num_heads;
  TV_ASSIGN_OR_RETURN(embedding_,
                      w.Take("token_embedding.weight", {config_.vocab, dim}, backend_, dt));
  TV_ASSIGN_OR_RETURN(norm_, w.Take("norm.weight", {dim}, backend_, dt));
  if (config_.shared_pos) {
    TV_ASSIGN_OR_RETURN(shared_pos_,
                        w.Take("pos_embedding.embedding.weight", {nb, n}, backend_, dt));
  }
  blocks_.resize(config_.num_layers);
  for (int i = 0; i < config_.num_layers; ++i) {
    const std::string p = absl::StrCat("blocks.", i, ".");
    T5Block& b = blocks_[i];
    TV_ASSIGN_OR_RETURN(b.norm1, w.Take(p + "norm1.weight", {dim}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.q, w.Take(p + "attn.q.weight", {da, dim}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.k, w.Take(p + "attn.k.weight", {da, dim}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.v, w.Take(p + "attn.v.weight", {da, dim}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.o, w.Take(p + "attn.o.weight", {dim, da}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.norm2, w.Take(p + "norm2.weight", {dim}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.gate, w.Take(p + "ffn.gate.0.weight", {df, dim}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.fc1, w.Take(p + "ffn.fc1.weight", {df, dim}, backend_, dt));
    TV_ASSIGN_OR_RETURN(b.fc2, w.Take(p + "ffn.fc2.weight", {dim, df}, backend_, dt));
    if (!config_.shared_pos) {
      TV_ASSIGN_OR_RETURN(b.pos,
                          w.Take(p + "pos_embedding.embedding.weight", {nb, n}, backend_, dt));
    }
  }
  return w.CheckAllUsed();
}

// bias[h, q, k] = table[bucket(k - q), h]: a gather of table rows by the host-computed bucket of
// every (q, k) pair, then [L, L, N] -> [N, L, L].
absl::StatusOr<Tensor> UmT5EncoderImpl::PositionBias(const Tensor& table, const Tensor& buckets,
                                                     int64_t l) const {
  Ops ops(backend_);
  TV_ASSIGN_OR_RETURN(Tensor rows, ops.Empty({l * l, config_.num_heads}));
  TV_RETURN_IF_ERROR(backend_.Run(EmbeddingOp{&table, &buckets, &rows}));
  TV_ASSIGN_OR_RETURN(Tensor lln, rows.Reshape({l, l, config_.num_heads}));
  return ops.Permute(lln, {2, 0, 1});
}

// x += o(softmax(q·kᵀ + bias)·v), q/k/v from T5Norm(x; norm1); no 1/sqrt(D) scaling
// (docs/model-math.md §4.1).
absl::Status UmT5EncoderImpl::AttentionBlock(const T5Block& b, const Tensor& bias,
                                             Tensor& x) const {
  Ops ops(backend_);
  const int64_t l = x.dim(0), n = config_.num_heads, d = config_.dim_attn / config_.num_heads;
  TV_ASSIGN_OR_RETURN(Tensor h, ops.RmsNorm(x, &b.norm1, config_.eps));
  TV_ASSIGN_OR_RETURN(Tensor q, ops.Linear(h, b.q, nullptr));
  TV_ASSIGN_OR_RETURN(Tensor k, ops.Linear(h, b.k, nullptr));
  TV_ASSIGN_OR_RETURN(Tensor v, ops.Linear(h, b.v, nullptr));
  TV_ASSIGN_OR_RETURN(q, q.Reshape({l, n, d}));
  TV_ASSIGN_OR_RETURN(k, k.Reshape({l, n, d}));
  TV_ASSIGN_OR_RETURN(v, v.Reshape({l, n, d}));
  TV_ASSIGN_OR_RETURN(Tensor a, ops.Attention(q, k, v, &bias, 1.0f));
  TV_ASSIGN_OR_RETURN(a, a.Reshape({l, n * d}));
  TV_ASSIGN_OR_RETURN(Tensor y, ops.Linear(a, b.o, nullptr));
  return ops.GatedAdd(x, y, nullptr);
}

// x += fc2(fc1(h) ⊙ gelu_tanh(gate(h))), h = T5Norm(x; norm2).
absl::Status UmT5EncoderImpl::FfnBlock(const T5Block& b, Tensor& x) const {
  Ops ops(backend_);
  TV_ASSIGN_OR_RETURN(Tensor h, ops.RmsNorm(x, &b.norm2, config_.eps));
  TV_ASSIGN_OR_RETURN(Tensor g, ops.Linear(h, b.gate, nullptr));
  TV_ASSIGN_OR_RETURN(g, ops.Unary(UnaryKind::kGeluTanh, g));
  TV_ASSIGN_OR_RETURN(Tensor u, ops.Linear(h, b.fc1, nullptr));
  TV_ASSIGN_OR_RETURN(u, ops.Binary(BinaryKind::kMul, u, g));
  TV_ASSIGN_OR_RETURN(Tensor y, ops.Linear(u, b.fc2, nullptr));
  return ops.GatedAdd(x, y, nullptr);
}

absl::StatusOr<Tensor> UmT5EncoderImpl::Encode(const std::vector<int64_t>& ids) const {
  const int64_t l = static_cast<int64_t>(ids.size());
  if (l == 0) return absl::InvalidArgumentError("t5: ids is empty");
  Tensor ids_host = Tensor::Zeros(DType::kI64, {l});
  for (int64_t i = 0; i < l; ++i) {
    if (ids[i] < 0 || ids[i] >= config_.vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("t5: ids[", i, "] = ", ids[i], " outside [0, ", config_.vocab, ")"));
    }
    ids_host.data<int64_t>()[i] = ids[i];
  }
  // Same buckets for every layer: row q, column k holds bucket(k - q).
  Tensor buckets = Tensor::Zeros(DType::kI64, {l * l});
  for (int64_t q = 0; q < l; ++q) {
    for (int64_t k = 0; k < l; ++k) {
      buckets.data<int64_t>()[q * l + k] =
          T5RelativeBucket(k - q, config_.num_buckets, config_.max_distance);
    }
  }
  Ops ops(backend_);
  TV_ASSIGN_OR_RETURN(Tensor x, ops.Empty({l, config_.dim}));
  TV_RETURN_IF_ERROR(
      Annotate(backend_.Run(EmbeddingOp{&embedding_, &ids_host, &x}), "token_embedding"));
  Tensor shared_bias;
  if (config_.shared_pos) {
    TV_ASSIGN_OR_RETURN(shared_bias, PositionBias(shared_pos_, buckets, l));
  }
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const std::string p = absl::StrCat("blocks.", i);
    Tensor bias = shared_bias;
    if (!config_.shared_pos) {
      auto layer_bias = PositionBias(blocks_[i].pos, buckets, l);
      TV_RETURN_IF_ERROR(Annotate(layer_bias.status(), p + ".pos_embedding"));
      bias = *std::move(layer_bias);
    }
    TV_RETURN_IF_ERROR(Annotate(AttentionBlock(blocks_[i], bias, x), p + ".attn"));
    TV_RETURN_IF_ERROR(Annotate(FfnBlock(blocks_[i], x), p + ".ffn"));
  }
  auto out = ops.RmsNorm(x, &norm_, config_.eps);
  TV_RETURN_IF_ERROR(Annotate(out.status(), "norm"));
  return backend_.Download(*out);
}

}  // namespace

int T5RelativeBucket(int64_t rel, int num_buckets, int max_distance) {
  const int half = num_buckets / 2;
  const int max_exact = half / 2;
  int bucket = rel > 0 ? half : 0;
  const int64_t a = rel < 0 ? -rel : rel;
  if (a < max_exact) return bucket + static_cast<int>(a);
  // fp32 like the reference (torch float tensor ops with Python-float scalars rounded to fp32), so
  // the truncation at the exact powers a = max_exact·(max_distance/max_exact)^(j/(half-max_exact))
  // falls on the same side.
  const float ratio = static_cast<float>(a) / static_cast<float>(max_exact);
  const float denom = static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact));
  const float scaled = std::log(ratio) / denom * static_cast<float>(half - max_exact);
  const int large = std::min(half - 1, max_exact + static_cast<int>(scaled));
  return bucket + large;
}

absl::StatusOr<T5Config> T5Config::FromJson(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("t5 config: not a JSON object");
  T5Config c;
  TV_RETURN_IF_ERROR(ReadInt(json, "vocab", &c.vocab));
  TV_RETURN_IF_ERROR(ReadInt(json, "dim", &c.dim));
  TV_RETURN_IF_ERROR(ReadInt(json, "dim_attn", &c.dim_attn));
  TV_RETURN_IF_ERROR(ReadInt(json, "dim_ffn", &c.dim_ffn));
  TV_RETURN_IF_ERROR(ReadInt(json, "num_heads", &c.num_heads));
  TV_RETURN_IF_ERROR(ReadInt(json, "num_layers", &c.num_layers));
  TV_RETURN_IF_ERROR(ReadInt(json, "num_buckets", &c.num_buckets));
  TV_RETURN_IF_ERROR(ReadInt(json, "max_distance", &c.max_distance));
  if (const Json* sp = json.Find("shared_pos"); sp != nullptr) {
    if (!sp->is_bool()) return absl::InvalidArgumentError("t5 config: shared_pos must be a bool");
    c.shared_pos = sp->boolean();
  }
  if (const Json* eps = json.Find("eps"); eps != nullptr) {
    if (!eps->is_number()) return absl::InvalidArgumentError("t5 config: eps must be a number");
    c.eps = static_cast<float>(eps->number());
  }
  TV_RETURN_IF_ERROR(Validate(c));
  return c;
}

absl::StatusOr<std::unique_ptr<UmT5Encoder>> UmT5Encoder::Load(const T5Config& config,
                                                               io::WeightSet& weights,
                                                               Backend& backend) {
  TV_RETURN_IF_ERROR(Validate(config));
  auto model = std::make_unique<UmT5EncoderImpl>(config, backend);
  TV_RETURN_IF_ERROR(model->LoadWeights(weights));
  return std::unique_ptr<UmT5Encoder>(std::move(model));
}

}  // namespace turbovid::engine
