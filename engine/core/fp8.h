// Exact software models of the narrow float formats SageSLA uses (docs/model-math.md §10.5):
// FP8 e4m3 ("e4m3fn": no infinities, one NaN pattern per sign, max 448) and IEEE fp16 rounding.
// constexpr and branch-only, so device test code can run the same functions as the CPU backend.
#pragma once

#include <bit>
#include <cstdint>

namespace turbovid::engine {

inline constexpr float kE4m3Max = 448.f;
inline constexpr uint8_t kE4m3NaN = 0x7F;  // S.1111.111; what cvt.rn.satfinite gives for a NaN

// e4m3 byte -> its value (exact in fp32): bias 7, exponent field 0 = subnormal m·2^-9,
// exponent 15 with mantissa 7 = NaN.
constexpr float E4m3ToF32(uint8_t code) {
  const uint32_t sign = static_cast<uint32_t>(code & 0x80) << 24;
  const uint32_t exp = (code >> 3) & 0xF, man = code & 0x7;
  if (exp == 0xF && man == 0x7) return std::bit_cast<float>(sign | 0x7FC00000u);
  if (exp == 0) {
    // m·2^-9 = m·2^-12·8: exact as a product of small powers of two.
    const float mag = static_cast<float>(man) * (1.f / 512.f);
    return sign ? -mag : mag;
  }
  return std::bit_cast<float>(sign | ((exp + 120) << 23) | (man << 20));
}

// fp32 -> e4m3 as PTX cvt.rn.satfinite.e4m3x2.f32 does it: round to nearest, ties to even;
// finite values (and infinities) beyond ±448 saturate to ±448; NaN -> 0x7F; the sign of a zero
// result is kept (-tiny -> 0x80).
constexpr uint8_t F32ToE4m3(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const uint32_t mag = bits & 0x7FFFFFFFu;
  if (mag > 0x7F800000u) return kE4m3NaN;
  if (mag >= 0x43E00000u) return sign | 0x7E;  // |x| >= 448 (and inf): saturate
  const int e = static_cast<int>(mag >> 23) - 127;
  if (e < -11) return sign;  // |x| < 2^-11: below half the smallest subnormal 2^-9
  // |x| = sig·2^(e-23) with the implicit bit; the e4m3 quantum is 2^(max(e,-6)-3).
  const uint32_t sig = (mag & 0x7FFFFFu) | 0x800000u;
  const int qe = e < -6 ? -6 : e;
  const int shift = 20 + (qe - e);  // quantum / fp32 ulp = 2^shift, 20..25
  const uint32_t half = 1u << (shift - 1);
  uint32_t n = sig >> shift;
  const uint32_t rest = sig & ((1u << shift) - 1);
  if (rest > half || (rest == half && (n & 1u))) ++n;
  if (n == 0) return sign;
  // n quanta of 2^(qe-3): n < 8 only for qe = -6 (subnormal), n = 16 carries into qe + 1.
  if (n < 8) return sign | static_cast<uint8_t>(n);
  int exp_field = qe + 7;
  if (n == 16) {
    n = 8;
    ++exp_field;
  }
  if (exp_field > 15 || (exp_field == 15 && n == 15)) return sign | 0x7E;
  return sign | static_cast<uint8_t>((exp_field << 3) | (n - 8));
}

// fp32 -> nearest fp16 value (ties to even, overflow to ±inf, subnormals kept), returned as fp32.
constexpr float RoundToF16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t sign = bits & 0x80000000u;
  const uint32_t mag = bits & 0x7FFFFFFFu;
  if (mag >= 0x7F800000u) return x;  // inf, NaN
  const int e = static_cast<int>(mag >> 23) - 127;
  if (e < -25) return std::bit_cast<float>(sign);  // below half the smallest subnormal 2^-24
  // fp16 quantum 2^(max(e,-14)-10); keep that many bits of the 24-bit significand, RNE.
  const uint32_t sig = (mag & 0x7FFFFFu) | 0x800000u;
  const int qe = e < -14 ? -14 : e;
  const int shift = 13 + (qe - e);  // 13..24
  const uint32_t half = 1u << (shift - 1);
  uint32_t n = sig >> shift;
  const uint32_t rest = sig & ((1u << shift) - 1);
  if (rest > half || (rest == half && (n & 1u))) ++n;
  // value = n·2^(qe-10); n <= 2048 so the fp32 product is exact.
  const float quantum = std::bit_cast<float>(static_cast<uint32_t>(qe - 10 + 127) << 23);
  const float v = static_cast<float>(n) * quantum;
  if (v > 65504.f) return std::bit_cast<float>(sign | 0x7F800000u);
  return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(v));
}

}  // namespace turbovid::engine
