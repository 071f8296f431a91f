// Mp4Writer in a build without libx264 (TV_WITH_X264=OFF): it keeps the frames and Finish() hands
// them to EncodeMp4 (FFmpeg, or Unimplemented when that is missing too); EncodeMp4X264 answers
// Unimplemented.
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/video/mp4_x264.h"

namespace turbovid::engine::video {

class Mp4Writer::Impl {
 public:
  Mp4Options options;
  int width = 0;
  int height = 0;
  bool open = false;
  int64_t frames = 0;
  std::vector<Tensor> chunks;  // [T, H, W, 3] U8 copies
};

Mp4Writer::Mp4Writer() : impl_(std::make_unique<Impl>()) {}
Mp4Writer::~Mp4Writer() = default;
Mp4Writer::Mp4Writer(Mp4Writer&&) noexcept = default;
Mp4Writer& Mp4Writer::operator=(Mp4Writer&&) noexcept = default;

absl::Status Mp4Writer::Open(int width, int height, const Mp4Options& options) {
  if (impl_->open) return absl::FailedPreconditionError("Mp4Writer: Open called twice");
  if (options.fragmented) {
    return absl::UnimplementedError(
        "Mp4Writer: a fragmented MP4 needs libx264 (built with TV_WITH_X264=OFF)");
  }
  if (width < 2 || width % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("width: ", width, " is not even and ≥ 2"));
  }
  if (height < 2 || height % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("height: ", height, " is not even and ≥ 2"));
  }
  TV_ASSIGN_OR_RETURN(const Mp4Encoder encoder, internal::ResolveStreamEncoder(options));
  if (encoder != Mp4Encoder::kFfmpeg) {
    return absl::UnimplementedError(absl::StrCat("Mp4Writer: encoder ", Mp4EncoderName(encoder),
                                                 " needs a build with libx264 (TV_WITH_X264=ON)"));
  }
  encoder_ = encoder;
  impl_->options = options;
  impl_->options.encoder = Mp4Encoder::kFfmpeg;  // the only encoder this build may have
  impl_->width = width;
  impl_->height = height;
  impl_->open = true;
  return absl::OkStatus();
}

absl::Status Mp4Writer::Open(int width, int height, int fps) {
  Mp4Options options;
  options.fps = fps;
  return Open(width, height, options);
}

absl::Status Mp4Writer::AddFrames(const Tensor& frames) {
  if (!impl_->open) return absl::FailedPreconditionError("Mp4Writer: AddFrames needs Open");
  if (!frames.defined() || frames.device() != Device::kCpu || frames.dtype() != DType::kU8 ||
      frames.rank() != 4 || frames.dim(0) < 1 || frames.dim(1) != impl_->height ||
      frames.dim(2) != impl_->width || frames.dim(3) != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames: ", frames.defined() ? frames.Describe() : "empty",
                     " is not a host U8 [T, ", impl_->height, ", ", impl_->width, ", 3] tensor"));
  }
  impl_->chunks.push_back(frames.Clone());
  impl_->frames += frames.dim(0);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Mp4Writer::Finish() {
  if (!impl_->open) return absl::FailedPreconditionError("Mp4Writer: Finish needs Open");
  impl_->open = false;
  if (impl_->frames == 0) return absl::FailedPreconditionError("frames: none were added");
  Tensor all = Tensor::Zeros(DType::kU8, {impl_->frames, impl_->height, impl_->width, 3});
  size_t at = 0;
  for (const Tensor& chunk : impl_->chunks) {
    std::memcpy(all.data<uint8_t>() + at, chunk.data<uint8_t>(), chunk.nbytes());
    at += chunk.nbytes();
  }
  impl_->chunks.clear();
  return EncodeMp4(all, impl_->options);
}

int64_t Mp4Writer::frames_added() const { return impl_->frames; }

Mp4Encoder Mp4Writer::encoder() const { return encoder_; }

absl::Status Mp4Writer::AddI420(const Tensor&) {
  return absl::UnimplementedError(
      "Mp4Writer: I420 pictures need libx264 (built with TV_WITH_X264=OFF)");
}

absl::StatusOr<std::string> Mp4Writer::TakeFragment() {
  return absl::UnimplementedError(
      "Mp4Writer: a fragmented MP4 needs libx264 (built with TV_WITH_X264=OFF)");
}

absl::StatusOr<std::string> EncodeMp4X264(const Tensor&, const Mp4Options&) {
  return absl::UnimplementedError(
      "EncodeMp4X264: this build has no libx264 (configured with TV_WITH_X264=OFF)");
}

namespace internal {
bool HaveX264() { return false; }

absl::StatusOr<Mp4Encoder> ResolveStreamEncoder(const Mp4Options& options) {
  return ResolveMp4Encoder(options, Mp4Encoder::kFfmpeg);
}
}  // namespace internal

}  // namespace turbovid::engine::video
