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
#include "engine/core/tensor.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {

// Streams frames into an MP4 held in memory. Frames are converted and handed to libx264 as each
// AddFrames call comes, and x264 encodes them on its own threads, so a caller can decode the next
// chunk meanwhile: AddFrames returns once x264 has taken the frames (it waits only while all its
// frame threads are busy); Finish() drains the encoder and muxes. One caller at a time.
// Always libx264 whatever Mp4Options::encoder says (FFmpeg's path is EncodeMp4); in a build
// without libx264 (TV_WITH_X264=OFF) the frames are kept and Finish() hands them to EncodeMp4.
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
};

// One-shot x264 encode of frames [F, H, W, 3] U8 RGB (H, W even); same checks and errors as
// EncodeMp4. Unimplemented in a build without libx264.
absl::StatusOr<std::string> EncodeMp4X264(const Tensor& frames, const Mp4Options& options = {});

namespace internal {

// True when this build has libx264 (TV_WITH_X264).
bool HaveX264();

// The encoder EncodeMp4 uses: options.encoder unless kAuto; then $TV_MP4_ENCODER ("ffmpeg" or
// "x264") when set and non-empty; else `built_default`. An unknown value → InvalidArgument.
inline absl::StatusOr<Mp4Encoder> ResolveMp4Encoder(const Mp4Options& options,
                                                    Mp4Encoder built_default) {
  if (options.encoder != Mp4Encoder::kAuto) return options.encoder;
  const char* env = std::getenv("TV_MP4_ENCODER");
  if (env == nullptr || *env == '\0') return built_default;
  const std::string_view value(env);
  if (value == "ffmpeg") return Mp4Encoder::kFfmpeg;
  if (value == "x264") return Mp4Encoder::kX264;
  return absl::InvalidArgumentError("TV_MP4_ENCODER: \"" + std::string(value) +
                                    "\" is neither \"ffmpeg\" nor \"x264\"");
}

}  // namespace internal
}  // namespace turbovid::engine::video
