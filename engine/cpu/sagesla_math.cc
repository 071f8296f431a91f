// SageSLA GPU arithmetic on the CPU (see sagesla_math.h); facts in docs/model-math.md §10.
#include "engine/cpu/sagesla_math.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "engine/core/fp8.h"

namespace turbovid::engine::cpu::sagesla {
namespace {

// rcp.approx.ftz.f32 for x = 1 + m/128, m = 0..127 (the bf16 mantissas), as fp32 bit patterns;
// the instruction scales exactly with the exponent, so these give it for every normal bf16 x.
// The instruction is within 1 ulp of 1/x, so each entry is the correctly rounded 1/x or its
// neighbour on the side of the exact value. PARTIAL KNOWLEDGE (docs/model-math.md §10.6): the
// golden cases' V codes (H100 runs) prove the neighbour for m = 4 (one below) and m = 6, 109,
// 116, 121 (one above) and allow the rounded value for the other 73 mantissas they contain;
// the remaining 50 mantissas are unmeasured and assumed correctly rounded.
constexpr uint32_t kRcpBf16[128] = {
    0x3F800000, 0x3F7E03F8, 0x3F7C0FC1, 0x3F7A232D, 0x3F783E0F, 0x3F76603E, 0x3F74898E, 0x3F72B9D6,
    0x3F70F0F1, 0x3F6F2EB7, 0x3F6D7304, 0x3F6BBDB3, 0x3F6A0EA1, 0x3F6865AC, 0x3F66C2B4, 0x3F652598,
    0x3F638E39, 0x3F61FC78, 0x3F607038, 0x3F5EE95C, 0x3F5D67C9, 0x3F5BEB62, 0x3F5A740E, 0x3F5901B2,
    0x3F579436, 0x3F562B81, 0x3F54C77B, 0x3F53680D, 0x3F520D21, 0x3F50B6A0, 0x3F4F6475, 0x3F4E168A,
    0x3F4CCCCD, 0x3F4B8728, 0x3F4A4588, 0x3F4907DA, 0x3F47CE0C, 0x3F46980C, 0x3F4565C8, 0x3F443730,
    0x3F430C31, 0x3F41E4BC, 0x3F40C0C1, 0x3F3FA030, 0x3F3E82FA, 0x3F3D6910, 0x3F3C5264, 0x3F3B3EE7,
    0x3F3A2E8C, 0x3F392144, 0x3F381703, 0x3F370FBB, 0x3F360B61, 0x3F3509E7, 0x3F340B41, 0x3F330F63,
    0x3F321643, 0x3F311FD4, 0x3F302C0B, 0x3F2F3ADE, 0x3F2E4C41, 0x3F2D602B, 0x3F2C7692, 0x3F2B8F6A,
    0x3F2AAAAB, 0x3F29C84A, 0x3F28E83F, 0x3F280A81, 0x3F272F05, 0x3F2655C4, 0x3F257EB5, 0x3F24A9CF,
    0x3F23D70A, 0x3F23065E, 0x3F2237C3, 0x3F216B31, 0x3F20A0A1, 0x3F1FD80A, 0x3F1F1166, 0x3F1E4CAD,
    0x3F1D89D9, 0x3F1CC8E1, 0x3F1C09C1, 0x3F1B4C70, 0x3F1A90E8, 0x3F19D723, 0x3F191F1A, 0x3F1868C8,
    0x3F17B426, 0x3F17012E, 0x3F164FDA, 0x3F15A025, 0x3F14F209, 0x3F144581, 0x3F139A86, 0x3F12F114,
    0x3F124925, 0x3F11A2B4, 0x3F10FDBC, 0x3F105A38, 0x3F0FB824, 0x3F0F177A, 0x3F0E7835, 0x3F0DDA52,
    0x3F0D3DCB, 0x3F0CA29C, 0x3F0C08C1, 0x3F0B7034, 0x3F0AD8F3, 0x3F0A42F9, 0x3F09AE41, 0x3F091AC7,
    0x3F088889, 0x3F07F781, 0x3F0767AB, 0x3F06D905, 0x3F064B8B, 0x3F05BF37, 0x3F053408, 0x3F04A9FA,
    0x3F042108, 0x3F039931, 0x3F03126F, 0x3F028CC0, 0x3F020821, 0x3F01848E, 0x3F010204, 0x3F008081,
};

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

float RcpApproxBf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t sign = bits & 0x80000000u;
  const uint32_t exp = (bits >> 23) & 0xFF;
  if (exp == 0) return std::bit_cast<float>(sign | 0x7F800000u);  // 0 and (flushed) subnormals
  if (exp == 0xFF) {
    return (bits & 0x7FFFFFu) ? x : std::bit_cast<float>(sign);  // NaN stays, 1/inf = 0
  }
  const uint32_t m = (bits >> 16) & 0x7F;
  const uint32_t r = kRcpBf16[m];  // in (0.5, 1]: exponent field 126 or 127
  const int r_exp = static_cast<int>(r >> 23) - (static_cast<int>(exp) - 127);
  if (r_exp <= 0) return std::bit_cast<float>(sign);  // below 2^-126: flushed
  return std::bit_cast<float>(sign | (static_cast<uint32_t>(r_exp) << 23) | (r & 0x7FFFFFu));
}

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
