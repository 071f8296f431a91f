// rcp.approx.ftz.f32 on the CPU (see rcp_approx.h; docs/model-math.md §10.6).
#include "engine/core/rcp_approx.h"

#include <bit>
#include <cstdint>

namespace turbovid::engine {
namespace {

// rcp.approx.ftz.f32 of x = 1 + m/128 (m = 0..127), as fp32 bits: measured on an H100 (NVIDIA
// H100 80GB HBM3, driver 580) with a probe that ran the instruction on every fp32 mantissa of
// [1, 2) and compared it with the correctly rounded reciprocal. These 128 are the bf16 mantissas;
// m = 4, 11, 20, 22, 127 are one ulp below the rounded 1/x, m = 6, 13, 37, 38, 51, 61, 65, 66,
// 81, 91, 109, 115, 116, 118, 121 one ulp above, the rest equal to it.
constexpr uint32_t kRcpBf16[128] = {
    0x3F800000, 0x3F7E03F8, 0x3F7C0FC1, 0x3F7A232D, 0x3F783E0F, 0x3F76603E, 0x3F74898E, 0x3F72B9D6,
    0x3F70F0F1, 0x3F6F2EB7, 0x3F6D7304, 0x3F6BBDB2, 0x3F6A0EA1, 0x3F6865AD, 0x3F66C2B4, 0x3F652598,
    0x3F638E39, 0x3F61FC78, 0x3F607038, 0x3F5EE95C, 0x3F5D67C8, 0x3F5BEB62, 0x3F5A740D, 0x3F5901B2,
    0x3F579436, 0x3F562B81, 0x3F54C77B, 0x3F53680D, 0x3F520D21, 0x3F50B6A0, 0x3F4F6475, 0x3F4E168A,
    0x3F4CCCCD, 0x3F4B8728, 0x3F4A4588, 0x3F4907DA, 0x3F47CE0C, 0x3F46980D, 0x3F4565C9, 0x3F443730,
    0x3F430C31, 0x3F41E4BC, 0x3F40C0C1, 0x3F3FA030, 0x3F3E82FA, 0x3F3D6910, 0x3F3C5264, 0x3F3B3EE7,
    0x3F3A2E8C, 0x3F392144, 0x3F381703, 0x3F370FBC, 0x3F360B61, 0x3F3509E7, 0x3F340B41, 0x3F330F63,
    0x3F321643, 0x3F311FD4, 0x3F302C0B, 0x3F2F3ADE, 0x3F2E4C41, 0x3F2D602C, 0x3F2C7692, 0x3F2B8F6A,
    0x3F2AAAAB, 0x3F29C84B, 0x3F28E840, 0x3F280A81, 0x3F272F05, 0x3F2655C4, 0x3F257EB5, 0x3F24A9CF,
    0x3F23D70A, 0x3F23065E, 0x3F2237C3, 0x3F216B31, 0x3F20A0A1, 0x3F1FD80A, 0x3F1F1166, 0x3F1E4CAD,
    0x3F1D89D9, 0x3F1CC8E2, 0x3F1C09C1, 0x3F1B4C70, 0x3F1A90E8, 0x3F19D723, 0x3F191F1A, 0x3F1868C8,
    0x3F17B426, 0x3F17012E, 0x3F164FDA, 0x3F15A026, 0x3F14F209, 0x3F144581, 0x3F139A86, 0x3F12F114,
    0x3F124925, 0x3F11A2B4, 0x3F10FDBC, 0x3F105A38, 0x3F0FB824, 0x3F0F177A, 0x3F0E7835, 0x3F0DDA52,
    0x3F0D3DCB, 0x3F0CA29C, 0x3F0C08C1, 0x3F0B7034, 0x3F0AD8F3, 0x3F0A42F9, 0x3F09AE41, 0x3F091AC7,
    0x3F088889, 0x3F07F781, 0x3F0767AB, 0x3F06D906, 0x3F064B8B, 0x3F05BF37, 0x3F053409, 0x3F04A9FA,
    0x3F042108, 0x3F039931, 0x3F03126F, 0x3F028CC0, 0x3F020821, 0x3F01848E, 0x3F010204, 0x3F008080,
};

}  // namespace

float RcpApprox(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t sign = bits & 0x80000000u;
  const uint32_t exp = (bits >> 23) & 0xFF;
  if (exp == 0) return std::bit_cast<float>(sign | 0x7F800000u);  // 0 and (flushed) subnormals
  if (exp == 0xFF) {
    return (bits & 0x7FFFFFu) ? x : std::bit_cast<float>(sign);  // NaN stays, 1/inf = 0
  }
  if ((bits & 0xFFFFu) != 0) {  // not a bf16 value: the correctly rounded reciprocal
    const float r = 1.f / x;
    return (r != 0.f && r > -0x1p-126f && r < 0x1p-126f) ? std::bit_cast<float>(sign) : r;
  }
  const uint32_t r = kRcpBf16[(bits >> 16) & 0x7F];  // in (0.5, 1]: exponent field 126 or 127
  const int r_exp = static_cast<int>(r >> 23) - (static_cast<int>(exp) - 127);
  if (r_exp <= 0) return std::bit_cast<float>(sign);  // below 2^-126: flushed
  return std::bit_cast<float>(sign | (static_cast<uint32_t>(r_exp) << 23) | (r & 0x7FFFFFu));
}

}  // namespace turbovid::engine
