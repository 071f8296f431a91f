// Parity cases for Conv3d, ChannelRmsNorm, Upsample2x. Conv shapes cover every CUDA path (sm90,
// halo, gathered GEMM, direct; forced through the backend's kernel options on shapes another path
// would take), ragged channels, odd sizes, strides with asymmetric padding and causal padding. The
// forced sm90 cases run the sm_90a TMA + wgmma kernel on an sm_90 device (where a shape it does not
// take is an error, not a silent fallback) and the default path elsewhere. Also a disabled
// benchmark of the Wan VAE decoder's shapes (ConvPerf.DISABLED_WanVaeDecode).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "kernels/kernel_options.h"
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {
namespace {

struct ConvSpec {
  int64_t cin, cout, t, h, w;
  std::array<int64_t, 3> k;
  std::array<int, 3> stride = {1, 1, 1};
  std::array<int, 3> lo = {0, 0, 0};
  std::array<int, 3> hi = {0, 0, 0};
  bool bias = true;
  const char* path = nullptr;  // kernel path forced for the op, TV_CONV3D_PATH's spelling (CPU
                               // ignores it)
  int64_t t_prev = 0;          // frames of Conv3dOp::x_prev in front of x (0: none)
  int prev_first = 0;          // Conv3dOp::x_prev_first (x_prev as a ring)
};

std::string Triple(const std::array<int, 3>& v) {
  return std::to_string(v[0]) + std::to_string(v[1]) + std::to_string(v[2]);
}

// Whether this process's CUDA device is an sm_90 part (the sm90 cases say once when it is not).
bool Sm90Device() {
  static const bool sm90 = [] {
    const absl::StatusOr<CudaDeviceInfo> info = QueryCudaDevice(0);
    const bool yes = info.ok() && info->sm_version == 90;
    if (info.ok() && !yes) {
      std::printf("conv3d sm90 cases: sm_%d device, they run the default path\n", info->sm_version);
    }
    return yes;
  }();
  return sm90;
}

Case ConvCase(const ConvSpec& s) {
  const auto out = [](int64_t n, int lo, int hi, int64_t k, int st) {
    return (n + lo + hi - k) / st + 1;
  };
  const Shape y_shape = {s.cout, out(s.t_prev + s.t, s.lo[0], s.hi[0], s.k[0], s.stride[0]),
                         out(s.h, s.lo[1], s.hi[1], s.k[1], s.stride[1]),
                         out(s.w, s.lo[2], s.hi[2], s.k[2], s.stride[2])};
  std::string name = "conv3d " + std::to_string(s.cin) + ">" + std::to_string(s.cout) + " " +
                     ShapeString({s.t, s.h, s.w}) + " k" + std::to_string(s.k[0]) +
                     std::to_string(s.k[1]) + std::to_string(s.k[2]) + " s" + Triple(s.stride) +
                     " p" + Triple(s.lo) + "/" + Triple(s.hi) + (s.bias ? "" : " nobias") +
                     (s.path ? std::string(" ") + s.path : "") +
                     (s.t_prev > 0 ? " x_prev " + std::to_string(s.t_prev) : "") +
                     (s.prev_first > 0 ? " first " + std::to_string(s.prev_first) : "");
  // Weights ~ U(±1/√fan_in) keep outputs O(1) whatever the fan-in.
  const float wr = 1.f / std::sqrt(static_cast<float>(s.cin * s.k[0] * s.k[1] * s.k[2]));
  std::vector<Input> in = {{{s.cin, s.t, s.h, s.w}},
                           {{s.cout, s.cin, s.k[0], s.k[1], s.k[2]}, false, -wr, wr}};
  if (s.bias) in.push_back({{s.cout}, false, -0.5f, 0.5f});
  const size_t prev_index = in.size();
  if (s.t_prev > 0) in.push_back({{s.cin, s.t_prev, s.h, s.w}});
  return {name, OpKindOf<Conv3dOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc(y_shape));
            Conv3dOp op{&t[0], &t[1], s.bias ? &t[2] : nullptr, s.stride, s.lo, s.hi, &y};
            if (s.t_prev > 0) op.x_prev = &t[prev_index];
            op.x_prev_first = s.prev_first;
            const bool sm90 = s.path != nullptr && std::string(s.path) == "sm90";
            if (sm90 && env.b.device() == Device::kCuda) Sm90Device();
            kernels::Conv3dPath path = kernels::Conv3dPath::kAuto;
            if (s.path != nullptr && !kernels::ParseConv3dPath(s.path, &path)) {
              return absl::InvalidArgumentError(absl::StrCat("unknown conv3d path ", s.path));
            }
            TV_RETURN_IF_ERROR(RunWithKernelOptions(
                env.b, [&] { return env.b.Run(op); },
                [&](kernels::KernelOptions& o) { o.conv3d = path; }));
            return std::vector<Tensor>{y};
          }};
}

// The fused conv (Conv3dOp norm_gamma / norm_inv_rms(_prev) / silu / residual): the statistics
// come from ChannelRmsStatsOp on the same backend, so a case checks both ops; `residual_is_y`
// writes the sum over the residual (the decoder's in-place block output).
struct FusedSpec {
  ConvSpec conv;
  bool norm = true, silu = true, residual = true, residual_is_y = false;
};

Case FusedConvCase(const FusedSpec& f) {
  const ConvSpec& s = f.conv;
  Case c = ConvCase(s);
  c.name += std::string(" fused") + (f.norm ? " norm" : "") + (f.silu ? " silu" : "") +
            (f.residual ? (f.residual_is_y ? " residual=y" : " residual") : "");
  const auto out = [](int64_t n, int lo, int hi, int64_t k, int st) {
    return (n + lo + hi - k) / st + 1;
  };
  const Shape y_shape = {s.cout, out(s.t_prev + s.t, s.lo[0], s.hi[0], s.k[0], s.stride[0]),
                         out(s.h, s.lo[1], s.hi[1], s.k[1], s.stride[1]),
                         out(s.w, s.lo[2], s.hi[2], s.k[2], s.stride[2])};
  const size_t prev_index = s.bias ? 3 : 2;
  const size_t gamma_index = c.inputs.size();
  c.inputs.push_back({{s.cin}, false, 0.5f, 1.5f});
  const size_t res_index = c.inputs.size();
  c.inputs.push_back({y_shape});
  // The transformed operand is rounded to bf16 before the MMAs (as the unfused norm's bf16
  // output was), an error the naive bf16 reference (inputs rounded once) does not have.
  c.slack = 4.0;
  c.run = [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
    const auto stats = [&](const Tensor& x) -> absl::StatusOr<Tensor> {
      const int64_t p = x.numel() / x.dim(0);
      TV_ASSIGN_OR_RETURN(Tensor xv, x.Reshape({x.dim(0), p}));
      TV_ASSIGN_OR_RETURN(Tensor inv, env.b.Allocate(DType::kF32, {p}));
      TV_RETURN_IF_ERROR(env.b.Run(ChannelRmsStatsOp{&xv, &inv}));
      return inv.Reshape({x.dim(1), x.dim(2), x.dim(3)});
    };
    Tensor y;
    if (f.residual_is_y) {
      y = t[res_index];
    } else {
      TV_ASSIGN_OR_RETURN(y, env.Alloc(y_shape));
    }
    Conv3dOp op{&t[0], &t[1], s.bias ? &t[2] : nullptr, s.stride, s.lo, s.hi, &y};
    Tensor inv, inv_prev;
    if (s.t_prev > 0) {
      op.x_prev = &t[prev_index];
      op.x_prev_first = s.prev_first;
    }
    if (f.norm) {
      TV_ASSIGN_OR_RETURN(inv, stats(t[0]));
      op.norm_gamma = &t[gamma_index];
      op.norm_inv_rms = &inv;
      if (s.t_prev > 0) {
        TV_ASSIGN_OR_RETURN(inv_prev, stats(t[prev_index]));
        op.norm_inv_rms_prev = &inv_prev;
      }
    }
    op.silu = f.silu;
    if (f.residual) op.residual = &t[res_index];
    kernels::Conv3dPath path = kernels::Conv3dPath::kAuto;
    if (s.path != nullptr && !kernels::ParseConv3dPath(s.path, &path)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown conv3d path ", s.path));
    }
    TV_RETURN_IF_ERROR(RunWithKernelOptions(
        env.b, [&] { return env.b.Run(op); }, [&](kernels::KernelOptions& o) { o.conv3d = path; }));
    return std::vector<Tensor>{y};
  };
  return c;
}

Case ChannelRmsStatsCase(int64_t c, int64_t p) {
  return {"channel_rms_stats " + std::to_string(c) + "x" + std::to_string(p),
          OpKindOf<ChannelRmsStatsOp>(),
          {{{c, p}, false, -2.f, 2.f}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor inv, env.b.Allocate(DType::kF32, {p}));
            TV_RETURN_IF_ERROR(env.b.Run(ChannelRmsStatsOp{&t[0], &inv}));
            return std::vector<Tensor>{inv};
          }};
}

Case ChannelRmsNormCase(int64_t c, int64_t p, bool silu = false) {
  return {
      "channel_rms_norm " + std::to_string(c) + "x" + std::to_string(p) + (silu ? " +silu" : ""),
      OpKindOf<ChannelRmsNormOp>(),
      {{{c, p}, false, -2.f, 2.f}, {{c}, false, 0.5f, 1.5f}},
      [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
        TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({c, p}));
        TV_RETURN_IF_ERROR(env.b.Run(ChannelRmsNormOp{&t[0], &t[1], &y, silu}));
        return std::vector<Tensor>{y};
      }};
}

Case Upsample2xCase(Shape s) {
  return {"upsample2x " + ShapeString(s),
          OpKindOf<Upsample2xOp>(),
          {{s}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({s[0], s[1], 2 * s[2], 2 * s[3]}));
            TV_RETURN_IF_ERROR(env.b.Run(Upsample2xOp{&t[0], &y}));
            return std::vector<Tensor>{y};
          }};
}

}  // namespace

std::vector<Case> ConvCases() {
  const std::array<int64_t, 3> k333 = {3, 3, 3}, k133 = {1, 3, 3}, k111 = {1, 1, 1},
                               k311 = {3, 1, 1};
  const std::array<int, 3> s1 = {1, 1, 1}, s122 = {1, 2, 2}, s211 = {2, 1, 1};
  const std::array<int, 3> z = {0, 0, 0}, causal = {2, 1, 1}, same = {1, 1, 1}, spatial = {0, 1, 1},
                           causal_t = {2, 0, 0};
  std::vector<ConvSpec> specs = {
      // Ragged: Cin 3, Cout 5, odd H/W (gathered GEMM: W % 8 != 0), causal temporal padding.
      {3, 5, 3, 7, 9, k333, s1, causal, spatial},
      // Cin 3 on the halo path (W = 16); first frame has only one temporal tap inside x.
      {3, 5, 2, 9, 16, k333, s1, causal, spatial},
      // Encoder downsample: stride 2, zeros only right/bottom.
      {12, 20, 1, 11, 16, k133, s122, z, spatial},
      {16, 24, 3, 10, 15, k133, s122, z, spatial},
      // 1x1x1 (shortcut, attention projections).
      {40, 72, 2, 5, 24, k111},
      // 3x1x1: temporal stride 2 (downsample3d) and causal (upsample3d time_conv).
      {16, 24, 5, 6, 8, k311, s211},
      {32, 64, 2, 4, 8, k311, s1, causal_t},
      // Tiny spatial sizes.
      {16, 16, 1, 1, 8, k111},
      {4, 3, 1, 1, 1, k111},
      {16, 8, 2, 2, 8, k333, s1, causal, spatial},
      // Larger: full fast-path tiles plus tails; Cout 200 = 96 + 96 + 8; no bias.
      {96, 96, 3, 34, 34, k333, s1, causal, spatial},
      {96, 96, 3, 34, 40, k333, s1, same, same},
      {48, 200, 1, 20, 32, k133, s1, spatial, spatial},
      {64, 192, 2, 16, 64, k333, s1, causal, spatial, false},
      // The same shape through every path.
      {16, 24, 3, 10, 16, k333, s1, causal, spatial, true, "direct"},
      {16, 24, 3, 10, 16, k333, s1, causal, spatial, true, "gemm"},
      {16, 24, 3, 10, 16, k333, s1, causal, spatial, true, "halo"},
      {12, 20, 1, 11, 16, k133, s122, z, spatial, true, "direct"},
      // sm_90a TMA + wgmma kernel: W not a multiple of its 64 columns (40, 72, 136), Cout 96 /
      // 192 / 384 (two 192-channel tiles) / 200 (ragged: 192 + 8) / 8, Cin not a multiple of its
      // 16-channel stages (3, 40, 24), 3x3x3 causal, kt = 3 over two cache frames (no temporal
      // padding), 1x3x3, 1x1x1, 3x1x1 causal and temporal stride 2, H below its 4 / 8 rows.
      {3, 96, 3, 9, 40, k333, s1, causal, spatial, true, "sm90"},
      {40, 192, 2, 7, 72, k333, s1, causal, spatial, true, "sm90"},
      {24, 384, 1, 5, 136, k133, s1, spatial, spatial, false, "sm90"},
      {32, 96, 4, 6, 64, k333, s1, spatial, spatial, true, "sm90"},
      {16, 200, 2, 3, 16, k333, s1, causal, spatial, true, "sm90"},
      {3, 8, 2, 2, 8, k333, s1, causal, spatial, true, "sm90"},
      {48, 96, 2, 5, 24, k111, s1, z, z, true, "sm90"},
      {64, 200, 4, 3, 16, k311, s1, causal_t, z, true, "sm90"},
      {16, 24, 5, 6, 8, k311, s211, z, z, true, "sm90"},
      // History frames read in place (Conv3dOp::x_prev, the VAE's causal cache): by the sm90
      // kernel (two cache frames + 4 or 1, 3x3x3 and the 3x1x1 time conv), and concatenated
      // first for the other paths (forced halo; Cout 8 goes to the halo path by default).
      {96, 96, 4, 12, 64, k333, s1, spatial, spatial, true, "sm90", 2},
      {40, 96, 1, 7, 72, k333, s1, spatial, spatial, true, "sm90", 2},
      {64, 128, 2, 4, 16, k311, s1, z, z, true, "sm90", 2},
      {40, 72, 2, 7, 72, k333, s1, spatial, spatial, true, "halo", 2},
      {3, 8, 2, 5, 16, k333, s1, spatial, spatial, true, nullptr, 2},
      // The cache as a ring (frame-by-frame stages): oldest frame at slot 1.
      {96, 96, 1, 12, 64, k333, s1, spatial, spatial, true, "sm90", 2, 1},
      {40, 72, 1, 7, 72, k333, s1, spatial, spatial, true, "halo", 2, 1},
      {96, 3, 1, 9, 64, k333, s1, spatial, spatial, true, nullptr, 2, 1},
  };
  std::vector<Case> cases;
  for (const ConvSpec& s : specs) cases.push_back(ConvCase(s));
  // Fused RMS_norm + SiLU input and residual epilogue on every path: the sm90 3x3 kernel (its
  // builders transform the tile; history frames with their own statistics, as a ring; ragged W,
  // Cin and Cout), the sm90 1x1 (residual only: a transformed 1x1 goes to a portable path), the
  // halo, gathered GEMM and direct paths, and the concatenating fallback for the history.
  const std::vector<FusedSpec> fused = {
      {{96, 96, 4, 12, 64, k333, s1, spatial, spatial, true, "sm90", 2}},
      {{96, 96, 1, 12, 64, k333, s1, spatial, spatial, true, "sm90", 2, 1}},
      {{40, 72, 2, 7, 72, k333, s1, causal, spatial, true, "sm90"}, true, true, true, true},
      {{24, 96, 1, 5, 136, k133, s1, spatial, spatial, false, "sm90"}, true, false, false},
      {{48, 96, 2, 5, 24, k111, s1, z, z, true, "sm90"}, false, false, true, true},
      {{48, 96, 2, 5, 24, k111, s1, z, z, true, nullptr}, true, false, false},
      {{40, 72, 2, 7, 72, k333, s1, spatial, spatial, true, "halo", 2, 1}},
      {{16, 24, 3, 10, 16, k333, s1, causal, spatial, true, "halo"}, false, true, true},
      {{96, 3, 1, 9, 64, k333, s1, spatial, spatial, true, nullptr, 2, 1}},
      {{16, 24, 3, 10, 16, k333, s1, causal, spatial, true, "gemm"}},
      {{3, 5, 3, 7, 9, k333, s1, causal, spatial, true, nullptr}, true, true, true, true},
      {{12, 20, 1, 11, 16, k133, s122, z, spatial, true, "direct"}},
  };
  for (const FusedSpec& f : fused) cases.push_back(FusedConvCase(f));
  cases.push_back(ChannelRmsStatsCase(96, 1000));
  cases.push_back(ChannelRmsStatsCase(5, 37));
  cases.push_back(ChannelRmsNormCase(96, 1000));
  cases.push_back(ChannelRmsNormCase(5, 37));
  cases.push_back(ChannelRmsNormCase(384, 130));
  cases.push_back(ChannelRmsNormCase(16, 4099));
  cases.push_back(ChannelRmsNormCase(96, 1000, true));
  cases.push_back(ChannelRmsNormCase(7, 65, true));
  cases.push_back(Upsample2xCase({3, 2, 5, 7}));
  cases.push_back(Upsample2xCase({16, 1, 8, 12}));
  cases.push_back(Upsample2xCase({4, 3, 1, 1}));
  return cases;
}

namespace {

// Wan2.1 VAE decode at 480p / 81 frames (latent [16, 21, 60, 104]): every conv, norm and upsample
// shape with its number of calls per decode (stage-1 calls cover two frames, chunk 0 one: 20.5),
// and the 3x3x3 convs again in their fused form.
// Run on a GPU: tv_parity_test --gtest_also_run_disabled_tests --gtest_filter='ConvPerf.*'
// (TV_CONV3D_PATH=gemm|direct|halo forces a conv path). Prints time per call and per decode.
struct PerfConv {
  const char* what;
  int64_t cin, cout, t, h, w;
  std::array<int64_t, 3> k;
  std::array<int, 3> lo, hi;
  double calls;
};

// Deterministic pseudo-random F32 host tensor in [-1, 1) (fast enough for 10^8 elements).
Tensor PerfRandom(Shape shape, float scale) {
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  uint32_t s = 12345u;
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = scale * (static_cast<float>(s >> 8) * (2.f / 16777216.f) - 1.f);
  }
  return t;
}

// Seconds per call of `run` (after one warm-up call), repeated for about 50 ms.
template <typename Fn>
double TimeCalls(Backend& b, Fn run) {
  using Clock = std::chrono::steady_clock;
  EXPECT_TRUE(run().ok());
  EXPECT_TRUE(b.Synchronize().ok());
  auto t0 = Clock::now();
  EXPECT_TRUE(run().ok());
  EXPECT_TRUE(b.Synchronize().ok());
  const double one = std::chrono::duration<double>(Clock::now() - t0).count();
  const int reps = static_cast<int>(std::clamp(0.05 / std::max(one, 1e-6), 3.0, 200.0));
  t0 = Clock::now();
  for (int i = 0; i < reps; ++i) EXPECT_TRUE(run().ok());
  EXPECT_TRUE(b.Synchronize().ok());
  return std::chrono::duration<double>(Clock::now() - t0).count() / reps;
}

TEST(ConvPerf, DISABLED_WanVaeDecode) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  Backend& b = **cuda;
  const std::array<int64_t, 3> k333 = {3, 3, 3}, k133 = {1, 3, 3}, k111 = {1, 1, 1},
                               k311 = {3, 1, 1};
  const std::array<int, 3> z = {0, 0, 0}, causal = {2, 1, 1}, sp = {0, 1, 1}, ct = {2, 0, 0};
  const std::vector<PerfConv> convs = {
      {"conv_in", 16, 384, 3, 60, 104, k333, causal, sp, 21},
      {"mid+stage0 res", 384, 384, 3, 60, 104, k333, causal, sp, 210},
      {"attn qkv", 384, 1152, 1, 60, 104, k111, z, z, 21},
      {"attn proj", 384, 384, 1, 60, 104, k111, z, z, 21},
      {"time_conv 0", 384, 768, 3, 60, 104, k311, ct, z, 20},
      {"up conv 0", 384, 192, 1, 120, 208, k133, sp, sp, 41},
      {"stage1 res 192>384", 192, 384, 4, 120, 208, k333, causal, sp, 20.5},
      {"stage1 res 384", 384, 384, 4, 120, 208, k333, causal, sp, 102.5},
      {"stage1 shortcut", 192, 384, 2, 120, 208, k111, z, z, 20.5},
      {"time_conv 1", 384, 768, 4, 120, 208, k311, ct, z, 20},
      {"up conv 1", 384, 192, 1, 240, 416, k133, sp, sp, 81},
      {"stage2 res 192", 192, 192, 3, 240, 416, k333, causal, sp, 486},
      {"up conv 2", 192, 96, 1, 480, 832, k133, sp, sp, 81},
      {"stage3 res 96", 96, 96, 3, 480, 832, k333, causal, sp, 486},
      {"head 96>3", 96, 3, 3, 480, 832, k333, causal, sp, 81},
  };
  double total = 0, total_flop = 0;
  std::printf("%-20s %-22s %9s %9s %7s %9s\n", "conv", "x", "ms/call", "TFLOP/s", "calls",
              "ms/decode");
  for (const PerfConv& c : convs) {
    auto x = b.Upload(PerfRandom({c.cin, c.t, c.h, c.w}, 1.f), DType::kBF16);
    auto w = b.Upload(PerfRandom({c.cout, c.cin, c.k[0], c.k[1], c.k[2]}, 0.05f), DType::kBF16);
    auto bias = b.Upload(PerfRandom({c.cout}, 0.1f), DType::kBF16);
    ASSERT_TRUE(x.ok() && w.ok() && bias.ok());
    const int64_t to = c.t + c.lo[0] + c.hi[0] - c.k[0] + 1,
                  ho = c.h + c.lo[1] + c.hi[1] - c.k[1] + 1,
                  wo = c.w + c.lo[2] + c.hi[2] - c.k[2] + 1;
    auto y = b.Allocate(DType::kBF16, {c.cout, to, ho, wo});
    ASSERT_TRUE(y.ok());
    const Conv3dOp op{&*x, &*w, &*bias, {1, 1, 1}, c.lo, c.hi, &*y};
    const double s = TimeCalls(b, [&] { return b.Run(op); });
    const double flop = 2.0 * c.cout * to * ho * wo * c.cin * c.k[0] * c.k[1] * c.k[2];
    total += s * c.calls;
    total_flop += flop * c.calls;
    std::printf("%-20s %-22s %9.3f %9.1f %7.1f %9.1f\n", c.what,
                ShapeString({c.cin, c.t, c.h, c.w}).c_str(), s * 1e3, flop / s * 1e-12, c.calls,
                s * c.calls * 1e3);
  }
  std::printf("convs per decode: %.1f ms, %.1f TFLOP, %.1f TFLOP/s\n", total * 1e3,
              total_flop * 1e-12, total_flop / total * 1e-12);
  // The fused form of the residual blocks' convs (docs/model-math.md §5.7): RMS_norm + SiLU on the
  // operand load (statistics precomputed) and the residual in the epilogue, against the plain
  // conv of the same shape above: the cost of the fusion inside the conv.
  std::printf("%-20s %-22s %9s %9s (fused: norm + silu + residual)\n", "conv", "x", "ms/call",
              "TFLOP/s");
  for (const PerfConv& c : convs) {
    if (c.k[1] != 3 || c.k[0] != 3 || c.cout < 32) continue;
    auto x = b.Upload(PerfRandom({c.cin, c.t, c.h, c.w}, 1.f), DType::kBF16);
    auto w = b.Upload(PerfRandom({c.cout, c.cin, c.k[0], c.k[1], c.k[2]}, 0.05f), DType::kBF16);
    auto bias = b.Upload(PerfRandom({c.cout}, 0.1f), DType::kBF16);
    auto gamma = b.Upload(PerfRandom({c.cin}, 1.f), DType::kBF16);
    auto inv = b.Allocate(DType::kF32, {c.t * c.h * c.w});
    ASSERT_TRUE(x.ok() && w.ok() && bias.ok() && gamma.ok() && inv.ok());
    auto xv = x->Reshape({c.cin, c.t * c.h * c.w});
    ASSERT_TRUE(xv.ok());
    ASSERT_TRUE(b.Run(ChannelRmsStatsOp{&*xv, &*inv}).ok());
    auto inv3 = inv->Reshape({c.t, c.h, c.w});
    const int64_t to = c.t + c.lo[0] + c.hi[0] - c.k[0] + 1,
                  ho = c.h + c.lo[1] + c.hi[1] - c.k[1] + 1,
                  wo = c.w + c.lo[2] + c.hi[2] - c.k[2] + 1;
    auto y = b.Allocate(DType::kBF16, {c.cout, to, ho, wo});
    auto res = b.Allocate(DType::kBF16, {c.cout, to, ho, wo});
    ASSERT_TRUE(inv3.ok() && y.ok() && res.ok());
    Conv3dOp op{&*x, &*w, &*bias, {1, 1, 1}, c.lo, c.hi, &*y};
    op.norm_gamma = &*gamma;
    op.norm_inv_rms = &*inv3;
    op.silu = true;
    op.residual = &*res;
    const double s = TimeCalls(b, [&] { return b.Run(op); });
    const double flop = 2.0 * c.cout * to * ho * wo * c.cin * c.k[0] * c.k[1] * c.k[2];
    std::printf("%-20s %-22s %9.3f %9.1f\n", c.what, ShapeString({c.cin, c.t, c.h, c.w}).c_str(),
                s * 1e3, flop / s * 1e-12);
  }
  double other = 0;
  const std::vector<std::pair<Shape, double>> norms = {
      {{384, 6240}, 21 * 11.0}, {{384, 49920}, 123}, {{192, 99840}, 486}, {{96, 399360}, 567}};
  for (const auto& [shape, calls] : norms) {
    auto x = b.Upload(PerfRandom(shape, 1.f), DType::kBF16);
    auto g = b.Upload(PerfRandom({shape[0]}, 1.f), DType::kBF16);
    auto y = b.Allocate(DType::kBF16, shape);
    ASSERT_TRUE(x.ok() && g.ok() && y.ok());
    const double s = TimeCalls(b, [&] { return b.Run(ChannelRmsNormOp{&*x, &*g, &*y}); });
    other += s * calls;
    std::printf("channel_rms_norm %-16s %9.3f ms %7.1f GB/s %7.1f calls\n",
                ShapeString(shape).c_str(), s * 1e3, 3.0 * 2 * NumElements(shape) / s * 1e-9,
                calls);
  }
  const std::vector<std::pair<Shape, double>> ups = {
      {{384, 1, 60, 104}, 41}, {{384, 1, 120, 208}, 81}, {{192, 1, 240, 416}, 81}};
  for (const auto& [shape, calls] : ups) {
    auto x = b.Upload(PerfRandom(shape, 1.f), DType::kBF16);
    auto y = b.Allocate(DType::kBF16, {shape[0], shape[1], 2 * shape[2], 2 * shape[3]});
    ASSERT_TRUE(x.ok() && y.ok());
    const double s = TimeCalls(b, [&] { return b.Run(Upsample2xOp{&*x, &*y}); });
    other += s * calls;
    std::printf("upsample2x %-22s %9.3f ms %7.1f GB/s %7.1f calls\n", ShapeString(shape).c_str(),
                s * 1e3, 5.0 * 2 * NumElements(shape) / s * 1e-9, calls);
  }
  std::printf("norms + upsamples per decode: %.1f ms\n", other * 1e3);
}

}  // namespace

}  // namespace turbovid::engine::parity
