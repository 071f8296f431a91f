// SLA on the GPU (spec/turbodiffusion.md §7, following engine/cpu/sla_ops.cc): block map from
// pooled q / smoothed k, block-sparse softmax branch (mma.sync bf16, fp32 online softmax), global
// linear branch o_l = φ(q)·KV / (1e-5 + φ(q)·Σφ(k)) with proj_l folded into KV. q,k,v,out [L,N,D].
// Longer than 600 lines: the op's kernels share the plan; the tile helpers and the epilogue are in
// sla_tiles.cuh (shared with the sm_90a TMA kernel in sla_sm90.cu, which H100s run by default).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/device_util.cuh"
#include "kernels/sla.h"
#include "kernels/sla_tiles.cuh"

namespace turbovid::kernels {
namespace {

using detail::Load;
using namespace sla_tiles;  // NOLINT(build/namespaces): the shared tile helpers

// ---------------------------------------------------------------------------------------------
// Plan: which path runs and where each scratch array lives in the workspace.

constexpr int kBm = 128;        // query rows per sparse CTA (= block_q on the tensor-core path)
constexpr int kBn = 64;         // keys per tile (= block_k on the tensor-core path)
constexpr int kThreads = 128;   // 4 warps × 32 query rows: two m16 tiles per warp halve the
                                // shared-memory reads of K/V per mma against one-m-tile warps
constexpr int kScoreTile = 32;  // key blocks per shared tile in the scoring kernel
constexpr int kReduceRows = 8;  // KV rows per CTA in the reduce/proj kernel
constexpr int kGenericWarps = 8;

// sm_90a sparse kernel (SparseAttnWgmmaKernel).
constexpr int kWgThreads = 256;
constexpr int kPanel = 128;                     // bytes per row of a 128B-swizzled panel (64 bf16)
constexpr uint32_t kWgQ = 2 * kBm * kPanel;     // Q: 2 panels (columns 0-63, 64-127) × 128 rows
constexpr uint32_t kWgKBuf = 2 * kBn * kPanel;  // one K tile: 2 panels × 64 rows
constexpr uint32_t kWgVBuf = kBn * 128 * 2;     // one V tile, row-major swizzled (Swz<16>)
constexpr uint32_t kWgVt = 128 * kPanel;        // Vᵀ: 128 rows (d) × 64 keys, one panel
constexpr size_t WgmmaSmemBytes() {             // + 1024 to align the base for the swizzle atoms
  return 1024 + kWgQ + 2 * kWgKBuf + 2 * kWgVBuf + kWgVt + 2 * 128 * 4;
}

constexpr size_t SparseSmemBytes(int d) {
  return size_t(kBm) * d * 2 + 4 * size_t(kBn) * d * 2 + 2 * d * 4;
}
constexpr size_t KvSmemBytes(int d) { return 5 * size_t(kBn) * d * 2 + 4 * d * 4; }
// Padded row stride (floats) of the pooled-k tile: conflict-free for the lanes reading one row
// each, and 16-byte rows for float4 reads when D % 4 == 0.
__host__ __device__ constexpr int ScoreRowStride(int d) { return d % 4 == 0 ? d + 4 : d + 1; }
size_t ScoreSmemBytes(int qg, int d, int64_t nk) {
  return (size_t(qg) * d + size_t(kScoreTile) * ScoreRowStride(d) + size_t(qg) * nk) * 4;
}

struct Plan {
  int64_t nq = 0, nk = 0, nch = 0, chunk_rows = 0;
  int qg = 0;  // query blocks per scoring CTA
  bool fast_attn = false, fast_kv = false, vec_pool_q = false, vec_pool_k = false;
  bool sm90 = false;        // sm_90a TMA + wgmma kernel (kernels/sla_sm90.cu), D = 128
  bool wgmma = false;       // the simpler sm_90a wgmma kernel below (cp.async loads)
  bool kblk_in_kv = false;  // the K^T V kernel also writes the key block sums (block_k = 64)
  size_t qsum = 0, kblk = 0, kmean = 0, lut = 0, kv_part = 0, ks_part = 0, m16 = 0, m32 = 0,
         ksum = 0, kstats = 0, total = 0;
};

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

cudaError_t MakePlan(const SlaArgs& a, Plan* p) {
  if (a.q == nullptr || a.k == nullptr || a.v == nullptr || a.out == nullptr ||
      a.proj_w.data == nullptr || a.proj_b.data == nullptr || a.l <= 0 || a.heads <= 0 ||
      a.heads > 65535 || a.d <= 0 || a.d > kSlaMaxHeadDim || a.block_q <= 0 || a.block_k <= 0) {
    return cudaErrorInvalidValue;
  }
  p->nq = (a.l + a.block_q - 1) / a.block_q;
  p->nk = (a.l + a.block_k - 1) / a.block_k;
  if (a.ksel < 0 || a.ksel > p->nk) return cudaErrorInvalidValue;
  int dev = 0, sms = 0, smem_optin = 0, major = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (e != cudaSuccess) return e;
  // Largest scoring group whose [qg, nk] score rows fit in shared memory.
  p->qg = 16;
  while (p->qg > 1 && ScoreSmemBytes(p->qg, a.d, p->nk) > size_t(smem_optin)) p->qg /= 2;
  if (ScoreSmemBytes(p->qg, a.d, p->nk) > size_t(smem_optin)) return cudaErrorInvalidValue;
  // K^T V chunks: at most two CTAs per SM over all heads (one wave: 2 CTAs fit an SM), whole
  // 64-row tiles.
  const int64_t per_head = std::max<int64_t>(1, 2 * int64_t(sms) / a.heads);
  int64_t rows = (a.l + per_head - 1) / per_head;
  p->chunk_rows = std::max<int64_t>(kBn, (rows + kBn - 1) / kBn * kBn);
  p->nch = (a.l + p->chunk_rows - 1) / p->chunk_rows;

  // The tensor-core kernels index [L, N, D] with 32-bit offsets.
  const bool tc_dim = (a.d == 64 || a.d == 128) && a.l * a.heads * a.d < (int64_t(1) << 31);
  const bool io_aligned = Aligned16(a.q) && Aligned16(a.k) && Aligned16(a.v) && Aligned16(a.out) &&
                          (a.sparse_out == nullptr || Aligned16(a.sparse_out));
  p->fast_attn = tc_dim && io_aligned && a.block_q == kBm && a.block_k == kBn &&
                 SparseSmemBytes(a.d) <= size_t(smem_optin);
  // wgmma and TMA exist on sm_90a only (TV_CUDA_ARCHS builds 90a). On an H100 the sparse branch
  // takes the TMA kernel; TV_SLA_PATH=wgmma picks the simpler wgmma one, TV_SLA_PATH=portable (or
  // TV_SLA_PORTABLE=1) the mma.sync one, for comparing them.
  const char* portable = std::getenv("TV_SLA_PORTABLE");
  const char* path = std::getenv("TV_SLA_PATH");
  const bool want_portable = (portable != nullptr && portable[0] == '1') ||
                             (path != nullptr && std::strcmp(path, "portable") == 0);
  const bool want_wgmma = path != nullptr && std::strcmp(path, "wgmma") == 0;
  const bool hopper = p->fast_attn && a.d == 128 && major == 9 && !want_portable;
  p->sm90 = hopper && !want_wgmma && sla_tiles::SlaSm90Built() &&
            sla_tiles::SlaSm90SmemBytes() <= size_t(smem_optin);
  p->wgmma = hopper && !p->sm90 && WgmmaSmemBytes() <= size_t(smem_optin);
  p->fast_kv = tc_dim && Aligned16(a.k) && Aligned16(a.v) && KvSmemBytes(a.d) <= size_t(smem_optin);
  p->kblk_in_kv = p->fast_kv && a.block_k == kBn;
  p->vec_pool_q = a.d % 8 == 0 && Aligned16(a.q);
  p->vec_pool_k = a.d % 8 == 0 && Aligned16(a.k);

  const size_t n = size_t(a.heads), d = size_t(a.d);
  size_t off = 0;
  auto take = [&off](size_t bytes) {
    const size_t at = off;
    off += (bytes + 255) / 256 * 256;
    return at;
  };
  p->qsum = take(n * p->nq * d * 4);
  p->kblk = take(n * p->nk * d * 4);
  p->kmean = take(n * d * 4);
  p->lut = take(n * p->nq * size_t(a.ksel) * 4);
  p->kv_part = take(n * p->nch * d * d * 4);
  p->ks_part = take(n * p->nch * d * 4);
  p->m16 = take(n * d * d * 2);
  p->m32 = take(n * d * d * 4);
  p->ksum = take(n * d * 4);
  p->kstats = take(p->fast_kv ? 0 : n * size_t(a.l) * 8);
  p->total = off;
  return cudaSuccess;
}

// Rows [row0, row0 + kRows) of one head of an [L, N, D] bf16 tensor (g points at head h's first
// element, row stride `stride` elements) into a swizzled tile; rows ≥ limit are zero-filled.
// 32-bit offsets (the plan keeps L·N·D < 2^31 on this path) and one base address per thread keep
// the per-iteration prefetch to a few registers.
template <int D, int kRows, int kNumThreads = kThreads>
__device__ __forceinline__ void LoadTile(uint32_t dst, const bf16* g, int row0, int limit,
                                         int stride, int tid) {
  constexpr int kChunks = D / 8, kRowStep = kNumThreads / kChunks, kIters = kRows / kRowStep;
  static_assert(kRowStep % 8 == 0 && kRows % kRowStep == 0,
                "rows must split evenly, swizzle-aligned");
  const int r = tid / kChunks, c = tid % kChunks;
  const uint32_t d0 = dst + Swz<kChunks>(r, c);  // row r + k·kRowStep keeps r's swizzle
  const int first = row0 + r;
  const bf16* src = g + first * stride + c * 8;
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const bool ok = first + it * kRowStep < limit;
    CpAsync16(d0 + it * kRowStep * kChunks * 16, ok ? src + it * kRowStep * stride : g, ok);
  }
}

// ---------------------------------------------------------------------------------------------
// Block map: pooled sums, smoothing mean, scores and top-k.

// sums[h, b, :] = Σ rows [b·blk, min(L, (b+1)·blk)) of head h. vec: 16-byte loads of 8 columns
// (D % 8 == 0, aligned), else one column per thread.
__global__ void __launch_bounds__(256)
    PoolSumKernel(const bf16* x, int64_t l, int64_t heads, int d, int blk, int64_t nblocks,
                  bool vec, float* sums) {
  __shared__ float red[2048];
  const int64_t b = blockIdx.x, h = blockIdx.y;
  const int w = vec ? 8 : 1;
  const int dc = d / w;        // column groups per row
  const int lanes = 256 / dc;  // rows summed in parallel
  const int c = threadIdx.x % dc, r = threadIdx.x / dc;
  const int64_t t0 = b * blk, t1 = min(l, t0 + blk);
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (r < lanes) {
    for (int64_t t = t0 + r; t < t1; t += lanes) {
      const bf16* src = x + (t * heads + h) * d + c * w;
      if (vec) {
        const uint4 raw = *reinterpret_cast<const uint4*>(src);
        const uint32_t w4[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          acc[2 * i] += LoBf16(w4[i]);
          acc[2 * i + 1] += HiBf16(w4[i]);
        }
      } else {
        acc[0] += __bfloat162float(src[0]);
      }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (i < w) red[r * d + c * w + i] = acc[i];
    }
  }
  __syncthreads();  // every row lane's partial sums are in red
  for (int col = threadIdx.x; col < d; col += blockDim.x) {
    float s = 0.f;
    for (int i = 0; i < lanes; ++i) s += red[i * d + col];
    sums[(h * nblocks + b) * d + col] = s;
  }
}

// kmean[h, :] = Σ_j kblk[h, j, :] / L (the smooth-K mean over all tokens).
// CTA (head, 32 columns): warp w sums blocks j ≡ w (mod 8) in double for its lane's column, then
// warp 0 adds the 8 partials in order (deterministic); 8 loads in flight per column, not one.
__global__ void __launch_bounds__(256)
    KMeanKernel(const float* kblk, int64_t nk, int64_t l, int d, float* kmean) {
  __shared__ double part[8][32];
  const int64_t h = blockIdx.x;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int c = blockIdx.y * 32 + lane;
  double s = 0;
  if (c < d) {
    for (int64_t j = w; j < nk; j += 8) s += kblk[(h * nk + j) * d + c];
  }
  part[w][lane] = s;
  __syncthreads();  // every warp's partial sums are in shared memory
  if (w == 0 && c < d) {
    double t = 0;
    for (int i = 0; i < 8; ++i) t += part[i][lane];
    kmean[h * d + c] = static_cast<float>(t / static_cast<double>(l));
  }
}

// Order-preserving unsigned key of a float (larger float → larger key; -0 folded onto +0).
__device__ __forceinline__ uint32_t OrderKey(float f) {
  const uint32_t u = __float_as_uint(f == 0.f ? 0.f : f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct ScoreParams {
  const float* qsum;   // [N, nq, D] block sums of q
  const float* kblk;   // [N, nk, D] block sums of k
  const float* kmean;  // [N, D]
  int* lut;            // [N, nq, ksel] selected key blocks, ascending
  int8_t* map;         // [N, nq, nk] or null
  int64_t l, nq, nk;
  int d, block_q, block_k, ksel, qg;
};

// One CTA per (head, qg query blocks); warp w owns query block qb0 + w: its scores against every
// key block go to shared memory, then the warp selects the top ksel (ties → lower index).
__global__ void __launch_bounds__(512) ScoreTopkKernel(ScoreParams p) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int d = p.d;
  float* qp = reinterpret_cast<float*>(smem);  // [qg, D] pooled q
  float* kt = qp + p.qg * d;                   // [32, kts] pooled smoothed k (padded rows)
  const int kts = ScoreRowStride(d);
  float* sc = kt + kScoreTile * kts;  // [qg, nk] scores
  const int64_t h = blockIdx.y, qb0 = int64_t(blockIdx.x) * p.qg;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t qb = qb0 + w;
  for (int i = threadIdx.x; i < p.qg * d; i += blockDim.x) {
    const int64_t b = qb0 + i / d;
    float v = 0.f;
    if (b < p.nq) {
      const int64_t cnt = min(p.l, (b + 1) * p.block_q) - b * p.block_q;
      v = p.qsum[(h * p.nq + b) * d + i % d] / static_cast<float>(cnt);
    }
    qp[i] = v;
  }
  for (int64_t j0 = 0; j0 < p.nk; j0 += kScoreTile) {
    __syncthreads();  // qp written / previous kt tile consumed
    for (int i = threadIdx.x; i < kScoreTile * d; i += blockDim.x) {
      const int jj = i / d, c = i % d;
      const int64_t j = j0 + jj;
      float v = 0.f;
      if (j < p.nk) {
        const int64_t cnt = min(p.l, (j + 1) * p.block_k) - j * p.block_k;
        v = p.kblk[(h * p.nk + j) * d + c] / static_cast<float>(cnt) - p.kmean[h * d + c];
      }
      kt[jj * kts + c] = v;
    }
    __syncthreads();  // kt tile complete
    if (qb < p.nq && j0 + lane < p.nk) {
      float s = 0.f;
      if (d % 4 == 0) {
        const float4* qv = reinterpret_cast<const float4*>(qp + w * d);
        const float4* kv = reinterpret_cast<const float4*>(kt + lane * kts);
        for (int c4 = 0; c4 < d / 4; ++c4) {
          const float4 a = qv[c4], b = kv[c4];
          s = fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, fmaf(a.x, b.x, s))));
        }
      } else {
        for (int c = 0; c < d; ++c) s = fmaf(qp[w * d + c], kt[lane * kts + c], s);
      }
      sc[w * p.nk + j0 + lane] = s;
    }
  }
  __syncwarp();  // each warp reads back only the scores it wrote
  if (qb >= p.nq) return;
  const float* row = sc + w * p.nk;
  int8_t* map = p.map ? p.map + (h * p.nq + qb) * p.nk : nullptr;
  if (p.ksel == 0) {
    if (map) {
      for (int64_t j = lane; j < p.nk; j += 32) map[j] = 0;
    }
    return;
  }
  // thr = the ksel-th largest key: the largest value with count(key ≥ thr) ≥ ksel, bit by bit.
  uint32_t thr = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t cand = thr | (1u << bit);
    int cnt = 0;
    for (int64_t j = lane; j < p.nk; j += 32) cnt += OrderKey(row[j]) >= cand ? 1 : 0;
    if (__reduce_add_sync(0xffffffffu, cnt) >= p.ksel) thr = cand;
  }
  int gt = 0;
  for (int64_t j = lane; j < p.nk; j += 32) gt += OrderKey(row[j]) > thr ? 1 : 0;
  const int need = p.ksel - __reduce_add_sync(0xffffffffu, gt);  // ≥ 1 ties at thr to take
  int* lut = p.lut + (h * p.nq + qb) * p.ksel;
  const unsigned below = (1u << lane) - 1u;
  int eq_seen = 0, sel_seen = 0;
  for (int64_t base = 0; base < p.nk; base += 32) {
    const int64_t j = base + lane;
    const bool in = j < p.nk;
    const uint32_t key = in ? OrderKey(row[j]) : 0u;
    const bool eq = in && key == thr;
    const unsigned eq_mask = __ballot_sync(0xffffffffu, eq);
    const bool sel = in && (key > thr || (eq && eq_seen + __popc(eq_mask & below) < need));
    const unsigned sel_mask = __ballot_sync(0xffffffffu, sel);
    if (sel) lut[sel_seen + __popc(sel_mask & below)] = static_cast<int>(j);
    if (map && in) map[j] = sel ? 1 : 0;
    eq_seen += __popc(eq_mask);
    sel_seen += __popc(sel_mask);
  }
}

// ---------------------------------------------------------------------------------------------
// Linear branch: per-chunk partial Σ φ(k)ᵀ v and Σ φ(k), then the reduce with proj_l folded in.

struct KvParams {
  const bf16* k;         // [L, N, D]
  const bf16* v;         // [L, N, D]
  const float2* kstats;  // [N, L] (max, Σexp) of k rows (generic path only)
  float* kv_part;        // [N, nch, D, D]
  float* ks_part;        // [N, nch, D]
  float* kblk;           // [N, nk, D] block sums of k (64-row key blocks), or null
  int64_t l, heads, chunk_rows, nch, nk;
  int d;
};

// Tensor-core partial: CTA (chunk, head) walks its rows in 64-row tiles; φ(k) (softmax over D,
// rounded to bf16 like upstream's bf16 feature map) goes to shared memory, then
// acc[a, c] += Σ_t φ[t, a] v[t, c] with warp w owning rows a of 32 (D=128) or 16 (D=64). With kblk
// set (block_k = 64: a tile is a key block) it also writes the block sums of raw k for the block
// map, saving the block map a pass over k.
template <int D>
__global__ void __launch_bounds__(kThreads) KvPartialKernel(KvParams p) {
  constexpr int kChunks = D / 8, kTile = kBn * D * 2, kMt = D / 64, kNt = D / 8, kPer = D / 32;
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t s_base = SmemAddr(smem);
  const uint32_t s_k0 = s_base, s_v0 = s_base + 2 * kTile, s_phi = s_base + 4 * kTile;
  float* red = reinterpret_cast<float*>(smem + 5 * kTile);  // [4, D] per-warp column sums
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int h = blockIdx.y, ch = blockIdx.x;
  const int stride = static_cast<int>(p.heads) * D;
  const int r0 = ch * static_cast<int>(p.chunk_rows);
  const int r1 = min(static_cast<int>(p.l), r0 + static_cast<int>(p.chunk_rows));
  const int ntiles = (r1 - r0 + kBn - 1) / kBn;
  const bf16* kg = p.k + h * D;
  const bf16* vg = p.v + h * D;
  LoadTile<D, kBn>(s_k0, kg, r0, r1, stride, tid);
  LoadTile<D, kBn>(s_v0, vg, r0, r1, stride, tid);
  CpAsyncCommit();

  float acc[kMt][kNt][4];
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0.f;
  float ks[kPer];  // Σ φ over this warp's rows for columns c0..c0+kPer-1
#pragma unroll
  for (int i = 0; i < kPer; ++i) ks[i] = 0.f;
  const int c0 = lane * kPer;
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr uint32_t kRowBytes = D * 2;
  const int r7 = lane & 7;
  uint32_t v_off[4], phi_off[kMt];
  PairOffsets(v_off, (((lane >> 3) & 1) * 8 + r7) * kRowBytes, r7, lane >> 4);  // B from V (.trans)
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt) {  // A = φᵀ: features 16·cp.. are chunk pair cp of the φ rows
    const int cp = warp * kMt + mt;
    phi_off[mt] = ((lane >> 4) * 8 + r7) * kRowBytes + (cp >> 2) * 128 +
                  ((((2 * (cp & 3)) | ((lane >> 3) & 1)) ^ r7) << 4);
  }

  for (int it = 0; it < ntiles; ++it) {
    const int buf = it & 1;
    if (it + 1 < ntiles) {
      const int nr = r0 + (it + 1) * kBn;
      LoadTile<D, kBn>(s_k0 + (buf ^ 1) * kTile, kg, nr, r1, stride, tid);
      LoadTile<D, kBn>(s_v0 + (buf ^ 1) * kTile, vg, nr, r1, stride, tid);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();  // tile `it` landed for every thread's copies
    const uint32_t s_k = s_k0 + buf * kTile, s_v = s_v0 + buf * kTile;
    const int trow0 = r0 + it * kBn;
    // φ rows: warp w does rows 16w..16w+15; lane holds kPer consecutive columns.
    float kraw[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) kraw[i] = 0.f;
    for (int rr = 0; rr < 16; ++rr) {
      const int r = warp * 16 + rr;
      const uint32_t off = Swz<kChunks>(r, c0 / 8) + (c0 % 8) * 2;
      float x[kPer];
      if constexpr (kPer == 4) {
        const uint2 raw = *reinterpret_cast<const uint2*>(smem + (s_k - s_base) + off);
        x[0] = LoBf16(raw.x);
        x[1] = HiBf16(raw.x);
        x[2] = LoBf16(raw.y);
        x[3] = HiBf16(raw.y);
      } else {
        const uint32_t raw = *reinterpret_cast<const uint32_t*>(smem + (s_k - s_base) + off);
        x[0] = LoBf16(raw);
        x[1] = HiBf16(raw);
      }
      float mx = x[0];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        kraw[i] += x[i];  // zero-filled tail rows add nothing
        mx = fmaxf(mx, x[i]);
      }
      mx = WarpMax(mx);
      float sum = 0.f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        x[i] = Exp2((x[i] - mx) * kLog2e);
        sum += x[i];
      }
      sum = detail::WarpSum(sum);
      const bool valid = trow0 + r < r1;  // zero-filled tail rows must not count
      const float inv = valid ? 1.f / sum : 0.f;
      uint32_t packed[kPer / 2];
#pragma unroll
      for (int i = 0; i < kPer / 2; ++i) {
        packed[i] = PackBf16(x[2 * i] * inv, x[2 * i + 1] * inv);
        ks[2 * i] += LoBf16(packed[i]);
        ks[2 * i + 1] += HiBf16(packed[i]);
      }
      if constexpr (kPer == 4) {
        *reinterpret_cast<uint2*>(smem + (s_phi - s_base) + off) = make_uint2(packed[0], packed[1]);
      } else {
        *reinterpret_cast<uint32_t*>(smem + (s_phi - s_base) + off) = packed[0];
      }
    }
    if (p.kblk != nullptr) {
#pragma unroll
      for (int i = 0; i < kPer; ++i) red[warp * D + c0 + i] = kraw[i];
    }
    __syncthreads();  // φ tile (and the per-warp k column sums) complete
    if (p.kblk != nullptr) {
      for (int c = tid; c < D; c += kThreads) {
        p.kblk[(int64_t(h) * p.nk + trow0 / kBn) * D + c] =
            red[c] + red[D + c] + red[2 * D + c] + red[3 * D + c];
      }
    }
#pragma unroll
    for (int kk = 0; kk < kBn / 16; ++kk) {
      uint32_t a[kMt][4];
#pragma unroll
      for (int mt = 0; mt < kMt; ++mt) {
        // A = φᵀ (features × tokens) from the token-major tile: transposed 8×8 loads.
        LdMatrixX4Trans(a[mt], s_phi + phi_off[mt] + kk * 16 * kRowBytes);
      }
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t b[4];
        LdMatrixX4Trans(b, s_v + PairAt(v_off, np) + kk * 16 * kRowBytes);
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt) {
          MmaBf16(acc[mt][2 * np], a[mt], b[0], b[1]);
          MmaBf16(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // buffers `buf` and φ are free for the next prefetch / tile
  }

  float* out = p.kv_part + (int64_t(h) * p.nch + ch) * D * D;
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt) {
    const int a0 = warp * kMt * 16 + mt * 16 + g;
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt) {
      const int c = nt * 8 + 2 * t4;
      *reinterpret_cast<float2*>(out + a0 * D + c) = make_float2(acc[mt][nt][0], acc[mt][nt][1]);
      *reinterpret_cast<float2*>(out + (a0 + 8) * D + c) =
          make_float2(acc[mt][nt][2], acc[mt][nt][3]);
    }
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) red[warp * D + c0 + i] = ks[i];
  __syncthreads();  // all warps' column sums are in red
  for (int c = tid; c < D; c += kThreads) {
    p.ks_part[(int64_t(h) * p.nch + ch) * D + c] =
        red[c] + red[D + c] + red[2 * D + c] + red[3 * D + c];
  }
}

// (max, Σ exp(x - max)) over D of every row of one head: the softmax feature map's statistics.
__global__ void RowStatsKernel(const bf16* x, int64_t l, int64_t heads, int d, float2* stats) {
  const int lane = threadIdx.x & 31;
  const int64_t item = int64_t(blockIdx.x) * kGenericWarps + (threadIdx.x >> 5);
  if (item >= l * heads) return;
  const int64_t h = item / l, t = item % l;
  const bf16* r = x + (t * heads + h) * d;
  float mx = -INFINITY;
  for (int c = lane; c < d; c += 32) mx = fmaxf(mx, __bfloat162float(r[c]));
  mx = WarpMax(mx);
  float s = 0.f;
  for (int c = lane; c < d; c += 32) s += expf(__bfloat162float(r[c]) - mx);
  s = detail::WarpSum(s);
  if (lane == 0) stats[h * l + t] = make_float2(mx, s);
}

// Simple partial for any D: CTA (chunk, feature a, head), thread per value column c.
__global__ void KvPartialGenericKernel(KvParams p) {
  const int64_t ch = blockIdx.x, h = blockIdx.z;
  const int a = blockIdx.y, d = p.d;
  const int64_t r0 = ch * p.chunk_rows, r1 = min(p.l, r0 + p.chunk_rows);
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float acc = 0.f, ksa = 0.f;
    for (int64_t t = r0; t < r1; ++t) {
      const float2 st = p.kstats[h * p.l + t];
      const float phi = expf(__bfloat162float(p.k[(t * p.heads + h) * d + a]) - st.x) / st.y;
      acc += phi * __bfloat162float(p.v[(t * p.heads + h) * d + c]);
      ksa += phi;
    }
    p.kv_part[((h * p.nch + ch) * d + a) * d + c] = acc;
    if (c == 0) p.ks_part[(h * p.nch + ch) * d + a] = ksa;
  }
}

struct ReduceParams {
  const float* kv_part;  // [N, nch, D, D]
  const float* ks_part;  // [N, nch, D]
  ConstBuf w;            // [D, D] proj_l weight
  bf16* m16;             // [N, D, D] M = KV·Wᵀ, bf16 (tensor-core epilogue operand)
  float* m32;            // [N, D, D] the same in fp32 (generic path)
  float* ksum;           // [N, D]
  int64_t nch;
  int d;
};

// KV[a, :] = Σ_chunks partials; M[a, r] = Σ_c KV[a, c]·W[r, c], so proj_l(o_l) = φ(q)·M / den + b.
__global__ void __launch_bounds__(256) KvReduceKernel(ReduceParams p) {
  __shared__ float rows[kReduceRows * kSlaMaxHeadDim];
  const int d = p.d;
  const int64_t h = blockIdx.y;
  const int a0 = blockIdx.x * kReduceRows;
  for (int i = threadIdx.x; i < kReduceRows * d; i += blockDim.x) {
    const int a = a0 + i / d, c = i % d;
    float s = 0.f;
    if (a < d) {
      for (int64_t ch = 0; ch < p.nch; ++ch) s += p.kv_part[((h * p.nch + ch) * d + a) * d + c];
    }
    rows[i] = s;
  }
  if (blockIdx.x == 0) {
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
      float s = 0.f;
      for (int64_t ch = 0; ch < p.nch; ++ch) s += p.ks_part[(h * p.nch + ch) * d + c];
      p.ksum[h * d + c] = s;
    }
  }
  __syncthreads();  // summed KV rows are in shared memory
  for (int i = threadIdx.x; i < kReduceRows * d; i += blockDim.x) {
    const int ar = i / d, r = i % d, a = a0 + ar;
    if (a >= d) continue;
    float s = 0.f;
    for (int c = 0; c < d; ++c) s = fmaf(rows[ar * d + c], Load(p.w, int64_t(r) * d + c), s);
    p.m32[(h * d + a) * d + r] = s;
    p.m16[(h * d + a) * d + r] = __float2bfloat16_rn(s);
  }
}

// ---------------------------------------------------------------------------------------------
// Sparse softmax branch + linear branch output.

struct SparseParams {
  const bf16* q;  // [L, N, D]
  const bf16* k;
  const bf16* v;
  const int* lut;     // [N, nq, ksel]
  const bf16* m16;    // [N, D, D]
  const float* m32;   // [N, D, D]
  const float* ksum;  // [N, D]
  ConstBuf bias;      // [D]
  bf16* out;          // [L, N, D]
  bf16* sparse_out;   // [L, N, D] or null
  int64_t l, heads, nq;
  int d, block_q, block_k, ksel;
  float scale;  // 1/sqrt(D)
};


#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// wgmma (sm_90a): warpgroup-wide m64nNk16 bf16 → fp32, asynchronous; fence before, commit + wait
// after.
__device__ __forceinline__ void WgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaWaitAll() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
// Pins registers an in-flight wgmma reads or writes: the compiler may not move their other uses
// across this point (issued right before the fence and right after the wait).
template <int N>
__device__ __forceinline__ void PinRegs(float (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(r[i][e])::"memory");
}
template <int N>
__device__ __forceinline__ void PinRegs(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(r[i][e])::"memory");
}
// Generic-proxy writes to shared memory (cp.async, st.shared) become visible to wgmma reads.
__device__ __forceinline__ void FenceProxyAsync() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// d[64×64] (+)= A[64×16] · B[16×64], A and B K-major in shared memory (descriptors).
__device__ __forceinline__ void WgmmaSS64(float (&d)[8][4], uint64_t desc_a, uint64_t desc_b,
                                          int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, "
      "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),
        "+f"(d[7][2]), "+f"(d[7][3])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// d[64×128] += A[64×16] · B[16×128], A from registers (mma A-fragment layout per warp), B K-major
// in shared memory.
__device__ __forceinline__ void WgmmaRS128(float (&d)[16][4], const uint32_t (&a)[4],
                                           uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, "
      "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "
      "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "
      "%56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),
        "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]),
        "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]),
        "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]),
        "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]),
        "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]),
        "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]),
        "+f"(d[15][2]), "+f"(d[15][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
}

// K-major 128-byte-swizzled operand: rows of 128 bytes (64 bf16), 8-row groups 1024 bytes apart,
// atoms 1024-byte aligned; the leading offset is unused for this layout (1). A k16 step inside the
// row is +32 bytes on the start address.
__device__ __forceinline__ uint64_t SmemDescSw128(uint32_t addr) {
  return static_cast<uint64_t>((addr >> 4) & 0x3FFFu) | (uint64_t{1} << 16) |
         (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}
#endif

// One CTA per (query block of 128 rows, head); warp w owns rows 32w..32w+31 as two m16 tiles.
// Main loop over the LUT's key blocks (K/V double-buffered with cp.async): S = QKᵀ, fp32 online
// softmax in exp2, O += PV with P rounded to bf16. Epilogue: o_s = O/l; φ(q) from the Q tile;
// out = o_s + φ(q)·M / (φ(q)·ksum + 1e-5·Σφ) + b, staged through shared memory.
template <int D>
__global__ void __launch_bounds__(kThreads, 2) SparseAttnKernel(SparseParams p) {
  constexpr int kTileQ = kBm * D * 2, kTileKv = kBn * D * 2;
  constexpr int kDt = D / 8;                // n8 tiles over D
  constexpr int kSub = D == 128 ? 32 : 64;  // keys per online-softmax step (register budget)
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t s_base = SmemAddr(smem);
  const uint32_t s_q = s_base, s_k0 = s_base + kTileQ, s_v0 = s_k0 + 2 * kTileKv;
  float* s_vec = reinterpret_cast<float*>(smem + kTileQ + 4 * kTileKv);  // ksum [D], bias [D]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
  constexpr uint32_t kRowBytes = D * 2;
  const int r7 = lane & 7;
  uint32_t q_off[4], k_off[4], v_off[4];
  PairOffsets(q_off, (warp * 32 + (lane & 15)) * kRowBytes, r7, lane >> 4);     // A from Q rows
  PairOffsets(k_off, ((lane >> 4) * 8 + r7) * kRowBytes, r7, (lane >> 3) & 1);  // B from K rows
  PairOffsets(v_off, (((lane >> 3) & 1) * 8 + r7) * kRowBytes, r7,
              lane >> 4);  // B from V / M (.trans)

  LoadTile<D, kBm>(s_q, qg, q0, l, stride, tid);
  int kb_next = 0;
  if (nsel > 0) {
    const int kb = lut[0];
    LoadTile<D, kBn>(s_k0, kg, kb * kBn, l, stride, tid);
    LoadTile<D, kBn>(s_v0, vg, kb * kBn, l, stride, tid);
    kb_next = nsel > 1 ? lut[1] : 0;
  }
  CpAsyncCommit();

  float o[2][kDt][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int dt = 0; dt < kDt; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
  float m_run[2][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}};
  float l_run[2][2] = {{0.f, 0.f}, {0.f, 0.f}};

  int kb_cur = nsel > 0 ? lut[0] : 0;
  for (int it = 0; it < nsel; ++it) {
    const int buf = it & 1;
    if (it + 1 < nsel) {
      LoadTile<D, kBn>(s_k0 + (buf ^ 1) * kTileKv, kg, kb_next * kBn, l, stride, tid);
      LoadTile<D, kBn>(s_v0 + (buf ^ 1) * kTileKv, vg, kb_next * kBn, l, stride, tid);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();  // tile `it` (and Q) landed for every thread's copies
    const int kb_after = it + 2 < nsel ? lut[it + 2] : 0;  // read early: hides the global latency
    const uint32_t s_k = s_k0 + buf * kTileKv, s_v = s_v0 + buf * kTileKv;
    const int valid = min(kBn, l - kb_cur * kBn);

    // The 64-key tile in sub-tiles of kSub keys, each a full online-softmax step: for D = 128 the
    // S accumulators of 32 keys (32 registers) leave room for O (128) without spilling.
#pragma unroll
    for (int sub = 0; sub < kBn / kSub; ++sub) {
      constexpr int kSt = kSub / 8;  // n8 tiles of keys
      float s[2][kSt][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) LdMatrixX4(a[mt], s_q + PairAt(q_off, ks) + mt * 16 * kRowBytes);
#pragma unroll
        for (int np = 0; np < kSt / 2; ++np) {
          uint32_t b[4];
          LdMatrixX4(b, s_k + PairAt(k_off, ks) + (sub * kSub + np * 16) * kRowBytes);
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            MmaBf16(s[mt][2 * np], a[mt], b[0], b[1]);
            MmaBf16(s[mt][2 * np + 1], a[mt], b[2], b[3]);
          }
        }
      }
      if (valid < kBn) {  // tail key block: keys ≥ L do not exist
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
          for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              if (sub * kSub + nt * 8 + 2 * t4 + (e & 1) >= valid) s[mt][nt][e] = -INFINITY;
            }
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          float mx = -INFINITY;
#pragma unroll
          for (int nt = 0; nt < kSt; ++nt)
            mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hr], s[mt][nt][2 * hr + 1]));
          mx = QuadMax(mx);
          // A sub-tile may be all tail (mx = -inf); m_use keeps exp2 away from (-inf) - (-inf).
          const float m_new = fmaxf(m_run[mt][hr], mx * sl2);
          const float m_use = m_new == -INFINITY ? 0.f : m_new;
          const float corr = Exp2(m_run[mt][hr] - m_use);  // 0 while m_run is -inf
          m_run[mt][hr] = m_new;
          float sum = 0.f;
#pragma unroll
          for (int nt = 0; nt < kSt; ++nt) {
#pragma unroll
            for (int e = 2 * hr; e < 2 * hr + 2; ++e) {
              const float pv = Exp2(fmaf(s[mt][nt][e], sl2, -m_use));
              s[mt][nt][e] = pv;
              sum += pv;
            }
          }
          l_run[mt][hr] = l_run[mt][hr] * corr + sum;
#pragma unroll
          for (int dt = 0; dt < kDt; ++dt) {
            o[mt][dt][2 * hr] *= corr;
            o[mt][dt][2 * hr + 1] *= corr;
          }
        }
      }
#pragma unroll
      for (int j = 0; j < kSub / 16; ++j) {
        uint32_t a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2;
             ++mt) {  // the S accumulator layout of keys 16j..16j+15 is the A layout
          a[mt][0] = PackBf16(s[mt][2 * j][0], s[mt][2 * j][1]);
          a[mt][1] = PackBf16(s[mt][2 * j][2], s[mt][2 * j][3]);
          a[mt][2] = PackBf16(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
          a[mt][3] = PackBf16(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t b[4];
          LdMatrixX4Trans(b, s_v + PairAt(v_off, dp) + (sub * kSub + j * 16) * kRowBytes);
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            MmaBf16(o[mt][2 * dp], a[mt], b[0], b[1]);
            MmaBf16(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
          }
        }
      }
    }
    kb_cur = kb_next;
    kb_next = kb_after;
    __syncthreads();  // buffer `buf` is free for the prefetch of tile it + 2
  }

  // ---- epilogue ----
  CpAsyncWait<0>();
  __syncthreads();  // with no selected block only Q was loaded; K/V buffers are free either way
  const uint32_t s_m = s_k0;  // M_h [D, D] bf16 reuses the K buffers (2·kTileKv ≥ D·D·2 bytes)
  static_assert(2 * kTileKv >= D * D * 2 && 2 * kTileKv >= 4 * 32 * D * 2, "epilogue buffers");
  LoadM<D, kThreads>(s_m, p.m16 + h * D * D, tid);
  CpAsyncCommit();
  for (int c = tid; c < D; c += kThreads) {
    s_vec[c] = p.ksum[h * D + c];
    s_vec[D + c] = Load(p.bias, c);
  }
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const float lsum = QuadSum(l_run[mt][hr]);
      const float inv = lsum > 0.f ? 1.f / lsum : 0.f;  // no selected block → o_s = 0
#pragma unroll
      for (int dt = 0; dt < kDt; ++dt) {
        o[mt][dt][2 * hr] *= inv;
        o[mt][dt][2 * hr + 1] *= inv;
      }
    }
  uint8_t* stage = smem + (s_v0 - s_base) + warp * (32 * D * 2);  // V buffers: 32 rows per warp
  const int row0 = q0 + warp * 32;
  if (p.sparse_out != nullptr) {
    StageTiles<D, 2>(o, stage, lane);
    __syncwarp();
    FlushStage<D, 32>(stage, p.sparse_out + h * D, row0, l, stride, lane);
    __syncwarp();  // staging is rewritten below
  }
  CpAsyncWait<0>();
  __syncthreads();  // M_h, ksum and bias are in shared memory
  LinearEpilogue<D, 2, 128, kRowBytes>(o, q_off, s_q, s_m, s_vec, stage, p.out + h * D, row0, l,
                                       stride, lane);
}

// ---------------------------------------------------------------------------------------------
// sm_90a sparse branch: the same algorithm with wgmma (D = 128). Two warpgroups own 64 query rows
// each; S = Q·Kᵀ (m64n64k16, both operands 128B-swizzled K-major tiles in shared memory), P stays
// in registers as the A operand of O += P·V (m64n128k16), V transposed in shared memory per tile so
// that every operand is K-major. No TMA or warp specialisation: all 256 threads load with cp.async.

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
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
    PinRegs(s);
    WgmmaFence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t qa = s_q + (kk >> 2) * (kBm * kPanel) + wg * (64 * kPanel) + (kk & 3) * 32;
      const uint32_t ka = s_k0 + buf * kWgKBuf + (kk >> 2) * (kBn * kPanel) + (kk & 3) * 32;
      WgmmaSS64(s, SmemDescSw128(qa), SmemDescSw128(ka), kk > 0 ? 1 : 0);
    }
    WgmmaCommit();
    WgmmaWaitAll();
    PinRegs(s);
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
    PinRegs(o[0]);
    PinRegs(a);
    WgmmaFence();
#pragma unroll
    for (int j = 0; j < 4; ++j) WgmmaRS128(o[0], a[j], SmemDescSw128(s_vt + j * 32));
    WgmmaCommit();
    WgmmaWaitAll();
    PinRegs(o[0]);
    PinRegs(a);
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
#elif defined(__CUDA_ARCH__)
  __trap();  // built without sm_90a features; the host selects this kernel only on sm_90
#endif
}

// Any D ≤ 256, any block sizes: one warp per (query row, head), keys one at a time (correctness
// path; the tensor-core kernel covers the model's shapes).
__global__ void __launch_bounds__(kGenericWarps * 32) SparseAttnGenericKernel(SparseParams p) {
  constexpr int kPer = kSlaMaxHeadDim / 32;
  __shared__ float s_e[kGenericWarps][kSlaMaxHeadDim];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t item = int64_t(blockIdx.x) * kGenericWarps + w;
  if (item >= p.l * p.heads) return;  // whole warps exit together
  const int64_t t = item / p.heads, h = item % p.heads;
  const int d = p.d;
  float q[kPer], acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = lane + 32 * i;
    q[i] = c < d ? __bfloat162float(p.q[(t * p.heads + h) * d + c]) : 0.f;
    acc[i] = 0.f;
  }
  const int* lut = p.lut + (h * p.nq + t / p.block_q) * p.ksel;
  float m = -INFINITY, lsum = 0.f;
  for (int sidx = 0; sidx < p.ksel; ++sidx) {
    const int64_t j0 = int64_t(lut[sidx]) * p.block_k, j1 = min(p.l, j0 + p.block_k);
    for (int64_t j = j0; j < j1; ++j) {
      float part = 0.f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int c = lane + 32 * i;
        if (c < d) part += q[i] * __bfloat162float(p.k[(j * p.heads + h) * d + c]);
      }
      const float sc = detail::WarpSum(part) * p.scale;
      const float m_new = fmaxf(m, sc);
      const float corr = expf(m - m_new), pw = expf(sc - m_new);
      lsum = lsum * corr + pw;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int c = lane + 32 * i;
        const float vv = c < d ? __bfloat162float(p.v[(j * p.heads + h) * d + c]) : 0.f;
        acc[i] = acc[i] * corr + pw * vv;
      }
      m = m_new;
    }
  }
  const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    if (lane + 32 * i < d) mx = fmaxf(mx, q[i]);
  }
  mx = WarpMax(mx);
  float se = 0.f, sk = 0.f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = lane + 32 * i;
    if (c < d) {
      const float e = expf(q[i] - mx);
      s_e[w][c] = e;
      se += e;
      sk += e * p.ksum[h * d + c];
    }
  }
  const float rden = 1.f / (detail::WarpSum(sk) + 1e-5f * detail::WarpSum(se));
  __syncwarp();  // s_e row complete
  const float* m32 = p.m32 + h * d * d;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int r = lane + 32 * i;
    if (r >= d) continue;
    float lin = 0.f;
    for (int a = 0; a < d; ++a) lin = fmaf(s_e[w][a], m32[a * d + r], lin);
    const float os = acc[i] * inv;
    const int64_t at = (t * p.heads + h) * d + r;
    if (p.sparse_out) p.sparse_out[at] = __float2bfloat16_rn(os);
    p.out[at] = __float2bfloat16_rn(os + lin * rden + Load(p.bias, r));
  }
}

template <typename Kernel>
cudaError_t SetSmem(Kernel kernel, size_t bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(bytes));
}

// Per-kernel cudaEvent timing for SlaArgs::kernel_ms; without it every call is a no-op.
class KernelTimer {
 public:
  KernelTimer(float* ms, cudaStream_t stream) : ms_(ms), stream_(stream) {
    if (ms_ != nullptr) {
      for (int i = 0; i < kSlaNumKernels; ++i) ms_[i] = -1.f;
    }
  }
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;
  ~KernelTimer() {
    for (int i = 0; i < n_; ++i) cudaEventDestroy(ev_[i]);
  }
  cudaError_t Start() { return ms_ != nullptr ? Record(-1) : cudaSuccess; }
  // Marks the end of kernel `which`, launched since the previous mark.
  cudaError_t Mark(int which) { return ms_ != nullptr ? Record(which) : cudaSuccess; }
  // Waits for the last mark and writes each marked kernel's time.
  cudaError_t Finish() {
    if (ms_ == nullptr || n_ == 0) return cudaSuccess;
    cudaError_t e = cudaEventSynchronize(ev_[n_ - 1]);
    for (int i = 1; i < n_ && e == cudaSuccess; ++i) {
      float t = 0.f;
      e = cudaEventElapsedTime(&t, ev_[i - 1], ev_[i]);
      ms_[which_[i]] = std::max(ms_[which_[i]], 0.f) + t;
    }
    return e;
  }

 private:
  cudaError_t Record(int which) {
    if (n_ == kMax) return cudaErrorInvalidValue;
    if (cudaError_t e = cudaEventCreate(&ev_[n_]); e != cudaSuccess) return e;
    which_[n_++] = which;
    return cudaEventRecord(ev_[n_ - 1], stream_);
  }
  static constexpr int kMax = 16;
  float* ms_;
  cudaStream_t stream_;
  cudaEvent_t ev_[kMax] = {};
  int which_[kMax] = {};
  int n_ = 0;
};

cudaError_t LaunchBlockMap(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                           cudaStream_t stream) {
  float* qsum = reinterpret_cast<float*>(ws + pl.qsum);
  float* kblk = reinterpret_cast<float*>(ws + pl.kblk);
  float* kmean = reinterpret_cast<float*>(ws + pl.kmean);
  const bf16* q = static_cast<const bf16*>(a.q);
  const bf16* k = static_cast<const bf16*>(a.k);
  const dim3 gq(static_cast<unsigned>(pl.nq), static_cast<unsigned>(a.heads));
  const dim3 gk(static_cast<unsigned>(pl.nk), static_cast<unsigned>(a.heads));
  PoolSumKernel<<<gq, 256, 0, stream>>>(q, a.l, a.heads, a.d, a.block_q, pl.nq, pl.vec_pool_q,
                                        qsum);
  if (cudaError_t e = timer.Mark(kSlaPoolQ); e != cudaSuccess) return e;
  if (!pl.kblk_in_kv) {
    PoolSumKernel<<<gk, 256, 0, stream>>>(k, a.l, a.heads, a.d, a.block_k, pl.nk, pl.vec_pool_k,
                                          kblk);
    if (cudaError_t e = timer.Mark(kSlaPoolK); e != cudaSuccess) return e;
  }
  const dim3 gm(static_cast<unsigned>(a.heads), static_cast<unsigned>((a.d + 31) / 32));
  KMeanKernel<<<gm, 256, 0, stream>>>(kblk, pl.nk, a.l, a.d, kmean);
  if (cudaError_t e = timer.Mark(kSlaKMean); e != cudaSuccess) return e;
  ScoreParams sp{qsum,         kblk,      kmean,     reinterpret_cast<int*>(ws + pl.lut),
                 a.sparse_map, a.l,       pl.nq,     pl.nk,
                 a.d,          a.block_q, a.block_k, a.ksel,
                 pl.qg};
  const size_t smem = ScoreSmemBytes(pl.qg, a.d, pl.nk);
  if (cudaError_t e = SetSmem(ScoreTopkKernel, smem); e != cudaSuccess) return e;
  const dim3 gs(static_cast<unsigned>((pl.nq + pl.qg - 1) / pl.qg), static_cast<unsigned>(a.heads));
  ScoreTopkKernel<<<gs, 32 * pl.qg, smem, stream>>>(sp);
  if (cudaError_t e = timer.Mark(kSlaScoreTopk); e != cudaSuccess) return e;
  return cudaGetLastError();
}

cudaError_t LaunchLinear(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                         cudaStream_t stream) {
  KvParams kp;
  kp.k = static_cast<const bf16*>(a.k);
  kp.v = static_cast<const bf16*>(a.v);
  kp.kstats = reinterpret_cast<const float2*>(ws + pl.kstats);
  kp.kv_part = reinterpret_cast<float*>(ws + pl.kv_part);
  kp.ks_part = reinterpret_cast<float*>(ws + pl.ks_part);
  kp.kblk = pl.kblk_in_kv ? reinterpret_cast<float*>(ws + pl.kblk) : nullptr;
  kp.l = a.l;
  kp.heads = a.heads;
  kp.chunk_rows = pl.chunk_rows;
  kp.nch = pl.nch;
  kp.nk = pl.nk;
  kp.d = a.d;
  const dim3 grid(static_cast<unsigned>(pl.nch), static_cast<unsigned>(a.heads));
  if (pl.fast_kv && a.d == 128) {
    if (cudaError_t e = SetSmem(KvPartialKernel<128>, KvSmemBytes(128)); e != cudaSuccess) return e;
    KvPartialKernel<128><<<grid, kThreads, KvSmemBytes(128), stream>>>(kp);
  } else if (pl.fast_kv && a.d == 64) {
    if (cudaError_t e = SetSmem(KvPartialKernel<64>, KvSmemBytes(64)); e != cudaSuccess) return e;
    KvPartialKernel<64><<<grid, kThreads, KvSmemBytes(64), stream>>>(kp);
  } else {
    const int64_t items = a.l * a.heads;
    RowStatsKernel<<<static_cast<unsigned>((items + kGenericWarps - 1) / kGenericWarps),
                     kGenericWarps * 32, 0, stream>>>(kp.k, a.l, a.heads, a.d,
                                                      reinterpret_cast<float2*>(ws + pl.kstats));
    const dim3 gg(static_cast<unsigned>(pl.nch), static_cast<unsigned>(a.d),
                  static_cast<unsigned>(a.heads));
    KvPartialGenericKernel<<<gg, 128, 0, stream>>>(kp);
  }
  if (cudaError_t e = timer.Mark(kSlaKvPartial); e != cudaSuccess) return e;
  ReduceParams rp{kp.kv_part,
                  kp.ks_part,
                  a.proj_w,
                  reinterpret_cast<bf16*>(ws + pl.m16),
                  reinterpret_cast<float*>(ws + pl.m32),
                  reinterpret_cast<float*>(ws + pl.ksum),
                  pl.nch,
                  a.d};
  const dim3 gr(static_cast<unsigned>((a.d + kReduceRows - 1) / kReduceRows),
                static_cast<unsigned>(a.heads));
  KvReduceKernel<<<gr, 256, 0, stream>>>(rp);
  if (cudaError_t e = timer.Mark(kSlaKvReduce); e != cudaSuccess) return e;
  return cudaGetLastError();
}

cudaError_t LaunchSparse(const SlaArgs& a, const Plan& pl, uint8_t* ws, KernelTimer& timer,
                         cudaStream_t stream) {
  SparseParams sp{static_cast<const bf16*>(a.q),
                  static_cast<const bf16*>(a.k),
                  static_cast<const bf16*>(a.v),
                  reinterpret_cast<const int*>(ws + pl.lut),
                  reinterpret_cast<const bf16*>(ws + pl.m16),
                  reinterpret_cast<const float*>(ws + pl.m32),
                  reinterpret_cast<const float*>(ws + pl.ksum),
                  a.proj_b,
                  static_cast<bf16*>(a.out),
                  static_cast<bf16*>(a.sparse_out),
                  a.l,
                  a.heads,
                  pl.nq,
                  a.d,
                  a.block_q,
                  a.block_k,
                  a.ksel,
                  1.0f / std::sqrt(static_cast<float>(a.d))};
  const dim3 grid(static_cast<unsigned>(pl.nq), static_cast<unsigned>(a.heads));
  if (pl.sm90) {
    sla_tiles::SlaSm90Args s9;
    s9.q = sp.q;
    s9.k = sp.k;
    s9.v = sp.v;
    s9.lut = sp.lut;
    s9.m16 = sp.m16;
    s9.ksum = sp.ksum;
    s9.bias = sp.bias;
    s9.out = sp.out;
    s9.sparse_out = sp.sparse_out;
    s9.l = a.l;
    s9.heads = a.heads;
    s9.nq = pl.nq;
    s9.ksel = a.ksel;
    s9.scale = sp.scale;
    if (cudaError_t e = sla_tiles::LaunchSlaSparseSm90(s9, stream); e != cudaSuccess) return e;
    return timer.Mark(kSlaSparse);
  }
  if (pl.wgmma) {
    if (cudaError_t e = SetSmem(SparseAttnWgmmaKernel, WgmmaSmemBytes()); e != cudaSuccess)
      return e;
    SparseAttnWgmmaKernel<<<grid, kWgThreads, WgmmaSmemBytes(), stream>>>(sp);
  } else if (pl.fast_attn && a.d == 128) {
    if (cudaError_t e = SetSmem(SparseAttnKernel<128>, SparseSmemBytes(128)); e != cudaSuccess)
      return e;
    SparseAttnKernel<128><<<grid, kThreads, SparseSmemBytes(128), stream>>>(sp);
  } else if (pl.fast_attn && a.d == 64) {
    if (cudaError_t e = SetSmem(SparseAttnKernel<64>, SparseSmemBytes(64)); e != cudaSuccess)
      return e;
    SparseAttnKernel<64><<<grid, kThreads, SparseSmemBytes(64), stream>>>(sp);
  } else {
    const int64_t items = a.l * a.heads;
    SparseAttnGenericKernel<<<static_cast<unsigned>((items + kGenericWarps - 1) / kGenericWarps),
                              kGenericWarps * 32, 0, stream>>>(sp);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  return timer.Mark(kSlaSparse);
}

}  // namespace

size_t SlaWorkspaceBytes(const SlaArgs& args) {
  Plan plan;
  return MakePlan(args, &plan) == cudaSuccess ? plan.total : 0;
}

cudaError_t LaunchSla(const SlaArgs& args, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream) {
  Plan plan;
  if (cudaError_t e = MakePlan(args, &plan); e != cudaSuccess) return e;
  if (workspace == nullptr || workspace_bytes < plan.total ||
      (reinterpret_cast<uintptr_t>(workspace) & 255) != 0) {
    return cudaErrorInvalidValue;
  }
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  KernelTimer timer(args.kernel_ms, stream);
  if (cudaError_t e = timer.Start(); e != cudaSuccess) return e;
  // The K^T V pass first: on the tensor-core path it also produces the key block sums.
  if (cudaError_t e = LaunchLinear(args, plan, ws, timer, stream); e != cudaSuccess) return e;
  if (cudaError_t e = LaunchBlockMap(args, plan, ws, timer, stream); e != cudaSuccess) return e;
  if (cudaError_t e = LaunchSparse(args, plan, ws, timer, stream); e != cudaSuccess) return e;
  return timer.Finish();
}

const char* SlaKernelName(int kernel) {
  switch (kernel) {
    case kSlaKvPartial: return "kv_partial";
    case kSlaKvReduce: return "kv_reduce";
    case kSlaPoolQ: return "pool_q";
    case kSlaPoolK: return "pool_k";
    case kSlaKMean: return "kmean";
    case kSlaScoreTopk: return "score_topk";
    case kSlaSparse: return "sparse";
    default: return "?";
  }
}

}  // namespace turbovid::kernels
