// VideoToI420: decoded video → I420, byte for byte the CPU's colour.cc (see kernels/colour.h).
// Every float step is an explicitly rounded intrinsic, so nvcc cannot contract it into an FMA.
#include <cstdint>

#include "kernels/colour.h"
#include "kernels/device_util.cuh"

namespace turbovid::kernels {
namespace {

using detail::GridFor;
using detail::Load;

// floor(float32(float32((1 + clamp(v, -1, 1)) / 2) · 255) + 0.5), NaN → 0.
__device__ __forceinline__ int32_t ToU8(float v) {
  const float c = isnan(v) ? -1.f : fminf(fmaxf(v, -1.f), 1.f);
  const float unit = __fdiv_rn(__fadd_rn(1.f, c), 2.f);
  return static_cast<int32_t>(floorf(__fadd_rn(__fmul_rn(unit, 255.f), 0.5f)));
}

__device__ __forceinline__ uint8_t Luma(const VideoToI420Args& a, int32_t r, int32_t g, int32_t b) {
  const int32_t y = (a.yr * r + a.yg * g + a.yb * b + (16 << 16) + (1 << 15)) >> 16;
  return static_cast<uint8_t>(min(max(y, 16), 235));
}

__device__ __forceinline__ uint8_t Chroma(int32_t cr, int32_t cg, int32_t cb, int32_t sr,
                                          int32_t sg, int32_t sb) {
  const int32_t v = (cr * sr + cg * sg + cb * sb + (128 << 18) + (1 << 17)) >> 18;
  return static_cast<uint8_t>(min(max(v, 16), 240));
}

__global__ void VideoToI420Kernel(VideoToI420Args a) {
  const int64_t cw = a.w / 2, ch = a.h / 2;
  const int64_t blocks = a.n * ch * cw;
  const int64_t plane = a.n * a.h * a.w;  // channel stride
  const int64_t luma = a.h * a.w;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < blocks;
       i += step) {
    const int64_t cx = i % cw, cy = (i / cw) % ch, f = i / (cw * ch);
    const int64_t p00 = f * luma + 2 * cy * a.w + 2 * cx;  // top-left pixel
    int32_t rgb[3][4];                                     // channel, pixel (00, 01, 10, 11)
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const int64_t base = c * plane + p00;
      rgb[c][0] = ToU8(Load(a.video, base));
      rgb[c][1] = ToU8(Load(a.video, base + 1));
      rgb[c][2] = ToU8(Load(a.video, base + a.w));
      rgb[c][3] = ToU8(Load(a.video, base + a.w + 1));
    }
    uint8_t* y = a.yuv + f * (luma * 3 / 2);
    uchar2 top, bottom;
    top.x = Luma(a, rgb[0][0], rgb[1][0], rgb[2][0]);
    top.y = Luma(a, rgb[0][1], rgb[1][1], rgb[2][1]);
    bottom.x = Luma(a, rgb[0][2], rgb[1][2], rgb[2][2]);
    bottom.y = Luma(a, rgb[0][3], rgb[1][3], rgb[2][3]);
    *reinterpret_cast<uchar2*>(y + 2 * cy * a.w + 2 * cx) = top;
    *reinterpret_cast<uchar2*>(y + (2 * cy + 1) * a.w + 2 * cx) = bottom;
    const int32_t sr = rgb[0][0] + rgb[0][1] + rgb[0][2] + rgb[0][3];
    const int32_t sg = rgb[1][0] + rgb[1][1] + rgb[1][2] + rgb[1][3];
    const int32_t sb = rgb[2][0] + rgb[2][1] + rgb[2][2] + rgb[2][3];
    uint8_t* u = y + luma;
    u[cy * cw + cx] = Chroma(a.ur, a.ug, a.ub, sr, sg, sb);
    u[luma / 4 + cy * cw + cx] = Chroma(a.vr, a.vg, a.vb, sr, sg, sb);
  }
}

}  // namespace

cudaError_t LaunchVideoToI420(const VideoToI420Args& args, cudaStream_t stream) {
  if (args.n < 0 || args.h < 0 || args.w < 0 || args.h % 2 != 0 || args.w % 2 != 0) {
    return cudaErrorInvalidValue;
  }
  const int64_t blocks = args.n * (args.h / 2) * (args.w / 2);
  if (blocks == 0) return cudaSuccess;
  // uchar2 stores need an even base address (every row offset is even: w is).
  if (reinterpret_cast<uintptr_t>(args.yuv) % 2 != 0) return cudaErrorMisalignedAddress;
  VideoToI420Kernel<<<GridFor(blocks, 256), 256, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace turbovid::kernels
