// umT5 encoder: relative buckets against docs/model-math.md §4.3, config parsing, weight checks,
// and the forward pass against a naive host implementation of the same math.
#include "engine/models/t5.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;

T5Config TinyConfig() {
  T5Config c;
  c.vocab = 40;
  c.dim = 16;
  c.dim_attn = 16;
  c.dim_ffn = 24;
  c.num_heads = 2;
  c.num_layers = 2;
  return c;
}

Tensor Random(Shape shape, uint64_t seed, float scale) {
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  uint64_t s = seed * 2654435761ULL + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    const float u = static_cast<float>((s >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
    t.data<float>()[i] = RoundToBf16(u * scale);
  }
  return t;
}

std::map<std::string, Tensor> TinyWeights(const T5Config& c) {
  std::map<std::string, Tensor> w;
  uint64_t seed = 1;
  auto add = [&](const std::string& name, Shape shape, float scale) {
    w[name] = Random(std::move(shape), seed++, scale);
  };
  add("token_embedding.weight", {c.vocab, c.dim}, 2.f);
  add("norm.weight", {c.dim}, 2.f);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("blocks.", i, ".");
    add(p + "norm1.weight", {c.dim}, 2.f);
    for (const char* m : {"q", "k", "v"})
      add(p + "attn." + m + ".weight", {c.dim_attn, c.dim}, 0.5f);
    add(p + "attn.o.weight", {c.dim, c.dim_attn}, 0.5f);
    add(p + "norm2.weight", {c.dim}, 2.f);
    add(p + "ffn.gate.0.weight", {c.dim_ffn, c.dim}, 0.5f);
    add(p + "ffn.fc1.weight", {c.dim_ffn, c.dim}, 0.5f);
    add(p + "ffn.fc2.weight", {c.dim, c.dim_ffn}, 0.5f);
    add(p + "pos_embedding.embedding.weight", {c.num_buckets, c.num_heads}, 4.f);
  }
  return w;
}

io::WeightSet ToWeightSet(const std::map<std::string, Tensor>& tensors) {
  io::WeightSet ws;
  ws.set_origin("tiny.safetensors");
  for (const auto& [name, t] : tensors) EXPECT_TRUE(ws.Add(name, t, "tiny.safetensors").ok());
  return ws;
}

TEST(T5Bucket, MatchesSpecFormula) {
  // rel = k - q; keys after the query use the upper half (16 + ...).
  EXPECT_EQ(T5RelativeBucket(0, 32, 128), 0);
  EXPECT_EQ(T5RelativeBucket(-1, 32, 128), 1);
  EXPECT_EQ(T5RelativeBucket(1, 32, 128), 17);
  EXPECT_EQ(T5RelativeBucket(-7, 32, 128), 7);
  EXPECT_EQ(T5RelativeBucket(7, 32, 128), 23);
  EXPECT_EQ(T5RelativeBucket(-8, 32, 128), 8);    // 8 + floor(ln(1) ...) = 8
  EXPECT_EQ(T5RelativeBucket(-11, 32, 128), 8);   // ln(11/8)/ln16·8 = 0.92
  EXPECT_EQ(T5RelativeBucket(-12, 32, 128), 9);   // 1.17
  EXPECT_EQ(T5RelativeBucket(-15, 32, 128), 9);   // 1.81
  EXPECT_EQ(T5RelativeBucket(-16, 32, 128), 10);  // exactly 2 in fp32
  EXPECT_EQ(T5RelativeBucket(32, 32, 128), 28);   // 16 + 8 + 4
  EXPECT_EQ(T5RelativeBucket(-64, 32, 128), 14);
  EXPECT_EQ(T5RelativeBucket(-127, 32, 128), 15);  // 7.98
  EXPECT_EQ(T5RelativeBucket(-128, 32, 128), 15);
  EXPECT_EQ(T5RelativeBucket(1000, 32, 128), 31);
  for (int64_t r = 1; r < 600; ++r) {
    const int neg = T5RelativeBucket(-r, 32, 128);
    EXPECT_EQ(T5RelativeBucket(r, 32, 128), 16 + neg) << r;
    EXPECT_LE(neg, 15);
    EXPECT_GE(neg, T5RelativeBucket(-(r - 1), 32, 128)) << r;  // monotone in distance
  }
}

TEST(T5Config, FromJsonReadsFieldsAndRejectsBadOnes) {
  auto json = Json::Parse(R"({"vocab": 512, "dim": 64, "dim_attn": 64, "dim_ffn": 128,
      "num_heads": 4, "num_layers": 2, "num_buckets": 32, "shared_pos": false, "dropout": 0.0})");
  ASSERT_TRUE(json.ok());
  auto c = T5Config::FromJson(*json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab, 512);
  EXPECT_EQ(c->dim_ffn, 128);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->max_distance, 128);
  EXPECT_FALSE(c->shared_pos);
  auto defaults = T5Config::FromJson(*Json::Parse("{}"));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->dim, 4096);
  EXPECT_EQ(defaults->num_layers, 24);
  EXPECT_THAT(T5Config::FromJson(*Json::Parse(R"({"dim": -3})")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(T5Config::FromJson(*Json::Parse(R"({"dim_attn": 60, "num_heads": 7})")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(T5Config::FromJson(*Json::Parse(R"({"num_buckets": "32"})")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(T5Encoder, MissingTensorIsInvalidArgumentNamingIt) {
  auto backend = MakeCpuBackend();
  auto tensors = TinyWeights(TinyConfig());
  tensors.erase("blocks.1.attn.k.weight");
  io::WeightSet ws = ToWeightSet(tensors);
  auto m = UmT5Encoder::Load(TinyConfig(), ws, *backend);
  EXPECT_THAT(m.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("blocks.1.attn.k.weight"));
}

TEST(T5Encoder, MisshapenTensorIsInvalidArgumentNamingIt) {
  auto backend = MakeCpuBackend();
  auto tensors = TinyWeights(TinyConfig());
  tensors["blocks.0.pos_embedding.embedding.weight"] = Random({32, 3}, 99, 1.f);
  io::WeightSet ws = ToWeightSet(tensors);
  auto m = UmT5Encoder::Load(TinyConfig(), ws, *backend);
  EXPECT_THAT(m.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(m.status().message()),
              HasSubstr("blocks.0.pos_embedding.embedding.weight"));
}

TEST(T5Encoder, ExtraTensorIsInvalidArgumentNamingIt) {
  auto backend = MakeCpuBackend();
  auto tensors = TinyWeights(TinyConfig());
  tensors["blocks.2.norm1.weight"] = Random({16}, 98, 1.f);
  io::WeightSet ws = ToWeightSet(tensors);
  auto m = UmT5Encoder::Load(TinyConfig(), ws, *backend);
  EXPECT_THAT(m.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("blocks.2.norm1.weight"));
}

// softmax(q·kᵀ + bias)·v per head in double; q, k, v: [L, dim_attn]; table: [num_buckets, N].
std::vector<double> ReferenceAttention(const T5Config& c, const std::vector<double>& q,
                                       const std::vector<double>& k, const std::vector<double>& v,
                                       const float* table, int64_t l) {
  const int64_t n = c.num_heads, d = c.dim_attn / n, da = c.dim_attn;
  std::vector<double> a(l * da, 0.0);
  for (int64_t hd = 0; hd < n; ++hd) {
    for (int64_t i = 0; i < l; ++i) {
      std::vector<double> s(l);
      double mx = -1e300, den = 0;
      for (int64_t j = 0; j < l; ++j) {
        s[j] = table[T5RelativeBucket(j - i, c.num_buckets, c.max_distance) * n + hd];
        for (int64_t t = 0; t < d; ++t) s[j] += q[i * da + hd * d + t] * k[j * da + hd * d + t];
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j < l; ++j) den += (s[j] = std::exp(s[j] - mx));
      for (int64_t j = 0; j < l; ++j)
        for (int64_t t = 0; t < d; ++t)
          a[i * da + hd * d + t] += s[j] / den * v[j * da + hd * d + t];
    }
  }
  return a;
}

// Naive double-precision host forward of docs/model-math.md §4.3 over the same weights.
std::vector<double> ReferenceForward(const T5Config& c, const std::map<std::string, Tensor>& w,
                                     const std::vector<int64_t>& ids) {
  const int64_t l = static_cast<int64_t>(ids.size()), e = c.dim;
  auto at = [&](const std::string& k) { return w.at(k).data<float>(); };
  auto norm = [&](const std::vector<double>& x, const float* g) {
    std::vector<double> y(x.size());
    for (int64_t i = 0; i < l; ++i) {
      double ss = 0;
      for (int64_t j = 0; j < e; ++j) ss += x[i * e + j] * x[i * e + j];
      const double inv = 1.0 / std::sqrt(ss / e + c.eps);
      for (int64_t j = 0; j < e; ++j) y[i * e + j] = x[i * e + j] * inv * g[j];
    }
    return y;
  };
  auto linear = [&](const std::vector<double>& x, const float* wt, int64_t in, int64_t out) {
    std::vector<double> y(l * out, 0.0);
    for (int64_t i = 0; i < l; ++i)
      for (int64_t o = 0; o < out; ++o)
        for (int64_t k = 0; k < in; ++k) y[i * out + o] += x[i * in + k] * wt[o * in + k];
    return y;
  };
  std::vector<double> x(l * e);
  for (int64_t i = 0; i < l; ++i)
    for (int64_t j = 0; j < e; ++j) x[i * e + j] = at("token_embedding.weight")[ids[i] * e + j];
  for (int b = 0; b < c.num_layers; ++b) {
    const std::string p = absl::StrCat("blocks.", b, ".");
    auto h = norm(x, at(p + "norm1.weight"));
    auto q = linear(h, at(p + "attn.q.weight"), e, c.dim_attn);
    auto k = linear(h, at(p + "attn.k.weight"), e, c.dim_attn);
    auto v = linear(h, at(p + "attn.v.weight"), e, c.dim_attn);
    auto a = ReferenceAttention(c, q, k, v, at(p + "pos_embedding.embedding.weight"), l);
    auto o = linear(a, at(p + "attn.o.weight"), c.dim_attn, e);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    h = norm(x, at(p + "norm2.weight"));
    auto g = linear(h, at(p + "ffn.gate.0.weight"), e, c.dim_ffn);
    auto u = linear(h, at(p + "ffn.fc1.weight"), e, c.dim_ffn);
    for (size_t i = 0; i < g.size(); ++i) {
      const double gv = g[i];
      u[i] *= 0.5 * gv * (1 + std::tanh(0.7978845608028654 * (gv + 0.044715 * gv * gv * gv)));
    }
    auto f = linear(u, at(p + "ffn.fc2.weight"), c.dim_ffn, e);
    for (size_t i = 0; i < x.size(); ++i) x[i] += f[i];
  }
  return norm(x, at("norm.weight"));
}

TEST(T5Encoder, ForwardMatchesNaiveReference) {
  auto backend = MakeCpuBackend();
  const T5Config c = TinyConfig();
  auto tensors = TinyWeights(c);
  io::WeightSet ws = ToWeightSet(tensors);
  auto m = UmT5Encoder::Load(c, ws, *backend);
  ASSERT_TRUE(m.ok()) << m.status();
  // 21 tokens reach the logarithmic buckets (distance ≥ 8).
  std::vector<int64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back((i * 7 + 3) % c.vocab);
  ids.push_back(1);
  auto out = (*m)->Encode(ids);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->shape(), (Shape{21, c.dim}));
  ASSERT_EQ(out->dtype(), DType::kF32);
  const std::vector<double> want = ReferenceForward(c, tensors, ids);
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += std::pow(out->data<float>()[i] - want[i], 2);
    den += want[i] * want[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-5);
  EXPECT_THAT((*m)->Encode({}).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*m)->Encode({3, c.vocab}).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace turbovid::engine
