// PTX wrappers shared by the sm_80+ kernels: cp.async, ldmatrix, mma.sync, bf16 packing, exp2 and
// the quad / warp reductions over mma fragments. One name and one argument order each: operands in
// the instruction's order, destination first. Device code only; not part of the launch API.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace turbovid::kernels::ptx {

// 32-bit shared-state-space address of a generic pointer into shared memory.
__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Wrappers of one PTX instruction without operands (TV_PTX_OP) or with one immediate, a template
// parameter (TV_PTX_OP_N): each is a volatile asm with a "memory" clobber. Defined here for the
// sm_90a helpers (sm90_util.cuh) too.
#define TV_PTX_OP(NAME, INSTR) \
  __device__ __forceinline__ void NAME() { asm volatile(INSTR ";\n" ::: "memory"); }
#define TV_PTX_OP_N(NAME, INSTR)                       \
  template <int kN>                                    \
  __device__ __forceinline__ void NAME() {             \
    asm volatile(INSTR " %0;\n" ::"n"(kN) : "memory"); \
  }

// The "memory" clobbers below keep shared-memory accesses on their side of the cp.async waits and
// __syncthreads(): the asm operands do not name the memory read or written.

// 16-byte global → shared copy; !valid reads nothing and zero-fills the destination (src-size 0).
__device__ __forceinline__ void CpAsync16(uint32_t dst, const void* src, bool valid) {
  const int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_size)
               : "memory");
}
TV_PTX_OP(CpAsyncCommit, "cp.async.commit_group")
// Returns once at most kN committed groups are still in flight.
TV_PTX_OP_N(CpAsyncWait, "cp.async.wait_group")
TV_PTX_OP(CpAsyncWaitAll, "cp.async.wait_all")

// Four 8×8 b16 matrices from shared memory (lanes 8i..8i+7 give the row addresses of matrix i).
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
// As LdMatrixX4, each matrix transposed (B operands from row-major tiles).
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

// The mma.sync wrappers are pure register ops (neither volatile nor clobbering memory), so the
// compiler may interleave them with the next fragment loads. d += a · b, b = {b0, b1}: one macro,
// the accumulator type and instruction differing.
#define TV_MMA_SYNC(NAME, ACC, CONSTRAINT, INSTR)                                      \
  __device__ __forceinline__ void NAME(ACC(&d)[4], const uint32_t(&a)[4], uint32_t b0, \
                                       uint32_t b1) {                                  \
    asm(INSTR " {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"     \
        : CONSTRAINT(d[0]), CONSTRAINT(d[1]), CONSTRAINT(d[2]), CONSTRAINT(d[3])       \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));               \
  }
// d (16×8 fp32) += a (16×16 bf16, row) · b (16×8 bf16, col).
TV_MMA_SYNC(MmaBf16, float, "+f", "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32")
// d (16×8 s32) += a (16×32 s8, row) · b (32×8 s8, col).
TV_MMA_SYNC(MmaS8, int, "+r", "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32")
#undef TV_MMA_SYNC

// (lo, hi) → bf16x2, round to nearest, lo in the low half (the lower column of a fragment pair).
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
// The low / high bf16 of a bf16x2 as float (exact).
__device__ __forceinline__ float LoBf16(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float HiBf16(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

// 2^x on the SFU (flush-to-zero); Exp2(-inf) = 0.
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Offset, in elements, of 16-byte chunk `chunk` of row `row` in a shared tile of kRowElems-element
// rows, the chunk index XOR-ed with row % 8: the 8 rows one ldmatrix phase reads (same logical
// chunk) land in 8 different bank groups. kChunkElems elements make 16 bytes (8 bf16, 16 int8).
template <int kRowElems, int kChunkElems>
__device__ __forceinline__ int XorSwizzle(int row, int chunk) {
  return row * kRowElems + (chunk ^ (row & 7)) * kChunkElems;
}

// Max / sum over the 4 lanes of a quad (the lanes holding one row of an mma accumulator).
__device__ __forceinline__ float QuadMax(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float QuadSum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
// Max over the 32 lanes of a warp; every lane gets it.
__device__ __forceinline__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace turbovid::kernels::ptx
