// The VAE's decoded frames → I420 pictures on the device (VideoToI420Op): each value to 8 bits
// with TurboDiffusion's rounding, then BT.601 limited range with chroma at the 2×2 block's centre,
// in the fixed point the caller passes (engine/core/colour.h), so the bytes equal the CPU's.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_types.h"

namespace turbovid::kernels {

struct VideoToI420Args {
  ConstBuf video;               // [3, n, h, w] F32 or BF16
  uint8_t* yuv = nullptr;       // [n][h·w Y, h/2·w/2 U, h/2·w/2 V]
  int64_t n = 0, h = 0, w = 0;  // h, w even
  // 16-bit fixed-point coefficients (luma per pixel; chroma per 2×2 sum, shifted by 18).
  int32_t yr = 0, yg = 0, yb = 0;
  int32_t ur = 0, ug = 0, ub = 0;
  int32_t vr = 0, vg = 0, vb = 0;
};

// One thread per 2×2 block. cudaErrorInvalidValue for odd or negative sizes.
cudaError_t LaunchVideoToI420(const VideoToI420Args& args, cudaStream_t stream);

}  // namespace turbovid::kernels
