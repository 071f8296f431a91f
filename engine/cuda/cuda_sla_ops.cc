// CUDA op: SLA (kernels/sla.h). Checks mirror the CPU reference (engine/cpu/sla_ops.cc); F32
// operands are staged through bf16 copies, scratch comes from one workspace tensor.
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

absl::Status RunSla(CudaBackend& b, const SlaOp& op) {
  TV_ASSIGN_OR_RETURN(const Dims s, CheckSla(op));
  TV_ASSIGN_OR_RETURN(Tensor q, AsBf16(b, *op.q, "q"));
  TV_ASSIGN_OR_RETURN(Tensor k, AsBf16(b, *op.k, "k"));
  TV_ASSIGN_OR_RETURN(Tensor v, AsBf16(b, *op.v, "v"));
  TV_ASSIGN_OR_RETURN(Tensor out, OutputBuffer(b, op.out, "out"));
  Tensor sparse_out;
  if (op.sparse_out != nullptr) {
    TV_ASSIGN_OR_RETURN(sparse_out, OutputBuffer(b, op.sparse_out, "sparse_out"));
  }
  kernels::SlaArgs a;
  a.q = q.raw();
  a.k = k.raw();
  a.v = v.raw();
  TV_ASSIGN_OR_RETURN(a.proj_w, In(kOp, "proj_w", op.proj_w));
  TV_ASSIGN_OR_RETURN(a.proj_b, In(kOp, "proj_b", op.proj_b));
  a.out = out.raw();
  a.sparse_out = sparse_out.defined() ? sparse_out.raw() : nullptr;
  a.sparse_map = op.sparse_map != nullptr ? op.sparse_map->data<int8_t>() : nullptr;
  a.l = s.l;
  a.heads = s.n;
  a.d = static_cast<int>(s.d);
  a.block_q = op.block_q;
  a.block_k = op.block_k;
  a.ksel = static_cast<int>(s.ksel);
  a.path = b.kernel_options().sla;  // TV_SLA_PATH / TV_SLA_PORTABLE
  const size_t ws_bytes = kernels::SlaWorkspaceBytes(a);
  if (ws_bytes == 0) {
    return absl::InternalError(absl::StrCat("sla: no launch plan for q ", op.q->Describe(),
                                            " block_q ", op.block_q, " block_k ", op.block_k));
  }
  // The kernels want a 256-byte aligned workspace; pool blocks are, but do not rely on it.
  TV_ASSIGN_OR_RETURN(Tensor ws,
                      b.AllocateUninitialized(DType::kU8, {static_cast<int64_t>(ws_bytes + 256)}));
  const uintptr_t raw = reinterpret_cast<uintptr_t>(ws.raw());
  void* aligned = reinterpret_cast<void*>((raw + 255) / 256 * 256);
  // Under the per-op profile (TV_CUDA_PROFILE=1) each of the op's kernels is timed as well.
  float kernel_ms[kernels::kSlaNumKernels];
  if (b.profiling()) a.kernel_ms = kernel_ms;
  TV_RETURN_IF_ERROR(CudaStatus(kernels::LaunchSla(a, aligned, ws_bytes, b.stream()), kOp,
                                absl::StrCat("q ", op.q->Describe(), " topk ", op.topk, " block_q ",
                                             op.block_q, " block_k ", op.block_k)));
  if (a.kernel_ms != nullptr) {
    for (int i = 0; i < kernels::kSlaNumKernels; ++i) {
      if (kernel_ms[i] < 0.f) continue;  // not run on this plan
      b.AddProfile(absl::StrCat("sla/", kernels::SlaKernelName(i), " ", ShapeString(op.q->shape())),
                   kernel_ms[i]);
    }
  }
  TV_RETURN_IF_ERROR(CopyBack(b, out, op.out));
  if (op.sparse_out != nullptr) TV_RETURN_IF_ERROR(CopyBack(b, sparse_out, op.sparse_out));
  return absl::OkStatus();
}

}  // namespace

void RegisterCudaSlaOps(CudaBackend& backend) { RegisterOp<SlaOp>(backend, &RunSla); }

}  // namespace turbovid::engine::cuda
