// Disabled benchmark of the whole Wan2.1 VAE decode on the CUDA backend (random weights, real
// sizes): 480p, 81 frames (latent [16, 21, 60, 104]), the fused decoder against the unfused op
// sequence (TV_VAE_FUSED=0) in the same process, with the two videos' agreement. Run on a GPU:
//   tv_parity_test --gtest_also_run_disabled_tests --gtest_filter='VaePerf.*'
// (tests/gpu/all.sh perf with TV_PERF_FILTER='VaePerf.*'). TV_VAE_PERF_FRAMES sets the latent
// frames (default 21), TV_VAE_PERF_SIZE=720p the 720p latent [16, T, 90, 160].
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/core/json.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/io/weights.h"
#include "engine/models/vae.h"
#include "engine/testing/tiny_checkpoint.h"
#include "gtest/gtest.h"

namespace turbovid::engine {
namespace {

// Deterministic uniform host tensor in [-scale, scale).
Tensor Uniform(const Shape& shape, float scale, uint32_t seed) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  float* p = t.data<float>();
  uint32_t s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = scale * (static_cast<float>(s >> 8) * (2.f / 16777216.f) - 1.f);
  }
  return t;
}

TEST(VaePerf, DISABLED_Decode) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  Backend& b = **cuda;
  absl::StatusOr<Json> json = Json::Parse("{}");
  ASSERT_TRUE(json.ok());
  absl::StatusOr<VaeConfig> cfg = VaeConfig::FromJson(*json);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  // Conv weights ~ U(±1/√fan_in), biases small, gammas around 1: activations stay O(1).
  io::WeightSet ws;
  uint32_t seed = 1;
  for (const auto& [name, shape] : VaeTensorShapes(*cfg, false, true)) {
    int64_t fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    Tensor t;
    if (name.ends_with(".gamma")) {
      t = Uniform(shape, 0.2f, seed++);
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] += 1.f;
    } else if (name.ends_with(".bias")) {
      t = Uniform(shape, 0.05f, seed++);
    } else {
      t = Uniform(shape, 1.f / std::sqrt(static_cast<float>(fan_in)), seed++);
    }
    ASSERT_TRUE(ws.Add(name, std::move(t), "random").ok()) << name;
  }
  absl::StatusOr<std::unique_ptr<WanVae>> vae = WanVae::Load(*cfg, ws, b, false, true);
  ASSERT_TRUE(vae.ok()) << vae.status();
  const char* frames_env = std::getenv("TV_VAE_PERF_FRAMES");
  const int64_t t = frames_env != nullptr ? std::max(1, std::atoi(frames_env)) : 21;
  const char* size_env = std::getenv("TV_VAE_PERF_SIZE");
  const bool p720 = size_env != nullptr && std::string(size_env) == "720p";
  const int64_t h = p720 ? 90 : 60, w = p720 ? 160 : 104;
  const Tensor z = Uniform({16, t, h, w}, 1.f, 99);
  const auto decode = [&](const char* fused, Tensor* video) -> double {
    setenv("TV_VAE_FUSED", fused, 1);
    absl::StatusOr<Tensor> v = (*vae)->Decode(z);  // warm-up: packed weights, arena
    EXPECT_TRUE(v.ok()) << v.status();
    const auto t0 = std::chrono::steady_clock::now();
    v = (*vae)->Decode(z);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(v.ok()) << v.status();
    if (v.ok()) *video = std::move(*v);
    return s;
  };
  Tensor fused_video, plain_video;
  const double plain = decode("0", &plain_video);
  const double fused = decode("1", &fused_video);
  unsetenv("TV_VAE_FUSED");
  ASSERT_TRUE(fused_video.defined() && plain_video.defined());
  ASSERT_EQ(fused_video.shape(), plain_video.shape());
  double diff = 0, ref = 0, max_abs = 0;
  for (int64_t i = 0; i < fused_video.numel(); ++i) {
    const double a = fused_video.data<float>()[i], p = plain_video.data<float>()[i];
    diff += (a - p) * (a - p);
    ref += p * p;
    max_abs = std::max(max_abs, std::abs(a - p));
  }
  const double rel = std::sqrt(diff / std::max(ref, 1e-30));
  std::printf(
      "vae decode %s, %lld frames (latent [16, %lld, %lld, %lld]): unfused %.3f s, "
      "fused %.3f s (%.2fx); fused vs unfused: rel L2 %.2e, max abs %.3e\n",
      p720 ? "720p" : "480p", static_cast<long long>(1 + 4 * (t - 1)), static_cast<long long>(t),
      static_cast<long long>(h), static_cast<long long>(w), plain, fused, plain / fused, rel,
      max_abs);
  // Both decoders are bf16 on the device with the same rounding points but for the norm's
  // output; a real divergence (a wrong tile, a missed frame) is far above this.
  EXPECT_LT(rel, 0.05);
}

}  // namespace
}  // namespace turbovid::engine
