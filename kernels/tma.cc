// Tensor-map building for the sm_90a TMA kernels (see tma.h): the driver entry point, looked up
// once, and the bf16 and int8 encodings.
#include "kernels/tma.h"

#include <cuda.h>  // CUtensorMap and its enums (types only: no libcuda link)
#include <cudaTypedefs.h>

namespace turbovid::kernels::tma {
namespace {

// cuTensorMapEncodeTiled from the driver through the runtime, looked up once.
PFN_cuTensorMapEncodeTiled_v12000 EncodeFn() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// A tiled map of `type` elements (see EncodeBf16).
int Encode(CUtensorMap* map, CUtensorMapDataType type, const void* ptr, int rank,
           const uint64_t* dims, const uint64_t* strides_bytes, const uint32_t* box,
           Swizzle swizzle) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = EncodeFn();
  if (encode == nullptr) return kNoDriver;
  const cuuint32_t elem_strides[5] = {1u, 1u, 1u, 1u, 1u};
  return static_cast<int>(encode(
      map, type, static_cast<cuuint32_t>(rank), const_cast<void*>(ptr), dims, strides_bytes, box,
      elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, static_cast<CUtensorMapSwizzle>(swizzle),
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
}

}  // namespace

int EncodeBf16(CUtensorMap* map, const void* ptr, int rank, const uint64_t* dims,
               const uint64_t* strides_bytes, const uint32_t* box, Swizzle swizzle) {
  return Encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, ptr, rank, dims, strides_bytes, box,
                swizzle);
}

bool EncodeHeads128(CUtensorMap* map, const void* ptr, int64_t len, int64_t heads, int rows) {
  constexpr uint64_t kD = 128;
  const uint64_t dims[3] = {kD, static_cast<uint64_t>(heads), static_cast<uint64_t>(len)};
  const uint64_t strides[2] = {kD * 2, static_cast<uint64_t>(heads) * kD * 2};
  const uint32_t box[3] = {64u, 1u, static_cast<uint32_t>(rows)};
  return EncodeBf16(map, ptr, 3, dims, strides, box, Swizzle::kBytes128) == CUDA_SUCCESS;
}

bool EncodeI8Rows128(CUtensorMap* map, const void* ptr, int64_t rows, int64_t cols, int box_rows) {
  if (rows <= 0 || cols <= 0 || cols % 16 != 0 || box_rows <= 0 || box_rows > 256) return false;
  const uint64_t dims[2] = {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)};
  const uint64_t strides[1] = {static_cast<uint64_t>(cols)};
  const uint32_t box[2] = {128u, static_cast<uint32_t>(box_rows)};
  return Encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, ptr, 2, dims, strides, box,
                Swizzle::kBytes128) == CUDA_SUCCESS;
}

}  // namespace turbovid::kernels::tma
