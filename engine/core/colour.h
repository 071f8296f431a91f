// The engine's one definition of how a decoded video becomes displayable pictures: the VAE's
// [-1, 1] values → 8-bit RGB with TurboDiffusion's rounding, and 8-bit RGB → I420 (yuv420p,
// BT.601 limited range, chroma at the centre of each 2×2 block) in fixed point. Used by
// engine/video (VideoToFrames, the MP4 writers), by the CPU backend's VideoToI420Op and, through
// I420Coefficients, by the CUDA kernel (kernels/colour.cu), which must give the same bytes.
#pragma once

#include <cstdint>

namespace turbovid::engine::colour {

// uint8 = floor(float32(float32((1 + clamp(v, -1, 1)) / 2) * 255) + 0.5), each step rounded to
// fp32 (no FMA: colour.cc is built with -ffp-contract=off); NaN → 0.
uint8_t VideoValueToU8(float v);

// Interleaved RGB of pixels [begin, end) of planar [3, P] values (`plane` = P, the channel
// stride): rgb[3i + c] = VideoValueToU8(in[c·plane + i]).
void VideoPixelsToRgb(const float* in, int64_t plane, int64_t begin, int64_t end, uint8_t* rgb);

// Fixed-point (16 fractional bits) BT.601 limited-range coefficients; the chroma ones apply to
// the sum of a 2×2 block (two more fractional bits).
struct I420Coefficients {
  int32_t yr, yg, yb;
  int32_t ur, ug, ub;
  int32_t vr, vg, vb;
};
const I420Coefficients& I420Coeffs();

// The three I420 bytes of the formulas, for one pixel's luma and one 2×2 block's chroma (the
// sums of its four R, G, B bytes).
inline uint8_t LumaOf(const I420Coefficients& k, int32_t r, int32_t g, int32_t b) {
  const int32_t y = (k.yr * r + k.yg * g + k.yb * b + (16 << 16) + (1 << 15)) >> 16;
  return static_cast<uint8_t>(y < 16 ? 16 : y > 235 ? 235 : y);
}
// 128 << 18 outweighs the most negative sum, so the shift sees a positive number.
inline uint8_t ChromaOf(int32_t cr, int32_t cg, int32_t cb, int32_t sr, int32_t sg, int32_t sb) {
  const int32_t v = (cr * sr + cg * sg + cb * sb + (128 << 18) + (1 << 17)) >> 18;
  return static_cast<uint8_t>(v < 16 ? 16 : v > 240 ? 240 : v);
}

// `count` frames [count, H, W, 3] U8 RGB → `count` I420 pictures of W·H·3/2 bytes each (Y plane,
// then U, then V, W/2 × H/2 each). W and H even. Spread over the cores.
void RgbToI420(const uint8_t* rgb, int64_t count, int width, int height, uint8_t* yuv);

// Decoded video [3, count, H, W] F32 (channel stride `plane` = count·H·W) → the same I420
// pictures RgbToI420(VideoPixelsToRgb(...)) gives, byte for byte, without the RGB frames.
void VideoToI420(const float* video, int64_t count, int width, int height, uint8_t* yuv);

}  // namespace turbovid::engine::colour
