// TurboDiffusion's I2V image preprocessing on host RGB (docs/model-math.md §6.3): torchvision's
// antialiased bilinear resize of a uint8 image, with the integer arithmetic PyTorch runs for it on
// x86 CPUs, and the uint8 → [-1, 1] float map (ToDtype(float32, scale=True), Normalize(0.5, 0.5)).
#pragma once

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::video {

// rgb: [H, W, 3] U8 host → [height, width, 3] U8. Separable triangle filter widened by the scale
// factor when shrinking (support max(in/out, 1)), taps normalised to sum 1 then rounded to int16
// fixed point; width first, then height, each pass rounded to uint8; an axis whose size does not
// change is copied. A bad tensor, or a side outside [1, 16384] → InvalidArgument naming the field.
absl::StatusOr<Tensor> ResizeAntialiasBilinear(const Tensor& rgb, int width, int height);

// rgb: [H, W, 3] U8 host → [3, H, W] F32 in [-1, 1], each step in fp32 as torchvision does it:
// (float(v) · float(1/255) − 0.5) / 0.5. A bad tensor → InvalidArgument.
absl::StatusOr<Tensor> ImageToSignedUnit(const Tensor& rgb);

}  // namespace turbovid::engine::video
