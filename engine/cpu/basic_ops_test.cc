// CPU basic ops against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/core/ops.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

Tensor Make(Shape shape, std::vector<float> v) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

TEST(CpuBasicOps, LinearWithBiasAndGelu) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  Tensor x = Make({2, 3}, {1, 2, 3, -1, 0, 1});
  Tensor w = Make({2, 3}, {1, 0, 0, 0.5, 0.5, 0.5});
  Tensor b = Make({2}, {0.5, -1});
  auto y = ops.Linear(x, w, &b);
  ASSERT_TRUE(y.ok());
  EXPECT_FLOAT_EQ(y->data<float>()[0], 1.5f);
  EXPECT_FLOAT_EQ(y->data<float>()[1], 2.0f);
  EXPECT_FLOAT_EQ(y->data<float>()[2], -0.5f);
  EXPECT_FLOAT_EQ(y->data<float>()[3], -1.0f);
  auto g = ops.Linear(x, w, &b, Activation::kGeluTanh);
  ASSERT_TRUE(g.ok());
  EXPECT_NEAR(g->data<float>()[0], 1.3995715f, 1e-5);
  Tensor bad = Make({2, 2}, {0, 0, 0, 0});
  EXPECT_EQ(ops.Linear(x, bad, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

// A tensor-parallel RMSNorm: each half of a row normalised with the whole row's Σx² equals the
// matching half of the whole row's RMSNorm.
TEST(CpuBasicOps, RmsNormShardUsesTheWholeRowsSumOfSquares) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  Tensor x = Make({2, 4}, {1, 2, 3, 4, -1, 0.5, 2, -3});
  Tensor w = Make({4}, {1, 0.5, 2, 1.5});
  auto whole = ops.RmsNorm(x, &w, 1e-6f);
  ASSERT_TRUE(whole.ok());
  auto ss = ops.RowSumSquares(x);
  ASSERT_TRUE(ss.ok());
  EXPECT_FLOAT_EQ(ss->data<float>()[0], 30.f);
  EXPECT_FLOAT_EQ(ss->data<float>()[1], 14.25f);
  for (int half = 0; half < 2; ++half) {
    auto xs = ops.Narrow(x, 1, 2 * half, 2);
    auto ws = ops.Narrow(w, 0, 2 * half, 2);
    ASSERT_TRUE(xs.ok() && ws.ok());
    auto y = ops.RmsNormShard(*xs, &*ws, 1e-6f, *ss, 4, nullptr, nullptr);
    ASSERT_TRUE(y.ok()) << y.status();
    for (int r = 0; r < 2; ++r) {
      for (int j = 0; j < 2; ++j) {
        EXPECT_FLOAT_EQ(y->data<float>()[r * 2 + j], whole->data<float>()[r * 4 + 2 * half + j]);
      }
    }
  }
  auto bad = ops.RmsNormShard(x, &w, 1e-6f, *ss, 3, nullptr, nullptr);  // full width < E
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CpuBasicOps, LayerNormModulated) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  Tensor x = Make({1, 4}, {1, 2, 3, 4});
  Tensor scale = Make({4}, {1, 1, 1, 1});
  Tensor shift = Make({4}, {0.5, 0.5, 0.5, 0.5});
  auto y = ops.LayerNorm(x, nullptr, nullptr, &scale, &shift, 0.f);
  ASSERT_TRUE(y.ok());
  const float z0 = -1.5f / std::sqrt(1.25f);
  EXPECT_NEAR(y->data<float>()[0], 2 * z0 + 0.5f, 1e-6);
}

// The residual add fused with the next norm equals the two ops in sequence; the norm's operands
// without norm_y, or of a wrong shape, are refused by name.
TEST(CpuBasicOps, GatedAddLayerNormIsAddThenNorm) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  const std::vector<float> xv = {1, -2, 3, 0.5f, 4, 2, -1, 0};
  Tensor x1 = Make({2, 4}, xv), x2 = Make({2, 4}, xv);
  Tensor y = Make({2, 4}, {0.5f, 1, -1, 2, 3, -3, 0, 1});
  Tensor gate = Make({1, 4}, {1, 0.5f, 2, -1});
  Tensor scale = Make({1, 4}, {0.1f, -0.2f, 0.3f, 0});
  Tensor shift = Make({1, 4}, {1, 2, 3, 4});
  ASSERT_TRUE(ops.GatedAdd(x1, y, &gate).ok());
  auto want = ops.LayerNorm(x1, nullptr, nullptr, &scale, &shift, 1e-6f);
  ASSERT_TRUE(want.ok());
  auto got = ops.GatedAddLayerNorm(x2, y, &gate, nullptr, nullptr, &scale, &shift, 1e-6f);
  ASSERT_TRUE(got.ok()) << got.status();
  for (int i = 0; i < 8; ++i) {
    EXPECT_FLOAT_EQ(x2.data<float>()[i], x1.data<float>()[i]) << i;
    EXPECT_FLOAT_EQ(got->data<float>()[i], want->data<float>()[i]) << i;
  }
  GatedAddOp stray{&x2, &y, &gate};
  stray.norm_shift = &shift;
  const absl::Status s1 = be->Run(stray);
  EXPECT_EQ(s1.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s1.message()).find("norm_shift"), std::string::npos) << s1;
  Tensor wrong = Make({1, 3}, {1, 2, 3});
  auto bad = ops.GatedAddLayerNorm(x2, y, nullptr, nullptr, nullptr, &wrong, nullptr, 1e-6f);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("scale"), std::string::npos) << bad.status();
}

TEST(CpuBasicOps, RopeRotatesPairs) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  Tensor x = Make({1, 1, 2}, {1, 0});
  Tensor c = Make({1, 1}, {0});
  Tensor s = Make({1, 1}, {1});
  ASSERT_TRUE(ops.Rope(x, c, s).ok());
  EXPECT_FLOAT_EQ(x.data<float>()[0], 0.f);
  EXPECT_FLOAT_EQ(x.data<float>()[1], 1.f);
}

TEST(CpuBasicOps, AttentionUniformKeysAverageValues) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  Tensor q = Make({1, 1, 2}, {1, 1});
  Tensor k = Make({2, 1, 2}, {0, 0, 0, 0});
  Tensor v = Make({2, 1, 1}, {2, 4});
  auto o = ops.Attention(q, k, v, nullptr, 1.f);
  ASSERT_TRUE(o.ok());
  EXPECT_FLOAT_EQ(o->data<float>()[0], 3.f);
}

TEST(CpuBasicOps, PermuteNarrowConcat) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  Tensor x = Make({2, 3}, {0, 1, 2, 3, 4, 5});
  auto p = ops.Permute(x, {1, 0});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->shape(), (Shape{3, 2}));
  EXPECT_FLOAT_EQ(p->data<float>()[1], 3.f);
  auto n = ops.Narrow(x, 1, 1, 2);
  ASSERT_TRUE(n.ok());
  EXPECT_FLOAT_EQ(n->data<float>()[2], 4.f);
  auto c = ops.Concat({x, x}, 1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->shape(), (Shape{2, 6}));
  EXPECT_FLOAT_EQ(c->data<float>()[9], 3.f);
  EXPECT_FALSE(ops.Narrow(x, 1, 2, 2).ok());
}

}  // namespace
}  // namespace turbovid::engine
