// Activation plan of the Wan2.1 VAE: engine/models/vae.cc's streamed Decode / Encode replayed over
// shapes, with the same layer list (LoadEncoder / LoadDecoder), per-conv history caches (live for
// the whole call), frame-by-frame stages and variable lifetimes; the fused form (RMS_norm
// statistics and their caches, residual sums written over the block input) where VaeFused says.
#include <algorithm>
#include <array>
#include <variant>
#include <vector>

#include "engine/pipeline/activation_plan_internal.h"

namespace turbovid::engine::plan {
namespace {

struct ConvS {
  int64_t cout = 0, cin = 0, kt = 1, k = 1;
  int pad = 0;
  int slot = -1;  // history cache when kt > 1
};
struct ResBlockS {
  ConvS conv1, conv2;
  bool has_shortcut = false;
  ConvS shortcut;
};
struct AttnS {
  ConvS qkv, proj;
};
enum class Mode { kUp2d, kUp3d, kDown2d, kDown3d };
struct ResampleS {
  Mode mode = Mode::kUp2d;
  ConvS spatial, time;
  int slot = -1;
};
using LayerS = std::variant<ResBlockS, ResampleS>;
struct HalfS {
  ConvS conv_in;
  std::vector<LayerS> layers;
  ResBlockS mid0, mid2;
  AttnS attn;
  ConvS head_conv;
  int num_slots = 0;
  size_t temporal_begin = 0, temporal_end = 0;
};

// The loader's shapes and slot numbering (vae.cc Loader).
class Shapes {
 public:
  int slots() const { return slots_; }
  ConvS Conv3(int64_t cout, int64_t cin, int64_t kt, int64_t k) {
    ConvS c{cout, cin, kt, k, static_cast<int>(k / 2), -1};
    if (kt > 1) c.slot = slots_++;
    return c;
  }
  ConvS Conv2(int64_t cout, int64_t cin, int64_t k) { return Conv3(cout, cin, 1, k); }
  ResBlockS ResBlock(int64_t cin, int64_t cout) {
    ResBlockS r;
    r.conv1 = Conv3(cout, cin, 3, 3);
    r.conv2 = Conv3(cout, cout, 3, 3);
    r.has_shortcut = cin != cout;
    if (r.has_shortcut) r.shortcut = Conv3(cout, cin, 1, 1);
    return r;
  }
  AttnS Attn(int64_t c) { return AttnS{Conv2(3 * c, c, 1), Conv2(c, c, 1)}; }
  ResampleS Resample(int64_t c, Mode mode) {
    ResampleS r;
    r.mode = mode;
    const bool up = mode == Mode::kUp2d || mode == Mode::kUp3d;
    r.spatial = Conv2(up ? c / 2 : c, c, 3);
    if (!up) r.spatial.pad = 0;
    if (mode == Mode::kUp3d || mode == Mode::kDown3d) {
      r.time = Conv3(up ? 2 * c : c, c, 3, 1);
      r.time.slot = -1;
      r.slot = slots_++;
    }
    return r;
  }

 private:
  int slots_ = 0;
};

void MarkTemporalRange(HalfS& h) {
  h.temporal_begin = h.layers.size();
  h.temporal_end = 0;
  for (size_t i = 0; i < h.layers.size(); ++i) {
    const auto* r = std::get_if<ResampleS>(&h.layers[i]);
    if (r == nullptr || (r->mode != Mode::kUp3d && r->mode != Mode::kDown3d)) continue;
    h.temporal_begin = std::min(h.temporal_begin, i);
    h.temporal_end = i + 1;
  }
}

HalfS EncoderShapes(const VaeConfig& cfg) {
  Shapes s;
  HalfS h;
  std::vector<int64_t> dims{cfg.dim};
  for (int m : cfg.dim_mult) dims.push_back(int64_t{cfg.dim} * m);
  h.conv_in = s.Conv3(dims[0], 3, 3, 3);
  const size_t stages = cfg.dim_mult.size();
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = dims[i];
    for (int r = 0; r < cfg.num_res_blocks; ++r) {
      h.layers.emplace_back(s.ResBlock(in, dims[i + 1]));
      in = dims[i + 1];
    }
    if (i + 1 == stages) break;
    const bool t_down = i < cfg.temporal_downsample.size() && cfg.temporal_downsample[i];
    h.layers.emplace_back(s.Resample(in, t_down ? Mode::kDown3d : Mode::kDown2d));
  }
  const int64_t c = dims.back();
  h.mid0 = s.ResBlock(c, c);
  h.attn = s.Attn(c);
  h.mid2 = s.ResBlock(c, c);
  h.head_conv = s.Conv3(2 * int64_t{cfg.z_dim}, c, 3, 3);
  h.num_slots = s.slots();
  MarkTemporalRange(h);
  return h;
}

HalfS DecoderShapes(const VaeConfig& cfg) {
  Shapes s;
  HalfS h;
  std::vector<int64_t> dims{int64_t{cfg.dim} * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it)
    dims.push_back(int64_t{cfg.dim} * *it);
  h.conv_in = s.Conv3(dims[0], cfg.z_dim, 3, 3);
  h.mid0 = s.ResBlock(dims[0], dims[0]);
  h.attn = s.Attn(dims[0]);
  h.mid2 = s.ResBlock(dims[0], dims[0]);
  const size_t stages = cfg.dim_mult.size();
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = i == 0 ? dims[0] : dims[i] / 2;
    for (int r = 0; r <= cfg.num_res_blocks; ++r) {
      h.layers.emplace_back(s.ResBlock(in, dims[i + 1]));
      in = dims[i + 1];
    }
    if (i + 1 == stages) break;
    const size_t td = cfg.temporal_downsample.size();
    const bool t_up = i < td && cfg.temporal_downsample[td - 1 - i];
    h.layers.emplace_back(s.Resample(in, t_up ? Mode::kUp3d : Mode::kUp2d));
  }
  h.head_conv = s.Conv3(3, dims.back(), 3, 3);
  h.num_slots = s.slots();
  MarkTemporalRange(h);
  return h;
}

using I3 = std::array<int, 3>;

// vae.cc Runner over shapes, with its stream state.
class Runner {
 public:
  Runner(const Sim& sim, int slots)
      : sim_(sim),
        cache_(slots),
        inv_cache_(slots),
        started_(slots, false),
        fused_(VaeFused(sim.job().cuda_scratch ? Device::kCuda : Device::kCpu)) {}

  Buf Conv(const ConvS& c, const Buf& x, I3 stride, I3 lo, I3 hi, int64_t t_prev = 0) {
    auto out = [](int64_t n, int l, int h, int64_t k, int s) { return (n + l + h - k) / s + 1; };
    return sim_.Empty({c.cout, out(t_prev + x.dim(1), lo[0], hi[0], c.kt, stride[0]),
                       out(x.dim(2), lo[1], hi[1], c.k, stride[1]),
                       out(x.dim(3), lo[2], hi[2], c.k, stride[2])});
  }

  // norm: the fused conv reads x through RMS_norm (F32 statistics [T, H, W], cached with the
  // frames); residual: the output is written over it (no allocation).
  Buf Causal(const ConvS& c, Buf x, bool norm = false, const Buf* residual = nullptr) {
    const int p = c.pad;
    Buf inv;
    if (norm) inv = sim_.Alloc({x.dim(1), x.dim(2), x.dim(3)}, 4);
    if (c.slot < 0) return residual ? *residual : Conv(c, x, {1, 1, 1}, {0, p, p}, {0, p, p});
    const int64_t hist = c.kt - 1;
    Buf& cache = cache_[c.slot];
    if (!cache.defined()) cache = sim_.Empty({x.dim(0), hist, x.dim(2), x.dim(3)});
    if (norm && !inv_cache_[c.slot].defined()) {
      inv_cache_[c.slot] = sim_.Alloc({hist, x.dim(2), x.dim(3)}, 4);
    }
    // The conv reads the cache and x in place; the new cache is their last hist frames.
    Buf y = residual ? *residual : Conv(c, x, {1, 1, 1}, {0, p, p}, {0, p, p}, hist);
    // Counted for every causal conv (conservative): a CUDA conv path other than sm90 (RTX 5090,
    // narrow heads) concatenates cache ++ x (and their statistics) into scratch
    // (engine/cuda/cuda_conv_ops.cc).
    const int64_t cat = (hist + x.dim(1)) * x.dim(2) * x.dim(3);
    const int64_t cat_x = x.dim(0) * cat * static_cast<int64_t>(DTypeSize(sim_.job().dtype));
    if (norm) {
      sim_.Scratch({cat_x, cat * 4});
    } else {
      sim_.Scratch({cat_x});
    }
    const int64_t t = x.dim(1);
    if (t >= hist) {
      cache = sim_.Empty({x.dim(0), hist, x.dim(2), x.dim(3)});
      if (norm) inv_cache_[c.slot] = inv;  // a view of the last frames keeps all of inv
    } else if (t > 1) {
      for (int64_t j = 0; j < t; ++j) Buf frame = sim_.Empty({x.dim(0), 1, x.dim(2), x.dim(3)});
    }  // else: x is written over the ring's oldest frame in place
    return y;
  }

  Buf Norm(const Buf& x) { return sim_.Empty(x.shape()); }

  Buf ResBlock(const ResBlockS& r, Buf x) {
    if (fused_) {
      Buf h = Causal(r.conv1, x, true);
      if (r.has_shortcut) x = Causal(r.shortcut, x);
      return Causal(r.conv2, std::move(h), true, &x);
    }
    Buf h = Norm(x);
    h = Causal(r.conv1, std::move(h));
    h = Norm(h);
    h = Causal(r.conv2, std::move(h));
    if (r.has_shortcut) x = Causal(r.shortcut, x);
    return h;
  }

  Buf Attention(const AttnS& a, const Buf& x) {
    const int64_t c = x.dim(0), hw = x.dim(2) * x.dim(3);
    Buf y = sim_.Empty(x.shape());
    for (int64_t t = 0; t < x.dim(1); ++t) {
      Buf f = sim_.Empty({c, 1, x.dim(2), x.dim(3)});
      Buf qkv;
      if (fused_) {
        Buf inv = sim_.Alloc({1, x.dim(2), x.dim(3)}, 4);
        qkv = Conv(a.qkv, f, {1, 1, 1}, {0, 0, 0}, {0, 0, 0});
      } else {
        Buf n = Norm(f);
        qkv = Conv(a.qkv, n, {1, 1, 1}, {0, 0, 0}, {0, 0, 0});
      }
      Buf tok = sim_.Empty({3, hw, c});
      Buf o = sim_.Empty({hw, 1, c});
      sim_.AttentionScratch(hw, hw, 1, c, c, false);
      Buf oc = sim_.Empty({c, hw});
      Buf pr =
          Conv(a.proj, oc.Reshape({c, 1, x.dim(2), x.dim(3)}), {1, 1, 1}, {0, 0, 0}, {0, 0, 0});
    }
    return y;
  }

  Buf Interleave(const Buf& x) {
    return sim_.Empty({x.dim(0) / 2, 2 * x.dim(1), x.dim(2), x.dim(3)});
  }

  Buf UpsampleFrames(const ConvS& conv, const Buf& x) {
    if (x.dim(1) == 1) {  // x read in place, the conv's output returned
      Buf u = sim_.Empty({x.dim(0), 1, 2 * x.dim(2), 2 * x.dim(3)});
      return Conv(conv, u, {1, 1, 1}, {0, 1, 1}, {0, 1, 1});
    }
    Buf y = sim_.Empty({conv.cout, x.dim(1), 2 * x.dim(2), 2 * x.dim(3)});
    for (int64_t t = 0; t < x.dim(1); ++t) {
      Buf f = sim_.Empty({x.dim(0), 1, x.dim(2), x.dim(3)});
      Buf u = sim_.Empty({x.dim(0), 1, 2 * x.dim(2), 2 * x.dim(3)});
      Buf c = Conv(conv, u, {1, 1, 1}, {0, 1, 1}, {0, 1, 1});
    }
    return y;
  }

  Buf Resample(const ResampleS& r, Buf x) {
    switch (r.mode) {
      case Mode::kUp2d:
        return UpsampleFrames(r.spatial, x);
      case Mode::kUp3d:
        if (started_[r.slot]) {
          ConvS time = r.time;
          time.slot = r.slot;
          Buf y = Causal(time, std::move(x));
          x = Interleave(y);
        }
        started_[r.slot] = true;
        return UpsampleFrames(r.spatial, x);
      case Mode::kDown2d:
        return Conv(r.spatial, x, {1, 2, 2}, {0, 0, 0}, {0, 1, 1});
      case Mode::kDown3d: {
        Buf s = Conv(r.spatial, x, {1, 2, 2}, {0, 0, 0}, {0, 1, 1});
        Buf last = sim_.Empty({s.dim(0), 1, s.dim(2), s.dim(3)});
        Buf out = s;
        if (started_[r.slot]) {
          const Buf& prev = cache_[r.slot];
          Buf in = sim_.Empty({s.dim(0), prev.dim(1) + s.dim(1), s.dim(2), s.dim(3)});
          out = Conv(r.time, in, {2, 1, 1}, {0, 0, 0}, {0, 0, 0});
        }
        cache_[r.slot] = last;
        started_[r.slot] = true;
        return out;
      }
    }
    return Buf();
  }

  Buf RunLayers(const std::vector<LayerS>& layers, size_t begin, size_t end, Buf x) {
    for (size_t i = begin; i < end; ++i) {
      if (const auto* rb = std::get_if<ResBlockS>(&layers[i])) {
        x = ResBlock(*rb, std::move(x));
      } else {
        x = Resample(std::get<ResampleS>(layers[i]), std::move(x));
      }
    }
    return x;
  }

  template <typename Fn>
  Buf PerFrame(const Buf& x, Fn fn) {
    Buf out;
    for (int64_t t = 0; t < x.dim(1); ++t) {
      Buf f = sim_.Empty({x.dim(0), 1, x.dim(2), x.dim(3)});
      Buf y = fn(std::move(f));
      if (!out.defined()) {
        Shape shape = y.shape();
        shape[1] *= x.dim(1);
        out = sim_.Empty(shape);
      }
    }
    return out;
  }

  Buf RunMiddle(const HalfS& h, Buf x) {
    x = ResBlock(h.mid0, std::move(x));
    x = Attention(h.attn, x);
    return ResBlock(h.mid2, std::move(x));
  }

  Buf RunHead(const HalfS& h, const Buf& x) {
    if (fused_) return Causal(h.head_conv, x, true);
    Buf n = Norm(x);
    return Causal(h.head_conv, std::move(n));
  }

 private:
  const Sim& sim_;
  std::vector<Buf> cache_;
  std::vector<Buf> inv_cache_;  // fused: the RMS_norm statistics of the cached frames
  std::vector<bool> started_;
  bool fused_;
};

}  // namespace

void ReplayVaeDecode(const Sim& sim, const VaeConfig& config, int64_t t, int64_t h, int64_t w) {
  const HalfS d = DecoderShapes(config);
  const int64_t z = config.z_dim;
  Runner run(sim, d.num_slots);
  Buf x = sim.Empty({z, t, h, w});  // conv2 on the uploaded latent
  Buf pending;                      // the previous chunk's frames while their download is in flight
  for (int64_t i = 0; i < t; ++i) {
    Buf zi = sim.Empty({z, 1, h, w});
    Buf frames;
    {  // DecodeChunk
      Buf y = run.Causal(d.conv_in, zi);
      y = run.RunMiddle(d, std::move(y));
      y = run.RunLayers(d.layers, 0, d.temporal_end, std::move(y));
      frames = run.PerFrame(y, [&](Buf f) {
        f = run.RunLayers(d.layers, d.temporal_end, d.layers.size(), std::move(f));
        return run.RunHead(d, f);
      });
    }
    // A device backend's asynchronous download (Backend::DownloadAsync) holds chunk i's frames
    // until they are collected after chunk i+1 is queued; the CPU backend copies at once.
    pending = sim.job().cuda_scratch ? frames : Buf();
  }
}

void ReplayVaeEncode(const Sim& sim, const VaeConfig& config, int64_t frames, int64_t height,
                     int64_t width) {
  const HalfS e = EncoderShapes(config);
  const int64_t z = config.z_dim, lt = 1 + (frames - 1) / 4;
  const ConvS conv1{2 * z, 2 * z, 1, 1, 0, -1};
  Runner run(sim, e.num_slots);
  for (int64_t i = 0; i < lt; ++i) {
    Buf chunk = sim.Empty({3, i == 0 ? 1 : 4, height, width});  // narrowed from the upload
    // EncodeChunk, then conv1, μ narrowed and downloaded.
    Buf x = run.PerFrame(chunk, [&](Buf f) {
      f = run.Causal(e.conv_in, std::move(f));
      return run.RunLayers(e.layers, 0, e.temporal_begin, std::move(f));
    });
    x = run.RunLayers(e.layers, e.temporal_begin, e.layers.size(), std::move(x));
    x = run.RunMiddle(e, std::move(x));
    Buf out = run.RunHead(e, x);
    x = Buf();  // EncodeChunk's x is gone once it returns
    out = run.Conv(conv1, out, {1, 1, 1}, {0, 0, 0}, {0, 0, 0});
    Buf mu = sim.Empty({z, out.dim(1), out.dim(2), out.dim(3)});
  }
}

}  // namespace turbovid::engine::plan
