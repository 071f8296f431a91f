// TurboDiffusion's I2V preprocessing on host RGB: torchvision.transforms.v2.Resize(antialias=True)
// on a uint8 image, which PyTorch runs on x86 CPUs (AVX2/AVX512) as an integer separable filter,
// and the ToDtype + Normalize map to [-1, 1] (docs/model-math.md §6.3).
#include "engine/video/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace turbovid::engine::video {
namespace {

constexpr int kMaxSide = 16384;

// The taps of one output position along one axis: `count` int16 weights from input `first` on.
struct AxisFilter {
  int taps = 0;       // weights stored per output position
  int precision = 0;  // fixed-point bits of the weights
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<int32_t> weights;  // [out, taps]
};

double Triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// PyTorch's _compute_indices_min_size_weights_aa and _compute_index_ranges_int16_weights for the
// bilinear filter (interp_size 2), align_corners=False and no explicit scale: every step in double,
// truncating casts where PyTorch casts, so indices and weights come out identical.
AxisFilter MakeFilter(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = scale >= 1.0 ? scale : 1.0;
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  AxisFilter f;
  f.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  f.first.resize(out);
  f.count.resize(out);
  std::vector<double> w(static_cast<size_t>(out) * f.taps, 0.0);
  double wt_max = 0.0;
  for (int64_t i = 0; i < out; ++i) {
    const double center = scale * (static_cast<double>(i) + 0.5);
    const int64_t xmin = std::max(static_cast<int64_t>(center - support + 0.5), int64_t{0});
    int64_t xsize = std::min(static_cast<int64_t>(center + support + 0.5), in) - xmin;
    xsize = std::clamp(xsize, int64_t{0}, static_cast<int64_t>(f.taps));
    double* wi = &w[static_cast<size_t>(i) * f.taps];
    double total = 0.0;
    for (int64_t j = 0; j < xsize; ++j) {
      wi[j] = Triangle((static_cast<double>(j + xmin) - center + 0.5) * invscale);
      total += wi[j];
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < xsize; ++j) {
        wi[j] /= total;
        wt_max = std::max(wt_max, wi[j]);
      }
    }
    f.first[i] = xmin;
    f.count[i] = xsize;
  }
  // The most fraction bits p (at most 22) for which round(wt_max · 2^p) still fits int16.
  for (f.precision = 0; f.precision < 22; ++f.precision) {
    const int next = static_cast<int>(0.5 + wt_max * (1 << (f.precision + 1)));
    if (next >= (1 << 15)) break;
  }
  f.weights.resize(w.size());
  for (size_t k = 0; k < w.size(); ++k) {
    const double v = w[k] * (1 << f.precision);
    f.weights[k] = v < 0 ? static_cast<int>(-0.5 + v) : static_cast<int>(0.5 + v);
  }
  return f;
}

// Rounds a fixed-point sum (which already holds the 0.5 bias) back to uint8.
uint8_t Round8(int64_t sum, int precision) {
  return static_cast<uint8_t>(std::clamp<int64_t>(sum >> precision, 0, 255));
}

// src [rows, in_w, 3] → dst [rows, out_w, 3] along the width.
void ResizeRows(const uint8_t* src, int64_t rows, int64_t in_w, const AxisFilter& f, int64_t out_w,
                uint8_t* dst) {
  const int64_t bias = int64_t{1} << (f.precision - 1);
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* row = src + y * in_w * 3;
    for (int64_t x = 0; x < out_w; ++x) {
      const int32_t* k = &f.weights[static_cast<size_t>(x) * f.taps];
      for (int c = 0; c < 3; ++c) {
        int64_t sum = bias;
        for (int64_t j = 0; j < f.count[x]; ++j) sum += row[(f.first[x] + j) * 3 + c] * k[j];
        dst[(y * out_w + x) * 3 + c] = Round8(sum, f.precision);
      }
    }
  }
}

// src [in_h, width, 3] → dst [out_h, width, 3] along the height.
void ResizeColumns(const uint8_t* src, int64_t width, const AxisFilter& f, int64_t out_h,
                   uint8_t* dst) {
  const int64_t bias = int64_t{1} << (f.precision - 1);
  const int64_t stride = width * 3;
  for (int64_t y = 0; y < out_h; ++y) {
    const int32_t* k = &f.weights[static_cast<size_t>(y) * f.taps];
    const uint8_t* top = src + f.first[y] * stride;
    for (int64_t i = 0; i < stride; ++i) {
      int64_t sum = bias;
      for (int64_t j = 0; j < f.count[y]; ++j) sum += top[j * stride + i] * k[j];
      dst[y * stride + i] = Round8(sum, f.precision);
    }
  }
}

absl::Status CheckImage(const Tensor& rgb) {
  if (!rgb.defined() || rgb.device() != Device::kCpu || rgb.dtype() != DType::kU8 ||
      rgb.rank() != 3 || rgb.dim(2) != 3 || rgb.dim(0) < 1 || rgb.dim(1) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("image: ", rgb.defined() ? rgb.Describe() : "empty",
                     " is not a non-empty host U8 [H, W, 3] tensor"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> ResizeAntialiasBilinear(const Tensor& rgb, int width, int height) {
  if (absl::Status s = CheckImage(rgb); !s.ok()) return s;
  if (width < 1 || width > kMaxSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("width: ", width, " is outside [1, ", kMaxSide, "]"));
  }
  if (height < 1 || height > kMaxSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("height: ", height, " is outside [1, ", kMaxSide, "]"));
  }
  const int64_t in_h = rgb.dim(0), in_w = rgb.dim(1);
  // torchvision returns the image itself when the size does not change.
  if (in_w == width && in_h == height) return rgb.Clone();
  Tensor current = rgb;
  if (in_w != width) {
    Tensor next = Tensor::Zeros(DType::kU8, {in_h, width, 3});
    ResizeRows(current.data<uint8_t>(), in_h, in_w, MakeFilter(in_w, width), width,
               next.data<uint8_t>());
    current = std::move(next);
  }
  if (in_h != height) {
    Tensor next = Tensor::Zeros(DType::kU8, {height, width, 3});
    ResizeColumns(current.data<uint8_t>(), width, MakeFilter(in_h, height), height,
                  next.data<uint8_t>());
    current = std::move(next);
  }
  return current;
}

absl::StatusOr<Tensor> ImageToSignedUnit(const Tensor& rgb) {
  if (absl::Status s = CheckImage(rgb); !s.ok()) return s;
  const int64_t plane = rgb.dim(0) * rgb.dim(1);
  Tensor out = Tensor::Zeros(DType::kF32, {3, rgb.dim(0), rgb.dim(1)});
  const uint8_t* in = rgb.data<uint8_t>();
  float* o = out.data<float>();
  // Python's 1.0 / 255 is a double; PyTorch multiplies a float32 tensor by it as a float32.
  // engine/video/CMakeLists.txt builds this file with -ffp-contract=off: an FMA of the multiply
  // and the subtraction would round once instead of twice.
  const float inv255 = static_cast<float>(1.0 / 255.0);
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t c = 0; c < 3; ++c) {
      const float unit = static_cast<float>(in[i * 3 + c]) * inv255;
      const float centred = unit - 0.5f;
      o[c * plane + i] = centred / 0.5f;
    }
  }
  return out;
}

}  // namespace turbovid::engine::video
