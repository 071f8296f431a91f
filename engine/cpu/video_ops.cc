// CPU reference of VideoToI420Op: engine/core/colour.h's VideoToI420, the same math the MP4
// writers apply to VideoToFrames' RGB (byte for byte).
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/colour.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
namespace {

absl::Status RunVideoToI420(const VideoToI420Op& op) {
  TV_RETURN_IF_ERROR(ExpectF32("video_to_i420", "video", op.video));
  const Tensor& v = *op.video;
  if (v.rank() != 4 || v.dim(0) != 3 || v.dim(1) < 1 || v.dim(2) < 2 || v.dim(3) < 2 ||
      v.dim(2) % 2 != 0 || v.dim(3) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("video_to_i420: video ", v.Describe(),
                                                   " is not [3, n, H, W] with H and W even"));
  }
  const int64_t n = v.dim(1), h = v.dim(2), w = v.dim(3);
  TV_RETURN_IF_ERROR(ExpectShape("video_to_i420", "yuv", op.yuv, {n, h * w * 3 / 2}));
  if (op.yuv->dtype() != DType::kU8) {
    return absl::InvalidArgumentError(
        absl::StrCat("video_to_i420: yuv ", op.yuv->Describe(), " is not U8"));
  }
  colour::VideoToI420(v.data<float>(), n, static_cast<int>(w), static_cast<int>(h),
                      op.yuv->data<uint8_t>());
  return absl::OkStatus();
}

}  // namespace

void RegisterVideoOps(CpuBackend& backend) { backend.Register<VideoToI420Op>(&RunVideoToI420); }

}  // namespace turbovid::engine::cpu
