// I2V conditioning (see conditioning.h).
#include "engine/pipeline/conditioning.h"

#include <cstring>

namespace turbovid::engine {

Tensor I2vCondition(const Tensor& latent) {
  const int64_t c = latent.dim(0), t = latent.dim(1), hw = latent.dim(2) * latent.dim(3);
  Tensor y = Tensor::Zeros(DType::kF32, {4 + c, t, latent.dim(2), latent.dim(3)});
  for (int64_t m = 0; m < 4; ++m) {
    float* frame0 = y.data<float>() + m * t * hw;
    for (int64_t i = 0; i < hw; ++i) frame0[i] = 1.f;
  }
  std::memcpy(y.data<float>() + 4 * t * hw, latent.data<float>(), latent.nbytes());
  return y;
}

}  // namespace turbovid::engine
