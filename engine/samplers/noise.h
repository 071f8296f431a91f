// Seeded Gaussian noise: Philox4x32-10 counter-based generator + Box-Muller, so a (seed, stream)
// pair gives the same latent on every backend and thread count.
#pragma once

#include <cstdint>

#include "engine/core/tensor.h"

namespace turbovid::engine {

// Standard normal F32 tensor of `shape`; `stream` separates draws of one job (0 = initial noise,
// 1 + i = the fresh draw after step i).
Tensor GaussianNoise(const Shape& shape, uint64_t seed, uint64_t stream);

}  // namespace turbovid::engine
