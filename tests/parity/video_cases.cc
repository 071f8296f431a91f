// VideoToI420Op (decoded video → I420 for the H.264 encoder): the CUDA kernel must give the CPU
// reference's bytes exactly (engine/core/colour.h), from F32 and from BF16 input (the VAE's
// chunks are BF16 on CUDA; the CPU path sees the same values widened to F32), at odd frame
// counts and at a 480p chunk; values hit every rounding edge (beyond ±1, NaN, ±inf, .5 edges).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {
namespace {

// The family case (BackendOpsParity.CudaMatchesCpu): F32 in, slack 0 (exact).
Case VideoToI420Case(int64_t n, int64_t h, int64_t w) {
  return {
      absl::StrCat("video_to_i420 ", n, "x", h, "x", w),
      OpKindOf<VideoToI420Op>(),
      {{{3, n, h, w}, true, -1.2f, 1.2f}},
      [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
        TV_ASSIGN_OR_RETURN(Tensor yuv, env.Place(Tensor::Zeros(DType::kU8, {n, h * w * 3 / 2})));
        TV_RETURN_IF_ERROR(env.b.Run(VideoToI420Op{&t[0], &yuv}));
        return std::vector<Tensor>{yuv};
      },
      0.0};
}

// bf16-valued host video with edge values.
Tensor EdgyVideo(int64_t n, int64_t h, int64_t w, uint32_t seed) {
  Tensor t = Tensor::Zeros(DType::kF32, {3, n, h, w});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.2f, 1.2f);
  const float edges[] = {-1.f,
                         1.f,
                         0.f,
                         -0.f,
                         std::numeric_limits<float>::quiet_NaN(),
                         std::numeric_limits<float>::infinity(),
                         -std::numeric_limits<float>::infinity(),
                         2.f * (0.5f / 255.f) - 1.f,
                         2.f * (127.5f / 255.f) - 1.f,
                         2.f * (254.5f / 255.f) - 1.f};
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    p[i] = rng() % 9 == 0 ? edges[rng() % (sizeof(edges) / sizeof(edges[0]))] : dist(rng);
  }
  return t;
}

TEST(VideoToI420Parity, CudaMatchesCpuByteForByte) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  struct Shape3 {
    int64_t n, h, w;
  };
  for (const Shape3 s :
       {Shape3{1, 2, 2}, Shape3{4, 6, 10}, Shape3{3, 34, 62}, Shape3{4, 480, 832}}) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      SCOPED_TRACE(absl::StrCat(s.n, "x", s.h, "x", s.w, " ", std::string(DTypeName(dtype))));
      Tensor host = EdgyVideo(s.n, s.h, s.w, static_cast<uint32_t>(s.n * 7 + s.h + s.w));
      // BF16 input: the CPU sees the same (bf16-representable) values in F32.
      if (dtype == DType::kBF16) {
        for (int64_t i = 0; i < host.numel(); ++i) {
          float& v = host.data<float>()[i];
          if (!std::isnan(v)) v = RoundToBf16(v);
        }
      }
      auto dev = (*cuda)->Upload(host, dtype);
      ASSERT_TRUE(dev.ok()) << dev.status();
      auto dev_yuv = (*cuda)->Allocate(DType::kU8, {s.n, s.h * s.w * 3 / 2});
      ASSERT_TRUE(dev_yuv.ok()) << dev_yuv.status();
      ASSERT_TRUE((*cuda)->Run(VideoToI420Op{&*dev, &*dev_yuv}).ok());
      auto got = (*cuda)->Download(*dev_yuv);
      ASSERT_TRUE(got.ok()) << got.status();
      Tensor want = Tensor::Zeros(DType::kU8, {s.n, s.h * s.w * 3 / 2});
      ASSERT_TRUE(cpu->Run(VideoToI420Op{&host, &want}).ok());
      ASSERT_EQ(got->nbytes(), want.nbytes());
      const uint8_t* g = got->data<uint8_t>();
      const uint8_t* e = want.data<uint8_t>();
      int64_t differ = 0, first = -1;
      for (int64_t i = 0; i < want.numel(); ++i) {
        if (g[i] != e[i] && differ++ == 0) first = i;
      }
      EXPECT_EQ(differ, 0) << "first differing byte " << first << ": cuda "
                           << (first >= 0 ? int{g[first]} : 0) << " cpu "
                           << (first >= 0 ? int{e[first]} : 0);
    }
  }
}

// Timings at the 480p chunk (4 frames of 832×480, BF16 as the VAE makes it): the kernel, the
// I420 download the pipeline makes, and the F32 download it replaces (TV_PERF_FILTER=*Perf*).
TEST(VideoToI420Perf, DISABLED_Chunk480p) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  Backend& b = **cuda;
  const int64_t n = 4, h = 480, w = 832;
  auto video = b.Upload(EdgyVideo(n, h, w, 3), DType::kBF16);
  auto yuv = b.Allocate(DType::kU8, {n, h * w * 3 / 2});
  ASSERT_TRUE(video.ok() && yuv.ok());
  const auto time = [&](const std::function<absl::Status()>& run) {
    using Clock = std::chrono::steady_clock;
    EXPECT_TRUE(run().ok());
    EXPECT_TRUE(b.Synchronize().ok());
    const int reps = 20;
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) EXPECT_TRUE(run().ok());
    EXPECT_TRUE(b.Synchronize().ok());
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / reps;
  };
  const double kernel = time([&] { return b.Run(VideoToI420Op{&*video, &*yuv}); });
  const double i420 = time([&] { return b.Download(*yuv).status(); });
  const double f32 = time([&] { return b.Download(*video).status(); });
  const double gb = (video->nbytes() + yuv->nbytes()) / 1e9;
  std::printf(
      "video_to_i420 [3, %lld, %lld, %lld] bf16: kernel %.3f ms (%.0f GB/s), I420 "
      "download %.3f ms (%.2f MB), the F32 download it replaces %.3f ms; x21 chunks: "
      "%.1f ms vs %.1f ms\n",
      static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w), kernel,
      gb / (kernel / 1e3), i420, yuv->nbytes() / 1e6, f32, 21 * (kernel + i420), 21 * f32);
}

}  // namespace

std::vector<Case> VideoCases() {
  return {VideoToI420Case(1, 2, 2), VideoToI420Case(5, 18, 34), VideoToI420Case(4, 48, 64)};
}

}  // namespace turbovid::engine::parity
