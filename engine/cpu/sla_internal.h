// Pieces of the CPU SLA reference (sla_ops.cc) that SageSLA (sagesla_ops.cc) reuses unchanged:
// the block selection and the linear branch with proj_l (docs/model-math.md §9.2, §9.4).
// q, k, v, out: [L, N, D] F32, row (token t, head h) at (t·N + h)·D.
#pragma once

#include <cstdint>
#include <vector>

namespace turbovid::engine::cpu::sla {

struct SlaDims {
  int64_t l, n, d, bq, bk, nq, nk, ksel;
};

// Element (token t, head h) of a [L, N, D] tensor.
inline const float* Row(const float* base, const SlaDims& s, int64_t t, int64_t h) {
  return base + (t * s.n + h) * s.d;
}

// K_sel = min(n_k, int(topk·n_k)) with topk read as the Python float upstream multiplies by.
int64_t SelectedPerQueryBlock(float topk, int64_t nk);

// Selected key blocks per query block of head h, ascending; writes map[(h·nq + i)·nk + j] = 1 at
// the selections when map is not null.
std::vector<std::vector<int64_t>> SelectBlocks(const float* q, const float* k, const SlaDims& s,
                                               int64_t h, int8_t* map);

// out[t, h] += proj_l(o_l), o_l the softmax-feature-map linear attention over all L keys.
// pw [D, D], pb [D].
void LinearBranch(const float* q, const float* k, const float* v, const float* pw, const float* pb,
                  const SlaDims& s, int64_t h, float* out);

}  // namespace turbovid::engine::cpu::sla
