// Seeded Gaussian noise: Philox4x32-10 counter-based generator + Box-Muller, so a (seed, stream)
// pair gives the same latent on every backend and thread count.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <thread>
#include <vector>

#include "engine/core/tensor.h"

namespace turbovid::engine {

// Standard normal F32 tensor of `shape`; `stream` separates draws of one job (0 = initial noise,
// 1 + i = the fresh draw after step i).
Tensor GaussianNoise(const Shape& shape, uint64_t seed, uint64_t stream);

// The draws GaussianNoise(shape, seed, s) of one job for s = 0 … count-1. With `background`
// they are computed in order on a helper thread started by the constructor, so that they overlap
// the device's work (text encoder, DiT steps); otherwise each is computed when asked for (the CPU
// backend needs its cores for the model).
class NoiseStreams {
 public:
  NoiseStreams(Shape shape, uint64_t seed, int count, bool background);
  ~NoiseStreams();  // stops after the draw in progress and joins
  NoiseStreams(const NoiseStreams&) = delete;
  NoiseStreams& operator=(const NoiseStreams&) = delete;

  // Draw `stream` (waits for the helper; a stream ≥ count is computed on the caller's thread).
  // Each stream may be asked for once.
  Tensor Get(int stream);

 private:
  Shape shape_;
  uint64_t seed_;
  std::vector<std::promise<Tensor>> promises_;
  std::vector<std::future<Tensor>> futures_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace turbovid::engine
