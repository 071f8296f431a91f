// CPU reference: linear, norms, rope, elementwise, embedding and strided copy (fp32 math).
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/core/parallel.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
namespace {

// Products and sums in float64: the reference should sit well inside fp32 rounding noise, since
// golden pipelines round activations to bf16 and amplify any fp32-level disagreement.
float Dot(const float* a, const float* b, int64_t n) {
  double acc = 0.0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(acc);
}

float GeluTanh(float x) {
  constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.f + std::tanh(kC * (x + 0.044715f * x * x * x)));
}
float Silu(float x) { return x / (1.f + std::exp(-x)); }

absl::Status RunLinear(const LinearOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("linear", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectF32("linear", "w", op.w));
  TV_ASSIGN_OR_RETURN(const LinearDims dims, CheckLinear(op));
  const int64_t m = dims.m, k = dims.k, n = dims.n;
  const float* x = op.x->data<float>();
  const float* w = op.w->data<float>();
  const float* b = op.bias ? op.bias->data<float>() : nullptr;
  float* y = op.y->data<float>();
  // Tiles of 16 output columns keep a slice of w hot in cache across rows.
  constexpr int64_t kTileN = 16;
  const int64_t tiles = (n + kTileN - 1) / kTileN;
  ParallelFor(tiles * ((m + 63) / 64), 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      int64_t nt = t % tiles, mt = t / tiles;
      int64_t n0 = nt * kTileN, n1 = std::min(n, n0 + kTileN);
      int64_t m0 = mt * 64, m1 = std::min(m, m0 + 64);
      for (int64_t i = m0; i < m1; ++i) {
        for (int64_t j = n0; j < n1; ++j) {
          float v = Dot(x + i * k, w + j * k, k) + (b ? b[j] : 0.f);
          if (op.act == Activation::kGeluTanh) v = GeluTanh(v);
          if (op.act == Activation::kSilu) v = Silu(v);
          y[i * n + j] = v;
        }
      }
    }
  });
  return absl::OkStatus();
}

// Modulation/gate operands must be F32 on this backend; their shapes are checked by RowStride.
absl::Status ExpectF32IfSet(const std::string& op, const std::string& what, const Tensor* t) {
  return t == nullptr ? absl::OkStatus() : ExpectF32(op, what, t);
}

absl::Status RunLayerNorm(const LayerNormOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("layer_norm", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectF32IfSet("layer_norm", "scale", op.scale));
  TV_RETURN_IF_ERROR(ExpectF32IfSet("layer_norm", "shift", op.shift));
  TV_ASSIGN_OR_RETURN(const LayerNormDims dims, CheckLayerNorm(op));
  const int64_t m = dims.m, e = dims.e, scale_stride = dims.scale_stride, shift_stride = dims.shift_stride;
  const float* x = op.x->data<float>();
  float* y = op.y->data<float>();
  ParallelFor(m, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* row = x + i * e;
      double mean = 0, var = 0;
      for (int64_t j = 0; j < e; ++j) mean += row[j];
      mean /= e;
      for (int64_t j = 0; j < e; ++j) var += (row[j] - mean) * (row[j] - mean);
      var /= e;
      const float inv = static_cast<float>(1.0 / std::sqrt(var + op.eps));
      const float* sc = op.scale ? op.scale->data<float>() + i * scale_stride : nullptr;
      const float* sh = op.shift ? op.shift->data<float>() + i * shift_stride : nullptr;
      for (int64_t j = 0; j < e; ++j) {
        float v = (row[j] - static_cast<float>(mean)) * inv;
        if (op.weight) v *= op.weight->data<float>()[j];
        if (op.bias) v += op.bias->data<float>()[j];
        if (sc) v *= 1.f + sc[j];
        if (sh) v += sh[j];
        y[i * e + j] = v;
      }
    }
  });
  return absl::OkStatus();
}

absl::Status RunRmsNorm(const RmsNormOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("rms_norm", "x", op.x));
  TV_ASSIGN_OR_RETURN(const RmsNormDims dims, CheckRmsNorm(op));
  const int64_t m = dims.m, e = dims.e, pairs = dims.rope_pairs;
  const float* x = op.x->data<float>();
  float* y = op.y->data<float>();
  const float* w = op.weight ? op.weight->data<float>() : nullptr;
  // Tensor parallel: the whole row's Σx² (all-reduced) over its full width.
  const float* sum_sq = op.row_sum_sq ? op.row_sum_sq->data<float>() : nullptr;
  const double width = static_cast<double>(sum_sq ? op.full_width : e);
  ParallelFor(m, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double ss = 0;
      if (sum_sq) {
        ss = sum_sq[i];
      } else {
        for (int64_t j = 0; j < e; ++j) ss += static_cast<double>(x[i * e + j]) * x[i * e + j];
      }
      const float inv = static_cast<float>(1.0 / std::sqrt(ss / width + op.eps));
      for (int64_t j = 0; j < e; ++j) y[i * e + j] = x[i * e + j] * inv * (w ? w[j] : 1.f);
      if (pairs == 0) continue;
      const float* c = op.rope_cos->data<float>() + i * pairs;
      const float* s = op.rope_sin->data<float>() + i * pairs;
      for (int64_t j = 0; j < e / 2; ++j) {
        const int64_t p = j % pairs;
        const float re = y[i * e + 2 * j], im = y[i * e + 2 * j + 1];
        y[i * e + 2 * j] = re * c[p] - im * s[p];
        y[i * e + 2 * j + 1] = re * s[p] + im * c[p];
      }
    }
  });
  return absl::OkStatus();
}

absl::Status RunRowSumSquares(const RowSumSquaresOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("row_sum_squares", "x", op.x));
  TV_ASSIGN_OR_RETURN(const int64_t m, CheckRowSumSquares(op));
  const int64_t e = op.x->dim(1);
  const float* x = op.x->data<float>();
  float* y = op.y->data<float>();
  ParallelFor(m, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double ss = 0;
      for (int64_t j = 0; j < e; ++j) ss += static_cast<double>(x[i * e + j]) * x[i * e + j];
      y[i] = static_cast<float>(ss);
    }
  });
  return absl::OkStatus();
}

absl::Status RunRope(const RopeOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("rope", "x", op.x));
  if (op.x->rank() != 3 || op.x->dim(2) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("rope: x ", op.x->Describe(), " must be [L, N, even D]"));
  }
  const int64_t l = op.x->dim(0), n = op.x->dim(1), d = op.x->dim(2);
  TV_RETURN_IF_ERROR(ExpectShape("rope", "cos", op.cos, {l, d / 2}));
  TV_RETURN_IF_ERROR(ExpectShape("rope", "sin", op.sin, {l, d / 2}));
  float* x = op.x->data<float>();
  const float* c = op.cos->data<float>();
  const float* s = op.sin->data<float>();
  ParallelFor(l, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t h = 0; h < n; ++h) {
        float* row = x + (i * n + h) * d;
        for (int64_t j = 0; j < d / 2; ++j) {
          const float re = row[2 * j], im = row[2 * j + 1];
          const float cj = c[i * (d / 2) + j], sj = s[i * (d / 2) + j];
          row[2 * j] = re * cj - im * sj;
          row[2 * j + 1] = re * sj + im * cj;
        }
      }
    }
  });
  return absl::OkStatus();
}

absl::Status RunUnary(const UnaryOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("unary", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectShape("unary", "y", op.y, op.x->shape()));
  const float* x = op.x->data<float>();
  float* y = op.y->data<float>();
  ParallelFor(op.x->numel(), 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      y[i] = op.kind == UnaryKind::kGeluTanh ? GeluTanh(x[i]) : Silu(x[i]);
    }
  });
  return absl::OkStatus();
}

absl::Status RunBinary(const BinaryOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("binary", "a", op.a));
  TV_RETURN_IF_ERROR(ExpectF32("binary", "b", op.b));
  TV_RETURN_IF_ERROR(ExpectShape("binary", "y", op.y, op.a->shape()));
  const int64_t n = op.a->numel(), nb = op.b->numel();
  if (nb == 0 || n % nb != 0) {
    return absl::InvalidArgumentError(absl::StrCat("binary: b ", op.b->Describe(), " does not tile a ",
                                                   op.a->Describe()));
  }
  const float* a = op.a->data<float>();
  const float* b = op.b->data<float>();
  float* y = op.y->data<float>();
  ParallelFor(n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      y[i] = op.kind == BinaryKind::kAdd ? a[i] + b[i % nb] : a[i] * b[i % nb];
    }
  });
  return absl::OkStatus();
}

absl::Status RunGatedAdd(const GatedAddOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("gated_add", "x", op.x));
  TV_ASSIGN_OR_RETURN(const GatedAddDims dims, CheckGatedAdd(op));
  TV_RETURN_IF_ERROR(ExpectF32("gated_add", "y", op.y));
  TV_RETURN_IF_ERROR(ExpectF32IfSet("gated_add", "gate", op.gate));
  const int64_t m = dims.m, e = dims.e, gate_stride = dims.gate_stride;
  float* x = op.x->data<float>();
  const float* y = op.y->data<float>();
  ParallelFor(m, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* g = op.gate ? op.gate->data<float>() + i * gate_stride : nullptr;
      for (int64_t j = 0; j < e; ++j) x[i * e + j] += y[i * e + j] * (g ? g[j] : 1.f);
    }
  });
  // The fused norm: on the CPU reference simply the LayerNorm of the updated x.
  if (op.norm_y != nullptr) return RunLayerNorm(FusedLayerNorm(op));
  return absl::OkStatus();
}

absl::Status RunEmbedding(const EmbeddingOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("embedding", "table", op.table));
  if (op.ids == nullptr || op.ids->dtype() != DType::kI64 || op.ids->rank() != 1) {
    return absl::InvalidArgumentError("embedding: ids must be I64 [L]");
  }
  const int64_t l = op.ids->dim(0), v = op.table->dim(0), e = op.table->dim(1);
  TV_RETURN_IF_ERROR(ExpectShape("embedding", "y", op.y, {l, e}));
  for (int64_t i = 0; i < l; ++i) {
    int64_t id = op.ids->data<int64_t>()[i];
    if (id < 0 || id >= v) {
      return absl::InvalidArgumentError(absl::StrCat("embedding: ids[", i, "] = ", id, " outside [0, ", v, ")"));
    }
    std::memcpy(op.y->data<float>() + i * e, op.table->data<float>() + id * e, e * sizeof(float));
  }
  return absl::OkStatus();
}

absl::Status RunCopy(const CopyOp& op) {
  if (op.src == nullptr || op.dst == nullptr || op.src->dtype() != op.dst->dtype()) {
    return absl::InvalidArgumentError("copy: src and dst must exist and share a dtype");
  }
  if (op.rank < 1 || op.rank > CopyOp::kMaxRank) return absl::InvalidArgumentError("copy: bad rank");
  // Bounds: the farthest element touched on each side must lie inside the tensor.
  int64_t src_hi = op.src_offset, dst_hi = op.dst_offset, count = 1;
  for (int i = 0; i < op.rank; ++i) {
    if (op.shape[i] <= 0) return absl::OkStatus();
    src_hi += (op.shape[i] - 1) * op.src_strides[i];
    dst_hi += (op.shape[i] - 1) * op.dst_strides[i];
    count *= op.shape[i];
  }
  if (op.src_offset < 0 || op.dst_offset < 0 || src_hi >= op.src->numel() || dst_hi >= op.dst->numel()) {
    return absl::InvalidArgumentError(absl::StrCat("copy: box out of bounds (src ", op.src->Describe(),
                                                   ", dst ", op.dst->Describe(), ")"));
  }
  const size_t es = DTypeSize(op.src->dtype());
  const char* s = static_cast<const char*>(op.src->raw());
  char* d = static_cast<char*>(op.dst->raw());
  const int64_t inner = op.shape[op.rank - 1];
  ParallelFor(count / inner, 256, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t rem = row, so = op.src_offset, dof = op.dst_offset;
      for (int i = op.rank - 2; i >= 0; --i) {
        int64_t idx = rem % op.shape[i];
        rem /= op.shape[i];
        so += idx * op.src_strides[i];
        dof += idx * op.dst_strides[i];
      }
      const int64_t ss = op.src_strides[op.rank - 1], ds = op.dst_strides[op.rank - 1];
      if (ss == 1 && ds == 1) {
        std::memcpy(d + dof * es, s + so * es, inner * es);
      } else {
        for (int64_t j = 0; j < inner; ++j) std::memcpy(d + (dof + j * ds) * es, s + (so + j * ss) * es, es);
      }
    }
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterBasicOps(CpuBackend& backend) {
  backend.Register<LinearOp>(&RunLinear);
  backend.Register<LayerNormOp>(&RunLayerNorm);
  backend.Register<RmsNormOp>(&RunRmsNorm);
  backend.Register<RowSumSquaresOp>(&RunRowSumSquares);
  backend.Register<RopeOp>(&RunRope);
  backend.Register<UnaryOp>(&RunUnary);
  backend.Register<BinaryOp>(&RunBinary);
  backend.Register<GatedAddOp>(&RunGatedAdd);
  backend.Register<EmbeddingOp>(&RunEmbedding);
  backend.Register<CopyOp>(&RunCopy);
}

}  // namespace turbovid::engine::cpu
