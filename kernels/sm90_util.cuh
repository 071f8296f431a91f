// Hopper (sm_90a) device helpers of the TMA + wgmma kernels (flash_attention_sm90.cu, sla_sm90.cu,
// sla_wgmma_sm90.cu, conv_sm90.cu, quant_sm90.cu, sagesla_sm90.cu): mbarriers, TMA loads, proxy
// fences, setmaxnreg, the 128-byte-swizzle matrix descriptor and every wgmma wrapper. Device code
// for sm_90a builds only.
#pragma once

#include <cuda.h>  // CUtensorMap (type only: no libcuda link)

#include <cstdint>
#include <type_traits>

#include "kernels/ptx.cuh"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
namespace turbovid::kernels::sm90 {

__device__ __forceinline__ void BarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void BarExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void BarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Returns once the phase with the given parity has completed. A fresh barrier is in phase 0, so
// waiting for parity 1 returns at once (the producer's first pass over the empty barriers).
__device__ __forceinline__ void BarWait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, "
        "p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte
// offsets, all >> 4 (PTX ISA "Matrix Descriptor Format").
__device__ __forceinline__ uint64_t Desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3ffff) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (uint64_t{1} << 62);
}
TV_PTX_OP(WgFence, "wgmma.fence.sync.aligned")
TV_PTX_OP(WgCommit, "wgmma.commit_group.sync.aligned")
TV_PTX_OP_N(WgWait, "wgmma.wait_group.sync.aligned")
TV_PTX_OP(FenceBarrierInit, "fence.mbarrier_init.release.cluster")
// Generic-proxy writes to shared memory (cp.async, st.shared) become visible to the async proxy
// (wgmma operand reads, TMA).
TV_PTX_OP(FenceProxyAsync, "fence.proxy.async.shared::cta")
// Warpgroup-wide register reallocation: producers give registers back, consumers take them.
TV_PTX_OP_N(RegDealloc, "setmaxnreg.dec.sync.aligned.u32")
TV_PTX_OP_N(RegAlloc, "setmaxnreg.inc.sync.aligned.u32")

// One box of a 2-D / 3-D / 4-D tensor map (coordinates innermost first) into shared memory,
// completing on mbarrier `bar`; parts past the tensor's ends are zero-filled and still counted in
// the bytes.
__device__ __forceinline__ void TmaLoad2d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                          int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void TmaLoad3d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                          int c0, int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void TmaLoad4d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                          int c0, int c1, int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3, %4, %5}], [%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}

// Pins registers an in-flight wgmma reads or writes: the compiler may neither move their other
// uses across this point nor reuse them while the tensor cores own them (issued right before the
// fence and right after the wait).
template <typename T, int N>
__device__ __forceinline__ void Pin(T (&r)[N]) {
  static_assert(sizeof(T) == 4, "32-bit registers");
#pragma unroll
  for (int i = 0; i < N; ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      asm volatile("" : "+f"(r[i])::"memory");
    } else {
      asm volatile("" : "+r"(r[i])::"memory");
    }
  }
}
// The same on fragments kept as [N][4] (n8 accumulator tiles, A fragments).
template <typename T, int N>
__device__ __forceinline__ void Pin(T (&r)[N][4]) {
  Pin(reinterpret_cast<T(&)[N * 4]>(r));
}

// Accumulator operand lists of the wgmma wrappers: "+f"(d[0]) .. "+f"(d[N - 1]).
#define TV_WG_ACC4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define TV_WG_ACC16(i) TV_WG_ACC4(i), TV_WG_ACC4(i + 4), TV_WG_ACC4(i + 8), TV_WG_ACC4(i + 12)
#define TV_WG_ACC32(i) TV_WG_ACC16(i), TV_WG_ACC16(i + 16)
#define TV_WG_ACC48(i) TV_WG_ACC32(i), TV_WG_ACC16(i + 32)
#define TV_WG_ACC64(i) TV_WG_ACC32(i), TV_WG_ACC32(i + 32)
#define TV_WG_ACC96(i) TV_WG_ACC48(i), TV_WG_ACC48(i + 48)

#define TV_WG_REGS32                                                               \
  "{"                                                                              \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "         \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" \
  "}"
#define TV_WG_REGS48                                                                 \
  "{"                                                                                \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "           \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"   \
  "}"
#define TV_WG_REGS64                                                                 \
  "{"                                                                                \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "           \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"   \
  "}"
#define TV_WG_REGS96                                                                 \
  "{"                                                                                \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "           \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"   \
  "}"

// d (64×N fp32) = [d +] A (64×16 bf16, smem) · B (16×N bf16, smem), one overload per N (d holds N /
// 2 accumulators); kTransA / kTransB: A M-major / B N-major instead of K-major. The asm strings are
// literals, so each shape is spelled by the macro: accumulators, shape, then the operand numbers of
// the two descriptors, the scale-d predicate and the two transpose flags.
#define TV_WGMMA_SS(REGS, SHAPE, DESCS, PRED, TRANS)                                      \
  template <int kTransA, int kTransB>                                                     \
  __device__ __forceinline__ void WgmmaSS(float(&d)[REGS], uint64_t a, uint64_t b,        \
                                          int accumulate) {                               \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED                                 \
                 ", 0;\n"                                                                 \
                 "wgmma.mma_async.sync.aligned." SHAPE ".f32.bf16.bf16 " TV_WG_REGS##REGS \
                 ", " DESCS ", p, 1, 1, " TRANS ";\n}\n"                                  \
                 : TV_WG_ACC##REGS(0)                                                     \
                 : "l"(a), "l"(b), "r"(accumulate), "n"(kTransA), "n"(kTransB));          \
  }
TV_WGMMA_SS(32, "m64n64k16", "%32, %33", "%34", "%35, %36")
TV_WGMMA_SS(48, "m64n96k16", "%48, %49", "%50", "%51, %52")
TV_WGMMA_SS(64, "m64n128k16", "%64, %65", "%66", "%67, %68")
TV_WGMMA_SS(96, "m64n192k16", "%96, %97", "%98", "%99, %100")
#undef TV_WGMMA_SS

// d (64×128 fp32) = [d +] A (64×16 bf16, registers: the mma.sync A-fragment layout per warp) ·
// B (16×128 bf16, smem); kTransB: B N-major instead of K-major.
template <int kTransB>
__device__ __forceinline__ void WgmmaRS(float (&d)[64], const uint32_t (&a)[4], uint64_t b,
                                        int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " TV_WG_REGS64
      ", {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
      : TV_WG_ACC64(0)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(kTransB));
}
// The same on accumulators kept as n8 tiles, d[i][e] = element e of tile i.
template <int kTransA, int kTransB, int N>
__device__ __forceinline__ void WgmmaSS(float (&d)[N][4], uint64_t a, uint64_t b, int accumulate) {
  WgmmaSS<kTransA, kTransB>(reinterpret_cast<float(&)[N * 4]>(d), a, b, accumulate);
}
template <int kTransB, int N>
__device__ __forceinline__ void WgmmaRS(float (&d)[N][4], const uint32_t (&a)[4], uint64_t b,
                                        int accumulate) {
  WgmmaRS<kTransB>(reinterpret_cast<float(&)[N * 4]>(d), a, b, accumulate);
}

// d (64×128 s32) = [d +] A (64×32 s8, smem) · B (32×128 s8, smem), both K-major (the only
// layout integer wgmma takes); accumulate 0 overwrites d. Integer products and sums are exact.
#define TV_WG_IACC4(i) "+r"(d[i]), "+r"(d[i + 1]), "+r"(d[i + 2]), "+r"(d[i + 3])
#define TV_WG_IACC16(i) TV_WG_IACC4(i), TV_WG_IACC4(i + 4), TV_WG_IACC4(i + 8), TV_WG_IACC4(i + 12)
#define TV_WG_IACC64(i) \
  TV_WG_IACC16(i), TV_WG_IACC16(i + 16), TV_WG_IACC16(i + 32), TV_WG_IACC16(i + 48)
__device__ __forceinline__ void WgmmaS8(int (&d)[64], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 " TV_WG_REGS64 ", %64, %65, p;\n}\n"
      : TV_WG_IACC64(0)
      : "l"(a), "l"(b), "r"(accumulate));
}
#undef TV_WG_IACC4
#undef TV_WG_IACC16
#undef TV_WG_IACC64

// d (64×128 fp32) = [d +] A (64×32 e4m3, registers: the mma.sync m16n8k32 A-fragment layout per
// warp) · B (32×128 e4m3, smem, K-major: FP8 wgmma takes no transpose); accumulate 0 overwrites d.
__device__ __forceinline__ void WgmmaE4m3(float (&d)[64], const uint32_t (&a)[4], uint64_t b,
                                          int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 " TV_WG_REGS64
      ", {%64, %65, %66, %67}, %68, p, 1, 1;\n}\n"
      : TV_WG_ACC64(0)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}

#undef TV_WG_ACC4
#undef TV_WG_ACC16
#undef TV_WG_ACC32
#undef TV_WG_ACC48
#undef TV_WG_ACC64
#undef TV_WG_ACC96
#undef TV_WG_REGS32
#undef TV_WG_REGS48
#undef TV_WG_REGS64
#undef TV_WG_REGS96

}  // namespace turbovid::kernels::sm90
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
