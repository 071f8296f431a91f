// Decoded video tensor → displayable U8 frames, with TurboDiffusion's exact rounding.
#include "engine/video/video.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "common/status_macros.h"

namespace turbovid::engine::video {

namespace {
// Pixels [begin, end) of the [3, F·H·W] planes → interleaved RGB bytes.
void ConvertPixels(const float* in, uint8_t* rgb, int64_t plane, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    for (int64_t c = 0; c < 3; ++c) {
      const float v = in[c * plane + i];
      // Upstream: (1 + v.clamp(-1, 1)) / 2 * 255 + 0.5, floored, every step rounded to fp32
      // (double arithmetic, or an FMA, flips values near .5; engine/video/CMakeLists.txt
      // builds this file with -ffp-contract=off). NaN maps to 0 rather than
      // undefined behaviour in the integer conversion.
      const float clamped = std::isnan(v) ? -1.0f : std::clamp(v, -1.0f, 1.0f);
      const float unit = (1.0f + clamped) / 2.0f;
      const float scaled = unit * 255.0f;
      rgb[i * 3 + c] = static_cast<uint8_t>(std::floor(scaled + 0.5f));
    }
  }
}
}  // namespace

Tensor VideoToFrames(const Tensor& video) {
  // The VAE decoder produces this tensor; a wrong layout here is our bug, not user input.
  TV_CHECK(video.defined() && video.device() == Device::kCpu && video.dtype() == DType::kF32 &&
           video.rank() == 4 && video.dim(0) == 3);
  const int64_t frames = video.dim(1);
  const int64_t height = video.dim(2);
  const int64_t width = video.dim(3);
  const int64_t plane = frames * height * width;  // one channel: [F, H, W]
  Tensor out = Tensor::Zeros(DType::kU8, {frames, height, width, 3});
  const float* in = video.data<float>();
  uint8_t* rgb = out.data<uint8_t>();
  // Frames are independent: split them over the cores (81 × 480p is ~100M values).
  const int64_t frame_px = height * width;
  const int64_t threads =
      std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, std::max<int64_t>(frames, 1));
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const int64_t f0 = frames * t / threads, f1 = frames * (t + 1) / threads;
      ConvertPixels(in, rgb, plane, f0 * frame_px, f1 * frame_px);
    });
  }
  for (std::thread& th : pool) th.join();
  return out;
}

}  // namespace turbovid::engine::video
