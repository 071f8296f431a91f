// CPU conv ops against naive loops on random data: conv3d (strides, asymmetric pads, no bias),
// channel RMS norm (incl. in place and all-zero positions), nearest ×2 upsampling.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "common/status_matchers.h"
#include "engine/core/ops.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

using ::turbovid::common::testing::StatusIs;

Tensor Random(Shape shape, uint32_t seed) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// Plain 7-deep loop; double accumulation.
Tensor NaiveConv3d(const Tensor& x, const Tensor& w, const Tensor* bias, std::array<int, 3> s,
                   std::array<int, 3> lo, std::array<int, 3> hi) {
  const int64_t ci_n = x.dim(0), t = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t co_n = w.dim(0), kt = w.dim(2), kh = w.dim(3), kw = w.dim(4);
  const int64_t to = (t + lo[0] + hi[0] - kt) / s[0] + 1, ho = (h + lo[1] + hi[1] - kh) / s[1] + 1,
                wo = (wd + lo[2] + hi[2] - kw) / s[2] + 1;
  Tensor y = Tensor::Zeros(DType::kF32, {co_n, to, ho, wo});
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  for (int64_t co = 0; co < co_n; ++co)
    for (int64_t a = 0; a < to; ++a)
      for (int64_t b = 0; b < ho; ++b)
        for (int64_t c = 0; c < wo; ++c) {
          double acc = bias ? bias->data<float>()[co] : 0.0;
          for (int64_t ci = 0; ci < ci_n; ++ci)
            for (int64_t i = 0; i < kt; ++i)
              for (int64_t j = 0; j < kh; ++j)
                for (int64_t k = 0; k < kw; ++k) {
                  const int64_t ti = a * s[0] + i - lo[0], hi_ = b * s[1] + j - lo[1],
                                wi = c * s[2] + k - lo[2];
                  if (ti < 0 || ti >= t || hi_ < 0 || hi_ >= h || wi < 0 || wi >= wd) continue;
                  acc += double{wp[(((co * ci_n + ci) * kt + i) * kh + j) * kw + k]} *
                         xp[((ci * t + ti) * h + hi_) * wd + wi];
                }
          y.data<float>()[((co * to + a) * ho + b) * wo + c] = static_cast<float>(acc);
        }
  return y;
}

struct ConvCase {
  Shape x, w;
  std::array<int, 3> stride, lo, hi;
  bool bias;
};

TEST(CpuConvOps, Conv3dMatchesNaive) {
  auto be = MakeCpuBackend();
  const std::vector<ConvCase> cases = {
      {{5, 4, 7, 9}, {11, 5, 3, 3, 3}, {1, 1, 1}, {2, 1, 1}, {0, 1, 1}, true},  // causal 3x3x3
      {{3, 5, 8, 10}, {4, 3, 3, 3, 3}, {1, 2, 2}, {0, 0, 0}, {0, 1, 1}, true},  // downsample2d
      {{6, 5, 4, 6}, {6, 6, 3, 1, 1}, {2, 1, 1}, {0, 0, 0}, {0, 0, 0}, false},  // time_conv /2
      {{2, 2, 6, 13}, {9, 2, 1, 3, 5}, {1, 3, 2}, {0, 2, 3}, {0, 0, 1}, true},  // odd strides
      {{7, 1, 5, 5}, {17, 7, 1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, true},  // 1x1x1
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    Tensor x = Random(c.x, seed++), w = Random(c.w, seed++), b = Random({c.w[0]}, seed++);
    Tensor want = NaiveConv3d(x, w, c.bias ? &b : nullptr, c.stride, c.lo, c.hi);
    Tensor y = Tensor::Zeros(DType::kF32, want.shape());
    ASSERT_TRUE(be->Run(Conv3dOp{&x, &w, c.bias ? &b : nullptr, c.stride, c.lo, c.hi, &y}).ok())
        << ShapeString(c.x);
    for (int64_t i = 0; i < y.numel(); ++i) {
      ASSERT_NEAR(y.data<float>()[i], want.data<float>()[i], 1e-4)
          << ShapeString(c.x) << " at " << i;
    }
  }
}

// x_prev (history frames read in place) gives the conv of the concatenation along T.
TEST(CpuConvOps, Conv3dWithHistoryMatchesConcatenation) {
  auto be = MakeCpuBackend();
  struct HistCase {
    Shape prev, x, w;
    std::array<int, 3> lo, hi;
  };
  const std::vector<HistCase> cases = {
      {{5, 2, 7, 9}, {5, 4, 7, 9}, {6, 5, 3, 3, 3}, {0, 1, 1}, {0, 1, 1}},  // cache + 4 frames
      {{5, 2, 7, 9}, {5, 1, 7, 9}, {6, 5, 3, 3, 3}, {0, 1, 1}, {0, 1, 1}},  // cache + 1 frame
      {{4, 2, 3, 5}, {4, 2, 3, 5}, {8, 4, 3, 1, 1}, {0, 0, 0}, {0, 0, 0}},  // time conv
      {{3, 1, 4, 4}, {3, 3, 4, 4}, {2, 3, 3, 3, 3}, {1, 1, 1}, {0, 1, 1}},  // plus padding
  };
  uint32_t seed = 100;
  for (const HistCase& c : cases) {
    Tensor prev = Random(c.prev, seed++), x = Random(c.x, seed++), w = Random(c.w, seed++);
    Tensor joined = Tensor::Zeros(DType::kF32, {c.x[0], c.prev[1] + c.x[1], c.x[2], c.x[3]});
    const int64_t plane = c.x[2] * c.x[3];
    for (int64_t ch = 0; ch < c.x[0]; ++ch) {
      float* dst = joined.data<float>() + ch * joined.dim(1) * plane;
      std::copy_n(prev.data<float>() + ch * c.prev[1] * plane, c.prev[1] * plane, dst);
      std::copy_n(x.data<float>() + ch * c.x[1] * plane, c.x[1] * plane, dst + c.prev[1] * plane);
    }
    Tensor want = NaiveConv3d(joined, w, nullptr, {1, 1, 1}, c.lo, c.hi);
    Tensor y = Tensor::Zeros(DType::kF32, want.shape());
    Conv3dOp op{&x, &w, nullptr, {1, 1, 1}, c.lo, c.hi, &y};
    op.x_prev = &prev;
    ASSERT_TRUE(be->Run(op).ok()) << ShapeString(c.x);
    for (int64_t i = 0; i < y.numel(); ++i) {
      ASSERT_NEAR(y.data<float>()[i], want.data<float>()[i], 1e-4)
          << ShapeString(c.x) << " at " << i;
    }
    // The same history as a ring rotated by one frame (x_prev_first = 1) gives the same result.
    if (c.prev[1] < 2) continue;
    const int64_t tp = c.prev[1];
    Tensor ring = Tensor::Zeros(DType::kF32, c.prev);
    for (int64_t ch = 0; ch < c.prev[0]; ++ch) {
      for (int64_t f = 0; f < tp; ++f) {  // time-order frame f sits at ring slot (f + 1) % tp
        std::copy_n(prev.data<float>() + (ch * tp + f) * plane, plane,
                    ring.data<float>() + (ch * tp + (f + 1) % tp) * plane);
      }
    }
    Tensor y2 = Tensor::Zeros(DType::kF32, want.shape());
    Conv3dOp op2{&x, &w, nullptr, {1, 1, 1}, c.lo, c.hi, &y2};
    op2.x_prev = &ring;
    op2.x_prev_first = 1;
    ASSERT_TRUE(be->Run(op2).ok()) << ShapeString(c.x);
    for (int64_t i = 0; i < y2.numel(); ++i) {
      ASSERT_NEAR(y2.data<float>()[i], want.data<float>()[i], 1e-4)
          << "ring " << ShapeString(c.x) << " at " << i;
    }
  }
  // A history tensor that does not match x is named.
  Tensor x = Random({5, 2, 7, 9}, 1), w = Random({6, 5, 3, 3, 3}, 2);
  Tensor bad_prev = Random({5, 2, 7, 8}, 3), y = Tensor::Zeros(DType::kF32, {6, 2, 7, 9});
  Conv3dOp op{&x, &w, nullptr, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, &y};
  op.x_prev = &bad_prev;
  const absl::Status s = be->Run(op);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("x_prev"));
}

TEST(CpuConvOps, Conv3dRejectsBadShapes) {
  auto be = MakeCpuBackend();
  Tensor x = Random({4, 3, 5, 5}, 1), w = Random({2, 3, 3, 3, 3}, 2);
  Tensor y = Tensor::Zeros(DType::kF32, {2, 1, 3, 3});
  absl::Status s = be->Run(Conv3dOp{&x, &w, nullptr, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, &y});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("conv3d: w"));
  Tensor w2 = Random({2, 4, 3, 3, 3}, 3), bad_y = Tensor::Zeros(DType::kF32, {2, 1, 3, 4});
  s = be->Run(Conv3dOp{&x, &w2, nullptr, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, &bad_y});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  Tensor bias = Random({3}, 4), good_y = Tensor::Zeros(DType::kF32, {2, 1, 3, 3});
  s = be->Run(Conv3dOp{&x, &w2, &bias, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, &good_y});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  s = be->Run(Conv3dOp{&x, &w2, nullptr, {0, 1, 1}, {0, 0, 0}, {0, 0, 0}, &good_y});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CpuConvOps, ChannelRmsNormIsScaledL2Normalise) {
  auto be = MakeCpuBackend();
  const int64_t c = 6, p = 1030;  // more positions than one tile
  Tensor x = Random({c, p}, 7), gamma = Random({c}, 8);
  for (int64_t ch = 0; ch < c; ++ch) x.data<float>()[ch * p + 5] = 0.f;  // all-zero position
  Tensor y = Tensor::Zeros(DType::kF32, {c, p});
  ASSERT_TRUE(be->Run(ChannelRmsNormOp{&x, &gamma, &y}).ok());
  for (int64_t i = 0; i < p; ++i) {
    double ss = 0;
    for (int64_t ch = 0; ch < c; ++ch)
      ss += double{x.data<float>()[ch * p + i]} * x.data<float>()[ch * p + i];
    const double n = std::max(std::sqrt(ss), 1e-12);
    for (int64_t ch = 0; ch < c; ++ch) {
      const double want =
          x.data<float>()[ch * p + i] / n * std::sqrt(double(c)) * gamma.data<float>()[ch];
      ASSERT_NEAR(y.data<float>()[ch * p + i], want, 1e-5) << i;
    }
  }
  Tensor inplace = x.Clone();
  ASSERT_TRUE(be->Run(ChannelRmsNormOp{&inplace, &gamma, &inplace}).ok());
  for (int64_t i = 0; i < c * p; ++i) ASSERT_FLOAT_EQ(inplace.data<float>()[i], y.data<float>()[i]);
  Tensor bad_gamma = Random({c + 1}, 9);
  EXPECT_THAT(be->Run(ChannelRmsNormOp{&x, &bad_gamma, &y}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ChannelRmsNormOp of x [C, T, H, W] (per position over C), SiLU when `silu`.
Tensor NormedInput(Backend& be, const Tensor& x, const Tensor& gamma, bool silu) {
  const int64_t c = x.dim(0), p = x.numel() / c;
  Tensor xv = *x.Reshape({c, p});
  Tensor y = Tensor::Zeros(DType::kF32, {c, p});
  EXPECT_TRUE(be.Run(ChannelRmsNormOp{&xv, &gamma, &y, silu}).ok());
  return *y.Reshape(x.shape());
}

// ChannelRmsStatsOp of x [C, T, H, W] as [T, H, W].
Tensor InvRms(Backend& be, const Tensor& x) {
  const int64_t c = x.dim(0), p = x.numel() / c;
  Tensor xv = *x.Reshape({c, p});
  Tensor inv = Tensor::Zeros(DType::kF32, {p});
  EXPECT_TRUE(be.Run(ChannelRmsStatsOp{&xv, &inv}).ok());
  return *inv.Reshape({x.dim(1), x.dim(2), x.dim(3)});
}

void ExpectClose(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double w = want.data<float>()[i];
    ASSERT_NEAR(got.data<float>()[i], w, tol * (1.0 + std::abs(w))) << what << " at " << i;
  }
}

TEST(CpuConvOps, ChannelRmsStatsTimesGammaIsTheNorm) {
  auto be = MakeCpuBackend();
  const int64_t c = 7, p = 1100;
  Tensor x = Random({c, p}, 21), gamma = Random({c}, 22);
  for (int64_t ch = 0; ch < c; ++ch) x.data<float>()[ch * p + 3] = 0.f;  // all-zero position
  Tensor inv = Tensor::Zeros(DType::kF32, {p}), y = Tensor::Zeros(DType::kF32, {c, p});
  ASSERT_TRUE(be->Run(ChannelRmsStatsOp{&x, &inv}).ok());
  ASSERT_TRUE(be->Run(ChannelRmsNormOp{&x, &gamma, &y}).ok());
  EXPECT_TRUE(std::isfinite(inv.data<float>()[3]));
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < p; ++i) {
      const float fused =
          x.data<float>()[ch * p + i] * inv.data<float>()[i] * gamma.data<float>()[ch];
      ASSERT_NEAR(fused, y.data<float>()[ch * p + i], 1e-5) << ch << "," << i;
    }
  }
  Tensor bad = Tensor::Zeros(DType::kF32, {p + 1});
  const absl::Status s = be->Run(ChannelRmsStatsOp{&x, &bad});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("inv_rms"));
}

// The fused conv (RMS_norm + SiLU on the operand load, bias and residual in the epilogue, the
// history frames normed with their own statistics) equals the unfused op sequence.
TEST(CpuConvOps, Conv3dFusedNormSiluResidualMatchesSequence) {
  auto be = MakeCpuBackend();
  struct FusedCase {
    Shape prev, x, w;  // prev[1] == 0: no history
    std::array<int, 3> lo, hi;
    bool norm, silu, residual;
    int first;
  };
  const std::vector<FusedCase> cases = {
      {{5, 0, 6, 8}, {5, 3, 6, 8}, {7, 5, 3, 3, 3}, {2, 1, 1}, {0, 1, 1}, true, true, true, 0},
      {{5, 2, 6, 8}, {5, 4, 6, 8}, {7, 5, 3, 3, 3}, {0, 1, 1}, {0, 1, 1}, true, true, true, 0},
      {{5, 2, 6, 8}, {5, 1, 6, 8}, {5, 5, 3, 3, 3}, {0, 1, 1}, {0, 1, 1}, true, true, false, 1},
      {{9, 0, 4, 5}, {9, 1, 4, 5}, {27, 9, 1, 1, 1}, {0, 0, 0}, {0, 0, 0}, true, false, false, 0},
      {{4, 0, 5, 5}, {4, 2, 5, 5}, {6, 4, 1, 1, 1}, {0, 0, 0}, {0, 0, 0}, false, false, true, 0},
      {{4, 0, 5, 5}, {4, 2, 5, 5}, {6, 4, 3, 3, 3}, {2, 1, 1}, {0, 1, 1}, false, true, false, 0},
  };
  uint32_t seed = 300;
  for (const FusedCase& c : cases) {
    const std::string what = ShapeString(c.x) + " prev " + ShapeString(c.prev) +
                             (c.norm ? " norm" : "") + (c.silu ? " silu" : "") +
                             (c.residual ? " residual" : "");
    const bool hist = c.prev[1] > 0;
    Tensor x = Random(c.x, seed++), w = Random(c.w, seed++), b = Random({c.w[0]}, seed++);
    Tensor prev = hist ? Random(c.prev, seed++) : Tensor();
    Tensor gamma = Random({c.x[0]}, seed++);
    // Unfused: normalise (+ SiLU) x and the history, conv, add the residual.
    Tensor xn = x, pn = prev;
    if (c.norm) {
      xn = NormedInput(*be, x, gamma, c.silu);
      if (hist) pn = NormedInput(*be, prev, gamma, c.silu);
    } else if (c.silu) {
      xn = x.Clone();
      ASSERT_TRUE(be->Run(UnaryOp{UnaryKind::kSilu, &x, &xn}).ok());
      if (hist) {
        pn = prev.Clone();
        ASSERT_TRUE(be->Run(UnaryOp{UnaryKind::kSilu, &prev, &pn}).ok());
      }
    }
    const int64_t t = c.prev[1] + c.x[1];
    const int64_t to = t + c.lo[0] + c.hi[0] - c.w[2] + 1;
    const Shape y_shape = {c.w[0], to, c.x[2] + c.lo[1] + c.hi[1] - c.w[3] + 1,
                           c.x[3] + c.lo[2] + c.hi[2] - c.w[4] + 1};
    Tensor want = Tensor::Zeros(DType::kF32, y_shape);
    Conv3dOp plain{&xn, &w, &b, {1, 1, 1}, c.lo, c.hi, &want};
    if (hist) {
      plain.x_prev = &pn;
      plain.x_prev_first = c.first;
    }
    ASSERT_TRUE(be->Run(plain).ok()) << what;
    Tensor res = Random(y_shape, seed++);
    if (c.residual) {
      ASSERT_TRUE(be->Run(BinaryOp{BinaryKind::kAdd, &want, &res, &want}).ok());
    }
    // Fused.
    Tensor inv = InvRms(*be, x), inv_prev = hist ? InvRms(*be, prev) : Tensor();
    Tensor y = Tensor::Zeros(DType::kF32, y_shape);
    Conv3dOp op{&x, &w, &b, {1, 1, 1}, c.lo, c.hi, &y};
    if (hist) {
      op.x_prev = &prev;
      op.x_prev_first = c.first;
    }
    if (c.norm) {
      op.norm_gamma = &gamma;
      op.norm_inv_rms = &inv;
      if (hist) op.norm_inv_rms_prev = &inv_prev;
    }
    op.silu = c.silu;
    if (c.residual) op.residual = &res;
    ASSERT_TRUE(be->Run(op).ok()) << what;
    ExpectClose(y, want, 1e-5, what);
    // The residual may be y itself (the decoder's in-place block output).
    if (c.residual) {
      Tensor y2 = res.Clone();
      op.y = &y2;
      op.residual = &y2;
      ASSERT_TRUE(be->Run(op).ok()) << what;
      ExpectClose(y2, want, 1e-5, what + " residual == y");
    }
  }
}

// Each fused field with a wrong shape, dtype or pairing is rejected with its name.
TEST(CpuConvOps, Conv3dFusedFieldsRejectBadShapes) {
  auto be = MakeCpuBackend();
  Tensor x = Random({4, 2, 5, 6}, 1), w = Random({3, 4, 3, 3, 3}, 2);
  Tensor prev = Random({4, 2, 5, 6}, 3);
  Tensor y = Tensor::Zeros(DType::kF32, {3, 2, 5, 6});
  Tensor gamma = Random({4}, 4), inv = Tensor::Zeros(DType::kF32, {2, 5, 6});
  Tensor inv_prev = Tensor::Zeros(DType::kF32, {2, 5, 6});
  const auto base = [&] {
    Conv3dOp op{&x, &w, nullptr, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, &y};
    op.x_prev = &prev;
    op.norm_gamma = &gamma;
    op.norm_inv_rms = &inv;
    op.norm_inv_rms_prev = &inv_prev;
    return op;
  };
  ASSERT_TRUE(be->Run(base()).ok());
  const auto expect_named = [&](const Conv3dOp& op, const std::string& field) {
    const absl::Status s = be->Run(op);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << field;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(field)) << s.message();
  };
  Tensor gamma5 = Random({5}, 5);
  Conv3dOp op = base();
  op.norm_gamma = &gamma5;
  expect_named(op, "norm_gamma");
  op = base();
  op.norm_gamma = nullptr;
  expect_named(op, "norm_gamma");
  Tensor inv_bad = Tensor::Zeros(DType::kF32, {2, 5, 5});
  op = base();
  op.norm_inv_rms = &inv_bad;
  expect_named(op, "norm_inv_rms");
  op = base();
  op.norm_inv_rms = nullptr;
  expect_named(op, "norm_inv_rms");
  Tensor inv_i32 = Tensor::Zeros(DType::kI32, {2, 5, 6});
  op = base();
  op.norm_inv_rms = &inv_i32;
  expect_named(op, "norm_inv_rms");
  Tensor inv_prev_bad = Tensor::Zeros(DType::kF32, {1, 5, 6});
  op = base();
  op.norm_inv_rms_prev = &inv_prev_bad;
  expect_named(op, "norm_inv_rms_prev");
  op = base();
  op.norm_inv_rms_prev = nullptr;
  expect_named(op, "norm_inv_rms_prev");
  op = base();
  op.x_prev = nullptr;  // statistics of history frames that are not there
  Tensor y_no_hist = Tensor::Zeros(DType::kF32, {3, 2, 5, 6});
  op.y = &y_no_hist;
  op.pad_lo = {2, 1, 1};
  expect_named(op, "norm_inv_rms_prev");
  Tensor res_bad = Tensor::Zeros(DType::kF32, {3, 2, 5, 5});
  op = base();
  op.residual = &res_bad;
  expect_named(op, "residual");
  op = base();
  op.residual = &x;  // the conv's own input
  expect_named(op, "residual");
}

TEST(CpuConvOps, Upsample2xRepeatsPixels) {
  auto be = MakeCpuBackend();
  Tensor x = Random({2, 3, 4, 5}, 11);
  Tensor y = Tensor::Zeros(DType::kF32, {2, 3, 8, 10});
  ASSERT_TRUE(be->Run(Upsample2xOp{&x, &y}).ok());
  for (int64_t pl = 0; pl < 6; ++pl)
    for (int64_t i = 0; i < 8; ++i)
      for (int64_t j = 0; j < 10; ++j) {
        ASSERT_EQ(y.data<float>()[(pl * 8 + i) * 10 + j],
                  x.data<float>()[(pl * 4 + i / 2) * 5 + j / 2]);
      }
  Tensor bad = Tensor::Zeros(DType::kF32, {2, 3, 8, 9});
  EXPECT_THAT(be->Run(Upsample2xOp{&x, &bad}), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Benchmark entry (not run by default): one VAE decoder conv at a 480p/4 stage,
// run with --gtest_also_run_disabled_tests --gtest_filter='*Conv3dThroughput*'.
TEST(CpuConvOps, DISABLED_Conv3dThroughput) {
  auto be = MakeCpuBackend();
  Tensor x = Random({96, 4, 120, 208}, 1), w = Random({96, 96, 3, 3, 3}, 2), b = Random({96}, 3);
  Tensor y = Tensor::Zeros(DType::kF32, {96, 2, 120, 208});
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(be->Run(Conv3dOp{&x, &w, &b, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, &y}).ok());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double flop = 2.0 * y.numel() * 96 * 27;
  std::printf("conv3d 96->96 3x3x3 [2,120,208]: %.3f s, %.2f GFLOP/s\n", s, flop / s * 1e-9);
}

}  // namespace
}  // namespace turbovid::engine
