// The backend op interface the models are written against. Each op is a plain struct of tensor
// pointers and parameters; a backend registers one function per op kind in a single table that
// serves both Run() and Supports(), so dispatch and capability cannot drift (docs/design.md §7).
// Shape comments use L tokens, N heads, D head dim, E width, C channels, T/H/W frames/height/width.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine {

enum class Activation : uint8_t { kNone, kGeluTanh, kSilu };

// y = act(x · wᵀ + bias). Weights keep the checkpoint's [out, in] layout.
struct LinearOp {
  const Tensor* x = nullptr;     // [M, K]
  const Tensor* w = nullptr;     // [N, K]
  const Tensor* bias = nullptr;  // [N] or null
  Activation act = Activation::kNone;
  Tensor* y = nullptr;           // [M, N]
};

// TurboDiffusion W8A8 linear (docs/model-math.md §11): x rounded to bf16, quantised per
// 128x128 tile with scale amax/128 (RNE, saturating), int32 dot per 128-wide K block, dequantised
// into an fp32 accumulator block by block, rounded to bf16, then + bf16 bias rounded to bf16.
struct Int8LinearOp {
  const Tensor* x = nullptr;        // [M, K]
  const Tensor* w_int8 = nullptr;   // [N, K] I8
  const Tensor* w_scale = nullptr;  // [ceil(N/128), ceil(K/128)] F32
  const Tensor* bias = nullptr;     // [N] or null
  Tensor* y = nullptr;              // [M, N]
  // Optional probes (golden checks): quantised activation, its scales, the fp32 accumulator.
  Tensor* x_int8 = nullptr;   // [M, K] I8
  Tensor* x_scale = nullptr;  // [ceil(M/128), ceil(K/128)] F32
  Tensor* acc = nullptr;      // [M, N] F32
};

// FP8 e4m3 linear (docs/model-math.md §11.6): the weight quantised per output row at load
// (Fp8QuantizeOp), x per token on every call: v = bf16(x), amax = max|v| over the row,
// codes = e4m3_rn_satfinite(v · (448/amax)), scale = amax/448 (a zero row: scale 0, codes 0).
// acc = Σ_k xq·wq (exact products, fp32 or wider sums), y = bf16(acc · x_scale[m] · w_scale[n]),
// then y = bf16(y + bf16(bias)). Codes are raw e4m3 bytes in U8 tensors.
struct Fp8LinearOp {
  const Tensor* x = nullptr;        // [M, K]
  const Tensor* w_fp8 = nullptr;    // [N, K] U8 (e4m3 codes)
  const Tensor* w_scale = nullptr;  // [N] F32
  const Tensor* bias = nullptr;     // [N] or null
  Tensor* y = nullptr;              // [M, N]
  // Optional probes (parity checks): the activation's codes and per-row scales.
  Tensor* x_fp8 = nullptr;    // [M, K] U8
  Tensor* x_scale = nullptr;  // [M] F32
};

// Per-row e4m3 quantiser of Fp8LinearOp (the same rounding): the load-time weight converter of
// the turbo-fp8 variant and the activation half of the linear.
struct Fp8QuantizeOp {
  const Tensor* x = nullptr;  // [R, C]
  Tensor* q = nullptr;        // [R, C] U8 (e4m3 codes)
  Tensor* scale = nullptr;    // [R] F32
};

// y = LN(x) · (1 + scale) + shift, LN over E with optional affine weight/bias.
// scale/shift hold E values (broadcast to every row) or M·E values (per row); either may be null.
struct LayerNormOp {
  const Tensor* x = nullptr;       // [M, E]
  const Tensor* weight = nullptr;  // [E] or null
  const Tensor* bias = nullptr;    // [E] or null
  const Tensor* scale = nullptr;   // [E] / [1, E] / [M, E] or null
  const Tensor* shift = nullptr;   // same as scale
  float eps = 1e-6f;
  Tensor* y = nullptr;  // [M, E]
};

// y = x · rsqrt(mean(x²) + eps) · weight over E (Wan q/k norm across heads, T5 norm).
// With rope tables, y is then rotated as RopeOp does, each row viewed as E/D heads of width
// D = 2P (the DiT's q/k norm fused with its 3-D RoPE).
struct RmsNormOp {
  const Tensor* x = nullptr;       // [M, E]
  const Tensor* weight = nullptr;  // [E] or null
  float eps = 1e-6f;
  Tensor* y = nullptr;  // [M, E]
  const Tensor* rope_cos = nullptr;  // [M, P] F32 or null
  const Tensor* rope_sin = nullptr;  // [M, P] F32 (with rope_cos)
  // Tensor parallelism (docs/parallelism.md §2): x holds one rank's columns of rows `full_width`
  // wide, and the mean square is row_sum_sq[i] / full_width (Σx² over the whole row, summed over
  // the ranks) instead of x's own.
  const Tensor* row_sum_sq = nullptr;  // [M] F32 or null
  int64_t full_width = 0;              // with row_sum_sq: ≥ E
};

// y[i] = Σ_j x[i, j]² (F32; the CPU backend sums in float64): the partial statistic of a
// tensor-parallel RMSNorm, all-reduced before RmsNormOp.row_sum_sq.
struct RowSumSquaresOp {
  const Tensor* x = nullptr;  // [M, E]
  Tensor* y = nullptr;        // [M] F32
};

// In-place interleaved rotary embedding: pairs (x[2j], x[2j+1]) rotated by angle table row l.
struct RopeOp {
  Tensor* x = nullptr;          // [L, N, D]
  const Tensor* cos = nullptr;  // [L, D/2] F32
  const Tensor* sin = nullptr;  // [L, D/2] F32
};

// out = softmax(q·kᵀ·scale + bias) · v per head, non-causal, all keys.
struct AttentionOp {
  const Tensor* q = nullptr;     // [Lq, N, D]
  const Tensor* k = nullptr;     // [Lk, N, D]
  const Tensor* v = nullptr;     // [Lk, N, Dv]
  const Tensor* bias = nullptr;  // [N, Lq, Lk] or null (T5 relative position bias)
  float scale = 1.0f;
  Tensor* out = nullptr;  // [Lq, N, Dv]
};

// TurboDiffusion SLA (docs/model-math.md §9): block map from mean-pooled q and smoothed k,
// fixed top-k key blocks per query block, sparse softmax branch over the selected blocks plus
// proj_l(global softmax-feature-map linear attention over all keys).
struct SlaOp {
  const Tensor* q = nullptr;       // [L, N, D]
  const Tensor* k = nullptr;       // [L, N, D]
  const Tensor* v = nullptr;       // [L, N, D]
  const Tensor* proj_w = nullptr;  // [D, D]
  const Tensor* proj_b = nullptr;  // [D]
  float topk = 0.1f;
  int block_q = 128;
  int block_k = 64;
  Tensor* out = nullptr;         // [L, N, D]
  Tensor* sparse_map = nullptr;  // [N, ceil(L/block_q), ceil(L/block_k)] I8 or null (probe)
  Tensor* sparse_out = nullptr;  // [L, N, D] sparse branch alone, or null (probe)
};

// Which upstream SageSLA build to reproduce (docs/model-math.md §10): upstream picks it from the
// GPU it runs on, and block sizes, quantisation blocks and the P·V accumulation follow from it.
enum class SageSlaVariant : uint8_t {
  kSm90,  // H100/H200: block map 64 x 128, P·V on wgmma with fp32 accumulators
  kSm89,  // RTX 4090/5090 (every other fp8 arch): 128 x 64, P·V accumulated in fp16 per key block
};
// Query rows per block-map row (= per q quantisation block) and keys per block (= per k block).
constexpr int SageSlaBlockQ(SageSlaVariant v) { return v == SageSlaVariant::kSm90 ? 64 : 128; }
constexpr int SageSlaBlockK(SageSlaVariant v) { return v == SageSlaVariant::kSm90 ? 128 : 64; }

// TurboDiffusion SageSLA (docs/model-math.md §10): SLA's block map and linear branch, with the
// sparse branch quantised the SpargeAttn way (q/k int8 per block with k smoothing, V and P in FP8
// e4m3) and computed as upstream's kernel does. q, k, v are rounded to bf16 first (upstream runs
// the module in bf16). The optional probes receive the quantised intermediates in the inputs'
// [L, N, D] layout (V codes in token order) and the per-head scales as [N, blocks or D].
struct SageSlaOp {
  const Tensor* q = nullptr;       // [L, N, D], D 64 or 128
  const Tensor* k = nullptr;       // [L, N, D]
  const Tensor* v = nullptr;       // [L, N, D]
  const Tensor* proj_w = nullptr;  // [D, D]
  const Tensor* proj_b = nullptr;  // [D]
  float topk = 0.1f;
  SageSlaVariant variant = SageSlaVariant::kSm90;
  Tensor* out = nullptr;  // [L, N, D]
  // Optional probes (golden checks), each null or exactly this shape; nq = ceil(L/block_q),
  // nk = ceil(L/block_k) of the variant.
  Tensor* sparse_map = nullptr;  // [N, nq, nk] I8
  Tensor* sparse_out = nullptr;  // [L, N, D] sparse branch alone (bf16 values)
  Tensor* q_int8 = nullptr;      // [L, N, D] I8
  Tensor* q_scale = nullptr;     // [N, nq] F32
  Tensor* k_mean = nullptr;      // [N, D] F32 (bf16 values)
  Tensor* k_int8 = nullptr;      // [L, N, D] I8, codes of k - k_mean
  Tensor* k_scale = nullptr;     // [N, nk] F32
  Tensor* v_fp8 = nullptr;       // [L, N, D] U8, e4m3 codes in token order
  Tensor* v_scale = nullptr;     // [N, D] F32
};

enum class UnaryKind : uint8_t { kGeluTanh, kSilu };
// y = f(x) elementwise; y may alias x.
struct UnaryOp {
  UnaryKind kind = UnaryKind::kGeluTanh;
  const Tensor* x = nullptr;
  Tensor* y = nullptr;
};

enum class BinaryKind : uint8_t { kAdd, kMul };
// y = a (op) b; b has the same element count as a, or divides it (repeated along leading rows).
struct BinaryOp {
  BinaryKind kind = BinaryKind::kAdd;
  const Tensor* a = nullptr;
  const Tensor* b = nullptr;
  Tensor* y = nullptr;  // may alias a
};

// x += y · gate; gate holds E values (broadcast over rows) or M·E values, or is null (plain add).
// x may be F32 while y is the compute dtype (the DiT's fp32 residual stream).
// With norm_y set, the same pass then writes norm_y = LayerNorm(x) of the updated x exactly as
// LayerNormOp does with the norm_* operands (the residual update and the next block's norm fused;
// x is rounded to its dtype before the statistics, so the result equals the two ops in sequence).
struct GatedAddOp {
  Tensor* x = nullptr;           // [M, E]
  const Tensor* y = nullptr;     // [M, E]
  const Tensor* gate = nullptr;  // [E] / [1, E] / [M, E] or null
  Tensor* norm_y = nullptr;             // [M, E] or null: no norm
  const Tensor* norm_weight = nullptr;  // as LayerNormOp::weight
  const Tensor* norm_bias = nullptr;    // as LayerNormOp::bias
  const Tensor* norm_scale = nullptr;   // as LayerNormOp::scale
  const Tensor* norm_shift = nullptr;   // as LayerNormOp::shift
  float norm_eps = 1e-6f;
};

// y[l] = table[ids[l]].
struct EmbeddingOp {
  const Tensor* table = nullptr;  // [V, E]
  const Tensor* ids = nullptr;    // [L] I64, host tensor
  Tensor* y = nullptr;            // [L, E]
};

// Strided element copy of a box of `shape` (rank ≤ 6): permutes, slices, pads, concatenates.
struct CopyOp {
  static constexpr int kMaxRank = 6;
  const Tensor* src = nullptr;
  Tensor* dst = nullptr;
  int rank = 0;
  std::array<int64_t, kMaxRank> shape{};
  std::array<int64_t, kMaxRank> src_strides{};  // in elements
  std::array<int64_t, kMaxRank> dst_strides{};
  int64_t src_offset = 0;  // elements
  int64_t dst_offset = 0;
};

// Direct 3-D convolution with zero padding (causal = front-only temporal padding).
struct Conv3dOp {
  const Tensor* x = nullptr;     // [Cin, T, H, W]
  const Tensor* w = nullptr;     // [Cout, Cin, kt, kh, kw]
  const Tensor* bias = nullptr;  // [Cout] or null
  std::array<int, 3> stride{1, 1, 1};
  std::array<int, 3> pad_lo{0, 0, 0};  // zeros before (t, h, w)
  std::array<int, 3> pad_hi{0, 0, 0};  // zeros after (t, h, w)
  Tensor* y = nullptr;  // [Cout, To, Ho, Wo]
  // Optional frames in front of x along T, [Cin, Tp, H, W] (a causal conv's cache): the conv
  // reads x_prev ++ x, T = Tp + T(x), without the two being concatenated first. x_prev may be a
  // ring: its frames in time order are x_prev_first, x_prev_first + 1, ... (mod Tp).
  const Tensor* x_prev = nullptr;
  int x_prev_first = 0;
  // Optional fused input transform, the Wan VAE's RMS_norm + SiLU ahead of a conv (docs/
  // model-math.md §5.7): every value the conv reads from x (and x_prev) at position (t, h, w) of
  // channel ci is first v · norm_inv_rms[t, h, w] · norm_gamma[ci] (when norm_gamma is set), then
  // SiLU (when `silu`). Zero padding stays zero. norm_inv_rms comes from ChannelRmsStatsOp of x;
  // with x_prev, norm_inv_rms_prev holds its frames' values in x_prev's own (ring) order.
  const Tensor* norm_gamma = nullptr;         // [Cin] (with norm_inv_rms)
  const Tensor* norm_inv_rms = nullptr;       // [T, H, W] F32
  const Tensor* norm_inv_rms_prev = nullptr;  // [Tp, H, W] F32 (with x_prev and norm_gamma)
  bool silu = false;
  // Optional residual added in the epilogue, after the bias: y = conv + bias + residual. May be y
  // itself (each element is read before it is written), never x or x_prev.
  const Tensor* residual = nullptr;  // [Cout, To, Ho, Wo], y's dtype
  bool fused_input() const { return norm_gamma != nullptr || silu; }
};

// The statistic of the Wan VAE RMS_norm that Conv3dOp::norm_inv_rms takes: per position p,
// inv_rms[p] = √C / max(‖x[:, p]‖₂, 1e-12), so x · inv_rms · gamma is ChannelRmsNormOp's output.
struct ChannelRmsStatsOp {
  const Tensor* x = nullptr;  // [C, P]
  Tensor* inv_rms = nullptr;  // [P] F32
};

// Wan VAE RMS_norm: y = x / max(‖x‖₂ over C, 1e-12) · √C · gamma, per position; then SiLU when
// `silu` (the norm + activation pair of every VAE residual block, fused).
struct ChannelRmsNormOp {
  const Tensor* x = nullptr;      // [C, P]
  const Tensor* gamma = nullptr;  // [C]
  Tensor* y = nullptr;            // [C, P]
  bool silu = false;
};

// Nearest ×2 spatial upsampling per frame.
struct Upsample2xOp {
  const Tensor* x = nullptr;  // [C, T, H, W]
  Tensor* y = nullptr;        // [C, T, 2H, 2W]
};

// The VAE's decoded frames → I420 pictures for the H.264 encoder: every value to 8 bits with
// TurboDiffusion's rounding, then BT.601 limited range with chroma at the 2×2 block's centre, in
// fixed point: byte for byte engine/core/colour.h's VideoToI420 (= RgbToI420 of VideoToFrames) on
// every backend, so a device hands the host 1.5 bytes per pixel instead of the video's 12.
struct VideoToI420Op {
  const Tensor* video = nullptr;  // [3, n, H, W] F32 (or BF16 on a device), H and W even
  Tensor* yuv = nullptr;          // [n, H·W·3/2] U8: per frame the Y plane, then U, then V
};

using Op = std::variant<LinearOp, Int8LinearOp, LayerNormOp, RmsNormOp, RopeOp, AttentionOp, SlaOp,
                        SageSlaOp, UnaryOp, BinaryOp, GatedAddOp, EmbeddingOp, CopyOp, Conv3dOp,
                        ChannelRmsNormOp, Upsample2xOp, RowSumSquaresOp, Fp8LinearOp, Fp8QuantizeOp,
                        VideoToI420Op, ChannelRmsStatsOp>;
inline constexpr size_t kNumOpKinds = std::variant_size_v<Op>;

// Index of an op struct in `Op`, usable as Supports(OpKindOf<LinearOp>()).
template <typename T, size_t I = 0>
constexpr size_t OpKindOf() {
  if constexpr (std::is_same_v<std::variant_alternative_t<I, Op>, T>) {
    return I;
  } else {
    return OpKindOf<T, I + 1>();
  }
}
std::string_view OpName(size_t kind);

// Device memory held by a backend's tensors (bytes). Peaks and overflow counts are since
// construction or the last ResetPeakMemory(); reserved includes cached free blocks kept for reuse
// and the whole activation arena.
struct MemoryStats {
  int64_t in_use = 0;
  int64_t peak = 0;
  int64_t reserved = 0;
  // Activations: tensors from Allocate (op outputs and the ops' own scratch), not Upload (weights
  // and host inputs). The CPU backend counts only these (its other fields stay zero).
  int64_t activation_in_use = 0;
  int64_t activation_peak = 0;
  // The activation arena (ReserveActivations): its size, its peak use, and the activation
  // allocations that did not fit it and took the caching path instead.
  int64_t arena_bytes = 0;
  int64_t arena_peak = 0;
  int64_t overflow_count = 0;
  int64_t overflow_bytes = 0;
};

// A device→host copy started by Backend::DownloadAsync. Wait() blocks until it is done and returns
// what Download would have; call it once.
class PendingDownload {
 public:
  virtual ~PendingDownload() = default;
  virtual absl::StatusOr<Tensor> Wait() = 0;
};

// A host→device copy queued by Backend::CopyToDeviceAsync: compute queued after
// Backend::WaitFence(fence) runs only once the copy is done. Opaque (CUDA: an event, and the two
// tensors, kept alive until the fence goes); null when the copy is already complete (CPU).
using CopyFence = std::shared_ptr<void>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;
  // Dtype the backend computes activations in (F32 on CPU, BF16 on CUDA).
  virtual DType compute_dtype() const = 0;

  // Zero-filled tensor on the backend's device.
  virtual absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) = 0;
  // Tensor whose contents are undefined, for an output that the op writing it overwrites entirely
  // (saves the zero fill: on CUDA a memset pass over every activation). Default: Allocate.
  virtual absl::StatusOr<Tensor> AllocateUninitialized(DType dtype, Shape shape) {
    return Allocate(dtype, std::move(shape));
  }
  // Host tensor (any dtype) → device tensor converted to `dtype`.
  virtual absl::StatusOr<Tensor> Upload(const Tensor& host, DType dtype) = 0;
  // A weight made on the device (the FP8 codes and scales the DiT quantises at load): contents
  // undefined, held and counted as an Upload is — never carved from the activation arena, not an
  // activation in memory_stats(), within the memory budget. Default: Upload of a zero host tensor.
  virtual absl::StatusOr<Tensor> AllocateWeight(DType dtype, Shape shape);
  // Device tensor → host tensor (float types become F32, integers keep their dtype).
  virtual absl::StatusOr<Tensor> Download(const Tensor& t) = 0;
  // Queues a copy of `t` to the host behind the work queued so far and returns without waiting,
  // so that work queued after it (the next chunk) overlaps the copy and the caller's handling of
  // the result. `t` stays alive until the copy is done. Default (CPU): Download at once.
  virtual absl::StatusOr<std::unique_ptr<PendingDownload>> DownloadAsync(const Tensor& t);
  // Waits for queued work (no-op on CPU).
  virtual absl::Status Synchronize() { return absl::OkStatus(); }
  // The SageSLA numerics of upstream's build for this device (a job that asks for SageSLA
  // without naming a build gets these): kSm90 on Hopper, kSm89 on every other FP8 GPU (RTX
  // 4090 / 5090); the CPU reference answers kSm90.
  virtual SageSlaVariant native_sagesla() const { return SageSlaVariant::kSm90; }
  // Memory accounting (CPU backend: the activation fields only).
  virtual MemoryStats memory_stats() const { return {}; }
  virtual void ResetPeakMemory() {}
  // Sizes the activation arena for a job whose activations peak at `bytes` (from
  // engine/pipeline/activation_plan.h): one device allocation that Allocate carves from. Asking
  // again for the same or a smaller size changes nothing; a larger one regrows it once no
  // activation is live. Best effort: when the device cannot hold it, activations keep using the
  // backend's ordinary allocator. No-op on backends without an arena (CPU).
  virtual absl::Status ReserveActivations(int64_t /*bytes*/) { return absl::OkStatus(); }

  // Memory budget (docs/memory.md): the bytes of live device tensors — weights, uploads,
  // activations and the ops' workspaces — this backend may hold at once. An allocation that
  // would pass it fails with ResourceExhausted naming the request, the bytes in use and the
  // budget, instead of reaching the device allocator. ≤ 0: no budget. Set before loading.
  void SetMemoryLimit(int64_t bytes) { memory_limit_ = bytes > 0 ? bytes : 0; }
  int64_t memory_limit() const { return memory_limit_; }
  // Bytes a tensor of `bytes` occupies in this backend's accounting (the CUDA pool's size
  // classes), so that a plan in bytes matches what memory_stats() will count.
  virtual int64_t AccountedBytes(int64_t bytes) const { return bytes; }

  // Weight streaming (docs/memory.md §4). A host tensor in page-locked memory (CUDA:
  // cudaHostAlloc), the source of CopyToDeviceAsync; raw bytes of `dtype`, zero-filled.
  // Default (CPU): an ordinary host tensor.
  virtual absl::StatusOr<Tensor> AllocatePinned(DType dtype, Shape shape);
  // Raw byte copy of a device tensor into a host tensor of the same dtype and shape (synchronous).
  virtual absl::Status CopyToHost(const Tensor& device, const Tensor& host);
  // Queues raw byte copies host[i] → device[i] (same dtype and shape each; host tensors from
  // AllocatePinned) on the backend's copy stream, ordered after every compute op queued so far
  // (the destinations may still be read by them) and after earlier copies, and returns without
  // waiting. Compute queued after WaitFence(fence) sees the copied bytes; compute queued before
  // it may overlap the copy. Default (CPU): copies at once and returns a null fence.
  virtual absl::StatusOr<CopyFence> CopyToDeviceAsync(const std::vector<Tensor>& host,
                                                      const std::vector<Tensor>& device);
  // Makes compute queued from now on wait for the fence's copies (no-op on a null fence).
  virtual absl::Status WaitFence(const CopyFence& /*fence*/) { return absl::OkStatus(); }

  bool Supports(size_t op_kind) const { return table_[op_kind] != nullptr; }
  absl::Status Run(const Op& op) const;

 protected:
  // The ResourceExhausted error of an allocation of `bytes` (accounted) with `in_use` held.
  absl::Status OverBudget(int64_t bytes, int64_t in_use, const std::string& what) const;

  template <typename OpT>
  void Register(absl::Status (*fn)(const OpT&)) {
    table_[OpKindOf<OpT>()] = [fn](const Op& op) { return fn(std::get<OpT>(op)); };
  }
  template <typename OpT, typename Fn>
  void RegisterFn(Fn fn) {
    table_[OpKindOf<OpT>()] = [fn](const Op& op) { return fn(std::get<OpT>(op)); };
  }

 private:
  std::array<std::function<absl::Status(const Op&)>, kNumOpKinds> table_{};
  int64_t memory_limit_ = 0;
};

}  // namespace turbovid::engine
