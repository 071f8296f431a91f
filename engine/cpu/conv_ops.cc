// CPU reference: direct 3-D convolution with asymmetric zero padding and strides (and the fused
// RMS_norm + SiLU input transform and residual epilogue of Conv3dOp), the Wan VAE channel RMS norm
// (L2-normalise over C · √C · γ), its statistic alone, and nearest ×2 spatial upsampling (fp32).
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/core/parallel.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
namespace {

// Output channels computed together: they share every input row load, and kCoBlock rows of
// Wo accumulators (≤ 8 × 832 floats at 480p) still sit in L1/L2.
constexpr int64_t kCoBlock = 8;

struct ConvGeom {
  int64_t cin, t, h, w;      // input (t counts x_prev's frames, then x's)
  int64_t cout, kt, kh, kw;  // kernel
  int64_t to, ho, wo;        // output
  std::array<int, 3> stride, pad_lo;
  int64_t tp = 0;     // frames from x_prev
  int64_t first = 0;  // x_prev's oldest frame (a ring)
};

// Output extent of one axis, or a negative number when the kernel does not fit.
int64_t OutExtent(int64_t in, int lo, int hi, int64_t k, int s) {
  const int64_t padded = in + lo + hi;
  if (padded < k) return -1;
  return (padded - k) / s + 1;
}

absl::StatusOr<ConvGeom> CheckConv3d(const Conv3dOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("conv3d", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectF32("conv3d", "w", op.w));
  TV_RETURN_IF_ERROR(ExpectF32("conv3d", "y", op.y));
  if (op.x->rank() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("conv3d: x ", op.x->Describe(), " is not [Cin, T, H, W]"));
  }
  if (op.w->rank() != 5 || op.w->dim(1) != op.x->dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "conv3d: w ", op.w->Describe(), " is not [Cout, ", op.x->dim(0), ", kt, kh, kw]"));
  }
  int64_t tp = 0;
  if (op.x_prev != nullptr) {
    TV_RETURN_IF_ERROR(ExpectF32("conv3d", "x_prev", op.x_prev));
    if (op.x_prev->rank() != 4 || op.x_prev->dim(0) != op.x->dim(0) ||
        op.x_prev->dim(2) != op.x->dim(2) || op.x_prev->dim(3) != op.x->dim(3)) {
      return absl::InvalidArgumentError(absl::StrCat("conv3d: x_prev ", op.x_prev->Describe(),
                                                     " is not [", op.x->dim(0), ", Tp, ",
                                                     op.x->dim(2), ", ", op.x->dim(3), "]"));
    }
    tp = op.x_prev->dim(1);
    if (op.x_prev_first < 0 || op.x_prev_first >= std::max<int64_t>(tp, 1)) {
      return absl::InvalidArgumentError(absl::StrCat("conv3d: x_prev_first ", op.x_prev_first,
                                                     " is outside x_prev ", op.x_prev->Describe()));
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (op.stride[i] < 1 || op.pad_lo[i] < 0 || op.pad_hi[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("conv3d: axis ", i, " has stride ",
                                                     op.stride[i], ", pads ", op.pad_lo[i], "/",
                                                     op.pad_hi[i]));
    }
  }
  ConvGeom g{op.x->dim(0),
             tp + op.x->dim(1),
             op.x->dim(2),
             op.x->dim(3),
             op.w->dim(0),
             op.w->dim(2),
             op.w->dim(3),
             op.w->dim(4),
             0,
             0,
             0,
             op.stride,
             op.pad_lo};
  g.tp = tp;
  g.first = op.x_prev_first;
  g.to = OutExtent(g.t, op.pad_lo[0], op.pad_hi[0], g.kt, op.stride[0]);
  g.ho = OutExtent(g.h, op.pad_lo[1], op.pad_hi[1], g.kh, op.stride[1]);
  g.wo = OutExtent(g.w, op.pad_lo[2], op.pad_hi[2], g.kw, op.stride[2]);
  if (g.to < 1 || g.ho < 1 || g.wo < 1) {
    return absl::InvalidArgumentError(absl::StrCat("conv3d: kernel ", op.w->Describe(),
                                                   " does not fit padded x ", op.x->Describe()));
  }
  TV_RETURN_IF_ERROR(ExpectShape("conv3d", "y", op.y, {g.cout, g.to, g.ho, g.wo}));
  if (op.bias != nullptr) {
    TV_RETURN_IF_ERROR(ExpectF32("conv3d", "bias", op.bias));
    TV_RETURN_IF_ERROR(ExpectShape("conv3d", "bias", op.bias, {g.cout}));
  }
  if (op.norm_gamma != nullptr)
    TV_RETURN_IF_ERROR(ExpectF32("conv3d", "norm_gamma", op.norm_gamma));
  if (op.residual != nullptr) TV_RETURN_IF_ERROR(ExpectF32("conv3d", "residual", op.residual));
  TV_RETURN_IF_ERROR(CheckConv3dFusion(op, g.cin, g.t - tp, g.h, g.w, tp, op.y->shape()));
  return g;
}

// Range [lo, hi) of output columns whose input column wo·s + dw − pad lies inside [0, w).
void ValidColumns(const ConvGeom& g, int64_t dw, int64_t* lo, int64_t* hi) {
  const int64_t s = g.stride[2], off = dw - g.pad_lo[2];
  *lo = off >= 0 ? 0 : (-off + s - 1) / s;
  *hi = g.w - 1 - off < 0 ? 0 : std::min(g.wo, (g.w - 1 - off) / s + 1);
}

// One output row y[co0:co0+nb, to, ho, :]: accumulates every (ci, dt, dh, dw) tap as an axpy over
// the output width, so the innermost loop is a contiguous (stride-1) vector operation.
void ConvRow(const ConvGeom& g, const float* x_prev, const float* x, const float* w,
             const float* bias, const float* residual, float* y, int64_t co0, int64_t nb,
             int64_t to, int64_t ho, float* acc) {
  for (int64_t j = 0; j < nb; ++j)
    std::fill(acc + j * g.wo, acc + (j + 1) * g.wo, bias ? bias[co0 + j] : 0.f);
  const int64_t taps = g.kt * g.kh * g.kw;
  for (int64_t ci = 0; ci < g.cin; ++ci) {
    for (int64_t dt = 0; dt < g.kt; ++dt) {
      const int64_t ti = to * g.stride[0] + dt - g.pad_lo[0];
      if (ti < 0 || ti >= g.t) continue;
      for (int64_t dh = 0; dh < g.kh; ++dh) {
        const int64_t hi = ho * g.stride[1] + dh - g.pad_lo[1];
        if (hi < 0 || hi >= g.h) continue;
        const float* xrow = ti < g.tp ? x_prev + ((ci * g.tp + (ti + g.first) % g.tp) * g.h + hi) * g.w
                                      : x + ((ci * (g.t - g.tp) + ti - g.tp) * g.h + hi) * g.w;
        for (int64_t dw = 0; dw < g.kw; ++dw) {
          int64_t lo, hi_col;
          ValidColumns(g, dw, &lo, &hi_col);
          const int64_t off = dw - g.pad_lo[2];
          const int64_t tap = (dt * g.kh + dh) * g.kw + dw;
          for (int64_t j = 0; j < nb; ++j) {
            const float wv = w[((co0 + j) * g.cin + ci) * taps + tap];
            float* a = acc + j * g.wo;
            if (g.stride[2] == 1) {
              const float* xs = xrow + off;
#pragma omp simd
              for (int64_t o = lo; o < hi_col; ++o) a[o] += wv * xs[o];
            } else {
              const int64_t s = g.stride[2];
              for (int64_t o = lo; o < hi_col; ++o) a[o] += wv * xrow[o * s + off];
            }
          }
        }
      }
    }
  }
  for (int64_t j = 0; j < nb; ++j) {
    const int64_t row = (((co0 + j) * g.to + to) * g.ho + ho) * g.wo;
    if (residual != nullptr) {  // read before y is written: residual may be y
      for (int64_t o = 0; o < g.wo; ++o) acc[j * g.wo + o] += residual[row + o];
    }
    std::copy(acc + j * g.wo, acc + (j + 1) * g.wo, y + row);
  }
}

// The fused input transform of Conv3dOp applied to a whole input tensor [C, T, H, W]:
// v · inv_rms[t, h, w] · gamma[c] (with gamma), then SiLU (with silu).
Tensor TransformInput(const Tensor& x, const float* gamma, const Tensor* inv_rms, bool silu) {
  Tensor out = Tensor::Zeros(DType::kF32, x.shape());
  const int64_t c = x.dim(0), per = x.numel() / std::max<int64_t>(c, 1);
  const float* src = x.data<float>();
  const float* inv = inv_rms != nullptr ? inv_rms->data<float>() : nullptr;
  float* dst = out.data<float>();
  ParallelFor(c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t ch = begin; ch < end; ++ch) {
      const float* s = src + ch * per;
      float* d = dst + ch * per;
      const float gc = gamma != nullptr ? gamma[ch] : 1.f;
      for (int64_t i = 0; i < per; ++i) {
        float v = inv != nullptr ? s[i] * inv[i] * gc : s[i];
        if (silu) v = v / (1.f + std::exp(-v));
        d[i] = v;
      }
    }
  });
  return out;
}

absl::Status RunConv3d(const Conv3dOp& op) {
  TV_ASSIGN_OR_RETURN(ConvGeom g, CheckConv3d(op));
  const float* x = op.x->data<float>();
  const float* x_prev = op.x_prev != nullptr ? op.x_prev->data<float>() : nullptr;
  Tensor xt, xpt;  // the transformed inputs (fused RMS_norm / SiLU), same math as the GPU's
  if (op.fused_input()) {
    const float* gamma = op.norm_gamma != nullptr ? op.norm_gamma->data<float>() : nullptr;
    xt = TransformInput(*op.x, gamma, op.norm_inv_rms, op.silu);
    x = xt.data<float>();
    if (op.x_prev != nullptr) {
      xpt = TransformInput(*op.x_prev, gamma, op.norm_inv_rms_prev, op.silu);
      x_prev = xpt.data<float>();
    }
  }
  const float* w = op.w->data<float>();
  const float* bias = op.bias ? op.bias->data<float>() : nullptr;
  const float* residual = op.residual != nullptr ? op.residual->data<float>() : nullptr;
  float* y = op.y->data<float>();
  const int64_t blocks = (g.cout + kCoBlock - 1) / kCoBlock;
  ParallelFor(blocks * g.to * g.ho, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(kCoBlock * g.wo);
    for (int64_t item = begin; item < end; ++item) {
      // Output rows vary fastest so neighbouring items reuse the same weight block.
      const int64_t ho = item % g.ho, to = (item / g.ho) % g.to, blk = item / (g.ho * g.to);
      const int64_t co0 = blk * kCoBlock, nb = std::min(kCoBlock, g.cout - co0);
      ConvRow(g, x_prev, x, w, bias, residual, y, co0, nb, to, ho, acc.data());
    }
  });
  return absl::OkStatus();
}

// y may alias x: every position's norm is taken before any of its channels is written.
absl::Status RunChannelRmsNorm(const ChannelRmsNormOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("channel_rms_norm", "x", op.x));
  if (op.x->rank() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel_rms_norm: x ", op.x->Describe(), " is not [C, P]"));
  }
  const int64_t c = op.x->dim(0), p = op.x->dim(1);
  TV_RETURN_IF_ERROR(ExpectF32("channel_rms_norm", "gamma", op.gamma));
  TV_RETURN_IF_ERROR(ExpectShape("channel_rms_norm", "gamma", op.gamma, {c}));
  TV_RETURN_IF_ERROR(ExpectF32("channel_rms_norm", "y", op.y));
  TV_RETURN_IF_ERROR(ExpectShape("channel_rms_norm", "y", op.y, {c, p}));
  const float* x = op.x->data<float>();
  const float* gamma = op.gamma->data<float>();
  float* y = op.y->data<float>();
  const float scale = std::sqrt(static_cast<float>(c));
  constexpr int64_t kTile = 512;  // positions per work item; the channel loop strides by P
  ParallelFor((p + kTile - 1) / kTile, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> sumsq(kTile);
    std::vector<float> norm(kTile);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t p0 = tile * kTile, n = std::min(kTile, p - p0);
      std::fill(sumsq.begin(), sumsq.begin() + n, 0.0);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* xr = x + ch * p + p0;
        for (int64_t i = 0; i < n; ++i) sumsq[i] += static_cast<double>(xr[i]) * xr[i];
      }
      // F.normalize semantics: divide by max(‖x‖₂, 1e-12).
      for (int64_t i = 0; i < n; ++i)
        norm[i] = std::max(static_cast<float>(std::sqrt(sumsq[i])), 1e-12f);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* xr = x + ch * p + p0;
        float* yr = y + ch * p + p0;
        const float gs = gamma[ch];
        for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] / norm[i] * scale * gs;
        if (op.silu) {
          for (int64_t i = 0; i < n; ++i) yr[i] = yr[i] / (1.f + std::exp(-yr[i]));
        }
      }
    }
  });
  return absl::OkStatus();
}

// inv_rms[p] = √C / max(‖x[:, p]‖₂, 1e-12) (sums in float64, as RunChannelRmsNorm).
absl::Status RunChannelRmsStats(const ChannelRmsStatsOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("channel_rms_stats", "x", op.x));
  TV_ASSIGN_OR_RETURN(const int64_t p, CheckChannelRmsStats(op));
  const int64_t c = op.x->dim(0);
  const float* x = op.x->data<float>();
  float* inv = op.inv_rms->data<float>();
  const float scale = std::sqrt(static_cast<float>(c));
  constexpr int64_t kTile = 512;
  ParallelFor((p + kTile - 1) / kTile, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> sumsq(kTile);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t p0 = tile * kTile, n = std::min(kTile, p - p0);
      std::fill(sumsq.begin(), sumsq.begin() + n, 0.0);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* xr = x + ch * p + p0;
        for (int64_t i = 0; i < n; ++i) sumsq[i] += static_cast<double>(xr[i]) * xr[i];
      }
      for (int64_t i = 0; i < n; ++i) {
        inv[p0 + i] = scale / std::max(static_cast<float>(std::sqrt(sumsq[i])), 1e-12f);
      }
    }
  });
  return absl::OkStatus();
}

absl::Status RunUpsample2x(const Upsample2xOp& op) {
  TV_RETURN_IF_ERROR(ExpectF32("upsample2x", "x", op.x));
  if (op.x->rank() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("upsample2x: x ", op.x->Describe(), " is not [C, T, H, W]"));
  }
  const int64_t rows = op.x->dim(0) * op.x->dim(1), h = op.x->dim(2), w = op.x->dim(3);
  TV_RETURN_IF_ERROR(ExpectF32("upsample2x", "y", op.y));
  TV_RETURN_IF_ERROR(
      ExpectShape("upsample2x", "y", op.y, {op.x->dim(0), op.x->dim(1), 2 * h, 2 * w}));
  const float* x = op.x->data<float>();
  float* y = op.y->data<float>();
  ParallelFor(rows * h, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * w;
      // Input row r = (plane, i) feeds output rows 2i and 2i+1 of the same plane.
      float* y0 = y + (r / h * 2 * h + 2 * (r % h)) * 2 * w;
      for (int64_t i = 0; i < w; ++i) y0[2 * i] = y0[2 * i + 1] = xr[i];
      std::copy(y0, y0 + 2 * w, y0 + 2 * w);
    }
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterConvOps(CpuBackend& backend) {
  backend.Register<Conv3dOp>(&RunConv3d);
  backend.Register<ChannelRmsNormOp>(&RunChannelRmsNorm);
  backend.Register<Upsample2xOp>(&RunUpsample2x);
  backend.Register<ChannelRmsStatsOp>(&RunChannelRmsStats);
}

}  // namespace turbovid::engine::cpu
