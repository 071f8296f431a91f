// turbovid-kernel-bench: times the attention kernels (cudaEvents) on random bf16 data at the DiT
// shapes and checks the fast paths against the general kernel; with --op conv3d the same for the
// conv3d paths at the Wan VAE decoder's shapes. Never asserts (bench/ rule).
//   turbovid-kernel-bench [--op attention|conv3d] [--path P] [--iters N] [--check] [--no-time]
//                         [--shape S] (conv3d: time only the shapes whose name contains S)
//   attention: P = all|flash|flash4|sm90|sm90-<variant>|simple; TFLOP/s counts 4 * Lq * Lk * D *
//   heads. TV_FA_SM90=<variant> (s2|s2pp|s3pp|s2ppp) turns sm90 into sm90-<variant>.
//   conv3d: P = all|direct|gemm|halo|sm90 (all: halo and, on sm_90, sm90); TFLOP/s counts
//   2 * Cout * Cin * kt * kh * kw per output position.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/flash_attention.h"
#include "kernels/kernel_options.h"

namespace turbovid::kernels {
namespace {

struct Shape {
  const char* name;
  int64_t lq, lk, heads;
  int d;
};

// One device buffer set for q, k, v (random) and out.
struct Buffers {
  void* q = nullptr;
  void* k = nullptr;
  void* v = nullptr;
  void* out = nullptr;
  ~Buffers() {
    cudaFree(q);
    cudaFree(k);
    cudaFree(v);
    cudaFree(out);
  }
};

uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even (inputs are finite)
  return static_cast<uint16_t>(u >> 16);
}
float FromBf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Fills `n` bf16 values uniform in [-r, r] from a fixed seed; a 4M-value pattern is generated on
// the host and repeated (with a shifting start), which is random enough for timing and checks.
bool FillRandom(void* dev, int64_t n, float r, uint32_t seed) {
  constexpr int64_t kPattern = int64_t{1} << 22;
  std::vector<uint16_t> host(static_cast<size_t>(std::min(n, kPattern) + 4096));
  uint32_t s = seed * 2654435761u + 12345u;
  for (uint16_t& x : host) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    x = ToBf16(r * (static_cast<float>(s >> 8) * (2.f / 16777216.f) - 1.f));
  }
  const int64_t chunk = std::min(n, kPattern);
  for (int64_t off = 0, i = 0; off < n; off += chunk, ++i) {
    const int64_t cnt = std::min(chunk, n - off);
    const uint16_t* src = host.data() + (i * 389) % 4096;
    if (cudaMemcpy(static_cast<uint16_t*>(dev) + off, src, cnt * 2, cudaMemcpyHostToDevice) !=
        cudaSuccess) {
      return false;
    }
  }
  return true;
}

bool Alloc(Buffers& b, const Shape& s) {
  const size_t qn = s.lq * s.heads * s.d, kn = s.lk * s.heads * s.d;
  if (cudaMalloc(&b.q, qn * 2) != cudaSuccess || cudaMalloc(&b.k, kn * 2) != cudaSuccess ||
      cudaMalloc(&b.v, kn * 2) != cudaSuccess || cudaMalloc(&b.out, qn * 2) != cudaSuccess) {
    return false;
  }
  return FillRandom(b.q, qn, 2.f, 1) && FillRandom(b.k, kn, 2.f, 2) && FillRandom(b.v, kn, 1.f, 3);
}

AttentionArgs ArgsFor(const Shape& s, const Buffers& b, void* out) {
  AttentionArgs a;
  a.q = {b.q, ElemType::kBF16};
  a.k = {b.k, ElemType::kBF16};
  a.v = {b.v, ElemType::kBF16};
  a.out = {out, ElemType::kBF16};
  a.lq = s.lq;
  a.lk = s.lk;
  a.heads = s.heads;
  a.d = s.d;
  a.dv = s.d;
  a.scale = 1.f / std::sqrt(static_cast<float>(s.d));
  return a;
}

cudaError_t Run(const std::string& path, const AttentionArgs& a) {
  if (path == "simple") return LaunchAttention(a, nullptr);
  if (path == "flash") return LaunchFlashAttention(a, nullptr, 8);
  if (path == "flash4") return LaunchFlashAttention(a, nullptr, 4);
  // "sm90" runs the sm_90a kernel's default variant, "sm90-<v>" (v: s2|s2pp|s3pp|s2ppp) forces one.
  if (path.rfind("sm90", 0) == 0) {
    FaSm90Variant variant = FaSm90Variant::kAuto;
    if (path.size() > 4 && (path[4] != '-' || !ParseFaSm90Variant(path.c_str() + 5, &variant))) {
      return cudaErrorInvalidValue;
    }
    return LaunchFlashAttentionSm90(a, nullptr, variant);
  }
  return cudaErrorInvalidValue;
}

// Mean ms of `iters` calls of `launch` after one warm-up (cudaEvents), or a negative value on
// error, which is printed after `label`.
template <class Launch>
double TimeLaunches(Launch launch, int iters, const std::string& label) {
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  cudaError_t e = launch();
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaEventRecord(t0);
  for (int i = 0; i < iters && e == cudaSuccess; ++i) e = launch();
  if (e == cudaSuccess) e = cudaEventRecord(t1);
  if (e == cudaSuccess) e = cudaEventSynchronize(t1);
  float ms = 0.f;
  if (e == cudaSuccess) cudaEventElapsedTime(&ms, t0, t1);
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  if (e != cudaSuccess) {
    std::printf("  %s error: %s\n", label.c_str(), cudaGetErrorString(e));
    return -1.0;
  }
  return ms / iters;
}

double TimeMs(const std::string& path, const AttentionArgs& a, int iters) {
  char label[16];
  std::snprintf(label, sizeof(label), "%-8s", path.c_str());
  return TimeLaunches([&] { return Run(path, a); }, iters, label);
}

std::vector<float> Download(const void* dev, int64_t n) {
  std::vector<uint16_t> h(static_cast<size_t>(n));
  std::vector<float> f(static_cast<size_t>(n), NAN);
  if (cudaMemcpy(h.data(), dev, n * 2, cudaMemcpyDeviceToHost) != cudaSuccess) return f;
  for (int64_t i = 0; i < n; ++i) f[i] = FromBf16(h[i]);
  return f;
}

// Runs `path` into a fresh output and compares with `ref` (host floats); prints the verdict.
void Compare(const std::string& path, const std::string& ref_name, const std::vector<float>& ref,
             const Shape& s, const Buffers& b) {
  const int64_t n = s.lq * s.heads * s.d;
  void* out = nullptr;
  if (cudaMalloc(&out, n * 2) != cudaSuccess) return;
  cudaMemset(out, 0xff, n * 2);  // NaN pattern: unwritten outputs show up
  const cudaError_t e1 = Run(path, ArgsFor(s, b, out));
  const cudaError_t e = e1 != cudaSuccess ? e1 : cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    std::printf("check %-12s %-7s vs %-7s: error %s\n", s.name, path.c_str(), ref_name.c_str(),
                cudaGetErrorString(e));
    cudaFree(out);
    return;
  }
  const std::vector<float> got = Download(out, n);
  cudaFree(out);
  double num = 0, den = 0, max_abs = 0;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i])) {
      ++bad;
      continue;
    }
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
    max_abs = std::max(max_abs, std::fabs(d));
  }
  const double rel = std::sqrt(num / std::max(den, 1e-30));
  std::printf("check %-12s %-7s vs %-7s: rel_l2 %.3e max_abs %.3e non-finite %lld  %s\n", s.name,
              path.c_str(), ref_name.c_str(), rel, max_abs, static_cast<long long>(bad),
              (bad == 0 && rel < 2e-2) ? "ok" : "FAIL");
}

void Check(const std::vector<std::string>& paths) {
  const Shape shapes[] = {
      {"self4100", 4100, 4100, 12, 128}, {"cross4100", 4100, 512, 12, 128},
      {"d64", 1000, 777, 3, 64},         {"tiny", 7, 1, 2, 128},
      {"even", 1024, 1024, 2, 128},
  };
  for (const Shape& s : shapes) {
    Buffers b;
    if (!Alloc(b, s)) {
      std::printf("check %s: allocation failed\n", s.name);
      continue;
    }
    const int64_t n = s.lq * s.heads * s.d;
    if (Run("simple", ArgsFor(s, b, b.out)) != cudaSuccess ||
        cudaDeviceSynchronize() != cudaSuccess) {
      std::printf("check %s: simple kernel failed\n", s.name);
      continue;
    }
    const std::vector<float> ref = Download(b.out, n);
    for (const std::string& p : paths) {
      if (p == "simple" || (p.rfind("sm90", 0) == 0 && s.d != 128)) continue;
      Compare(p, "simple", ref, s, b);
    }
  }
}

void Time(const std::vector<std::string>& paths, int iters) {
  const Shape shapes[] = {
      {"self[12,32760]", 32760, 32760, 12, 128},
      {"self[40,75600]", 75600, 75600, 40, 128},
      {"cross[12,32760x512]", 32760, 512, 12, 128},
  };
  std::printf("%-22s %-8s %10s %10s\n", "shape", "path", "ms", "TFLOP/s");
  for (const Shape& s : shapes) {
    Buffers b;
    if (!Alloc(b, s)) {
      std::printf("%s: allocation failed\n", s.name);
      continue;
    }
    const double flops = 4.0 * s.lq * s.lk * s.d * s.heads;
    std::vector<float> first;
    std::string first_name;
    for (const std::string& p : paths) {
      // The general kernel needs seconds per call at these sizes: time it once.
      const double ms = TimeMs(p, ArgsFor(s, b, b.out), p == "simple" ? 1 : iters);
      if (ms < 0) continue;
      std::printf("%-22s %-8s %10.3f %10.1f\n", s.name, p.c_str(), ms, flops / (ms * 1e-3) / 1e12);
      std::fflush(stdout);
      // Fast paths must agree with each other at full size too.
      if (first.empty()) {
        first = Download(b.out, s.lq * s.heads * s.d);
        first_name = p;
      } else {
        Compare(p, first_name, first, s, b);
      }
    }
  }
}

// ---- conv3d ---------------------------------------------------------------------------------

struct ConvShape {
  const char* name;
  int64_t cin, cout, t, h, w;  // x [cin, t, h, w]
  int kt, kh, kw;
  int pad_t, pad_h, pad_w;  // front padding; the far side gets kh - 1 - pad (same size out)
};

// Device buffers of one conv shape: x, w, bias random bf16; y and the packed weights per path.
struct ConvBuffers {
  void* x = nullptr;
  void* w = nullptr;
  void* bias = nullptr;
  void* y = nullptr;
  void* packed = nullptr;
  ~ConvBuffers() {
    cudaFree(x);
    cudaFree(w);
    cudaFree(bias);
    cudaFree(y);
    cudaFree(packed);
  }
};

int64_t ConvOut(const ConvShape& s, int axis) {
  const int64_t in[3] = {s.t, s.h, s.w};
  const int k[3] = {s.kt, s.kh, s.kw}, lo[3] = {s.pad_t, s.pad_h, s.pad_w};
  // Temporal: front padding only (causal); spatial: symmetric "same" padding.
  const int hi = axis == 0 ? 0 : k[axis] - 1 - lo[axis];
  return in[axis] + lo[axis] + hi - k[axis] + 1;
}
int64_t ConvYElems(const ConvShape& s) {
  return s.cout * ConvOut(s, 0) * ConvOut(s, 1) * ConvOut(s, 2);
}
double ConvFlops(const ConvShape& s) {
  return 2.0 * static_cast<double>(ConvYElems(s)) * s.cin * s.kt * s.kh * s.kw;
}

bool ConvAlloc(ConvBuffers& b, const ConvShape& s) {
  const int64_t xn = s.cin * s.t * s.h * s.w, wn = s.cout * s.cin * s.kt * s.kh * s.kw;
  const float wr = 1.f / std::sqrt(static_cast<float>(s.cin * s.kt * s.kh * s.kw));
  // The packed buffer is sized for the larger packing (sm90 pads Cout to 8, halo Cin to 16).
  const int64_t pn = s.kt * s.kh * s.kw * ((s.cin + 15) / 16 * 16) * ((s.cout + 7) / 8 * 8);
  if (cudaMalloc(&b.x, xn * 2) != cudaSuccess || cudaMalloc(&b.w, wn * 2) != cudaSuccess ||
      cudaMalloc(&b.bias, s.cout * 2) != cudaSuccess ||
      cudaMalloc(&b.y, ConvYElems(s) * 2) != cudaSuccess ||
      cudaMalloc(&b.packed, pn * 2) != cudaSuccess) {
    return false;
  }
  return FillRandom(b.x, xn, 1.f, 11) && FillRandom(b.w, wn, wr, 12) &&
         FillRandom(b.bias, s.cout, 0.5f, 13);
}

// Conv3dArgs for `path` ("direct", "gemm", "halo", "sm90") writing `y`.
Conv3dArgs ConvArgsFor(const ConvShape& s, const ConvBuffers& b, void* y, const std::string& path) {
  Conv3dArgs a;
  a.x = {b.x, ElemType::kBF16};
  a.w = {b.w, ElemType::kBF16};
  a.bias = {b.bias, ElemType::kBF16};
  a.y = {y, ElemType::kBF16};
  a.w_packed = b.packed;
  a.cin = s.cin;
  a.t = s.t;
  a.h = s.h;
  a.w_in = s.w;
  a.cout = s.cout;
  a.kt = s.kt;
  a.kh = s.kh;
  a.kw = s.kw;
  a.to = ConvOut(s, 0);
  a.ho = ConvOut(s, 1);
  a.wo = ConvOut(s, 2);
  a.pad_lo[0] = s.pad_t;
  a.pad_lo[1] = s.pad_h;
  a.pad_lo[2] = s.pad_w;
  ParseConv3dPath(path.c_str(), &a.path);  // Main checked the name
  return a;
}

// Packs the weights for `path` when it takes the shape; false (with a note) when it does not.
bool ConvPrepare(const std::string& path, const Conv3dArgs& a, const char* shape_name) {
  if (Conv3dChoosePath(a) != a.path) {
    std::printf("  %-14s %-7s skipped: the path does not take these shapes here\n", shape_name,
                path.c_str());
    return false;
  }
  cudaError_t e = LaunchConv3dPackWeights(a, const_cast<void*>(a.w_packed), nullptr);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    std::printf("  %-14s %-7s pack error: %s\n", shape_name, path.c_str(), cudaGetErrorString(e));
    return false;
  }
  return true;
}

double ConvTimeMs(const Conv3dArgs& a, int iters, const char* shape_name, const std::string& path) {
  char label[32];
  std::snprintf(label, sizeof(label), "%-14s %-7s", shape_name, path.c_str());
  return TimeLaunches([&] { return LaunchConv3d(a, nullptr); }, iters, label);
}

// Relative L2 / max abs / non-finite of `got` against `ref`; prints one verdict line.
void ConvVerdict(const char* shape_name, const std::string& path, const std::string& ref_name,
                 const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0, max_abs = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) {
      ++bad;
      continue;
    }
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
    max_abs = std::max(max_abs, std::fabs(d));
  }
  const double rel = std::sqrt(num / std::max(den, 1e-30));
  // Both sides round bf16 inputs and outputs alike and sum in fp32: 1e-2 is several times the
  // bf16 output rounding (2^-9 relative) and far below any indexing mistake (~1).
  std::printf("check %-14s %-7s vs %-7s: rel_l2 %.3e max_abs %.3e non-finite %lld  %s\n",
              shape_name, path.c_str(), ref_name.c_str(), rel, max_abs, static_cast<long long>(bad),
              (bad == 0 && rel < 1e-2) ? "ok" : "FAIL");
  std::fflush(stdout);
}

// Runs `path` into a NaN-filled output and returns it on the host (empty on error or skip).
std::vector<float> ConvRunOnce(const ConvShape& s, const ConvBuffers& b, const std::string& path) {
  const int64_t n = ConvYElems(s);
  void* out = nullptr;
  if (cudaMalloc(&out, n * 2) != cudaSuccess) return {};
  cudaMemset(out, 0xff, n * 2);  // NaN pattern: unwritten outputs show up
  const Conv3dArgs a = ConvArgsFor(s, b, out, path);
  std::vector<float> res;
  if (ConvPrepare(path, a, s.name)) {
    const cudaError_t e1 = LaunchConv3d(a, nullptr);
    const cudaError_t e = e1 != cudaSuccess ? e1 : cudaDeviceSynchronize();
    if (e == cudaSuccess) {
      res = Download(out, n);
    } else {
      std::printf("check %-14s %-7s: error %s\n", s.name, path.c_str(), cudaGetErrorString(e));
    }
  }
  cudaFree(out);
  return res;
}

// Small ragged shapes: every path against the direct (fp32) kernel.
void ConvCheck(const std::vector<std::string>& paths) {
  const ConvShape shapes[] = {
      {"r96_w40_c3", 3, 96, 4, 9, 40, 3, 3, 3, 2, 1, 1},
      {"r192_w72", 40, 192, 3, 7, 72, 3, 3, 3, 2, 1, 1},
      {"r384_w136", 72, 384, 2, 6, 136, 3, 3, 3, 2, 1, 1},
      {"r96_cache", 96, 96, 5, 12, 64, 3, 3, 3, 0, 1, 1},
      {"r40_k111", 48, 40, 2, 5, 24, 1, 1, 1, 0, 0, 0},
      {"r1152_k111", 384, 1152, 1, 6, 104, 1, 1, 1, 0, 0, 0},
      {"r200_k133", 48, 200, 1, 20, 32, 1, 3, 3, 0, 1, 1},
      {"r768_k311", 64, 768, 4, 6, 16, 3, 1, 1, 2, 0, 0},
      {"r8_h1", 16, 8, 2, 1, 8, 3, 3, 3, 2, 1, 1},
      // More tiles than SMs: the persistent sm90 CTAs loop over several.
      {"r384_tiles160", 16, 384, 4, 40, 128, 3, 3, 3, 2, 1, 1},
      {"r96_k111_tiles160", 32, 96, 2, 160, 256, 1, 1, 1, 0, 0, 0},
  };
  for (const ConvShape& s : shapes) {
    ConvBuffers b;
    if (!ConvAlloc(b, s)) {
      std::printf("check %s: allocation failed\n", s.name);
      continue;
    }
    const std::vector<float> ref = ConvRunOnce(s, b, "direct");
    if (ref.empty()) continue;
    for (const std::string& p : paths) {
      if (p == "direct") continue;
      const std::vector<float> got = ConvRunOnce(s, b, p);
      if (!got.empty()) ConvVerdict(s.name, p, "direct", got, ref);
    }
  }
}

// The Wan2.1 VAE decoder's main convs at 480p, 3x3x3 "same" over 2 cache frames plus the frames
// of one decoder call (1 latent frame at 60x104, 2 after the first time upsampling, 4 after the
// second), and the attention qkv 1x1x1.
void ConvTime(const std::vector<std::string>& paths, int iters, bool check,
              const std::string& only) {
  const ConvShape shapes[] = {
      {"384@60x104", 384, 384, 3, 60, 104, 3, 3, 3, 0, 1, 1},
      {"384@120x208", 384, 384, 4, 120, 208, 3, 3, 3, 0, 1, 1},
      {"192>384@120x208", 192, 384, 4, 120, 208, 3, 3, 3, 0, 1, 1},
      {"192@240x416", 192, 192, 6, 240, 416, 3, 3, 3, 0, 1, 1},
      {"96@480x832", 96, 96, 6, 480, 832, 3, 3, 3, 0, 1, 1},
      {"up 192>96@480x832", 192, 96, 1, 480, 832, 1, 3, 3, 0, 1, 1},
      {"qkv384@60x104", 384, 1152, 1, 60, 104, 1, 1, 1, 0, 0, 0},
  };
  std::printf("%-16s %-7s %10s %10s\n", "shape", "path", "ms", "TFLOP/s");
  for (const ConvShape& s : shapes) {
    if (!only.empty() && std::string(s.name).find(only) == std::string::npos) continue;
    ConvBuffers b;
    if (!ConvAlloc(b, s)) {
      std::printf("%s: allocation failed\n", s.name);
      continue;
    }
    std::vector<float> halo;
    if (check) halo = ConvRunOnce(s, b, "halo");
    for (const std::string& p : paths) {
      const Conv3dArgs a = ConvArgsFor(s, b, b.y, p);
      if (!ConvPrepare(p, a, s.name)) continue;
      const double ms = ConvTimeMs(a, p == "direct" ? 1 : iters, s.name, p);
      if (ms < 0) continue;
      std::printf("%-16s %-7s %10.3f %10.1f\n", s.name, p.c_str(), ms, ConvFlops(s) / ms * 1e-9);
      std::fflush(stdout);
      if (check && !halo.empty() && p != "halo") {
        ConvVerdict(s.name, p, "halo", Download(b.y, ConvYElems(s)), halo);
      }
    }
  }
}

int Main(int argc, char** argv) {
  std::string op = "attention", path = "all", shape;
  int iters = 10;
  bool check = false, time = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--op" && i + 1 < argc) {
      op = argv[++i];
    } else if (a == "--shape" && i + 1 < argc) {
      shape = argv[++i];
    } else if (a == "--path" && i + 1 < argc) {
      path = argv[++i];
    } else if (a == "--iters" && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--check") {
      check = true;
    } else if (a == "--no-time") {
      time = false;
    } else {
      std::fprintf(
          stderr,
          "usage: %s [--op attention|conv3d] [--path P] [--iters N] [--check] [--no-time]\n"
          "          [--shape S] (conv3d: time only the shapes whose name contains S)\n"
          "  attention P: all|flash|flash4|sm90|sm90-<v>|simple (v: s2|s2pp|s3pp|s2ppp; "
          "TV_FA_SM90=<v> turns sm90 into sm90-<v>)\n"
          "  conv3d P: all|direct|gemm|halo|sm90\n",
          argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  std::vector<std::string> paths;
  if (op == "conv3d") {
    Conv3dPath known = Conv3dPath::kAuto;
    if (path != "all" && !ParseConv3dPath(path.c_str(), &known)) {
      std::fprintf(stderr, "unknown conv3d --path %s (all|direct|gemm|halo|sm90)\n", path.c_str());
      return 2;
    }
    if (path == "all") {
      paths = {"halo"};  // gemm and direct are 10-50x slower at these sizes: --path names them
      if (Conv3dSm90Available()) paths.push_back("sm90");
    } else {
      paths.push_back(path);
    }
    if (check) ConvCheck(paths);
    if (time) ConvTime(paths, iters, check, shape);
    return 0;
  }
  if (op != "attention") {
    std::fprintf(stderr, "unknown --op %s\n", op.c_str());
    return 2;
  }
  // The sm90 variant the engine would take from TV_FA_SM90, read once here.
  std::string sm90 = "sm90";
  if (const char* v = std::getenv("TV_FA_SM90"); v != nullptr && *v != '\0') {
    FaSm90Variant variant;
    if (!ParseFaSm90Variant(v, &variant)) {
      std::fprintf(stderr, "TV_FA_SM90=%s is not a variant (s2|s2pp|s3pp|s2ppp)\n", v);
      return 2;
    }
    sm90 += std::string("-") + v;
  }
  if (path == "sm90") path = sm90;
  if (path == "all") {
    if (prop.major == 9) paths.push_back(sm90);
    paths.push_back("flash");
    paths.push_back("flash4");
  } else {
    paths.push_back(path);
  }
  if (check) Check(paths);
  if (time) Time(paths, iters);
  return 0;
}

}  // namespace
}  // namespace turbovid::kernels

int main(int argc, char** argv) { return turbovid::kernels::Main(argc, argv); }
