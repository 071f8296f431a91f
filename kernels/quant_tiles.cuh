// Device pieces the int8 GEMMs share (quant.cu's mma.sync kernel, quant_sm90.cu's wgmma kernel):
// the epilogue of docs/model-math.md §11 (bf16(acc), + bf16(bias), bf16) and the paired stores of
// one row's two adjacent columns. One copy, so both kernels round and store the same way.
// Internal to kernels/, not part of the launch API.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/device_util.cuh"
#include "kernels/quant.h"

namespace turbovid::kernels::quant_tiles {

__device__ __forceinline__ float AsBf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}
__device__ __forceinline__ float AsBf16(__nv_bfloat16 v) { return __bfloat162float(v); }

// bf16 round, bf16 bias, bf16 round (Int8Linear.forward order).
__device__ __forceinline__ float Epilogue(const Int8GemmArgs& a, int64_t col, float acc) {
  const float out = AsBf16(acc);
  return a.bias.data ? AsBf16(out + AsBf16(detail::Load(a.bias, col))) : out;
}

// Whether StorePair may write two columns with one 8-byte (f32) / 4-byte (bf16) store: n even and
// y, acc aligned for it.
__host__ __device__ __forceinline__ bool PairedStores(const Int8GemmArgs& a) {
  return a.n % 2 == 0 &&
         reinterpret_cast<uintptr_t>(a.y.data) % (a.y.type == ElemType::kF32 ? 8 : 4) == 0 &&
         reinterpret_cast<uintptr_t>(a.acc) % 8 == 0;
}

// Stores the acc probe (when asked) and y of columns col, col + 1 (col + 1 may be past n) of one
// row.
__device__ __forceinline__ void StorePair(const Int8GemmArgs& a, bool paired, int64_t row,
                                          int64_t col, float acc0, float acc1) {
  const int64_t i = row * a.n + col;
  const bool both = col + 1 < a.n;
  if (a.acc) {
    if (paired && both) {
      *reinterpret_cast<float2*>(a.acc + i) = make_float2(acc0, acc1);
    } else {
      a.acc[i] = acc0;
      if (both) a.acc[i + 1] = acc1;
    }
  }
  const float y0 = Epilogue(a, col, acc0);
  const float y1 = both ? Epilogue(a, col + 1, acc1) : 0.f;
  if (paired && both) {
    if (a.y.type == ElemType::kBF16) {
      *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(a.y.data) + i) =
          __floats2bfloat162_rn(y0, y1);
    } else {
      *reinterpret_cast<float2*>(static_cast<float*>(a.y.data) + i) = make_float2(y0, y1);
    }
  } else {
    detail::Store(a.y, i, y0);
    if (both) detail::Store(a.y, i + 1, y1);
  }
}

}  // namespace turbovid::kernels::quant_tiles
