// CUDA VideoToI420Op (kernels/colour.cu): the decoded chunk's I420 pictures made on the device,
// with the CPU's fixed-point coefficients (engine/core/colour.h), so the bytes are the CPU's.
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/colour.h"
#include "engine/cuda/cuda_backend_internal.h"
#include "kernels/colour.h"

namespace turbovid::engine::cuda {
namespace {

absl::Status RunVideoToI420(CudaBackend& b, const VideoToI420Op& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("video_to_i420", "video", op.video));
  const Tensor& v = *op.video;
  if (v.rank() != 4 || v.dim(0) != 3 || v.dim(1) < 1 || v.dim(2) < 2 || v.dim(3) < 2 ||
      v.dim(2) % 2 != 0 || v.dim(3) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("video_to_i420: video ", v.Describe(),
                                                   " is not [3, n, H, W] with H and W even"));
  }
  const int64_t n = v.dim(1), h = v.dim(2), w = v.dim(3);
  TV_RETURN_IF_ERROR(ExpectDevice("video_to_i420", "yuv", op.yuv));
  if (op.yuv->dtype() != DType::kU8 || op.yuv->shape() != Shape{n, h * w * 3 / 2}) {
    return absl::InvalidArgumentError(absl::StrCat("video_to_i420: yuv ", op.yuv->Describe(),
                                                   " is not U8 [", n, ", ", h * w * 3 / 2, "]"));
  }
  kernels::VideoToI420Args a;
  TV_ASSIGN_OR_RETURN(a.video, In("video_to_i420", "video", op.video));
  a.yuv = static_cast<uint8_t*>(op.yuv->raw());
  a.n = n;
  a.h = h;
  a.w = w;
  const colour::I420Coefficients& k = colour::I420Coeffs();
  a.yr = k.yr, a.yg = k.yg, a.yb = k.yb;
  a.ur = k.ur, a.ug = k.ug, a.ub = k.ub;
  a.vr = k.vr, a.vg = k.vg, a.vb = k.vb;
  return CudaStatus(kernels::LaunchVideoToI420(a, b.stream()), "video_to_i420", v.Describe());
}

}  // namespace

void RegisterCudaVideoOps(CudaBackend& backend) {
  RegisterOp<VideoToI420Op>(backend, &RunVideoToI420);
}

}  // namespace turbovid::engine::cuda
