// SageSLA parity: the CUDA op against the CPU reference of the same quantised math
// (engine/cpu/sagesla_ops.cc), both upstream variants, D 64/128, ragged L, several heads, K 0.
// The quantised intermediates are compared code by code: scales, k_mean, the block map and the V
// codes exactly; the int8 codes exactly except where x/scale lies within a few ulp of a
// half-integer (the GPU divides as upstream does, with div.full.f32; the CPU divides exactly:
// docs/model-math.md §10.2), at most a handful per case. o_s and out by relative L2 against the
// CPU: both model the same instructions, so only the tensor cores' accumulation order and the
// approximate exp2/reciprocal separate them. Every case runs under both attention kernels
// (TV_SAGESLA_PATH=wgmma, the sm_90a one where it runs, and mma) and both output kernels, and the
// two attention kernels are compared with each other too. Plus timings at the model shapes
// (disabled test), both attention kernels.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/core/fp8.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "kernels/sla.h"
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {
namespace {

struct SageShape {
  int64_t l, n, d;
  float topk;
  SageSlaVariant variant;
};

std::string Name(const SageShape& s) {
  return absl::StrCat("sagesla L", s.l, " h", s.n, " d", s.d, " top", s.topk,
                      s.variant == SageSlaVariant::kSm90 ? " sm90" : " sm89");
}

// The op's tensors on one backend: inputs uploaded, outputs and every probe allocated.
struct SageRun {
  Tensor q, k, v, w, b, out, sparse_out, map, q8, qs, km, k8, ks, v8, vs;
};

absl::StatusOr<SageRun> RunOn(Backend& be, const SageShape& s, const std::vector<Tensor>& host) {
  const int64_t bq = SageSlaBlockQ(s.variant), bk = SageSlaBlockK(s.variant);
  const int64_t nq = (s.l + bq - 1) / bq, nk = (s.l + bk - 1) / bk;
  const Shape lnd{s.l, s.n, s.d};
  const DType act = be.compute_dtype();
  SageRun r;
  TV_ASSIGN_OR_RETURN(r.q, be.Upload(host[0], act));
  TV_ASSIGN_OR_RETURN(r.k, be.Upload(host[1], act));
  TV_ASSIGN_OR_RETURN(r.v, be.Upload(host[2], act));
  TV_ASSIGN_OR_RETURN(r.w, be.Upload(host[3], DType::kF32));
  TV_ASSIGN_OR_RETURN(r.b, be.Upload(host[4], DType::kF32));
  TV_ASSIGN_OR_RETURN(r.out, be.Allocate(DType::kF32, lnd));
  TV_ASSIGN_OR_RETURN(r.sparse_out, be.Allocate(DType::kF32, lnd));
  TV_ASSIGN_OR_RETURN(r.map, be.Allocate(DType::kI8, {s.n, nq, nk}));
  TV_ASSIGN_OR_RETURN(r.q8, be.Allocate(DType::kI8, lnd));
  TV_ASSIGN_OR_RETURN(r.qs, be.Allocate(DType::kF32, {s.n, nq}));
  TV_ASSIGN_OR_RETURN(r.km, be.Allocate(DType::kF32, {s.n, s.d}));
  TV_ASSIGN_OR_RETURN(r.k8, be.Allocate(DType::kI8, lnd));
  TV_ASSIGN_OR_RETURN(r.ks, be.Allocate(DType::kF32, {s.n, nk}));
  TV_ASSIGN_OR_RETURN(r.v8, be.Allocate(DType::kU8, lnd));
  TV_ASSIGN_OR_RETURN(r.vs, be.Allocate(DType::kF32, {s.n, s.d}));
  SageSlaOp op;
  op.q = &r.q;
  op.k = &r.k;
  op.v = &r.v;
  op.proj_w = &r.w;
  op.proj_b = &r.b;
  op.topk = s.topk;
  op.variant = s.variant;
  op.out = &r.out;
  op.sparse_out = &r.sparse_out;
  op.sparse_map = &r.map;
  op.q_int8 = &r.q8;
  op.q_scale = &r.qs;
  op.k_mean = &r.km;
  op.k_int8 = &r.k8;
  op.k_scale = &r.ks;
  op.v_fp8 = &r.v8;
  op.v_scale = &r.vs;
  TV_RETURN_IF_ERROR(be.Run(op));
  for (Tensor* t :
       {&r.out, &r.sparse_out, &r.map, &r.q8, &r.qs, &r.km, &r.k8, &r.ks, &r.v8, &r.vs}) {
    TV_ASSIGN_OR_RETURN(*t, be.Download(*t));
  }
  return r;
}

// bf16 values: q, k around a per-channel offset (so k's smoothing matters), v with channels of
// different ranges (so V's per-channel scales differ), weights small.
std::vector<Tensor> Inputs(const SageShape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  const Shape lnd{s.l, s.n, s.d};
  auto fill = [&](Shape shape, auto value) {
    Tensor t = Tensor::Zeros(DType::kF32, shape);
    float* x = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) x[i] = RoundToBf16(value(i));
    return t;
  };
  const int64_t d = s.d;
  return {
      fill(lnd, [&](int64_t) { return 1.5f * normal(rng); }),
      fill(lnd, [&](int64_t i) { return 0.3f * static_cast<float>(i % d % 7) + normal(rng); }),
      fill(lnd, [&](int64_t i) { return (0.25f + static_cast<float>(i % d % 5)) * normal(rng); }),
      fill({d, d}, [&](int64_t) { return 0.05f * normal(rng); }),
      fill({d}, [&](int64_t) { return 0.05f * normal(rng); })};
}

double RelL2(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double g = got.data<float>()[i], w = want.data<float>()[i];
    num += (g - w) * (g - w);
    den += w * w;
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

template <typename T>
int64_t Mismatches(const Tensor& a, const Tensor& b) {
  int64_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) bad += a.data<T>()[i] != b.data<T>()[i];
  return bad;
}

// int8 codes that differ and whose x/scale is not within 8 ulp of a half-integer: real errors.
int64_t CodeErrors(const Tensor& got, const Tensor& want, const std::vector<float>& x_over_scale) {
  int64_t bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const int g = got.data<int8_t>()[i], w = want.data<int8_t>()[i];
    if (g == w) continue;
    const float y = std::fabs(x_over_scale[i]);
    const float ulp = std::nextafter(y, INFINITY) - y;
    const bool near_half = std::fabs(y - std::floor(y) - 0.5f) <= 8 * ulp;
    if (std::abs(g - w) > 1 || !near_half) ++bad;
  }
  return bad;
}

// x/scale of every element (the CPU's exact quotient), for the tie allowance above.
std::vector<float> Quotients(const Tensor& x, const Tensor& scale, const Tensor* mean, int64_t n,
                             int64_t d, int64_t block) {
  std::vector<float> y(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t t = i / (n * d), h = i / d % n, c = i % d;
    float v = RoundToBf16(x.data<float>()[i]);
    if (mean != nullptr) v = RoundToBf16(v - mean->data<float>()[h * d + c]);
    y[i] = v / scale.data<float>()[h * scale.dim(1) + t / block];
  }
  return y;
}

// One CUDA configuration: SageSLA's attention kernel and its output kernel.
struct SageConfig {
  kernels::SageSlaPath path;
  bool simple;
};

std::string ConfigName(const SageConfig& c) {
  return absl::StrCat("TV_SAGESLA_PATH=", c.path == kernels::SageSlaPath::kMma ? "mma" : "wgmma",
                      " TV_SAGESLA_LINEAR=", c.simple ? "simple" : "mma");
}

// The CPU reference once, then the CUDA op under every configuration against it; the wgmma and
// mma.sync attention kernels also against each other (same codes, same softmax: only the tensor
// cores' order of the P·V sums differs).
void CheckShape(Backend& cpu, Backend& cuda, const kernels::KernelOptions& base,
                const SageShape& s) {
  SCOPED_TRACE(Name(s));
  const std::vector<Tensor> host = Inputs(s, static_cast<uint32_t>(s.l * 31 + s.n * 7 + s.d));
  absl::StatusOr<SageRun> want = RunOn(cpu, s, host);
  ASSERT_TRUE(want.ok()) << want.status().message();
  const SageConfig configs[] = {{kernels::SageSlaPath::kWgmma, false},
                                {kernels::SageSlaPath::kMma, false},
                                {kernels::SageSlaPath::kWgmma, true},
                                {kernels::SageSlaPath::kMma, true}};
  std::vector<SageRun> runs;
  for (const SageConfig& c : configs) {
    SCOPED_TRACE(ConfigName(c));
    kernels::KernelOptions o = base;
    o.sagesla = c.path;
    o.sage_linear_simple = c.simple;
    ASSERT_TRUE(SetCudaKernelOptions(cuda, o).ok());
    absl::StatusOr<SageRun> got = RunOn(cuda, s, host);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(Mismatches<int8_t>(got->map, want->map), 0);
    EXPECT_EQ(Mismatches<uint32_t>(got->qs, want->qs), 0);
    EXPECT_EQ(Mismatches<uint32_t>(got->ks, want->ks), 0);
    EXPECT_EQ(Mismatches<uint32_t>(got->km, want->km), 0);
    EXPECT_EQ(Mismatches<uint32_t>(got->vs, want->vs), 0);
    EXPECT_EQ(Mismatches<uint8_t>(got->v8, want->v8), 0);
    const int64_t bq = SageSlaBlockQ(s.variant), bk = SageSlaBlockK(s.variant);
    const int64_t q_ties = Mismatches<int8_t>(got->q8, want->q8);
    const int64_t k_ties = Mismatches<int8_t>(got->k8, want->k8);
    EXPECT_EQ(CodeErrors(got->q8, want->q8, Quotients(host[0], want->qs, nullptr, s.n, s.d, bq)),
              0);
    EXPECT_EQ(CodeErrors(got->k8, want->k8, Quotients(host[1], want->ks, &want->km, s.n, s.d, bk)),
              0);
    const double e_os = RelL2(got->sparse_out, want->sparse_out);
    const double e_out = RelL2(got->out, want->out);
    std::printf(
        "%s, %s: codes differing at half-integer ties q %lld k %lld; rel L2 o_s %.2e out %.2e\n",
        Name(s).c_str(), ConfigName(c).c_str(), static_cast<long long>(q_ties),
        static_cast<long long>(k_ties), e_os, e_out);
    // The CPU's o_s is itself within 0.0105 of upstream on the golden case; CUDA must sit much
    // closer to it than that (only accumulation order and the approximate instructions differ).
    EXPECT_LE(e_os, 4e-3);
    EXPECT_LE(e_out, 4e-3);
    runs.push_back(*std::move(got));
  }
  // wgmma against mma.sync, same output kernel: the codes bit for bit, o_s to the accumulation
  // order of the P·V sums (bf16 roundings that flip).
  for (int i = 0; i < 4; i += 2) {
    const SageRun& w = runs[i];
    const SageRun& m = runs[i + 1];
    EXPECT_EQ(Mismatches<int8_t>(w.q8, m.q8), 0);
    EXPECT_EQ(Mismatches<int8_t>(w.k8, m.k8), 0);
    EXPECT_EQ(Mismatches<uint8_t>(w.v8, m.v8), 0);
    const double e = RelL2(w.sparse_out, m.sparse_out);
    std::printf("%s: o_s wgmma vs mma.sync rel L2 %.2e\n", Name(s).c_str(), e);
    EXPECT_LE(e, 2e-3);
  }
}

TEST(SageSlaParity, CudaMatchesCpu) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  const SageShape shapes[] = {
      {1200, 2, 128, 0.2f, SageSlaVariant::kSm90},  // the golden case's shape, two heads
      {1200, 2, 128, 0.2f, SageSlaVariant::kSm89},
      {1000, 3, 64, 0.3f, SageSlaVariant::kSm90},  // D 64, tails: 1000 = 15·64 + 40 = 7·128 + 104
      {1000, 3, 64, 0.3f, SageSlaVariant::kSm89},
      {2100, 1, 128, 0.5f, SageSlaVariant::kSm89},  // many blocks: both late iterations of sm89
      {1000, 3, 128, 0.3f, SageSlaVariant::kSm90},  // D 128 tails on the wgmma kernel
      {2100, 2, 128, 0.5f, SageSlaVariant::kSm90},  // K_sel 8: the TMA ring wraps several times
      {300, 2, 128, 0.1f, SageSlaVariant::kSm90},   // K 0: o_s zero, out = the linear branch
  };
  // On an H100 the kSm90 D 128 shapes take the wgmma kernel by default; say so, so that a log
  // shows which kernel the TV_SAGESLA_PATH=wgmma runs exercised.
  std::printf("SageSLA wgmma kernel available on this device: %s\n",
              kernels::SageSlaWgmmaAvailable() ? "yes" : "no (wgmma runs fall back to mma.sync)");
  absl::StatusOr<kernels::KernelOptions> options = GetCudaKernelOptions(**cuda);
  ASSERT_TRUE(options.ok());
  for (const SageShape& s : shapes) CheckShape(*cpu, **cuda, *options, s);
  ASSERT_TRUE(SetCudaKernelOptions(**cuda, *options).ok());
}

// Timings of the CUDA op at the model shapes (top-k 0.1, no probes, as the DiT calls it), against
// bf16 SLA at the same shape. Prints, never fails. Run by hand on the GPU:
//   tv_parity_test --gtest_also_run_disabled_tests --gtest_filter='SageSlaPerf.*'
TEST(SageSlaPerf, DISABLED_ModelShapes) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  Backend& b = **cuda;
  struct Shape3 {
    int64_t l, n, d;
  };
  for (const Shape3 s : {Shape3{32760, 12, 128}, Shape3{75600, 40, 128}}) {
    const Shape lnd{s.l, s.n, s.d};
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.f, 1.f);
    auto make = [&](Shape shape, float scale) {
      Tensor t = Tensor::Zeros(DType::kF32, shape);
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * normal(rng);
      return b.Upload(t, DType::kBF16);
    };
    auto q = make(lnd, 1.f), k = make(lnd, 1.f), v = make(lnd, 1.f);
    auto w = make({s.d, s.d}, 0.05f), bias = make({s.d}, 0.05f);
    auto out = b.Allocate(DType::kBF16, lnd);
    ASSERT_TRUE(q.ok() && k.ok() && v.ok() && w.ok() && bias.ok() && out.ok());
    auto time = [&](const auto& op) {
      for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.Run(op).ok());
      EXPECT_TRUE(b.Synchronize().ok());
      constexpr int kIters = 20;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kIters; ++i) EXPECT_TRUE(b.Run(op).ok());
      EXPECT_TRUE(b.Synchronize().ok());
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                 .count() /
             kIters;
    };
    absl::StatusOr<kernels::KernelOptions> options = GetCudaKernelOptions(b);
    ASSERT_TRUE(options.ok());
    struct PerfConfig {
      SageSlaVariant variant;
      kernels::SageSlaPath path;
      bool simple;
    };
    // The H100 build's numerics on both attention kernels (wgmma: the default on an H100), the
    // RTX build's on mma.sync; the CUDA-core output kernel once for comparison.
    const PerfConfig configs[] = {{SageSlaVariant::kSm90, kernels::SageSlaPath::kWgmma, false},
                                  {SageSlaVariant::kSm90, kernels::SageSlaPath::kMma, false},
                                  {SageSlaVariant::kSm90, kernels::SageSlaPath::kWgmma, true},
                                  {SageSlaVariant::kSm89, kernels::SageSlaPath::kMma, false}};
    // Outputs kept for the accuracy line: the default H100 configuration and the sm89 one.
    std::vector<std::pair<std::string, Tensor>> kept;
    for (const PerfConfig& c : configs) {
      const SageSlaVariant variant = c.variant;
      const bool simple = c.simple;
      const bool wgmma = c.path == kernels::SageSlaPath::kWgmma &&
                         variant == SageSlaVariant::kSm90 && kernels::SageSlaWgmmaAvailable();
      kernels::KernelOptions o = *options;
      o.sage_linear_simple = simple;
      o.sagesla = c.path;
      ASSERT_TRUE(SetCudaKernelOptions(b, o).ok());
      SageSlaOp op;
      op.q = &*q;
      op.k = &*k;
      op.v = &*v;
      op.proj_w = &*w;
      op.proj_b = &*bias;
      op.topk = 0.1f;
      op.variant = variant;
      op.out = &*out;
      std::printf(
          "sagesla %s, attention on %s, output on %s [%lld, %lld, %lld] topk 0.1: %.3f ms\n",
          variant == SageSlaVariant::kSm90 ? "sm90" : "sm89", wgmma ? "wgmma" : "mma.sync",
          simple ? "CUDA cores" : "tensor cores", static_cast<long long>(s.l),
          static_cast<long long>(s.n), static_cast<long long>(s.d), time(op));
      if (!simple) {
        absl::StatusOr<Tensor> host = b.Download(*out);
        ASSERT_TRUE(host.ok());
        absl::StatusOr<Tensor> f = ToF32(*host);
        ASSERT_TRUE(f.ok());
        kept.emplace_back(absl::StrCat(variant == SageSlaVariant::kSm90 ? "sm90" : "sm89", " on ",
                                       wgmma ? "wgmma" : "mma.sync"),
                          std::move(*f));
      }
    }
    ASSERT_TRUE(SetCudaKernelOptions(b, *options).ok());
    SlaOp sla;
    sla.q = &*q;
    sla.k = &*k;
    sla.v = &*v;
    sla.proj_w = &*w;
    sla.proj_b = &*bias;
    sla.topk = 0.1f;
    sla.out = &*out;
    std::printf("sla (bf16) [%lld, %lld, %lld] topk 0.1: %.3f ms\n", static_cast<long long>(s.l),
                static_cast<long long>(s.n), static_cast<long long>(s.d), time(sla));
    // Accuracy: each kept output against bf16 SLA on the same q, k, v, proj_l (random normal
    // data, topk 0.1), and the sm90 wgmma kernel against the sm90 mma.sync one (the same
    // numerics). The sm90 variant selects 64x128 blocks where SLA and sm89 select 128x64: on
    // random data, where attention is near uniform, a different selection alone moves the output
    // by O(1), so only sm89 against SLA measures the quantisation.
    absl::StatusOr<Tensor> ref_host = b.Download(*out);
    ASSERT_TRUE(ref_host.ok());
    absl::StatusOr<Tensor> ref = ToF32(*ref_host);
    ASSERT_TRUE(ref.ok());
    for (const auto& [name, got] : kept) {
      double num = 0, den = 0;
      for (int64_t i = 0; i < ref->numel(); ++i) {
        const double r = ref->data<float>()[i], d = got.data<float>()[i] - r;
        num += d * d;
        den += r * r;
      }
      std::printf("sagesla %s vs sla (bf16) [%lld, %lld, %lld] topk 0.1: rel. L2 %.3e\n",
                  name.c_str(), static_cast<long long>(s.l), static_cast<long long>(s.n),
                  static_cast<long long>(s.d), std::sqrt(num / std::max(den, 1e-30)));
    }
    for (size_t i = 0; i + 1 < kept.size(); ++i) {
      if (kept[i].first != "sm90 on wgmma" || kept[i + 1].first != "sm90 on mma.sync") continue;
      const Tensor& a = kept[i].second;
      const Tensor& m = kept[i + 1].second;
      double num = 0, den = 0;
      for (int64_t j = 0; j < m.numel(); ++j) {
        const double r = m.data<float>()[j], d = a.data<float>()[j] - r;
        num += d * d;
        den += r * r;
      }
      const double rel = std::sqrt(num / std::max(den, 1e-30));
      std::printf("sagesla sm90 wgmma vs mma.sync [%lld, %lld, %lld] topk 0.1: rel. L2 %.3e\n",
                  static_cast<long long>(s.l), static_cast<long long>(s.n),
                  static_cast<long long>(s.d), rel);
      EXPECT_LT(rel, 2e-3) << "the wgmma kernel departs from mma.sync at a model shape";
    }
  }
}

}  // namespace
}  // namespace turbovid::engine::parity
