// The video API in a build without FFmpeg (TV_WITH_FFMPEG=OFF): MP4 encoding goes through libx264
// directly (mp4_x264.h) when the build has it; image decoding, PNG and resizing need FFmpeg's
// codecs and answer Unimplemented, so callers (the bench's MP4 stage) can report it and go on.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/video/mp4_x264.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

absl::Status NoFfmpeg(const char* what) {
  return absl::UnimplementedError(
      std::string(what) + ": this build has no FFmpeg (configured with TV_WITH_FFMPEG=OFF)");
}

absl::Status WriteFileBytes(const std::string& bytes, const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (out == nullptr) {
    const int e = errno;
    const std::string message = absl::StrCat(path, ": cannot open for writing: ", strerror(e));
    if (e == ENOENT || e == ENOTDIR) return absl::NotFoundError(message);
    if (e == EACCES || e == EPERM || e == EROFS) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  if (std::fwrite(bytes.data(), 1, bytes.size(), out.get()) != bytes.size()) {
    return absl::InternalError(absl::StrCat(path, ": short write: ", strerror(errno)));
  }
  if (std::fclose(out.release()) != 0) {
    return absl::InternalError(absl::StrCat(path, ": close failed: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeMp4(const Tensor& frames, const Mp4Options& options) {
  TV_ASSIGN_OR_RETURN(const Mp4Encoder encoder,
                      internal::ResolveMp4Encoder(options, Mp4Encoder::kX264));
  if (encoder == Mp4Encoder::kFfmpeg) return NoFfmpeg("EncodeMp4 with encoder ffmpeg");
  return EncodeMp4X264(frames, options);
}

absl::Status WriteMp4(const Tensor& frames, const std::string& path, const Mp4Options& options) {
  TV_ASSIGN_OR_RETURN(std::string bytes, EncodeMp4(frames, options));
  return WriteFileBytes(bytes, path);
}

absl::StatusOr<Tensor> DecodeImage(const std::string&, const std::string& field) {
  return NoFfmpeg(field.c_str());
}

absl::StatusOr<std::string> EncodePng(const Tensor&) { return NoFfmpeg("EncodePng"); }

absl::StatusOr<Tensor> ResizeImage(const Tensor&, int, int) { return NoFfmpeg("ResizeImage"); }

}  // namespace turbovid::engine::video
