// SLA block-sparse softmax branch on Hopper (sm_90a), D = 128, 128-row query blocks, 64-row key
// blocks (docs/model-math.md §9). One CTA = one query block of one head, 3 warpgroups as the
// dense kernel (flash_attention_sm90.cu): WG0 produces (one thread walks the LUT row of its query
// block and issues TMA loads: Q once, then per stage two selected key blocks of K and of V, each
// block two 64-row × 64-column boxes, into a 2-stage mbarrier ring), WG1/WG2 consume 64 query rows
// each: S = Q·Kᵀ over 128 keys by wgmma from shared memory, online softmax in registers, O += P·V
// by wgmma with P from registers. An odd K_sel loads its last block twice and masks the copy; keys
// past L (the tail key block, zero-filled by TMA) are masked. The epilogue is the portable
// kernels' (sla_tiles.cuh LinearEpilogue): out = O/l + φ(q)·M / (φ(q)·Σφ(k) + 1e-5·Σφ(q)) + b.
// Built for sm_90a only (kernels/CMakeLists.txt); without it the launcher reports NotSupported.
#include <cuda.h>  // CUtensorMap and its enums (types only: no libcuda link)
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

#include "kernels/sla_tiles.cuh"
#include "kernels/sm90_util.cuh"
#include "kernels/tma.h"

namespace turbovid::kernels::sla_tiles {
#if defined(TV_HAVE_SM90A)
namespace {

constexpr int kD = 128;        // head dim
constexpr int kBm = 128;       // query rows per CTA (2 consumer warpgroups × 64)
constexpr int kBk = 64;        // keys per key block = rows of one TMA box
constexpr int kBn = 2 * kBk;   // keys per stage: two selected key blocks
constexpr int kStages = 2;     // K and V ring depth each
constexpr int kThreads = 384;  // 3 warpgroups
constexpr int kHalfCols = 64;  // one TMA box / one 128-byte swizzle row: 64 bf16
// Shared memory from a 1024-aligned base (the 128-byte swizzle repeats every 1024 bytes; TMA and
// wgmma apply it from the address bits). Q, K and V tiles are two column halves (head dims 0-63,
// 64-127), each [rows][128 B] swizzled; a K/V stage holds key block a in rows 0-63 and key block
// b in rows 64-127 of each half (8 KB in: still 1024-aligned, so one swizzled 128-row tile).
constexpr uint32_t kQHalf = kBm * 128;      // 16 KB
constexpr uint32_t kKvHalf = kBn * 128;     // 16 KB
constexpr uint32_t kBlockRows = kBk * 128;  // 8 KB: where the second key block starts in a half
constexpr uint32_t kQBytes = 2 * kQHalf;
constexpr uint32_t kKvBytes = 2 * kKvHalf;  // 32 KB per K or V stage = the tx bytes of 4 boxes
constexpr uint32_t kQOff = 0;
constexpr uint32_t kKOff = kQOff + kQBytes;
constexpr uint32_t kVOff = kKOff + kStages * kKvBytes;
constexpr uint32_t kMOff = kVOff + kStages * kKvBytes;  // M_h [128, 128] bf16, Swz<16> rows
constexpr uint32_t kVecOff = kMOff + kD * kD * 2;       // ksum [128], bias [128] fp32
constexpr uint32_t kBarOff = kVecOff + 2 * kD * 4;
constexpr int kNumBars = 1 + 4 * kStages;  // q_full, k_full/k_empty, v_full/v_empty
constexpr size_t kSmemBytes = kBarOff + 8 * kNumBars + 1024;  // + slack to align the base
constexpr int kConsumerWarps = 8;                             // arrivals that free a stage
constexpr uint32_t kStageBytes = 16 * kD * 2;  // epilogue staging per consumer warp (16 rows)
static_assert(kConsumerWarps * kStageBytes <= kStages * kKvBytes, "staging fits the K ring");
static_assert(kBarOff % 8 == 0, "mbarriers are 8-byte aligned");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// mbarriers, matrix descriptors, wgmma fence / commit / wait.
using namespace ::turbovid::kernels::sm90;  // kernels/sm90_util.cuh

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

__global__ void __launch_bounds__(kThreads, 1)
    SlaSparseSm90Kernel(const __grid_constant__ CUtensorMap tq,
                        const __grid_constant__ CUtensorMap tk,
                        const __grid_constant__ CUtensorMap tv, const SlaSm90Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw_addr = SmemAddr(smem_raw);
  const uint32_t base = (raw_addr + 1023u) & ~1023u;
  unsigned char* base_ptr = smem_raw + (base - raw_addr);
  const uint32_t q_full = base + kBarOff;
  auto k_full = [&](int s) { return base + kBarOff + 8u * (1 + s); };
  auto k_empty = [&](int s) { return base + kBarOff + 8u * (1 + kStages + s); };
  auto v_full = [&](int s) { return base + kBarOff + 8u * (1 + 2 * kStages + s); };
  auto v_empty = [&](int s) { return base + kBarOff + 8u * (1 + 3 * kStages + s); };

  const int tid = threadIdx.x, lane = tid & 31;
  const int wg = tid >> 7;  // 0 producer, 1..2 consumers
  const int qb = blockIdx.x, h = blockIdx.y;
  const int q0 = qb * kBm;
  const int l = static_cast<int>(p.l);
  const int ksel = p.ksel;
  const int n_stages = (ksel + 1) / 2;
  const int* lut = p.lut + (static_cast<int64_t>(h) * p.nq + qb) * ksel;

  if (tid == 0) {
    BarInit(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      BarInit(k_full(s), 1);
      BarInit(v_full(s), 1);
      BarInit(k_empty(s), kConsumerWarps);
      BarInit(v_empty(s), kConsumerWarps);
    }
    // Make the initialised barriers visible to the async proxy (the TMA unit) as well.
    FenceBarrierInit();
  }
  __syncthreads();

  if (wg == 0) {
    // Producer: one thread issues every copy; the warpgroup gives its registers to the consumers.
    RegDealloc<40>();
    if (tid == 0) {
      BarExpectTx(q_full, kQBytes);
      TmaLoad3d(base + kQOff, &tq, q_full, 0, h, q0);
      TmaLoad3d(base + kQOff + kQHalf, &tq, q_full, kHalfCols, h, q0);
      for (int j = 0; j < n_stages; ++j) {
        const int s = j % kStages;
        const uint32_t parity = ((j / kStages) & 1) ^ 1;
        const int ra = lut[2 * j] * kBk;
        // An odd K_sel's last stage loads block a twice: every byte the consumers read is then
        // written (the copy's keys are masked), and the tx count stays kKvBytes.
        const int rb = (2 * j + 1 < ksel ? lut[2 * j + 1] : lut[2 * j]) * kBk;
        const uint32_t kd = base + kKOff + s * kKvBytes, vd = base + kVOff + s * kKvBytes;
        BarWait(k_empty(s), parity);
        BarExpectTx(k_full(s), kKvBytes);
        TmaLoad3d(kd, &tk, k_full(s), 0, h, ra);
        TmaLoad3d(kd + kKvHalf, &tk, k_full(s), kHalfCols, h, ra);
        TmaLoad3d(kd + kBlockRows, &tk, k_full(s), 0, h, rb);
        TmaLoad3d(kd + kKvHalf + kBlockRows, &tk, k_full(s), kHalfCols, h, rb);
        BarWait(v_empty(s), parity);
        BarExpectTx(v_full(s), kKvBytes);
        TmaLoad3d(vd, &tv, v_full(s), 0, h, ra);
        TmaLoad3d(vd + kKvHalf, &tv, v_full(s), kHalfCols, h, ra);
        TmaLoad3d(vd + kBlockRows, &tv, v_full(s), 0, h, rb);
        TmaLoad3d(vd + kKvHalf + kBlockRows, &tv, v_full(s), kHalfCols, h, rb);
      }
    }
  } else {
    RegAlloc<232>();
    const int cw = wg - 1;                   // consumer warpgroup: rows 64 cw .. 64 cw + 63
    const int ctid = tid - 128;              // thread among both consumer warpgroups
    const int warp = (tid - 128 * wg) >> 5;  // warp within the warpgroup: rows 16 warp ..
    const int t = lane & 3;                  // this thread: columns 2t, 2t + 1 of each n8 tile
    const float sl2 = p.scale * 1.4426950408889634f;

    // The epilogue's operands (M_h, ksum, bias) load while the main loop runs.
    LoadM<kD, 256>(base + kMOff, p.m16 + h * kD * kD, ctid);
    CpAsyncCommit();
    float* s_vec = reinterpret_cast<float*>(base_ptr + kVecOff);
    if (ctid < kD) {
      s_vec[ctid] = p.ksum[h * kD + ctid];
      s_vec[kD + ctid] = detail::Load(p.bias, ctid);
    }

    float s_acc[16][4];  // S of the current stage, then its probabilities (fp32)
    float o[1][16][4];   // O, unnormalised (rows 16 warp + g, + 8; n8 tiles over D)
    uint32_t pa[8][4];   // P of the previous stage as bf16 A fragments (16 keys each)
#pragma unroll
    for (int i = 0; i < 16; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) s_acc[i][e] = o[0][i][e] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) pa[i][0] = pa[i][1] = pa[i][2] = pa[i][3] = 0u;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const uint32_t q_base = base + kQOff + cw * 64 * 128;

    // S = Q Kᵀ: 8 k-steps of 16 head dims; a 128-byte swizzle row holds 4 of them, so a k-step
    // moves the start address 32 bytes.
    auto issue_s = [&](int s) {
      const uint32_t k_base = base + kKOff + s * kKvBytes;
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        const uint32_t off = (kk & 3) * 32u;
        WgmmaSS<0, 0>(s_acc, Desc(q_base + (kk >> 2) * kQHalf + off, 16, 1024),
                      Desc(k_base + (kk >> 2) * kKvHalf + off, 16, 1024), kk > 0 ? 1 : 0);
      }
    };
    // O += P V: 8 k-steps of 16 keys. V is N-major (head dims contiguous): its two 64-column
    // halves are the leading byte offset apart, 8-key groups 1024 bytes apart.
    auto issue_pv = [&](int s) {
      const uint32_t v_base = base + kVOff + s * kKvBytes;
#pragma unroll
      for (int kk = 0; kk < kBn / 16; ++kk) {
        WgmmaRS<1>(o[0], pa[kk], Desc(v_base + kk * 16 * 128, kKvHalf, 1024), 1);
      }
    };
    // Keys of stage j that exist: block a's first va rows (keys 0-63), block b's first vb rows
    // (keys 64-127; 0 when an odd K_sel's last stage repeats block a).
    auto stage_valid = [&](int j, int& va, int& vb) {
      va = min(kBk, l - lut[2 * j] * kBk);
      vb = 2 * j + 1 < ksel ? min(kBk, l - lut[2 * j + 1] * kBk) : 0;
    };
    // Online softmax of the stage in s_acc (row g: elements 0, 1; row g + 8: 2, 3): masks missing
    // keys, updates m and l, leaves the probabilities in s_acc and returns O's rescale factors.
    auto softmax = [&](int va, int vb, float& c0, float& c1) {
      if (va < kBk || vb < kBk) {
#pragma unroll
        for (int nb = 0; nb < kBn / 8; ++nb) {
          const int col = (nb % 8) * 8 + 2 * t, lim = nb < 8 ? va : vb;
          if (col >= lim) s_acc[nb][0] = s_acc[nb][2] = -INFINITY;
          if (col + 1 >= lim) s_acc[nb][1] = s_acc[nb][3] = -INFINITY;
        }
      }
      float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
      for (int nb = 0; nb < kBn / 8; ++nb) {
        mx0 = fmaxf(mx0, fmaxf(s_acc[nb][0], s_acc[nb][1]));
        mx1 = fmaxf(mx1, fmaxf(s_acc[nb][2], s_acc[nb][3]));
      }
      const float mn0 = fmaxf(m0, QuadMax(mx0) * sl2), mn1 = fmaxf(m1, QuadMax(mx1) * sl2);
      // Block a always has a real key, so mn is finite; the guard keeps exp2 away from -inf - -inf.
      const float b0 = mn0 == -INFINITY ? 0.f : mn0, b1 = mn1 == -INFINITY ? 0.f : mn1;
      c0 = Exp2(m0 - b0);
      c1 = Exp2(m1 - b1);
      m0 = mn0;
      m1 = mn1;
      l0 *= c0;
      l1 *= c1;
#pragma unroll
      for (int nb = 0; nb < kBn / 8; ++nb) {
        s_acc[nb][0] = Exp2(fmaf(s_acc[nb][0], sl2, -b0));
        s_acc[nb][1] = Exp2(fmaf(s_acc[nb][1], sl2, -b0));
        s_acc[nb][2] = Exp2(fmaf(s_acc[nb][2], sl2, -b1));
        s_acc[nb][3] = Exp2(fmaf(s_acc[nb][3], sl2, -b1));
        l0 += s_acc[nb][0] + s_acc[nb][1];
        l1 += s_acc[nb][2] + s_acc[nb][3];
      }
    };
    // P as A fragments: k-step kk takes n8 tiles 2kk (registers 0: row g, 1: row g + 8) and
    // 2kk + 1 (registers 2, 3), mma.sync's m16n8k16 A layout.
    auto pack = [&]() {
#pragma unroll
      for (int nb = 0; nb < kBn / 8; ++nb) {
        pa[nb >> 1][(nb & 1) * 2] = PackBf16(s_acc[nb][0], s_acc[nb][1]);
        pa[nb >> 1][(nb & 1) * 2 + 1] = PackBf16(s_acc[nb][2], s_acc[nb][3]);
      }
    };
    auto release = [&](uint32_t bar) {
      __syncwarp();
      if (lane == 0) BarArrive(bar);
    };

    // Stage 0: S, softmax, P. Then for each later stage j, S_j and P_{j-1} V_{j-1} are issued
    // together and the softmax of stage j runs while the tensor cores still do P_{j-1} V_{j-1}.
    if (n_stages > 0) {
      float c0 = 1.f, c1 = 1.f;
      int va = 0, vb = 0;
      stage_valid(0, va, vb);
      BarWait(q_full, 0);
      BarWait(k_full(0), 0);
      WgFence();
      Pin(s_acc);
      issue_s(0);
      WgCommit();
      WgWait<0>();
      Pin(s_acc);
      release(k_empty(0));
      softmax(va, vb, c0, c1);  // O is still zero: nothing to rescale
      pack();
      for (int j = 1; j < n_stages; ++j) {
        const int s = j % kStages, sp = (j - 1) % kStages;
        stage_valid(j, va, vb);  // global loads in flight during the waits
        BarWait(k_full(s), (j / kStages) & 1);
        BarWait(v_full(sp), ((j - 1) / kStages) & 1);
        WgFence();
        Pin(s_acc);
        Pin(o[0]);
        Pin(pa);
        issue_s(s);
        WgCommit();
        issue_pv(sp);
        WgCommit();
        WgWait<1>();  // S_j is done (groups complete in order); P_{j-1} V_{j-1} may still run
        Pin(s_acc);
        release(k_empty(s));
        softmax(va, vb, c0, c1);
        WgWait<0>();
        Pin(o[0]);
        Pin(pa);
        release(v_empty(sp));
#pragma unroll
        for (int nb = 0; nb < kD / 8; ++nb) {
          o[0][nb][0] *= c0;
          o[0][nb][1] *= c0;
          o[0][nb][2] *= c1;
          o[0][nb][3] *= c1;
        }
        pack();
      }
      const int last = n_stages - 1, s = last % kStages;
      BarWait(v_full(s), (last / kStages) & 1);
      WgFence();
      Pin(o[0]);
      Pin(pa);
      issue_pv(s);
      WgCommit();
      WgWait<0>();
      Pin(o[0]);
      Pin(pa);
      release(v_empty(s));
    }

    // ---- epilogue (the portable kernels' math, 16 rows per warp) ----
    CpAsyncWait<0>();
    // Named barrier over the two consumer warpgroups (id 1; 0 is __syncthreads): both are past
    // their last wgmma, so the K ring (every TMA write into it has completed: each was waited
    // for) becomes the staging area; M_h, ksum and bias are visible to all consumers.
    asm volatile("bar.sync 1, 256;\n" ::: "memory");
    BarWait(q_full, 0);  // Q for φ(q) (done already unless K_sel = 0)
    l0 = QuadSum(l0);
    l1 = QuadSum(l1);
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;  // K_sel 0: 0
#pragma unroll
    for (int nb = 0; nb < kD / 8; ++nb) {
      o[0][nb][0] *= inv0;
      o[0][nb][1] *= inv0;
      o[0][nb][2] *= inv1;
      o[0][nb][3] *= inv1;
    }
    uint8_t* stage = base_ptr + kKOff + (cw * 4 + warp) * kStageBytes;
    const int row_in_tile = cw * 64 + warp * 16;
    const int row0 = q0 + row_in_tile;
    const int stride = static_cast<int>(p.heads) * kD;
    if (p.sparse_out != nullptr) {
      StageTiles<kD, 1>(o, stage, lane);
      __syncwarp();
      FlushStage<kD, 16>(stage, p.sparse_out + h * kD, row0, l, stride, lane);
      __syncwarp();  // staging is rewritten below
    }
    uint32_t q_off[4];  // Q A fragments from the TMA tile: row row_in_tile + (lane & 15)
    PairOffsets(q_off, (row_in_tile + (lane & 15)) * 128, lane & 7, lane >> 4);
    LinearEpilogue<kD, 1, kQHalf, 128>(o, q_off, base + kQOff, base + kMOff, s_vec, stage,
                                       p.out + h * kD, row0, l, stride, lane);
  }
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

cudaError_t Launch(const SlaSm90Args& a, cudaStream_t stream) {
  if (a.q == nullptr || a.k == nullptr || a.v == nullptr || a.lut == nullptr || a.m16 == nullptr ||
      a.ksum == nullptr || a.bias.data == nullptr || a.out == nullptr || a.l <= 0 || a.heads <= 0 ||
      a.heads > 65535 || a.ksel < 0 || a.nq != (a.l + kBm - 1) / kBm ||
      a.ksel > (a.l + kBk - 1) / kBk || a.l * a.heads * kD >= (int64_t{1} << 31) ||
      !Aligned16(a.q) || !Aligned16(a.k) || !Aligned16(a.v) || !Aligned16(a.out) ||
      !Aligned16(a.m16) || (a.sparse_out != nullptr && !Aligned16(a.sparse_out))) {
    return cudaErrorInvalidValue;
  }
  CUtensorMap tq, tk, tv;
  if (!tma::EncodeHeads128(&tq, a.q, a.l, a.heads, kBm) ||
      !tma::EncodeHeads128(&tk, a.k, a.l, a.heads, kBk) ||
      !tma::EncodeHeads128(&tv, a.v, a.l, a.heads, kBk)) {
    return cudaErrorInvalidValue;
  }
  cudaError_t e =
      cudaFuncSetAttribute(SlaSparseSm90Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(kSmemBytes));
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(a.nq), static_cast<unsigned>(a.heads));
  SlaSparseSm90Kernel<<<grid, kThreads, kSmemBytes, stream>>>(tq, tk, tv, a);
  return cudaGetLastError();
}

}  // namespace
#endif  // TV_HAVE_SM90A

bool SlaSm90Built() {
#if defined(TV_HAVE_SM90A)
  return true;
#else
  return false;
#endif
}

size_t SlaSm90SmemBytes() {
#if defined(TV_HAVE_SM90A)
  return kSmemBytes;
#else
  return 0;
#endif
}

cudaError_t LaunchSlaSparseSm90(const SlaSm90Args& a, cudaStream_t stream) {
#if defined(TV_HAVE_SM90A)
  return Launch(a, stream);
#else
  (void)a;
  (void)stream;
  return cudaErrorNotSupported;
#endif
}

}  // namespace turbovid::kernels::sla_tiles
