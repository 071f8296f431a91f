// VideoToI420Op on the CPU backend against the two-step CPU path the MP4 writers took before it:
// VideoToFrames' rounding to RGB bytes, then the writers' RGB → I420 (both in colour.h). Byte
// for byte, on values that hit every rounding edge (±1, beyond, NaN, the .5 boundaries).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/status_matchers.h"
#include "engine/core/colour.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

using ::turbovid::common::testing::StatusIs;

// [3, n, h, w]: uniform in [-1.2, 1.2] with edge values sprinkled in.
Tensor EdgyVideo(int64_t n, int64_t h, int64_t w, uint32_t seed) {
  Tensor t = Tensor::Zeros(DType::kF32, {3, n, h, w});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.2f, 1.2f);
  const float edges[] = {-1.f, 1.f, 0.f, -0.f, std::numeric_limits<float>::quiet_NaN(),
                         std::numeric_limits<float>::infinity(), -2.f,
                         // v whose (1 + v) / 2 · 255 lands on k + 0.5 (the rounding edge)
                         2.f * (0.5f / 255.f) - 1.f, 2.f * (127.5f / 255.f) - 1.f,
                         2.f * (254.5f / 255.f) - 1.f};
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    p[i] = rng() % 7 == 0 ? edges[rng() % (sizeof(edges) / sizeof(edges[0]))] : dist(rng);
    if (rng() % 11 == 0) p[i] = std::nextafter(p[i], rng() % 2 ? 2.f : -2.f);
  }
  return t;
}

std::vector<uint8_t> TwoStep(const Tensor& video) {
  const int64_t n = video.dim(1), h = video.dim(2), w = video.dim(3);
  std::vector<uint8_t> rgb(static_cast<size_t>(n * h * w * 3));
  colour::VideoPixelsToRgb(video.data<float>(), n * h * w, 0, n * h * w, rgb.data());
  std::vector<uint8_t> yuv(static_cast<size_t>(n * h * w * 3 / 2));
  colour::RgbToI420(rgb.data(), n, static_cast<int>(w), static_cast<int>(h), yuv.data());
  return yuv;
}

TEST(CpuVideoOps, VideoToI420MatchesFramesThenI420ByteForByte) {
  auto be = MakeCpuBackend();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 2, 2}, {4, 6, 10}, {5, 48, 64}, {2, 30, 18}}) {
    const Tensor video = EdgyVideo(n, h, w, static_cast<uint32_t>(n * 1000 + h + w));
    auto yuv = be->Allocate(DType::kU8, {n, h * w * 3 / 2});
    ASSERT_TRUE(yuv.ok());
    ASSERT_TRUE(be->Run(VideoToI420Op{&video, &*yuv}).ok());
    const std::vector<uint8_t> want = TwoStep(video);
    ASSERT_EQ(static_cast<size_t>(yuv->nbytes()), want.size());
    EXPECT_EQ(std::memcmp(yuv->raw(), want.data(), want.size()), 0) << n << "x" << h << "x" << w;
  }
}

TEST(CpuVideoOps, VideoToI420RejectsBadShapes) {
  auto be = MakeCpuBackend();
  const Tensor odd = Tensor::Zeros(DType::kF32, {3, 1, 3, 4});
  Tensor out = Tensor::Zeros(DType::kU8, {1, 18});
  EXPECT_THAT(be->Run(VideoToI420Op{&odd, &out}), StatusIs(absl::StatusCode::kInvalidArgument));
  const Tensor video = Tensor::Zeros(DType::kF32, {3, 2, 4, 4});
  Tensor wrong = Tensor::Zeros(DType::kU8, {2, 23});
  EXPECT_THAT(be->Run(VideoToI420Op{&video, &wrong}), StatusIs(absl::StatusCode::kInvalidArgument));
  Tensor not_u8 = Tensor::Zeros(DType::kF32, {2, 24});
  EXPECT_THAT(be->Run(VideoToI420Op{&video, &not_u8}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const Tensor two_channels = Tensor::Zeros(DType::kF32, {2, 2, 4, 4});
  Tensor ok_out = Tensor::Zeros(DType::kU8, {2, 24});
  EXPECT_THAT(be->Run(VideoToI420Op{&two_channels, &ok_out}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace turbovid::engine
