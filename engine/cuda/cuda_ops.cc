// CUDA op implementations: argument checks (mirroring the CPU reference), then one kernel launch
// from kernels/. Activations may be BF16 or F32; math inside the kernels is fp32.
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/cuda/cuda_backend_internal.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"

namespace turbovid::engine::cuda {
namespace {

using kernels::ConstBuf;
using kernels::MutBuf;

const ConstBuf kNone{};

// Optional operand: a null tensor pointer becomes a null buffer.
absl::StatusOr<ConstBuf> OptIn(const std::string& op, const std::string& what, const Tensor* t) {
  if (t == nullptr) return kNone;
  return In(op, what, t);
}

absl::Status Launched(cudaError_t e, const std::string& op, const Tensor* x) {
  return CudaStatus(e, op, x ? x->Describe() : std::string());
}

// A BF16 copy of `t` (which is F32 or BF16) for the GEMM inputs.
absl::StatusOr<Tensor> AsBf16(CudaBackend& b, const Tensor& t, const std::string& what) {
  if (t.dtype() == DType::kBF16) return t;
  TV_ASSIGN_OR_RETURN(ConstBuf in, In("linear", what, &t));
  TV_ASSIGN_OR_RETURN(Tensor out, b.Allocate(DType::kBF16, t.shape()));
  kernels::ConvertArgs a;
  a.x = in;
  a.y = MutBuf{out.raw(), kernels::ElemType::kBF16};
  a.n = t.numel();
  TV_RETURN_IF_ERROR(Launched(kernels::LaunchConvert(a, b.stream()), "linear convert", &t));
  return out;
}

absl::Status RunLinear(CudaBackend& b, const LinearOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("linear", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectDevice("linear", "w", op.w));
  TV_ASSIGN_OR_RETURN(const LinearDims dims, CheckLinear(op));
  TV_RETURN_IF_ERROR(ExpectDevice("linear", "y", op.y));
  const int64_t m = dims.m, k = dims.k, n = dims.n;
  TV_ASSIGN_OR_RETURN(Tensor x, AsBf16(b, *op.x, "x"));
  TV_ASSIGN_OR_RETURN(Tensor w, AsBf16(b, *op.w, "w"));
  kernels::GemmArgs a;
  a.x = x.raw();
  a.w = w.raw();
  TV_ASSIGN_OR_RETURN(a.bias, OptIn("linear", "bias", op.bias));
  TV_ASSIGN_OR_RETURN(a.y, Out("linear", "y", op.y));
  a.m = m;
  a.n = n;
  a.k = k;
  switch (op.act) {
    case Activation::kNone:
      a.act = kernels::UnaryFn::kIdentity;
      break;
    case Activation::kGeluTanh:
      a.act = kernels::UnaryFn::kGeluTanh;
      break;
    case Activation::kSilu:
      a.act = kernels::UnaryFn::kSilu;
      break;
  }
  const int rc = kernels::LaunchGemm(b.gemm(), a, b.stream());
  if (rc < 0) return Launched(static_cast<cudaError_t>(-rc), "linear", op.x);
  if (rc > 0) {
    return absl::InternalError(absl::StrCat("linear: cuBLASLt status ", rc, " for x ",
                                            op.x->Describe(), " w ", op.w->Describe(), " y ",
                                            op.y->Describe()));
  }
  return absl::OkStatus();
}

absl::Status RunLayerNorm(CudaBackend& b, const LayerNormOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("layer_norm", "x", op.x));
  TV_ASSIGN_OR_RETURN(const LayerNormDims dims, CheckLayerNorm(op));
  TV_RETURN_IF_ERROR(ExpectDevice("layer_norm", "y", op.y));
  const int64_t m = dims.m, e = dims.e;
  kernels::LayerNormArgs a;
  TV_ASSIGN_OR_RETURN(a.x, In("layer_norm", "x", op.x));
  TV_ASSIGN_OR_RETURN(a.weight, OptIn("layer_norm", "weight", op.weight));
  TV_ASSIGN_OR_RETURN(a.bias, OptIn("layer_norm", "bias", op.bias));
  TV_ASSIGN_OR_RETURN(a.scale, OptIn("layer_norm", "scale", op.scale));
  TV_ASSIGN_OR_RETURN(a.shift, OptIn("layer_norm", "shift", op.shift));
  a.scale_row_stride = dims.scale_stride;
  a.shift_row_stride = dims.shift_stride;
  TV_ASSIGN_OR_RETURN(a.y, Out("layer_norm", "y", op.y));
  a.rows = m;
  a.cols = e;
  a.eps = op.eps;
  return Launched(kernels::LaunchLayerNorm(a, b.stream()), "layer_norm", op.x);
}

absl::Status RunRmsNorm(CudaBackend& b, const RmsNormOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("rms_norm", "x", op.x));
  TV_ASSIGN_OR_RETURN(const RmsNormDims dims, CheckRmsNorm(op));
  const int64_t m = dims.m, e = dims.e;
  TV_RETURN_IF_ERROR(ExpectDevice("rms_norm", "y", op.y));
  if (op.weight) TV_RETURN_IF_ERROR(ExpectDevice("rms_norm", "weight", op.weight));
  kernels::RmsNormArgs a;
  if (dims.rope_pairs > 0) {
    TV_RETURN_IF_ERROR(ExpectDevice("rms_norm", "rope_cos", op.rope_cos));
    TV_RETURN_IF_ERROR(ExpectDevice("rms_norm", "rope_sin", op.rope_sin));
    a.rope_cos = op.rope_cos->data<float>();
    a.rope_sin = op.rope_sin->data<float>();
    a.rope_pairs = dims.rope_pairs;
  }
  if (op.row_sum_sq != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDevice("rms_norm", "row_sum_sq", op.row_sum_sq));
    a.row_sum_sq = op.row_sum_sq->data<float>();
    a.norm_cols = op.full_width;
  }
  TV_ASSIGN_OR_RETURN(a.x, In("rms_norm", "x", op.x));
  TV_ASSIGN_OR_RETURN(a.weight, OptIn("rms_norm", "weight", op.weight));
  TV_ASSIGN_OR_RETURN(a.y, Out("rms_norm", "y", op.y));
  a.rows = m;
  a.cols = e;
  a.eps = op.eps;
  return Launched(kernels::LaunchRmsNorm(a, b.stream()), "rms_norm", op.x);
}

absl::Status RunRowSumSquares(CudaBackend& b, const RowSumSquaresOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("row_sum_squares", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectDevice("row_sum_squares", "y", op.y));
  TV_ASSIGN_OR_RETURN(const int64_t m, CheckRowSumSquares(op));
  kernels::RowSumSquaresArgs a;
  TV_ASSIGN_OR_RETURN(a.x, In("row_sum_squares", "x", op.x));
  a.y = op.y->data<float>();
  a.rows = m;
  a.cols = op.x->dim(1);
  return Launched(kernels::LaunchRowSumSquares(a, b.stream()), "row_sum_squares", op.x);
}

absl::Status RunRope(CudaBackend& b, const RopeOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("rope", "x", op.x));
  if (op.x->rank() != 3 || op.x->dim(2) % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rope: x ", op.x->Describe(), " must be [L, N, even D]"));
  }
  const int64_t l = op.x->dim(0), n = op.x->dim(1), d = op.x->dim(2);
  TV_RETURN_IF_ERROR(ExpectDeviceShape("rope", "cos", op.cos, {l, d / 2}));
  TV_RETURN_IF_ERROR(ExpectDeviceShape("rope", "sin", op.sin, {l, d / 2}));
  kernels::RopeArgs a;
  TV_ASSIGN_OR_RETURN(a.x, Out("rope", "x", op.x));
  TV_ASSIGN_OR_RETURN(a.cos, In("rope", "cos", op.cos));
  TV_ASSIGN_OR_RETURN(a.sin, In("rope", "sin", op.sin));
  a.l = l;
  a.heads = n;
  a.d = d;
  return Launched(kernels::LaunchRope(a, b.stream()), "rope", op.x);
}

absl::Status RunUnary(CudaBackend& b, const UnaryOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("unary", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectDeviceShape("unary", "y", op.y, op.x->shape()));
  kernels::UnaryArgs a;
  switch (op.kind) {
    case UnaryKind::kGeluTanh:
      a.fn = kernels::UnaryFn::kGeluTanh;
      break;
    case UnaryKind::kSilu:
      a.fn = kernels::UnaryFn::kSilu;
      break;
  }
  TV_ASSIGN_OR_RETURN(a.x, In("unary", "x", op.x));
  TV_ASSIGN_OR_RETURN(a.y, Out("unary", "y", op.y));
  a.n = op.x->numel();
  return Launched(kernels::LaunchUnary(a, b.stream()), "unary", op.x);
}

absl::Status RunBinary(CudaBackend& b, const BinaryOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("binary", "a", op.a));
  TV_RETURN_IF_ERROR(ExpectDevice("binary", "b", op.b));
  TV_RETURN_IF_ERROR(ExpectDeviceShape("binary", "y", op.y, op.a->shape()));
  const int64_t n = op.a->numel(), nb = op.b->numel();
  if (nb == 0 || n % nb != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("binary: b ", op.b->Describe(), " does not tile a ", op.a->Describe()));
  }
  kernels::BinaryArgs a;
  switch (op.kind) {
    case BinaryKind::kAdd:
      a.fn = kernels::BinaryFn::kAdd;
      break;
    case BinaryKind::kMul:
      a.fn = kernels::BinaryFn::kMul;
      break;
  }
  TV_ASSIGN_OR_RETURN(a.a, In("binary", "a", op.a));
  TV_ASSIGN_OR_RETURN(a.b, In("binary", "b", op.b));
  TV_ASSIGN_OR_RETURN(a.y, Out("binary", "y", op.y));
  a.n = n;
  a.nb = nb;
  return Launched(kernels::LaunchBinary(a, b.stream()), "binary", op.a);
}

absl::Status RunGatedAdd(CudaBackend& b, const GatedAddOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("gated_add", "x", op.x));
  TV_ASSIGN_OR_RETURN(const GatedAddDims dims, CheckGatedAdd(op));
  TV_RETURN_IF_ERROR(ExpectDevice("gated_add", "y", op.y));
  const int64_t m = dims.m, e = dims.e;
  TV_ASSIGN_OR_RETURN(kernels::MutBuf x, Out("gated_add", "x", op.x));
  TV_ASSIGN_OR_RETURN(kernels::ConstBuf y, In("gated_add", "y", op.y));
  TV_ASSIGN_OR_RETURN(kernels::ConstBuf gate, OptIn("gated_add", "gate", op.gate));
  if (op.norm_y != nullptr) {  // the update fused with the next LayerNorm
    TV_RETURN_IF_ERROR(ExpectDevice("gated_add", "norm_y", op.norm_y));
    kernels::AddLayerNormArgs a;
    a.x = x;
    a.y = y;
    a.gate = gate;
    a.gate_row_stride = dims.gate_stride;
    kernels::LayerNormArgs& n = a.norm;
    TV_ASSIGN_OR_RETURN(n.weight, OptIn("gated_add", "norm_weight", op.norm_weight));
    TV_ASSIGN_OR_RETURN(n.bias, OptIn("gated_add", "norm_bias", op.norm_bias));
    TV_ASSIGN_OR_RETURN(n.scale, OptIn("gated_add", "norm_scale", op.norm_scale));
    TV_ASSIGN_OR_RETURN(n.shift, OptIn("gated_add", "norm_shift", op.norm_shift));
    n.scale_row_stride = dims.norm.scale_stride;
    n.shift_row_stride = dims.norm.shift_stride;
    TV_ASSIGN_OR_RETURN(n.y, Out("gated_add", "norm_y", op.norm_y));
    n.rows = m;
    n.cols = e;
    n.eps = op.norm_eps;
    return Launched(kernels::LaunchAddLayerNorm(a, b.stream()), "gated_add", op.x);
  }
  kernels::GatedAddArgs a;
  a.x = x;
  a.y = y;
  a.gate = gate;
  a.gate_row_stride = dims.gate_stride;
  a.rows = m;
  a.cols = e;
  return Launched(kernels::LaunchGatedAdd(a, b.stream()), "gated_add", op.x);
}

absl::Status RunEmbedding(CudaBackend& b, const EmbeddingOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("embedding", "table", op.table));
  if (op.ids == nullptr || !op.ids->defined() || op.ids->dtype() != DType::kI64 ||
      op.ids->rank() != 1) {
    return absl::InvalidArgumentError("embedding: ids must be I64 [L]");
  }
  if (op.table->rank() != 2) return absl::InvalidArgumentError("embedding: table must be [V, E]");
  const int64_t l = op.ids->dim(0), v = op.table->dim(0), e = op.table->dim(1);
  TV_RETURN_IF_ERROR(ExpectDeviceShape("embedding", "y", op.y, {l, e}));
  // ids are checked on the host (they are a host tensor in the models; a device one is copied
  // back).
  Tensor host_ids = *op.ids;
  if (op.ids->device() == Device::kCuda) {
    TV_ASSIGN_OR_RETURN(host_ids, b.Download(*op.ids));
  }
  for (int64_t i = 0; i < l; ++i) {
    const int64_t id = host_ids.data<int64_t>()[i];
    if (id < 0 || id >= v) {
      return absl::InvalidArgumentError(
          absl::StrCat("embedding: ids[", i, "] = ", id, " outside [0, ", v, ")"));
    }
  }
  Tensor dev_ids = *op.ids;
  if (op.ids->device() != Device::kCuda) {
    TV_ASSIGN_OR_RETURN(dev_ids, b.Upload(*op.ids, DType::kI64));
  }
  kernels::EmbeddingArgs a;
  TV_ASSIGN_OR_RETURN(a.table, In("embedding", "table", op.table));
  a.ids = dev_ids.data<int64_t>();
  TV_ASSIGN_OR_RETURN(a.y, Out("embedding", "y", op.y));
  a.l = l;
  a.cols = e;
  TV_RETURN_IF_ERROR(Launched(kernels::LaunchEmbedding(a, b.stream()), "embedding", op.table));
  // dev_ids is freed when this returns: wait so the kernel never reads released memory.
  return CudaStatus(cudaStreamSynchronize(b.stream()), "embedding", "sync");
}

absl::Status RunCopy(CudaBackend& b, const CopyOp& op) {
  if (op.src == nullptr || op.dst == nullptr || op.src->dtype() != op.dst->dtype()) {
    return absl::InvalidArgumentError("copy: src and dst must exist and share a dtype");
  }
  TV_RETURN_IF_ERROR(ExpectDevice("copy", "src", op.src));
  TV_RETURN_IF_ERROR(ExpectDevice("copy", "dst", op.dst));
  if (op.rank < 1 || op.rank > CopyOp::kMaxRank)
    return absl::InvalidArgumentError("copy: bad rank");
  int64_t src_hi = op.src_offset, dst_hi = op.dst_offset, src_lo = op.src_offset,
          dst_lo = op.dst_offset;
  for (int i = 0; i < op.rank; ++i) {
    if (op.shape[i] <= 0) return absl::OkStatus();
    const int64_t ds = (op.shape[i] - 1) * op.src_strides[i],
                  dd = (op.shape[i] - 1) * op.dst_strides[i];
    (ds >= 0 ? src_hi : src_lo) += ds;
    (dd >= 0 ? dst_hi : dst_lo) += dd;
  }
  if (src_lo < 0 || dst_lo < 0 || src_hi >= op.src->numel() || dst_hi >= op.dst->numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "copy: box out of bounds (src ", op.src->Describe(), ", dst ", op.dst->Describe(), ")"));
  }
  kernels::CopyArgs a;
  a.src = op.src->raw();
  a.dst = op.dst->raw();
  a.elem_bytes = static_cast<int>(DTypeSize(op.src->dtype()));
  a.rank = op.rank;
  for (int i = 0; i < op.rank; ++i) {
    a.shape[i] = op.shape[i];
    a.src_strides[i] = op.src_strides[i];
    a.dst_strides[i] = op.dst_strides[i];
  }
  a.src_offset = op.src_offset;
  a.dst_offset = op.dst_offset;
  return Launched(kernels::LaunchCopy(a, b.stream()), "copy", op.src);
}

// Single-head attention with a wide head (the VAE mid block: D = 384, L ≈ 6k at 480p) as three
// tensor-core steps: S = q·kᵀ (cuBLASLt, fp32 out), P = softmax(S·scale) (bf16), out = P·v.
absl::Status RunAttentionByGemm(CudaBackend& b, const AttentionOp& op, int64_t lq, int64_t lk,
                                int64_t d, int64_t dv) {
  TV_ASSIGN_OR_RETURN(Tensor s, b.AllocateUninitialized(DType::kF32, {lq, lk}));
  kernels::GemmArgs g;
  g.x = op.q->raw();
  g.w = op.k->raw();
  g.y = MutBuf{s.raw(), kernels::ElemType::kF32};
  g.m = lq;
  g.n = lk;
  g.k = d;
  int rc = kernels::LaunchGemm(b.gemm(), g, b.stream());
  if (rc != 0)
    return absl::InternalError(absl::StrCat("attention: q·kᵀ GEMM failed with code ", rc));
  TV_ASSIGN_OR_RETURN(Tensor p, b.AllocateUninitialized(DType::kBF16, {lq, lk}));
  kernels::SoftmaxRowsArgs sm;
  sm.x = ConstBuf{s.raw(), kernels::ElemType::kF32};
  sm.y = MutBuf{p.raw(), kernels::ElemType::kBF16};
  sm.rows = lq;
  sm.cols = lk;
  sm.scale = op.scale;
  TV_RETURN_IF_ERROR(
      Launched(kernels::LaunchSoftmaxRows(sm, b.stream()), "attention softmax", op.q));
  TV_ASSIGN_OR_RETURN(Tensor vt, b.AllocateUninitialized(DType::kBF16, {dv, lk}));
  kernels::CopyArgs c;
  c.src = op.v->raw();
  c.dst = vt.raw();
  c.elem_bytes = 2;
  c.rank = 2;
  c.shape[0] = dv;
  c.shape[1] = lk;
  c.src_strides[0] = 1;
  c.src_strides[1] = dv;
  c.dst_strides[0] = lk;
  c.dst_strides[1] = 1;
  TV_RETURN_IF_ERROR(Launched(kernels::LaunchCopy(c, b.stream()), "attention vᵀ", op.v));
  kernels::GemmArgs o;
  o.x = p.raw();
  o.w = vt.raw();
  TV_ASSIGN_OR_RETURN(o.y, Out("attention", "out", op.out));
  o.m = lq;
  o.n = dv;
  o.k = lk;
  rc = kernels::LaunchGemm(b.gemm(), o, b.stream());
  if (rc != 0)
    return absl::InternalError(absl::StrCat("attention: p·v GEMM failed with code ", rc));
  return absl::OkStatus();
}

absl::Status RunAttention(CudaBackend& b, const AttentionOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("attention", "q", op.q));
  TV_RETURN_IF_ERROR(ExpectDevice("attention", "k", op.k));
  TV_RETURN_IF_ERROR(ExpectDevice("attention", "v", op.v));
  TV_ASSIGN_OR_RETURN(const AttentionDims dims, CheckAttention(op));
  TV_RETURN_IF_ERROR(ExpectDevice("attention", "out", op.out));
  const int64_t lq = dims.lq, n = dims.n, d = dims.d, lk = dims.lk, dv = dims.dv;
  if (d > kernels::kAttentionMaxHeadDim || dv > kernels::kAttentionMaxHeadDim || lk == 0) {
    return absl::InvalidArgumentError(absl::StrCat("attention: head dims ", d, "/", dv, " over ",
                                                   kernels::kAttentionMaxHeadDim, " or no keys"));
  }
  kernels::AttentionArgs a;
  TV_ASSIGN_OR_RETURN(a.q, In("attention", "q", op.q));
  TV_ASSIGN_OR_RETURN(a.k, In("attention", "k", op.k));
  TV_ASSIGN_OR_RETURN(a.v, In("attention", "v", op.v));
  TV_ASSIGN_OR_RETURN(a.bias, OptIn("attention", "bias", op.bias));
  TV_ASSIGN_OR_RETURN(a.out, Out("attention", "out", op.out));
  a.lq = lq;
  a.lk = lk;
  a.heads = n;
  a.d = static_cast<int>(d);
  a.dv = static_cast<int>(dv);
  a.scale = op.scale;
  // Tensor-core kernels for bf16 without bias at D = Dv in {64, 128} (the DiT); the general
  // kernel for the rest (T5 bias, the VAE's D = 384, F32). KernelOptions::attention
  // (TV_ATTENTION) forces a path where the shape allows it; a forced path that cannot take the
  // shape falls back to the general kernel.
  using kernels::AttentionPath;
  AttentionPath path = b.kernel_options().attention;
  const bool all_bf16 = op.q->dtype() == DType::kBF16 && op.k->dtype() == DType::kBF16 &&
                        op.v->dtype() == DType::kBF16;
  if (path != AttentionPath::kSimple && op.bias == nullptr && n == 1 && (d > 128 || dv > 128) &&
      all_bf16 && d % 8 == 0 && dv % 8 == 0 && lk % 8 == 0 && lq * lk <= (int64_t{1} << 27)) {
    return RunAttentionByGemm(b, op, lq, lk, d, dv);
  }
  const bool flash = kernels::FlashAttentionSupports(a);
  if (path == AttentionPath::kAuto) {
    path = !flash                                                           ? AttentionPath::kSimple
           : (b.sm_version() == 90 && kernels::FlashAttentionSm90Enabled()) ? AttentionPath::kSm90
                                                                            : AttentionPath::kFlash;
  }
  if (!flash) path = AttentionPath::kSimple;
  if (path == AttentionPath::kSm90 && (b.sm_version() != 90 || d != 128))
    path = AttentionPath::kFlash;
  cudaError_t e = cudaSuccess;
  switch (path) {
    case AttentionPath::kSm90:
      e = kernels::LaunchFlashAttentionSm90(a, b.stream(), b.kernel_options().fa_sm90);
      break;
    case AttentionPath::kFlash:
      e = kernels::LaunchFlashAttention(a, b.stream());
      break;
    case AttentionPath::kAuto:
    case AttentionPath::kSimple:
      e = kernels::LaunchAttention(a, b.stream());
      break;
  }
  return Launched(e, "attention", op.q);
}

}  // namespace

void RegisterCudaOps(CudaBackend& backend) {
  RegisterOp<LinearOp>(backend, &RunLinear);
  RegisterOp<LayerNormOp>(backend, &RunLayerNorm);
  RegisterOp<RmsNormOp>(backend, &RunRmsNorm);
  RegisterOp<RowSumSquaresOp>(backend, &RunRowSumSquares);
  RegisterOp<RopeOp>(backend, &RunRope);
  RegisterOp<AttentionOp>(backend, &RunAttention);
  RegisterOp<UnaryOp>(backend, &RunUnary);
  RegisterOp<BinaryOp>(backend, &RunBinary);
  RegisterOp<GatedAddOp>(backend, &RunGatedAdd);
  RegisterOp<EmbeddingOp>(backend, &RunEmbedding);
  RegisterOp<CopyOp>(backend, &RunCopy);
}

}  // namespace turbovid::engine::cuda
