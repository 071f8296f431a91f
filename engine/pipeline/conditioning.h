// I2V conditioning tensor of Wan2.2 / TurboDiffusion (docs/model-math.md §6.3).
#pragma once

#include "engine/core/tensor.h"

namespace turbovid::engine {

// y = cat(mask [4, T, H, W] = 1 on latent frame 0 else 0, latent [16, T, H, W]) → [20, T, H, W].
Tensor I2vCondition(const Tensor& latent);

}  // namespace turbovid::engine
