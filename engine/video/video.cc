// Decoded video tensor → displayable U8 frames, with TurboDiffusion's exact rounding.
#include "engine/video/video.h"

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/colour.h"
#include "engine/video/mp4_x264.h"

namespace turbovid::engine::video {

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
      colour::VideoPixelsToRgb(in, plane, f0 * frame_px, f1 * frame_px, rgb);
    });
  }
  for (std::thread& th : pool) th.join();
  return out;
}

const char* Mp4EncoderName(Mp4Encoder encoder) {
  switch (encoder) {
    case Mp4Encoder::kAuto:
      return "auto";
    case Mp4Encoder::kFfmpeg:
      return "ffmpeg";
    case Mp4Encoder::kX264:
      return "x264";
    case Mp4Encoder::kNvenc:
      return "nvenc";
  }
  return "?";
}

namespace internal {
absl::Status CheckI420(const Tensor& pictures, int width, int height) {
  const int64_t bytes = static_cast<int64_t>(width) * height * 3 / 2;
  if (!pictures.defined() || pictures.device() != Device::kCpu || pictures.dtype() != DType::kU8 ||
      pictures.rank() != 2 || pictures.dim(0) < 1 || pictures.dim(1) != bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pictures: ", pictures.defined() ? pictures.Describe() : "empty", " is not a host U8 [T, ",
        bytes, "] tensor of ", width, "x", height, " I420 pictures"));
  }
  return absl::OkStatus();
}
}  // namespace internal

}  // namespace turbovid::engine::video
