// Philox4x32-10 (Salmon et al., SC'11) keyed by the seed, counter = (element block, stream).
#include "engine/samplers/noise.h"

#include <array>
#include <cmath>

namespace turbovid::engine {
namespace {

using Block = std::array<uint32_t, 4>;

Block Philox(Block ctr, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53, kM1 = 0xCD9E8D57, kW0 = 0x9E3779B9, kW1 = 0xBB67AE85;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * ctr[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ k0, static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ k1, static_cast<uint32_t>(p0)};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// Uniform in (0, 1]: never 0, so log() stays finite.
double Uniform(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ lo;  // 53 random bits
  return (static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) + 1.0) / 9007199254740992.0;
}

}  // namespace

Tensor GaussianNoise(const Shape& shape, uint64_t seed, uint64_t stream) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  float* out = t.data<float>();
  const int64_t n = t.numel();
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  constexpr double kTwoPi = 6.283185307179586;
  for (int64_t i = 0; i < n; i += 2) {
    const uint64_t block = static_cast<uint64_t>(i / 2);
    Block r = Philox({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                      static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)},
                     k0, k1);
    const double radius = std::sqrt(-2.0 * std::log(Uniform(r[0], r[1])));
    const double angle = kTwoPi * Uniform(r[2], r[3]);
    out[i] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < n) out[i + 1] = static_cast<float>(radius * std::sin(angle));
  }
  return t;
}

}  // namespace turbovid::engine
