// Block int8 quantiser and CPU Int8LinearOp: saturation, ties to even, tiles, dequantised GEMM.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/core/backend.h"
#include "engine/core/quantize.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

Tensor Make(Shape shape, std::vector<float> v) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

TEST(QuantizeBlockInt8, SaturatesPlusAmaxAndKeepsMinusAmax) {
  Tensor q, s;
  ASSERT_TRUE(QuantizeBlockInt8(Make({1, 4}, {2.f, -2.f, 1.f, 0.f}), &q, &s).ok());
  EXPECT_EQ(q.data<int8_t>()[0], 127);   // +amax · 128/amax = 128 saturates
  EXPECT_EQ(q.data<int8_t>()[1], -128);  // -amax maps exactly to -128
  EXPECT_EQ(q.data<int8_t>()[2], 64);
  EXPECT_EQ(q.data<int8_t>()[3], 0);
  ASSERT_EQ(s.shape(), (Shape{1, 1}));
  EXPECT_EQ(s.data<float>()[0], 2.f / 128.f);
}

TEST(QuantizeBlockInt8, RoundsHalfToEven) {
  // amax 128 → multiplier 1: x.5 values round to the even neighbour.
  Tensor q, s;
  ASSERT_TRUE(
      QuantizeBlockInt8(Make({1, 6}, {128.f, 0.5f, 1.5f, 2.5f, -0.5f, -3.5f}), &q, &s).ok());
  EXPECT_EQ(q.data<int8_t>()[1], 0);
  EXPECT_EQ(q.data<int8_t>()[2], 2);
  EXPECT_EQ(q.data<int8_t>()[3], 2);
  EXPECT_EQ(q.data<int8_t>()[4], 0);
  EXPECT_EQ(q.data<int8_t>()[5], -4);
}

TEST(QuantizeBlockInt8, DividesAsUpstreamsFastMathBuild) {
  // 128/amax is 128·rcp.approx(amax): for amax 1.15625 (bf16 mantissa 20) the instruction is one
  // ulp below the rounded 1/amax, which moves this code from 2 (exact division) to 1; for
  // 1.5078125 (mantissa 65, one ulp above) the other way, 0 → 1.
  Tensor q, s;
  ASSERT_TRUE(QuantizeBlockInt8(Make({1, 2}, {1.15625f, 0.0135498046875f}), &q, &s).ok());
  EXPECT_EQ(q.data<int8_t>()[1], 1);
  EXPECT_EQ(static_cast<int>(std::nearbyint(0.0135498046875f * (128.f / 1.15625f))), 2);
  ASSERT_TRUE(QuantizeBlockInt8(Make({1, 2}, {1.5078125f, 0.005889892578125f}), &q, &s).ok());
  EXPECT_EQ(q.data<int8_t>()[1], 1);
  EXPECT_EQ(static_cast<int>(std::nearbyint(0.005889892578125f * (128.f / 1.5078125f))), 0);
}

TEST(QuantizeBlockInt8, TilesAndAllZeroFloor) {
  // 130 x 3: two row tiles; the second (rows 128, 129) is all zero → amax floor 1e-8.
  Tensor w = Tensor::Zeros(DType::kF32, {130, 3});
  for (int64_t i = 0; i < 128 * 3; ++i) w.data<float>()[i] = static_cast<float>(i % 7) - 3.f;
  Tensor q, s;
  ASSERT_TRUE(QuantizeBlockInt8(w, &q, &s).ok());
  ASSERT_EQ(s.shape(), (Shape{2, 1}));
  EXPECT_EQ(s.data<float>()[0], 3.f / 128.f);
  EXPECT_EQ(s.data<float>()[1], 1e-8f / 128.f);
  EXPECT_EQ(q.data<int8_t>()[129 * 3 + 2], 0);
  Tensor bad = Tensor::Zeros(DType::kF32, {4});
  EXPECT_EQ(QuantizeBlockInt8(bad, &q, &s).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CpuInt8Linear, DequantisedGemmAndBf16Epilogue) {
  auto be = MakeCpuBackend();
  std::mt19937 gen(3);
  std::normal_distribution<float> dist(0.f, 1.f);
  const int64_t m = 5, k = 200, n = 3;  // K spans a full and a partial 128-wide block
  Tensor x = Tensor::Zeros(DType::kF32, {m, k}), w = Tensor::Zeros(DType::kF32, {n, k});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(gen);
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = dist(gen) * 0.1f;
  Tensor bias = Make({n}, {0.5f, -0.25f, 1.f});
  Tensor wq, ws;
  ASSERT_TRUE(QuantizeBlockInt8(w, &wq, &ws).ok());
  Tensor y = Tensor::Zeros(DType::kF32, {m, n}), acc = Tensor::Zeros(DType::kF32, {m, n});
  Tensor xq = Tensor::Zeros(DType::kI8, {m, k}), xs = Tensor::Zeros(DType::kF32, {1, 2});
  Int8LinearOp op{&x, &wq, &ws, &bias, &y, &xq, &xs, &acc};
  ASSERT_TRUE(be->Run(op).ok());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0;  // exact product of the unquantised operands
      for (int64_t c = 0; c < k; ++c)
        ref += double{x.data<float>()[i * k + c]} * w.data<float>()[j * k + c];
      EXPECT_NEAR(acc.data<float>()[i * n + j], ref, 0.05 * std::sqrt(double(k)) * 0.1);
      const float want =
          RoundToBf16(RoundToBf16(acc.data<float>()[i * n + j]) + bias.data<float>()[j]);
      EXPECT_EQ(y.data<float>()[i * n + j], want);
    }
  }
  Tensor bad_scale = Tensor::Zeros(DType::kF32, {1, 1});
  Int8LinearOp bad{&x, &wq, &bad_scale, &bias, &y};
  EXPECT_EQ(be->Run(bad).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turbovid::engine
