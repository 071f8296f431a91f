// Parity cases for Int8Linear: the int8 weight and its scales are made inside each run (the same
// bits on both backends) by the offline quantiser; x (and bias) are the harness's random inputs.
// Int8GemmParity runs the op through both CUDA GEMM paths (sm_90a wgmma, mma.sync) and the CPU
// reference and wants the same bits from all three; Int8GemmPerf (disabled) times the GEMMs
// against bf16 cuBLASLt at the Wan shapes. On the GPU machine:
//   tv_parity_test --gtest_also_run_disabled_tests --gtest_filter='Int8Gemm*'
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/core/quantize.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "kernels/gemm.h"
#include "kernels/kernel_options.h"
#include "kernels/quant.h"
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {
namespace {

constexpr int64_t kBlk = kInt8Block;

// The CUDA op reproduces the CPU reference bit for bit: x is rounded to bf16 by the op on both
// backends, the int8 operands and scales are identical, and the fp32 accumulation follows the
// same fma order; so no slack over the naive-bf16 error is allowed, only kFloor (1e-5 relative
// L2, below one bf16 ulp in any single element of these outputs).
constexpr double kExact = 0.0;

// Deterministic [n, k] int8 weight with scales that differ per 128-row tile.
absl::Status MakeWeight(int64_t n, int64_t k, Tensor* wq, Tensor* ws) {
  std::mt19937 rng(static_cast<uint32_t>(n * 131 + k * 7 + 5));
  std::uniform_real_distribution<float> dist(-0.2f, 0.2f);
  Tensor w = Tensor::Zeros(DType::kF32, {n, k});
  for (int64_t r = 0; r < n; ++r) {
    const float tile_gain = 1.f + static_cast<float>(r / kBlk);
    for (int64_t c = 0; c < k; ++c) w.data<float>()[r * k + c] = dist(rng) * tile_gain;
  }
  return QuantizeBlockInt8(w, wq, ws);
}

// Runs Int8Linear on x (already placed) with optional bias; returns y, then the probes x_int8,
// x_scale and acc when `probes`.
absl::StatusOr<std::vector<Tensor>> RunInt8(Env& env, const Tensor& x, const Tensor* bias,
                                            int64_t n, bool probes) {
  const int64_t m = x.dim(0), k = x.dim(1);
  Tensor wq_host, ws_host;
  TV_RETURN_IF_ERROR(MakeWeight(n, k, &wq_host, &ws_host));
  TV_ASSIGN_OR_RETURN(Tensor wq, env.Place(wq_host));
  TV_ASSIGN_OR_RETURN(Tensor ws, env.Place(ws_host));
  TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({m, n}));
  Int8LinearOp op;
  op.x = &x;
  op.w_int8 = &wq;
  op.w_scale = &ws;
  op.bias = bias;
  op.y = &y;
  Tensor xq, xs, acc;
  if (probes) {
    TV_ASSIGN_OR_RETURN(xq, env.Place(Tensor::Zeros(DType::kI8, {m, k})));
    TV_ASSIGN_OR_RETURN(
        xs, env.Place(Tensor::Zeros(DType::kF32, {(m + kBlk - 1) / kBlk, (k + kBlk - 1) / kBlk})));
    TV_ASSIGN_OR_RETURN(acc, env.Place(Tensor::Zeros(DType::kF32, {m, n})));
    op.x_int8 = &xq;
    op.x_scale = &xs;
    op.acc = &acc;
  }
  TV_RETURN_IF_ERROR(env.b.Run(op));
  if (!probes) return std::vector<Tensor>{y};
  return std::vector<Tensor>{y, xq, xs, acc};
}

Case Int8LinearCase(int64_t m, int64_t k, int64_t n, bool bias, bool probes, float range,
                    const std::string& why) {
  std::string name = "int8_linear " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                     std::to_string(n) + (bias ? " +bias" : "") + (probes ? " probes" : "") + " " +
                     why;
  std::vector<Input> in = {{{m, k}, false, -range, range}};
  if (bias) in.push_back({{n}});
  return {name, OpKindOf<Int8LinearOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            return RunInt8(env, t[0], bias ? &t[1] : nullptr, n, probes);
          },
          kExact};
}

// x built in the run: tile (0, 0) all zero (amax floor 1e-8), tile (0, 1) with amax exactly 1 so
// q = 128·v hits ties (v = odd/256 → half-integers, round to even) and ±amax (→ 127 / -128).
Case Int8SpecialValuesCase() {
  const int64_t m = 130, k = 256, n = 136;
  return {"int8_linear 130x256x136 +bias probes zero tile, ties, saturation",
          OpKindOf<Int8LinearOp>(),
          {{{n}}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            Tensor x = Tensor::Zeros(DType::kF32, {m, k});
            float* v = x.data<float>();
            std::mt19937 rng(7);
            std::uniform_real_distribution<float> dist(-2.f, 2.f);
            for (int64_t r = 0; r < m; ++r) {
              for (int64_t c = 0; c < k; ++c) {
                float val = 0.f;
                if (r >= kBlk) {
                  val = dist(rng);
                } else if (c >= kBlk) {
                  // i/256 for i in [-256, 256]: exact in bf16; both ±1 occur.
                  const int64_t i = (r * 37 + c * 11) % 513 - 256;
                  val = static_cast<float>(i) / 256.f;
                  if (r == 0 && c == kBlk) val = 1.f;
                  if (r == 1 && c == kBlk) val = -1.f;
                }
                v[r * k + c] = val;
              }
            }
            Tensor placed = x;
            if (env.b.compute_dtype() == DType::kBF16) {
              placed = Tensor::Zeros(DType::kBF16, {m, k});
              for (int64_t i = 0; i < m * k; ++i) placed.data<uint16_t>()[i] = F32ToBf16(v[i]);
            }
            TV_ASSIGN_OR_RETURN(Tensor dx, env.Place(placed));
            return RunInt8(env, dx, &t[0], n, true);
          },
          kExact};
}

// ---------------------------------------------------------------------------------------------
// The GEMM paths against each other, bit for bit.

struct GemmShape {
  int64_t m, k, n;
  bool bias;
  const char* why;
};

// Runs Int8Linear with every probe on `b` (the CUDA backend with its int8 GEMM forced to `path`)
// from host x (F32, values exact in bf16) and bias; returns y, x_int8, x_scale, acc as host F32.
absl::StatusOr<std::vector<Tensor>> RunGemmPath(Backend& b, const Tensor& x_host,
                                                const Tensor* bias_host, int64_t n,
                                                kernels::Int8GemmPath path) {
  Env env{b, {}};
  const auto as_compute = [&](const Tensor& t) {
    if (b.compute_dtype() == DType::kF32) return t.Clone();
    Tensor r = Tensor::Zeros(DType::kBF16, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) r.data<uint16_t>()[i] = F32ToBf16(t.data<float>()[i]);
    return r;
  };
  TV_ASSIGN_OR_RETURN(Tensor x, env.Place(as_compute(x_host)));
  Tensor bias;
  if (bias_host != nullptr) {
    TV_ASSIGN_OR_RETURN(bias, env.Place(as_compute(*bias_host)));
  }
  std::vector<Tensor> outs;
  TV_RETURN_IF_ERROR(RunWithKernelOptions(
      b,
      [&]() -> absl::Status {
        TV_ASSIGN_OR_RETURN(outs, RunInt8(env, x, bias_host ? &bias : nullptr, n, true));
        return absl::OkStatus();
      },
      [&](kernels::KernelOptions& o) { o.int8_gemm = path; }));
  TV_RETURN_IF_ERROR(b.Synchronize());
  TV_ASSIGN_OR_RETURN(const int64_t broken, env.BrokenGuards());
  if (broken != 0) return absl::InternalError(absl::StrCat(broken, " guard elements overwritten"));
  std::vector<Tensor> res;
  for (const Tensor& o : outs) {
    TV_ASSIGN_OR_RETURN(Tensor h, b.Download(o));
    TV_ASSIGN_OR_RETURN(Tensor f, ToF32(h));
    res.push_back(std::move(f));
  }
  return res;
}

// Elements whose bits differ (F32 host tensors of one shape); -1 when the shapes differ.
int64_t BitDiffs(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return -1;
  int64_t diffs = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diffs += std::memcmp(&a.data<float>()[i], &b.data<float>()[i], sizeof(float)) != 0;
  }
  return diffs;
}

// Edges of the wgmma kernel: m not a multiple of 64 or 128, n not a multiple of the 128-column tile
// (odd n: unpaired stores), k = 128 (one block), odd and even block counts, k % 128 != 0 (the TMA
// zero fill), and more tiles than an H100 has SMs, so persistent CTAs take several tiles each and
// the stage ring wraps across tiles. The y outputs, the acc probe and the quantised x must match
// bit for bit: mma.sync vs wgmma vs the CPU reference.
TEST(Int8GemmParity, Sm90MatchesMmaAndCpu) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  if (!kernels::Int8GemmSm90Available()) {
    std::printf(
        "int8 gemm: no sm_90a kernel on this device/build (built: %d); the sm90 runs take "
        "mma.sync\n",
        kernels::Int8GemmSm90Built() ? 1 : 0);
  }
  const GemmShape shapes[] = {
      {1, 128, 128, true, "one row, k = 128"},
      {130, 128, 200, true, "m 128 + 2, n tail 72"},
      {200, 1536, 264, false, "m tail 72 (not a multiple of 64), n tail 8"},
      {333, 5120, 136, true, "k = 5120: 40 blocks (even count)"},
      {129, 1664, 131, true, "13 blocks (odd count), odd n: unpaired stores"},
      {70, 208, 130, true, "k % 128 = 80: zero-filled block tail"},
      {2000, 256, 1100, true, "144 tiles: CTAs take two"},
      {4100, 128, 1030, false, "297 tiles of one block: the ring wraps across tiles"},
  };
  std::mt19937 rng(2024);
  std::uniform_real_distribution<float> dist(-3.f, 3.f);
  for (const GemmShape& s : shapes) {
    const std::string name = absl::StrCat("int8 gemm ", s.m, "x", s.k, "x", s.n, " (", s.why, ")");
    Tensor x = Tensor::Zeros(DType::kF32, {s.m, s.k});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = RoundToBf16(dist(rng));
    Tensor bias = Tensor::Zeros(DType::kF32, {s.n});
    for (int64_t i = 0; i < s.n; ++i) bias.data<float>()[i] = RoundToBf16(dist(rng));
    const Tensor* bp = s.bias ? &bias : nullptr;
    auto ref = RunGemmPath(*cpu, x, bp, s.n, kernels::Int8GemmPath::kAuto);
    ASSERT_TRUE(ref.ok()) << name << ": " << ref.status();
    auto mma = RunGemmPath(**cuda, x, bp, s.n, kernels::Int8GemmPath::kMma);
    ASSERT_TRUE(mma.ok()) << name << " mma: " << mma.status();
    auto sm90 = RunGemmPath(**cuda, x, bp, s.n, kernels::Int8GemmPath::kSm90);
    ASSERT_TRUE(sm90.ok()) << name << " sm90: " << sm90.status();
    const char* kOut[] = {"y", "x_int8", "x_scale", "acc"};
    for (size_t o = 0; o < ref->size(); ++o) {
      const int64_t d_mma = BitDiffs((*mma)[o], (*ref)[o]);
      const int64_t d_sm90 = BitDiffs((*sm90)[o], (*ref)[o]);
      const int64_t d_paths = BitDiffs((*sm90)[o], (*mma)[o]);
      std::printf("%-80s %-7s mma/cpu %lld  sm90/cpu %lld  sm90/mma %lld differing\n", name.c_str(),
                  kOut[o], static_cast<long long>(d_mma), static_cast<long long>(d_sm90),
                  static_cast<long long>(d_paths));
      EXPECT_EQ(d_mma, 0) << name << " " << kOut[o] << ": mma.sync vs CPU";
      EXPECT_EQ(d_sm90, 0) << name << " " << kOut[o] << ": wgmma vs CPU";
      EXPECT_EQ(d_paths, 0) << name << " " << kOut[o] << ": wgmma vs mma.sync";
    }
  }
  std::fflush(stdout);
}

// A forced sm90 path on an sm_90 device refuses what the wgmma kernel cannot take (here k % 16 !=
// 0) instead of silently running another kernel; kAuto takes the scalar kernel there.
TEST(Int8GemmParity, ForcedSm90RefusesUnalignedK) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  if (!kernels::Int8GemmSm90Available()) GTEST_SKIP() << "no sm_90a int8 kernel here";
  Tensor x = Tensor::Zeros(DType::kF32, {9, 200});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i % 7) - 3.f;
  auto forced = RunGemmPath(**cuda, x, nullptr, 130, kernels::Int8GemmPath::kSm90);
  ASSERT_FALSE(forced.ok());
  EXPECT_NE(forced.status().message().find("int8_linear gemm"), std::string::npos)
      << forced.status();
  auto dflt = RunGemmPath(**cuda, x, nullptr, 130, kernels::Int8GemmPath::kAuto);
  EXPECT_TRUE(dflt.ok()) << dflt.status();
}

// ---------------------------------------------------------------------------------------------
// Timing of the GEMMs alone at the Wan linear shapes: the wgmma and mma.sync int8 kernels (with
// bias, bf16 out) against the bf16 cuBLASLt GEMM (bias epilogue), plus the activation quantiser
// an int8 linear also runs. Both int8 outputs are compared bit for bit. Prints, and fails only
// on a launch error or differing bits. Run by hand on the GPU (see the file comment).

#define PERF_CUDA_OK(expr)                                                         \
  do {                                                                             \
    const cudaError_t perf_e = (expr);                                             \
    ASSERT_EQ(perf_e, cudaSuccess) << #expr << ": " << cudaGetErrorString(perf_e); \
  } while (0)

struct DeviceBuf {
  void* p = nullptr;
  DeviceBuf() = default;
  DeviceBuf(const DeviceBuf&) = delete;
  DeviceBuf& operator=(const DeviceBuf&) = delete;
  ~DeviceBuf() {
    if (p != nullptr) cudaFree(p);
  }
};

// Cheap deterministic bytes (xorshift64*), 8 at a time.
void FillBytes(std::vector<uint8_t>& v, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < v.size(); i += 8) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    const uint64_t r = s * 0x2545F4914F6CDD1Dull;
    std::memcpy(v.data() + i, &r, std::min<size_t>(8, v.size() - i));
  }
}

// Mean milliseconds of `launch` over `iters` calls after 2 warm-up calls; -1 when a launch fails.
template <typename F>
double TimeMs(cudaStream_t stream, int iters, F launch) {
  for (int i = 0; i < 2; ++i) {
    if (!launch()) return -1;
  }
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  cudaEventRecord(t0, stream);
  bool ok = true;
  for (int i = 0; i < iters && ok; ++i) ok = launch();
  cudaEventRecord(t1, stream);
  cudaEventSynchronize(t1);
  float ms = 0;
  cudaEventElapsedTime(&ms, t0, t1);
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  return ok ? ms / iters : -1;
}

TEST(Int8GemmPerf, DISABLED_WanShapes) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) GTEST_SKIP() << "no GPU";
  cudaDeviceProp prop{};
  PERF_CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("int8 gemm perf on %s (sm_%d%d); wgmma kernel %s\n", prop.name, prop.major,
              prop.minor, kernels::Int8GemmSm90Available() ? "available" : "NOT available");
  kernels::GemmContext ctx;
  ASSERT_EQ(ctx.Init(), 0) << kernels::GemmLoadError();
  cudaStream_t stream;
  PERF_CUDA_OK(cudaStreamCreate(&stream));
  struct Nk {
    int64_t n, k;
    const char* model;
  };
  const Nk nks[] = {{5120, 5120, "14B"},  {13824, 5120, "14B"}, {5120, 13824, "14B"},
                    {1536, 1536, "1.3B"}, {8960, 1536, "1.3B"}, {1536, 8960, "1.3B"}};
  const int64_t ms_tokens[] = {75600, 32760};
  // Host operands filled once at the largest size (M·K ≤ 75600·13824; N < M everywhere): bf16 of
  // magnitude in [0.5, 2) from random bits, random int8 codes (scales 1/128, set per shape).
  const size_t max_mk = size_t{75600} * 13824;
  std::vector<uint8_t> host16(2 * max_mk), host8(max_mk);
  FillBytes(host16, 1);
  for (size_t i = 0; i + 1 < host16.size(); i += 2) host16[i + 1] = (host16[i + 1] & 0x80) | 0x3f;
  FillBytes(host8, 2);
  std::printf("%-6s %6s %6s %6s | %9s %9s %9s %9s | %8s %8s %8s | %s\n", "model", "M", "N", "K",
              "bf16 ms", "sm90 ms", "mma ms", "quant ms", "sm90 x", "mma x", "lin x", "TOPS sm90");
  for (const int64_t m : ms_tokens) {
    for (const Nk& s : nks) {
      if (m != 32760 && s.model[0] == '1') continue;  // 1.3B runs at 480p: 32,760 tokens
      const int64_t n = s.n, k = s.k, kb = k / kBlk;
      DeviceBuf a8, w8, sa, sw, x16, w16, bias, y_sm90, y_mma, y16;
      PERF_CUDA_OK(cudaMalloc(&a8.p, m * k));
      PERF_CUDA_OK(cudaMalloc(&w8.p, n * k));
      PERF_CUDA_OK(cudaMalloc(&sa.p, ((m + 127) / 128) * kb * 4));
      PERF_CUDA_OK(cudaMalloc(&sw.p, (n / 128) * kb * 4));
      PERF_CUDA_OK(cudaMalloc(&x16.p, m * k * 2));
      PERF_CUDA_OK(cudaMalloc(&w16.p, n * k * 2));
      PERF_CUDA_OK(cudaMalloc(&bias.p, n * 2));
      PERF_CUDA_OK(cudaMalloc(&y_sm90.p, m * n * 2));
      PERF_CUDA_OK(cudaMalloc(&y_mma.p, m * n * 2));
      PERF_CUDA_OK(cudaMalloc(&y16.p, m * n * 2));
      {
        PERF_CUDA_OK(cudaMemcpy(x16.p, host16.data(), m * k * 2, cudaMemcpyHostToDevice));
        PERF_CUDA_OK(cudaMemcpy(w16.p, host16.data(), n * k * 2, cudaMemcpyHostToDevice));
        PERF_CUDA_OK(cudaMemcpy(bias.p, host16.data(), n * 2, cudaMemcpyHostToDevice));
        PERF_CUDA_OK(cudaMemcpy(a8.p, host8.data(), m * k, cudaMemcpyHostToDevice));
        PERF_CUDA_OK(cudaMemcpy(w8.p, host8.data(), n * k, cudaMemcpyHostToDevice));
        std::vector<float> scales(static_cast<size_t>(((m + 127) / 128) * kb), 1.f / 128);
        PERF_CUDA_OK(cudaMemcpy(sa.p, scales.data(), scales.size() * 4, cudaMemcpyHostToDevice));
        PERF_CUDA_OK(cudaMemcpy(sw.p, scales.data(), (n / 128) * kb * 4, cudaMemcpyHostToDevice));
      }
      const int iters = m * n * k > (int64_t{1} << 41) ? 5 : 10;
      kernels::Int8GemmArgs ga;
      ga.a = static_cast<const int8_t*>(a8.p);
      ga.a_scale = static_cast<const float*>(sa.p);
      ga.w = static_cast<const int8_t*>(w8.p);
      ga.w_scale = static_cast<const float*>(sw.p);
      ga.bias = {bias.p, kernels::ElemType::kBF16};
      ga.m = m;
      ga.n = n;
      ga.k = k;
      const auto int8_ms = [&](kernels::Int8GemmPath path, void* y) {
        kernels::Int8GemmArgs g = ga;
        g.path = path;
        g.y = {y, kernels::ElemType::kBF16};
        return TimeMs(stream, iters,
                      [&] { return kernels::LaunchInt8Gemm(g, stream) == cudaSuccess; });
      };
      const double t_sm90 = int8_ms(kernels::Int8GemmPath::kSm90, y_sm90.p);
      const double t_mma = int8_ms(kernels::Int8GemmPath::kMma, y_mma.p);
      kernels::GemmArgs bf;
      bf.x = x16.p;
      bf.w = w16.p;
      bf.bias = {bias.p, kernels::ElemType::kBF16};
      bf.y = {y16.p, kernels::ElemType::kBF16};
      bf.m = m;
      bf.n = n;
      bf.k = k;
      const double t_bf16 =
          TimeMs(stream, iters, [&] { return kernels::LaunchGemm(ctx, bf, stream) == 0; });
      kernels::QuantizeInt8Args qa;
      qa.x = {x16.p, kernels::ElemType::kBF16};
      qa.q = static_cast<int8_t*>(a8.p);  // the GEMMs above are done with these codes
      qa.scale = static_cast<float*>(sa.p);
      qa.rows = m;
      qa.cols = k;
      const double t_quant = TimeMs(
          stream, iters, [&] { return kernels::LaunchQuantizeInt8(qa, stream) == cudaSuccess; });
      PERF_CUDA_OK(cudaStreamSynchronize(stream));
      EXPECT_GT(t_sm90, 0);
      EXPECT_GT(t_mma, 0);
      EXPECT_GT(t_bf16, 0);
      std::vector<uint16_t> h_sm90(static_cast<size_t>(m * n)), h_mma(h_sm90.size());
      PERF_CUDA_OK(cudaMemcpy(h_sm90.data(), y_sm90.p, m * n * 2, cudaMemcpyDeviceToHost));
      PERF_CUDA_OK(cudaMemcpy(h_mma.data(), y_mma.p, m * n * 2, cudaMemcpyDeviceToHost));
      int64_t diffs = 0;
      for (size_t i = 0; i < h_sm90.size(); ++i) diffs += h_sm90[i] != h_mma[i];
      EXPECT_EQ(diffs, 0) << "sm90 vs mma.sync y at " << m << "x" << n << "x" << k;
      const double ops = 2.0 * m * n * k;
      std::printf("%-6s %6lld %6lld %6lld | %9.3f %9.3f %9.3f %9.3f | %8.2f %8.2f %8.2f | %.0f%s\n",
                  s.model, static_cast<long long>(m), static_cast<long long>(n),
                  static_cast<long long>(k), t_bf16, t_sm90, t_mma, t_quant, t_bf16 / t_sm90,
                  t_bf16 / t_mma, t_bf16 / (t_sm90 + t_quant), ops / t_sm90 * 1e-9,
                  diffs ? "  BITS DIFFER" : "");
      std::fflush(stdout);
    }
  }
  std::printf("sm90 x / mma x: bf16 ms over the int8 GEMM's; lin x: over quantiser + wgmma GEMM\n");
  cudaStreamDestroy(stream);
}

#undef PERF_CUDA_OK

}  // namespace

std::vector<Case> QuantCases() {
  return {
      Int8LinearCase(7, 200, 130, true, true, 1.f, "(scalar path: k % 16 != 0)"),
      Int8LinearCase(7, 208, 130, false, false, 1.f, "(mma, k tail 80)"),
      Int8LinearCase(257, 1536, 256, true, true, 3.f, "(mma, 12 k blocks)"),
      Int8LinearCase(1, 128, 128, true, false, 1.f, "(mma, one row)"),
      Int8LinearCase(130, 384, 200, false, true, 8.f, "(mma, n tail 72)"),
      Int8SpecialValuesCase(),
  };
}

}  // namespace turbovid::engine::parity
