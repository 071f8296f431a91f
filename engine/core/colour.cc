// Decoded video → RGB and RGB → I420, the CPU definition (see colour.h). Built with
// -ffp-contract=off (engine/core/CMakeLists.txt): the float steps must round as written.
#include "engine/core/colour.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/parallel.h"

namespace turbovid::engine::colour {
namespace {

constexpr int32_t Fixed(double v) {
  return static_cast<int32_t>(v * 65536.0 + (v < 0 ? -0.5 : 0.5));
}
constexpr double kYScale = 219.0 / 255.0;
constexpr double kCScale = 224.0 / 255.0;
constexpr I420Coefficients kCoefficients = {Fixed(0.299 * kYScale),
                                            Fixed(0.587 * kYScale),
                                            Fixed(0.114 * kYScale),
                                            Fixed(-0.299 / 1.772 * kCScale),
                                            Fixed(-0.587 / 1.772 * kCScale),
                                            Fixed(0.5 * kCScale),
                                            Fixed(0.5 * kCScale),
                                            Fixed(-0.587 / 1.402 * kCScale),
                                            Fixed(-0.114 / 1.402 * kCScale)};

// Chroma row cy of one frame from its RGB rows 2cy and 2cy+1: luma rows 2cy, 2cy+1 and chroma
// row cy of U and V.
void RowPair(const uint8_t* r0, const uint8_t* r1, int width, uint8_t* y0, uint8_t* y1, uint8_t* u,
             uint8_t* v) {
  const I420Coefficients& k = kCoefficients;
  for (int x = 0; x < width; ++x) {
    const uint8_t* a = r0 + 3 * x;
    const uint8_t* b = r1 + 3 * x;
    y0[x] = LumaOf(k, a[0], a[1], a[2]);
    y1[x] = LumaOf(k, b[0], b[1], b[2]);
  }
  for (int cx = 0; cx < width / 2; ++cx) {
    const int x = 6 * cx;
    int32_t sum[3];
    for (int c = 0; c < 3; ++c) sum[c] = r0[x + c] + r0[x + 3 + c] + r1[x + c] + r1[x + 3 + c];
    u[cx] = ChromaOf(k.ur, k.ug, k.ub, sum[0], sum[1], sum[2]);
    v[cx] = ChromaOf(k.vr, k.vg, k.vb, sum[0], sum[1], sum[2]);
  }
}

}  // namespace

uint8_t VideoValueToU8(float v) {
  // Upstream: (1 + v.clamp(-1, 1)) / 2 * 255 + 0.5, floored, every step rounded to fp32 (double
  // arithmetic, or an FMA, flips values near .5). NaN maps to 0 rather than undefined behaviour
  // in the integer conversion.
  const float clamped = std::isnan(v) ? -1.0f : std::clamp(v, -1.0f, 1.0f);
  const float unit = (1.0f + clamped) / 2.0f;
  const float scaled = unit * 255.0f;
  return static_cast<uint8_t>(std::floor(scaled + 0.5f));
}

void VideoPixelsToRgb(const float* in, int64_t plane, int64_t begin, int64_t end, uint8_t* rgb) {
  for (int64_t i = begin; i < end; ++i) {
    for (int64_t c = 0; c < 3; ++c) rgb[i * 3 + c] = VideoValueToU8(in[c * plane + i]);
  }
}

const I420Coefficients& I420Coeffs() { return kCoefficients; }

void RgbToI420(const uint8_t* rgb, int64_t count, int width, int height, uint8_t* yuv) {
  const int64_t rgb_frame = static_cast<int64_t>(width) * height * 3;
  const int64_t luma = static_cast<int64_t>(width) * height;
  const int64_t yuv_frame = luma * 3 / 2;
  const int pairs = height / 2;
  ParallelFor(count * pairs, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t f = i / pairs;
      const int cy = static_cast<int>(i % pairs);
      const uint8_t* r0 = rgb + f * rgb_frame + static_cast<int64_t>(2 * cy) * width * 3;
      uint8_t* y0 = yuv + f * yuv_frame + static_cast<int64_t>(2 * cy) * width;
      uint8_t* u = yuv + f * yuv_frame + luma + static_cast<int64_t>(cy) * (width / 2);
      RowPair(r0, r0 + static_cast<int64_t>(width) * 3, width, y0, y0 + width, u, u + luma / 4);
    }
  });
}

void VideoToI420(const float* video, int64_t count, int width, int height, uint8_t* yuv) {
  const int64_t luma = static_cast<int64_t>(width) * height;
  const int64_t plane = count * luma;
  const int64_t yuv_frame = luma * 3 / 2;
  const int pairs = height / 2;
  ParallelFor(count * pairs, 16, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> rows(static_cast<size_t>(width) * 6);  // two RGB rows
    for (int64_t i = begin; i < end; ++i) {
      const int64_t f = i / pairs;
      const int cy = static_cast<int>(i % pairs);
      const int64_t first = f * luma + static_cast<int64_t>(2 * cy) * width;  // pixel index
      // Pixels [first, first + 2W) are rows 2cy and 2cy+1: converted into rows[0, 6W).
      VideoPixelsToRgb(video + first, plane, 0, 2 * static_cast<int64_t>(width), rows.data());
      uint8_t* y0 = yuv + f * yuv_frame + static_cast<int64_t>(2 * cy) * width;
      uint8_t* u = yuv + f * yuv_frame + luma + static_cast<int64_t>(cy) * (width / 2);
      RowPair(rows.data(), rows.data() + static_cast<int64_t>(width) * 3, width, y0, y0 + width, u,
              u + luma / 4);
    }
  });
}

}  // namespace turbovid::engine::colour
