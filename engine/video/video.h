// Video and image I/O with FFmpeg's libraries in-process: frames → MP4 (H.264, yuv420p) and
// image bytes → RGB, plus the resize used for I2V conditioning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::video {

struct Mp4Options {
  int fps = 16;
  int crf = 18;  // libx264 quality
  std::string preset = "veryfast";
};

// frames: [F, H, W, 3] U8 RGB (H, W even). Returns the MP4 file bytes (H.264 yuv420p, BT.601
// limited range, moov first). Bad frames or options → InvalidArgument naming the field.
absl::StatusOr<std::string> EncodeMp4(const Tensor& frames, const Mp4Options& options = {});
absl::Status WriteMp4(const Tensor& frames, const std::string& path,
                      const Mp4Options& options = {});

// Decodes an encoded image (PNG, JPEG, WebP, BMP, ... anything libavcodec reads) to
// [H, W, 3] U8 RGB (alpha dropped, first frame of an animation). Corrupt or empty bytes, more
// than 64 MiB of input or more than 64 Mpixel of image → InvalidArgument naming `field`.
absl::StatusOr<Tensor> DecodeImage(const std::string& bytes, const std::string& field = "image");

// Encodes [H, W, 3] U8 RGB as PNG bytes (lossless; for tests and tools).
absl::StatusOr<std::string> EncodePng(const Tensor& rgb);

// Resizes [H, W, 3] U8 RGB to [height, width, 3] with an antialiasing filter: area averaging
// when neither side grows, bicubic otherwise. Bad tensor or size → InvalidArgument.
absl::StatusOr<Tensor> ResizeImage(const Tensor& rgb, int width, int height);

// video [3, F, H, W] F32 in [-1, 1] → frames [F, H, W, 3] U8 with TurboDiffusion's rounding:
// uint8 = floor(float32(float32((1 + clamp(v, -1, 1)) / 2) * 255) + 0.5).
Tensor VideoToFrames(const Tensor& video);

}  // namespace turbovid::engine::video
