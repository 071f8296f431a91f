// CPU SLA: limits against dense attention, the proj_l branch, block maps of ragged sequences.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/core/ops.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace {

Tensor Random(Shape shape, uint32_t seed, float scale = 1.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, scale);
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

double MaxDiff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    m = std::max(m, std::abs(double{a.data<float>()[i]} - b.data<float>()[i]));
  }
  return m;
}

struct SlaRun {
  Tensor out, sparse_out, map;
};

SlaRun RunSla(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& pw,
              const Tensor& pb, float topk, int bq, int bk) {
  const int64_t l = q.dim(0), n = q.dim(1), d = q.dim(2);
  SlaRun r;
  r.out = Tensor::Zeros(DType::kF32, {l, n, d});
  r.sparse_out = Tensor::Zeros(DType::kF32, {l, n, d});
  r.map = Tensor::Zeros(DType::kI8, {n, (l + bq - 1) / bq, (l + bk - 1) / bk});
  SlaOp op{&q, &k, &v, &pw, &pb, topk, bq, bk, &r.out, &r.map, &r.sparse_out};
  EXPECT_TRUE(be.Run(op).ok());
  return r;
}

TEST(CpuSla, TopkOneIsDenseAttentionAndZeroProjIsSparseBranch) {
  auto be = MakeCpuBackend();
  Ops ops(*be);
  const int64_t l = 37, n = 2, d = 16;  // ragged: 37 = 2·16 + 5 and 4·8 + 5
  Tensor q = Random({l, n, d}, 1), k = Random({l, n, d}, 2), v = Random({l, n, d}, 3);
  Tensor pw = Tensor::Zeros(DType::kF32, {d, d}), pb = Tensor::Zeros(DType::kF32, {d});
  SlaRun r = RunSla(*be, q, k, v, pw, pb, 1.0f, 16, 8);
  auto dense = ops.Attention(q, k, v, nullptr, 1.f / std::sqrt(float{d}));
  ASSERT_TRUE(dense.ok());
  EXPECT_LT(MaxDiff(r.sparse_out, *dense), 1e-5);
  EXPECT_LT(MaxDiff(r.out, r.sparse_out), 1e-7);  // zero proj_l: the linear branch adds nothing
  for (int64_t i = 0; i < r.map.numel(); ++i) EXPECT_EQ(r.map.data<int8_t>()[i], 1);
}

TEST(CpuSla, LinearBranchMatchesDirectFormula) {
  auto be = MakeCpuBackend();
  const int64_t l = 20, n = 1, d = 8;
  Tensor q = Random({l, n, d}, 4), k = Random({l, n, d}, 5), v = Random({l, n, d}, 6);
  Tensor pw = Tensor::Zeros(DType::kF32, {d, d}), pb = Random({d}, 7);
  for (int64_t i = 0; i < d; ++i) pw.data<float>()[i * d + i] = 1.f;  // proj_l = identity + bias
  SlaRun r = RunSla(*be, q, k, v, pw, pb, 0.5f, 8, 4);
  auto phi = [&](const Tensor& x, int64_t t, std::vector<double>& out) {
    double mx = -1e30, sum = 0;
    for (int64_t c = 0; c < d; ++c) mx = std::max(mx, double{x.data<float>()[t * d + c]});
    out.assign(d, 0);
    for (int64_t c = 0; c < d; ++c) sum += out[c] = std::exp(x.data<float>()[t * d + c] - mx);
    for (double& o : out) o /= sum;
  };
  std::vector<double> pq, pk;
  for (int64_t t = 0; t < l; ++t) {
    phi(q, t, pq);
    std::vector<double> num(d, 0.0);
    double den = 1e-5;
    for (int64_t j = 0; j < l; ++j) {
      phi(k, j, pk);
      double w = 0;
      for (int64_t c = 0; c < d; ++c) w += pq[c] * pk[c];
      den += w;
      for (int64_t c = 0; c < d; ++c) num[c] += w * v.data<float>()[j * d + c];
    }
    for (int64_t c = 0; c < d; ++c) {
      const double want =
          r.sparse_out.data<float>()[t * d + c] + num[c] / den + pb.data<float>()[c];
      EXPECT_NEAR(r.out.data<float>()[t * d + c], want, 1e-5);
    }
  }
}

TEST(CpuSla, RaggedTailBlockIsSelectedAndAveragedOverRealRows) {
  auto be = MakeCpuBackend();
  // L = 9, block_k = 4: key blocks {0..3}, {4..7}, {8}. k[:, 0] = 0, 5, 9 per block; the token
  // mean is 29/9, so the smoothed pooled keys are -3.2, 1.8 and 5.8 (tail averaged over its one
  // real row) — averaged over 4 rows the tail would drop to 1.4 and lose to block 1.
  const int64_t l = 9, n = 1, d = 4;
  Tensor q = Tensor::Zeros(DType::kF32, {l, n, d}), k = Tensor::Zeros(DType::kF32, {l, n, d});
  Tensor v = Random({l, n, d}, 8);
  for (int64_t t = 0; t < l; ++t) q.data<float>()[t * d] = 1.f;
  for (int64_t t = 4; t < 8; ++t) k.data<float>()[t * d] = 5.f;
  k.data<float>()[8 * d] = 9.f;
  Tensor pw = Tensor::Zeros(DType::kF32, {d, d}), pb = Tensor::Zeros(DType::kF32, {d});
  SlaRun r = RunSla(*be, q, k, v, pw, pb, 0.34f, 16, 4);  // K_sel = int(0.34·3) = 1
  ASSERT_EQ(r.map.numel(), 3);
  EXPECT_EQ(r.map.data<int8_t>()[0], 0);
  EXPECT_EQ(r.map.data<int8_t>()[1], 0);
  EXPECT_EQ(r.map.data<int8_t>()[2], 1);
  // Only key 8 is attended: every query returns v[8].
  for (int64_t t = 0; t < l; ++t) {
    for (int64_t c = 0; c < d; ++c) {
      EXPECT_NEAR(r.sparse_out.data<float>()[t * d + c], v.data<float>()[8 * d + c], 1e-6);
    }
  }
}

TEST(CpuSla, SelectionCountIsFloorOfTopkTimesBlocks) {
  auto be = MakeCpuBackend();
  const int64_t l = 640, n = 1, d = 8;  // n_k = 10 with block_k 64
  Tensor q = Random({l, n, d}, 9), k = Random({l, n, d}, 10), v = Random({l, n, d}, 11);
  Tensor pw = Tensor::Zeros(DType::kF32, {d, d}), pb = Tensor::Zeros(DType::kF32, {d});
  // 0.7f·10 is 6.99999988 in float; the reference's Python float product is exactly 7.
  for (auto [topk, want] : {std::pair{0.1f, 1}, {0.15f, 1}, {0.7f, 7}, {1.0f, 10}}) {
    SlaRun r = RunSla(*be, q, k, v, pw, pb, topk, 128, 64);
    for (int64_t i = 0; i < 5; ++i) {
      int count = 0;
      for (int64_t j = 0; j < 10; ++j) count += r.map.data<int8_t>()[i * 10 + j];
      EXPECT_EQ(count, want) << "topk " << topk;
    }
  }
}

TEST(CpuSla, RejectsBadShapes) {
  auto be = MakeCpuBackend();
  Tensor q = Random({8, 1, 4}, 1), k = Random({8, 1, 4}, 2), v = Random({7, 1, 4}, 3);
  Tensor pw = Tensor::Zeros(DType::kF32, {4, 4}), pb = Tensor::Zeros(DType::kF32, {4});
  Tensor out = Tensor::Zeros(DType::kF32, {8, 1, 4});
  SlaOp op{&q, &k, &v, &pw, &pb, 0.5f, 4, 4, &out, nullptr, nullptr};
  EXPECT_EQ(be->Run(op).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turbovid::engine
