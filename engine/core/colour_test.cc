// colour.h: the rounding of decoded values to bytes, BT.601 limited-range I420 on known colours,
// chroma from the 2×2 block's average, and VideoToI420 = RgbToI420 ∘ VideoPixelsToRgb.
#include "engine/core/colour.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace turbovid::engine::colour {
namespace {

TEST(Colour, ValueToU8RoundsLikeUpstream) {
  EXPECT_EQ(VideoValueToU8(-1.f), 0);
  EXPECT_EQ(VideoValueToU8(1.f), 255);
  EXPECT_EQ(VideoValueToU8(-5.f), 0);
  EXPECT_EQ(VideoValueToU8(5.f), 255);
  EXPECT_EQ(VideoValueToU8(0.f), 128);  // 127.5 + 0.5
  EXPECT_EQ(VideoValueToU8(std::numeric_limits<float>::quiet_NaN()), 0);
  EXPECT_EQ(VideoValueToU8(std::numeric_limits<float>::infinity()), 255);
}

// One 2×2 frame of a single colour → its Y, U, V.
std::vector<uint8_t> Solid(uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 4; ++i) rgb.insert(rgb.end(), {r, g, b});
  std::vector<uint8_t> yuv(6);
  RgbToI420(rgb.data(), 1, 2, 2, yuv.data());
  return yuv;
}

TEST(Colour, Bt601LimitedRangeOfKnownColours) {
  // The textbook BT.601 limited-range triples (Y, Cb, Cr).
  EXPECT_EQ(Solid(0, 0, 0), (std::vector<uint8_t>{16, 16, 16, 16, 128, 128}));
  EXPECT_EQ(Solid(255, 255, 255), (std::vector<uint8_t>{235, 235, 235, 235, 128, 128}));
  EXPECT_EQ(Solid(255, 0, 0), (std::vector<uint8_t>{81, 81, 81, 81, 90, 240}));
  EXPECT_EQ(Solid(0, 255, 0), (std::vector<uint8_t>{145, 145, 145, 145, 54, 34}));
  EXPECT_EQ(Solid(0, 0, 255), (std::vector<uint8_t>{41, 41, 41, 41, 240, 110}));
}

TEST(Colour, ChromaIsTheBlockAverage) {
  // Left column black, right column white: chroma of the mean grey (neutral), luma per pixel.
  const std::vector<uint8_t> rgb = {0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255};
  std::vector<uint8_t> yuv(6);
  RgbToI420(rgb.data(), 1, 2, 2, yuv.data());
  EXPECT_EQ(yuv, (std::vector<uint8_t>{16, 235, 16, 235, 128, 128}));
}

TEST(Colour, VideoToI420IsRgbThenI420) {
  const int n = 3, h = 6, w = 8;
  std::vector<float> video(3 * n * h * w);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.1f, 1.1f);
  for (float& v : video) v = dist(rng);
  std::vector<uint8_t> rgb(n * h * w * 3), want(n * h * w * 3 / 2), got(want.size());
  VideoPixelsToRgb(video.data(), n * h * w, 0, n * h * w, rgb.data());
  RgbToI420(rgb.data(), n, w, h, want.data());
  VideoToI420(video.data(), n, w, h, got.data());
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace turbovid::engine::colour
