// SLA block-sparse softmax branch on Hopper (sm_90a), the simpler variant (KernelOptions::sla =
// kWgmma, TV_SLA_PATH=wgmma): D = 128, 128×64 blocks. Two warpgroups own 64 query rows each;
// S = Q·Kᵀ (m64n64k16, both operands 128B-swizzled K-major tiles in shared memory), P stays in
// registers as the A operand of O += P·V (m64n128k16), V transposed in shared memory per tile so
// that every operand is K-major. No TMA or warp specialisation: all 256 threads load with
// cp.async. Epilogue as the mma.sync kernel (sla_tiles.cuh LinearEpilogue). q, k, v: [L, N, 128].
// Built for sm_90a only (kernels/CMakeLists.txt); without it the launcher reports NotSupported.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

#include "kernels/device_util.cuh"
#include "kernels/sla_plan.cuh"
#include "kernels/sla_tiles.cuh"
#include "kernels/sm90_util.cuh"

namespace turbovid::kernels::sla_tiles {
#if defined(TV_HAVE_SM90A)
namespace {

using detail::Load;
constexpr int kBm = sla_plan::kBm;  // query rows per CTA
constexpr int kBn = sla_plan::kBn;  // keys per key block
constexpr int kWgThreads = 256;
constexpr int kPanel = 128;                     // bytes per row of a 128B-swizzled panel (64 bf16)
constexpr uint32_t kWgQ = 2 * kBm * kPanel;     // Q: 2 panels (columns 0-63, 64-127) × 128 rows
constexpr uint32_t kWgKBuf = 2 * kBn * kPanel;  // one K tile: 2 panels × 64 rows
constexpr uint32_t kWgVBuf = kBn * 128 * 2;     // one V tile, row-major swizzled (Swz<16>)
constexpr uint32_t kWgVt = 128 * kPanel;        // Vᵀ: 128 rows (d) × 64 keys, one panel
constexpr size_t kSmemBytes =                   // + 1024 to align the base for the swizzle atoms
    1024 + kWgQ + 2 * kWgKBuf + 2 * kWgVBuf + kWgVt + 2 * 128 * 4;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// mbarriers, matrix descriptors, wgmma wrappers, fences.
using namespace ::turbovid::kernels::sm90;  // NOLINT(build/namespaces): kernels/sm90_util.cuh

// Rows [row0, row0 + kRows) of one head (D = 128) into two 128B-swizzled panels of kRows rows;
// rows ≥ limit zero-filled.
template <int kRows>
__device__ __forceinline__ void LoadPanels(uint32_t dst, const bf16* g, int row0, int limit,
                                           int stride, int tid) {
  constexpr int kRowStep = kWgThreads / 16;  // 16 chunks of 16 bytes per row
  const int r = tid / 16, c = tid % 16;
  const uint32_t d0 = dst + (c >> 3) * (kRows * kPanel) + r * kPanel + (((c & 7) ^ (r & 7)) << 4);
  const int first = row0 + r;
  const bf16* src = g + first * stride + c * 8;
#pragma unroll
  for (int it = 0; it < kRows / kRowStep; ++it) {
    const bool ok = first + it * kRowStep < limit;
    CpAsync16(d0 + it * kRowStep * kPanel, ok ? src + it * kRowStep * stride : g, ok);
  }
}

// V tile (64 keys × 128 d, Swz<16> rows) → Vᵀ panel (128 d rows × 64 keys): each warp moves 4
// groups of four 8×8 blocks with transposing ldmatrix and 4-byte stores (conflict-free both ways).
__device__ __forceinline__ void TransposeV(uint32_t s_v, uint8_t* vt, int warp, int lane) {
  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int quad = warp * 4 + i;
    const int kg = quad >> 2, dc0 = (quad & 3) * 4;  // keys 8kg.., d chunks dc0..dc0+3
    uint32_t r[4];
    LdMatrixX4Trans(r, s_v + Swz<16>(kg * 8 + (lane & 7), dc0 + (lane >> 3)));
#pragma unroll
    for (int mi = 0; mi < 4; ++mi) {  // r[mi] = V[8kg + 2t4 + {0,1}][8(dc0 + mi) + g]
      const int d = (dc0 + mi) * 8 + g;
      *reinterpret_cast<uint32_t*>(vt + d * kPanel + ((kg ^ (d & 7)) << 4) + 4 * t4) = r[mi];
    }
  }
}

#endif

__global__ void __launch_bounds__(kWgThreads, 1) SparseAttnWgmmaKernel(SparseParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int D = 128;
  extern __shared__ __align__(128) uint8_t smem_raw[];
  const uint32_t raw_addr = SmemAddr(smem_raw);
  const uint32_t s_base = (raw_addr + 1023u) & ~1023u;
  uint8_t* smem = smem_raw + (s_base - raw_addr);
  const uint32_t s_q = s_base, s_k0 = s_q + kWgQ, s_v0 = s_k0 + 2 * kWgKBuf,
                 s_vt = s_v0 + 2 * kWgVBuf;
  float* s_vec = reinterpret_cast<float*>(smem + (s_vt - s_base) + kWgVt);  // ksum [D], bias [D]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int t4 = lane & 3;
  const int qb = blockIdx.x, h = blockIdx.y;
  const int stride = static_cast<int>(p.heads) * D;
  const int q0 = qb * kBm, l = static_cast<int>(p.l);
  const bf16* qg = p.q + h * D;
  const bf16* kg = p.k + h * D;
  const bf16* vg = p.v + h * D;
  const int* lut = p.lut + (int64_t(h) * p.nq + qb) * p.ksel;
  const int nsel = p.ksel;
  const float sl2 = p.scale * 1.4426950408889634f;

  LoadPanels<kBm>(s_q, qg, q0, l, stride, tid);
  if (nsel > 0) {
    LoadPanels<kBn>(s_k0, kg, lut[0] * kBn, l, stride, tid);
    LoadTile<D, kBn, kWgThreads>(s_v0, vg, lut[0] * kBn, l, stride, tid);
  }
  CpAsyncCommit();

  float o[1][16][4];  // rows 16·warp + g (+8) of the tile; n8 tiles over D
#pragma unroll
  for (int dt = 0; dt < 16; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  int kb_cur = nsel > 0 ? lut[0] : 0, kb_next = nsel > 1 ? lut[1] : 0;

  for (int it = 0; it < nsel; ++it) {
    const int buf = it & 1;
    CpAsyncWait<0>();
    __syncthreads();  // tile `it` landed; all warps are past iteration it - 1 (buf ^ 1, Vᵀ free)
    if (it + 1 < nsel) {
      LoadPanels<kBn>(s_k0 + (buf ^ 1) * kWgKBuf, kg, kb_next * kBn, l, stride, tid);
      LoadTile<D, kBn, kWgThreads>(s_v0 + (buf ^ 1) * kWgVBuf, vg, kb_next * kBn, l, stride, tid);
      CpAsyncCommit();
    }
    const int kb_after = it + 2 < nsel ? lut[it + 2] : 0;
    TransposeV(s_v0 + buf * kWgVBuf, smem + (s_vt - s_base), warp, lane);
    FenceProxyAsync();
    __syncthreads();  // Vᵀ complete; Q, K and Vᵀ visible to the tensor cores' async proxy
    const int valid = min(kBn, l - kb_cur * kBn);

    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = 0.f;
    Pin(s);
    WgFence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t qa = s_q + (kk >> 2) * (kBm * kPanel) + wg * (64 * kPanel) + (kk & 3) * 32;
      const uint32_t ka = s_k0 + buf * kWgKBuf + (kk >> 2) * (kBn * kPanel) + (kk & 3) * 32;
      WgmmaSS<0, 0>(s, Desc(qa, 16, 1024), Desc(ka, 16, 1024), kk > 0 ? 1 : 0);
    }
    WgCommit();
    WgWait<0>();
    Pin(s);
    if (valid < kBn) {  // tail key block: keys ≥ L do not exist
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (nt * 8 + 2 * t4 + (e & 1) >= valid) s[nt][e] = -INFINITY;
        }
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * hr], s[nt][2 * hr + 1]));
      mx = QuadMax(mx);
      const float m_new = fmaxf(m_run[hr], mx * sl2);  // finite: every tile has a real key
      const float corr = Exp2(m_run[hr] - m_new);
      m_run[hr] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int e = 2 * hr; e < 2 * hr + 2; ++e) {
          const float pv = Exp2(fmaf(s[nt][e], sl2, -m_new));
          s[nt][e] = pv;
          sum += pv;
        }
      }
      l_run[hr] = l_run[hr] * corr + sum;
#pragma unroll
      for (int dt = 0; dt < 16; ++dt) {
        o[0][dt][2 * hr] *= corr;
        o[0][dt][2 * hr + 1] *= corr;
      }
    }
    uint32_t a[4][4];  // P as the A operand, keys 16j..16j+15 (the accumulator layout per warp)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      a[j][0] = PackBf16(s[2 * j][0], s[2 * j][1]);
      a[j][1] = PackBf16(s[2 * j][2], s[2 * j][3]);
      a[j][2] = PackBf16(s[2 * j + 1][0], s[2 * j + 1][1]);
      a[j][3] = PackBf16(s[2 * j + 1][2], s[2 * j + 1][3]);
    }
    Pin(o[0]);
    Pin(a);
    WgFence();
#pragma unroll
    for (int j = 0; j < 4; ++j) WgmmaRS<0>(o[0], a[j], Desc(s_vt + j * 32, 16, 1024), 1);
    WgCommit();
    WgWait<0>();
    Pin(o[0]);
    Pin(a);
    kb_cur = kb_next;
    kb_next = kb_after;
  }

  // ---- epilogue (as the portable kernel, 16 rows per warp) ----
  CpAsyncWait<0>();
  __syncthreads();            // all warps are done with the K/V buffers
  const uint32_t s_m = s_k0;  // M_h [D, D] bf16 in the K buffers (2·kWgKBuf = D·D·2 bytes)
  static_assert(2 * kWgKBuf >= D * D * 2 && 2 * kWgVBuf >= 8 * 16 * D * 2, "epilogue buffers");
  LoadM<D, kWgThreads>(s_m, p.m16 + h * D * D, tid);
  CpAsyncCommit();
  for (int c = tid; c < D; c += kWgThreads) {
    s_vec[c] = p.ksum[h * D + c];
    s_vec[D + c] = Load(p.bias, c);
  }
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float lsum = QuadSum(l_run[hr]);
    const float inv = lsum > 0.f ? 1.f / lsum : 0.f;  // no selected block → o_s = 0
#pragma unroll
    for (int dt = 0; dt < 16; ++dt) {
      o[0][dt][2 * hr] *= inv;
      o[0][dt][2 * hr + 1] *= inv;
    }
  }
  uint8_t* stage = smem + (s_v0 - s_base) + warp * (16 * D * 2);  // V buffers: 16 rows per warp
  const int row0 = q0 + warp * 16;
  if (p.sparse_out != nullptr) {
    StageTiles<D, 1>(o, stage, lane);
    __syncwarp();
    FlushStage<D, 16>(stage, p.sparse_out + h * D, row0, l, stride, lane);
    __syncwarp();  // staging is rewritten below
  }
  CpAsyncWait<0>();
  __syncthreads();    // M_h, ksum and bias are in shared memory
  uint32_t q_off[4];  // Q A fragments from the panels: row 16·warp + (lane & 15)
  PairOffsets(q_off, (warp * 16 + (lane & 15)) * kPanel, lane & 7, lane >> 4);
  LinearEpilogue<D, 1, kBm * kPanel, kPanel>(o, q_off, s_q, s_m, s_vec, stage, p.out + h * D, row0,
                                             l, stride, lane);
#endif
}

cudaError_t Launch(const SparseParams& p, cudaStream_t stream) {
  if (p.d != 128 || p.block_q != kBm || p.block_k != kBn) return cudaErrorInvalidValue;
  if (cudaError_t e = sla_plan::SetSmem(SparseAttnWgmmaKernel, kSmemBytes); e != cudaSuccess) {
    return e;
  }
  const dim3 grid(static_cast<unsigned>(p.nq), static_cast<unsigned>(p.heads));
  SparseAttnWgmmaKernel<<<grid, kWgThreads, kSmemBytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace
#endif  // TV_HAVE_SM90A

bool SlaWgmmaBuilt() {
#if defined(TV_HAVE_SM90A)
  return true;
#else
  return false;
#endif
}

size_t SlaWgmmaSmemBytes() {
#if defined(TV_HAVE_SM90A)
  return kSmemBytes;
#else
  return 0;
#endif
}

cudaError_t LaunchSlaSparseWgmma(const SparseParams& p, cudaStream_t stream) {
#if defined(TV_HAVE_SM90A)
  return Launch(p, stream);
#else
  (void)p;
  (void)stream;
  return cudaErrorNotSupported;
#endif
}

}  // namespace turbovid::kernels::sla_tiles
