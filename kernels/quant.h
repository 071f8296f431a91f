// TurboDiffusion W8A8 int8 linear (docs/model-math.md §11): 128x128-tile activation quantiser
// and the int8 tensor-core GEMM with per-K-block dequantisation into an fp32 accumulator.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_options.h"
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
// Paths, all giving the same bits (the per-block int32 dots are exact, the fma order fixed):
// sm_90a device and build, path kAuto or kSm90, Int8GemmSm90Accepts → TMA + wgmma kernel
// (quant_sm90.cu); else k % 16 == 0 and a, w 16-byte aligned → mma.sync s8 kernel; else a scalar
// kernel. A forced kSm90 on an sm_90a device whose shapes the wgmma kernel does not take is an
// error (cudaErrorInvalidValue), not a silent fallback; on other devices it means kMma.
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
  Int8GemmPath path = Int8GemmPath::kAuto;  // KernelOptions::int8_gemm (TV_INT8_GEMM)
};
cudaError_t LaunchInt8Gemm(const Int8GemmArgs& args, cudaStream_t stream);

// The sm_90a wgmma GEMM (quant_sm90.cu). Built: compiled with sm_90a device code. Available: built
// and the current device is compute capability 9.0. Accepts: k % 16 == 0, a and w 16-byte aligned,
// m, n, k below 2^31 - 256 (TMA coordinates). It writes the acc probe too.
bool Int8GemmSm90Built();
bool Int8GemmSm90Available();
bool Int8GemmSm90Accepts(const Int8GemmArgs& args);
// Runs the wgmma kernel alone: cudaErrorNotSupported when not available, InvalidValue when the
// shapes are not accepted.
cudaError_t LaunchInt8GemmSm90(const Int8GemmArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
