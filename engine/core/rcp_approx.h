// The GPU's approximate reciprocal, rcp.approx.ftz.f32, on the CPU (docs/model-math.md §10.6):
// upstream's fast-math builds divide with it (x/y = x·rcp(y) exactly, measured on an H100), so the
// CPU reference needs its results to reproduce their quantisation codes bit for bit.
#pragma once

namespace turbovid::engine {

// rcp.approx.ftz.f32(x) for every bf16-representable x (the values quantisers divide by are maxima
// of bf16 values), from the instruction's results for the 128 bf16 mantissas, measured on an H100
// over all 2^23 fp32 mantissas (20 of the 128 are the neighbour of the rounded 1/x, never further)
// and exact in the exponent. Other x get the correctly rounded 1/x (the instruction's result for
// 87% of fp32 mantissas, and for the quantisers' floor 1e-8). Zero and subnormals give ±inf (ftz),
// results below 2^-126 flush to 0, 1/inf = 0, NaN stays NaN.
float RcpApprox(float x);

}  // namespace turbovid::engine
