// W8A8 int8 GEMM on Hopper (sm_90a), docs/model-math.md §11.5: the same arithmetic as the
// mma.sync kernel in quant.cu, bit for bit. Persistent CTAs of 3 warpgroups walk 128×128 output
// tiles in quant.cu's grouped order. WG0 produces: one thread issues the TMA loads of each
// 128-wide K block (the scale block) of A [128 rows] and W [128 rows], 16 KiB each with the
// 128-byte swizzle, into a kStages-deep mbarrier ring, running ahead into the CTA's next tile
// while the consumers finish the current one. WG1 / WG2 consume 64 rows each: per K block four
// wgmma m64n128k32 s8·s8 → s32 (one fresh int32 fragment per block, exact), then the promotion
// acc = fma(float(dot), sa·sw, acc) in fp32, block by block in increasing order. Two int32
// fragments alternate, so the tensor cores run block b + 1 while block b is promoted.
// Built for sm_90a only (kernels/CMakeLists.txt); without it the launcher reports NotSupported.
#include <cuda.h>  // CUtensorMap and its enums (types only: no libcuda link)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "kernels/quant.h"
#include "kernels/quant_tiles.cuh"
#include "kernels/sm90_util.cuh"
#include "kernels/tma.h"

namespace turbovid::kernels {
namespace {
#if defined(TV_HAVE_SM90A)

constexpr int kBlk = static_cast<int>(kQuantBlock);  // K block = scale block = 128 int8 = 128 B
constexpr int kBm = 128;                      // output rows per tile (2 consumer warpgroups × 64)
constexpr int kBn = 128;                      // output columns per tile = one w_scale tile
constexpr int kStages = 6;                    // ring depth: 6 × 32 KiB
constexpr int kThreads = 384;                 // producer + 2 consumer warpgroups
constexpr uint32_t kATileBytes = kBm * kBlk;  // 16 KiB, [128 rows][128 B] swizzled
constexpr uint32_t kWTileBytes = kBn * kBlk;  // 16 KiB
constexpr uint32_t kStageBytes = kATileBytes + kWTileBytes;  // the tx bytes of a stage's 2 boxes
constexpr uint32_t kBarOff = kStages * kStageBytes;
constexpr int kConsumerWarps = 8;  // arrivals that free a stage
// + slack to align the base: the 128-byte swizzle repeats every 1024 bytes, and TMA and wgmma
// apply it from the address bits.
constexpr size_t kSmemBytes = kBarOff + 16 * kStages + 1024;
constexpr int64_t kGroupM = 8;  // tiles down M before moving along N (quant.cu's raster)
static_assert(kStageBytes % 1024 == 0 && kATileBytes % 1024 == 0, "1024-aligned tiles");

// float(d) for |d| < 2^22 without the 16-per-clock I2F: the bits of 1.5·2^23 + d are the float
// 1.5·2^23 + d exactly (one unit per integer in [2^23, 2^24)), and subtracting 1.5·2^23 is exact.
// A block's dot is at most 128·128·128 = 2^21 in magnitude, so this equals __int2float_rn(d).
constexpr int kMagicBits = 0x4B400000;
constexpr float kMagic = 12582912.f;  // 1.5·2^23

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

using namespace ::turbovid::kernels::sm90;  // kernels/sm90_util.cuh
using ptx::SmemAddr;

struct Tile {
  int64_t tm, tn;
};
// Tile t of the grouped raster order: kGroupM M tiles per column of tiles.
__device__ __forceinline__ Tile TileOf(int64_t t, int64_t tiles_m, int64_t tiles_n) {
  const int64_t per_group = kGroupM * tiles_n;
  const int64_t first_m = (t / per_group) * kGroupM;
  const int64_t group_m = min(tiles_m - first_m, kGroupM);
  return {first_m + (t % per_group) % group_m, (t % per_group) / group_m};
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

__global__ void __launch_bounds__(kThreads, 1)
    Int8GemmSm90Kernel(const __grid_constant__ CUtensorMap ta,
                       const __grid_constant__ CUtensorMap tw, const Int8GemmArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw_addr = SmemAddr(smem_raw);
  const uint32_t base = (raw_addr + 1023u) & ~1023u;
  auto full = [&](uint32_t s) { return base + kBarOff + 8u * s; };
  auto empty = [&](uint32_t s) { return base + kBarOff + 8u * (kStages + s); };
  auto a_tile = [&](uint32_t s) { return base + s * kStageBytes; };
  auto w_tile = [&](uint32_t s) { return base + s * kStageBytes + kATileBytes; };

  const int tid = threadIdx.x;
  const int wg = tid >> 7;  // 0 producer, 1..2 consumers
  const int64_t tiles_m = (a.m + kBm - 1) / kBm, tiles_n = (a.n + kBn - 1) / kBn;
  const int64_t tiles = tiles_m * tiles_n;
  const int nkb = static_cast<int>((a.k + kBlk - 1) / kBlk);

  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      BarInit(full(s), 1);
      BarInit(empty(s), kConsumerWarps);
    }
    // Make the initialised barriers visible to the async proxy (the TMA unit) as well.
    FenceBarrierInit();
  }
  __syncthreads();

  if (wg == 0) {
    // Producer: one thread issues every copy; the warpgroup gives its registers to the consumers.
    RegDealloc<40>();
    if (tid == 0) {
      uint32_t it = 0;  // K blocks loaded so far, over all of this CTA's tiles
      for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        const Tile c = TileOf(t, tiles_m, tiles_n);
        const int m0 = static_cast<int>(c.tm * kBm), n0 = static_cast<int>(c.tn * kBn);
        for (int b = 0; b < nkb; ++b, ++it) {
          const uint32_t s = it % kStages;
          BarWait(empty(s), ((it / kStages) & 1) ^ 1);
          // Rows past m or n and columns past k arrive as zeros (and count in the bytes).
          BarExpectTx(full(s), kStageBytes);
          TmaLoad2d(a_tile(s), &ta, full(s), b * kBlk, m0);
          TmaLoad2d(w_tile(s), &tw, full(s), b * kBlk, n0);
        }
      }
    }
  } else {
    RegAlloc<232>();
    const int cw = wg - 1;            // rows 64 cw .. 64 cw + 63 of each tile
    const int warp = (tid >> 5) & 3;  // rows 16 warp .. of the warpgroup's 64
    const int lane = tid & 31;        // row lane / 4 (+ 8), columns 2 (lane % 4) (+ 1)
    const bool paired = quant_tiles::PairedStores(a);
    int d0[64], d1[64];  // two int32 fragments (n8 tile j: elements 4j .. 4j + 3)
    float acc[64];       // the fp32 accumulator, same layout
#pragma unroll
    for (int i = 0; i < 64; ++i) d0[i] = d1[i] = 0;
    uint32_t it0 = 0;  // ring position of the current tile's K block 0
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
      const Tile c = TileOf(t, tiles_m, tiles_n);
      // The tile's rows lie in one a_scale row tile and its columns in one w_scale tile.
      const float* sa = a.a_scale + c.tm * nkb;
      const float* sw = a.w_scale + c.tn * nkb;
#pragma unroll
      for (int i = 0; i < 64; ++i) acc[i] = 0.f;

      // Block b into d: four k32 steps, each 32 bytes further along the swizzled 128-byte rows
      // (K-major A and W, 8-row groups 1024 bytes apart). Returns the block's sa·sw, rounded to
      // fp32 as the reference does, loaded while the copy and the multiply are in flight.
      auto issue = [&](int b, int(&d)[64]) -> float {
        const float sab = __fmul_rn(__ldg(sa + b), __ldg(sw + b));
        const uint32_t it = it0 + static_cast<uint32_t>(b), s = it % kStages;
        BarWait(full(s), (it / kStages) & 1);
        const uint32_t at = a_tile(s) + cw * 64 * 128, wt = w_tile(s);
        WgFence();
        Pin(d);
#pragma unroll
        for (int kk = 0; kk < kBlk / 32; ++kk) {
          WgmmaS8(d, Desc(at + kk * 32, 16, 1024), Desc(wt + kk * 32, 16, 1024), kk > 0 ? 1 : 0);
        }
        WgCommit();
        return sab;
      };
      // After the wait that completed block b's group: free its stage, promote its dot.
      auto finish = [&](int b, int(&d)[64], float sab) {
        Pin(d);
        __syncwarp();
        if (lane == 0) BarArrive(empty((it0 + static_cast<uint32_t>(b)) % kStages));
#pragma unroll
        for (int i = 0; i < 64; ++i) {
          const float dot = __fsub_rn(__int_as_float(d[i] + kMagicBits), kMagic);
          acc[i] = __fmaf_rn(dot, sab, acc[i]);
        }
      };

      // nkb ≥ 1. Each branch both decides whether another block is issued and whether the loop
      // ends, so every exit has waited for every group (ptxas tracks the pending wgmmas per path;
      // an exit it could reach with one pending would make it serialise them).
      float sab0 = issue(0, d0), sab1 = 0.f;
      for (int b = 0;; b += 2) {
        if (b + 1 >= nkb) {
          WgWait<0>();
          finish(b, d0, sab0);
          break;
        }
        sab1 = issue(b + 1, d1);
        WgWait<1>();  // groups complete in order: block b is done, b + 1 may still run
        finish(b, d0, sab0);
        if (b + 2 >= nkb) {
          WgWait<0>();
          finish(b + 1, d1, sab1);
          break;
        }
        sab0 = issue(b + 2, d0);
        WgWait<1>();
        finish(b + 1, d1, sab1);
      }
      it0 += static_cast<uint32_t>(nkb);

      // Epilogue straight from the fragments (quant.cu's StorePair): rows past m and columns past
      // n (zeros from the TMA fill) are not stored.
      const int64_t row0 = c.tm * kBm + cw * 64 + warp * 16 + (lane >> 2);
      const int64_t col0 = c.tn * kBn + (lane & 3) * 2;
#pragma unroll
      for (int j = 0; j < kBn / 8; ++j) {
        const int64_t col = col0 + j * 8;
        if (col >= a.n) continue;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t row = row0 + h * 8;
          if (row < a.m) {
            quant_tiles::StorePair(a, paired, row, col, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
          }
        }
      }
    }
  }
#else
  (void)ta;
  (void)tw;
  (void)a;
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

cudaError_t Launch(const Int8GemmArgs& a, cudaStream_t stream) {
  CUtensorMap ta, tw;
  if (!tma::EncodeI8Rows128(&ta, a.a, a.m, a.k, kBm) ||
      !tma::EncodeI8Rows128(&tw, a.w, a.n, a.k, kBn)) {
    return cudaErrorInvalidValue;
  }
  cudaError_t e =
      cudaFuncSetAttribute(Int8GemmSm90Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(kSmemBytes));
  int dev = 0, sms = 0;
  if (e == cudaSuccess) e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e != cudaSuccess) return e;
  const int64_t tiles = ((a.m + kBm - 1) / kBm) * ((a.n + kBn - 1) / kBn);
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(tiles, std::max(sms, 1)));
  Int8GemmSm90Kernel<<<grid, kThreads, kSmemBytes, stream>>>(ta, tw, a);
  return cudaGetLastError();
}

#endif  // TV_HAVE_SM90A
}  // namespace

bool Int8GemmSm90Built() {
#if defined(TV_HAVE_SM90A)
  return true;
#else
  return false;
#endif
}

bool Int8GemmSm90Available() {
  int dev = 0, major = 0, minor = 0;
  return Int8GemmSm90Built() && cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess &&
         major == 9 && minor == 0;
}

bool Int8GemmSm90Accepts(const Int8GemmArgs& a) {
#if !defined(TV_HAVE_SM90A)
  (void)a;
  return false;
#else
  // TMA: 16-byte-aligned bases and row strides; 32-bit box coordinates (a tile's first row or
  // column, up to 127 past the last one, still fits).
  constexpr int64_t kMax = (int64_t{1} << 31) - 256;
  return a.a != nullptr && a.w != nullptr && a.a_scale != nullptr && a.w_scale != nullptr &&
         a.y.data != nullptr && a.m > 0 && a.n > 0 && a.k > 0 && a.k % 16 == 0 && a.m < kMax &&
         a.n < kMax && a.k < kMax && Aligned16(a.a) && Aligned16(a.w);
#endif
}

cudaError_t LaunchInt8GemmSm90(const Int8GemmArgs& a, cudaStream_t stream) {
#if !defined(TV_HAVE_SM90A)
  (void)a;
  (void)stream;
  return cudaErrorNotSupported;
#else
  if (!Int8GemmSm90Available()) return cudaErrorNotSupported;
  if (!Int8GemmSm90Accepts(a)) return cudaErrorInvalidValue;
  return Launch(a, stream);
#endif
}

}  // namespace turbovid::kernels
