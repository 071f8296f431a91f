// CUDA ops: int8 W8A8 linear (docs/model-math.md §11): quantise x per 128x128 tile, then the
// int8 GEMM with per-K-block dequant; bit-identical to the CPU reference (engine/cpu/quant_ops.cc).
// FP8 e4m3 linear (§11.6): per-row quantiser (codes and scales bit-identical to the CPU's), the
// cuBLASLt FP8 GEMM with per-row/per-column scale vectors, the bf16 bias pass.
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/cuda/cuda_backend_internal.h"
#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "kernels/quant.h"

namespace turbovid::engine::cuda {
namespace {

constexpr char kOp[] = "int8_linear";
constexpr int64_t kBlk = kernels::kQuantBlock;

absl::Status ExpectDtype(const std::string& what, const Tensor* t, DType dtype,
                         const Shape& shape) {
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, what, t, shape));
  if (t->dtype() != dtype) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": ", what, " is ", t->Describe(),
                                                   ", want ", std::string(DTypeName(dtype))));
  }
  return absl::OkStatus();
}

struct Int8Dims {
  int64_t m, n, k;
};

// Mirrors the CPU checks; x, bias and y may be BF16 or F32 (In/Out check that), the int8
// operands I8 and the scales and probes F32.
absl::StatusOr<Int8Dims> CheckInt8Linear(const Int8LinearOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice(kOp, "x", op.x));
  TV_RETURN_IF_ERROR(ExpectDevice(kOp, "w_int8", op.w_int8));
  if (op.w_int8->dtype() != DType::kI8 || op.w_int8->rank() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": w_int8 ", op.w_int8->Describe(), " must be I8 [N, K]"));
  }
  if (op.x->rank() != 2 || op.x->dim(1) != op.w_int8->dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": x ", op.x->Describe(), " and w ",
                                                   op.w_int8->Describe(), " do not chain"));
  }
  const Int8Dims d{op.x->dim(0), op.w_int8->dim(0), op.x->dim(1)};
  const int64_t mb = (d.m + kBlk - 1) / kBlk, nb = (d.n + kBlk - 1) / kBlk;
  const int64_t kb = (d.k + kBlk - 1) / kBlk;
  TV_RETURN_IF_ERROR(ExpectDtype("w_scale", op.w_scale, DType::kF32, {nb, kb}));
  if (op.bias != nullptr) TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "bias", op.bias, {d.n}));
  TV_RETURN_IF_ERROR(ExpectDeviceShape(kOp, "y", op.y, {d.m, d.n}));
  if (op.x_int8 != nullptr)
    TV_RETURN_IF_ERROR(ExpectDtype("x_int8", op.x_int8, DType::kI8, {d.m, d.k}));
  if (op.x_scale != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDtype("x_scale", op.x_scale, DType::kF32, {mb, kb}));
  }
  if (op.acc != nullptr) TV_RETURN_IF_ERROR(ExpectDtype("acc", op.acc, DType::kF32, {d.m, d.n}));
  return d;
}

absl::Status RunInt8Linear(CudaBackend& b, const Int8LinearOp& op) {
  TV_ASSIGN_OR_RETURN(const Int8Dims d, CheckInt8Linear(op));
  const std::string shapes = absl::StrCat("x ", op.x->Describe(), " w ", op.w_int8->Describe());
  // The quantised activations and their scales go straight into the probes when given (the
  // GEMM then reads them there), else into temporaries dropped on return: cudaFree waits for
  // the device, and a stream-ordered cache would hand them out again only behind the GEMM.
  Tensor xq, xs;
  if (op.x_int8 != nullptr) {
    xq = *op.x_int8;
  } else {
    TV_ASSIGN_OR_RETURN(xq, b.Allocate(DType::kI8, {d.m, d.k}));
  }
  if (op.x_scale != nullptr) {
    xs = *op.x_scale;
  } else {
    TV_ASSIGN_OR_RETURN(
        xs, b.Allocate(DType::kF32, {(d.m + kBlk - 1) / kBlk, (d.k + kBlk - 1) / kBlk}));
  }

  kernels::QuantizeInt8Args qa;
  TV_ASSIGN_OR_RETURN(qa.x, In(kOp, "x", op.x));
  qa.q = xq.data<int8_t>();
  qa.scale = xs.data<float>();
  qa.rows = d.m;
  qa.cols = d.k;
  TV_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchQuantizeInt8(qa, b.stream()), "int8_linear quantize", shapes));

  kernels::Int8GemmArgs ga;
  ga.a = xq.data<int8_t>();
  ga.a_scale = xs.data<float>();
  ga.w = op.w_int8->data<int8_t>();
  ga.w_scale = op.w_scale->data<float>();
  if (op.bias != nullptr) {
    TV_ASSIGN_OR_RETURN(ga.bias, In(kOp, "bias", op.bias));
  }
  TV_ASSIGN_OR_RETURN(ga.y, Out(kOp, "y", op.y));
  ga.acc = op.acc != nullptr ? op.acc->data<float>() : nullptr;
  ga.m = d.m;
  ga.n = d.n;
  ga.k = d.k;
  ga.path = b.kernel_options().int8_gemm;  // TV_INT8_GEMM / TV_KERNELS=portable
  return CudaStatus(kernels::LaunchInt8Gemm(ga, b.stream()), "int8_linear gemm", shapes);
}

// FP8 e4m3 (docs/model-math.md §11.6): the row quantiser and the cuBLASLt FP8 GEMM. Shapes and
// the code/scale dtypes are checked in core (CheckFp8*), the same messages as the CPU's.

absl::Status RunFp8Quantize(CudaBackend& b, const Fp8QuantizeOp& op) {
  constexpr char kQ[] = "fp8_quantize";
  TV_ASSIGN_OR_RETURN(const Fp8QuantizeDims d, CheckFp8Quantize(op));
  TV_RETURN_IF_ERROR(ExpectDevice(kQ, "q", op.q));
  TV_RETURN_IF_ERROR(ExpectDevice(kQ, "scale", op.scale));
  kernels::QuantizeFp8Args qa;
  TV_ASSIGN_OR_RETURN(qa.x, In(kQ, "x", op.x));
  qa.q = op.q->data<uint8_t>();
  qa.scale = op.scale->data<float>();
  qa.rows = d.rows;
  qa.cols = d.cols;
  return CudaStatus(kernels::LaunchQuantizeFp8Rows(qa, b.stream()), kQ,
                    absl::StrCat("x ", op.x->Describe()));
}

absl::Status RunFp8Linear(CudaBackend& b, const Fp8LinearOp& op) {
  constexpr char kF[] = "fp8_linear";
  TV_ASSIGN_OR_RETURN(const Fp8Dims d, CheckFp8Linear(op));
  TV_RETURN_IF_ERROR(ExpectDevice(kF, "w_fp8", op.w_fp8));
  TV_RETURN_IF_ERROR(ExpectDevice(kF, "w_scale", op.w_scale));
  if (d.k % 16 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        kF, ": x ", op.x->Describe(), ": K ", d.k, " is not a multiple of 16 (cuBLASLt FP8)"));
  }
  const std::string shapes = absl::StrCat("x ", op.x->Describe(), " w ", op.w_fp8->Describe());
  Tensor xq, xs;
  if (op.x_fp8 != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDevice(kF, "x_fp8", op.x_fp8));
    xq = *op.x_fp8;
  } else {
    TV_ASSIGN_OR_RETURN(xq, b.AllocateUninitialized(DType::kU8, {d.m, d.k}));
  }
  if (op.x_scale != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDevice(kF, "x_scale", op.x_scale));
    xs = *op.x_scale;
  } else {
    TV_ASSIGN_OR_RETURN(xs, b.AllocateUninitialized(DType::kF32, {d.m}));
  }
  kernels::QuantizeFp8Args qa;
  TV_ASSIGN_OR_RETURN(qa.x, In(kF, "x", op.x));
  qa.q = xq.data<uint8_t>();
  qa.scale = xs.data<float>();
  qa.rows = d.m;
  qa.cols = d.k;
  TV_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchQuantizeFp8Rows(qa, b.stream()), "fp8_linear quantize", shapes));

  kernels::GemmFp8Args ga;
  ga.x = xq.raw();
  ga.x_scale = xs.data<float>();
  ga.w = op.w_fp8->raw();
  ga.w_scale = op.w_scale->data<float>();
  TV_ASSIGN_OR_RETURN(ga.y, Out(kF, "y", op.y));
  ga.m = d.m;
  ga.n = d.n;
  ga.k = d.k;
  ga.fast_accum = b.kernel_options().fp8_fast_accum;
  kernels::Fp8EpilogueArgs ea;
  ea.y = ga.y;
  if (op.bias != nullptr) {
    TV_ASSIGN_OR_RETURN(ea.bias, In(kF, "bias", op.bias));
  }
  ea.rows = d.m;
  ea.cols = d.n;
  int st = b.kernel_options().fp8_epilogue_scaling ? kernels::kGemmNotSupported : 0;
  if (st == 0) st = kernels::LaunchGemmFp8(b.gemm(), ga, b.stream());
  Tensor acc;
  if (st == kernels::kGemmNotSupported) {
    if (!b.kernel_options().fp8_epilogue_scaling) {
      static std::once_flag said;
      std::call_once(said, [&] {
        TV_LOG(WARNING) << "fp8_linear: cuBLASLt has no FP8 algorithm with per-row/per-column "
                           "scale vectors here (" << shapes
                        << "); using the fp32-accumulator + scaling-kernel path";
      });
    }
    // Per-row/per-column scale vectors refused (or the epilogue path asked for): the raw fp32
    // accumulator into a temporary, then one kernel applies x_scale, w_scale and the bias.
    TV_ASSIGN_OR_RETURN(acc, b.AllocateUninitialized(DType::kF32, {d.m, d.n}));
    ga.outer_vec = false;
    ga.y = kernels::MutBuf{acc.raw(), kernels::ElemType::kF32};
    st = kernels::LaunchGemmFp8(b.gemm(), ga, b.stream());
    ea.acc = acc.data<float>();
    ea.row_scale = xs.data<float>();
    ea.col_scale = op.w_scale->data<float>();
  }
  if (st != 0) {
    return absl::InternalError(absl::StrCat(
        "fp8_linear gemm (", shapes, "): ",
        st > 0 ? absl::StrCat("cuBLASLt status ", st)
               : absl::StrCat("CUDA error ", cudaGetErrorString(static_cast<cudaError_t>(-st)))));
  }
  // y = bf16(y + bf16(bias)) as its own pass: cuBLASLt's bias epilogue adds the bias to the
  // fp32 product before the one rounding, not to the rounded product (docs/model-math.md §11.8).
  return CudaStatus(kernels::LaunchFp8Epilogue(ea, b.stream()), "fp8_linear epilogue", shapes);
}

}  // namespace

void RegisterCudaQuantOps(CudaBackend& backend) {
  RegisterOp<Int8LinearOp>(backend, &RunInt8Linear);
  RegisterOp<Fp8LinearOp>(backend, &RunFp8Linear);
  RegisterOp<Fp8QuantizeOp>(backend, &RunFp8Quantize);
}

}  // namespace turbovid::engine::cuda
