// SageSLA's block-sparse attention on Hopper (sm_90a) for the H100 build's numerics
// (SageNumerics::kSm90: 64-row query blocks, 128-key blocks, P·V with fp32 accumulators), D = 128
// (docs/model-math.md §10). The arithmetic is the mma.sync kernel's (sagesla.cu SageAttnKernel),
// operation for operation, on warpgroup tensor-core instructions instead:
//   S = Q·Kᵀ   wgmma m64n128k32 s32.s8.s8 (IGMMA), both int8 tiles K-major in shared memory;
//   O += P·V   wgmma m64n128k32 f32.e4m3.e4m3 (QGMMA), P from registers, V from the transposed
//              code layout [N, D, lpad] the V quantiser already writes (keys contiguous per
//              channel, permuted per 32-key chunk to match P's register layout): K-major as FP8
//              wgmma needs, so no transpose in shared memory.
// One CTA = one query block of one head = one warpgroup (warp w owns rows 16w..16w+15, the same
// rows and the same accumulator layout as the mma.sync kernel, so the online softmax, the e4m3
// codes of P, the row-sum partials and the epilogue are that kernel's, bit for bit; only the
// tensor cores' internal order of the P·V sums may differ). Thread 0 issues the TMA loads: Q once
// (64 rows × 128 B), then per selected key block its K codes (128 keys × 128 B) and V codes (128
// channels × 128 keys), all 128-byte swizzled, into a kStages-deep mbarrier ring refilled as the
// warpgroup finishes a block. Small CTAs (128 threads, 74 KB) so that three share an SM and one's
// tensor-core work overlaps another's softmax.
// Built for sm_90a only (kernels/CMakeLists.txt); without it the launcher reports NotSupported.
#include <cuda.h>  // CUtensorMap and its enums (types only: no libcuda link)
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

#include "kernels/sla_plan.cuh"
#include "kernels/sm90_util.cuh"
#include "kernels/tma.h"

namespace turbovid::kernels::sla_plan {
#if defined(TV_HAVE_SM90A)
namespace {

constexpr int kD = 128;        // head dim (bytes per int8 / e4m3 row: one 128-byte swizzle row)
constexpr int kBq = 64;        // query rows per CTA = block_q of the kSm90 numerics
constexpr int kBk = 128;       // keys per key block = block_k
constexpr int kThreads = 128;  // one warpgroup
constexpr int kStages = 2;     // K/V ring depth
constexpr uint32_t kQBytes = kBq * kD;               // 8 KB  [64 rows][128 B]
constexpr uint32_t kKBytes = kBk * kD;               // 16 KB [128 keys][128 B]
constexpr uint32_t kVBytes = kD * kBk;               // 16 KB [128 channels][128 keys]
constexpr uint32_t kStageBytes = kKBytes + kVBytes;  // the tx bytes of a stage's two boxes
constexpr uint32_t kBarOff = kQBytes + kStages * kStageBytes;
// + slack to align the base: the 128-byte swizzle repeats every 1024 bytes, and TMA and wgmma
// apply it from the address bits.
constexpr size_t kSmemBytes = kBarOff + 8 * (1 + kStages) + 1024;
static_assert(kQBytes % 1024 == 0 && kStageBytes % 1024 == 0 && kKBytes % 1024 == 0,
              "1024-aligned tiles");

constexpr float kMasked = -5000000.f;  // as sagesla.cu: scores of keys past L
constexpr float kPOffset = 8.807f;     // as sagesla.cu: exp2 offset, the largest P ≈ 448
// float(d) for |d| < 2^22 without I2F (as quant_sm90.cu): the bits of 1.5·2^23 + d are that float
// exactly, and subtracting 1.5·2^23 is exact. |Q·Kᵀ| ≤ 128·128·128 = 2^21.
constexpr int kMagicBits = 0x4B400000;
constexpr float kMagic = 12582912.f;  // 1.5·2^23

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

using namespace ::turbovid::kernels::sm90;  // NOLINT(build/namespaces): kernels/sm90_util.cuh
using ptx::SmemAddr;

// The approximate reciprocal upstream's fast-math build emits (sagesla.cu RcpApprox).
__device__ __forceinline__ float RcpApprox(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
// (lo, hi) → two e4m3 bytes, round to nearest, saturating; lo in the low byte (sagesla.cu).
__device__ __forceinline__ uint32_t PackE4m3(float lo, float hi) {
  uint16_t r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(r) : "f"(hi), "f"(lo));
  return r;
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

__global__ void __launch_bounds__(kThreads, 3)
    SageAttnWgmmaKernel(const __grid_constant__ CUtensorMap tq,
                        const __grid_constant__ CUtensorMap tk,
                        const __grid_constant__ CUtensorMap tv, const SageAttnArgs p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kNt = kBk / 8, kPc = kBk / 32, kDt = kD / 8;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw_addr = SmemAddr(smem_raw);
  const uint32_t base = (raw_addr + 1023u) & ~1023u;
  const uint32_t q_tile = base;
  const uint32_t q_full = base + kBarOff;
  auto full = [&](int s) { return base + kBarOff + 8u * (1 + s); };
  auto k_tile = [&](int s) { return base + kQBytes + s * kStageBytes; };
  auto v_tile = [&](int s) { return base + kQBytes + s * kStageBytes + kKBytes; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int qb = blockIdx.x, h = blockIdx.y;
  const int ksel = p.ksel;
  const int* lut = p.lut + (static_cast<int64_t>(h) * p.nq + qb) * ksel;
  // Head h: columns h·128.. of q8 / k8 seen as [L, N·128], rows h·128.. of v8t as [N·128, lpad].
  const int hc = h * kD;
  // Block `it` of the LUT row into stage it % kStages (thread 0).
  auto load = [&](int it) {
    const int s = it % kStages, blk = lut[it];
    BarExpectTx(full(s), kStageBytes);
    TmaLoad2d(k_tile(s), &tk, full(s), hc, blk * kBk);
    TmaLoad2d(v_tile(s), &tv, full(s), blk * kBk, hc);
  };
  if (tid == 0) {
    BarInit(q_full, 1);
    for (int s = 0; s < kStages; ++s) BarInit(full(s), 1);
    // Make the initialised barriers visible to the async proxy (the TMA unit) as well.
    FenceBarrierInit();
    BarExpectTx(q_full, kQBytes);
    TmaLoad2d(q_tile, &tq, q_full, hc, qb * kBq);  // rows past L arrive as zeros
    for (int it = 0; it < ksel && it < kStages; ++it) load(it);
  }
  __syncthreads();  // the barriers are initialised

  const int64_t row0 = static_cast<int64_t>(qb) * kBq + warp * 16 + g, row1 = row0 + 8;
  const float q_scale = p.q_scale[h * p.nq + qb];
  float o[kDt][4];
#pragma unroll
  for (int i = 0; i < kDt; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  int sacc[64];    // S of the current block (s32; n8 tile j: elements 4j .. 4j + 3)
  float pacc[64];  // P·V of the current block (fp32, same layout over D)
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    sacc[i] = 0;
    pacc[i] = 0.f;
  }
  float m0 = kMasked, m1 = kMasked;  // running max of rows g and g + 8 (scaled, log2 domain)
  float d0 = 1.f, d1 = 1.f;          // this lane's row-sum partials (the first rescale zeroes them)
  BarWait(q_full, 0);
  for (int it = 0; it < ksel; ++it) {
    const int s = it % kStages;
    const int64_t blk = lut[it];
    const bool last = it == ksel - 1;
    const float dequant = __fmul_rn(q_scale, p.k_scale[h * p.nk + blk]);
    BarWait(full(s), (it / kStages) & 1);
    // S = Q·Kᵀ: four k32 steps, each 32 bytes further along the swizzled 128-byte rows.
    WgFence();
    Pin(sacc);
#pragma unroll
    for (int kk = 0; kk < kD / 32; ++kk) {
      WgmmaS8(sacc, Desc(q_tile + kk * 32, 16, 1024), Desc(k_tile(s) + kk * 32, 16, 1024),
              kk > 0 ? 1 : 0);
    }
    WgCommit();
    WgWait<0>();
    Pin(sacc);
    float sc[kNt][4];
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        sc[j][i] = __fsub_rn(__int_as_float(sacc[4 * j + i] + kMagicBits), kMagic);
      }
    }
    // From here to the e4m3 codes: sagesla.cu's SageAttnKernel<128, 64, 128, false>, the same
    // operations in the same order.
    const float scale = last ? p.qk_scale : __fmul_rn(p.qk_scale, dequant);
    if (last) {  // the last block: dequantised scores, keys past L masked (one branch per block)
#pragma unroll
      for (int j = 0; j < kNt; ++j) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          sc[j][i] = __fmul_rn(sc[j][i], dequant);
          const int64_t key = blk * kBk + j * 8 + 2 * t + (i & 1);
          if (key >= p.l) sc[j][i] = kMasked;
        }
      }
    }
    float mx0 = kMasked, mx1 = kMasked;
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
      mx0 = fmaxf(mx0, fmaxf(sc[j][0], sc[j][1]));
      mx1 = fmaxf(mx1, fmaxf(sc[j][2], sc[j][3]));
    }
    mx0 = ptx::QuadMax(mx0);
    mx1 = ptx::QuadMax(mx1);
    const float mn0 = fmaxf(m0, __fmul_rn(mx0, scale)), mn1 = fmaxf(m1, __fmul_rn(mx1, scale));
    const float r0 = ptx::Exp2(__fsub_rn(m0, mn0)), r1 = ptx::Exp2(__fsub_rn(m1, mn1));
    m0 = mn0;
    m1 = mn1;
    d0 = __fmul_rn(d0, r0);
    d1 = __fmul_rn(d1, r1);
    // O's rescale, skipped when no row of the warp has a new max (r = 1: x·1 = x exactly).
    if (__any_sync(0xffffffffu, r0 != 1.f || r1 != 1.f)) {
#pragma unroll
      for (int i = 0; i < kDt; ++i) {
        o[i][0] = __fmul_rn(o[i][0], r0);
        o[i][1] = __fmul_rn(o[i][1], r0);
        o[i][2] = __fmul_rn(o[i][2], r1);
        o[i][3] = __fmul_rn(o[i][3], r1);
      }
    }
    const float nm0 = __fadd_rn(-mn0, kPOffset), nm1 = __fadd_rn(-mn1, kPOffset);
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
      sc[j][0] = ptx::Exp2(__fmaf_rn(sc[j][0], scale, nm0));
      sc[j][1] = ptx::Exp2(__fmaf_rn(sc[j][1], scale, nm0));
      sc[j][2] = ptx::Exp2(__fmaf_rn(sc[j][2], scale, nm1));
      sc[j][3] = ptx::Exp2(__fmaf_rn(sc[j][3], scale, nm1));
    }
    // Row-sum partials per 16-key tile, in upstream's order: ((p0 + p1) + p8) + p9.
#pragma unroll
    for (int f = 0; f < kNt / 2; ++f) {
      d0 = __fadd_rn(d0,
                     __fadd_rn(__fadd_rn(__fadd_rn(sc[2 * f][0], sc[2 * f][1]), sc[2 * f + 1][0]),
                               sc[2 * f + 1][1]));
      d1 = __fadd_rn(d1,
                     __fadd_rn(__fadd_rn(__fadd_rn(sc[2 * f][2], sc[2 * f][3]), sc[2 * f + 1][2]),
                               sc[2 * f + 1][3]));
    }
    // P's codes as the A fragments of the k32 steps: byte 4t + i of chunk c holds key
    // 32c + KeyAt(4t + i), the key order of the V code layout.
    uint32_t pa[kPc][4];
#pragma unroll
    for (int c = 0; c < kPc; ++c) {
      const int a = 4 * c;
      pa[c][0] = PackE4m3(sc[a][0], sc[a][1]) | (PackE4m3(sc[a + 1][0], sc[a + 1][1]) << 16);
      pa[c][1] = PackE4m3(sc[a][2], sc[a][3]) | (PackE4m3(sc[a + 1][2], sc[a + 1][3]) << 16);
      pa[c][2] =
          PackE4m3(sc[a + 2][0], sc[a + 2][1]) | (PackE4m3(sc[a + 3][0], sc[a + 3][1]) << 16);
      pa[c][3] =
          PackE4m3(sc[a + 2][2], sc[a + 2][3]) | (PackE4m3(sc[a + 3][2], sc[a + 3][3]) << 16);
    }
    // The block's P·V from zero (fp32), then added to O: four k32 steps over the keys.
    WgFence();
    Pin(pacc);
    Pin(pa);
#pragma unroll
    for (int c = 0; c < kPc; ++c) {
      WgmmaE4m3(pacc, pa[c], Desc(v_tile(s) + c * 32, 16, 1024), c > 0 ? 1 : 0);
    }
    WgCommit();
    WgWait<0>();
    Pin(pacc);
    Pin(pa);
#pragma unroll
    for (int nt = 0; nt < kDt; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) o[nt][i] = __fadd_rn(o[nt][i], pacc[4 * nt + i]);
    }
    // Every warp's wgmmas on stage s are complete: refill it.
    __syncthreads();
    if (tid == 0 && it + kStages < ksel) load(it + kStages);
  }
  // Row sums: the four partials of a row, (d0 + d1) + (d2 + d3) in quad-index order.
  auto row_sum = [&](float part) {
    const int qbase = lane & ~3;
    const float a = __shfl_sync(0xffffffffu, part, qbase),
                b = __shfl_sync(0xffffffffu, part, qbase + 1);
    const float c = __shfl_sync(0xffffffffu, part, qbase + 2),
                e = __shfl_sync(0xffffffffu, part, qbase + 3);
    return __fadd_rn(__fadd_rn(a, b), __fadd_rn(c, e));
  };
  const float rs0 = RcpApprox(row_sum(d0)), rs1 = RcpApprox(row_sum(d1));
  const float* vs = p.v_scale + h * kD;
  const int64_t stride = p.heads * kD;
  __nv_bfloat16* os = static_cast<__nv_bfloat16*>(p.os);
#pragma unroll
  for (int nt = 0; nt < kDt; ++nt) {
    const int c = nt * 8 + 2 * t;
    const float s0 = vs[c], s1 = vs[c + 1];
    if (row0 < p.l) {
      const float a = ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][0], rs0), s0) : 0.f;
      const float b = ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][1], rs0), s1) : 0.f;
      *reinterpret_cast<__nv_bfloat162*>(os + row0 * stride + h * kD + c) =
          __floats2bfloat162_rn(a, b);
    }
    if (row1 < p.l) {
      const float a = ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][2], rs1), s0) : 0.f;
      const float b = ksel > 0 ? __fmul_rn(__fmul_rn(o[nt][3], rs1), s1) : 0.f;
      *reinterpret_cast<__nv_bfloat162*>(os + row1 * stride + h * kD + c) =
          __floats2bfloat162_rn(a, b);
    }
  }
#else
  (void)tq;
  (void)tk;
  (void)tv;
  (void)p;
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

bool Aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

cudaError_t Launch(const SageAttnArgs& a, cudaStream_t stream) {
  // 32-bit TMA coordinates and offsets; 16-byte-aligned operands; the LUT row's blocks exist.
  if (a.q8 == nullptr || a.k8 == nullptr || a.v8t == nullptr || a.q_scale == nullptr ||
      a.k_scale == nullptr || a.v_scale == nullptr || a.os == nullptr || a.l <= 0 || a.heads <= 0 ||
      a.heads > 65535 || a.ksel < 0 || (a.ksel > 0 && a.lut == nullptr) ||
      a.nq != (a.l + kBq - 1) / kBq || a.nk != (a.l + kBk - 1) / kBk || a.ksel > a.nk ||
      a.lpad != a.nk * kBk || a.l * a.heads * kD >= (int64_t{1} << 31) || !Aligned16(a.q8) ||
      !Aligned16(a.k8) || !Aligned16(a.v8t) || !Aligned16(a.os)) {
    return cudaErrorInvalidValue;
  }
  CUtensorMap tq, tk, tv;
  if (!tma::EncodeI8Rows128(&tq, a.q8, a.l, a.heads * kD, kBq) ||
      !tma::EncodeI8Rows128(&tk, a.k8, a.l, a.heads * kD, kBk) ||
      !tma::EncodeI8Rows128(&tv, a.v8t, a.heads * kD, a.lpad, kD)) {
    return cudaErrorInvalidValue;
  }
  if (cudaError_t e = SetSmem(SageAttnWgmmaKernel, kSmemBytes); e != cudaSuccess) return e;
  // All of the SM's unified L1/shared memory as shared: three CTAs of 74 KB per SM.
  if (cudaError_t e =
          cudaFuncSetAttribute(SageAttnWgmmaKernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                               cudaSharedmemCarveoutMaxShared);
      e != cudaSuccess) {
    return e;
  }
  const dim3 grid(static_cast<unsigned>(a.nq), static_cast<unsigned>(a.heads));
  SageAttnWgmmaKernel<<<grid, kThreads, kSmemBytes, stream>>>(tq, tk, tv, a);
  return cudaGetLastError();
}

}  // namespace
#endif  // TV_HAVE_SM90A

bool SageWgmmaBuilt() {
#if defined(TV_HAVE_SM90A)
  return true;
#else
  return false;
#endif
}

size_t SageWgmmaSmemBytes() {
#if defined(TV_HAVE_SM90A)
  return kSmemBytes;
#else
  return 0;
#endif
}

cudaError_t LaunchSageAttnWgmma(const SageAttnArgs& a, cudaStream_t stream) {
#if defined(TV_HAVE_SM90A)
  return Launch(a, stream);
#else
  (void)a;
  (void)stream;
  return cudaErrorNotSupported;
#endif
}

}  // namespace turbovid::kernels::sla_plan
