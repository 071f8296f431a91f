// Frames → MP4 with libx264 alone (no FFmpeg): RGB → yuv420p (BT.601 limited range) over the
// cores, H.264 through the x264 C API, our own ISO-BMFF muxer (moov before mdat). Streaming
// (Mp4Writer, chunk by chunk) and one-shot (EncodeMp4X264) forms; Mp4Writer also writes fragmented
// MP4 (Mp4Options::fragmented) handed out fragment by fragment while it encodes.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "engine/core/tensor.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {

// Streams frames into an MP4 held in memory. Frames are converted and handed to the encoder as
// each AddFrames / AddI420 call comes, and it encodes them on its own threads (x264) or on the
// GPU's encoder (NVENC), so a caller can decode the next chunk meanwhile: AddFrames returns once
// the encoder has taken the frames; Finish() drains the encoder and muxes. One caller at a time.
// The encoder is Mp4Options::encoder resolved for streaming (video.h: kAuto takes NVENC where
// ProbeNvenc() finds it, else libx264 directly); encoder() says which one Open took. libx264
// directly writes with our own muxer; FFmpeg's encoders (kFfmpeg, kNvenc) with FFmpeg's mp4
// muxer, fragmented through its frag_custom mode. In a build without libx264 (TV_WITH_X264=OFF)
// the frames are kept and Finish() hands them to EncodeMp4 (no AddI420, no fragments).
namespace internal {
class FfmpegStream;
}

class Mp4Writer {
 public:
  Mp4Writer();
  ~Mp4Writer();
  Mp4Writer(const Mp4Writer&) = delete;
  Mp4Writer& operator=(const Mp4Writer&) = delete;
  Mp4Writer(Mp4Writer&&) noexcept;
  Mp4Writer& operator=(Mp4Writer&&) noexcept;  // a moved-from writer may only be destroyed

  // width, height: even, in [2, 8192]; options: fps in [1, 240], crf in [0, 51], an x264 preset.
  // Bad values → InvalidArgument naming the field; a second Open → FailedPrecondition.
  absl::Status Open(int width, int height, const Mp4Options& options = {});
  absl::Status Open(int width, int height, int fps);
  // frames: [T, H, W, 3] U8 RGB host tensor with H, W as opened (T ≥ 1); callable repeatedly.
  absl::Status AddFrames(const Tensor& frames);
  // pictures: [T, W·H·3/2] U8 host tensor, T I420 pictures (Y, then U, then V, as
  // VideoToI420Op makes them), taken as they are; callable repeatedly, mixed with AddFrames.
  absl::Status AddI420(const Tensor& pictures);
  // The encoder Open resolved Mp4Options::encoder to (kX264, kFfmpeg or kNvenc; kAuto before).
  Mp4Encoder encoder() const;
  // The MP4 bytes (at least one frame added). The writer is spent afterwards.
  absl::StatusOr<std::string> Finish();
  // Opened with Mp4Options::fragmented: closes a fragment of the frames x264 has returned since
  // the last one (every frame added but the last 4, x264's lookahead; Finish drains those into a
  // last fragment) and returns the file's bytes not handed out yet. "" while no frame has come
  // back, so the first bytes handed out are ftyp + moov + the first fragment, a playable prefix.
  // After Finish it hands out the rest: the pieces concatenated are exactly Finish()'s file.
  // FailedPrecondition when not fragmented; Unimplemented in a build without libx264.
  absl::StatusOr<std::string> TakeFragment();
  int64_t frames_added() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  // FFmpeg's encoders (kFfmpeg, kNvenc): the writer's whole state; impl_ stays unopened.
  std::unique_ptr<internal::FfmpegStream> stream_;
  Mp4Encoder encoder_ = Mp4Encoder::kAuto;
};

// One-shot x264 encode of frames [F, H, W, 3] U8 RGB (H, W even); same checks and errors as
// EncodeMp4. Unimplemented in a build without libx264.
absl::StatusOr<std::string> EncodeMp4X264(const Tensor& frames, const Mp4Options& options = {});

namespace internal {

// True when this build has libx264 (TV_WITH_X264).
bool HaveX264();

// `pictures` is a host U8 [T ≥ 1, width·height·3/2] tensor (T I420 pictures); else
// InvalidArgument naming `pictures`.
absl::Status CheckI420(const Tensor& pictures, int width, int height);

// $TV_MP4_ENCODER parsed: kAuto when unset, empty or "auto"; an unknown value → InvalidArgument.
inline absl::StatusOr<Mp4Encoder> Mp4EncoderFromEnv() {
  const char* env = std::getenv("TV_MP4_ENCODER");
  if (env == nullptr || *env == '\0') return Mp4Encoder::kAuto;
  const std::string_view value(env);
  if (value == "auto") return Mp4Encoder::kAuto;
  if (value == "ffmpeg") return Mp4Encoder::kFfmpeg;
  if (value == "x264") return Mp4Encoder::kX264;
  if (value == "nvenc") return Mp4Encoder::kNvenc;
  return absl::InvalidArgumentError("TV_MP4_ENCODER: \"" + std::string(value) +
                                    "\" is not \"auto\", \"ffmpeg\", \"x264\" or \"nvenc\"");
}

// The encoder EncodeMp4 uses: options.encoder unless kAuto; then $TV_MP4_ENCODER when it names
// one; else `built_default`.
inline absl::StatusOr<Mp4Encoder> ResolveMp4Encoder(const Mp4Options& options,
                                                    Mp4Encoder built_default) {
  if (options.encoder != Mp4Encoder::kAuto) return options.encoder;
  TV_ASSIGN_OR_RETURN(const Mp4Encoder env, Mp4EncoderFromEnv());
  return env == Mp4Encoder::kAuto ? built_default : env;
}

// The encoder Mp4Writer::Open takes: as ResolveMp4Encoder, with kAuto → kNvenc when
// ProbeNvenc() finds it, else kX264 when built, else kFfmpeg.
absl::StatusOr<Mp4Encoder> ResolveStreamEncoder(const Mp4Options& options);

// One MP4 written by FFmpeg from I420 pictures (mp4_encode.cc; in a build without FFmpeg the
// factory answers Unimplemented): `codec` "libx264" (kFfmpeg) or "h264_nvenc" (kNvenc), moov
// first, or fragmented (Mp4Options::fragmented: ftyp + moov, then moof + mdat per TakeFragment).
class FfmpegStream {
 public:
  virtual ~FfmpegStream() = default;
  virtual absl::Status AddI420(const uint8_t* pictures, int64_t count) = 0;
  virtual absl::StatusOr<std::string> TakeFragment() = 0;
  virtual absl::StatusOr<std::string> Finish() = 0;
  virtual int64_t frames_added() const = 0;
};
absl::StatusOr<std::unique_ptr<FfmpegStream>> OpenFfmpegStream(Mp4Encoder encoder, int width,
                                                               int height,
                                                               const Mp4Options& options);

}  // namespace internal
}  // namespace turbovid::engine::video
