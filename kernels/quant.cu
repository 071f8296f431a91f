// W8A8 int8 linear (docs/model-math.md §11): tile quantiser; int8 GEMM (mma.sync m16n8k32 s8,
// 128x128 CTA tile, one 128-wide K block per cp.async stage) dequantising each K block's int32
// sums into fp32 with fma(float(dot), sa·sw, acc); a scalar GEMM for shapes the fast path skips.
// LaunchInt8Gemm hands sm_90a devices to the wgmma kernel (quant_sm90.cu) unless told otherwise.
#include <cuda_bf16.h>

#include "kernels/device_util.cuh"
#include "kernels/ptx.cuh"
#include "kernels/quant.h"
#include "kernels/quant_tiles.cuh"

namespace turbovid::kernels {
namespace {

constexpr int kBlk = static_cast<int>(kQuantBlock);

using quant_tiles::AsBf16;
using quant_tiles::Epilogue;
using quant_tiles::StorePair;

// ---------------------------------------------------------------------------------------------
// Quantiser: one CTA per 128x128 tile; thread t covers 4 adjacent columns of 16 rows.

constexpr int kQuantThreads = 256;
constexpr int kQuantRowsPerPass = kQuantThreads / (kBlk / 4);  // 8
constexpr int kQuantPasses = kBlk / kQuantRowsPerPass;         // 16

template <typename T>
__global__ void __launch_bounds__(kQuantThreads)
    QuantizeInt8Kernel(const T* __restrict__ x, QuantizeInt8Args a) {
  __shared__ float warp_max[kQuantThreads / 32];
  const int t = threadIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kBlk + (t % (kBlk / 4)) * 4;
  const int64_t r_base = static_cast<int64_t>(blockIdx.y) * kBlk + t / (kBlk / 4);
  float v[kQuantPasses][4];
  // The upstream atomicMax starts at 1e-8, so an all-zero tile keeps a finite scale; values
  // outside the matrix read as 0 and cannot raise it.
  float amax = 1e-8f;
#pragma unroll
  for (int p = 0; p < kQuantPasses; ++p) {
    const int64_t r = r_base + p * kQuantRowsPerPass;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const bool in = r < a.rows && c + e < a.cols;
      v[p][e] = in ? AsBf16(x[r * a.cols + c + e]) : 0.f;
      amax = fmaxf(amax, fabsf(v[p][e]));
    }
  }
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if (t % 32 == 0) warp_max[t / 32] = amax;
  __syncthreads();  // every warp's maximum is in shared memory
#pragma unroll
  for (int w = 0; w < kQuantThreads / 32; ++w) amax = fmaxf(amax, warp_max[w]);
  // 128/amax as upstream's --use_fast_math build divides: 128·rcp.approx(amax) (exact scaling of
  // the approximate reciprocal; the CPU reference reproduces the instruction, docs/model-math.md
  // §11.3).
  float rcp;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(rcp) : "f"(amax));
  const float inv = __fmul_rn(128.f, rcp);
  const bool packed = a.cols % 4 == 0 && reinterpret_cast<uintptr_t>(a.q) % 4 == 0;
#pragma unroll
  for (int p = 0; p < kQuantPasses; ++p) {
    const int64_t r = r_base + p * kQuantRowsPerPass;
    if (r >= a.rows) break;
    int qv[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      // cvt.rni.sat.s8: round half to even, then saturate (+amax·128/amax = 128 → 127).
      qv[e] = min(127, max(-128, __float2int_rn(__fmul_rn(v[p][e], inv))));
    }
    int8_t* dst = a.q + r * a.cols + c;
    if (packed && c + 3 < a.cols) {
      const uint32_t word =
          (static_cast<uint32_t>(qv[0]) & 0xffu) | ((static_cast<uint32_t>(qv[1]) & 0xffu) << 8) |
          ((static_cast<uint32_t>(qv[2]) & 0xffu) << 16) | (static_cast<uint32_t>(qv[3]) << 24);
      *reinterpret_cast<uint32_t*>(dst) = word;
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (c + e < a.cols) dst[e] = static_cast<int8_t>(qv[e]);
      }
    }
  }
  if (t == 0)
    a.scale[static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x] = __fdiv_rn(amax, 128.f);
}

// ---------------------------------------------------------------------------------------------
// Scalar GEMM: one thread per output, the CPU loop verbatim. For k % 16 != 0 or unaligned operands.

__global__ void Int8GemmScalarKernel(Int8GemmArgs a) {
  const int64_t kb = (a.k + kBlk - 1) / kBlk;
  const int64_t total = a.m * a.n;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / a.n, j = idx % a.n;
    const int8_t* ar = a.a + i * a.k;
    const int8_t* wr = a.w + j * a.k;
    float acc = 0.f;
    for (int64_t b = 0; b < kb; ++b) {
      const int64_t c0 = b * kBlk, c1 = min(a.k, c0 + kBlk);
      int dot = 0;
      for (int64_t c = c0; c < c1; ++c) dot += int{ar[c]} * int{wr[c]};
      const float sab = __fmul_rn(a.a_scale[(i / kBlk) * kb + b], a.w_scale[(j / kBlk) * kb + b]);
      acc = __fmaf_rn(__int2float_rn(dot), sab, acc);
    }
    if (a.acc) a.acc[idx] = acc;
    detail::Store(a.y, idx, Epilogue(a, j, acc));
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor-core GEMM. CTA tile 128(M) x 128(N), 8 warps as 4(M) x 2(N), warp tile 32 x 64 =
// 2 x 8 mma tiles of m16n8k32. A stage holds one 128-wide K block of A and W (16 KiB each): the
// int32 sums of a block are complete when the stage is consumed, so the dequant happens there.
// Shared rows are 128 bytes (eight 16-byte chunks); chunk c of row r sits at c ^ (r % 8), so the
// eight rows an ldmatrix phase reads hit distinct bank groups.

constexpr int kGemmThreads = 256;
constexpr int kWarpsM = 4, kWarpsN = 2;
constexpr int kWarpTileM = kBlk / kWarpsM;  // 32
constexpr int kWarpTileN = kBlk / kWarpsN;  // 64
constexpr int kMmaM = 16, kMmaN = 8, kMmaK = 32;
constexpr int kTilesM = kWarpTileM / kMmaM;  // 2
constexpr int kTilesN = kWarpTileN / kMmaN;  // 8
constexpr int kTileBytes = kBlk * kBlk;      // one operand's stage: 128 rows x 128 int8
constexpr int kChunksPerThread = kTileBytes / 16 / kGemmThreads;  // 4
// Two stages (64 KiB): the next K block streams in while the current one is multiplied. Three
// (96 KiB) would still fit sm_120's 99 KiB per-CTA limit; tune on the GPU.
constexpr int kStages = 2;
constexpr int kStageBytes = 2 * kTileBytes;
constexpr int kGemmSmemBytes = kStages * kStageBytes;
// Consecutive CTAs walk down 8 M tiles before moving along N, so a wave shares W tiles in L2.
constexpr int64_t kGroupM = 8;
static_assert(kWarpsM * kWarpsN * 32 == kGemmThreads, "warp layout");
static_assert(kTileBytes % (16 * kGemmThreads) == 0, "chunks per thread");

// Byte offset of (row, 16-byte chunk) in a [rows, kBlk] int8 tile.
__device__ __forceinline__ int Swizzled(int row, int chunk) {
  return ptx::XorSwizzle<kBlk, 16>(row, chunk);
}

using ptx::CpAsync16;
using ptx::CpAsyncCommit;
using ptx::CpAsyncWait;
using ptx::LdMatrixX4;
using ptx::MmaS8;
using ptx::SmemAddr;

// Copies rows [row0, row0 + 128) x K block kblk of src [rows, k] into a swizzled stage tile.
__device__ __forceinline__ void LoadTile(uint32_t tile, const int8_t* src, int64_t rows, int64_t k,
                                         int64_t row0, int64_t kblk) {
#pragma unroll
  for (int i = 0; i < kChunksPerThread; ++i) {
    const int id = threadIdx.x + i * kGemmThreads;
    const int r = id / 8, ch = id % 8;
    const int64_t gr = row0 + r, gk = kblk * kBlk + ch * 16;
    const bool in = gr < rows && gk < k;  // k % 16 == 0: a chunk is wholly inside or outside
    CpAsync16(tile + Swizzled(r, ch), in ? src + gr * k + gk : src, in);
  }
}

__global__ void __launch_bounds__(kGemmThreads, 1) Int8GemmMmaKernel(Int8GemmArgs a) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int64_t tiles_m = (a.m + kBlk - 1) / kBlk, tiles_n = (a.n + kBlk - 1) / kBlk;
  const int64_t kb = (a.k + kBlk - 1) / kBlk;
  // Grouped raster order (kGroupM M tiles per column of CTAs).
  const int64_t pid = blockIdx.x, per_group = kGroupM * tiles_n;
  const int64_t first_m = (pid / per_group) * kGroupM;
  const int64_t group_m = min(tiles_m - first_m, kGroupM);
  const int64_t tm = first_m + (pid % per_group) % group_m;
  const int64_t tn = (pid % per_group) / group_m;
  const int64_t m0 = tm * kBlk, n0 = tn * kBlk;

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp % kWarpsM, wn = warp / kWarpsM;
  const uint32_t base = SmemAddr(smem);

  float acc[kTilesM][kTilesN][4];
#pragma unroll
  for (int i = 0; i < kTilesM; ++i) {
#pragma unroll
    for (int j = 0; j < kTilesN; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
    }
  }

  // Prologue: K blocks 0 .. kStages-2; every step commits a group (maybe empty) so that
  // wait_group counts stay uniform.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < kb) {
      LoadTile(base + s * kStageBytes, a.a, a.m, a.k, m0, s);
      LoadTile(base + s * kStageBytes + kTileBytes, a.w, a.n, a.k, n0, s);
    }
    CpAsyncCommit();
  }

  for (int64_t b = 0; b < kb; ++b) {
    CpAsyncWait<kStages - 2>();
    // Block b is resident for every thread, and every warp is done with the stage of block
    // b - 1, which the load below overwrites.
    __syncthreads();
    const int64_t next = b + kStages - 1;
    if (next < kb) {
      const uint32_t st = base + static_cast<int>(next % kStages) * kStageBytes;
      LoadTile(st, a.a, a.m, a.k, m0, next);
      LoadTile(st + kTileBytes, a.w, a.n, a.k, n0, next);
    }
    CpAsyncCommit();

    const uint32_t sa = base + static_cast<int>(b % kStages) * kStageBytes;
    const uint32_t sw = sa + kTileBytes;
    int dot[kTilesM][kTilesN][4];
#pragma unroll
    for (int i = 0; i < kTilesM; ++i) {
#pragma unroll
      for (int j = 0; j < kTilesN; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) dot[i][j][e] = 0;
      }
    }
#pragma unroll
    for (int kk = 0; kk < kBlk / kMmaK; ++kk) {
      uint32_t af[kTilesM][4];
#pragma unroll
      for (int i = 0; i < kTilesM; ++i) {
        // Lanes 0-15 address rows 0-15 at k bytes [0, 16), lanes 16-31 the same rows at
        // [16, 32): registers a0..a3 of the m16n8k32 A fragment.
        const int r = wm * kWarpTileM + i * kMmaM + lane % 16;
        LdMatrixX4(af[i], sa + Swizzled(r, kk * 2 + lane / 16));
      }
#pragma unroll
      for (int jp = 0; jp < kTilesN / 2; ++jp) {
        // Matrices: (n 0-7, k 0-15), (n 0-7, k 16-31), (n 8-15, k 0-15), (n 8-15, k 16-31):
        // b0, b1 of n tile 2·jp, then of n tile 2·jp + 1.
        const int r = wn * kWarpTileN + jp * 16 + (lane / 16) * 8 + lane % 8;
        uint32_t bf[4];
        LdMatrixX4(bf, sw + Swizzled(r, kk * 2 + (lane / 8) % 2));
#pragma unroll
        for (int i = 0; i < kTilesM; ++i) {
          MmaS8(dot[i][2 * jp], af[i], bf[0], bf[1]);
          MmaS8(dot[i][2 * jp + 1], af[i], bf[2], bf[3]);
        }
      }
    }
    // The CTA's rows and columns each lie in one 128-row scale tile: one product per K block,
    // rounded to fp32 before the fma exactly as the reference does.
    const float sab = __fmul_rn(a.a_scale[tm * kb + b], a.w_scale[tn * kb + b]);
#pragma unroll
    for (int i = 0; i < kTilesM; ++i) {
#pragma unroll
      for (int j = 0; j < kTilesN; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[i][j][e] = __fmaf_rn(__int2float_rn(dot[i][j][e]), sab, acc[i][j][e]);
      }
    }
  }
  // Drain the trailing (empty) groups before the CTA exits.
  CpAsyncWait<0>();

  // C fragment: c0, c1 at (row g, cols 2t, 2t+1), c2, c3 at row g + 8 (g = lane / 4, t = lane % 4).
  const bool paired = quant_tiles::PairedStores(a);
#pragma unroll
  for (int i = 0; i < kTilesM; ++i) {
#pragma unroll
    for (int j = 0; j < kTilesN; ++j) {
      const int64_t col = n0 + wn * kWarpTileN + j * kMmaN + (lane % 4) * 2;
      if (col >= a.n) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + wm * kWarpTileM + i * kMmaM + lane / 4 + h * 8;
        if (row < a.m) StorePair(a, paired, row, col, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
      }
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

cudaError_t LaunchQuantizeInt8(const QuantizeInt8Args& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols < 0 || args.q == nullptr || args.scale == nullptr ||
      args.x.data == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (args.rows == 0 || args.cols == 0) return cudaSuccess;
  const int64_t row_tiles = (args.rows + kBlk - 1) / kBlk,
                col_tiles = (args.cols + kBlk - 1) / kBlk;
  if (row_tiles > 65535 || col_tiles > 0x7fffffff) return cudaErrorInvalidValue;  // grid limits
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles));
  switch (args.x.type) {
    case ElemType::kF32:
      QuantizeInt8Kernel<float>
          <<<grid, kQuantThreads, 0, stream>>>(static_cast<const float*>(args.x.data), args);
      break;
    case ElemType::kBF16:
      QuantizeInt8Kernel<__nv_bfloat16><<<grid, kQuantThreads, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(args.x.data), args);
      break;
  }
  return cudaGetLastError();
}

cudaError_t LaunchInt8Gemm(const Int8GemmArgs& args, cudaStream_t stream) {
  if (args.m < 0 || args.n < 0 || args.k < 0 || args.a == nullptr || args.w == nullptr ||
      args.a_scale == nullptr || args.w_scale == nullptr || args.y.data == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (args.m == 0 || args.n == 0) return cudaSuccess;
  if (args.path != Int8GemmPath::kMma && Int8GemmSm90Available()) {
    if (Int8GemmSm90Accepts(args)) return LaunchInt8GemmSm90(args, stream);
    if (args.path == Int8GemmPath::kSm90) return cudaErrorInvalidValue;
  }
  const int64_t tiles = ((args.m + kBlk - 1) / kBlk) * ((args.n + kBlk - 1) / kBlk);
  const bool fast = args.k > 0 && args.k % 16 == 0 && Aligned16(args.a) && Aligned16(args.w) &&
                    tiles <= 0x7fffffff;
  if (!fast) {
    constexpr int kThreads = 256;
    Int8GemmScalarKernel<<<detail::GridFor(args.m * args.n, kThreads), kThreads, 0, stream>>>(args);
    return cudaGetLastError();
  }
  // Above 48 KiB of dynamic shared memory a kernel must opt in (per device, cheap to repeat).
  const cudaError_t e = cudaFuncSetAttribute(
      Int8GemmMmaKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kGemmSmemBytes);
  if (e != cudaSuccess) return e;
  Int8GemmMmaKernel<<<static_cast<unsigned>(tiles), kGemmThreads, kGemmSmemBytes, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace turbovid::kernels
