// FP8 e4m3 and fp16 rounding models: every code, rounding ties, saturation, subnormals, NaN.
#include "engine/core/fp8.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

namespace turbovid::engine {
namespace {

bool IsNanCode(int c) { return (c & 0x7F) == 0x7F; }

TEST(E4m3, EveryCodeDecodesAndRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    const float v = E4m3ToF32(static_cast<uint8_t>(c));
    if (IsNanCode(c)) {
      EXPECT_TRUE(std::isnan(v)) << c;
      EXPECT_EQ(F32ToE4m3(v), kE4m3NaN) << c;
      continue;
    }
    EXPECT_EQ(F32ToE4m3(v), c) << "code " << c << " value " << v;
    EXPECT_EQ(std::signbit(v), (c & 0x80) != 0) << c;  // 0x80 is -0
  }
}

TEST(E4m3, KnownValues) {
  EXPECT_EQ(E4m3ToF32(0x01), 0x1p-9f);      // smallest subnormal
  EXPECT_EQ(E4m3ToF32(0x07), 7 * 0x1p-9f);  // largest subnormal
  EXPECT_EQ(E4m3ToF32(0x08), 0x1p-6f);      // smallest normal
  EXPECT_EQ(E4m3ToF32(0x38), 1.f);
  EXPECT_EQ(E4m3ToF32(0x39), 1.125f);
  EXPECT_EQ(E4m3ToF32(0x7E), 448.f);  // largest finite
  EXPECT_EQ(E4m3ToF32(0xFE), -448.f);
  EXPECT_EQ(F32ToE4m3(2.25f), 0x41);  // 1.125·2: V's largest scaled value is exact
}

// Between consecutive codes: below the midpoint rounds down, above rounds up, the midpoint
// itself goes to the even mantissa.
TEST(E4m3, RoundsToNearestTiesToEven) {
  for (int c = 0; c < 0x7E; ++c) {
    const float lo = E4m3ToF32(static_cast<uint8_t>(c)),
                hi = E4m3ToF32(static_cast<uint8_t>(c + 1));
    const float mid = (lo + hi) / 2;  // exact in fp32
    EXPECT_EQ(F32ToE4m3(std::nextafter(mid, 0.f)), c) << c;
    EXPECT_EQ(F32ToE4m3(std::nextafter(mid, 1e9f)), c + 1) << c;
    EXPECT_EQ(F32ToE4m3(mid), (c & 1) ? c + 1 : c) << c;
    EXPECT_EQ(F32ToE4m3(-mid), 0x80 | ((c & 1) ? c + 1 : c)) << c;
  }
}

TEST(E4m3, SaturatesFiniteAndInfinite) {
  EXPECT_EQ(F32ToE4m3(448.f), 0x7E);
  EXPECT_EQ(F32ToE4m3(463.99f), 0x7E);
  EXPECT_EQ(F32ToE4m3(464.f), 0x7E);  // would round to 480 (not a finite e4m3): satfinite
  EXPECT_EQ(F32ToE4m3(1e30f), 0x7E);
  EXPECT_EQ(F32ToE4m3(-1e30f), 0xFE);
  EXPECT_EQ(F32ToE4m3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(F32ToE4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(F32ToE4m3(std::numeric_limits<float>::quiet_NaN()), kE4m3NaN);
  EXPECT_EQ(F32ToE4m3(-std::numeric_limits<float>::quiet_NaN()), kE4m3NaN);
}

TEST(E4m3, SubnormalsAndZeros) {
  EXPECT_EQ(F32ToE4m3(0.f), 0x00);
  EXPECT_EQ(F32ToE4m3(-0.f), 0x80);
  EXPECT_EQ(F32ToE4m3(0x1p-10f), 0x00);  // half the smallest subnormal: tie to even (0)
  EXPECT_EQ(F32ToE4m3(std::nextafter(0x1p-10f, 1.f)), 0x01);
  EXPECT_EQ(F32ToE4m3(3 * 0x1p-10f), 0x02);   // 1.5 quanta: tie to even (2)
  EXPECT_EQ(F32ToE4m3(-0x1p-11f), 0x80);      // rounds to zero, keeps the sign
  EXPECT_EQ(F32ToE4m3(0x1p-149f), 0x00);      // fp32 subnormal
  EXPECT_EQ(F32ToE4m3(15 * 0x1p-10f), 0x08);  // between the largest subnormal and 2^-6: even
  EXPECT_EQ(F32ToE4m3(std::nextafter(0x1p-6f, 0.f)), 0x08);
}

TEST(F16, RoundsLikeIeeeHalf) {
  EXPECT_EQ(RoundToF16(1.f), 1.f);
  EXPECT_EQ(RoundToF16(1.f + 0x1p-11f), 1.f);                // tie to even
  EXPECT_EQ(RoundToF16(1.f + 3 * 0x1p-11f), 1.f + 0x1p-9f);  // tie to even, upwards
  EXPECT_EQ(RoundToF16(std::nextafter(1.f + 0x1p-11f, 2.f)), 1.f + 0x1p-10f);
  EXPECT_EQ(RoundToF16(65504.f), 65504.f);
  EXPECT_EQ(RoundToF16(65519.f), 65504.f);
  EXPECT_TRUE(std::isinf(RoundToF16(65520.f)));  // the midpoint to 65536 rounds to even: overflow
  EXPECT_EQ(RoundToF16(0x1p-24f), 0x1p-24f);     // smallest subnormal
  EXPECT_EQ(RoundToF16(0x1p-25f), 0.f);          // half of it: tie to even
  EXPECT_EQ(RoundToF16(3 * 0x1p-25f), 0x1p-23f);
  EXPECT_EQ(RoundToF16(-1e-30f), -0.f);
  EXPECT_TRUE(std::signbit(RoundToF16(-1e-30f)));
  EXPECT_TRUE(std::isnan(RoundToF16(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
}  // namespace turbovid::engine
