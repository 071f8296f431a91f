// FA2-style attention on tensor cores (mma.sync m16n8k16 bf16 -> fp32), for sm_90a and sm_120a.
// out[i,h,:] = sum_j softmax_j(scale * q[i,h,:].k[j,h,:]) v[j,h,:]; q, k, v, out: [L, N, D] bf16.
// One CTA = kWarps*16 query rows of one head; each warp owns 16 rows and keeps its Q fragments,
// S tile and O accumulator in registers; K/V tiles of 64 keys stream through a 3-stage cp.async
// ring in shared memory (XOR-swizzled 16-byte chunks, so ldmatrix and cp.async are conflict-free).
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "kernels/ptx.cuh"

namespace turbovid::kernels {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kBlockN = 64;  // keys per tile: 8 n-tiles of S per warp (32 fp32 registers)
constexpr int kStages = 3;   // K/V ring depth; 3 x 32 KB at D = 128 fits sm_120's 99 KB per block
constexpr float kLog2e = 1.4426950408889634f;

template <int D, int kWarps>
struct FlashTraits {
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockM = kWarps * 16;
  static constexpr int kChunks = D / 8;  // 16-byte chunks per row
  static constexpr int kTileElems = kBlockN * D;
  static constexpr int kStageElems = 2 * kTileElems;  // K tile then V tile
  static constexpr int kSmemBytes = kStages * kStageElems * 2;
  static constexpr int kQElems = kBlockM * D;
  // The Q tile is parked in the last stage (and the output staged in stage 0), so both must fit.
  static_assert(kQElems <= kStageElems, "Q tile must fit one stage");
  static_assert(D % 64 == 0, "swizzle needs at least 8 chunks per row");
  static_assert((kBlockN * kChunks) % kThreads == 0 && (kBlockM * kChunks) % kThreads == 0,
                "tile loads must split evenly over the threads");
};

struct FlashParams {
  const bf16* q;  // [lq, heads, D]
  const bf16* k;  // [lk, heads, D]
  const bf16* v;  // [lk, heads, D]
  bf16* out;      // [lq, heads, D]
  int lq;
  int lk;
  int heads;
  float scale_log2;  // scale * log2(e): softmax runs in base 2
};

// Element offset of (row, 16-byte chunk) in a [rows, D] bf16 tile.
template <int D>
__device__ __forceinline__ int Swizzle(int row, int chunk) {
  return ptx::XorSwizzle<D, 8>(row, chunk);
}

using ptx::CpAsync16;
using ptx::CpAsyncCommit;
using ptx::CpAsyncWait;
using ptx::Exp2;
using ptx::LdMatrixX4;
using ptx::LdMatrixX4Trans;
using ptx::MmaBf16;
using ptx::PackBf16;
using ptx::QuadMax;
using ptx::QuadSum;
using ptx::SmemAddr;

template <int D, int kWarps>
__global__ void __launch_bounds__(kWarps * 32, 1) FlashAttentionKernel(FlashParams p) {
  using T = FlashTraits<D, kWarps>;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int q0 = blockIdx.x * T::kBlockM;
  const int h = blockIdx.y;
  const int64_t row_stride = static_cast<int64_t>(p.heads) * D;  // elements between tokens
  const bf16* kg = p.k + static_cast<int64_t>(h) * D;
  const bf16* vg = p.v + static_cast<int64_t>(h) * D;
  const int n_tiles = (p.lk + kBlockN - 1) / kBlockN;
  const uint32_t smem = SmemAddr(smem_raw);
  const uint32_t q_smem = smem + (kStages - 1) * T::kStageElems * 2;

  // Keys past lk are zero-filled (V too: 0 * garbage could be NaN) and masked to -inf below.
  auto load_kv = [&](int tile, int stage) {
    const int k0 = tile * kBlockN;
    const uint32_t ks = smem + stage * T::kStageElems * 2;
#pragma unroll
    for (int it = 0; it < kBlockN * T::kChunks / T::kThreads; ++it) {
      const int i = tid + it * T::kThreads;
      const int r = i / T::kChunks, c = i % T::kChunks;
      const bool ok = k0 + r < p.lk;
      const int64_t g = ok ? (k0 + r) * row_stride + c * 8 : 0;
      const uint32_t s = ks + Swizzle<D>(r, c) * 2;
      CpAsync16(s, kg + g, ok);
      CpAsync16(s + T::kTileElems * 2, vg + g, ok);
    }
  };

  // Prologue: Q (rows past lq zero-filled), then tiles 0 .. kStages-2; one commit group each.
  {
    const bf16* qg = p.q + static_cast<int64_t>(h) * D;
#pragma unroll
    for (int it = 0; it < T::kBlockM * T::kChunks / T::kThreads; ++it) {
      const int i = tid + it * T::kThreads;
      const int r = i / T::kChunks, c = i % T::kChunks;
      const bool ok = q0 + r < p.lq;
      const int64_t g = ok ? (q0 + r) * row_stride + c * 8 : 0;
      CpAsync16(q_smem + Swizzle<D>(r, c) * 2, qg + g, ok);
    }
    CpAsyncCommit();
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < n_tiles) load_kv(s, s);
    CpAsyncCommit();
  }
  CpAsyncWait<kStages - 1>();  // the Q group is complete (the K/V groups may still be in flight)
  __syncthreads();             // ... for every thread's share of it

  // This warp's 16 query rows as A fragments, one per 16 head-dim columns.
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    LdMatrixX4(qf[kk], q_smem + Swizzle<D>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)) * 2);
  }

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  // Rows g and g+8 of the warp's 16 (g = lane / 4): running max (base-2 scaled) and this
  // thread's partial row sum (the quad's partials are added once at the end).
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float sl2 = p.scale_log2;

  for (int j = 0; j < n_tiles; ++j) {
    CpAsyncWait<kStages - 2>();  // tile j has landed (this thread's copies)
    // Every thread's copies of tile j are visible, and every warp is done with tile j-1, whose
    // stage (and, at j = 0, the parked Q tile) the next load overwrites.
    __syncthreads();
    {
      const int t = j + kStages - 1;
      if (t < n_tiles) load_kv(t, t % kStages);
      CpAsyncCommit();  // possibly empty: keeps the group count per iteration fixed
    }
    const uint32_t ks = smem + (j % kStages) * T::kStageElems * 2;
    const uint32_t vs = ks + T::kTileElems * 2;

    // S = Q K^T for 16 rows x 64 keys.
    float s[kBlockN / 8][4];
#pragma unroll
    for (int i = 0; i < kBlockN / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kBlockN / 16; ++np) {
        uint32_t b[4];
        const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
        LdMatrixX4(b, ks + Swizzle<D>(key, kk * 2 + ((lane >> 3) & 1)) * 2);
        MmaBf16(s[2 * np], qf[kk], b[0], b[1]);
        MmaBf16(s[2 * np + 1], qf[kk], b[2], b[3]);
      }
    }
    if ((j + 1) * kBlockN > p.lk) {  // tail tile: keys past lk get -inf
#pragma unroll
      for (int nt = 0; nt < kBlockN / 8; ++nt) {
        const int col = j * kBlockN + nt * 8 + 2 * (lane & 3);
        if (col >= p.lk) s[nt][0] = s[nt][2] = -INFINITY;
        if (col + 1 >= p.lk) s[nt][1] = s[nt][3] = -INFINITY;
      }
    }

    // Online softmax in base 2 with the scale folded into one FFMA per score.
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) {
      mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
      mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
    }
    const float mn0 = fmaxf(m0, QuadMax(mx0) * sl2), mn1 = fmaxf(m1, QuadMax(mx1) * sl2);
    // A row with no finite score yet keeps offset 0 so that exp2(-inf - offset) stays 0, not NaN.
    const float base0 = mn0 == -INFINITY ? 0.f : mn0, base1 = mn1 == -INFINITY ? 0.f : mn1;
    const float c0 = Exp2(m0 - base0), c1 = Exp2(m1 - base1);
    m0 = mn0;
    m1 = mn1;
    l0 *= c0;
    l1 *= c1;
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[i][0] *= c0;
      o[i][1] *= c0;
      o[i][2] *= c1;
      o[i][3] *= c1;
    }
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) {
      s[nt][0] = Exp2(fmaf(s[nt][0], sl2, -base0));
      s[nt][1] = Exp2(fmaf(s[nt][1], sl2, -base0));
      s[nt][2] = Exp2(fmaf(s[nt][2], sl2, -base1));
      s[nt][3] = Exp2(fmaf(s[nt][3], sl2, -base1));
      l0 += s[nt][0] + s[nt][1];
      l1 += s[nt][2] + s[nt][3];
    }

    // O += P V: the S accumulators of two n-tiles form one A fragment (16 keys).
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint32_t a[4] = {PackBf16(s[2 * kk][0], s[2 * kk][1]),
                             PackBf16(s[2 * kk][2], s[2 * kk][3]),
                             PackBf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             PackBf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      const int key = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        LdMatrixX4Trans(b, vs + Swizzle<D>(key, dp * 2 + (lane >> 4)) * 2);
        MmaBf16(o[2 * dp], a, b[0], b[1]);
        MmaBf16(o[2 * dp + 1], a, b[2], b[3]);
      }
    }
  }

  // Epilogue: normalise, stage this warp's 16 rows in stage 0 (free once every warp has left the
  // loop), then write 16-byte chunks of whole rows.
  CpAsyncWait<0>();
  __syncthreads();
  l0 = QuadSum(l0);
  l1 = QuadSum(l1);
  const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
  bf16* stage = reinterpret_cast<bf16*>(smem_raw);
  const int r0 = warp * 16 + (lane >> 2);
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    const int e = 2 * (lane & 3);
    *reinterpret_cast<uint32_t*>(stage + Swizzle<D>(r0, i) + e) =
        PackBf16(o[i][0] * inv0, o[i][1] * inv0);
    *reinterpret_cast<uint32_t*>(stage + Swizzle<D>(r0 + 8, i) + e) =
        PackBf16(o[i][2] * inv1, o[i][3] * inv1);
  }
  __syncwarp();
  bf16* og = p.out + static_cast<int64_t>(h) * D;
#pragma unroll
  for (int it = 0; it < 16 * T::kChunks / 32; ++it) {
    const int i = lane + it * 32;
    const int r = warp * 16 + i / T::kChunks, c = i % T::kChunks;
    if (q0 + r < p.lq) {
      *reinterpret_cast<uint4*>(og + (q0 + r) * row_stride + c * 8) =
          *reinterpret_cast<const uint4*>(stage + Swizzle<D>(r, c));
    }
  }
}

template <int D, int kWarps>
cudaError_t LaunchFlash(const AttentionArgs& a, cudaStream_t stream) {
  using T = FlashTraits<D, kWarps>;
  const auto kernel = FlashAttentionKernel<D, kWarps>;
  cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes);
  if (e != cudaSuccess) return e;
  FlashParams p;
  p.q = static_cast<const bf16*>(a.q.data);
  p.k = static_cast<const bf16*>(a.k.data);
  p.v = static_cast<const bf16*>(a.v.data);
  p.out = static_cast<bf16*>(a.out.data);
  p.lq = static_cast<int>(a.lq);
  p.lk = static_cast<int>(a.lk);
  p.heads = static_cast<int>(a.heads);
  p.scale_log2 = a.scale * kLog2e;
  const dim3 grid(static_cast<unsigned>((a.lq + T::kBlockM - 1) / T::kBlockM),
                  static_cast<unsigned>(a.heads));
  kernel<<<grid, T::kThreads, T::kSmemBytes, stream>>>(p);
  return cudaGetLastError();
}

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

bool FlashAttentionSupports(const AttentionArgs& a) {
  constexpr int64_t kMaxLen = int64_t{1} << 30;  // int row indices inside the kernels
  return a.bias.data == nullptr && a.q.type == ElemType::kBF16 && a.k.type == ElemType::kBF16 &&
         a.v.type == ElemType::kBF16 && a.out.type == ElemType::kBF16 && Aligned16(a.q.data) &&
         Aligned16(a.k.data) && Aligned16(a.v.data) && Aligned16(a.out.data) && a.d == a.dv &&
         (a.d == 64 || a.d == 128) && a.lq >= 0 && a.lq < kMaxLen && a.lk > 0 && a.lk < kMaxLen &&
         a.heads > 0 && a.heads <= 65535 && std::isfinite(a.scale) && a.scale > 0.f;
}

cudaError_t LaunchFlashAttention(const AttentionArgs& args, cudaStream_t stream, int warps) {
  if (!FlashAttentionSupports(args) || (warps != 0 && warps != 4 && warps != 8)) {
    return cudaErrorInvalidValue;
  }
  if (args.lq == 0) return cudaSuccess;
  // 8 warps (128 query rows per CTA) halve the K/V traffic from L2 compared with 4.
  if (warps == 0) warps = 8;
  if (args.d == 128)
    return warps == 8 ? LaunchFlash<128, 8>(args, stream) : LaunchFlash<128, 4>(args, stream);
  return warps == 8 ? LaunchFlash<64, 8>(args, stream) : LaunchFlash<64, 4>(args, stream);
}

}  // namespace turbovid::kernels
