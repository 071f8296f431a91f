// The video API in a build without FFmpeg (TV_WITH_FFMPEG=OFF): every call that needs FFmpeg's
// codecs answers Unimplemented, so callers (the bench's MP4 stage) can report it and go on.
#include "absl/status/status.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

absl::Status NoFfmpeg(const char* what) {
  return absl::UnimplementedError(
      std::string(what) + ": this build has no FFmpeg (configured with TV_WITH_FFMPEG=OFF)");
}

}  // namespace

absl::StatusOr<std::string> EncodeMp4(const Tensor&, const Mp4Options&) {
  return NoFfmpeg("EncodeMp4");
}

absl::Status WriteMp4(const Tensor&, const std::string&, const Mp4Options&) {
  return NoFfmpeg("WriteMp4");
}

absl::StatusOr<Tensor> DecodeImage(const std::string&, const std::string& field) {
  return NoFfmpeg(field.c_str());
}

absl::StatusOr<std::string> EncodePng(const Tensor&) { return NoFfmpeg("EncodePng"); }

absl::StatusOr<Tensor> ResizeImage(const Tensor&, int, int) { return NoFfmpeg("ResizeImage"); }

}  // namespace turbovid::engine::video
