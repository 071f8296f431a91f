// CPU reference SLA (docs/model-math.md §9): block map from pooled q / smoothed k, exact
// softmax over the selected key blocks, plus proj_l(global softmax-feature-map linear attention).
// q, k, v, out: [L, N, D] F32; proj_w [D, D], proj_b [D]; fp32 data, float64 accumulation.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/parallel.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/sla_internal.h"

namespace turbovid::engine::cpu {
namespace sla {
namespace {

// Mean of rows [b*blk, min(L, (b+1)*blk)) of x - sub (sub may be null): a partial tail block is
// averaged over its real count (upstream compress kernel).
std::vector<float> PoolBlocks(const float* x, const double* sub, const SlaDims& s, int64_t h,
                              int64_t blk, int64_t nblocks) {
  std::vector<float> pooled(nblocks * s.d);
  std::vector<double> acc(s.d);
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t t0 = b * blk, t1 = std::min(s.l, t0 + blk);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t t = t0; t < t1; ++t) {
      const float* r = Row(x, s, t, h);
      for (int64_t c = 0; c < s.d; ++c) acc[c] += r[c] - (sub ? sub[c] : 0.0);
    }
    for (int64_t c = 0; c < s.d; ++c) pooled[b * s.d + c] = static_cast<float>(acc[c] / (t1 - t0));
  }
  return pooled;
}

}  // namespace

// Selected key blocks per query block of head h, ascending; writes map[h] = 1 at the selections.
// Ties keep the lower block index (deterministic; upstream torch.topk leaves ties unspecified).
std::vector<std::vector<int64_t>> SelectBlocks(const float* q, const float* k, const SlaDims& s,
                                               int64_t h, int8_t* map) {
  std::vector<double> kmean(s.d, 0.0);
  for (int64_t t = 0; t < s.l; ++t) {
    const float* r = Row(k, s, t, h);
    for (int64_t c = 0; c < s.d; ++c) kmean[c] += r[c];
  }
  for (double& m : kmean) m /= static_cast<double>(s.l);
  const std::vector<float> pq = PoolBlocks(q, nullptr, s, h, s.bq, s.nq);
  const std::vector<float> pk = PoolBlocks(k, kmean.data(), s, h, s.bk, s.nk);
  std::vector<std::vector<int64_t>> selected(s.nq);
  std::vector<double> score(s.nk);
  std::vector<int64_t> order(s.nk);
  for (int64_t i = 0; i < s.nq; ++i) {
    for (int64_t j = 0; j < s.nk; ++j) {
      double acc = 0;
      for (int64_t c = 0; c < s.d; ++c)
        acc += static_cast<double>(pq[i * s.d + c]) * pk[j * s.d + c];
      score[j] = acc;
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    selected[i].assign(order.begin(), order.begin() + s.ksel);
    std::sort(selected[i].begin(), selected[i].end());
    if (map != nullptr) {
      for (int64_t j : selected[i]) map[(h * s.nq + i) * s.nk + j] = 1;
    }
  }
  return selected;
}

namespace {
// φ(x) = softmax over the head dim, for every token of head h: [L, D].
std::vector<float> FeatureMap(const float* x, const SlaDims& s, int64_t h) {
  std::vector<float> phi(s.l * s.d);
  ParallelFor(s.l, 64, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* r = Row(x, s, t, h);
      const float mx = *std::max_element(r, r + s.d);
      double sum = 0;
      for (int64_t c = 0; c < s.d; ++c) sum += std::exp(static_cast<double>(r[c]) - mx);
      for (int64_t c = 0; c < s.d; ++c) {
        phi[t * s.d + c] = static_cast<float>(std::exp(static_cast<double>(r[c]) - mx) / sum);
      }
    }
  });
  return phi;
}

}  // namespace

// out[t, h] += proj_l(o_l) where o_l = φ(q)(φ(k)ᵀv) / (1e-5 + φ(q)·Σ_j φ(k_j)) over ALL keys.
void LinearBranch(const float* q, const float* k, const float* v, const float* pw, const float* pb,
                  const SlaDims& s, int64_t h, float* out) {
  const std::vector<float> phi_q = FeatureMap(q, s, h);
  const std::vector<float> phi_k = FeatureMap(k, s, h);
  std::vector<double> kv(s.d * s.d, 0.0), ksum(s.d, 0.0);  // kv[a][c] = Σ_j φk[j][a]·v[j][c]
  ParallelFor(s.d, 4, [&](int64_t begin, int64_t end) {
    for (int64_t a = begin; a < end; ++a) {
      for (int64_t t = 0; t < s.l; ++t) {
        const double p = phi_k[t * s.d + a];
        const float* vr = Row(v, s, t, h);
        ksum[a] += p;
        for (int64_t c = 0; c < s.d; ++c) kv[a * s.d + c] += p * vr[c];
      }
    }
  });
  ParallelFor(s.l, 16, [&](int64_t begin, int64_t end) {
    std::vector<double> num(s.d);
    std::vector<float> ol(s.d);
    for (int64_t t = begin; t < end; ++t) {
      const float* pq = phi_q.data() + t * s.d;
      std::fill(num.begin(), num.end(), 0.0);
      double den = 1e-5;
      for (int64_t a = 0; a < s.d; ++a) {
        den += pq[a] * ksum[a];
        for (int64_t c = 0; c < s.d; ++c) num[c] += pq[a] * kv[a * s.d + c];
      }
      for (int64_t c = 0; c < s.d; ++c) ol[c] = static_cast<float>(num[c] / den);
      float* o = out + (t * s.n + h) * s.d;
      for (int64_t r = 0; r < s.d; ++r) {
        double y = pb[r];
        for (int64_t c = 0; c < s.d; ++c) y += static_cast<double>(pw[r * s.d + c]) * ol[c];
        o[r] += static_cast<float>(y);
      }
    }
  });
}

namespace {
// The Python float the reference multiplies by: the shortest decimal that reads back as `topk`
// (0.7f·10 is 6.99999988 in float, while Python's 0.7·10 is 7.0).
double PythonTopk(float topk) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*g", digits, static_cast<double>(topk));
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == topk) return d;
  }
  return topk;
}
}  // namespace

// K_sel = min(n_k, int(topk·n_k)), the same for every query block (SLA/utils.py get_block_map).
int64_t SelectedPerQueryBlock(float topk, int64_t nk) {
  return std::min<int64_t>(nk, static_cast<int64_t>(PythonTopk(topk) * nk));
}

}  // namespace sla

namespace {
using sla::Row;
using sla::SlaDims;

// o_s for every query of head h: softmax(q·kᵀ·scale) v over the keys of the selected blocks only
// (keys past L in the tail block do not exist). No selected block → zeros.
void SparseBranch(const SlaOp& op, const SlaDims& s, int64_t h,
                  const std::vector<std::vector<int64_t>>& selected, float* o_s) {
  const float* q = op.q->data<float>();
  const float* k = op.k->data<float>();
  const float* v = op.v->data<float>();
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.d));
  ParallelFor(s.l, 16, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> keys;
    std::vector<float> sc;
    std::vector<double> acc(s.d);
    for (int64_t t = begin; t < end; ++t) {
      keys.clear();
      for (int64_t b : selected[t / s.bq]) {
        for (int64_t j = b * s.bk; j < std::min(s.l, (b + 1) * s.bk); ++j) keys.push_back(j);
      }
      float* out = o_s + (t * s.n + h) * s.d;
      if (keys.empty()) {
        std::fill(out, out + s.d, 0.f);
        continue;
      }
      const float* qi = Row(q, s, t, h);
      sc.resize(keys.size());
      float mx = -INFINITY;
      for (size_t a = 0; a < keys.size(); ++a) {
        const float* kj = Row(k, s, keys[a], h);
        float dot = 0.f;
        for (int64_t c = 0; c < s.d; ++c) dot += qi[c] * kj[c];
        sc[a] = dot * scale;
        mx = std::max(mx, sc[a]);
      }
      double denom = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (size_t a = 0; a < keys.size(); ++a) {
        const double p = std::exp(static_cast<double>(sc[a]) - mx);
        denom += p;
        const float* vj = Row(v, s, keys[a], h);
        for (int64_t c = 0; c < s.d; ++c) acc[c] += p * vj[c];
      }
      for (int64_t c = 0; c < s.d; ++c) out[c] = static_cast<float>(acc[c] / denom);
    }
  });
}

absl::Status CheckSla(const SlaOp& op, SlaDims* s) {
  TV_RETURN_IF_ERROR(ExpectF32("sla", "q", op.q));
  if (op.q->rank() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("sla: q ", op.q->Describe(), " must be [L, N, D]"));
  }
  s->l = op.q->dim(0);
  s->n = op.q->dim(1);
  s->d = op.q->dim(2);
  if (op.block_q <= 0 || op.block_k <= 0 || s->l <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("sla: block_q ", op.block_q, ", block_k ",
                                                   op.block_k, ", L ", s->l, " must be positive"));
  }
  if (!(op.topk >= 0.f && op.topk <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("sla: topk ", op.topk, " outside [0, 1]"));
  }
  s->bq = op.block_q;
  s->bk = op.block_k;
  s->nq = (s->l + s->bq - 1) / s->bq;
  s->nk = (s->l + s->bk - 1) / s->bk;
  s->ksel = sla::SelectedPerQueryBlock(op.topk, s->nk);
  const Shape lnd{s->l, s->n, s->d};
  TV_RETURN_IF_ERROR(ExpectF32("sla", "k", op.k));
  TV_RETURN_IF_ERROR(ExpectF32("sla", "v", op.v));
  TV_RETURN_IF_ERROR(ExpectShape("sla", "k", op.k, lnd));
  TV_RETURN_IF_ERROR(ExpectShape("sla", "v", op.v, lnd));
  TV_RETURN_IF_ERROR(ExpectF32("sla", "proj_w", op.proj_w));
  TV_RETURN_IF_ERROR(ExpectF32("sla", "proj_b", op.proj_b));
  TV_RETURN_IF_ERROR(ExpectShape("sla", "proj_w", op.proj_w, {s->d, s->d}));
  TV_RETURN_IF_ERROR(ExpectShape("sla", "proj_b", op.proj_b, {s->d}));
  TV_RETURN_IF_ERROR(ExpectF32("sla", "out", op.out));
  TV_RETURN_IF_ERROR(ExpectShape("sla", "out", op.out, lnd));
  if (op.sparse_out != nullptr) {
    TV_RETURN_IF_ERROR(ExpectF32("sla", "sparse_out", op.sparse_out));
    TV_RETURN_IF_ERROR(ExpectShape("sla", "sparse_out", op.sparse_out, lnd));
  }
  if (op.sparse_map != nullptr &&
      (op.sparse_map->dtype() != DType::kI8 || op.sparse_map->numel() != s->n * s->nq * s->nk)) {
    return absl::InvalidArgumentError(absl::StrCat("sla: sparse_map ", op.sparse_map->Describe(),
                                                   ", want I8 ",
                                                   ShapeString({s->n, s->nq, s->nk})));
  }
  return absl::OkStatus();
}

absl::Status RunSla(const SlaOp& op) {
  SlaDims s;
  TV_RETURN_IF_ERROR(CheckSla(op, &s));
  int8_t* map = op.sparse_map ? op.sparse_map->data<int8_t>() : nullptr;
  if (map != nullptr) std::fill(map, map + op.sparse_map->numel(), int8_t{0});
  float* out = op.out->data<float>();
  for (int64_t h = 0; h < s.n; ++h) {
    const auto selected = sla::SelectBlocks(op.q->data<float>(), op.k->data<float>(), s, h, map);
    SparseBranch(op, s, h, selected, out);
  }
  if (op.sparse_out != nullptr) {
    std::copy(out, out + op.out->numel(), op.sparse_out->data<float>());
  }
  for (int64_t h = 0; h < s.n; ++h) {
    sla::LinearBranch(op.q->data<float>(), op.k->data<float>(), op.v->data<float>(),
                      op.proj_w->data<float>(), op.proj_b->data<float>(), s, h, out);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterSlaOps(CpuBackend& backend) { backend.Register<SlaOp>(&RunSla); }

}  // namespace turbovid::engine::cpu
