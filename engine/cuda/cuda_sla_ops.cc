// CUDA ops: SLA and SageSLA (kernels/sla.h). Checks mirror the CPU reference
// (engine/cpu/sla_ops.cc, sagesla_ops.cc); F32 operands are staged through bf16 copies, scratch
// comes from one workspace tensor.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/cuda/cuda_backend_internal.h"
#include "kernels/elementwise.h"
#include "kernels/sla.h"

namespace turbovid::engine::cuda {
namespace {

constexpr char kOp[] = "sla";

// The Python float the reference multiplies by (same rule as the CPU op): the shortest decimal
// that reads back as `topk`, so int(0.7 · 10) is 7 as in upstream's Python, not 6.
double PythonTopk(float topk) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*g", digits, static_cast<double>(topk));
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == topk) return d;
  }
  return topk;
}

kernels::ElemType ElemOf(const Tensor& t) {
  return t.dtype() == DType::kF32 ? kernels::ElemType::kF32 : kernels::ElemType::kBF16;
}

// `t` itself when BF16, else a BF16 copy (the kernels read bf16 activations).
absl::StatusOr<Tensor> AsBf16(CudaBackend& b, const Tensor& t, const std::string& what) {
  TV_ASSIGN_OR_RETURN(kernels::ConstBuf in, In(kOp, what, &t));  // BF16 or F32 on the device
  if (t.dtype() == DType::kBF16) return t;
  TV_ASSIGN_OR_RETURN(Tensor out, b.AllocateUninitialized(DType::kBF16, t.shape()));
  kernels::ConvertArgs a;
  a.x = in;
  a.y = kernels::MutBuf{out.raw(), kernels::ElemType::kBF16};
  a.n = t.numel();
  TV_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchConvert(a, b.stream()), "sla convert", t.Describe()));
  return out;
}

// Where the kernels write an output: `t` itself when BF16, else a BF16 temporary converted after.
absl::StatusOr<Tensor> OutputBuffer(CudaBackend& b, Tensor* t, const std::string& what) {
  TV_RETURN_IF_ERROR(Out(kOp, what, t).status());  // BF16 or F32 on the device
  if (t->dtype() == DType::kBF16) return *t;
  return b.AllocateUninitialized(DType::kBF16, t->shape());
}

absl::Status CopyBack(CudaBackend& b, const Tensor& tmp, Tensor* t) {
  if (tmp.raw() == t->raw()) return absl::OkStatus();
  kernels::ConvertArgs a;
  a.x = kernels::ConstBuf{tmp.raw(), kernels::ElemType::kBF16};
  a.y = kernels::MutBuf{t->raw(), ElemOf(*t)};
  a.n = t->numel();
  return CudaStatus(kernels::LaunchConvert(a, b.stream()), "sla convert", t->Describe());
}

struct Dims {
  int64_t l, n, d, nq, nk, ksel;
};

absl::StatusOr<Dims> CheckSla(const SlaOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice(kOp, "q", op.q));
  if (op.q->rank() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("sla: q ", op.q->Describe(), " must be [L, N, D]"));
  }
  Dims s{op.q->dim(0), op.q->dim(1), op.q->dim(2), 0, 0, 0};
  if (op.block_q <= 0 || op.block_k <= 0 || s.l <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("sla: block_q ", op.block_q, ", block_k ",
                                                   op.block_k, ", L ", s.l, " must be positive"));
  }
  if (!(op.topk >= 0.f && op.topk <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("sla: topk ", op.topk, " outside [0, 1]"));
  }
  const Shape lnd{s.l, s.n, s.d};
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "k", op.k, lnd));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "v", op.v, lnd));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "proj_w", op.proj_w, {s.d, s.d}));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "proj_b", op.proj_b, {s.d}));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "out", op.out, lnd));
  TV_RETURN_IF_ERROR(In(kOp, "proj_w", op.proj_w).status());
  TV_RETURN_IF_ERROR(In(kOp, "proj_b", op.proj_b).status());
  if (op.sparse_out != nullptr)
    TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "sparse_out", op.sparse_out, lnd));
  s.nq = (s.l + op.block_q - 1) / op.block_q;
  s.nk = (s.l + op.block_k - 1) / op.block_k;
  // K_sel = min(n_k, int(topk·n_k)), the same for every query block (SLA/utils.py get_block_map).
  s.ksel = std::min<int64_t>(s.nk,
                             static_cast<int64_t>(PythonTopk(op.topk) * static_cast<double>(s.nk)));
  if (op.sparse_map != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDevice(kOp, "sparse_map", op.sparse_map));
    if (op.sparse_map->dtype() != DType::kI8 || op.sparse_map->numel() != s.n * s.nq * s.nk) {
      return absl::InvalidArgumentError(absl::StrCat("sla: sparse_map ", op.sparse_map->Describe(),
                                                     ", want I8 ", ShapeString({s.n, s.nq, s.nk})));
    }
  }
  if (s.d > kernels::kSlaMaxHeadDim || s.n > 65535) {
    return absl::UnimplementedError(absl::StrCat("sla: q ", op.q->Describe(),
                                                 ": the CUDA kernels take D ≤ ",
                                                 kernels::kSlaMaxHeadDim, " and N ≤ 65535"));
  }
  return s;
}

// The operands both ops share, as checked by the op.
struct SlaOperands {
  const Tensor* q;
  const Tensor* k;
  const Tensor* v;
  const Tensor* proj_w;
  const Tensor* proj_b;
  Tensor* out;
  Tensor* sparse_out;  // or null
  Tensor* sparse_map;  // or null
};

// Stages the operands (bf16 copies and outputs), runs LaunchSla with `a`'s shapes and mode in a
// workspace, times its kernels under the per-op profile (TV_CUDA_PROFILE=1, rows "<name>/<kernel>
// [shape]"), and copies the outputs back. `what` describes the call in errors.
absl::Status LaunchSlaOp(CudaBackend& b, const char* name, const SlaOperands& o,
                         kernels::SlaArgs a, const std::string& what) {
  TV_ASSIGN_OR_RETURN(Tensor q, AsBf16(b, *o.q, "q"));
  TV_ASSIGN_OR_RETURN(Tensor k, AsBf16(b, *o.k, "k"));
  TV_ASSIGN_OR_RETURN(Tensor v, AsBf16(b, *o.v, "v"));
  TV_ASSIGN_OR_RETURN(Tensor out, OutputBuffer(b, o.out, "out"));
  Tensor sparse_out;
  if (o.sparse_out != nullptr) {
    TV_ASSIGN_OR_RETURN(sparse_out, OutputBuffer(b, o.sparse_out, "sparse_out"));
  }
  a.q = q.raw();
  a.k = k.raw();
  a.v = v.raw();
  TV_ASSIGN_OR_RETURN(a.proj_w, In(name, "proj_w", o.proj_w));
  TV_ASSIGN_OR_RETURN(a.proj_b, In(name, "proj_b", o.proj_b));
  a.out = out.raw();
  a.sparse_out = sparse_out.defined() ? sparse_out.raw() : nullptr;
  a.sparse_map = o.sparse_map != nullptr ? o.sparse_map->data<int8_t>() : nullptr;
  const size_t ws_bytes = kernels::SlaWorkspaceBytes(a);
  if (ws_bytes == 0) {
    return absl::InternalError(absl::StrCat(name, ": no launch plan for ", what));
  }
  // The kernels want a 256-byte aligned workspace; pool blocks are, but do not rely on it.
  TV_ASSIGN_OR_RETURN(Tensor ws,
                      b.AllocateUninitialized(DType::kU8, {static_cast<int64_t>(ws_bytes + 256)}));
  const uintptr_t raw = reinterpret_cast<uintptr_t>(ws.raw());
  void* aligned = reinterpret_cast<void*>((raw + 255) / 256 * 256);
  float kernel_ms[kernels::kSlaNumKernels];
  if (b.profiling()) a.kernel_ms = kernel_ms;
  TV_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchSla(a, aligned, ws_bytes, b.stream()), name, what));
  if (a.kernel_ms != nullptr) {
    for (int i = 0; i < kernels::kSlaNumKernels; ++i) {
      if (kernel_ms[i] < 0.f) continue;  // not run on this plan
      b.AddProfile(
          absl::StrCat(name, "/", kernels::SlaKernelName(i), " ", ShapeString(o.q->shape())),
          kernel_ms[i]);
    }
  }
  TV_RETURN_IF_ERROR(CopyBack(b, out, o.out));
  if (o.sparse_out != nullptr) TV_RETURN_IF_ERROR(CopyBack(b, sparse_out, o.sparse_out));
  return absl::OkStatus();
}

absl::Status RunSla(CudaBackend& b, const SlaOp& op) {
  TV_ASSIGN_OR_RETURN(const Dims s, CheckSla(op));
  kernels::SlaArgs a;
  a.l = s.l;
  a.heads = s.n;
  a.d = static_cast<int>(s.d);
  a.block_q = op.block_q;
  a.block_k = op.block_k;
  a.ksel = static_cast<int>(s.ksel);
  a.path = b.kernel_options().sla;  // TV_SLA_PATH / TV_SLA_PORTABLE
  return LaunchSlaOp(b, kOp,
                     {op.q, op.k, op.v, op.proj_w, op.proj_b, op.out, op.sparse_out, op.sparse_map},
                     a,
                     absl::StrCat("q ", op.q->Describe(), " topk ", op.topk, " block_q ",
                                  op.block_q, " block_k ", op.block_k));
}

// SageSLA (kernels/sla.h SageNumerics): the SLA plan with the quantised sparse branch.
constexpr char kSageOp[] = "sage_sla";

absl::Status CheckSageProbe(const char* what, const Tensor* t, DType dtype, const Shape& shape) {
  if (t == nullptr) return absl::OkStatus();
  TV_RETURN_IF_ERROR(ExpectDevice(kSageOp, what, t));
  if (t->dtype() != dtype || t->shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat("sage_sla: ", what, " ", t->Describe(),
                                                   ", want ", std::string(DTypeName(dtype)),
                                                   ShapeString(shape)));
  }
  return absl::OkStatus();
}

absl::Status RunSageSla(CudaBackend& b, const SageSlaOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice(kSageOp, "q", op.q));
  if (op.q->rank() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("sage_sla: q ", op.q->Describe(), " must be [L, N, D]"));
  }
  const int64_t l = op.q->dim(0), n = op.q->dim(1), d = op.q->dim(2);
  if (l <= 0 || (d != 64 && d != 128)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sage_sla: q ", op.q->Describe(), ": L must be positive and D 64 or 128"));
  }
  if (!(op.topk >= 0.f && op.topk <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("sage_sla: topk ", op.topk, " outside [0, 1]"));
  }
  if (n > 65535 || l * n * d >= (int64_t{1} << 31)) {
    return absl::UnimplementedError(absl::StrCat(
        "sage_sla: q ", op.q->Describe(), ": the CUDA kernels take N ≤ 65535 and L·N·D < 2^31"));
  }
  const int bq = SageSlaBlockQ(op.variant), bk = SageSlaBlockK(op.variant);
  const int64_t nq = (l + bq - 1) / bq, nk = (l + bk - 1) / bk;
  const int64_t ksel =
      std::min<int64_t>(nk, static_cast<int64_t>(PythonTopk(op.topk) * static_cast<double>(nk)));
  const Shape lnd{l, n, d};
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kSageOp, "k", op.k, lnd));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kSageOp, "v", op.v, lnd));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kSageOp, "proj_w", op.proj_w, {d, d}));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kSageOp, "proj_b", op.proj_b, {d}));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kSageOp, "out", op.out, lnd));
  TV_RETURN_IF_ERROR(In(kSageOp, "proj_w", op.proj_w).status());
  TV_RETURN_IF_ERROR(In(kSageOp, "proj_b", op.proj_b).status());
  if (op.sparse_out != nullptr)
    TV_RETURN_IF_ERROR(ExpectDeviceShape(kSageOp, "sparse_out", op.sparse_out, lnd));
  TV_RETURN_IF_ERROR(CheckSageProbe("sparse_map", op.sparse_map, DType::kI8, {n, nq, nk}));
  TV_RETURN_IF_ERROR(CheckSageProbe("q_int8", op.q_int8, DType::kI8, lnd));
  TV_RETURN_IF_ERROR(CheckSageProbe("q_scale", op.q_scale, DType::kF32, {n, nq}));
  TV_RETURN_IF_ERROR(CheckSageProbe("k_mean", op.k_mean, DType::kF32, {n, d}));
  TV_RETURN_IF_ERROR(CheckSageProbe("k_int8", op.k_int8, DType::kI8, lnd));
  TV_RETURN_IF_ERROR(CheckSageProbe("k_scale", op.k_scale, DType::kF32, {n, nk}));
  TV_RETURN_IF_ERROR(CheckSageProbe("v_fp8", op.v_fp8, DType::kU8, lnd));
  TV_RETURN_IF_ERROR(CheckSageProbe("v_scale", op.v_scale, DType::kF32, {n, d}));

  kernels::SlaArgs a;
  a.l = l;
  a.heads = n;
  a.d = static_cast<int>(d);
  a.block_q = bq;
  a.block_k = bk;
  a.ksel = static_cast<int>(ksel);
  a.sage = op.variant == SageSlaVariant::kSm90 ? kernels::SageNumerics::kSm90
                                               : kernels::SageNumerics::kSm89;
  a.sage_linear_simple = b.kernel_options().sage_linear_simple;  // TV_SAGESLA_LINEAR
  a.sage_path = b.kernel_options().sagesla;                       // TV_SAGESLA_PATH
  auto raw = [](Tensor* t) { return t != nullptr ? t->raw() : nullptr; };
  a.sage_probes.q_int8 = static_cast<int8_t*>(raw(op.q_int8));
  a.sage_probes.q_scale = static_cast<float*>(raw(op.q_scale));
  a.sage_probes.k_mean = static_cast<float*>(raw(op.k_mean));
  a.sage_probes.k_int8 = static_cast<int8_t*>(raw(op.k_int8));
  a.sage_probes.k_scale = static_cast<float*>(raw(op.k_scale));
  a.sage_probes.v_fp8 = static_cast<uint8_t*>(raw(op.v_fp8));
  a.sage_probes.v_scale = static_cast<float*>(raw(op.v_scale));
  return LaunchSlaOp(b, kSageOp,
                     {op.q, op.k, op.v, op.proj_w, op.proj_b, op.out, op.sparse_out, op.sparse_map},
                     a, absl::StrCat("q ", op.q->Describe(), " topk ", op.topk));
}

}  // namespace

void RegisterCudaSlaOps(CudaBackend& backend) {
  RegisterOp<SlaOp>(backend, &RunSla);
  RegisterOp<SageSlaOp>(backend, &RunSageSla);
}

}  // namespace turbovid::engine::cuda
