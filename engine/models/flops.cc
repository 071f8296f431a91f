// Analytic FLOP counts (see flops.h); only matrix products and convolutions are counted.
#include "engine/models/flops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace turbovid::engine {
namespace {

// 2·M·N·K.
double Gemm(double m, double n, double k) { return 2.0 * m * n * k; }

// A convolution producing `out_positions` outputs of `cout` channels from `cin`·`taps` inputs each.
double Conv(double cin, double cout, double taps, double out_positions) {
  return 2.0 * cin * cout * taps * out_positions;
}

}  // namespace

int64_t SlaSelectedBlocks(int64_t n_k, float topk) {
  // Upstream multiplies by the Python float the user typed: the shortest decimal that reads back
  // as `topk` (0.1f·n_k in float arithmetic could land above an integer the double stays below).
  double t = topk;
  for (int digits = 1; digits <= 9; ++digits) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.*g", digits, static_cast<double>(topk));
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == topk) {
      t = d;
      break;
    }
  }
  return std::clamp<int64_t>(static_cast<int64_t>(std::floor(t * static_cast<double>(n_k))), 0,
                             n_k);
}

DitFlops DitForwardFlops(const DitConfig& c, int64_t latent_frames, int64_t latent_height,
                         int64_t latent_width, const SlaShape* sla) {
  DitFlops f;
  const double tokens = static_cast<double>(latent_frames) * (latent_height / c.patch_size[1]) *
                        (latent_width / c.patch_size[2]);
  const double d = c.dim, ffn = c.ffn_dim, text = c.text_len;
  const double heads = c.num_heads, hd = c.head_dim();
  const double layers = c.num_layers;
  const double patch = double{1.0} * c.patch_size[0] * c.patch_size[1] * c.patch_size[2];

  // Per block: self q/k/v/o, cross q/o on the tokens, cross k/v on the text rows, the FFN.
  const double block_linear = Gemm(tokens, d, d) * 4 + Gemm(tokens, d, d) * 2 +
                              Gemm(text, d, d) * 2 + Gemm(tokens, ffn, d) + Gemm(tokens, d, ffn);
  const double embed = Gemm(tokens, d, c.in_dim * patch) + Gemm(text, d, c.text_dim) +
                       Gemm(text, d, d) + Gemm(1, d, c.freq_dim) + Gemm(1, d, d) +
                       Gemm(1, 6 * d, d) + Gemm(tokens, c.out_dim * patch, d);
  f.linear = block_linear * layers + embed;
  f.cross_attention = 4.0 * tokens * text * hd * heads * layers;
  f.self_attention_dense = 4.0 * tokens * tokens * hd * heads * layers;
  if (sla == nullptr) {
    f.self_attention = f.self_attention_dense;
  } else {
    const auto n = static_cast<int64_t>(tokens);
    const int64_t nq = (n + sla->block_q - 1) / sla->block_q;
    const int64_t nk = (n + sla->block_k - 1) / sla->block_k;
    const int64_t ksel = SlaSelectedBlocks(nk, sla->topk);
    const double keys = std::min<double>(tokens, static_cast<double>(ksel) * sla->block_k);
    f.sla_sparse = 4.0 * tokens * keys * hd * heads * layers;
    // φ(K)ᵀV, φ(Q)·KV, φ(Q)·Σφ(K), proj_l: per head.
    f.sla_linear =
        (Gemm(hd, hd, tokens) + Gemm(tokens, hd, hd) + Gemm(tokens, 1, hd) + Gemm(tokens, hd, hd)) *
        heads * layers;
    f.sla_select = Gemm(static_cast<double>(nq), static_cast<double>(nk), hd) * heads * layers;
    f.self_attention = f.sla_sparse + f.sla_linear + f.sla_select;
  }
  f.blocks_only = block_linear * layers + f.self_attention + f.cross_attention;
  return f;
}

double T5EncodeFlops(const T5Config& c, int64_t tokens) {
  const double l = static_cast<double>(tokens);
  const double per_layer = Gemm(l, c.dim_attn, c.dim) * 3 + Gemm(l, c.dim, c.dim_attn) +
                           Gemm(l, c.dim_ffn, c.dim) * 2 + Gemm(l, c.dim, c.dim_ffn) +
                           4.0 * l * l * c.dim_attn;
  return per_layer * c.num_layers;
}

double VaeDecodeFlops(const VaeConfig& c, int64_t latent_frames, int64_t latent_height,
                      int64_t latent_width) {
  double t = static_cast<double>(latent_frames);
  double h = static_cast<double>(latent_height), w = static_cast<double>(latent_width);
  const size_t stages = c.dim_mult.size();
  // Decoder widths: dims[0] = dim·mult.back(), then the multipliers reversed
  // (docs/model-math.md §5.5).
  std::vector<double> dims = {double{1.0} * c.dim * c.dim_mult.back()};
  for (size_t i = stages; i-- > 0;) dims.push_back(double{1.0} * c.dim * c.dim_mult[i]);
  auto res_block = [&](double in, double out) {
    double f = Conv(in, out, 27, t * h * w) + Conv(out, out, 27, t * h * w);
    if (in != out) f += Conv(in, out, 1, t * h * w);
    return f;
  };
  const double z = c.z_dim;
  double f = Conv(z, z, 1, t * h * w) + Conv(z, dims[0], 27, t * h * w);
  // Middle: two residual blocks around a single-head attention over each frame's H·W positions.
  const double ch = dims[0], hw = h * w;
  f += 2 * res_block(ch, ch);
  f += t * (Gemm(hw, 3 * ch, ch) + 2 * Gemm(hw, hw, ch) + Gemm(hw, ch, ch));
  for (size_t i = 0; i < stages; ++i) {
    // Every Resample of the 2.1 decoder halves channels, so stages 1..3 start at half width.
    double in = (i >= 1 && i <= 3) ? dims[i] / 2 : dims[i];
    for (int r = 0; r < c.num_res_blocks + 1; ++r, in = dims[i + 1])
      f += res_block(in, dims[i + 1]);
    if (i + 1 == stages) break;
    const double cs = dims[i + 1];
    const bool temporal = c.temporal_downsample[stages - 2 - i];
    if (temporal) {
      // time_conv (3,1,1) C → 2C over every frame but the first; frames double (minus one).
      f += Conv(cs, 2 * cs, 3, (t - 1) * h * w);
      t = 2 * t - 1;
    }
    h *= 2;
    w *= 2;
    f += Conv(cs, cs / 2, 9, t * h * w);
  }
  f += Conv(dims.back(), 3, 27, t * h * w);
  return f;
}

}  // namespace turbovid::engine
