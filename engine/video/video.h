// Video and image I/O: frames → MP4 (H.264, yuv420p) through FFmpeg's libraries or libx264
// directly, image bytes → RGB (FFmpeg, or our own PNG decoder in builds without it), RGB → PNG.
// The I2V resize is in engine/video/resize.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::video {

// Which H.264 encoder writes an MP4. kX264: libx264 called directly, muxed by our own writer
// (engine/video/mp4_x264.h), so a build carrying libx264 alone (TV_WITH_FFMPEG=OFF) can encode.
// kFfmpeg: FFmpeg's libx264 wrapper and mp4 muxer. kNvenc: FFmpeg's h264_nvenc (NVIDIA's
// hardware encoder; only where the GPU has one: the RTX 5090 does, the H100 does not).
// kAuto: $TV_MP4_ENCODER ("auto", "ffmpeg", "x264" or "nvenc") when set; else, for EncodeMp4,
// FFmpeg when built, else x264; for the streaming Mp4Writer, NVENC when ProbeNvenc() finds it,
// else x264 (FFmpeg's libx264 in a build without libx264). A path not built → Unimplemented.
enum class Mp4Encoder { kAuto, kFfmpeg, kX264, kNvenc };

// "auto", "ffmpeg", "x264", "nvenc": the names TV_MP4_ENCODER takes and results report.
const char* Mp4EncoderName(Mp4Encoder encoder);

// Whether FFmpeg's h264_nvenc opens on this machine: tried once per process (a small encoder
// opened and closed; it fails without an NVIDIA driver or without NVENC on the GPU), then
// remembered. `detail` says why not, or what opened.
struct NvencProbe {
  bool available = false;
  std::string detail;
};
const NvencProbe& ProbeNvenc();

struct Mp4Options {
  int fps = 16;
  int crf = 18;  // libx264 quality
  std::string preset = "veryfast";
  Mp4Encoder encoder = Mp4Encoder::kAuto;
  // Mp4Writer only (libx264 builds): a fragmented MP4 (ftyp + moov without samples, then one
  // moof + mdat per Mp4Writer::TakeFragment call with the frames x264 has returned), encoded
  // without B-frames and with a 4-frame lookahead, so a fragment lags the frames added by 4
  // (docs/design.md §10.4).
  bool fragmented = false;
};

// frames: [F, H, W, 3] U8 RGB (H, W even). Returns the MP4 file bytes (H.264 yuv420p, BT.601
// limited range, moov first). Bad frames or options → InvalidArgument naming the field.
absl::StatusOr<std::string> EncodeMp4(const Tensor& frames, const Mp4Options& options = {});
absl::Status WriteMp4(const Tensor& frames, const std::string& path,
                      const Mp4Options& options = {});

// Decodes an encoded image to [H, W, 3] U8 RGB (alpha dropped, first frame of an animation).
// With FFmpeg: PNG, JPEG, WebP, BMP, ... anything libavcodec reads. Without FFmpeg
// (TV_WITH_FFMPEG=OFF): PNG only, by our own decoder (png_decode.h, the same RGB bytes); another
// format it recognises (JPEG, WebP, GIF, BMP, TIFF, ...) → Unimplemented naming `field` and the
// format. Corrupt or empty bytes, more than 64 MiB of input or more than 64 Mpixel of image →
// InvalidArgument naming `field`.
absl::StatusOr<Tensor> DecodeImage(const std::string& bytes, const std::string& field = "image");

// Encodes [H, W, 3] U8 RGB (sides in [1, 16384]) as PNG bytes with zlib, in every build
// (lossless; for tests and tools). A bad tensor → InvalidArgument.
absl::StatusOr<std::string> EncodePng(const Tensor& rgb);

// video [3, F, H, W] F32 in [-1, 1] → frames [F, H, W, 3] U8 with TurboDiffusion's rounding:
// uint8 = floor(float32(float32((1 + clamp(v, -1, 1)) / 2) * 255) + 0.5).
Tensor VideoToFrames(const Tensor& video);

}  // namespace turbovid::engine::video
