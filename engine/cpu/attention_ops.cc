// CPU reference dense attention: softmax(q·kᵀ·scale + bias)·v per (head, query), fp32 with a
// float64 softmax denominator.
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/parallel.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
namespace {

absl::Status RunAttention(const AttentionOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("attention", "q", op.q));
  TV_RETURN_IF_ERROR(ExpectF32("attention", "k", op.k));
  TV_RETURN_IF_ERROR(ExpectF32("attention", "v", op.v));
  TV_ASSIGN_OR_RETURN(const AttentionDims dims, CheckAttention(op));
  const int64_t lq = dims.lq, n = dims.n, d = dims.d, lk = dims.lk, dv = dims.dv;
  const float* q = op.q->data<float>();
  const float* k = op.k->data<float>();
  const float* v = op.v->data<float>();
  const float* bias = op.bias ? op.bias->data<float>() : nullptr;
  float* out = op.out->data<float>();
  ParallelFor(lq * n, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(lk);
    std::vector<double> acc(dv);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i = t / n, h = t % n;
      const float* qi = q + (i * n + h) * d;
      float mx = -INFINITY;
      for (int64_t j = 0; j < lk; ++j) {
        const float* kj = k + (j * n + h) * d;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(qi[c]) * kj[c];
        float s = static_cast<float>(dot * op.scale);
        if (bias) s += bias[(h * lq + i) * lk + j];
        scores[j] = s;
        mx = std::max(mx, s);
      }
      double denom = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < lk; ++j) {
        const double p = std::exp(static_cast<double>(scores[j]) - mx);
        denom += p;
        const float* vj = v + (j * n + h) * dv;
        for (int64_t c = 0; c < dv; ++c) acc[c] += p * vj[c];
      }
      float* o = out + (i * n + h) * dv;
      for (int64_t c = 0; c < dv; ++c) o[c] = static_cast<float>(acc[c] / denom);
    }
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterAttentionOps(CpuBackend& backend) { backend.Register<AttentionOp>(&RunAttention); }

}  // namespace turbovid::engine::cpu
