// CPU reference SageSLA (docs/model-math.md §10): SLA's block map and linear branch
// (sla_internal.h) with the sparse branch quantised and evaluated as SpargeAttn's kernels do it,
// step by step: int8 Q/K codes, FP8 e4m3 V, per-key-block online softmax with P in e4m3, P·V
// accumulated as the variant's tensor cores do, bf16 output.
// q, k, v, out: [L, N, D] F32; proj_w [D, D], proj_b [D].
#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/fp8.h"
#include "engine/core/parallel.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/sagesla_math.h"
#include "engine/cpu/sla_internal.h"

namespace turbovid::engine::cpu {
namespace {

using sla::SlaDims;

// Scores of keys that do not exist (the tail block past L), as upstream masks them.
constexpr float kMasked = -5000000.f;
// P = exp2(s·scale − m + 8.807): the largest P is 2^8.807 ≈ 448, the top of e4m3's range.
constexpr float kPOffset = 8.807f;
constexpr float kLog2e = 1.44269504088896340736f;

// The quantised operands of one head, in token order.
struct HeadQuant {
  std::vector<float> qb, kb, vb;  // [L, D] bf16-rounded q, k, v
  std::vector<int8_t> q8, k8;     // [L, D] codes (k8 of k − k_mean)
  std::vector<float> q_scale;     // [nq]
  std::vector<float> k_scale;     // [nk]
  std::vector<float> k_mean;      // [D] bf16 values
  std::vector<uint8_t> v8;        // [L, D] e4m3 codes
  std::vector<float> v_scale;     // [D]
};

// Quantises the `rows` rows [r0, r0 + rows) of x [L, D] as one block; returns the scale.
float QuantizeBlock(const std::vector<float>& x, int64_t d, int64_t r0, int64_t rows,
                    std::vector<int8_t>& codes) {
  float amax = 0.f;
  for (int64_t i = r0 * d; i < (r0 + rows) * d; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = sagesla::Int8BlockScale(amax);
  for (int64_t i = r0 * d; i < (r0 + rows) * d; ++i) codes[i] = sagesla::Int8Code(x[i], scale);
  return scale;
}

HeadQuant QuantizeHead(const SageSlaOp& op, const SlaDims& s, int64_t h) {
  HeadQuant hq;
  const int64_t l = s.l, d = s.d;
  hq.qb.resize(l * d);
  hq.kb.resize(l * d);
  hq.vb.resize(l * d);
  for (int64_t t = 0; t < l; ++t) {
    for (int64_t c = 0; c < d; ++c) {
      const int64_t src = (t * s.n + h) * d + c;
      hq.qb[t * d + c] = RoundToBf16(op.q->data<float>()[src]);
      hq.kb[t * d + c] = RoundToBf16(op.k->data<float>()[src]);
      hq.vb[t * d + c] = RoundToBf16(op.v->data<float>()[src]);
    }
  }
  // k_mean = bf16(mean over tokens) (torch's mean of a bf16 tensor: fp32 math, bf16 result);
  // k − k_mean is then bf16 arithmetic in the Triton kernel, so the difference is rounded too.
  hq.k_mean.assign(d, 0.f);
  for (int64_t c = 0; c < d; ++c) {
    double sum = 0;
    for (int64_t t = 0; t < l; ++t) sum += hq.kb[t * d + c];
    hq.k_mean[c] = RoundToBf16(static_cast<float>(sum / static_cast<double>(l)));
  }
  std::vector<float> ks(l * d);
  for (int64_t i = 0; i < l * d; ++i) ks[i] = RoundToBf16(hq.kb[i] - hq.k_mean[i % d]);
  hq.q8.resize(l * d);
  hq.k8.resize(l * d);
  for (int64_t b = 0; b < s.nq; ++b) {
    const int64_t r0 = b * s.bq;
    hq.q_scale.push_back(QuantizeBlock(hq.qb, d, r0, std::min(s.bq, l - r0), hq.q8));
  }
  for (int64_t b = 0; b < s.nk; ++b) {
    const int64_t r0 = b * s.bk;
    hq.k_scale.push_back(QuantizeBlock(ks, d, r0, std::min(s.bk, l - r0), hq.k8));
  }
  // V per channel over all tokens (the zero padding cannot raise the max).
  hq.v8.resize(l * d);
  hq.v_scale.resize(d);
  for (int64_t c = 0; c < d; ++c) {
    float amax = 0.f;
    for (int64_t t = 0; t < l; ++t) amax = std::max(amax, std::fabs(hq.vb[t * d + c]));
    hq.v_scale[c] = sagesla::VScale(amax);
    const float factor = sagesla::VFactor(amax);
    for (int64_t t = 0; t < l; ++t) hq.v8[t * d + c] = F32ToE4m3(hq.vb[t * d + c] * factor);
  }
  return hq;
}

// Online-softmax state of one query row, as the kernel keeps it: the running max m (scaled,
// log2 domain), the row sum as the 4 per-thread partials of the 4 threads sharing the row, and
// the fp32 output accumulator.
struct RowState {
  float m = kMasked;
  float d[4] = {1.f, 1.f, 1.f, 1.f};  // the kernel starts each partial at 1; the first block's
                                      // rescale exp2(-5e6 - m) zeroes it
  std::vector<float> ro;
};

// One selected key block of one query row (upstream update_mdo / exponentiate_r, then P·V).
// `late`: the kernel's last iterations fold the dequantisation into the scores instead of the
// softmax scale (sm90: the last block; sm89: the last two), which rounds differently.
void ProcessBlock(const HeadQuant& hq, const SlaDims& s, SageSlaVariant variant, int64_t t,
                  int64_t blk, bool late, bool last, float qk_scale, RowState& st,
                  std::vector<float>& sc, std::vector<float>& p8) {
  const int64_t d = s.d, bk = s.bk, k0 = blk * bk;
  const float dequant = hq.q_scale[t / s.bq] * hq.k_scale[blk];
  const float scale = late ? qk_scale : qk_scale * dequant;
  const int8_t* qi = hq.q8.data() + t * d;
  float mx = kMasked;
  for (int64_t j = 0; j < bk; ++j) {
    const int64_t key = k0 + j;
    int32_t dot = 0;  // keys past L read zeros (TMA / predicated loads fill 0)
    if (key < s.l) {
      const int8_t* kj = hq.k8.data() + key * d;
      for (int64_t c = 0; c < d; ++c) dot += int32_t{qi[c]} * kj[c];
    }
    float v = static_cast<float>(dot);  // |dot| < 2^24: exact
    if (late) v *= dequant;
    if (last && key >= s.l) v = kMasked;
    sc[j] = v;
    mx = std::max(mx, v);
  }
  const float m_new = std::max(st.m, mx * scale);
  const float rescale = sagesla::Exp2(st.m - m_new);
  for (float& part : st.d) part *= rescale;
  for (float& o : st.ro) o *= rescale;
  st.m = m_new;
  const float neg_m = -m_new + kPOffset;
  for (int64_t j = 0; j < bk; ++j) sc[j] = sagesla::Exp2(std::fma(sc[j], scale, neg_m));
  // Row-sum partials: thread u of the row holds columns 16f + 2u + {0, 1, 8, 9} of each 16-key
  // tile f and adds them left to right.
  for (int u = 0; u < 4; ++u) {
    for (int64_t f = 0; f < bk / 16; ++f) {
      const float* p = sc.data() + 16 * f + 2 * u;
      st.d[u] += ((p[0] + p[1]) + p[8]) + p[9];
    }
  }
  for (int64_t j = 0; j < bk; ++j) p8[j] = E4m3ToF32(F32ToE4m3(sc[j]));
  sagesla::AccumulatePv(variant, p8.data(), hq.v8.data(), k0, bk, s.l, d, st.ro.data());
}

// o_s of head h (bf16 values) into out [L, N, D].
void SparseBranch(const HeadQuant& hq, const SlaDims& s, SageSlaVariant variant, int64_t h,
                  const std::vector<std::vector<int64_t>>& selected, float* out) {
  // sm_scale·log2e in fp32, as the kernel folds it (sm_scale = fp32(1/sqrt(D)) from Python).
  const float qk_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d))) * kLog2e;
  const bool sm90 = variant == SageSlaVariant::kSm90;
  ParallelFor(s.l, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> sc(s.bk), p8(s.bk);
    for (int64_t t = begin; t < end; ++t) {
      float* o = out + (t * s.n + h) * s.d;
      const std::vector<int64_t>& blocks = selected[t / s.bq];
      const int64_t nb = static_cast<int64_t>(blocks.size());
      if (nb == 0) {  // upstream leaves such rows unwritten (torch.empty); zeros here
        std::fill(o, o + s.d, 0.f);
        continue;
      }
      RowState st;
      st.ro.assign(s.d, 0.f);
      for (int64_t it = 0; it < nb; ++it) {
        const bool late = sm90 ? it == nb - 1 : it >= nb - 2;
        ProcessBlock(hq, s, variant, t, blocks[it], late, it == nb - 1, qk_scale, st, sc, p8);
      }
      const float rcp = sagesla::Reciprocal((st.d[0] + st.d[1]) + (st.d[2] + st.d[3]));
      for (int64_t c = 0; c < s.d; ++c) o[c] = RoundToBf16(st.ro[c] * rcp * hq.v_scale[c]);
    }
  });
}

absl::Status CheckProbe(const std::string& what, const Tensor* t, DType dtype, const Shape& shape) {
  if (t == nullptr) return absl::OkStatus();
  if (t->dtype() != dtype || t->shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat("sage_sla: ", what, " ", t->Describe(),
                                                   ", want ", std::string(DTypeName(dtype)),
                                                   ShapeString(shape)));
  }
  return absl::OkStatus();
}

absl::Status CheckSageSla(const SageSlaOp& op, SlaDims* s) {
  TV_RETURN_IF_ERROR(ExpectF32("sage_sla", "q", op.q));
  if (op.q->rank() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("sage_sla: q ", op.q->Describe(), " must be [L, N, D]"));
  }
  s->l = op.q->dim(0);
  s->n = op.q->dim(1);
  s->d = op.q->dim(2);
  if (s->l <= 0 || (s->d != 64 && s->d != 128)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sage_sla: q ", op.q->Describe(), ": L must be positive and D 64 or 128"));
  }
  if (!(op.topk >= 0.f && op.topk <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("sage_sla: topk ", op.topk, " outside [0, 1]"));
  }
  s->bq = SageSlaBlockQ(op.variant);
  s->bk = SageSlaBlockK(op.variant);
  s->nq = (s->l + s->bq - 1) / s->bq;
  s->nk = (s->l + s->bk - 1) / s->bk;
  s->ksel = sla::SelectedPerQueryBlock(op.topk, s->nk);
  const Shape lnd{s->l, s->n, s->d};
  for (const auto& [what, t] : {std::pair{"k", op.k}, {"v", op.v}, {"out", op.out}}) {
    TV_RETURN_IF_ERROR(ExpectF32("sage_sla", what, t));
    TV_RETURN_IF_ERROR(ExpectShape("sage_sla", what, t, lnd));
  }
  TV_RETURN_IF_ERROR(ExpectF32("sage_sla", "proj_w", op.proj_w));
  TV_RETURN_IF_ERROR(ExpectF32("sage_sla", "proj_b", op.proj_b));
  TV_RETURN_IF_ERROR(ExpectShape("sage_sla", "proj_w", op.proj_w, {s->d, s->d}));
  TV_RETURN_IF_ERROR(ExpectShape("sage_sla", "proj_b", op.proj_b, {s->d}));
  TV_RETURN_IF_ERROR(CheckProbe("sparse_map", op.sparse_map, DType::kI8, {s->n, s->nq, s->nk}));
  TV_RETURN_IF_ERROR(CheckProbe("sparse_out", op.sparse_out, DType::kF32, lnd));
  TV_RETURN_IF_ERROR(CheckProbe("q_int8", op.q_int8, DType::kI8, lnd));
  TV_RETURN_IF_ERROR(CheckProbe("q_scale", op.q_scale, DType::kF32, {s->n, s->nq}));
  TV_RETURN_IF_ERROR(CheckProbe("k_mean", op.k_mean, DType::kF32, {s->n, s->d}));
  TV_RETURN_IF_ERROR(CheckProbe("k_int8", op.k_int8, DType::kI8, lnd));
  TV_RETURN_IF_ERROR(CheckProbe("k_scale", op.k_scale, DType::kF32, {s->n, s->nk}));
  TV_RETURN_IF_ERROR(CheckProbe("v_fp8", op.v_fp8, DType::kU8, lnd));
  return CheckProbe("v_scale", op.v_scale, DType::kF32, {s->n, s->d});
}

// Copies the head's quantised operands into whichever probes the op carries.
void WriteProbes(const SageSlaOp& op, const SlaDims& s, int64_t h, const HeadQuant& hq) {
  for (int64_t t = 0; t < s.l; ++t) {
    for (int64_t c = 0; c < s.d; ++c) {
      const int64_t dst = (t * s.n + h) * s.d + c, src = t * s.d + c;
      if (op.q_int8) op.q_int8->data<int8_t>()[dst] = hq.q8[src];
      if (op.k_int8) op.k_int8->data<int8_t>()[dst] = hq.k8[src];
      if (op.v_fp8) op.v_fp8->data<uint8_t>()[dst] = hq.v8[src];
    }
  }
  if (op.q_scale)
    std::copy(hq.q_scale.begin(), hq.q_scale.end(), op.q_scale->data<float>() + h * s.nq);
  if (op.k_scale)
    std::copy(hq.k_scale.begin(), hq.k_scale.end(), op.k_scale->data<float>() + h * s.nk);
  if (op.k_mean) std::copy(hq.k_mean.begin(), hq.k_mean.end(), op.k_mean->data<float>() + h * s.d);
  if (op.v_scale)
    std::copy(hq.v_scale.begin(), hq.v_scale.end(), op.v_scale->data<float>() + h * s.d);
}

absl::Status RunSageSla(const SageSlaOp& op) {
  SlaDims s;
  TV_RETURN_IF_ERROR(CheckSageSla(op, &s));
  int8_t* map = op.sparse_map ? op.sparse_map->data<int8_t>() : nullptr;
  if (map != nullptr) std::fill(map, map + op.sparse_map->numel(), int8_t{0});
  float* out = op.out->data<float>();
  for (int64_t h = 0; h < s.n; ++h) {
    // The block map is SLA's, on the inputs as given (upstream selects before the bf16 cast).
    const auto selected = sla::SelectBlocks(op.q->data<float>(), op.k->data<float>(), s, h, map);
    const HeadQuant hq = QuantizeHead(op, s, h);
    WriteProbes(op, s, h, hq);
    SparseBranch(hq, s, op.variant, h, selected, out);
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

void RegisterSageSlaOps(CpuBackend& backend) { backend.Register<SageSlaOp>(&RunSageSla); }

}  // namespace turbovid::engine::cpu
