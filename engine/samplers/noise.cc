// Philox4x32-10 (Salmon et al., SC'11) keyed by the seed, counter = (element block, stream).
#include "engine/samplers/noise.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <thread>
#include <utility>
#include <vector>

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
  // Pair p (elements 2p, 2p+1) depends only on its counter, so ranges of pairs run in parallel
  // with the same result as one loop (a latent step is ~2M values: ~100 ms on one core).
  const int64_t pairs = (n + 1) / 2;
  const auto fill = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t i = 2 * p;
      const uint64_t block = static_cast<uint64_t>(p);
      Block r = Philox({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                        static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)},
                       k0, k1);
      const double radius = std::sqrt(-2.0 * std::log(Uniform(r[0], r[1])));
      const double angle = kTwoPi * Uniform(r[2], r[3]);
      out[i] = static_cast<float>(radius * std::cos(angle));
      if (i + 1 < n) out[i + 1] = static_cast<float>(radius * std::sin(angle));
    }
  };
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, pairs / 65536 + 1);
  std::vector<std::thread> pool;
  for (int64_t k = 1; k < threads; ++k) pool.emplace_back(fill, pairs * k / threads, pairs * (k + 1) / threads);
  fill(0, pairs / threads);
  for (std::thread& th : pool) th.join();
  return t;
}

NoiseStreams::NoiseStreams(Shape shape, uint64_t seed, int count, bool background)
    : shape_(std::move(shape)), seed_(seed) {
  if (!background) return;
  promises_.resize(std::max(count, 0));
  for (std::promise<Tensor>& p : promises_) futures_.push_back(p.get_future());
  thread_ = std::thread([this] {
    for (size_t s = 0; s < promises_.size(); ++s) {
      // After a stop the remaining futures are never read (the owner is being destroyed).
      if (stop_.load()) return;
      promises_[s].set_value(GaussianNoise(shape_, seed_, s));
    }
  });
}

NoiseStreams::~NoiseStreams() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

Tensor NoiseStreams::Get(int stream) {
  if (stream >= 0 && static_cast<size_t>(stream) < futures_.size() && futures_[stream].valid()) {
    return futures_[stream].get();
  }
  return GaussianNoise(shape_, seed_, static_cast<uint64_t>(stream));
}

}  // namespace turbovid::engine
