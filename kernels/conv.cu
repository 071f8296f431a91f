// Conv3d (direct, gathered implicit GEMM, halo implicit GEMM; the sm_90a path is conv_sm90.cu and
// is dispatched from here), VAE channel RMS norm, nearest x2.
// GEMM view: M = Cout, N = output positions (to, ho, wo), K = Cin·kt·kh·kw; bf16 mma.sync m16n8k16
// with fp32 accumulators; x [Cin, T, H, W], w [Cout, Cin, kt, kh, kw], y [Cout, To, Ho, Wo].
// ~770 lines: the three conv paths share the PTX helpers, the fragment layouts and the epilogue
// conventions, and are easier to check side by side than split over files.
#include <cuda_bf16.h>

#include <climits>

#include "kernels/conv.h"
#include "kernels/device_util.cuh"
#include "kernels/ptx.cuh"

namespace turbovid::kernels {
namespace {

using detail::ColsMinus1;
using detail::ColsPlus1;
using detail::GridFor;
using detail::Load;
using detail::Store;

using ptx::CpAsync16;
using ptx::CpAsyncCommit;
using ptx::CpAsyncWaitAll;
using ptx::LdMatrixX4;
using ptx::LdMatrixX4Trans;
using ptx::MmaBf16;
using ptx::PackBf16;
using ptx::SmemAddr;

__device__ __forceinline__ void St16(__nv_bfloat16* p, uint4 v) {
  *reinterpret_cast<uint4*>(p) = v;
}

// Extents as ints (LaunchConv3d checks that they fit); element offsets are formed in int64.
struct ConvDims {
  int cin, t, h, w;
  int cout, kt, kh, kw;
  int to, ho, wo;
  int st_t, st_h, st_w;
  int pad_t, pad_h, pad_w;
  int ccn;          // ceil(cin / 16): 16-channel groups of K
  int64_t hw, thw;  // input frame and channel sizes
  int64_t n_total;  // to·ho·wo
};

// The fused input transform (Conv3dArgs norm_gamma / inv_rms / silu) and residual of one launch.
struct Fusion {
  ConstBuf gamma;              // [cin] (norm)
  const float* inv = nullptr;  // [t, h, w] F32 (norm)
  bool norm = false, silu = false;
  ConstBuf residual;  // [cout, to, ho, wo] or data == nullptr
  __device__ __forceinline__ bool any() const { return norm || silu; }
  // v (channel ci, input position offset pos = ti·hw + hi·w + wi) as the conv reads it.
  __device__ __forceinline__ float Apply(float v, int ci, int64_t pos) const {
    if (norm) v = v * inv[pos] * Load(gamma, ci);
    return silu ? v / (1.f + __expf(-v)) : v;
  }
  __device__ __forceinline__ float Res(int64_t i) const {
    return residual.data != nullptr ? Load(residual, i) : 0.f;
  }
};

// Eight bf16 columns of channel ci (inv8: their eight statistics) through the transform.
__device__ __forceinline__ uint4 Apply8(uint4 v, const float* inv8, float g, bool norm, bool silu) {
  uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const __nv_bfloat162 b = *reinterpret_cast<const __nv_bfloat162*>(&w[j]);
    float2 f = __bfloat1622float2(b);
    if (norm) {
      f.x *= inv8[2 * j] * g;
      f.y *= inv8[2 * j + 1] * g;
    }
    if (silu) {
      f.x = f.x / (1.f + __expf(-f.x));
      f.y = f.y / (1.f + __expf(-f.y));
    }
    const __nv_bfloat162 r = __floats2bfloat162_rn(f.x, f.y);
    w[j] = *reinterpret_cast<const uint32_t*>(&r);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// Per-lane row/column offsets of the ldmatrix.x4 addresses (fragment order of mma m16n8k16).
// A [m][16 k] tiles: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (8-15,
// 8-15).
__device__ __forceinline__ int ARowLane(int lane) { return (lane & 7) + ((lane >> 3) & 1) * 8; }
__device__ __forceinline__ int AHalfLane(int lane) { return lane >> 4; }
// B [k][n] tiles (.trans): matrices (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (8-15, 8-15)
// → b0/b1 of n8 tile 0, then b0/b1 of n8 tile 1.
__device__ __forceinline__ int BKLane(int lane) { return ((lane >> 3) & 1) * 8 + (lane & 7); }
__device__ __forceinline__ int BColLane(int lane) { return (lane >> 4) * 8; }
// A tiles keep rows of 16 k (32 bytes); XOR-ing the 16-byte half with bit 2 of the row puts the
// eight rows of one ldmatrix matrix on eight distinct bank groups.
__device__ __forceinline__ int ASwizzle(int row, int half) {
  return row * 16 + ((half ^ ((row >> 2) & 1)) << 3);
}

// ---- Path 1: direct convolution (one thread per output, fp32) ----------------------------------

__global__ void ConvDirectKernel(ConstBuf x, ConstBuf w, ConstBuf bias, MutBuf y, ConvDims d,
                                 Fusion f) {
  const int64_t total = static_cast<int64_t>(d.cout) * d.n_total;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const int64_t co = i / d.n_total, n = i % d.n_total;
    const int wo = static_cast<int>(n % d.wo);
    const int ho = static_cast<int>((n / d.wo) % d.ho);
    const int to = static_cast<int>(n / (static_cast<int64_t>(d.wo) * d.ho));
    float acc = bias.data ? Load(bias, co) : 0.f;
    for (int ci = 0; ci < d.cin; ++ci) {
      for (int dt = 0; dt < d.kt; ++dt) {
        const int ti = to * d.st_t + dt - d.pad_t;
        if (ti < 0 || ti >= d.t) continue;
        for (int dh = 0; dh < d.kh; ++dh) {
          const int hi = ho * d.st_h + dh - d.pad_h;
          if (hi < 0 || hi >= d.h) continue;
          for (int dw = 0; dw < d.kw; ++dw) {
            const int wi = wo * d.st_w + dw - d.pad_w;
            if (wi < 0 || wi >= d.w) continue;
            const int64_t widx = (((co * d.cin + ci) * d.kt + dt) * d.kh + dh) * d.kw + dw;
            const int64_t pos = ti * d.hw + static_cast<int64_t>(hi) * d.w + wi;
            const float xv = Load(x, ci * d.thw + pos);
            acc += Load(w, widx) * (f.any() ? f.Apply(xv, ci, pos) : xv);
          }
        }
      }
    }
    Store(y, i, acc + f.Res(i));
  }
}

// ---- Path 2: gathered implicit GEMM -------------------------------------------------------------
// CTA tile 64 (Cout) x 64 (positions) x 16 (K), 4 warps of 32x32. K runs tap-major over 16-channel
// groups, so one K tile is one tap: each thread gathers 8 channels of one position (B) and 8
// channels of one weight row (A) into registers, converting F32 to bf16, while the tensor cores
// work on the previous tile.

constexpr int kGemmThreads = 128;
constexpr int kGemmBm = 64;
constexpr int kGemmBn = 64;
constexpr int kGemmPitchB = kGemmBn + 8;  // 144-byte k rows: 8 ldmatrix rows on 8 bank groups

__global__ void __launch_bounds__(kGemmThreads)
    ConvGemmKernel(ConstBuf x, ConstBuf w, ConstBuf bias, MutBuf y, ConvDims d, Fusion f) {
  __shared__ __align__(16) __nv_bfloat16 smem_a[2][kGemmBm * 16];
  __shared__ __align__(16) __nv_bfloat16 smem_b[2][16 * kGemmPitchB];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp & 1, wn = warp >> 1;
  const int m0 = blockIdx.y * kGemmBm;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kGemmBn;
  const int khw = d.kh * d.kw, taps = d.kt * khw;
  const int k_tiles = taps * d.ccn;

  const int am = tid >> 1, ak = (tid & 1) * 8;   // A role: weight row am, channels ak..ak+7
  const int bn = tid & 63, bk = (tid >> 6) * 8;  // B role: position bn, channels bk..bk+7
  const int64_t n_glob = n0 + bn;
  const bool n_ok = n_glob < d.n_total;
  int ti0 = 0, hi0 = 0, wi0 = 0;
  if (n_ok) {
    const int wo = static_cast<int>(n_glob % d.wo);
    const int64_t r = n_glob / d.wo;
    const int ho = static_cast<int>(r % d.ho), to = static_cast<int>(r / d.ho);
    ti0 = to * d.st_t - d.pad_t;
    hi0 = ho * d.st_h - d.pad_h;
    wi0 = wo * d.st_w - d.pad_w;
  }

  uint4 ra;
  uint16_t rb[8];
  auto load = [&](int kt_idx) {
    const int tap = kt_idx / d.ccn, cc = kt_idx - tap * d.ccn;
    const int dt = tap / khw, rem = tap - dt * khw, dh = rem / d.kw, dw = rem - dh * d.kw;
    const int m = m0 + am;
    float va[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int ci = cc * 16 + ak + j;
      va[j] = (m < d.cout && ci < d.cin)
                  ? Load(w, (static_cast<int64_t>(m) * d.cin + ci) * taps + tap)
                  : 0.f;
    }
    ra = make_uint4(PackBf16(va[0], va[1]), PackBf16(va[2], va[3]), PackBf16(va[4], va[5]),
                    PackBf16(va[6], va[7]));
    const int ti = ti0 + dt, hi = hi0 + dh, wi = wi0 + dw;
    const bool in = n_ok && ti >= 0 && ti < d.t && hi >= 0 && hi < d.h && wi >= 0 && wi < d.w;
    const int64_t off = in ? ti * d.hw + static_cast<int64_t>(hi) * d.w + wi : 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int ci = cc * 16 + bk + j;
      float v = (in && ci < d.cin) ? Load(x, ci * d.thw + off) : 0.f;
      if (f.any() && in && ci < d.cin) v = f.Apply(v, ci, off);
      rb[j] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
    }
  };
  auto store = [&](int buf) {
    St16(&smem_a[buf][ASwizzle(am, ak >> 3)], ra);
#pragma unroll
    for (int j = 0; j < 8; ++j)
      smem_b[buf][(bk + j) * kGemmPitchB + bn] = __ushort_as_bfloat16(rb[j]);
  };

  float acc[2][4][4] = {};
  const int a_row = ARowLane(lane), a_half = AHalfLane(lane);
  const int b_k = BKLane(lane), b_col = BColLane(lane);
  auto compute = [&](int buf) {
    uint32_t a[2][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
      const int row = wm * 32 + mt * 16 + a_row;
      LdMatrixX4(a[mt], SmemAddr(&smem_a[buf][ASwizzle(row, a_half)]));
    }
#pragma unroll
    for (int np = 0; np < 2; ++np) {
      uint32_t b[4];
      LdMatrixX4Trans(b, SmemAddr(&smem_b[buf][b_k * kGemmPitchB + wn * 32 + np * 16 + b_col]));
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        MmaBf16(acc[mt][2 * np], a[mt], b[0], b[1]);
        MmaBf16(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
      }
    }
  };

  if (k_tiles > 0) {
    load(0);
    store(0);
    __syncthreads();  // tile 0 visible to every warp
    for (int kt = 0; kt < k_tiles; ++kt) {
      const int buf = kt & 1;
      const bool more = kt + 1 < k_tiles;
      if (more) load(kt + 1);  // global loads in flight during the MMAs below
      compute(buf);
      if (more) store(buf ^ 1);  // buf ^ 1 was last read before the previous barrier
      __syncthreads();           // tile kt + 1 complete; tile kt no longer read
    }
  }

  const int g = lane >> 2, t4 = lane & 3;
  // The residual (possibly y itself) is read into the accumulators before any store, so that
  // its loads are issued together rather than each behind the previous store.
  if (f.residual.data != nullptr) {
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int m = m0 + wm * 32 + mt * 16 + g + half * 8;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const int64_t n = n0 + wn * 32 + nt * 8 + t4 * 2;
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            if (m < d.cout && n + e < d.n_total) {
              acc[mt][nt][half * 2 + e] += Load(f.residual, m * d.n_total + n + e);
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int m = m0 + wm * 32 + mt * 16 + g + half * 8;
      if (m >= d.cout) continue;
      const float bv = bias.data ? Load(bias, m) : 0.f;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int64_t n = n0 + wn * 32 + nt * 8 + t4 * 2;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (n + e < d.n_total) Store(y, m * d.n_total + n + e, acc[mt][nt][half * 2 + e] + bv);
        }
      }
    }
  }
}

// ---- Path 3: halo implicit GEMM -----------------------------------------------------------------
// CTA tile: BM output channels x (TR rows x 16 columns) of one output frame (HaloTile below);
// 8 warps, each owning whole output rows. A pipeline stage is one (dt, 16-channel group): the input
// halo of the tile, (TR + kh − 1) rows x 16 columns per channel, is loaded once and serves all
// kh·kw taps. For kw = 3 it is stored as three copies shifted by −1, 0, +1 column, so each tap's
// B operand is a plain 16-byte-aligned [16 k][TR·16 n] block (rows at dh·16) for ldmatrix.trans.
// Global halo loads are aligned 16-byte vectors (W % 8 == 0); the shifts are funnel shifts in
// registers. Weights arrive pre-packed [kt][Cin/16][kh·kw][Cout][16] and stream in by cp.async.
// Two stages in shared memory; the next stage's loads are issued before the current MMAs.

constexpr int kHaloThreads = 256;
constexpr int kHaloTc = 16;  // output columns per tile (Wan widths: 104·2^k, 160·2^k)
constexpr int kHaloMaxTaps = 9;

// Channel pitch of a halo copy in elements: ≡ 8·odd (mod 64), so the eight k rows an
// ldmatrix.trans matrix reads sit 16·odd bytes apart modulo 128 → eight distinct bank groups.
constexpr int HaloPitch(int plane) {
  int p = (plane + 7) / 8 * 8;
  while (((p % 64) / 8) % 2 == 0) p += 8;
  return p;
}

// TR output rows per tile; the 8 warps form WM (along Cout) x 8/WM (along positions), each warp
// holding MT m16 tiles. <16, 2, 3>: 96 x 256 tiles (every Wan VAE width 96/192/384/768 is a
// multiple of 96); <8, 2, 3>: 96 x 128 for ~100 KiB shared memory (RTX 5090); <16, 1, 1>: 16 x 256
// for Cout ≤ 16 (the decoder head, Cout 3), where a 96-row tile would be 97% padding.
template <int TR, int WM, int MT>
struct HaloTile {
  static constexpr int kTr = TR;
  static constexpr int kWarpsM = WM;
  static constexpr int kMt = MT;
  static constexpr int kBm = WM * MT * 16;
  static constexpr int kRowsPerWarp = TR * WM / 8;  // output rows per warp
  static constexpr int kNt = 2 * kRowsPerWarp;      // n8 tiles per warp
  static constexpr int kPitch = HaloPitch((TR + 2) * kHaloTc);
  static constexpr int kCopyElems = 16 * kPitch;  // one shifted copy: [16 k][pitch]
  static constexpr int kAElems = kHaloMaxTaps * kBm * 16;
  static constexpr int kBElems = 3 * kCopyElems;
  static constexpr int kStageElems = kAElems + kBElems;
  static constexpr int kSmemBytes = 2 * kStageElems * 2;
  static constexpr int kUnitIters = (16 * (TR + 2) + kHaloThreads - 1) / kHaloThreads;
  static_assert(8 % WM == 0 && (TR * WM) % 8 == 0, "each warp takes whole output rows");
  static_assert(kAElems % 8 == 0 && kCopyElems % 8 == 0, "16-byte aligned shared regions");
};
using HaloBig = HaloTile<16, 2, 3>;
using HaloMid = HaloTile<8, 2, 3>;
using HaloSmallM = HaloTile<16, 1, 1>;

struct HaloParams {
  const __nv_bfloat16* x;   // [cin, t, h, w], 16-byte aligned, w % 8 == 0
  const __nv_bfloat16* wp;  // packed [kt][ccn][kh·kw][cout][16]
  ConstBuf bias;            // [cout] or null
  MutBuf y;                 // [cout, to, ho, wo]
  ConvDims d;
  int m_tiles, tiles_h, tiles_w;
  bool y_pairs;  // y is bf16, 4-byte aligned and wo is even: store column pairs as one word
  Fusion f;      // input transform (applied as the halo is stored to shared memory), residual
};

template <typename Tile>
__global__ void __launch_bounds__(kHaloThreads, 1) ConvHaloKernel(HaloParams p) {
  constexpr int TR = Tile::kTr, kHaloMt = Tile::kMt, kHaloBm = Tile::kBm;
  extern __shared__ __align__(16) unsigned char halo_smem[];
  __nv_bfloat16* smem = reinterpret_cast<__nv_bfloat16*>(halo_smem);
  const ConvDims& d = p.d;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % Tile::kWarpsM, wn = warp / Tile::kWarpsM;

  // Output channels vary fastest over blockIdx.x so CTAs resident together share the input halo.
  int64_t tile = blockIdx.x;
  const int m_tile = static_cast<int>(tile % p.m_tiles);
  tile /= p.m_tiles;
  const int tw = static_cast<int>(tile % p.tiles_w);
  tile /= p.tiles_w;
  const int th = static_cast<int>(tile % p.tiles_h);
  const int to = static_cast<int>(tile / p.tiles_h);
  const int m0 = m_tile * kHaloBm, ho0 = th * TR, wo0 = tw * kHaloTc;
  const int taps = d.kh * d.kw;
  const int units = 16 * (TR + d.kh - 1);  // (channel, halo row) pairs per stage
  // Temporal taps that land in padding contribute nothing: skip them (causal front padding).
  const int ti_base = to * d.st_t - d.pad_t;
  const int dt_lo = max(0, -ti_base), dt_hi = min(d.kt, d.t - ti_base);
  const int stages = dt_hi > dt_lo ? (dt_hi - dt_lo) * d.ccn : 0;

  float acc[kHaloMt][Tile::kNt][4];
#pragma unroll
  for (int mt = 0; mt < kHaloMt; ++mt) {
#pragma unroll
    for (int nt = 0; nt < Tile::kNt; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0.f;
    }
  }

  auto load_a = [&](int s, int buf) {
    const int dt = dt_lo + s / d.ccn, cc = s % d.ccn;
    const __nv_bfloat16* src = p.wp + static_cast<int64_t>(dt * d.ccn + cc) * taps * d.cout * 16;
    __nv_bfloat16* dst = smem + buf * Tile::kStageElems;
    const int chunks = taps * kHaloBm * 2;
    for (int c = tid; c < chunks; c += kHaloThreads) {
      const int half = c & 1, row = (c >> 1) % kHaloBm, tap = (c >> 1) / kHaloBm;
      const int m = m0 + row;
      const bool ok = m < d.cout;
      const __nv_bfloat16* g =
          ok ? src + (static_cast<int64_t>(tap) * d.cout + m) * 16 + half * 8 : p.wp;
      CpAsync16(SmemAddr(dst + tap * kHaloBm * 16 + ASwizzle(row, half)), g, ok);
    }
    CpAsyncCommit();
  };

  // Aligned vectors at columns wo0 − 8, wo0, wo0 + 8, wo0 + 16 of one (channel, halo row).
  uint4 stage_v[Tile::kUnitIters][4];
  auto load_b = [&](int s) {
    const int dt = dt_lo + s / d.ccn, cc = s % d.ccn;
    const int ti = ti_base + dt;
#pragma unroll
    for (int i = 0; i < Tile::kUnitIters; ++i) {
      const int u = tid + i * kHaloThreads;
      const int ci = cc * 16 + (u & 15), hi = ho0 - d.pad_h + (u >> 4);
#pragma unroll
      for (int v = 0; v < 4; ++v) stage_v[i][v] = make_uint4(0u, 0u, 0u, 0u);
      if (u < units && ci < d.cin && hi >= 0 && hi < d.h) {
        const __nv_bfloat16* row =
            p.x + (static_cast<int64_t>(ci) * d.t + ti) * d.hw + static_cast<int64_t>(hi) * d.w;
#pragma unroll
        for (int v = 0; v < 4; ++v) {
          const int col = wo0 + (v - 1) * 8;
          const bool need = d.kw == 3 || v == 1 || v == 2;
          if (need && col >= 0 && col < d.w) {
            stage_v[i][v] = __ldg(reinterpret_cast<const uint4*>(row + col));
          }
        }
      }
    }
  };
  // The fused input transform of stage s's loaded vectors (columns past the row or outside the
  // input stay zero: they were never loaded).
  auto transform_b = [&](int s) {
    const int dt = dt_lo + s / d.ccn, cc = s % d.ccn;
    const int ti = ti_base + dt;
#pragma unroll
    for (int i = 0; i < Tile::kUnitIters; ++i) {
      const int u = tid + i * kHaloThreads;
      const int ci = cc * 16 + (u & 15), hi = ho0 - d.pad_h + (u >> 4);
      if (u >= units || ci >= d.cin || hi < 0 || hi >= d.h) continue;
      const float g = p.f.norm ? Load(p.f.gamma, ci) : 1.f;
      const float* inv_row =
          p.f.inv + static_cast<int64_t>(ti) * d.hw + static_cast<int64_t>(hi) * d.w;
#pragma unroll
      for (int v = 0; v < 4; ++v) {
        const int col = wo0 + (v - 1) * 8;
        if (col < 0 || col >= d.w || !(d.kw == 3 || v == 1 || v == 2)) continue;
        float inv8[8] = {};
        if (p.f.norm) {
#pragma unroll
          for (int j = 0; j < 8; ++j) inv8[j] = __ldg(inv_row + col + j);
        }
        stage_v[i][v] = Apply8(stage_v[i][v], inv8, g, p.f.norm, p.f.silu);
      }
    }
  };
  auto store_b = [&](int buf) {
    __nv_bfloat16* bs = smem + buf * Tile::kStageElems + Tile::kAElems;
#pragma unroll
    for (int i = 0; i < Tile::kUnitIters; ++i) {
      const int u = tid + i * kHaloThreads;
      if (u >= units) continue;
      __nv_bfloat16* dst = bs + (u & 15) * Tile::kPitch + (u >> 4) * kHaloTc;
      if (d.kw == 1) {
        St16(dst, stage_v[i][1]);
        St16(dst + 8, stage_v[i][2]);
      } else {
        St16(dst, ColsMinus1(stage_v[i][0], stage_v[i][1]));  // dw = 0 reads column wo − 1
        St16(dst + 8, ColsMinus1(stage_v[i][1], stage_v[i][2]));
        St16(dst + Tile::kCopyElems, stage_v[i][1]);
        St16(dst + Tile::kCopyElems + 8, stage_v[i][2]);
        St16(dst + 2 * Tile::kCopyElems, ColsPlus1(stage_v[i][1], stage_v[i][2]));
        St16(dst + 2 * Tile::kCopyElems + 8, ColsPlus1(stage_v[i][2], stage_v[i][3]));
      }
    }
  };

  const int a_row = ARowLane(lane), a_half = AHalfLane(lane);
  const int b_k = BKLane(lane), b_col = BColLane(lane);
  auto mma_tap = [&](const __nv_bfloat16* as, const __nv_bfloat16* bs, int tap, int dh, int dw) {
    uint32_t a[kHaloMt][4];
#pragma unroll
    for (int mt = 0; mt < kHaloMt; ++mt) {
      const int row = wm * (kHaloMt * 16) + mt * 16 + a_row;
      LdMatrixX4(a[mt], SmemAddr(as + tap * kHaloBm * 16 + ASwizzle(row, a_half)));
    }
#pragma unroll
    for (int np = 0; np < Tile::kRowsPerWarp; ++np) {
      const int r = wn * Tile::kRowsPerWarp + np;
      uint32_t b[4];
      LdMatrixX4Trans(b, SmemAddr(bs + dw * Tile::kCopyElems + b_k * Tile::kPitch +
                                  (r + dh) * kHaloTc + b_col));
#pragma unroll
      for (int mt = 0; mt < kHaloMt; ++mt) {
        MmaBf16(acc[mt][2 * np], a[mt], b[0], b[1]);
        MmaBf16(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
      }
    }
  };
  auto compute = [&](int buf) {
    const __nv_bfloat16* as = smem + buf * Tile::kStageElems;
    const __nv_bfloat16* bs = as + Tile::kAElems;
    if (d.kh == 3 && d.kw == 3) {
#pragma unroll
      for (int tap = 0; tap < 9; ++tap) mma_tap(as, bs, tap, tap / 3, tap % 3);
    } else if (taps == 1) {
      mma_tap(as, bs, 0, 0, 0);
    } else {
#pragma unroll 1
      for (int tap = 0; tap < taps; ++tap) mma_tap(as, bs, tap, tap / d.kw, tap % d.kw);
    }
  };

  if (stages > 0) {
    load_a(0, 0);
    load_b(0);
    if (p.f.any()) transform_b(0);
    store_b(0);
    CpAsyncWaitAll();
    __syncthreads();  // stage 0 visible to every warp
    for (int s = 0; s < stages; ++s) {
      const int buf = s & 1;
      const bool more = s + 1 < stages;
      if (more) {
        load_a(s + 1, buf ^ 1);  // buf ^ 1 was last read before the previous barrier
        load_b(s + 1);
      }
      compute(buf);
      if (more && p.f.any()) transform_b(s + 1);  // after the MMAs: the loads had their time
      if (more) store_b(buf ^ 1);
      CpAsyncWaitAll();
      __syncthreads();  // stage s + 1 complete; stage s no longer read
    }
  }

  const int g = lane >> 2, t4 = lane & 3;
  // The residual (possibly y itself) is read into the accumulators before any store (its loads
  // issued together, not each behind the previous store).
  if (p.f.residual.data != nullptr) {
#pragma unroll
    for (int mt = 0; mt < kHaloMt; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int m = m0 + wm * kHaloMt * 16 + mt * 16 + g + half * 8;
        const int64_t plane = (static_cast<int64_t>(m) * d.to + to) * d.ho;
#pragma unroll
        for (int nt = 0; nt < Tile::kNt; ++nt) {
          const int ho = ho0 + wn * Tile::kRowsPerWarp + nt / 2;
          const int wo = wo0 + (nt & 1) * 8 + t4 * 2;
          if (m >= d.cout || ho >= d.ho || wo >= d.wo) continue;
          const int64_t idx = (plane + ho) * d.wo + wo;
          acc[mt][nt][half * 2] += Load(p.f.residual, idx);
          if (wo + 1 < d.wo) acc[mt][nt][half * 2 + 1] += Load(p.f.residual, idx + 1);
        }
      }
    }
  }
#pragma unroll
  for (int mt = 0; mt < kHaloMt; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int m = m0 + wm * kHaloMt * 16 + mt * 16 + g + half * 8;
      if (m >= d.cout) continue;
      const float bv = p.bias.data ? Load(p.bias, m) : 0.f;
      const int64_t plane = (static_cast<int64_t>(m) * d.to + to) * d.ho;
#pragma unroll
      for (int nt = 0; nt < Tile::kNt; ++nt) {
        const int ho = ho0 + wn * Tile::kRowsPerWarp + nt / 2;
        const int wo = wo0 + (nt & 1) * 8 + t4 * 2;
        if (ho >= d.ho || wo >= d.wo) continue;
        const int64_t idx = (plane + ho) * d.wo + wo;
        const float v0 = acc[mt][nt][half * 2] + bv, v1 = acc[mt][nt][half * 2 + 1] + bv;
        if (p.y_pairs) {
          *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(p.y.data) + idx) =
              __floats2bfloat162_rn(v0, v1);
        } else {
          Store(p.y, idx, v0);
          if (wo + 1 < d.wo) Store(p.y, idx + 1, v1);
        }
      }
    }
  }
}

// packed[dt][cc][tap][co][k] = w[co][cc·16 + k][dt][tap] (zero past cin).
__global__ void ConvPackKernel(ConstBuf w, __nv_bfloat16* packed, ConvDims d, int64_t total) {
  const int khw = d.kh * d.kw;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const int k = static_cast<int>(i & 15);
    int64_t r = i >> 4;
    const int64_t co = r % d.cout;
    r /= d.cout;
    const int tap = static_cast<int>(r % khw);
    r /= khw;
    const int cc = static_cast<int>(r % d.ccn);
    const int dt = static_cast<int>(r / d.ccn);
    const int ci = cc * 16 + k;
    const float v = ci < d.cin ? Load(w, ((co * d.cin + ci) * d.kt + dt) * khw + tap) : 0.f;
    packed[i] = __float2bfloat16_rn(v);
  }
}

// ---- Channel RMS norm and upsampling -----------------------------------------------------------

constexpr int kNormWarps = 8;

// Block = 64 positions x 8 warps; warp w sums channels w, w + 8, ... (each load instruction reads
// 32 consecutive positions), the partial sums meet in shared memory.
__global__ void __launch_bounds__(kNormWarps * 32)
    ChannelRmsNormKernel(ChannelRmsNormArgs a, float scale) {
  __shared__ float partial[kNormWarps][64];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * 64 + lane, p1 = p0 + 32;
  const bool ok0 = p0 < a.positions, ok1 = p1 < a.positions;
  float s0 = 0.f, s1 = 0.f;
#pragma unroll 4
  for (int64_t c = warp; c < a.channels; c += kNormWarps) {
    const int64_t base = c * a.positions;
    if (ok0) {
      const float v = Load(a.x, base + p0);
      s0 += v * v;
    }
    if (ok1) {
      const float v = Load(a.x, base + p1);
      s1 += v * v;
    }
  }
  partial[warp][lane] = s0;
  partial[warp][lane + 32] = s1;
  __syncthreads();  // every warp's partial sums (and every read of x) are done before y is written
  float t0 = 0.f, t1 = 0.f;
#pragma unroll
  for (int i = 0; i < kNormWarps; ++i) {
    t0 += partial[i][lane];
    t1 += partial[i][lane + 32];
  }
  // F.normalize: divide by max(‖x‖₂, 1e-12).
  const float inv0 = scale / fmaxf(sqrtf(t0), 1e-12f), inv1 = scale / fmaxf(sqrtf(t1), 1e-12f);
#pragma unroll 4
  for (int64_t c = warp; c < a.channels; c += kNormWarps) {
    const int64_t base = c * a.positions;
    const float gc = Load(a.gamma, c);
    if (ok0) {
      const float v = Load(a.x, base + p0) * inv0 * gc;
      Store(a.y, base + p0, a.silu ? v / (1.f + expf(-v)) : v);
    }
    if (ok1) {
      const float v = Load(a.x, base + p1) * inv1 * gc;
      Store(a.y, base + p1, a.silu ? v / (1.f + expf(-v)) : v);
    }
  }
}

// ChannelRmsNormKernel's reduction alone: inv_rms[p] = scale / max(‖x[:, p]‖₂, 1e-12).
__global__ void __launch_bounds__(kNormWarps * 32)
    ChannelRmsStatsKernel(ChannelRmsStatsArgs a, float scale) {
  __shared__ float partial[kNormWarps][64];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * 64 + lane, p1 = p0 + 32;
  const bool ok0 = p0 < a.positions, ok1 = p1 < a.positions;
  float s0 = 0.f, s1 = 0.f;
#pragma unroll 4
  for (int64_t c = warp; c < a.channels; c += kNormWarps) {
    const int64_t base = c * a.positions;
    if (ok0) {
      const float v = Load(a.x, base + p0);
      s0 += v * v;
    }
    if (ok1) {
      const float v = Load(a.x, base + p1);
      s1 += v * v;
    }
  }
  partial[warp][lane] = s0;
  partial[warp][lane + 32] = s1;
  __syncthreads();
  if (warp != 0) return;
  float t0 = 0.f, t1 = 0.f;
#pragma unroll
  for (int i = 0; i < kNormWarps; ++i) {
    t0 += partial[i][lane];
    t1 += partial[i][lane + 32];
  }
  if (ok0) a.inv_rms[p0] = scale / fmaxf(sqrtf(t0), 1e-12f);
  if (ok1) a.inv_rms[p1] = scale / fmaxf(sqrtf(t1), 1e-12f);
}

// One thread per input element writes its 2x2 output block (bf16 pairs as one word when aligned).
__global__ void Upsample2xKernel(Upsample2xArgs a, bool pairs) {
  const int64_t total = a.planes * a.h * a.w;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const int64_t j = i % a.w, r = i / a.w;      // r = plane·h + row
    const int64_t o0 = 2 * r * 2 * a.w + 2 * j;  // output row plane·2h + 2·row = 2r
    const int64_t o1 = o0 + 2 * a.w;
    const float v = Load(a.x, i);
    if (pairs) {
      const __nv_bfloat162 vv = __floats2bfloat162_rn(v, v);
      __nv_bfloat16* y = static_cast<__nv_bfloat16*>(a.y.data);
      *reinterpret_cast<__nv_bfloat162*>(y + o0) = vv;
      *reinterpret_cast<__nv_bfloat162*>(y + o1) = vv;
    } else {
      Store(a.y, o0, v);
      Store(a.y, o0 + 1, v);
      Store(a.y, o1, v);
      Store(a.y, o1 + 1, v);
    }
  }
}

// ---- Host side ----------------------------------------------------------------------------------

bool FitsInt(int64_t v) { return v >= 0 && v <= INT_MAX; }

bool Aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

bool DimsOk(const Conv3dArgs& a) {
  if (a.t_prev < 0 || (a.t_prev > 0 && a.x_prev.data == nullptr)) return false;
  const int64_t ext[] = {a.cin, a.t_prev + a.t, a.h,  a.w_in, a.cout, a.kt,
                         a.kh,  a.kw,           a.to, a.ho,   a.wo};
  for (int64_t e : ext) {
    if (!FitsInt(e)) return false;
  }
  for (int i = 0; i < 3; ++i) {
    if (a.stride[i] < 1 || a.pad_lo[i] < 0) return false;
  }
  if (a.kt < 1 || a.kh < 1 || a.kw < 1) return false;
  // Output coordinates times stride plus kernel extent stay in int.
  return FitsInt(a.to * a.stride[0] + a.kt) && FitsInt(a.ho * a.stride[1] + a.kh) &&
         FitsInt(a.wo * a.stride[2] + a.kw) && FitsInt(a.t + a.pad_lo[0]) &&
         FitsInt(a.h + a.pad_lo[1]) && FitsInt(a.w_in + a.pad_lo[2]);
}

ConvDims MakeDims(const Conv3dArgs& a) {
  ConvDims d;
  d.cin = static_cast<int>(a.cin);
  d.t = static_cast<int>(a.t);
  d.h = static_cast<int>(a.h);
  d.w = static_cast<int>(a.w_in);
  d.cout = static_cast<int>(a.cout);
  d.kt = static_cast<int>(a.kt);
  d.kh = static_cast<int>(a.kh);
  d.kw = static_cast<int>(a.kw);
  d.to = static_cast<int>(a.to);
  d.ho = static_cast<int>(a.ho);
  d.wo = static_cast<int>(a.wo);
  d.st_t = a.stride[0];
  d.st_h = a.stride[1];
  d.st_w = a.stride[2];
  d.pad_t = a.pad_lo[0];
  d.pad_h = a.pad_lo[1];
  d.pad_w = a.pad_lo[2];
  d.ccn = static_cast<int>((a.cin + 15) / 16);
  d.hw = a.h * a.w_in;
  d.thw = a.t * d.hw;
  d.n_total = a.to * a.ho * a.wo;
  return d;
}

Fusion MakeFusion(const Conv3dArgs& a) {
  Fusion f;
  f.norm = a.norm_gamma.data != nullptr && a.inv_rms != nullptr;
  f.gamma = a.norm_gamma;
  f.inv = a.inv_rms;
  f.silu = a.silu;
  f.residual = a.residual;
  return f;
}

int MaxSharedPerBlock() {
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    return 0;
  }
  return v;
}

enum class HaloVariant { kNone, kBig, kMid, kSmallM };

// The halo tile for these shapes: 96 x 256 where shared memory allows (H100: 110 KiB of 227),
// 96 x 128 on parts with ~100 KiB per block (RTX 5090), 16 x 256 for Cout ≤ 16; kNone when the
// halo path does not apply.
HaloVariant ChooseHalo(const Conv3dArgs& a) {
  const bool shapes = a.x.type == ElemType::kBF16 && Aligned(a.x.data, 16) && a.stride[1] == 1 &&
                      a.stride[2] == 1 && a.w_in % 8 == 0 && a.kh <= 3 &&
                      ((a.kw == 1 && a.pad_lo[2] == 0) || (a.kw == 3 && a.pad_lo[2] == 1));
  if (!shapes || !DimsOk(a)) return HaloVariant::kNone;
  const int smem = MaxSharedPerBlock();
  if (a.cout <= HaloSmallM::kBm && smem >= HaloSmallM::kSmemBytes) return HaloVariant::kSmallM;
  if (smem >= HaloBig::kSmemBytes) return HaloVariant::kBig;
  if (smem >= HaloMid::kSmemBytes) return HaloVariant::kMid;
  return HaloVariant::kNone;
}

template <typename Tile>
cudaError_t LaunchHalo(const Conv3dArgs& a, const ConvDims& d, cudaStream_t stream) {
  HaloParams p;
  p.x = static_cast<const __nv_bfloat16*>(a.x.data);
  p.wp = static_cast<const __nv_bfloat16*>(a.w_packed);
  p.bias = a.bias;
  p.y = a.y;
  p.d = d;
  p.m_tiles = (d.cout + Tile::kBm - 1) / Tile::kBm;
  p.tiles_h = (d.ho + Tile::kTr - 1) / Tile::kTr;
  p.tiles_w = (d.wo + kHaloTc - 1) / kHaloTc;
  p.y_pairs = a.y.type == ElemType::kBF16 && Aligned(a.y.data, 4) && d.wo % 2 == 0;
  p.f = MakeFusion(a);
  const int64_t blocks = static_cast<int64_t>(p.m_tiles) * d.to * p.tiles_h * p.tiles_w;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  cudaError_t e = cudaFuncSetAttribute(
      ConvHaloKernel<Tile>, cudaFuncAttributeMaxDynamicSharedMemorySize, Tile::kSmemBytes);
  if (e != cudaSuccess) return e;
  ConvHaloKernel<Tile>
      <<<static_cast<unsigned>(blocks), kHaloThreads, Tile::kSmemBytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

Conv3dPath Conv3dChoosePath(const Conv3dArgs& args) {
  const Conv3dPath portable =
      ChooseHalo(args) != HaloVariant::kNone ? Conv3dPath::kHalo : Conv3dPath::kGemm;
  const bool sm90 = DimsOk(args) && Conv3dSm90Accepts(args);
  // History frames (x_prev) are read by the sm90 kernel only; without it the caller concatenates
  // and asks again, so a t_prev > 0 query answers kSm90 or the portable path that the
  // concatenated input would take.
  if (args.t_prev > 0 && !sm90) return portable;
  switch (args.path) {
    case Conv3dPath::kDirect:
      return Conv3dPath::kDirect;
    case Conv3dPath::kGemm:
      return Conv3dPath::kGemm;
    case Conv3dPath::kHalo:
      return portable;
    case Conv3dPath::kSm90:
      return sm90 ? Conv3dPath::kSm90 : portable;
    case Conv3dPath::kAuto:
      // The sm90 tiles are 96 or 192 channels wide: narrow heads (the decoder's Cout 3) go to
      // the halo path's 16-channel tile, unless they read a history tensor, which the halo path
      // would need concatenated first (a full-resolution copy per frame; the sm90 kernel at
      // 3/96 of its tile was faster than that copy plus the halo kernel on the H100).
      return sm90 && (args.cout >= 32 || args.t_prev > 0) ? Conv3dPath::kSm90 : portable;
  }
  return Conv3dPath::kGemm;
}

int64_t Conv3dPackedElems(const Conv3dArgs& args) {
  switch (Conv3dChoosePath(args)) {
    case Conv3dPath::kHalo:
      return args.kt * ((args.cin + 15) / 16) * args.kh * args.kw * args.cout * 16;
    case Conv3dPath::kSm90:
      return Conv3dSm90PackedElems(args);
    case Conv3dPath::kAuto:
    case Conv3dPath::kDirect:
    case Conv3dPath::kGemm:
      break;
  }
  return 0;
}

cudaError_t LaunchConv3dPackWeights(const Conv3dArgs& args, void* packed, cudaStream_t stream) {
  if (!DimsOk(args) || args.w.data == nullptr || packed == nullptr) return cudaErrorInvalidValue;
  const int64_t total = Conv3dPackedElems(args);
  if (total == 0) return cudaSuccess;
  if (Conv3dChoosePath(args) == Conv3dPath::kSm90) {
    return LaunchConv3dSm90PackWeights(args, packed, stream);
  }
  ConvPackKernel<<<GridFor(total, 256), 256, 0, stream>>>(
      args.w, static_cast<__nv_bfloat16*>(packed), MakeDims(args), total);
  return cudaGetLastError();
}

cudaError_t LaunchConv3d(const Conv3dArgs& args, cudaStream_t stream) {
  if (!DimsOk(args)) return cudaErrorInvalidValue;
  const ConvDims d = MakeDims(args);
  if (d.cout == 0 || d.n_total == 0) return cudaSuccess;
  if (args.x.data == nullptr || args.w.data == nullptr || args.y.data == nullptr) {
    return cudaErrorInvalidValue;
  }
  const Conv3dPath path = Conv3dChoosePath(args);
  if (args.t_prev > 0 && path != Conv3dPath::kSm90) return cudaErrorInvalidValue;
  switch (path) {
    case Conv3dPath::kDirect: {
      const int64_t total = static_cast<int64_t>(d.cout) * d.n_total;
      ConvDirectKernel<<<GridFor(total, 256), 256, 0, stream>>>(args.x, args.w, args.bias, args.y,
                                                                d, MakeFusion(args));
      return cudaGetLastError();
    }
    case Conv3dPath::kAuto:
    case Conv3dPath::kGemm: {
      const int64_t nb = (d.n_total + kGemmBn - 1) / kGemmBn;
      const int64_t mb = (d.cout + kGemmBm - 1) / kGemmBm;
      if (nb > INT_MAX || mb > 65535) return cudaErrorInvalidConfiguration;
      const dim3 grid(static_cast<unsigned>(nb), static_cast<unsigned>(mb));
      ConvGemmKernel<<<grid, kGemmThreads, 0, stream>>>(args.x, args.w, args.bias, args.y, d,
                                                        MakeFusion(args));
      return cudaGetLastError();
    }
    case Conv3dPath::kHalo: {
      if (args.w_packed == nullptr || !Aligned(args.w_packed, 16)) return cudaErrorInvalidValue;
      switch (ChooseHalo(args)) {
        case HaloVariant::kBig:
          return LaunchHalo<HaloBig>(args, d, stream);
        case HaloVariant::kMid:
          return LaunchHalo<HaloMid>(args, d, stream);
        case HaloVariant::kSmallM:
          return LaunchHalo<HaloSmallM>(args, d, stream);
        case HaloVariant::kNone:
          break;
      }
      return cudaErrorInvalidValue;
    }
    case Conv3dPath::kSm90:
      return LaunchConv3dSm90(args, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchChannelRmsNorm(const ChannelRmsNormArgs& args, cudaStream_t stream) {
  if (args.channels < 0 || args.positions < 0) return cudaErrorInvalidValue;
  if (args.channels == 0 || args.positions == 0) return cudaSuccess;
  const int64_t blocks = (args.positions + 63) / 64;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  const float scale = sqrtf(static_cast<float>(args.channels));
  ChannelRmsNormKernel<<<static_cast<unsigned>(blocks), kNormWarps * 32, 0, stream>>>(args, scale);
  return cudaGetLastError();
}

cudaError_t LaunchChannelRmsStats(const ChannelRmsStatsArgs& args, cudaStream_t stream) {
  if (args.channels < 0 || args.positions < 0 || (args.positions > 0 && args.inv_rms == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (args.positions == 0) return cudaSuccess;
  const int64_t blocks = (args.positions + 63) / 64;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  const float scale = sqrtf(static_cast<float>(args.channels));
  ChannelRmsStatsKernel<<<static_cast<unsigned>(blocks), kNormWarps * 32, 0, stream>>>(args, scale);
  return cudaGetLastError();
}

cudaError_t LaunchUpsample2x(const Upsample2xArgs& args, cudaStream_t stream) {
  if (args.planes < 0 || args.h < 0 || args.w < 0) return cudaErrorInvalidValue;
  const int64_t total = args.planes * args.h * args.w;
  if (total == 0) return cudaSuccess;
  const bool pairs = args.y.type == ElemType::kBF16 && Aligned(args.y.data, 4);
  Upsample2xKernel<<<GridFor(total, 256), 256, 0, stream>>>(args, pairs);
  return cudaGetLastError();
}

}  // namespace turbovid::kernels
