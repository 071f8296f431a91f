// FP8 e4m3 linears on the CPU reference (docs/model-math.md §11.6): the per-row quantiser (exact
// codes, ties to even, subnormals, saturation, zero rows, bf16 rounding of the input) and
// Fp8LinearOp against a float64 dequantised reference and against the unquantised product.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/fp8.h"
#include "engine/core/quantize.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

using ::testing::HasSubstr;

Tensor Make(Shape shape, std::vector<float> v) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

TEST(QuantizeRowsFp8, ExactCodesForKnownValues) {
  // amax 448 → inv 1, scale 1: the codes are the e4m3 encodings of the values themselves.
  const float sub = std::ldexp(1.f, -9);  // smallest subnormal
  Tensor q, s;
  ASSERT_TRUE(QuantizeRowsFp8(Make({1, 12}, {448.f, -448.f, 1.f, 0.5f, 0.f, 1.0625f, 1.1875f,
                                             -3.f, sub, sub / 2, 3 * sub / 2, 240.f}),
                              &q, &s)
                  .ok());
  ASSERT_EQ(s.shape(), (Shape{1}));
  EXPECT_EQ(s.data<float>()[0], 1.f);
  const uint8_t want[12] = {
      0x7E,  // 448 = 1.75·2^8: exponent field 15, mantissa 6 (S.1111.111 is NaN)
      0xFE,  // -448
      0x38,  // 1: exponent field 7
      0x30,  // 0.5
      0x00,  // 0
      0x38,  // 1.0625: halfway between 1 and 1.125, ties to the even mantissa (0)
      0x3A,  // 1.1875: halfway between 1.125 and 1.25, ties to the even mantissa (2)
      0xC4,  // -3 = -1.5·2^1: exponent field 8, mantissa 4
      0x01,  // 2^-9: the smallest subnormal
      0x00,  // 2^-10: half of it, ties to even (0)
      0x02,  // 1.5·2^-9: ties to even (2)
      0x77,  // 240 = 1.875·2^7: exponent field 14, mantissa 7
  };
  for (int i = 0; i < 12; ++i) EXPECT_EQ(q.data<uint8_t>()[i], want[i]) << "element " << i;
}

TEST(QuantizeRowsFp8, ScalesPerRowAndMapsAmaxTo448) {
  Tensor q, s;
  ASSERT_TRUE(QuantizeRowsFp8(Make({2, 3}, {2.f, -1.f, 0.5f, -0.75f, 0.25f, 0.f}), &q, &s).ok());
  EXPECT_EQ(s.data<float>()[0], 2.f / 448.f);
  EXPECT_EQ(s.data<float>()[1], 0.75f / 448.f);
  EXPECT_EQ(q.data<uint8_t>()[0], 0x7E);                 // +amax → 448
  EXPECT_EQ(q.data<uint8_t>()[1], F32ToE4m3(-224.f));    // -1 · 224
  EXPECT_EQ(q.data<uint8_t>()[3], 0xFE);                 // -amax → -448
  EXPECT_EQ(E4m3ToF32(q.data<uint8_t>()[4]), 144.f);  // 0.25 · 448/0.75 = 149.3 → 144 (quantum 16)
}

TEST(QuantizeRowsFp8, SaturatesInsteadOfOverflowingToNan) {
  // An amax whose fp32 product amax · (448/amax) rounds above 448: the code must saturate to
  // 448 (0x7E), never become the NaN pattern 0x7F.
  float amax = 0.f;
  for (float a = 1.f; a < 2.f; a = std::nextafter(a, 2.f)) {
    if (a * (448.f / a) > 448.f && RoundToBf16(a) == a) {
      amax = a;
      break;
    }
  }
  ASSERT_GT(amax, 0.f) << "no bf16 amax overshoots 448";
  Tensor q, s;
  ASSERT_TRUE(QuantizeRowsFp8(Make({1, 2}, {amax, -amax}), &q, &s).ok());
  EXPECT_EQ(q.data<uint8_t>()[0], 0x7E);
  EXPECT_EQ(q.data<uint8_t>()[1], 0xFE);
  // The encoder itself saturates finite overflow and infinity.
  EXPECT_EQ(F32ToE4m3(1e9f), 0x7E);
  EXPECT_EQ(F32ToE4m3(-INFINITY), 0xFE);
  EXPECT_EQ(F32ToE4m3(464.f), 0x7E);  // would round up to 480, beyond the format
}

TEST(QuantizeRowsFp8, ZeroRowsGetScaleZeroAndZeroCodes) {
  Tensor q, s;
  ASSERT_TRUE(QuantizeRowsFp8(Make({3, 2}, {0.f, 0.f, 1.f, 2.f, -0.f, 0.f}), &q, &s).ok());
  EXPECT_EQ(s.data<float>()[0], 0.f);
  EXPECT_EQ(s.data<float>()[2], 0.f);
  EXPECT_EQ(q.data<uint8_t>()[0], 0x00);
  EXPECT_EQ(q.data<uint8_t>()[1], 0x00);
  EXPECT_EQ(q.data<uint8_t>()[4], 0x80);  // -0 keeps its sign, as cvt.rn.satfinite does
  EXPECT_EQ(q.data<uint8_t>()[5], 0x00);
}

TEST(QuantizeRowsFp8, RoundsTheInputToBf16First) {
  // 1 + 2^-10 is 1 in bf16: the amax (and so the scale) is that of the rounded value.
  Tensor q, s;
  ASSERT_TRUE(QuantizeRowsFp8(Make({1, 1}, {1.f + std::ldexp(1.f, -10)}), &q, &s).ok());
  EXPECT_EQ(s.data<float>()[0], 1.f / 448.f);
  Tensor bad = Tensor::Zeros(DType::kF32, {4});
  EXPECT_EQ(QuantizeRowsFp8(bad, &q, &s).code(), absl::StatusCode::kInvalidArgument);
}

Tensor RandomBf16(Shape shape, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, scale);
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = RoundToBf16(dist(gen));
  return t;
}

TEST(CpuFp8Linear, MatchesFloat64DequantisedReference) {
  const int64_t m = 37, k = 96, n = 40;
  auto be = MakeCpuBackend();
  Tensor x = RandomBf16({m, k}, 1, 1.f);
  // Row 5 all zero (scale 0), row 6 with one large outlier.
  for (int64_t c = 0; c < k; ++c) x.data<float>()[5 * k + c] = 0.f;
  x.data<float>()[6 * k + 3] = 300.f;
  Tensor w = RandomBf16({n, k}, 2, 0.1f);
  Tensor bias = RandomBf16({n}, 3, 0.5f);
  Tensor wq = Tensor::Zeros(DType::kU8, {n, k}), ws = Tensor::Zeros(DType::kF32, {n});
  Fp8QuantizeOp qop{&w, &wq, &ws};
  ASSERT_TRUE(be->Run(qop).ok());
  Tensor y = Tensor::Zeros(DType::kF32, {m, n});
  Tensor xq = Tensor::Zeros(DType::kU8, {m, k}), xs = Tensor::Zeros(DType::kF32, {m});
  Fp8LinearOp op{&x, &wq, &ws, &bias, &y, &xq, &xs};
  ASSERT_TRUE(be->Run(op).ok());

  // The probes are the quantiser's own output.
  Tensor want_q, want_s;
  ASSERT_TRUE(QuantizeRowsFp8(x, &want_q, &want_s).ok());
  EXPECT_EQ(std::memcmp(xq.raw(), want_q.raw(), xq.nbytes()), 0);
  EXPECT_EQ(std::memcmp(xs.raw(), want_s.raw(), xs.nbytes()), 0);
  EXPECT_EQ(xs.data<float>()[5], 0.f);

  // Reference: dequantise both operands in float64, dot, then the bf16 epilogue. Only the
  // rounding of the scaled product to fp32 separates it from the op: at most one bf16 ulp.
  double num = 0, den = 0, qnum = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0, exact = 0;
      for (int64_t c = 0; c < k; ++c) {
        ref += (double{E4m3ToF32(xq.data<uint8_t>()[i * k + c])} * xs.data<float>()[i]) *
               (double{E4m3ToF32(wq.data<uint8_t>()[j * k + c])} * ws.data<float>()[j]);
        exact += double{x.data<float>()[i * k + c]} * w.data<float>()[j * k + c];
      }
      const float want =
          RoundToBf16(RoundToBf16(static_cast<float>(ref)) + RoundToBf16(bias.data<float>()[j]));
      const float got = y.data<float>()[i * n + j];
      const float ulp = std::ldexp(1.f, std::ilogb(std::fabs(want) + 1e-30f) - 7);
      ASSERT_LE(std::fabs(got - want), ulp) << "y[" << i << ", " << j << "]";
      if (i == 5) {
        EXPECT_EQ(got, RoundToBf16(bias.data<float>()[j]));
      }
      const double with_bias = exact + bias.data<float>()[j];
      qnum += (got - with_bias) * (got - with_bias);
      num += (got - want) * (got - want);
      den += with_bias * with_bias;
    }
  }
  // Against the unquantised product: e4m3 keeps 3 mantissa bits (relative rounding error up to
  // 2^-4 per operand, ~2.5% rms), so the output's relative L2 error is a few percent.
  const double quant_rel = std::sqrt(qnum / den);
  EXPECT_LT(quant_rel, 0.06) << "rel L2 vs unquantised";
  EXPECT_GT(quant_rel, 1e-3);  // the quantiser really ran
  EXPECT_LT(std::sqrt(num / den), 1e-3);
}

TEST(CpuFp8Linear, ErrorsNameTheTensor) {
  auto be = MakeCpuBackend();
  Tensor x = Tensor::Zeros(DType::kF32, {4, 32});
  Tensor wq = Tensor::Zeros(DType::kU8, {8, 32}), ws = Tensor::Zeros(DType::kF32, {8});
  Tensor y = Tensor::Zeros(DType::kF32, {4, 8});
  Tensor w_i8 = Tensor::Zeros(DType::kI8, {8, 32});
  Tensor w_short = Tensor::Zeros(DType::kU8, {8, 16});
  Tensor ws_bad = Tensor::Zeros(DType::kF32, {4});
  Tensor ws_i32 = Tensor::Zeros(DType::kI32, {8});
  Tensor y_bad = Tensor::Zeros(DType::kF32, {4, 9});
  Tensor bias_bad = Tensor::Zeros(DType::kF32, {7});
  Tensor xs_bad = Tensor::Zeros(DType::kF32, {5});
  struct Bad {
    Fp8LinearOp op;
    const char* says;
  };
  const Bad bad[] = {
      {{&x, &w_i8, &ws, nullptr, &y}, "w_fp8"},
      {{&x, &w_short, &ws, nullptr, &y}, "do not chain"},
      {{&x, &wq, &ws_bad, nullptr, &y}, "w_scale"},
      {{&x, &wq, &ws_i32, nullptr, &y}, "w_scale"},
      {{&x, &wq, &ws, nullptr, &y_bad}, "fp8_linear: y"},
      {{&x, &wq, &ws, &bias_bad, &y}, "bias"},
      {{&x, &wq, &ws, nullptr, &y, nullptr, &xs_bad}, "x_scale"},
      {{nullptr, &wq, &ws, nullptr, &y}, "x missing"},
  };
  for (const Bad& b : bad) {
    const absl::Status s = be->Run(b.op);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << b.says;
    EXPECT_THAT(std::string(s.message()), HasSubstr(b.says));
  }
  Tensor q = Tensor::Zeros(DType::kI8, {4, 32}), s = Tensor::Zeros(DType::kF32, {4});
  const absl::Status qs = be->Run(Fp8QuantizeOp{&x, &q, &s});
  EXPECT_THAT(std::string(qs.message()), HasSubstr("fp8_quantize: q"));
}

}  // namespace
}  // namespace turbovid::engine
