// Tensor maps for the sm_90a TMA kernels (flash_attention_sm90.cu, sla_sm90.cu, conv_sm90.cu,
// quant_sm90.cu): cuTensorMapEncodeTiled looked up once through the runtime (no -lcuda link), the
// bf16 layouts and the int8 GEMM operands.
// Host code; internal to kernels/, not part of the launch API.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

// cuda.h's tensor-map type, declared here so that this header needs the runtime API alone.
struct CUtensorMap_st;
typedef struct CUtensorMap_st CUtensorMap;  // NOLINT(modernize-use-using): cuda.h's spelling

namespace turbovid::kernels::tma {

enum class Swizzle : int { kNone = 0, kBytes128 = 3 };  // CUtensorMapSwizzle values

// EncodeBf16's result for a driver without cuTensorMapEncodeTiled; otherwise it returns the
// driver's CUresult (0 = success).
constexpr int kNoDriver = -1;

// A tiled bf16 map of `rank` (≤ 5) dimensions, innermost first: dims[rank], strides_bytes[rank - 1]
// (of dimensions 1..rank-1), box[rank] elements; L2 promotion 256 B, zero fill past the ends.
int EncodeBf16(CUtensorMap* map, const void* ptr, int rank, const uint64_t* dims,
               const uint64_t* strides_bytes, const uint32_t* box, Swizzle swizzle);

// [len, heads, 128] bf16 seen as 3-D {dim, head, token}: boxes of 64 dims × `rows` tokens of one
// head, 128-byte swizzle. False when the driver refuses it.
bool EncodeHeads128(CUtensorMap* map, const void* ptr, int64_t len, int64_t heads, int rows);

// [rows, cols] int8, row-major, seen as 2-D {col, row}: boxes of 128 columns (one 128-byte swizzle
// row) × `box_rows` rows, 128-byte swizzle, zero fill past the ends. cols % 16 == 0 and a 16-byte-
// aligned base (TMA's stride and address rules). False when the driver refuses it.
bool EncodeI8Rows128(CUtensorMap* map, const void* ptr, int64_t rows, int64_t cols, int box_rows);

}  // namespace turbovid::kernels::tma
