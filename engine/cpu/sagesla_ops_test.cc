// CPU SageSLA: the int8 and V quantisers' edge cases, the instruction models, and the op against
// plain SLA (quantisation error only) with every probe filled.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "engine/core/fp8.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/sagesla_math.h"

namespace turbovid::engine {
namespace {

using cpu::sagesla::Int8BlockScale;
using cpu::sagesla::Int8Code;
using cpu::sagesla::RcpApproxBf16;
using cpu::sagesla::VFactor;
using cpu::sagesla::VScale;

TEST(SageSlaInt8, ScaleIsFusedMultiplyAdd) {
  EXPECT_EQ(Int8BlockScale(0.f), 1e-7f);  // an all-zero block keeps a positive scale
  EXPECT_EQ(Int8BlockScale(4.5f), std::fma(4.5f, 1.f / 127.f, 1e-7f));
  // 4.5/127 + 1e-7 rounded twice (IEEE division, then the add) is one ulp above upstream's.
  EXPECT_NE(Int8BlockScale(4.5f), 4.5f / 127.f + 1e-7f);
}

TEST(SageSlaInt8, RoundsHalfAwayFromZeroAndNeverReaches128) {
  const float scale = 0.5f;
  EXPECT_EQ(Int8Code(1.25f, scale), 3);  // 2.5 -> 3 (not 2: no ties to even)
  EXPECT_EQ(Int8Code(-1.25f, scale), -3);
  EXPECT_EQ(Int8Code(0.74f, scale), 1);
  EXPECT_EQ(Int8Code(0.24f, scale), 0);
  EXPECT_EQ(Int8Code(-0.24f, scale), 0);
  EXPECT_EQ(Int8Code(0.f, scale), 0);
  // ±amax of a block: the +1e-7 in the scale keeps |x/scale| below 127, so the codes are
  // symmetric ±127 (no -128).
  for (float amax : {0.01f, 1.f, 4.5f, 300.f, 6e4f}) {
    const float s = Int8BlockScale(amax);
    EXPECT_EQ(Int8Code(amax, s), 127) << amax;
    EXPECT_EQ(Int8Code(-amax, s), -127) << amax;
  }
  // Tiny blocks: the 1e-7 dominates, codes shrink towards 0.
  EXPECT_EQ(Int8Code(1e-5f, Int8BlockScale(1e-5f)), 56);
  EXPECT_EQ(Int8Code(1e-8f, Int8BlockScale(1e-8f)), 0);
  EXPECT_EQ(Int8Code(std::numeric_limits<float>::quiet_NaN(), scale), 0);
  EXPECT_EQ(Int8Code(1e30f, scale), 127);  // saturates like cvt.rzi.s8.f32
  EXPECT_EQ(Int8Code(-1e30f, scale), -128);
}

TEST(SageSlaV, ReciprocalTableScalesWithTheExponent) {
  int not_rounded = 0;  // the H100 measurement: 20 of the 128 are the rounded 1/x's neighbour
  for (int m = 0; m < 128; ++m) {
    const float x = 1.f + static_cast<float>(m) / 128.f;  // bf16-exact
    const float r = RcpApproxBf16(x);
    not_rounded += r != 1.f / x;
    EXPECT_NEAR(r, 1.f / x, std::ldexp(1.f, -23)) << m;  // within 1 ulp of 1/x in (0.5, 1]
    EXPECT_EQ(RcpApproxBf16(std::ldexp(x, 5)), std::ldexp(r, -5)) << m;
    EXPECT_EQ(RcpApproxBf16(-std::ldexp(x, -7)), -std::ldexp(r, 7)) << m;
  }
  EXPECT_EQ(not_rounded, 20);
  EXPECT_EQ(RcpApproxBf16(1.f), 1.f);
  EXPECT_EQ(RcpApproxBf16(0.f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(RcpApproxBf16(std::numeric_limits<float>::infinity()), 0.f);
  EXPECT_EQ(RcpApproxBf16(0x1p127f), 0.f);  // 2^-127 flushed (ftz)
}

TEST(SageSlaV, ScaleAndFactorKeepTheRangeAt2_25) {
  for (float amax : {0.015625f, 0.3f, 1.f, 3.703125f, 4.125f, 100.f}) {
    const float a = RoundToBf16(amax);
    EXPECT_EQ(VScale(a), a * (1.f / 2.25f));
    const float f = VFactor(a);
    EXPECT_NEAR(a * f, 2.25f, 2.25f * 0x1p-22f) << a;
    EXPECT_LE(std::fabs(E4m3ToF32(F32ToE4m3(a * f))), 2.25f) << a;
  }
  // An all-zero channel: factor inf, so 0·inf = NaN codes, as upstream's kernel produces.
  EXPECT_TRUE(std::isinf(VFactor(0.f)));
  EXPECT_EQ(F32ToE4m3(0.f * VFactor(0.f)), kE4m3NaN);
}

Tensor Random(Shape shape, uint32_t seed, float scale = 1.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, scale);
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = RoundToBf16(dist(gen));
  return t;
}

double RelL2(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / den);
}

// Both variants on a ragged sequence (tail blocks in q, k and the V padding): every probe is
// filled, the block map agrees with SLA's at the same block sizes, and the output is SLA's up to
// the quantisation error (a few percent, as upstream's).
TEST(CpuSageSla, MatchesSlaUpToQuantisationWithEveryProbe) {
  auto be = MakeCpuBackend();
  const int64_t l = 300, n = 2, d = 64;
  Tensor q = Random({l, n, d}, 1, 2.f), k = Random({l, n, d}, 2, 2.f), v = Random({l, n, d}, 3);
  Tensor pw = Random({d, d}, 4, 0.05f), pb = Random({d}, 5, 0.05f);
  for (SageSlaVariant variant : {SageSlaVariant::kSm90, SageSlaVariant::kSm89}) {
    const int bq = SageSlaBlockQ(variant), bk = SageSlaBlockK(variant);
    const int64_t nq = (l + bq - 1) / bq, nk = (l + bk - 1) / bk;
    Tensor out = Tensor::Zeros(DType::kF32, {l, n, d}), os = out.Clone(), sla_out = out.Clone();
    Tensor map = Tensor::Zeros(DType::kI8, {n, nq, nk}), sla_map = map.Clone();
    Tensor q8 = Tensor::Zeros(DType::kI8, {l, n, d}), k8 = q8.Clone();
    Tensor v8 = Tensor::Zeros(DType::kU8, {l, n, d});
    Tensor qs = Tensor::Zeros(DType::kF32, {n, nq}), ks = Tensor::Zeros(DType::kF32, {n, nk});
    Tensor km = Tensor::Zeros(DType::kF32, {n, d}), vs = km.Clone();
    SageSlaOp op{&q,  &k,  &v,  &pw, &pb, 0.5f, variant, &out, &map,
                 &os, &q8, &qs, &km, &k8, &ks,  &v8,     &vs};
    ASSERT_TRUE(be->Run(op).ok());
    SlaOp sla{&q, &k, &v, &pw, &pb, 0.5f, bq, bk, &sla_out, &sla_map, nullptr};
    ASSERT_TRUE(be->Run(sla).ok());
    for (int64_t i = 0; i < map.numel(); ++i) {
      ASSERT_EQ(map.data<int8_t>()[i], sla_map.data<int8_t>()[i]) << i;
    }
    const double err = RelL2(out, sla_out);
    EXPECT_GT(err, 1e-4) << "quantisation must show";
    EXPECT_LT(err, 0.06);
    for (int64_t i = 0; i < os.numel(); ++i) {
      EXPECT_EQ(os.data<float>()[i], RoundToBf16(os.data<float>()[i]));  // o_s is bf16
    }
    int max_q = 0, max_k = 0;
    for (int64_t i = 0; i < q8.numel(); ++i) {
      max_q = std::max(max_q, std::abs(int{q8.data<int8_t>()[i]}));
      max_k = std::max(max_k, std::abs(int{k8.data<int8_t>()[i]}));
      EXPECT_LE(std::fabs(E4m3ToF32(v8.data<uint8_t>()[i])), 2.25f);
    }
    EXPECT_EQ(max_q, 127);
    EXPECT_EQ(max_k, 127);
    for (int64_t i = 0; i < qs.numel(); ++i) EXPECT_GT(qs.data<float>()[i], 0.f);
    for (int64_t i = 0; i < km.numel(); ++i) {
      EXPECT_EQ(km.data<float>()[i], RoundToBf16(km.data<float>()[i]));
      EXPECT_GT(vs.data<float>()[i], 0.f);
    }
  }
}

TEST(CpuSageSla, RejectsBadShapes) {
  auto be = MakeCpuBackend();
  const int64_t l = 40, n = 1;
  for (int64_t d : {32, 96}) {
    Tensor q = Random({l, n, d}, 1), pw = Random({d, d}, 2), pb = Random({d}, 3);
    Tensor out = Tensor::Zeros(DType::kF32, {l, n, d});
    SageSlaOp op{&q, &q, &q, &pw, &pb, 0.5f, SageSlaVariant::kSm90, &out};
    EXPECT_EQ(be->Run(op).code(), absl::StatusCode::kInvalidArgument) << d;
  }
  const int64_t d = 64;
  Tensor q = Random({l, n, d}, 1), pw = Random({d, d}, 2), pb = Random({d}, 3);
  Tensor out = Tensor::Zeros(DType::kF32, {l, n, d});
  Tensor bad_map = Tensor::Zeros(DType::kI8, {n, 1, 2});  // sm90 wants [1, 1, 1]
  SageSlaOp op{&q, &q, &q, &pw, &pb, 0.5f, SageSlaVariant::kSm90, &out, &bad_map};
  EXPECT_EQ(be->Run(op).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turbovid::engine
