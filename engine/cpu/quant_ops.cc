// CPU reference W8A8 linear (docs/model-math.md §11), bit-exact emulation of Int8Linear:
// y = bf16(bf16(Σ_kb fma(int32 dot, x_scale·w_scale, acc)) + bias); x: [M, K], w_int8: [N, K] I8.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/fp8.h"
#include "engine/core/op_checks.h"
#include "engine/core/parallel.h"
#include "engine/core/quantize.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
namespace {

absl::Status CheckInt8Linear(const Int8LinearOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("int8_linear", "x", op.x));
  if (op.w_int8 == nullptr || op.w_int8->dtype() != DType::kI8 || op.w_int8->rank() != 2) {
    return absl::InvalidArgumentError("int8_linear: w_int8 must be I8 [N, K]");
  }
  if (op.x->rank() != 2 || op.x->dim(1) != op.w_int8->dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat("int8_linear: x ", op.x->Describe(), " and w ",
                                                   op.w_int8->Describe(), " do not chain"));
  }
  const int64_t m = op.x->dim(0), k = op.x->dim(1), n = op.w_int8->dim(0);
  const int64_t kb = (k + kInt8Block - 1) / kInt8Block;
  const int64_t mb = (m + kInt8Block - 1) / kInt8Block;
  TV_RETURN_IF_ERROR(ExpectF32("int8_linear", "w_scale", op.w_scale));
  TV_RETURN_IF_ERROR(
      ExpectShape("int8_linear", "w_scale", op.w_scale, {(n + kInt8Block - 1) / kInt8Block, kb}));
  if (op.bias != nullptr) {
    TV_RETURN_IF_ERROR(ExpectF32("int8_linear", "bias", op.bias));
    TV_RETURN_IF_ERROR(ExpectShape("int8_linear", "bias", op.bias, {n}));
  }
  TV_RETURN_IF_ERROR(ExpectF32("int8_linear", "y", op.y));
  TV_RETURN_IF_ERROR(ExpectShape("int8_linear", "y", op.y, {m, n}));
  if (op.x_int8 != nullptr &&
      (op.x_int8->dtype() != DType::kI8 || op.x_int8->shape() != Shape{m, k})) {
    return absl::InvalidArgumentError(absl::StrCat("int8_linear: x_int8 ", op.x_int8->Describe(),
                                                   ", want I8 ", ShapeString({m, k})));
  }
  if (op.x_scale != nullptr) {
    TV_RETURN_IF_ERROR(ExpectF32("int8_linear", "x_scale", op.x_scale));
    TV_RETURN_IF_ERROR(ExpectShape("int8_linear", "x_scale", op.x_scale, {mb, kb}));
  }
  if (op.acc != nullptr) {
    TV_RETURN_IF_ERROR(ExpectF32("int8_linear", "acc", op.acc));
    TV_RETURN_IF_ERROR(ExpectShape("int8_linear", "acc", op.acc, {m, n}));
  }
  return absl::OkStatus();
}

absl::Status RunInt8Linear(const Int8LinearOp& op) {
  TV_RETURN_IF_ERROR(CheckInt8Linear(op));
  const int64_t m = op.x->dim(0), k = op.x->dim(1), n = op.w_int8->dim(0);
  const int64_t kb = (k + kInt8Block - 1) / kInt8Block;
  // Dynamic activation quantisation: the same tile quantiser as the offline weight converter.
  Tensor xq, xs;
  TV_RETURN_IF_ERROR(QuantizeBlockInt8(*op.x, &xq, &xs));
  const int8_t* a = xq.data<int8_t>();
  const int8_t* w = op.w_int8->data<int8_t>();
  const float* as = xs.data<float>();
  const float* ws = op.w_scale->data<float>();
  const float* bias = op.bias ? op.bias->data<float>() : nullptr;
  float* y = op.y->data<float>();
  float* acc_probe = op.acc ? op.acc->data<float>() : nullptr;
  ParallelFor(m, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        float acc = 0.f;
        // One int32 partial sum per 128-wide K block, dequantised into the fp32 accumulator in
        // increasing block order (kernel.hpp main loop), with the scale product rounded to fp32.
        for (int64_t b = 0; b < kb; ++b) {
          const int64_t c0 = b * kInt8Block, c1 = std::min(k, c0 + kInt8Block);
          int32_t dot = 0;
          for (int64_t c = c0; c < c1; ++c) dot += int32_t{a[i * k + c]} * int32_t{w[j * k + c]};
          const float sab = as[(i / kInt8Block) * kb + b] * ws[(j / kInt8Block) * kb + b];
          acc = std::fma(static_cast<float>(dot), sab, acc);
        }
        if (acc_probe) acc_probe[i * n + j] = acc;
        const float out = RoundToBf16(acc);
        y[i * n + j] = bias ? RoundToBf16(out + RoundToBf16(bias[j])) : out;
      }
    }
  });
  if (op.x_int8 != nullptr) std::memcpy(op.x_int8->raw(), xq.raw(), xq.nbytes());
  if (op.x_scale != nullptr) std::memcpy(op.x_scale->raw(), xs.raw(), xs.nbytes());
  return absl::OkStatus();
}

// FP8 e4m3 (docs/model-math.md §11.6): the codes and scales are the core quantiser's; the dot of
// two code rows is summed exactly (every e4m3 product is a multiple of 2^-18 below 2^18, so a
// float64 sum of up to 2^17 of them loses nothing), scaled in float64 and rounded once to fp32.
absl::Status RunFp8Quantize(const Fp8QuantizeOp& op) {
  TV_RETURN_IF_ERROR(CheckFp8Quantize(op).status());
  TV_RETURN_IF_ERROR(ExpectF32("fp8_quantize", "x", op.x));
  Tensor q, s;
  TV_RETURN_IF_ERROR(QuantizeRowsFp8(*op.x, &q, &s));
  std::memcpy(op.q->raw(), q.raw(), q.nbytes());
  std::memcpy(op.scale->raw(), s.raw(), s.nbytes());
  return absl::OkStatus();
}

absl::Status RunFp8Linear(const Fp8LinearOp& op) {
  TV_ASSIGN_OR_RETURN(const Fp8Dims d, CheckFp8Linear(op));
  TV_RETURN_IF_ERROR(ExpectF32("fp8_linear", "x", op.x));
  if (op.bias != nullptr) TV_RETURN_IF_ERROR(ExpectF32("fp8_linear", "bias", op.bias));
  TV_RETURN_IF_ERROR(ExpectF32("fp8_linear", "y", op.y));
  Tensor xq, xs;
  TV_RETURN_IF_ERROR(QuantizeRowsFp8(*op.x, &xq, &xs));
  // Decoded codes once (e4m3 values are exact in fp32).
  std::vector<float> a(static_cast<size_t>(d.m * d.k)), w(static_cast<size_t>(d.n * d.k));
  const uint8_t* aq = xq.data<uint8_t>();
  const uint8_t* wq = op.w_fp8->data<uint8_t>();
  for (int64_t i = 0; i < d.m * d.k; ++i) a[i] = E4m3ToF32(aq[i]);
  for (int64_t i = 0; i < d.n * d.k; ++i) w[i] = E4m3ToF32(wq[i]);
  const float* as = xs.data<float>();
  const float* ws = op.w_scale->data<float>();
  const float* bias = op.bias ? op.bias->data<float>() : nullptr;
  float* y = op.y->data<float>();
  ParallelFor(d.m, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* ar = a.data() + i * d.k;
      for (int64_t j = 0; j < d.n; ++j) {
        const float* wr = w.data() + j * d.k;
        double dot = 0.0;
        for (int64_t c = 0; c < d.k; ++c) dot += double{ar[c]} * double{wr[c]};
        const float acc = static_cast<float>(dot * double{as[i]} * double{ws[j]});
        const float out = RoundToBf16(acc);
        y[i * d.n + j] = bias ? RoundToBf16(out + RoundToBf16(bias[j])) : out;
      }
    }
  });
  if (op.x_fp8 != nullptr) std::memcpy(op.x_fp8->raw(), xq.raw(), xq.nbytes());
  if (op.x_scale != nullptr) std::memcpy(op.x_scale->raw(), xs.raw(), xs.nbytes());
  return absl::OkStatus();
}

}  // namespace

void RegisterQuantOps(CpuBackend& backend) {
  backend.Register<Int8LinearOp>(&RunInt8Linear);
  backend.Register<Fp8LinearOp>(&RunFp8Linear);
  backend.Register<Fp8QuantizeOp>(&RunFp8Quantize);
}

}  // namespace turbovid::engine::cpu
