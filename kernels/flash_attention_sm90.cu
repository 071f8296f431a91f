// Hopper (sm_90a) flash attention, FA3-style: out = softmax(scale * q k^T) v, q/k/v/out [L, N, 128]
// bf16. One CTA = 128 query rows of one head, 3 warpgroups: WG0 produces (one thread issues TMA
// loads of Q and of 128-key K/V tiles into a 2- or 3-stage ring guarded by mbarriers), WG1/WG2
// consume 64 rows each: S = Q K^T by wgmma (both operands in shared memory), online softmax in
// registers (base 2, scale folded in), O += P V by wgmma with P from registers. Variants (Cfg):
// ping-pong turns of the consumer warpgroups, 3-stage rings, persistent CTAs; FaSm90Variant
// (TV_FA_SM90) picks one for comparisons. (2-CTA clusters sharing K/V by TMA multicast were tried
// and dropped: on the H100 they ran at 452-482 TFLOP/s against 614-679 without.) Built for sm_90a
// only (kernels/CMakeLists.txt); the device code is compiled out for any other target.
#include <cuda.h>  // CUtensorMap and its enums (types only: no libcuda link)
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "kernels/ptx.cuh"
#include "kernels/sm90_util.cuh"
#include "kernels/tma.h"

namespace turbovid::kernels {
#if defined(TV_HAVE_SM90A)
namespace {

using bf16 = __nv_bfloat16;

constexpr int kD = 128;        // head dim (= Dv)
constexpr int kBlockM = 128;   // query rows per CTA: 2 consumer warpgroups x 64
constexpr int kBlockN = 128;   // keys per tile
constexpr int kThreads = 384;  // 3 warpgroups
constexpr int kHalfCols = 64;  // one TMA box / one 128-byte swizzle row: 64 bf16
// Shared-memory layout in bytes from a 1024-aligned base (the 128-byte swizzle repeats every
// 1024 bytes, and TMA and wgmma both apply it from the address bits). Every tile is stored as two
// column halves (head dims 0-63, 64-127), each [rows][128 B] swizzled.
constexpr int kQHalfBytes = kBlockM * 128;   // 16 KB
constexpr int kKVHalfBytes = kBlockN * 128;  // 16 KB
constexpr int kQBytes = 2 * kQHalfBytes;     // 32 KB
constexpr int kKVBytes = 2 * kKVHalfBytes;   // 32 KB per K or V stage
constexpr int kConsumerWarps = 8;            // arrivals per CTA that free a stage
constexpr int kMaxSmemOptin = 227 * 1024;    // sm_90 opt-in shared memory per block
constexpr float kLog2e = 1.4426950408889634f;
// Named barriers: 0 is __syncthreads, 1 + cw the epilogue of consumer warpgroup cw, 3 + cw the
// ping-pong turn of consumer warpgroup cw.
constexpr int kEpilogueBar = 1;
constexpr int kTurnBar = 3;

// One kernel variant. kStages: depth of the K and V rings (3 fills the 227 KB opt-in). kPingPong:
// the two consumer warpgroups take turns issuing their GEMMs (named barriers), so the tensor cores
// run one warpgroup's S and P V while the other does its softmax. kPersistent: one CTA per SM walks
// over (query block, head) work items with a double-buffered Q tile, so the next item's Q and
// first K/V tiles load while this one finishes (short key sequences: cross-attention).
template <int kStagesV, bool kPingPongV, bool kPersistentV>
struct Cfg {
  static constexpr int kStages = kStagesV;
  static constexpr bool kPingPong = kPingPongV;
  static constexpr bool kPersistent = kPersistentV;
  static constexpr int kQBufs = kPersistent ? 2 : 1;
  static constexpr int kQOff = 0;
  static constexpr int kKOff = kQOff + kQBufs * kQBytes;
  static constexpr int kVOff = kKOff + kStages * kKVBytes;
  static constexpr int kBarOff = kVOff + kStages * kKVBytes;
  // q_full/q_empty per Q buffer, then k_full, k_empty, v_full, v_empty per stage.
  static constexpr int kNumBars = 2 * kQBufs + 4 * kStages;
  static constexpr int kSmemBytes = kBarOff + 8 * kNumBars + 1024;  // + slack to align the base
  static_assert(kSmemBytes <= kMaxSmemOptin, "Q and the K/V ring do not fit in shared memory");
};

struct Sm90Params {
  bf16* out;  // [lq, heads, 128]
  int lq;
  int lk;
  int heads;
  int blocks_q;  // query blocks per head
  float scale_log2;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

using ptx::Exp2;
using ptx::PackBf16;
using ptx::QuadMax;
using ptx::QuadSum;
using ptx::SmemAddr;

// mbarriers, matrix descriptors, wgmma fence / commit / wait.
using namespace ::turbovid::kernels::sm90;  // kernels/sm90_util.cuh

// --- named barriers (a warpgroup pair: `count` threads in all) ---------------------------------
__device__ __forceinline__ void NamedSync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void NamedArrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <class C>
__global__ void __launch_bounds__(kThreads, 1)
    FlashSm90Kernel(const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap tk,
                    const __grid_constant__ CUtensorMap tv, Sm90Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kStages = C::kStages, kQBufs = C::kQBufs;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (SmemAddr(smem_raw) + 1023u) & ~1023u;
  unsigned char* base_ptr = smem_raw + (base - SmemAddr(smem_raw));
  const uint32_t bars = base + C::kBarOff;
  auto q_full = [&](int b) { return bars + 8u * b; };
  auto q_empty = [&](int b) { return bars + 8u * (kQBufs + b); };
  auto k_full = [&](int s) { return bars + 8u * (2 * kQBufs + s); };
  auto k_empty = [&](int s) { return bars + 8u * (2 * kQBufs + kStages + s); };
  auto v_full = [&](int s) { return bars + 8u * (2 * kQBufs + 2 * kStages + s); };
  auto v_empty = [&](int s) { return bars + 8u * (2 * kQBufs + 3 * kStages + s); };

  const int tid = threadIdx.x, lane = tid & 31;
  const int wg = tid >> 7;  // 0 producer, 1..2 consumers
  const int n_tiles = (p.lk + kBlockN - 1) / kBlockN;
  // Work items w = head * blocks_q + query block. Without kPersistent each CTA takes one
  // (blockIdx.x = query block, blockIdx.y = head); with it CTA x takes x, x + gridDim.x, ...
  // so that the CTAs running at any time share a head (K/V reuse in L2).
  const int n_items = p.blocks_q * p.heads;
  const int first = C::kPersistent ? static_cast<int>(blockIdx.x)
                                   : static_cast<int>(blockIdx.y * gridDim.x + blockIdx.x);
  const int stride = C::kPersistent ? static_cast<int>(gridDim.x) : n_items;

  if (tid == 0) {
    for (int b = 0; b < kQBufs; ++b) {
      BarInit(q_full(b), 1);
      BarInit(q_empty(b), kConsumerWarps);
    }
    for (int s = 0; s < kStages; ++s) {
      BarInit(k_full(s), 1);
      BarInit(v_full(s), 1);
      BarInit(k_empty(s), kConsumerWarps);
      BarInit(v_empty(s), kConsumerWarps);
    }
    // Make the initialised barriers visible to the async proxy (the TMA unit).
    FenceBarrierInit();
  }
  __syncthreads();

  if (wg == 0) {
    // Producer: a single thread issues every copy; the rest of the warpgroup idles with few
    // registers so the consumers can take them (setmaxnreg).
    RegDealloc<40>();
    if (tid == 0) {
      int it = 0;  // K/V tiles loaded so far: ring slot it % kStages, pass it / kStages
      for (int w = first, i = 0; w < n_items; w += stride, ++i) {
        const int h = w / p.blocks_q, q0 = (w % p.blocks_q) * kBlockM;
        const int b = i % kQBufs;
        BarWait(q_empty(b), ((i / kQBufs) & 1) ^ 1);
        BarExpectTx(q_full(b), kQBytes);
        TmaLoad3d(base + C::kQOff + b * kQBytes, &tq, q_full(b), 0, h, q0);
        TmaLoad3d(base + C::kQOff + b * kQBytes + kQHalfBytes, &tq, q_full(b), kHalfCols, h, q0);
        for (int j = 0; j < n_tiles; ++j, ++it) {
          const int s = it % kStages;
          const uint32_t parity = ((it / kStages) & 1) ^ 1;
          const int k0 = j * kBlockN;
          // Rows past lk are zero-filled by TMA (and still counted in the transaction bytes).
          BarWait(k_empty(s), parity);
          BarExpectTx(k_full(s), kKVBytes);
          TmaLoad3d(base + C::kKOff + s * kKVBytes, &tk, k_full(s), 0, h, k0);
          TmaLoad3d(base + C::kKOff + s * kKVBytes + kKVHalfBytes, &tk, k_full(s), kHalfCols, h,
                    k0);
          BarWait(v_empty(s), parity);
          BarExpectTx(v_full(s), kKVBytes);
          TmaLoad3d(base + C::kVOff + s * kKVBytes, &tv, v_full(s), 0, h, k0);
          TmaLoad3d(base + C::kVOff + s * kKVBytes + kKVHalfBytes, &tv, v_full(s), kHalfCols, h,
                    k0);
        }
      }
    }
  } else {
    RegAlloc<232>();
    const int cw = wg - 1;                  // consumer warpgroup: rows 64 cw .. 64 cw + 63
    const int wtid = tid - 128 * wg;        // thread within the warpgroup
    const int warp = wtid >> 5;             // warp within the warpgroup: rows 16 warp ..
    const int g = lane >> 2, t = lane & 3;  // this thread: rows g and g + 8, columns 2t, 2t + 1
    const float sl2 = p.scale_log2;

    float s_acc[64];    // S of the current tile, then its probabilities (fp32)
    float o_acc[64];    // O, unnormalised
    uint32_t pa[8][4];  // P of the previous tile as bf16 A fragments (one per 16 keys)
#pragma unroll
    for (int i = 0; i < 64; ++i) s_acc[i] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) pa[i][0] = pa[i][1] = pa[i][2] = pa[i][3] = 0u;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;  // reset for every work item
    uint32_t q_base = 0;

    // S = Q K^T: 8 k-steps of 16 head dims; each 128-byte swizzle row holds 4 of them, so a
    // k-step moves the start address 32 bytes (the swizzle is applied from address bits).
    auto issue_s = [&](int s) {
      const uint32_t k_base = base + C::kKOff + s * kKVBytes;
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        const uint32_t off = (kk & 3) * 32u;
        const uint64_t da = Desc(q_base + (kk >> 2) * kQHalfBytes + off, 16, 1024);
        const uint64_t db = Desc(k_base + (kk >> 2) * kKVHalfBytes + off, 16, 1024);
        WgmmaSS<0, 0>(s_acc, da, db, kk > 0 ? 1 : 0);
      }
    };
    // O += P V: 8 k-steps of 16 keys. V is N-major (head dims contiguous): its two 64-column
    // halves are the leading byte offset apart, 8-key groups 1024 bytes apart.
    auto issue_pv = [&](int s) {
      const uint32_t v_base = base + C::kVOff + s * kKVBytes;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        WgmmaRS<1>(o_acc, pa[kk], Desc(v_base + kk * 16 * 128, kKVHalfBytes, 1024), 1);
      }
    };
    // Online softmax of tile j in s_acc (rows g: elements 4nb, 4nb+1; g + 8: 4nb+2, 4nb+3):
    // masks keys past lk, updates m and l, leaves the probabilities in s_acc, and returns the
    // factors by which O must be rescaled.
    auto softmax = [&](int j, float& c0, float& c1) {
      if ((j + 1) * kBlockN > p.lk) {  // keys past lk (zero-filled K rows) get -inf
#pragma unroll
        for (int nb = 0; nb < kBlockN / 8; ++nb) {
          const int col = j * kBlockN + nb * 8 + 2 * t;
          if (col >= p.lk) s_acc[4 * nb] = s_acc[4 * nb + 2] = -INFINITY;
          if (col + 1 >= p.lk) s_acc[4 * nb + 1] = s_acc[4 * nb + 3] = -INFINITY;
        }
      }
      float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
      for (int nb = 0; nb < kBlockN / 8; ++nb) {
        mx0 = fmaxf(mx0, fmaxf(s_acc[4 * nb], s_acc[4 * nb + 1]));
        mx1 = fmaxf(mx1, fmaxf(s_acc[4 * nb + 2], s_acc[4 * nb + 3]));
      }
      const float mn0 = fmaxf(m0, QuadMax(mx0) * sl2), mn1 = fmaxf(m1, QuadMax(mx1) * sl2);
      // A row with no finite score yet keeps offset 0 so that exp2(-inf - offset) stays 0.
      const float b0 = mn0 == -INFINITY ? 0.f : mn0, b1 = mn1 == -INFINITY ? 0.f : mn1;
      c0 = Exp2(m0 - b0);
      c1 = Exp2(m1 - b1);
      m0 = mn0;
      m1 = mn1;
      l0 *= c0;
      l1 *= c1;
#pragma unroll
      for (int nb = 0; nb < kBlockN / 8; ++nb) {
        s_acc[4 * nb] = Exp2(fmaf(s_acc[4 * nb], sl2, -b0));
        s_acc[4 * nb + 1] = Exp2(fmaf(s_acc[4 * nb + 1], sl2, -b0));
        s_acc[4 * nb + 2] = Exp2(fmaf(s_acc[4 * nb + 2], sl2, -b1));
        s_acc[4 * nb + 3] = Exp2(fmaf(s_acc[4 * nb + 3], sl2, -b1));
        l0 += s_acc[4 * nb] + s_acc[4 * nb + 1];
        l1 += s_acc[4 * nb + 2] + s_acc[4 * nb + 3];
      }
    };
    // P as A fragments: k-step kk takes n-blocks 2kk (registers 0: row g, 1: row g + 8) and
    // 2kk + 1 (registers 2, 3), the same pairing as mma.sync's m16n8k16 A operand.
    auto pack = [&]() {
#pragma unroll
      for (int nb = 0; nb < kBlockN / 8; ++nb) {
        pa[nb >> 1][(nb & 1) * 2] = PackBf16(s_acc[4 * nb], s_acc[4 * nb + 1]);
        pa[nb >> 1][(nb & 1) * 2 + 1] = PackBf16(s_acc[4 * nb + 2], s_acc[4 * nb + 3]);
      }
    };
    // Frees a K/V stage: one arrival per warp.
    auto release = [&](uint32_t bar) {
      __syncwarp();
      if (lane == 0) BarArrive(bar);
    };
    // Ping-pong: every GEMM issue (n_tiles + 1 of them per work item and warpgroup) waits for
    // this warpgroup's turn and then hands the turn to the other one. Warpgroup 1 hands over
    // first (below) and skips its very last hand-over, so each barrier gets exactly as many
    // arrivals as syncs; turns strictly alternate, so no barrier sees a second arrival before
    // its sync completed.
    auto turn_wait = [&]() {
      if constexpr (C::kPingPong) NamedSync(kTurnBar + cw, 256);
    };
    auto turn_pass = [&]() {
      if constexpr (C::kPingPong) NamedArrive(kTurnBar + 1 - cw, 256);
    };
    if constexpr (C::kPingPong) {
      if (cw == 1) NamedArrive(kTurnBar, 256);  // warpgroup 0 issues first
    }

    int it = 0;  // K/V tiles consumed so far, in the producer's order
    for (int w = first, i = 0; w < n_items; w += stride, ++i) {
      const int h = w / p.blocks_q, q0 = (w % p.blocks_q) * kBlockM;
      const int b = i % kQBufs;
      const bool last_item = w + stride >= n_items;
      q_base = base + C::kQOff + b * kQBytes + cw * 64 * 128;
#pragma unroll
      for (int r = 0; r < 64; ++r) o_acc[r] = 0.f;
      m0 = m1 = -INFINITY;
      l0 = l1 = 0.f;

      // Tile 0: S, softmax, P. Then for each later tile j, S_j and P_{j-1} V_{j-1} are issued
      // together and the softmax of tile j runs on the CUDA cores while the tensor cores still
      // do P_{j-1} V_{j-1} (O and P are left alone until that group has completed).
      float c0 = 1.f, c1 = 1.f;
      {
        const int s = it % kStages;
        BarWait(q_full(b), (i / kQBufs) & 1);
        BarWait(k_full(s), (it / kStages) & 1);
        turn_wait();
        WgFence();
        Pin(s_acc);
        issue_s(s);
        WgCommit();
        turn_pass();
        WgWait<0>();
        Pin(s_acc);
        release(k_empty(s));
        softmax(0, c0, c1);  // O is still zero: nothing to rescale
        pack();
        ++it;
      }
      for (int j = 1; j < n_tiles; ++j, ++it) {
        const int s = it % kStages, sp = (it - 1) % kStages;
        BarWait(k_full(s), (it / kStages) & 1);
        BarWait(v_full(sp), ((it - 1) / kStages) & 1);
        turn_wait();
        WgFence();
        Pin(s_acc);
        Pin(o_acc);
        Pin(pa);
        issue_s(s);
        WgCommit();
        issue_pv(sp);
        WgCommit();
        turn_pass();
        WgWait<1>();  // S_j is done (groups complete in order); P_{j-1} V_{j-1} may still run
        Pin(s_acc);
        release(k_empty(s));
        softmax(j, c0, c1);
        WgWait<0>();
        Pin(o_acc);
        Pin(pa);
        release(v_empty(sp));
#pragma unroll
        for (int nb = 0; nb < kD / 8; ++nb) {
          o_acc[4 * nb] *= c0;
          o_acc[4 * nb + 1] *= c0;
          o_acc[4 * nb + 2] *= c1;
          o_acc[4 * nb + 3] *= c1;
        }
        pack();
      }
      {
        const int s = (it - 1) % kStages;
        BarWait(v_full(s), ((it - 1) / kStages) & 1);
        turn_wait();
        WgFence();
        Pin(o_acc);
        Pin(pa);
        issue_pv(s);
        WgCommit();
        if (cw == 0 || !last_item) turn_pass();
        WgWait<0>();
        Pin(o_acc);
        Pin(pa);
        release(v_empty(s));
      }

      // Epilogue: normalise, stage this warpgroup's 64 rows in its own (no longer read) rows of
      // the Q buffer with the same swizzle, then write whole 16-byte chunks of rows below lq.
      l0 = QuadSum(l0);
      l1 = QuadSum(l1);
      const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
      const int r0 = cw * 64 + warp * 16 + g;  // row in the CTA tile; r0 + 8 is the other one
      unsigned char* qbuf = base_ptr + C::kQOff + b * kQBytes;
#pragma unroll
      for (int nb = 0; nb < kD / 8; ++nb) {
        const int half = nb >> 3, chunk = nb & 7;
        unsigned char* h0 = qbuf + half * kQHalfBytes;
        *reinterpret_cast<uint32_t*>(h0 + r0 * 128 + ((chunk ^ (r0 & 7)) << 4) + 4 * t) =
            PackBf16(o_acc[4 * nb] * inv0, o_acc[4 * nb + 1] * inv0);
        *reinterpret_cast<uint32_t*>(h0 + (r0 + 8) * 128 + ((chunk ^ ((r0 + 8) & 7)) << 4) +
                                     4 * t) =
            PackBf16(o_acc[4 * nb + 2] * inv1, o_acc[4 * nb + 3] * inv1);
      }
      NamedSync(kEpilogueBar + cw, 128);  // this warpgroup's rows only
      const int64_t row_stride = static_cast<int64_t>(p.heads) * kD;
      bf16* og = p.out + static_cast<int64_t>(h) * kD;
#pragma unroll
      for (int k = 0; k < 64 * 16 / 128; ++k) {
        const int e = wtid + k * 128;
        const int r = cw * 64 + (e >> 4), c = e & 15;
        if (q0 + r < p.lq) {
          const unsigned char* src =
              qbuf + (c >> 3) * kQHalfBytes + r * 128 + (((c & 7) ^ (r & 7)) << 4);
          *reinterpret_cast<uint4*>(og + (q0 + r) * row_stride + c * 8) =
              *reinterpret_cast<const uint4*>(src);
        }
      }
      if constexpr (C::kPersistent) {
        // The Q buffer may now be refilled by TMA: order this thread's generic-proxy staging
        // writes and reads before the async-proxy writes, then free it (one arrival per warp).
        FenceProxyAsync();
        __syncwarp();
        if (lane == 0) BarArrive(q_empty(b));
      }
    }
  }
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

// The compiled variants (Cfg<stages, ping-pong, persistent>). KernelOptions::fa_sm90
// (TV_FA_SM90=<name>) forces one (comparisons on a GPU); otherwise short key sequences
// (cross-attention: a few tiles per query block, where start-up and epilogue dominate) and long
// ones each get a default.
using S2 = Cfg<2, false, false>;
using S2Pp = Cfg<2, true, false>;
using S3Pp = Cfg<3, true, false>;
using S2PpP = Cfg<2, true, true>;
// H100, turbovid-kernel-bench --path sm90 (TFLOP/s at [12, 32760] / [40, 75600] / cross
// [12, 32760 x 512]): s2 614 / 561 / 418, s2pp 679 / 620 / 470, s3pp 639 / 624 / 464,
// s2ppp 639 / 592 / 552 (docs/benchmarks.md).
constexpr FaSm90Variant kDefaultLongKeys = FaSm90Variant::kS2Pp;
constexpr FaSm90Variant kDefaultShortKeys = FaSm90Variant::kS2PpP;
constexpr int64_t kShortKeys = 4 * kBlockN;

FaSm90Variant PickVariant(FaSm90Variant forced, int64_t lk) {
  if (forced != FaSm90Variant::kAuto) return forced;
  return lk <= kShortKeys ? kDefaultShortKeys : kDefaultLongKeys;
}

template <class C>
cudaError_t LaunchVariant(const CUtensorMap& tq, const CUtensorMap& tk, const CUtensorMap& tv,
                          Sm90Params p, cudaStream_t stream) {
  cudaError_t e = cudaFuncSetAttribute(FlashSm90Kernel<C>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmemBytes);
  if (e != cudaSuccess) return e;
  p.blocks_q = (p.lq + kBlockM - 1) / kBlockM;
  // Work items are numbered in int inside the kernel (lq < 2^30, so blocks_q < 2^23).
  const int64_t n_items = static_cast<int64_t>(p.blocks_q) * p.heads;
  if (n_items >= (int64_t{1} << 30)) return cudaErrorInvalidValue;
  dim3 grid(static_cast<unsigned>(p.blocks_q), static_cast<unsigned>(p.heads));
  if (C::kPersistent) {
    int dev = 0, sms = 0;
    e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e != cudaSuccess) return e;
    grid = dim3(static_cast<unsigned>(std::min<int64_t>(n_items, std::max(sms, 1))));
  }
  FlashSm90Kernel<C><<<grid, kThreads, C::kSmemBytes, stream>>>(tq, tk, tv, p);
  return cudaGetLastError();
}

}  // namespace
#endif  // TV_HAVE_SM90A

// On: H100 parity (13 attention cases) and turbovid-kernel-bench --check passed for every variant
// (TV_FA_SM90=s2|s2pp|s3pp|s2ppp).
// Builds without sm_90a report false. TV_ATTENTION=flash (KernelOptions::attention) forces the
// portable kernel.
bool FlashAttentionSm90Enabled() {
#if defined(TV_HAVE_SM90A)
  return true;
#else
  return false;
#endif
}

cudaError_t LaunchFlashAttentionSm90(const AttentionArgs& args, cudaStream_t stream,
                                     FaSm90Variant variant) {
#if !defined(TV_HAVE_SM90A)
  (void)args;
  (void)stream;
  (void)variant;
  return cudaErrorNotSupported;
#else
  if (!FlashAttentionSupports(args) || args.d != kD) return cudaErrorNotSupported;
  if (args.lq == 0) return cudaSuccess;
  CUtensorMap tq, tk, tv;
  if (!tma::EncodeHeads128(&tq, args.q.data, args.lq, args.heads, kBlockM) ||
      !tma::EncodeHeads128(&tk, args.k.data, args.lk, args.heads, kBlockN) ||
      !tma::EncodeHeads128(&tv, args.v.data, args.lk, args.heads, kBlockN)) {
    return cudaErrorInvalidValue;
  }
  Sm90Params p;
  p.out = static_cast<bf16*>(args.out.data);
  p.lq = static_cast<int>(args.lq);
  p.lk = static_cast<int>(args.lk);
  p.heads = static_cast<int>(args.heads);
  p.blocks_q = 0;  // set per variant
  p.scale_log2 = args.scale * kLog2e;
  switch (PickVariant(variant, args.lk)) {
    case FaSm90Variant::kAuto:  // PickVariant never returns it
    case FaSm90Variant::kS2:
      return LaunchVariant<S2>(tq, tk, tv, p, stream);
    case FaSm90Variant::kS2Pp:
      return LaunchVariant<S2Pp>(tq, tk, tv, p, stream);
    case FaSm90Variant::kS3Pp:
      return LaunchVariant<S3Pp>(tq, tk, tv, p, stream);
    case FaSm90Variant::kS2PpP:
      return LaunchVariant<S2PpP>(tq, tk, tv, p, stream);
  }
  return cudaErrorInvalidValue;
#endif
}

}  // namespace turbovid::kernels
