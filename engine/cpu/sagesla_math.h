// SageSLA's arithmetic as upstream's GPU code does it (docs/model-math.md §10): the quantisers,
// bit-exact (per-block int8 of q and smoothed k from SpargeAttn's Triton qk_quantize, per-channel
// FP8 e4m3 of V from its fused scale_fuse_quant_cuda, built with --use_fast_math), and models of
// the attention kernel's approximate instructions and tensor-core P·V accumulation.
#pragma once

#include <cstdint>

#include "engine/core/backend.h"

namespace turbovid::engine::cpu::sagesla {

// Upstream's V range: |v/v_scale| <= 2.25 (TurboDiffusion passes scale_max 2.25).
inline constexpr float kVScaleMax = 2.25f;

// Block scale of the int8 quantiser from the block's max |x|: amax/127 + 1e-7, computed as the
// compiled Triton kernel does, fma(amax, fl(1/127), fl(1e-7)) in fp32 (the division by the
// constant becomes a multiply by its rounded reciprocal, fused with the add).
float Int8BlockScale(float amax);

// int8 code of x in a block of `scale`: y = x/scale, then y ± 0.5 truncated toward zero (round
// half away from zero), saturated to [-128, 127]; NaN -> 0 (cvt.rzi.s8.f32). The division is
// IEEE here; upstream's is the approximate div.full.f32 (<= 2 ulp), which can move a code by one
// only when x/scale lies within 2 ulp of a half-integer (docs/model-math.md §10.2).
int8_t Int8Code(float x, float scale);

// rcp.approx.ftz.f32 (the GPU's MUFU reciprocal) of a bf16-representable x: engine::RcpApprox
// (engine/core/rcp_approx.h), measured for all 128 bf16 mantissas.
float RcpApproxBf16(float x);

// V per channel, from amax = max |v| over the channel's real tokens (bf16 values): the stored
// scale amax·fl(1/2.25) and the factor v is multiplied by before the e4m3 conversion,
// fl(2.25·rcp(amax)), both as the fast-math build computes them. amax 0 gives factor inf, so
// an all-zero channel quantises to NaN codes upstream (0·inf).
float VScale(float amax);
float VFactor(float amax);

// ex2.approx.ftz.f32: modelled as the correctly rounded 2^x (the instruction is within 2 ulp of
// it); flushes results below 2^-126 to 0 as .ftz does.
float Exp2(float x);

// rcp.approx.ftz.f32 of the row sum: modelled as the IEEE 1/x (the instruction is within 1 ulp).
float Reciprocal(float x);

// ro[c] += Σ_j p8[j]·V(k0 + j, c) over the key block [k0, k0 + bk) as the variant's tensor cores
// accumulate it (docs/model-math.md §10.6): p8 [bk] e4m3 values of P, v8 [L, D] e4m3 codes in
// token order, keys past L are zero padding; ro [D].
void AccumulatePv(SageSlaVariant variant, const float* p8, const uint8_t* v8, int64_t k0,
                  int64_t bk, int64_t l, int64_t d, float* ro);

}  // namespace turbovid::engine::cpu::sagesla
