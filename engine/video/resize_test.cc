// The I2V resize against values derived by hand from PyTorch's antialiased bilinear uint8 kernel
// (scale s = in/out, support max(s, 1), centre s·(i + 0.5), triangle taps normalised, then int16
// fixed point with the 0.5 bias), and the exact fp32 map to [-1, 1].
#include "engine/video/resize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "common/status_matchers.h"

namespace turbovid::engine::video {
namespace {

using ::turbovid::common::testing::StatusIs;

// [h, w, 3] U8 with the same value in all three channels.
Tensor Grey(int64_t h, int64_t w, const std::vector<int>& values) {
  Tensor t = Tensor::Zeros(DType::kU8, {h, w, 3});
  for (int64_t i = 0; i < h * w; ++i) {
    for (int c = 0; c < 3; ++c) t.data<uint8_t>()[i * 3 + c] = static_cast<uint8_t>(values[i]);
  }
  return t;
}

std::vector<int> Channel(const Tensor& t, int c) {
  std::vector<int> out;
  for (int64_t i = 0; i < t.numel() / 3; ++i) out.push_back(t.data<uint8_t>()[i * 3 + c]);
  return out;
}

TEST(ResizeTest, SameSizeIsACopy) {
  Tensor in = Tensor::Zeros(DType::kU8, {3, 5, 3});
  for (int64_t i = 0; i < in.numel(); ++i) in.data<uint8_t>()[i] = static_cast<uint8_t>(i * 37);
  auto out = ResizeAntialiasBilinear(in, 5, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->shape(), in.shape());
  EXPECT_NE(out->raw(), in.raw());
  for (int64_t i = 0; i < in.numel(); ++i)
    EXPECT_EQ(out->data<uint8_t>()[i], in.data<uint8_t>()[i]);
}

// 3 → 6 (s = 0.5, support 1, so taps within 1 of the centre):
//   i=0 c=0.25: xmin=int(-0.25)=0, xsize=int(1.75)=1     → x0            = 0
//   i=1 c=0.75: xmin=0, xsize=2, taps 0.75, 0.25          → 0.75·0+0.25·100 = 25
//   i=2 c=1.25: xmin=int(0.75)=0, taps 0.25, 0.75         → 75
//   i=3 c=1.75: xmin=int(1.25)=1, taps 0.75, 0.25         → 125
//   i=4 c=2.25: xmin=1, taps 0.25, 0.75                   → 175
//   i=5 c=2.75: xmin=2, xsize=min(int(4.25), 3)−2=1       → 200 (the edge pixel alone)
// Largest weight 1 → 14 fraction bits; every sum is exact, so +0.5 and the shift keep it.
TEST(ResizeTest, UpsamplesARampByTwo) {
  auto wide = ResizeAntialiasBilinear(Grey(1, 3, {0, 100, 200}), 6, 1);
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_EQ(Channel(*wide, 0), (std::vector<int>{0, 25, 75, 125, 175, 200}));
  EXPECT_EQ(Channel(*wide, 2), (std::vector<int>{0, 25, 75, 125, 175, 200}));
  // The same along the height.
  auto tall = ResizeAntialiasBilinear(Grey(3, 1, {0, 100, 200}), 1, 6);
  ASSERT_TRUE(tall.ok()) << tall.status();
  EXPECT_EQ(Channel(*tall, 1), (std::vector<int>{0, 25, 75, 125, 175, 200}));
}

// 1 → 2 → 4: values 0.25 and 0.75 round half up after the bias: (0.25 + 0.5) → 0, (0.75 + 0.5) → 1.
TEST(ResizeTest, RoundsTheFixedPointSumHalfUp) {
  auto out = ResizeAntialiasBilinear(Grey(1, 2, {0, 1}), 4, 1);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Channel(*out, 0), (std::vector<int>{0, 0, 1, 1}));
}

// 4 → 2 (s = 2, support 2, taps scaled by 1/2, at most 5 of them):
//   i=0 c=1: xmin=max(int(-0.5), 0)=0, xsize=int(3.5)=3; taps at x=0,1,2:
//            tri(−0.25)=0.75, tri(0.25)=0.75, tri(0.75)=0.25; the tap at x=−1 (0.25) is cut by
//            the image edge and the rest are renormalised by 1.75 → 3/7, 3/7, 1/7.
//   i=1 c=3: xmin=int(1.5)=1, xsize=min(int(5.5), 4)−1=3; x=1,2,3: 1/7, 3/7, 3/7 (x=4 cut).
// Largest weight 3/7 → 16 fraction bits: 3/7 → 28087, 1/7 → 9362.
//   out0 = (32768 + 40·28087 + 80·9362) >> 16 = 1905208 >> 16 = 29   (exact 200/7 = 28.57)
//   out1 = (32768 + 40·9362 + 80·28087 + 120·28087) >> 16 = 6024648 >> 16 = 91   (640/7 = 91.43)
TEST(ResizeTest, DownsamplesWithTheEdgeTapsCutAndRenormalised) {
  auto out = ResizeAntialiasBilinear(Grey(1, 4, {0, 40, 80, 120}), 2, 1);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Channel(*out, 0), (std::vector<int>{29, 91}));
}

// 5 → 2 (s = 2.5, support 2.5, 7 taps at most, scaled by 0.4):
//   i=0 c=1.25: xmin=max(int(-0.75), 0)=0, xsize=int(4.25)=4; x=0..3 at (x−0.75)·0.4:
//            tri(−0.3)=0.7, tri(0.1)=0.9, tri(0.5)=0.5, tri(0.9)=0.1 (x=−1's 0.3 cut) → /2.2
//   i=1 c=3.75: xmin=int(1.75)=1, xsize=min(int(6.75), 5)−1=4; x=1..4: 0.1, 0.5, 0.9, 0.7
// Largest weight 9/22 → 16 bits: 7/22 → 20852, 9/22 → 26810, 5/22 → 14895, 1/22 → 2979.
//   out0 = (32768 + 50·26810 + 100·14895 + 150·2979) >> 16 = 3309618 >> 16 = 50
//   out1 = (32768 + 50·2979 + 100·14895 + 150·26810 + 200·20852) >> 16 = 9863118 >> 16 = 150
TEST(ResizeTest, DownsamplesByANonIntegerFactor) {
  auto out = ResizeAntialiasBilinear(Grey(1, 5, {0, 50, 100, 150, 200}), 2, 1);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Channel(*out, 0), (std::vector<int>{50, 150}));
}

// 2x2 → 4x4: width first ([a, b] → [a, .75a+.25b, .25a+.75b, b]), then height the same way.
TEST(ResizeTest, ResizesWidthThenHeight) {
  auto out = ResizeAntialiasBilinear(Grey(2, 2, {0, 200, 200, 0}), 4, 4);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Channel(*out, 0), (std::vector<int>{0, 50, 150, 200,   //
                                                50, 75, 125, 150,  //
                                                150, 125, 75, 50,  //
                                                200, 150, 50, 0}));
}

TEST(ResizeTest, KeepsFlatColoursAndChannelsApart) {
  Tensor flat = Tensor::Zeros(DType::kU8, {20, 30, 3});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    flat.data<uint8_t>()[i] = static_cast<uint8_t>(i % 3 == 0 ? 200 : i % 3 == 1 ? 17 : 255);
  }
  for (auto [w, h] : {std::pair{15, 10}, std::pair{61, 45}, std::pair{7, 40}, std::pair{1, 1}}) {
    auto out = ResizeAntialiasBilinear(flat, w, h);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->shape(), (Shape{h, w, 3}));
    for (int64_t i = 0; i < out->numel(); ++i) {
      ASSERT_EQ(out->data<uint8_t>()[i], i % 3 == 0   ? 200
                                         : i % 3 == 1 ? 17
                                                      : 255)
          << w << "x" << h << " at " << i;
    }
  }
}

TEST(ResizeTest, RejectsBadInput) {
  Tensor rgb = Tensor::Zeros(DType::kU8, {4, 4, 3});
  EXPECT_THAT(ResizeAntialiasBilinear(rgb, 0, 4), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResizeAntialiasBilinear(rgb, 4, 16385), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResizeAntialiasBilinear(Tensor::Zeros(DType::kF32, {4, 4, 3}), 2, 2),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResizeAntialiasBilinear(Tensor::Zeros(DType::kU8, {4, 4, 4}), 2, 2),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResizeAntialiasBilinear(Tensor(), 2, 2),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ImageToSignedUnit(Tensor::Zeros(DType::kU8, {4, 4})),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// torchvision: float32(v) · float32(1/255), − 0.5, / 0.5, each rounded to fp32. For v = 48 and
// 200 this differs by one ulp from v / 127.5 − 1.
TEST(ResizeTest, MapsToSignedUnitInFp32Steps) {
  Tensor rgb = Tensor::Zeros(DType::kU8, {1, 2, 3});
  const uint8_t values[6] = {0, 255, 128, 48, 200, 1};
  for (int i = 0; i < 6; ++i) rgb.data<uint8_t>()[i] = values[i];
  auto out = ImageToSignedUnit(rgb);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->shape(), (Shape{3, 1, 2}));
  const float* f = out->data<float>();
  // Planes: R = {0, 48}, G = {255, 200}, B = {128, 1}.
  EXPECT_EQ(f[0], -1.0f);
  EXPECT_EQ(f[1], -0x1.3f3f3ep-1f);
  EXPECT_EQ(f[2], 1.0f);
  EXPECT_EQ(f[3], 0x1.232328p-1f);
  EXPECT_EQ(f[4], 0x1.0102p-8f);
  const volatile float k = static_cast<float>(1.0 / 255.0);
  const volatile float one = 1.0f * k;
  const volatile float centred = one - 0.5f;
  EXPECT_EQ(f[5], centred / 0.5f);
}

}  // namespace
}  // namespace turbovid::engine::video
