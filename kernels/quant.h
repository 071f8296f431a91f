// TurboDiffusion W8A8 int8 linear (docs/model-math.md §11): 128x128-tile activation quantiser
// and the int8 tensor-core GEMM with per-K-block dequantisation into an fp32 accumulator.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_types.h"

namespace turbovid::kernels {

// Tile edge of the quantiser and width of the GEMM's K blocks (kInt8Block in the engine).
inline constexpr int64_t kQuantBlock = 128;

// Per 128x128 tile of bf16(x): amax = max(1e-8, max|x|), q = sat_s8(rint_even(x · (128/amax))),
// scale = amax/128 (docs/model-math.md §11.2: +amax saturates to 127). Partial edge tiles use their
// real elements.
struct QuantizeInt8Args {
  ConstBuf x;              // [rows, cols] bf16 or f32 (f32 is rounded to bf16 first)
  int8_t* q = nullptr;     // [rows, cols]
  float* scale = nullptr;  // [ceil(rows/128), ceil(cols/128)]
  int64_t rows = 0;
  int64_t cols = 0;
};
cudaError_t LaunchQuantizeInt8(const QuantizeInt8Args& args, cudaStream_t stream);

// acc[i,j] = Σ_kb fma(float(Σ_{c∈kb} a[i,c]·w[j,c]), a_scale[i/128,kb]·w_scale[j/128,kb], acc)
// over K blocks in increasing order (the CPU reference's exact arithmetic);
// y = bf16(bf16(acc) + bf16(bias)), or bf16(acc) without bias.
// Fast path (mma.sync s8): k % 16 == 0 and a, w 16-byte aligned; otherwise a scalar kernel.
struct Int8GemmArgs {
  const int8_t* a = nullptr;       // [m, k] quantised activations
  const float* a_scale = nullptr;  // [ceil(m/128), ceil(k/128)]
  const int8_t* w = nullptr;       // [n, k]
  const float* w_scale = nullptr;  // [ceil(n/128), ceil(k/128)]
  ConstBuf bias;                   // [n] bf16/f32, or data == nullptr
  MutBuf y;                        // [m, n] bf16/f32
  float* acc = nullptr;            // [m, n] fp32 accumulator probe, or null
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
};
cudaError_t LaunchInt8Gemm(const Int8GemmArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
