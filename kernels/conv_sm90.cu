// Hopper (sm_90a) conv3d: implicit GEMM with TMA loads and wgmma, fp32 accumulators in registers.
// y[co, to, ho, wo] = bias[co] + Σ w[co, ci, dt, dh, dw] · x[ci, to·st + dt − pt, ho + dh − ph,
// wo + dw − pw]; x [Cin, T, H, W] bf16, y [Cout, To, Ho, Wo] bf16 or f32.
// GEMM view per CTA tile: M = output positions (kRows rows x 64 columns of one output frame), N =
// output channels (NT), K = input channels x taps. A pipeline stage is one (dt, 16-channel chunk)
// and serves all kh·kw taps: one TMA box brings x[c0 : c0+16, ti, rows, w0 : w0+64] for the
// kRows + kh − 1 input rows ([row][16 channels][64 columns], 128-byte rows and swizzle: an M-major
// A operand, wgmma transpose-A), one per 64-channel atom the packed weights of the kh·kw taps
// ([tap][16 channels][64 output channels]: N-major B, transpose-B).
// TMA needs the innermost (w) coordinate 16-byte aligned: a box starting at column w0 ± 1 (the
// kw = 3 taps) is an illegal instruction. So the box starts at w0 and serves the centre tap; the
// producer warpgroup's three idle warps build the −1 / +1 column-shifted copies in shared memory
// from it and two 8-column edge boxes (w0 − 8, w0 + 64), then fence them into the async proxy.
// Out-of-range rows, frames, channels and columns are zero-filled by TMA (spatial and causal
// padding). One producer warpgroup, two consumer warpgroups of MB m64 blocks each; stages ring
// through mbarriers; persistent CTAs (one per SM) loop over output tiles. H100: 500-590 TFLOP/s
// on the Wan VAE decoder's 3x3x3 convs (turbovid-kernel-bench --op conv3d). Built for sm_90a only
// (kernels/CMakeLists.txt); elsewhere the launchers report cudaErrorNotSupported. ~700 lines:
// the PTX helpers, the warp-specialised kernel and the tensor maps that feed it are one unit.
#include <cuda.h>  // CUtensorMap and its enums (types only: no libcuda link)
#include <cuda_bf16.h>

#include <climits>
#include <cstdint>
#include <cstdio>

#include "kernels/conv.h"
#include "kernels/device_util.cuh"
#include "kernels/ptx.cuh"
#include "kernels/sm90_util.cuh"
#include "kernels/tma.h"

namespace turbovid::kernels {
#if defined(TV_HAVE_SM90A)
namespace {

using detail::ColsMinus1;
using detail::ColsPlus1;
using detail::GridFor;
using detail::Load;
using detail::Store;

constexpr int kKc = 16;                 // input channels per stage (one wgmma k16 step)
constexpr int kCols = 64;               // output columns per m64 block (one 128-byte row)
constexpr int kBlockBytes = kKc * 128;  // one [16][64] bf16 block: 2 KB, 1024-aligned
constexpr int kEdgeBytes = kKc * 16;    // one [16][8] edge block (no swizzle)
constexpr int kThreads = 384;           // producer warpgroup + 2 consumer warpgroups
constexpr int kConsumerWarps = 8;       // arrivals that free a stage
constexpr int kBuilderWarps = 3;        // producer warps 1-3 build the shifted copies
constexpr int kSmemLimit = 227 * 1024;  // H100 opt-in shared memory per block

// MB m64 blocks (output rows) per consumer warpgroup, NT output channels, KH = KW = K (1 or 3).
template <int MB, int NT, int K>
struct Sm90Tile {
  static constexpr int kMb = MB;
  static constexpr int kNt = NT;
  static constexpr int kK = K;
  static constexpr int kTaps = K * K;
  static constexpr int kRows = 2 * MB;           // output rows per CTA
  static constexpr int kRowsIn = kRows + K - 1;  // input rows per stage
  static constexpr int kNa = (NT + 63) / 64;     // 64-channel weight atoms
  // Stage layout (bytes from a 1024-aligned stage base): K column copies of kRowsIn blocks (copy
  // dw reads column w + dw − pad_w; copy pad_w is the TMA box), the weight atoms ([taps][16][64]
  // each), then (K = 3) the left and right edge blocks.
  static constexpr int kABytes = K * kRowsIn * kBlockBytes;
  static constexpr int kBBytes = kNa * kTaps * kBlockBytes;
  static constexpr int kEBytes = K == 3 ? 2 * kRowsIn * kEdgeBytes : 0;
  static constexpr int kStageBytes = (kABytes + kBBytes + kEBytes + 1023) / 1024 * 1024;
  // As many stages as fit (at most 6): the 3x3 tile gets 3, the 1x1 ones 6.
  static constexpr int kStagesFit = (kSmemLimit - 2048) / kStageBytes;
  static constexpr int kStages = kStagesFit < 6 ? kStagesFit : 6;
  static constexpr int kBarOff = kStages * kStageBytes;
  static constexpr int kSmemBytes = kBarOff + 4 * 8 * kStages + 1024;  // + slack to align the base
  static_assert(kStages >= 2, "two stages must fit in shared memory");
  static_assert(MB * (NT / 2) <= 192, "accumulators fit the consumers' 224 registers");
};
// 3x3: 96 channels x (4 rows x 64 columns) for every Cout: its 75 KB stages give 3 stages, and on
// the H100 the 3-deep pipeline beat a 2-deep one with 192-channel (or 8-row) tiles by 25-50%
// (the next stage's TMA and shifted copies must land within one stage's wgmmas). 1x1: the same
// tile for Cout ≤ 96, 192 channels wider (6 stages fit either way).
template <int K>
using TileN96 = Sm90Tile<2, 96, K>;
using TileN192K1 = Sm90Tile<2, 192, 1>;

struct Sm90Params {
  ConstBuf bias;
  MutBuf y;
  int t, t_prev, prev_first, kt, cout;  // t: frames seen (t_prev from the history, a ring, then x)
  int to, ho, wo, w_in;
  int st_t, pad_t, pad_h, pad_w;
  int ccn;  // ceil(cin / 16)
  int tiles_w, tiles_h, n_tiles;
  int cin, h;  // input channels and rows (the fused transform's bounds)
  // Fused input transform (kh = kw = 3 only: the builder warps apply it): norm (gamma, inv of x
  // [t_x, h, w_in], inv_prev of the history [t_prev, h, w_in]) then silu; residual in the epilogue.
  ConstBuf gamma;
  const float* inv;
  const float* inv_prev;
  bool norm, silu;
  ConstBuf residual;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

using ptx::SmemAddr;

// mbarriers, matrix descriptors, wgmma fence / commit / wait.
using namespace ::turbovid::kernels::sm90;  // kernels/sm90_util.cuh

// --- shared memory (the shifted copies) -------------------------------------------------------
__device__ __forceinline__ uint4 Lds16(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}
__device__ __forceinline__ void Sts16(uint32_t addr, uint4 v) {
  asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(v.x), "r"(v.y),
               "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ void PrefetchL1(const void* p) {
  asm volatile("prefetch.global.L1 [%0];\n" ::"l"(p));
}

// Eight bf16 columns through the fused transform: v · inv[j] · g (norm, inv16 16-byte aligned),
// then SiLU; rounded back to bf16 as the unfused norm's output would be.
__device__ __forceinline__ uint4 Transform8(uint4 v, const float* inv8, float g, bool norm,
                                            bool silu) {
  float4 i0 = make_float4(1.f, 1.f, 1.f, 1.f), i1 = i0;
  if (norm) {
    i0 = __ldg(reinterpret_cast<const float4*>(inv8));
    i1 = __ldg(reinterpret_cast<const float4*>(inv8) + 1);
  }
  const float sc[8] = {i0.x, i0.y, i0.z, i0.w, i1.x, i1.y, i1.z, i1.w};
  uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[j]));
    f.x *= sc[2 * j] * g;
    f.y *= sc[2 * j + 1] * g;
    if (silu) {
      f.x = f.x / (1.f + __expf(-f.x));
      f.y = f.y / (1.f + __expf(-f.y));
    }
    const __nv_bfloat162 r = __floats2bfloat162_rn(f.x, f.y);
    w[j] = *reinterpret_cast<const uint32_t*>(&r);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <class Tile>
__global__ void __launch_bounds__(kThreads, 1)
    ConvSm90Kernel(const __grid_constant__ CUtensorMap xmap,
                   const __grid_constant__ CUtensorMap emap,
                   const __grid_constant__ CUtensorMap pmap,
                   const __grid_constant__ CUtensorMap pemap,
                   const __grid_constant__ CUtensorMap wmap, Sm90Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int S = Tile::kStages, MB = Tile::kMb, NT = Tile::kNt, K = Tile::kK;
  constexpr int R = Tile::kRowsIn;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (SmemAddr(smem_raw) + 1023u) & ~1023u;
  // Per stage: full_a (x boxes landed), full_b (weights landed), empty (consumers done), ready
  // (shifted copies built). The builders wait for full_a only, so building overlaps the weights'
  // transfer.
  auto full_a = [&](int s) { return base + Tile::kBarOff + 8u * s; };
  auto full_b = [&](int s) { return base + Tile::kBarOff + 8u * (S + s); };
  auto empty = [&](int s) { return base + Tile::kBarOff + 8u * (2 * S + s); };
  auto ready = [&](int s) { return base + Tile::kBarOff + 8u * (3 * S + s); };
  auto stage = [&](int s) { return base + static_cast<uint32_t>(s * Tile::kStageBytes); };
  // Column copy dw, input row block r of a stage; weight atom `at`, tap; edge block side, r.
  auto a_blk = [&](uint32_t sb, int dw, int r) {
    return sb + static_cast<uint32_t>((dw * R + r) * kBlockBytes);
  };
  auto b_blk = [&](uint32_t sb, int at, int tap) {
    return sb + static_cast<uint32_t>(Tile::kABytes + (at * Tile::kTaps + tap) * kBlockBytes);
  };
  auto e_blk = [&](uint32_t sb, int side, int r) {
    return sb + static_cast<uint32_t>(Tile::kABytes + Tile::kBBytes + (side * R + r) * kEdgeBytes);
  };

  // Persistent CTAs: CTA b takes tiles b, b + gridDim.x, ... (output channels fastest, so CTAs
  // running together share input rows in L2); the producer loads the next tile's first stages
  // while the consumers store the current one. Tile: output channels n0.. (NT), output rows h0..
  // (kRows), columns w0.. (64) of frame to; temporal taps whose input frame does not exist are
  // skipped (dt_lo..dt_hi). Every role walks the same (tile, stage) sequence; `g` counts stages
  // over all of this CTA's tiles and picks the ring slot and phase.
  struct TileCoords {
    int n0, w0, h0, to, tbase, dt_lo, n_stages;
    bool left, right;  // edge columns exist (else no box is loaded and the copies take zeros)
  };
  auto coords = [&](int tile) {
    TileCoords c;
    const int nt = tile % p.n_tiles;
    tile /= p.n_tiles;
    const int tw = tile % p.tiles_w;
    tile /= p.tiles_w;
    c.n0 = nt * NT;
    c.w0 = tw * kCols;
    c.h0 = (tile % p.tiles_h) * Tile::kRows;
    c.to = tile / p.tiles_h;
    c.tbase = c.to * p.st_t - p.pad_t;
    c.dt_lo = c.tbase < 0 ? -c.tbase : 0;
    const int dt_hi = p.t - c.tbase < p.kt ? p.t - c.tbase : p.kt;
    c.n_stages = dt_hi > c.dt_lo ? (dt_hi - c.dt_lo) * p.ccn : 0;
    // No negative or wholly out-of-range innermost coordinate is ever issued.
    c.left = K == 3 && c.w0 > 0;
    c.right = K == 3 && c.w0 + kCols < p.w_in;
    return c;
  };
  const int n_tiles_total = p.n_tiles * p.tiles_w * p.tiles_h * p.to;

  const int tid = threadIdx.x, lane = tid & 31;
  const int wg = tid >> 7;  // 0 producer, 1..2 consumers
  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      BarInit(full_a(s), 1);
      BarInit(full_b(s), 1);
      BarInit(empty(s), kConsumerWarps);
      BarInit(ready(s), kBuilderWarps);
    }
    // Make the initialised barriers visible to the async proxy (the TMA unit) as well.
    FenceBarrierInit();
  }
  __syncthreads();

  if (wg == 0) {
    // 56 registers leave the builders' loop unspilled; 128·56 + 256·224 ≤ 64K registers.
    RegDealloc<56>();
    const int warp = tid >> 5;
    if (tid == 0) {
      int g = 0;
      for (int tile = blockIdx.x; tile < n_tiles_total; tile += gridDim.x) {
        const TileCoords c = coords(tile);
        // TMA counts whole boxes, zero-filled parts included.
        const uint32_t tx_a =
            R * kBlockBytes + ((c.left ? 1 : 0) + (c.right ? 1 : 0)) * R * kEdgeBytes;
        constexpr uint32_t tx_b = Tile::kNa * Tile::kTaps * kBlockBytes;
        const int hi = c.h0 - p.pad_h;
        for (int i = 0; i < c.n_stages; ++i, ++g) {
          const int s = g % S;
          const int dt = c.dt_lo + i / p.ccn, c0 = (i % p.ccn) * kKc, ti = c.tbase + dt;
          BarWait(empty(s), ((g / S) & 1) ^ 1);
          const uint32_t sb = stage(s);
          BarExpectTx(full_a(s), tx_a);
          // Frames before t_prev come from the history tensor, the rest from x.
          const bool hist = ti < p.t_prev;
          const CUtensorMap* am = hist ? &pmap : &xmap;
          const CUtensorMap* em = hist ? &pemap : &emap;
          const int tl = hist ? (ti + p.prev_first) % p.t_prev : ti - p.t_prev;
          TmaLoad4d(a_blk(sb, K == 3 ? 1 : 0, 0), am, full_a(s), c.w0, c0, hi, tl);
          if (c.left) TmaLoad4d(e_blk(sb, 0, 0), em, full_a(s), c.w0 - 8, c0, hi, tl);
          if (c.right) TmaLoad4d(e_blk(sb, 1, 0), em, full_a(s), c.w0 + kCols, c0, hi, tl);
          BarExpectTx(full_b(s), tx_b);
          for (int at = 0; at < Tile::kNa; ++at) {
            TmaLoad3d(b_blk(sb, at, 0), &wmap, full_b(s), c.n0 + 64 * at, c0, dt * Tile::kTaps);
          }
        }
      }
    } else if (K == 3 && warp >= 1) {
      // Builders: copy 0 (column w − 1) and copy 2 (w + 1) of every (row, channel) 128-byte row
      // from copy 1 and the edges. Chunk q of channel row c sits at 16·(q ^ (c & 7)) (128-byte
      // swizzle over the 1024-aligned block). With the fused input transform they first pass
      // every loaded chunk through it (rows, channels and columns outside x hold TMA's zeros and
      // are left as they are) and write the centre copy back transformed.
      const int bt = tid - 32;
      const bool fuse = p.norm || p.silu;
      int g = 0;
      for (int tile = blockIdx.x; tile < n_tiles_total; tile += gridDim.x) {
        const TileCoords c = coords(tile);
        for (int i = 0; i < c.n_stages; ++i, ++g) {
          const int s = g % S;
          const float* inv_frame = nullptr;
          int c0 = 0;
          if (fuse) {
            const int dt = c.dt_lo + i / p.ccn, ti = c.tbase + dt;
            c0 = (i % p.ccn) * kKc;
            const bool hist = ti < p.t_prev;
            const int tl = hist ? (ti + p.prev_first) % p.t_prev : ti - p.t_prev;
            if (p.norm) {
              inv_frame = (hist ? p.inv_prev : p.inv) + static_cast<int64_t>(tl) * p.h * p.w_in;
              // While the TMA lands: pull each row's statistics (columns w0 − 8 .. w0 + 72, four
              // 128-byte lines) into L1, lanes of channels 0-3 one line each, so that the
              // transform's loads below hit it. Only addresses inside the row are touched.
#pragma unroll 1
              for (int u = bt; u < R * kKc; u += 32 * kBuilderWarps) {
                const int hi = c.h0 - p.pad_h + u / kKc, col = c.w0 - 8 + 32 * (u % kKc);
                if (u % kKc < 4 && hi >= 0 && hi < p.h && col >= 0 && col < p.w_in) {
                  PrefetchL1(inv_frame + hi * p.w_in + col);  // < INT_MAX (Conv3dSm90Accepts)
                }
              }
            }
          }
          BarWait(full_a(s), (g / S) & 1);
          const uint32_t sb = stage(s);
          for (int u = bt; u < R * kKc; u += 32 * kBuilderWarps) {
            const int r = u / kKc, ch = u % kKc, sw = ch & 7;
            const uint32_t src = a_blk(sb, 1, r) + ch * 128;
            const uint32_t dm = a_blk(sb, 0, r) + ch * 128, dp = a_blk(sb, 2, r) + ch * 128;
            const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
            if (fuse) {
              // In place, one 8-column chunk at a time (the builders have 56 registers): the
              // centre row's chunks inside x, then the edge chunks.
              const int hi = c.h0 - p.pad_h + r, ci = c0 + ch;
              if (hi >= 0 && hi < p.h && ci < p.cin) {
                const float gc = p.norm ? Load(p.gamma, ci) : 1.f;
                const float* inv_row =
                    p.norm ? inv_frame + static_cast<int64_t>(hi) * p.w_in : nullptr;
#pragma unroll 1
                for (int q = 0; q < 10; ++q) {
                  // q < 8: centre chunk q (column w0 + 8q); 8: left edge (w0 − 8); 9: right edge.
                  const int col = q < 8 ? c.w0 + 8 * q : q == 8 ? c.w0 - 8 : c.w0 + kCols;
                  const bool have = q < 8 ? col < p.w_in : q == 8 ? c.left : c.right;
                  if (!have) continue;
                  const uint32_t at = q < 8 ? src + ((q ^ sw) << 4) : e_blk(sb, q - 8, r) + ch * 16;
                  Sts16(at,
                        Transform8(Lds16(at), inv_row + (p.norm ? col : 0), gc, p.norm, p.silu));
                }
              }
            }
            uint4 prev = c.left ? Lds16(e_blk(sb, 0, r) + ch * 16) : zero;
            uint4 cur = Lds16(src + (sw << 4));
#pragma unroll
            for (int q = 0; q < 8; ++q) {
              const uint4 next = q < 7     ? Lds16(src + (((q + 1) ^ sw) << 4))
                                 : c.right ? Lds16(e_blk(sb, 1, r) + ch * 16)
                                           : zero;
              Sts16(dm + ((q ^ sw) << 4), ColsMinus1(prev, cur));
              Sts16(dp + ((q ^ sw) << 4), ColsPlus1(cur, next));
              prev = cur;
              cur = next;
            }
          }
          // Generic-proxy writes become visible to wgmma (async proxy) before the stage is ready.
          FenceProxyAsync();
          __syncwarp();
          if (lane == 0) BarArrive(ready(s));
        }
      }
    }
  } else {
    RegAlloc<224>();
    const int cw = wg - 1;                   // consumer: output rows h0 + cw·MB ..
    const int warp = (tid - 128 * wg) >> 5;  // warp in the warpgroup: columns 16·warp ..
    const int g4 = lane >> 2, t4 = lane & 3;
    const int64_t plane = static_cast<int64_t>(p.to) * p.ho * p.wo;
    auto release = [&](int g) {
      __syncwarp();
      if (lane == 0) BarArrive(empty(g % S));
    };
    float acc[MB][NT / 2];
    int g = 0;
    for (int tile = blockIdx.x; tile < n_tiles_total; tile += gridDim.x) {
      const TileCoords c = coords(tile);
#pragma unroll
      for (int mb = 0; mb < MB; ++mb) {
#pragma unroll
        for (int i = 0; i < NT / 2; ++i) acc[mb][i] = 0.f;
      }
      for (int i = 0; i < c.n_stages; ++i, ++g) {
        const int s = g % S;
        BarWait(full_a(s), (g / S) & 1);
        BarWait(full_b(s), (g / S) & 1);
        if (K == 3) BarWait(ready(s), (g / S) & 1);
        const uint32_t sb = stage(s);
        // K·K taps x MB blocks, fully unrolled (a branch between wgmmas would make ptxas insert
        // warpgroup fences and register moves). Output row cw·MB + mb reads input row block
        // cw·MB + mb + dh of column copy dw.
        WgFence();
#pragma unroll
        for (int mb = 0; mb < MB; ++mb) Pin(acc[mb]);
#pragma unroll
        for (int dh = 0; dh < K; ++dh) {
#pragma unroll
          for (int dw = 0; dw < K; ++dw) {
            const uint64_t db = Desc(b_blk(sb, 0, dh * K + dw), Tile::kTaps * kBlockBytes, 1024);
#pragma unroll
            for (int mb = 0; mb < MB; ++mb) {
              // One M atom: the leading offset is never used.
              const uint64_t da = Desc(a_blk(sb, dw, cw * MB + mb + dh), kBlockBytes, 1024);
              WgmmaSS<1, 1>(acc[mb], da, db, 1);
            }
          }
        }
        WgCommit();
        WgWait<1>();  // stage g − 1's group has completed (groups complete in order)
#pragma unroll
        for (int mb = 0; mb < MB; ++mb) Pin(acc[mb]);
        if (i > 0) release(g - 1);
      }
      WgWait<0>();
#pragma unroll
      for (int mb = 0; mb < MB; ++mb) Pin(acc[mb]);
      if (c.n_stages > 0) release(g - 1);  // the producer refills it during the stores below

        // Epilogue: acc[mb][4j + e] is output column w0 + 16·warp + g4 + 8·(e >> 1) of row
        // h0 + cw·MB + mb, channel n0 + 8j + 2·t4 + (e & 1). The residual (possibly y itself) is
        // added to the accumulators before any of them is stored: a load placed after a store
        // to y could not be hoisted above it, and every load's latency would be paid in turn.
#pragma unroll
      for (int mb = 0; mb < MB; ++mb) {
        const int ho = c.h0 + cw * MB + mb;
        if (ho >= p.ho) continue;
        const int64_t row = (static_cast<int64_t>(c.to) * p.ho + ho) * p.wo;
        if (p.residual.data != nullptr) {
#pragma unroll
          for (int j = 0; j < NT / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int co = c.n0 + 8 * j + 2 * t4 + e;
#pragma unroll
              for (int hr = 0; hr < 2; ++hr) {
                const int wo = c.w0 + 16 * warp + g4 + 8 * hr;
                if (co < p.cout && wo < p.wo) {
                  acc[mb][4 * j + 2 * hr + e] += Load(p.residual, co * plane + row + wo);
                }
              }
            }
          }
        }
#pragma unroll
        for (int j = 0; j < NT / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int co = c.n0 + 8 * j + 2 * t4 + e;
            if (co >= p.cout) continue;
            const float bv = p.bias.data ? Load(p.bias, co) : 0.f;
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
              const int wo = c.w0 + 16 * warp + g4 + 8 * hr;
              if (wo < p.wo) Store(p.y, co * plane + row + wo, acc[mb][4 * j + 2 * hr + e] + bv);
            }
          }
        }
      }
    }
  }
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

// packed[dt][dh·kw + dw][ci][co] = w[co][ci][dt][dh][dw]; zero for co ≥ cout (cout_p = cout
// rounded up to 8: TMA row strides are multiples of 16 bytes).
__global__ void ConvSm90PackKernel(ConstBuf w, __nv_bfloat16* packed, int cin, int cout, int cout_p,
                                   int taps, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const int co = static_cast<int>(i % cout_p);
    const int64_t r = i / cout_p;
    const int ci = static_cast<int>(r % cin);
    const int tap = static_cast<int>(r / cin);  // dt·kh·kw + dh·kw + dw: w's own tap order
    const float v = co < cout ? Load(w, (static_cast<int64_t>(co) * cin + ci) * taps + tap) : 0.f;
    packed[i] = __float2bfloat16_rn(v);
  }
}

// Conv3dArgs::sm90_debug (TV_CONV_SM90_DEBUG=1): host-side failures of this path go to stderr.
cudaError_t Report(bool debug, cudaError_t e, const char* what) {
  if (e != cudaSuccess && debug) {
    std::fprintf(stderr, "conv3d sm90: %s: %s\n", what, cudaGetErrorString(e));
  }
  return e;
}

bool Encode(bool debug, CUtensorMap* map, const char* name, const void* ptr, int rank,
            const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box,
            tma::Swizzle swizzle) {
  const int r = tma::EncodeBf16(map, ptr, rank, dims, strides, box, swizzle);
  if (r == tma::kNoDriver && debug) {
    std::fprintf(stderr, "conv3d sm90: cuTensorMapEncodeTiled not found\n");
  } else if (r != 0 && debug) {
    std::fprintf(stderr,
                 "conv3d sm90: encoding the %s map failed (CUresult %d): rank %d dims %llu %llu "
                 "%llu %llu box %u %u %u %u\n",
                 name, r, rank, static_cast<unsigned long long>(dims[0]),
                 static_cast<unsigned long long>(dims[1]), static_cast<unsigned long long>(dims[2]),
                 static_cast<unsigned long long>(rank > 3 ? dims[3] : 0), box[0], box[1], box[2],
                 rank > 3 ? box[3] : 0u);
  }
  return r == 0;
}

int64_t CoutPadded(const Conv3dArgs& a) { return (a.cout + 7) / 8 * 8; }

// Calls f(Tile{}) with the tile for these shapes.
template <class F>
auto WithTile(const Conv3dArgs& a, F&& f) {
  if (a.kh == 3) return f(TileN96<3>());
  return a.cout <= 96 ? f(TileN96<1>()) : f(TileN192K1());
}

template <class Tile>
cudaError_t Launch(const Conv3dArgs& a, cudaStream_t stream) {
  // x [cin, t, h, w] seen as {w, c, h, t}: a box of 64 (8 for the edges) columns x 16 channels x
  // kRowsIn rows of one frame lands as [row][channel][column].
  // The history tensor (x_prev, t_prev frames) gets the same maps over its own extent.
  const int64_t tp = a.t_prev > 0 ? a.t_prev : a.t;
  const cuuint64_t xdims[4] = {static_cast<cuuint64_t>(a.w_in), static_cast<cuuint64_t>(a.cin),
                               static_cast<cuuint64_t>(a.h), static_cast<cuuint64_t>(a.t)};
  const cuuint64_t xstrides[3] = {static_cast<cuuint64_t>(a.t * a.h * a.w_in) * 2,
                                  static_cast<cuuint64_t>(a.w_in) * 2,
                                  static_cast<cuuint64_t>(a.h * a.w_in) * 2};
  const cuuint64_t pdims[4] = {xdims[0], xdims[1], xdims[2], static_cast<cuuint64_t>(tp)};
  const cuuint64_t pstrides[3] = {static_cast<cuuint64_t>(tp * a.h * a.w_in) * 2, xstrides[1],
                                  xstrides[2]};
  const void* prev = a.t_prev > 0 ? a.x_prev.data : a.x.data;
  const cuuint32_t xbox[4] = {static_cast<cuuint32_t>(kCols), static_cast<cuuint32_t>(kKc),
                              static_cast<cuuint32_t>(Tile::kRowsIn), 1u};
  const cuuint32_t ebox[4] = {8u, static_cast<cuuint32_t>(kKc),
                              static_cast<cuuint32_t>(Tile::kRowsIn), 1u};
  // Packed weights [taps][cin][cout_p] as {co, ci, tap}; one box = 64 x 16 x kh·kw taps.
  const int64_t cout_p = CoutPadded(a);
  const cuuint64_t wdims[3] = {static_cast<cuuint64_t>(cout_p), static_cast<cuuint64_t>(a.cin),
                               static_cast<cuuint64_t>(a.kt * a.kh * a.kw)};
  const cuuint64_t wstrides[2] = {static_cast<cuuint64_t>(cout_p) * 2,
                                  static_cast<cuuint64_t>(a.cin * cout_p) * 2};
  const cuuint32_t wbox[3] = {64u, static_cast<cuuint32_t>(kKc),
                              static_cast<cuuint32_t>(Tile::kTaps)};
  CUtensorMap xmap, emap, pmap, pemap, wmap;
  if (!Encode(a.sm90_debug, &xmap, "x", a.x.data, 4, xdims, xstrides, xbox,
              tma::Swizzle::kBytes128) ||
      !Encode(a.sm90_debug, &emap, "x edge", a.x.data, 4, xdims, xstrides, ebox,
              tma::Swizzle::kNone) ||
      !Encode(a.sm90_debug, &pmap, "x_prev", prev, 4, pdims, pstrides, xbox,
              tma::Swizzle::kBytes128) ||
      !Encode(a.sm90_debug, &pemap, "x_prev edge", prev, 4, pdims, pstrides, ebox,
              tma::Swizzle::kNone) ||
      !Encode(a.sm90_debug, &wmap, "w", a.w_packed, 3, wdims, wstrides, wbox,
              tma::Swizzle::kBytes128)) {
    return cudaErrorInvalidValue;
  }
  Sm90Params p;
  p.bias = a.bias;
  p.y = a.y;
  p.t = static_cast<int>(a.t_prev + a.t);
  p.t_prev = static_cast<int>(a.t_prev);
  p.prev_first = static_cast<int>(a.prev_first);
  p.kt = static_cast<int>(a.kt);
  p.cout = static_cast<int>(a.cout);
  p.to = static_cast<int>(a.to);
  p.ho = static_cast<int>(a.ho);
  p.wo = static_cast<int>(a.wo);
  p.w_in = static_cast<int>(a.w_in);
  p.st_t = a.stride[0];
  p.pad_t = a.pad_lo[0];
  p.pad_h = a.pad_lo[1];
  p.pad_w = a.pad_lo[2];
  p.ccn = static_cast<int>((a.cin + kKc - 1) / kKc);
  p.tiles_w = static_cast<int>((a.wo + kCols - 1) / kCols);
  p.tiles_h = static_cast<int>((a.ho + Tile::kRows - 1) / Tile::kRows);
  p.cin = static_cast<int>(a.cin);
  p.h = static_cast<int>(a.h);
  p.norm = a.norm_gamma.data != nullptr && a.inv_rms != nullptr;
  p.silu = a.silu;
  p.gamma = a.norm_gamma;
  p.inv = a.inv_rms;
  p.inv_prev = a.t_prev > 0 ? a.inv_rms_prev : a.inv_rms;
  p.residual = a.residual;
  p.n_tiles = static_cast<int>((a.cout + Tile::kNt - 1) / Tile::kNt);
  const int64_t tiles = static_cast<int64_t>(p.n_tiles) * p.tiles_w * p.tiles_h * a.to;
  if (tiles > INT_MAX) return Report(a.sm90_debug, cudaErrorInvalidConfiguration, "grid");
  // One CTA per SM (shared memory allows no second one), each looping over tiles.
  int dev = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e != cudaSuccess) return Report(a.sm90_debug, e, "device attributes");
  const int64_t blocks = tiles < sms ? tiles : sms;
  e = cudaFuncSetAttribute(ConvSm90Kernel<Tile>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           Tile::kSmemBytes);
  if (e != cudaSuccess) return Report(a.sm90_debug, e, "dynamic shared memory opt-in");
  if (a.sm90_debug) {
    std::fprintf(stderr,
                 "conv3d sm90: cin %lld cout %lld x [%lld %lld %lld] k%d tile %dx%d rows, %d "
                 "stages, %d B smem, %lld tiles on %lld CTAs\n",
                 static_cast<long long>(a.cin), static_cast<long long>(a.cout),
                 static_cast<long long>(a.t), static_cast<long long>(a.h),
                 static_cast<long long>(a.w_in), Tile::kK, Tile::kNt, Tile::kRows, Tile::kStages,
                 Tile::kSmemBytes, static_cast<long long>(tiles), static_cast<long long>(blocks));
  }
  ConvSm90Kernel<Tile><<<static_cast<unsigned>(blocks), kThreads, Tile::kSmemBytes, stream>>>(
      xmap, emap, pmap, pemap, wmap, p);
  return Report(a.sm90_debug, cudaGetLastError(), "launch");
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace
#endif  // TV_HAVE_SM90A

bool Conv3dSm90Built() {
#if defined(TV_HAVE_SM90A)
  return true;
#else
  return false;
#endif
}

bool Conv3dSm90Available() {
  int dev = 0, major = 0, minor = 0;
  return Conv3dSm90Built() && cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess &&
         major == 9 && minor == 0;
}

bool Conv3dSm90Accepts(const Conv3dArgs& a) {
#if !defined(TV_HAVE_SM90A)
  (void)a;
  return false;
#else
  // TMA: x BF16, 16-byte aligned base and row strides (w % 8); spatial stride 1 (a box is a run of
  // consecutive columns); the kernel instances: kh = kw = 3 with one column of padding each side
  // (the shifted copies are w − 1, w, w + 1), or 1x1 without. Any pad_h, temporal kernel, stride
  // and padding.
  if (a.x.type != ElemType::kBF16 || !Aligned16(a.x.data) || a.w_in % 8 != 0) return false;
  if (a.t_prev < 0 || a.prev_first < 0 || (a.t_prev > 0 && a.prev_first >= a.t_prev) ||
      (a.t_prev > 0 && (a.x_prev.type != ElemType::kBF16 || !Aligned16(a.x_prev.data)))) {
    return false;
  }
  if (a.stride[1] != 1 || a.stride[2] != 1) return false;
  const bool k3 = a.kh == 3 && a.kw == 3 && a.pad_lo[2] == 1;
  const bool k1 = a.kh == 1 && a.kw == 1 && a.pad_lo[2] == 0;
  if (!(k3 || k1) || a.cout < 1 || a.cin < 1 || a.kt < 1) return false;
  // The fused input transform runs in the 3x3 kernel's builder warps, which the 1x1 one lacks;
  // its statistics are read as aligned float4 pairs.
  const bool norm = a.norm_gamma.data != nullptr;
  if ((norm || a.silu) && !k3) return false;
  if (norm && (a.inv_rms == nullptr || !Aligned16(a.inv_rms) ||
               (a.t_prev > 0 && (a.inv_rms_prev == nullptr || !Aligned16(a.inv_rms_prev))))) {
    return false;
  }
  // The kernel indexes y and the tensor maps' extents with 32-bit ints.
  if (a.cout * a.to * a.ho * a.wo > INT_MAX || a.cin * (a.t_prev + a.t) * a.h * a.w_in > INT_MAX) {
    return false;
  }
  int dev = 0, smem = 0;
  if (!Conv3dSm90Available() || cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    return false;
  }
  return smem >= WithTile(a, [](auto tile) { return decltype(tile)::kSmemBytes; });
#endif
}

int64_t Conv3dSm90PackedElems(const Conv3dArgs& a) {
#if !defined(TV_HAVE_SM90A)
  (void)a;
  return 0;
#else
  return a.kt * a.kh * a.kw * a.cin * CoutPadded(a);
#endif
}

cudaError_t LaunchConv3dSm90PackWeights(const Conv3dArgs& a, void* packed, cudaStream_t stream) {
#if !defined(TV_HAVE_SM90A)
  (void)a;
  (void)packed;
  (void)stream;
  return cudaErrorNotSupported;
#else
  if (a.w.data == nullptr || packed == nullptr) return cudaErrorInvalidValue;
  const int64_t total = Conv3dSm90PackedElems(a);
  if (total == 0) return cudaSuccess;
  ConvSm90PackKernel<<<GridFor(total, 256), 256, 0, stream>>>(
      a.w, static_cast<__nv_bfloat16*>(packed), static_cast<int>(a.cin), static_cast<int>(a.cout),
      static_cast<int>(CoutPadded(a)), static_cast<int>(a.kt * a.kh * a.kw), total);
  return Report(a.sm90_debug, cudaGetLastError(), "pack weights");
#endif
}

cudaError_t LaunchConv3dSm90(const Conv3dArgs& a, cudaStream_t stream) {
#if !defined(TV_HAVE_SM90A)
  (void)a;
  (void)stream;
  return cudaErrorNotSupported;
#else
  if (!Conv3dSm90Available())
    return Report(a.sm90_debug, cudaErrorNotSupported, "not an sm_90 device");
  if (!Conv3dSm90Accepts(a))
    return Report(a.sm90_debug, cudaErrorInvalidValue, "shapes not accepted");
  if (a.w_packed == nullptr || !Aligned16(a.w_packed)) {
    return Report(a.sm90_debug, cudaErrorInvalidValue,
                  "packed weights missing or not 16-byte aligned");
  }
  return WithTile(a, [&](auto tile) { return Launch<decltype(tile)>(a, stream); });
#endif
}

}  // namespace turbovid::kernels
