// SageSLA GPU arithmetic on the CPU (see sagesla_math.h); facts in docs/model-math.md §10.
#include "engine/cpu/sagesla_math.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "engine/core/fp8.h"
#include "engine/core/rcp_approx.h"

namespace turbovid::engine::cpu::sagesla {
namespace {


}  // namespace

float Int8BlockScale(float amax) { return std::fma(amax, 1.f / 127.f, 1e-7f); }

int8_t Int8Code(float x, float scale) {
  float y = x / scale;
  if (std::isnan(y)) return 0;
  y += y >= 0.f ? 0.5f : -0.5f;
  y = std::trunc(y);
  if (y > 127.f) return 127;
  if (y < -128.f) return -128;
  return static_cast<int8_t>(y);
}

float RcpApproxBf16(float x) { return RcpApprox(x); }

float VScale(float amax) { return amax * (1.f / kVScaleMax); }

float VFactor(float amax) { return kVScaleMax * RcpApproxBf16(amax); }

float Exp2(float x) {
  const float y = static_cast<float>(std::exp2(static_cast<double>(x)));
  return y < 0x1p-126f ? 0.f : y;
}

float Reciprocal(float x) { return 1.f / x; }

namespace {

// One k=32 step of an FP8 tensor-core product with fp32 accumulators, as Hopper's wgmma does it
// (docs/model-math.md §10.6): the 32 exact products and the incoming accumulator are aligned to
// the largest of them and each is truncated toward zero to 14 significant bits of that scale
// (the "fp22" accumulator: 13 fraction bits); the sum of the truncated terms is exact.
float TensorCoreStepF32(const double* prod, int n, float acc) {
  double amax = std::fabs(static_cast<double>(acc));
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(prod[j]));
  if (amax == 0 || !std::isfinite(amax)) {
    double sum = acc;
    for (int j = 0; j < n; ++j) sum += prod[j];
    return static_cast<float>(sum);
  }
  int e = 0;
  std::frexp(amax, &e);  // amax < 2^e
  const double quantum = std::ldexp(1.0, e - 14);
  double sum = std::trunc(acc / quantum);
  for (int j = 0; j < n; ++j) sum += std::trunc(prod[j] / quantum);
  return static_cast<float>(sum * quantum);  // <= 20 significant bits: exact
}

// One k=32 step of mma.sync m16n8k32 with fp16 accumulators: modelled as the exact sum rounded
// to fp16 (RNE).
float TensorCoreStepF16(const double* prod, int n, float acc) {
  double sum = acc;
  for (int j = 0; j < n; ++j) sum += prod[j];
  return RoundToF16(static_cast<float>(sum));
}

}  // namespace

void AccumulatePv(SageSlaVariant variant, const float* p8, const uint8_t* v8, int64_t k0,
                  int64_t bk, int64_t l, int64_t d, float* ro) {
  constexpr int kStep = 32;  // keys per tensor-core instruction (fp8 k = 32)
  double prod[kStep];
  for (int64_t c = 0; c < d; ++c) {
    float acc = 0.f;  // the block's partial starts from zero (wgmma scale-d 0 / kInit)
    for (int64_t j0 = 0; j0 < bk; j0 += kStep) {
      for (int j = 0; j < kStep; ++j) {
        const int64_t key = k0 + j0 + j;
        const float v = key < l ? E4m3ToF32(v8[key * d + c]) : 0.f;
        prod[j] = static_cast<double>(p8[j0 + j]) * v;  // exact
      }
      switch (variant) {
        case SageSlaVariant::kSm90:
          acc = TensorCoreStepF32(prod, kStep, acc);
          break;
        case SageSlaVariant::kSm89:
          acc = TensorCoreStepF16(prod, kStep, acc);
          break;
      }
    }
    ro[c] += acc;
  }
}

}  // namespace turbovid::engine::cpu::sagesla
