// Tensor basics and bf16 conversion.
#include "engine/core/tensor.h"

#include <gtest/gtest.h>

namespace turbovid::engine {
namespace {

TEST(TensorTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(RoundToBf16(1.0f), 1.0f);
  EXPECT_EQ(RoundToBf16(987.654f), 988.0f);
  EXPECT_EQ(RoundToBf16(933.781f), 932.0f);
  EXPECT_EQ(RoundToBf16(1.00390625f), 1.0f);  // exact tie rounds to even
  EXPECT_EQ(Bf16ToF32(F32ToBf16(-2.5f)), -2.5f);
}

TEST(TensorTest, SliceAndReshapeShareStorage) {
  Tensor t = Tensor::Zeros(DType::kF32, {4, 3});
  for (int i = 0; i < 12; ++i) t.data<float>()[i] = static_cast<float>(i);
  Tensor s = t.Slice0(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.data<float>()[0], 3.f);
  auto r = t.Reshape({2, 6});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data<float>()[7], 7.f);
  EXPECT_FALSE(t.Reshape({5}).ok());
}

TEST(TensorTest, F16Conversion) {
  EXPECT_EQ(F16ToF32(0x3C00), 1.0f);
  EXPECT_EQ(F16ToF32(0xC000), -2.0f);
  EXPECT_EQ(F16ToF32(0x0001), 5.9604644775390625e-08f);
}

}  // namespace
}  // namespace turbovid::engine
