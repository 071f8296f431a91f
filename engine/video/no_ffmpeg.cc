// The video API in a build without FFmpeg (TV_WITH_FFMPEG=OFF): MP4 encoding goes through libx264
// directly (mp4_x264.h) when the build has it; images are decoded by our own PNG decoder
// (png_decode.h), and other image formats, which need FFmpeg's codecs, are refused by name.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/video/mp4_x264.h"
#include "engine/video/png_decode.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

absl::Status NoFfmpeg(const char* what) {
  return absl::UnimplementedError(
      std::string(what) + ": this build has no FFmpeg (configured with TV_WITH_FFMPEG=OFF)");
}

// The name of an image format FFmpeg would decode, by its leading bytes; nullptr when unknown.
const char* ImageFormat(std::string_view b) {
  if (b.starts_with("\xff\xd8\xff")) return "JPEG";
  if (b.starts_with("RIFF") && b.substr(8, 4) == "WEBP") return "WebP";
  if (b.starts_with("GIF87a") || b.starts_with("GIF89a")) return "GIF";
  if (b.starts_with("BM")) return "BMP";
  if (b.starts_with(std::string_view("II*\0", 4)) || b.starts_with(std::string_view("MM\0*", 4))) {
    return "TIFF";
  }
  if (b.starts_with("qoif")) return "QOI";
  if (b.starts_with(std::string_view("\0\0\0\x0cjP  ", 8)) || b.starts_with("\xff\x4f\xff\x51")) {
    return "JPEG 2000";
  }
  if (b.starts_with("\xff\x0a") || b.starts_with(std::string_view("\0\0\0\x0cJXL ", 8))) {
    return "JPEG XL";
  }
  return nullptr;
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
  if (encoder == Mp4Encoder::kNvenc) return NoFfmpeg("EncodeMp4 with encoder nvenc");
  return EncodeMp4X264(frames, options);
}

const NvencProbe& ProbeNvenc() {
  static const NvencProbe probe{false, "this build has no FFmpeg (TV_WITH_FFMPEG=OFF)"};
  return probe;
}

namespace internal {
absl::StatusOr<std::unique_ptr<FfmpegStream>> OpenFfmpegStream(Mp4Encoder encoder, int, int,
                                                               const Mp4Options&) {
  return NoFfmpeg(encoder == Mp4Encoder::kNvenc ? "Mp4Writer with encoder nvenc"
                                                : "Mp4Writer with encoder ffmpeg");
}
}  // namespace internal

absl::Status WriteMp4(const Tensor& frames, const std::string& path, const Mp4Options& options) {
  TV_ASSIGN_OR_RETURN(std::string bytes, EncodeMp4(frames, options));
  return WriteFileBytes(bytes, path);
}

absl::StatusOr<Tensor> DecodeImage(const std::string& bytes, const std::string& field) {
  // Empty or oversized input gets DecodePng's errors, whatever the format.
  if (bytes.empty() || bytes.size() > (size_t{64} << 20) || IsPng(bytes)) {
    return DecodePng(bytes, field);
  }
  if (const char* format = ImageFormat(bytes)) {
    return absl::UnimplementedError(absl::StrCat(
        field, ": ", format, " needs a build with FFmpeg (this one decodes PNG only)"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": not a PNG image (this build decodes PNG only; other formats need FFmpeg)"));
}

}  // namespace turbovid::engine::video
