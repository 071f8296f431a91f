// Wan2.1 VAE on the CPU backend with tiny random weights: loading checks, output shapes, and
// causality of the streamed decoder (a prefix of the latent decodes to a prefix of the video).
#include "engine/models/vae.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/status_matchers.h"
#include "engine/comm/in_process.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

using ::turbovid::common::testing::StatusIs;

using Named = std::vector<std::pair<std::string, Shape>>;

void AddConv(Named& out, const std::string& name, int64_t cout, Shape in_kernel) {
  Shape w{cout};
  w.insert(w.end(), in_kernel.begin(), in_kernel.end());
  out.push_back({name + ".weight", w});
  out.push_back({name + ".bias", {cout}});
}

void AddRes(Named& out, const std::string& name, int64_t in, int64_t o) {
  out.push_back({name + ".residual.0.gamma", {in, 1, 1, 1}});
  AddConv(out, name + ".residual.2", o, {in, 3, 3, 3});
  out.push_back({name + ".residual.3.gamma", {o, 1, 1, 1}});
  AddConv(out, name + ".residual.6", o, {o, 3, 3, 3});
  if (in != o) AddConv(out, name + ".shortcut", o, {in, 1, 1, 1});
}

void AddMiddle(Named& out, const std::string& p, int64_t c) {
  AddRes(out, p + ".middle.0", c, c);
  out.push_back({p + ".middle.1.norm.gamma", {c, 1, 1}});
  AddConv(out, p + ".middle.1.to_qkv", 3 * c, {c, 1, 1});
  AddConv(out, p + ".middle.1.proj", c, {c, 1, 1});
  AddRes(out, p + ".middle.2", c, c);
}

// Names and shapes of a full Wan2.1 VAE checkpoint for `cfg` (docs/model-math.md §5.5, §5.6).
Named Checkpoint(const VaeConfig& cfg) {
  Named out;
  const int64_t d = cfg.dim, z = cfg.z_dim;
  std::vector<int64_t> e{d};
  for (int m : cfg.dim_mult) e.push_back(d * m);
  AddConv(out, "encoder.conv1", e[0], {3, 3, 3, 3});
  int idx = 0;
  for (size_t i = 0; i < cfg.dim_mult.size(); ++i) {
    for (int r = 0; r < cfg.num_res_blocks; ++r)
      AddRes(out, absl::StrCat("encoder.downsamples.", idx++), r ? e[i + 1] : e[i], e[i + 1]);
    if (i + 1 == cfg.dim_mult.size()) break;
    const std::string n = absl::StrCat("encoder.downsamples.", idx++);
    AddConv(out, n + ".resample.1", e[i + 1], {e[i + 1], 3, 3});
    if (cfg.temporal_downsample[i]) AddConv(out, n + ".time_conv", e[i + 1], {e[i + 1], 3, 1, 1});
  }
  AddMiddle(out, "encoder", e.back());
  out.push_back({"encoder.head.0.gamma", {e.back(), 1, 1, 1}});
  AddConv(out, "encoder.head.2", 2 * z, {e.back(), 3, 3, 3});
  AddConv(out, "conv1", 2 * z, {2 * z, 1, 1, 1});
  AddConv(out, "conv2", z, {z, 1, 1, 1});
  std::vector<int64_t> dd{d * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it) dd.push_back(d * *it);
  AddConv(out, "decoder.conv1", dd[0], {z, 3, 3, 3});
  AddMiddle(out, "decoder", dd[0]);
  idx = 0;
  for (size_t i = 0; i < cfg.dim_mult.size(); ++i) {
    int64_t in = i == 0 ? dd[0] : dd[i] / 2;
    for (int r = 0; r <= cfg.num_res_blocks; ++r, in = dd[i + 1])
      AddRes(out, absl::StrCat("decoder.upsamples.", idx++), in, dd[i + 1]);
    if (i + 1 == cfg.dim_mult.size()) break;
    const std::string n = absl::StrCat("decoder.upsamples.", idx++);
    AddConv(out, n + ".resample.1", dd[i + 1] / 2, {dd[i + 1], 3, 3});
    if (cfg.temporal_downsample[cfg.dim_mult.size() - 2 - i])
      AddConv(out, n + ".time_conv", 2 * dd[i + 1], {dd[i + 1], 3, 1, 1});
  }
  out.push_back({"decoder.head.0.gamma", {dd.back(), 1, 1, 1}});
  AddConv(out, "decoder.head.2", 3, {dd.back(), 3, 3, 3});
  return out;
}

VaeConfig TinyConfig() {
  auto json = Json::Parse(R"({"dim": 4, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                              "temperal_downsample": [false, true, true]})");
  auto cfg = VaeConfig::FromJson(*json);
  return *cfg;
}

// Random weights scaled by 1/√fan_in (gammas near 1) so activations stay O(1). `decoder_only`
// leaves the encoder's tensors out (Load then needs encoder = false).
io::WeightSet TinyWeights(const VaeConfig& cfg, const std::string& misshapen = "",
                          bool decoder_only = false) {
  io::WeightSet ws;
  ws.set_origin("tiny_vae");
  std::mt19937 rng(42);
  for (auto [name, shape] : Checkpoint(cfg)) {
    if (decoder_only && !name.starts_with("decoder.") && !name.starts_with("conv2.")) continue;
    if (name == misshapen) shape[0] += 1;
    Tensor t = Tensor::Zeros(DType::kF32, shape);
    const bool gamma = name.ends_with(".gamma");
    const double fan_in = shape.size() > 1 ? double(t.numel() / shape[0]) : 1.0;
    std::normal_distribution<float> dist(
        gamma ? 1.f : 0.f, gamma ? 0.1f : static_cast<float>(1.0 / std::sqrt(fan_in)));
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data<float>()[i] = name.ends_with(".bias") ? 0.01f * dist(rng) : dist(rng);
    EXPECT_TRUE(ws.Add(name, t, "tiny_vae.safetensors").ok()) << name;
  }
  return ws;
}

Tensor RandomTensor(Shape shape, uint32_t seed) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

TEST(WanVae, ConfigDefaultsToOfficialStatistics) {
  VaeConfig cfg = TinyConfig();
  ASSERT_EQ(cfg.mean.size(), 16u);
  EXPECT_FLOAT_EQ(cfg.mean[0], -0.7571f);
  EXPECT_FLOAT_EQ(cfg.std[15], 1.9160f);
  auto bad = Json::Parse(R"({"dim_mult": [1, 2], "temperal_downsample": [true, true]})");
  EXPECT_THAT(VaeConfig::FromJson(*bad), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WanVae, MisshapenDecoderTensorIsNamed) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  const std::string name = "decoder.upsamples.4.residual.2.weight";
  io::WeightSet ws = TinyWeights(cfg, name);
  auto vae = WanVae::Load(cfg, ws, *be, /*encoder=*/false, /*decoder=*/true);
  EXPECT_THAT(vae, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(vae.status().message()), ::testing::HasSubstr(name));
  // The encoder half is ignored when only the decoder is asked for, even if broken.
  io::WeightSet ws2 = TinyWeights(cfg, "encoder.downsamples.3.shortcut.weight");
  EXPECT_TRUE(WanVae::Load(cfg, ws2, *be, false, true).ok());
}

TEST(WanVae, UnexpectedTensorIsRejected) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  io::WeightSet ws = TinyWeights(cfg);
  ASSERT_TRUE(
      ws.Add("decoder.extra.weight", Tensor::Zeros(DType::kF32, {1}), "x.safetensors").ok());
  EXPECT_THAT(WanVae::Load(cfg, ws, *be, true, true), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WanVae, DecodeOneLatentFrameGivesOneFrame) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  io::WeightSet ws = TinyWeights(cfg);
  auto vae = WanVae::Load(cfg, ws, *be, false, true);
  TV_ASSERT_OK(vae);
  int calls = 0;
  auto video = (*vae)->Decode(RandomTensor({16, 1, 2, 3}, 5), [&](int i, int t) {
    EXPECT_EQ(i, calls++);
    EXPECT_EQ(t, 1);
  });
  TV_ASSERT_OK(video);
  EXPECT_EQ(video->shape(), (Shape{3, 1, 16, 24}));
  EXPECT_EQ(calls, 1);
  EXPECT_THAT((*vae)->Encode(RandomTensor({3, 1, 8, 8}, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*vae)->Decode(RandomTensor({15, 1, 2, 3}, 5)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WanVae, EncodeDecodeShapesFor4kPlus1Frames) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  io::WeightSet ws = TinyWeights(cfg);
  auto vae = WanVae::Load(cfg, ws, *be, true, true);
  TV_ASSERT_OK(vae);
  for (int64_t frames : {1, 5, 9}) {
    auto latent = (*vae)->Encode(RandomTensor({3, frames, 16, 24}, 3));
    TV_ASSERT_OK(latent);
    EXPECT_EQ(latent->shape(), (Shape{16, 1 + (frames - 1) / 4, 2, 3}));
    auto video = (*vae)->Decode(*latent);
    TV_ASSERT_OK(video);
    EXPECT_EQ(video->shape(), (Shape{3, frames, 16, 24}));
  }
  EXPECT_THAT((*vae)->Encode(RandomTensor({3, 4, 16, 24}, 3)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*vae)->Encode(RandomTensor({3, 5, 12, 24}, 3)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// The fused decoder and encoder (norms, SiLU and residual adds inside the convs, statistics cached
// with the frames) against the unfused op sequence (TV_VAE_FUSED=0): the same function, up to fp32
// rounding, over several chunks (the causal caches and the ring of the frame-by-frame stages).
TEST(WanVae, FusedEqualsUnfused) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  io::WeightSet ws = TinyWeights(cfg);
  auto vae = WanVae::Load(cfg, ws, *be, true, true);
  TV_ASSERT_OK(vae);
  const Tensor z = RandomTensor({16, 3, 2, 3}, 11), v = RandomTensor({3, 9, 16, 24}, 12);
  const auto run = [&](const char* fused, Tensor* video, Tensor* latent) {
    setenv("TV_VAE_FUSED", fused, 1);
    auto d = (*vae)->Decode(z);
    auto e = (*vae)->Encode(v);
    unsetenv("TV_VAE_FUSED");
    ASSERT_TRUE(d.ok() && e.ok());
    *video = *d;
    *latent = *e;
  };
  Tensor fv, fl, pv, pl;
  run("1", &fv, &fl);
  run("0", &pv, &pl);
  for (const auto& [got, want, what] :
       {std::tuple{&fv, &pv, "decode"}, std::tuple{&fl, &pl, "encode"}}) {
    ASSERT_EQ(got->shape(), want->shape()) << what;
    double diff = 0, ref = 0;
    for (int64_t i = 0; i < got->numel(); ++i) {
      const double a = got->data<float>()[i], b = want->data<float>()[i];
      diff += (a - b) * (a - b);
      ref += b * b;
    }
    EXPECT_GT(ref, 0) << what;
    EXPECT_LT(std::sqrt(diff / ref), 1e-5) << what;
  }
}

// Causal convs and the streamed cache: the first latent frames decode to the same first video
// frames whether or not more latent frames follow (and likewise for the encoder).
TEST(WanVae, StreamingIsCausal) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  io::WeightSet ws = TinyWeights(cfg);
  auto vae = WanVae::Load(cfg, ws, *be, true, true);
  TV_ASSERT_OK(vae);
  Tensor z = RandomTensor({16, 3, 2, 2}, 9);
  Tensor z2 = Tensor::Zeros(DType::kF32, {16, 2, 2, 2});
  for (int64_t c = 0; c < 16; ++c) {
    std::copy_n(z.data<float>() + c * 12, 8, z2.data<float>() + c * 8);
  }
  auto full = (*vae)->Decode(z);
  auto prefix = (*vae)->Decode(z2);
  ASSERT_TRUE(full.ok() && prefix.ok());
  const int64_t plane = 16 * 16;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < 5 * plane; ++i) {
      ASSERT_FLOAT_EQ(prefix->data<float>()[c * 5 * plane + i],
                      full->data<float>()[c * 9 * plane + i])
          << c << " " << i;
    }
  }
  // Frame 0 of the output depends on latent frame 0 only, and differs from frame 1.
  EXPECT_NE(full->data<float>()[0], full->data<float>()[plane]);
}

// The decode split by rows over `ranks` in-process ranks: rank 0's video (the others return
// none).
absl::StatusOr<Tensor> SplitDecode(const WanVae& vae, const Tensor& z, int ranks) {
  std::vector<Tensor> videos(ranks);
  TV_RETURN_IF_ERROR(comm::RunInProcessRanks(ranks, [&](int rank, comm::Communicator& world) {
    TV_ASSIGN_OR_RETURN(videos[rank], vae.Decode(z, {}, {}, &world));
    return absl::OkStatus();
  }));
  for (int r = 1; r < ranks; ++r) {
    if (videos[r].defined()) return absl::InternalError("a rank other than 0 returned a video");
  }
  return videos[0];
}

// Max |a − b| over the elements, relative to max |b|.
double RelMaxDiff(const Tensor& a, const Tensor& b) {
  double diff = 0, scale = 1e-30;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, double(std::abs(a.data<float>()[i] - b.data<float>()[i])));
    scale = std::max(scale, double(std::abs(b.data<float>()[i])));
  }
  return diff / scale;
}

void ExpectSplitMatchesOneRank(const WanVae& vae, const Tensor& z, const std::vector<int>& ranks,
                               double tolerance) {
  auto one = vae.Decode(z);
  TV_ASSERT_OK(one);
  for (int n : ranks) {
    SCOPED_TRACE(absl::StrCat(n, " ranks, latent ", z.Describe()));
    absl::StatusOr<Tensor> split = SplitDecode(vae, z, n);
    TV_ASSERT_OK(split);
    ASSERT_EQ(split->shape(), one->shape());
    EXPECT_LE(RelMaxDiff(*split, *one), tolerance);
  }
}

// Row split with halo exchange and gathered attention K/V equals the whole-frame decode: 1, 2
// and 4 ranks, latent heights 5 (3+2 and 2+1+1+1 rows: uneven) and 8, three latent frames (the
// temporal upsamples and the causal caches per rank).
TEST(WanVaeSplit, TinyDecodeMatchesOneRank) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  io::WeightSet ws = TinyWeights(cfg);
  auto vae = WanVae::Load(cfg, ws, *be, false, true);
  TV_ASSERT_OK(vae);
  ExpectSplitMatchesOneRank(**vae, RandomTensor({16, 3, 5, 3}, 11), {1, 2, 4}, 1e-5);
  ExpectSplitMatchesOneRank(**vae, RandomTensor({16, 2, 8, 2}, 12), {2, 4}, 1e-5);
}

// The real Wan2.1 decoder shape (dim 96, widths 384/384/192/96, 2+1 res blocks per stage) at a
// tiny resolution: 2 latent frames (5 video frames, both temporal upsamples), latent height 5
// over 4 ranks (2+1+1+1 rows). The widths make it the slow one (~10 s of CPU).
TEST(WanVaeSplit, RealShapedDecodeMatchesOneRank) {
  auto be = MakeCpuBackend();
  auto json = Json::Parse(R"({"dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4],
                              "num_res_blocks": 2, "temperal_downsample": [false, true, true]})");
  auto cfg = VaeConfig::FromJson(*json);
  TV_ASSERT_OK(cfg);
  io::WeightSet ws = TinyWeights(*cfg, "", /*decoder_only=*/true);
  auto vae = WanVae::Load(*cfg, ws, *be, false, true);
  TV_ASSERT_OK(vae);
  ExpectSplitMatchesOneRank(**vae, RandomTensor({16, 2, 5, 1}, 13), {4}, 1e-5);
}

// A latent shorter than the group is refused, naming the height; a lone rank decodes whole.
TEST(WanVaeSplit, RefusesFewerRowsThanRanks) {
  auto be = MakeCpuBackend();
  VaeConfig cfg = TinyConfig();
  io::WeightSet ws = TinyWeights(cfg);
  auto vae = WanVae::Load(cfg, ws, *be, false, true);
  TV_ASSERT_OK(vae);
  absl::StatusOr<Tensor> r = SplitDecode(**vae, RandomTensor({16, 1, 3, 2}, 1), 4);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("latent height 3"));
}

}  // namespace
}  // namespace turbovid::engine
