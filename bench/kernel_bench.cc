// turbovid-kernel-bench: times the attention kernels (cudaEvents) on random bf16 data at the DiT
// shapes and checks the fast paths against the general kernel. Never asserts (bench/ rule).
//   turbovid-kernel-bench [--path all|flash|flash4|sm90|simple] [--iters N] [--check] [--no-time]
// TFLOP/s counts 4 * Lq * Lk * D * heads (QK^T and PV, multiply-add = 2).
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
#include "kernels/flash_attention.h"

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
  if (path == "sm90") return LaunchFlashAttentionSm90(a, nullptr);
  return cudaErrorInvalidValue;
}

// Mean time of `iters` launches after one warm-up, or a negative value on error.
double TimeMs(const std::string& path, const AttentionArgs& a, int iters) {
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  cudaError_t e = Run(path, a);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaEventRecord(t0);
  for (int i = 0; i < iters && e == cudaSuccess; ++i) e = Run(path, a);
  if (e == cudaSuccess) e = cudaEventRecord(t1);
  if (e == cudaSuccess) e = cudaEventSynchronize(t1);
  float ms = 0.f;
  if (e == cudaSuccess) cudaEventElapsedTime(&ms, t0, t1);
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  if (e != cudaSuccess) {
    std::printf("  %-8s error: %s\n", path.c_str(), cudaGetErrorString(e));
    return -1.0;
  }
  return ms / iters;
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
      if (p == "simple" || (p == "sm90" && s.d != 128)) continue;
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

int Main(int argc, char** argv) {
  std::string path = "all";
  int iters = 10;
  bool check = false, time = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--path" && i + 1 < argc) {
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
          "usage: %s [--path all|flash|flash4|sm90|simple] [--iters N] [--check] [--no-time]\n",
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
  if (path == "all") {
    if (prop.major == 9) paths.push_back("sm90");
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
