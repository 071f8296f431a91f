// Wan2.1 VAE (docs/model-math.md §5) over the Backend ops, streamed chunk by chunk with a per-conv
// cache. Decode runs one latent frame at a time, encode frame 0 then chunks of 4; activations stay
// bounded by one chunk (docs/model-math.md §5.4: equal to the whole-sequence form). ~640 lines: the
// weight structs, loader and stream runner are private to this file and would otherwise need a
// shared header.
#include "engine/models/vae.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/comm/parallel.h"
#include "engine/core/ops.h"
#include "engine/core/phase_profile.h"

namespace turbovid::engine {
namespace {

// Official Wan2.1 latent statistics (docs/model-math.md §5.2).
constexpr float kOfficialMean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                     -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                     -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
constexpr float kOfficialStd[16] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                                    2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                                    1.6382f, 1.1253f, 2.8251f, 1.9160f};

// One convolution as a 3-D kernel; 2-D convs are stored with kt = 1.
struct ConvW {
  Tensor w;       // [Cout, Cin, kt, kh, kw]
  Tensor b;       // [Cout]
  int pad = 0;    // spatial padding each side (causal convs also pad kt−1 frames in front)
  int slot = -1;  // stream cache slot when kt > 1
};

struct ResBlockW {
  Tensor gamma1, gamma2;  // [Cin], [Cout]
  ConvW conv1, conv2;
  bool has_shortcut = false;
  ConvW shortcut;  // 1x1x1, only when Cin != Cout
};

struct AttnW {
  Tensor gamma;  // [C]
  ConvW qkv;     // [3C, C, 1, 1, 1], channels [q | k | v]
  ConvW proj;    // [C, C, 1, 1, 1]
};

enum class ResampleMode { kUp2d, kUp3d, kDown2d, kDown3d };
struct ResampleW {
  ResampleMode mode = ResampleMode::kUp2d;
  ConvW spatial;  // 3x3 (kt = 1)
  ConvW time;     // (3,1,1), 3d modes only
  int slot = -1;  // stream state of the temporal step
};

using LayerW = std::variant<ResBlockW, ResampleW>;

// The encoder or the decoder: entry conv, stage layers, middle, head.
struct HalfW {
  ConvW conv_in;
  std::vector<LayerW> layers;  // downsamples.* / upsamples.*
  ResBlockW mid0, mid2;
  AttnW attn;
  Tensor head_gamma;  // [C]
  ConvW head_conv;
  int num_slots = 0;
  size_t temporal_begin = 0;  // index of the first temporal resample in `layers` (or size)
  size_t temporal_end = 0;    // one past the last temporal resample (or 0)
};

// Records where the temporal resamples sit in `h.layers`.
void MarkTemporalRange(HalfW& h) {
  h.temporal_begin = h.layers.size();
  h.temporal_end = 0;
  for (size_t i = 0; i < h.layers.size(); ++i) {
    const auto* r = std::get_if<ResampleW>(&h.layers[i]);
    if (r == nullptr || (r->mode != ResampleMode::kUp3d && r->mode != ResampleMode::kDown3d))
      continue;
    h.temporal_begin = std::min(h.temporal_begin, i);
    h.temporal_end = i + 1;
  }
}

// Takes tensors from the weight set in the backend's compute dtype, assigning cache slots.
class Loader {
 public:
  Loader(io::WeightSet& ws, Backend& be) : ws_(ws), be_(be), dtype_(be.compute_dtype()) {}
  int slots() const { return slots_; }
  int NewSlot() { return slots_++; }

  absl::StatusOr<ConvW> Conv3(const std::string& name, int64_t cout, int64_t cin, int64_t kt,
                              int64_t k) {
    ConvW c;
    TV_ASSIGN_OR_RETURN(c.w, ws_.Take(name + ".weight", {cout, cin, kt, k, k}, be_, dtype_));
    TV_ASSIGN_OR_RETURN(c.b, ws_.Take(name + ".bias", {cout}, be_, dtype_));
    c.pad = static_cast<int>(k / 2);
    if (kt > 1) c.slot = NewSlot();
    return c;
  }
  absl::StatusOr<ConvW> Conv2(const std::string& name, int64_t cout, int64_t cin, int64_t k) {
    ConvW c;
    TV_ASSIGN_OR_RETURN(Tensor w, ws_.Take(name + ".weight", {cout, cin, k, k}, be_, dtype_));
    TV_ASSIGN_OR_RETURN(c.w, w.Reshape({cout, cin, 1, k, k}));
    TV_ASSIGN_OR_RETURN(c.b, ws_.Take(name + ".bias", {cout}, be_, dtype_));
    c.pad = static_cast<int>(k / 2);
    return c;
  }
  // RMS_norm gamma, stored [C,1,1,1] (video) or [C,1,1] (images).
  absl::StatusOr<Tensor> Gamma(const std::string& name, int64_t c, bool images) {
    Shape shape = images ? Shape{c, 1, 1} : Shape{c, 1, 1, 1};
    TV_ASSIGN_OR_RETURN(Tensor g, ws_.Take(name + ".gamma", shape, be_, dtype_));
    return g.Reshape({c});
  }
  absl::StatusOr<ResBlockW> ResBlock(const std::string& name, int64_t cin, int64_t cout) {
    ResBlockW r;
    TV_ASSIGN_OR_RETURN(r.gamma1, Gamma(name + ".residual.0", cin, false));
    TV_ASSIGN_OR_RETURN(r.conv1, Conv3(name + ".residual.2", cout, cin, 3, 3));
    TV_ASSIGN_OR_RETURN(r.gamma2, Gamma(name + ".residual.3", cout, false));
    TV_ASSIGN_OR_RETURN(r.conv2, Conv3(name + ".residual.6", cout, cout, 3, 3));
    r.has_shortcut = cin != cout;
    if (r.has_shortcut) {
      TV_ASSIGN_OR_RETURN(r.shortcut, Conv3(name + ".shortcut", cout, cin, 1, 1));
    }
    return r;
  }
  absl::StatusOr<AttnW> Attn(const std::string& name, int64_t c) {
    AttnW a;
    TV_ASSIGN_OR_RETURN(a.gamma, Gamma(name + ".norm", c, true));
    TV_ASSIGN_OR_RETURN(a.qkv, Conv2(name + ".to_qkv", 3 * c, c, 1));
    TV_ASSIGN_OR_RETURN(a.proj, Conv2(name + ".proj", c, c, 1));
    return a;
  }
  // Upsampling halves the channels (2.1 decoder); downsampling keeps them
  // (docs/model-math.md §5.3).
  absl::StatusOr<ResampleW> Resample(const std::string& name, int64_t c, ResampleMode mode) {
    ResampleW r;
    r.mode = mode;
    const bool up = mode == ResampleMode::kUp2d || mode == ResampleMode::kUp3d;
    TV_ASSIGN_OR_RETURN(r.spatial, Conv2(name + ".resample.1", up ? c / 2 : c, c, 3));
    if (!up) r.spatial.pad = 0;  // downsample pads right/bottom only, at run time
    if (mode == ResampleMode::kUp3d || mode == ResampleMode::kDown3d) {
      TV_ASSIGN_OR_RETURN(r.time, Conv3(name + ".time_conv", up ? 2 * c : c, c, 3, 1));
      r.time.slot = -1;  // the resample owns the stream state
      r.slot = NewSlot();
    }
    return r;
  }

 private:
  io::WeightSet& ws_;
  Backend& be_;
  DType dtype_;
  int slots_ = 0;
};

absl::StatusOr<HalfW> LoadEncoder(const VaeConfig& cfg, io::WeightSet& ws, Backend& be) {
  Loader ld(ws, be);
  HalfW h;
  std::vector<int64_t> dims{cfg.dim};
  for (int m : cfg.dim_mult) dims.push_back(int64_t{cfg.dim} * m);
  TV_ASSIGN_OR_RETURN(h.conv_in, ld.Conv3("encoder.conv1", dims[0], 3, 3, 3));
  int idx = 0;
  const size_t stages = cfg.dim_mult.size();
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = dims[i];
    for (int r = 0; r < cfg.num_res_blocks; ++r, ++idx) {
      TV_ASSIGN_OR_RETURN(ResBlockW rb,
                          ld.ResBlock(absl::StrCat("encoder.downsamples.", idx), in, dims[i + 1]));
      h.layers.emplace_back(std::move(rb));
      in = dims[i + 1];
    }
    if (i + 1 == stages) break;
    const bool t_down = i < cfg.temporal_downsample.size() && cfg.temporal_downsample[i];
    TV_ASSIGN_OR_RETURN(ResampleW rs,
                        ld.Resample(absl::StrCat("encoder.downsamples.", idx++), in,
                                    t_down ? ResampleMode::kDown3d : ResampleMode::kDown2d));
    h.layers.emplace_back(std::move(rs));
  }
  const int64_t c = dims.back();
  TV_ASSIGN_OR_RETURN(h.mid0, ld.ResBlock("encoder.middle.0", c, c));
  TV_ASSIGN_OR_RETURN(h.attn, ld.Attn("encoder.middle.1", c));
  TV_ASSIGN_OR_RETURN(h.mid2, ld.ResBlock("encoder.middle.2", c, c));
  TV_ASSIGN_OR_RETURN(h.head_gamma, ld.Gamma("encoder.head.0", c, false));
  TV_ASSIGN_OR_RETURN(h.head_conv, ld.Conv3("encoder.head.2", 2 * int64_t{cfg.z_dim}, c, 3, 3));
  h.num_slots = ld.slots();
  MarkTemporalRange(h);
  return h;
}

// Decoder widths: dims = dim·[mult[-1], reversed(mult)...]; stages after the first start at half
// width because every Resample conv of the 2.1 decoder halves the channels
// (docs/model-math.md §5.5).
absl::StatusOr<HalfW> LoadDecoder(const VaeConfig& cfg, io::WeightSet& ws, Backend& be) {
  Loader ld(ws, be);
  HalfW h;
  std::vector<int64_t> dims{int64_t{cfg.dim} * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it)
    dims.push_back(int64_t{cfg.dim} * *it);
  TV_ASSIGN_OR_RETURN(h.conv_in, ld.Conv3("decoder.conv1", dims[0], cfg.z_dim, 3, 3));
  TV_ASSIGN_OR_RETURN(h.mid0, ld.ResBlock("decoder.middle.0", dims[0], dims[0]));
  TV_ASSIGN_OR_RETURN(h.attn, ld.Attn("decoder.middle.1", dims[0]));
  TV_ASSIGN_OR_RETURN(h.mid2, ld.ResBlock("decoder.middle.2", dims[0], dims[0]));
  int idx = 0;
  const size_t stages = cfg.dim_mult.size();
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = i == 0 ? dims[0] : dims[i] / 2;
    for (int r = 0; r <= cfg.num_res_blocks; ++r, ++idx) {
      TV_ASSIGN_OR_RETURN(ResBlockW rb,
                          ld.ResBlock(absl::StrCat("decoder.upsamples.", idx), in, dims[i + 1]));
      h.layers.emplace_back(std::move(rb));
      in = dims[i + 1];
    }
    if (i + 1 == stages) break;
    // Temporal upsampling flags are the encoder's downsampling flags reversed.
    const size_t td = cfg.temporal_downsample.size();
    const bool t_up = i < td && cfg.temporal_downsample[td - 1 - i];
    TV_ASSIGN_OR_RETURN(ResampleW rs,
                        ld.Resample(absl::StrCat("decoder.upsamples.", idx++), in,
                                    t_up ? ResampleMode::kUp3d : ResampleMode::kUp2d));
    h.layers.emplace_back(std::move(rs));
  }
  const int64_t c = dims.back();
  TV_ASSIGN_OR_RETURN(h.head_gamma, ld.Gamma("decoder.head.0", c, false));
  TV_ASSIGN_OR_RETURN(h.head_conv, ld.Conv3("decoder.head.2", 3, c, 3, 3));
  h.num_slots = ld.slots();
  MarkTemporalRange(h);
  return h;
}

// Streaming state of one Encode/Decode call: the last kt−1 input frames of every causal conv
// (zeros before the first chunk), and whether a temporal resample has seen its first chunk.
// With the fused decoder a normed conv's cache holds its raw input frames and inv_cache their
// RMS_norm statistics (F32 [kt−1, H, W], the same ring order).
struct StreamState {
  explicit StreamState(int slots)
      : cache(slots), inv_cache(slots), first(slots, 0), started(slots, false) {}
  std::vector<Tensor> cache;
  std::vector<Tensor> inv_cache;
  std::vector<int> first;  // a causal conv's cache is a ring: its oldest frame
  std::vector<bool> started;
};

// A decode split by rows (docs/parallelism.md §4): rank r of `comm` holds latent rows
// [offsets[r], offsets[r] + rows[r]); at a stage s times the latent resolution it holds s times
// as many rows, and every tensor the runner sees is the rank's band [C, T, s·rows[r], W'].
struct RowSplit {
  comm::Communicator* comm = nullptr;
  std::vector<int64_t> rows;  // latent rows of each rank (comm::SplitCounts)
  int rank() const { return comm->rank(); }
  int size() const { return comm->size(); }
  // Rows of every rank at the resolution where this rank holds `mine` rows.
  std::vector<int64_t> RowsAt(int64_t mine) const {
    const int64_t scale = mine / rows[rank()];
    std::vector<int64_t> out;
    for (int64_t r : rows) out.push_back(r * scale);
    return out;
  }
};

// What a conv fuses around itself (Conv3dOp's optional fields): the RMS_norm of its input (gamma,
// statistics of x and of the cached frames), SiLU, and a residual added after the bias.
struct Fuse {
  const Tensor* gamma = nullptr;
  const Tensor* inv = nullptr;
  const Tensor* inv_prev = nullptr;
  bool silu = false;
  const Tensor* residual = nullptr;
  bool into_residual = false;  // y is written over the residual (each element read first)
};

// Runs the building blocks on one chunk [C, Tc, H, W], updating the stream state. With a
// RowSplit, x is the rank's band of rows: the 3×3 convs read halo rows from the neighbours and
// the attention gathers K and V of the whole frame.
class Runner {
 public:
  Runner(Backend& be, StreamState& st, const RowSplit* split = nullptr)
      : be_(be), ops_(be), st_(st), split_(split), fused_(VaeFused(be.device())) {}
  bool fused() const { return fused_; }

  // x [C, T, n, W] (this rank's rows) → [C, T, top + n + bottom, W] with the last `p` rows of
  // the previous rank in front and the first `p` rows of the next one behind (top/bottom = p
  // where that neighbour exists, else 0: the conv zero-pads that edge as on one rank).
  absl::StatusOr<Tensor> Halo(const Tensor& x, int p, int* top, int* bottom) {
    const int r = split_->rank(), n = split_->size();
    const int64_t rows = x.dim(2);
    if (rows < p) {
      return absl::InvalidArgumentError(absl::StrCat("vae split decode: rank ", r, " holds ", rows,
                                                     " rows, fewer than the halo of ", p));
    }
    *top = r > 0 ? p : 0;
    *bottom = r + 1 < n ? p : 0;
    const int64_t part = x.dim(0) * x.dim(1) * p * x.dim(3);
    std::vector<Tensor> send;
    if (*top > 0) {
      TV_ASSIGN_OR_RETURN(Tensor first, ops_.Narrow(x, 2, 0, p));
      TV_ASSIGN_OR_RETURN(first, first.Reshape({part}));
      send.push_back(std::move(first));
    }
    if (*bottom > 0) {
      TV_ASSIGN_OR_RETURN(Tensor last, ops_.Narrow(x, 2, rows - p, p));
      TV_ASSIGN_OR_RETURN(last, last.Reshape({part}));
      send.push_back(std::move(last));
    }
    Tensor in = send.front();
    if (send.size() > 1) {
      TV_ASSIGN_OR_RETURN(in, ops_.Concat(send, 0));
    }
    TV_ASSIGN_OR_RETURN(Tensor got, ops_.Uninit({in.numel()}));
    const int64_t prev = *top > 0 ? part : 0, next = *bottom > 0 ? part : 0;
    TV_RETURN_IF_ERROR(split_->comm->NeighbourExchange(in, prev, next, got, prev, next));
    TV_ASSIGN_OR_RETURN(Tensor ext,
                        ops_.Uninit({x.dim(0), x.dim(1), *top + rows + *bottom, x.dim(3)}));
    const Shape halo{x.dim(0), x.dim(1), p, x.dim(3)};
    if (*top > 0) {
      TV_ASSIGN_OR_RETURN(Tensor above, got.Slice0(0, part).Reshape(halo));
      TV_RETURN_IF_ERROR(ops_.CopyInto(above, ext, {0, 0, 0, 0}));
    }
    TV_RETURN_IF_ERROR(ops_.CopyInto(x, ext, {0, 0, *top, 0}));
    if (*bottom > 0) {
      TV_ASSIGN_OR_RETURN(Tensor below, got.Slice0(prev, prev + part).Reshape(halo));
      TV_RETURN_IF_ERROR(ops_.CopyInto(below, ext, {0, 0, *top + rows, 0}));
    }
    return ext;
  }

  // A conv with spatial padding p: on one rank, zero padding on every edge; split, the halo rows
  // stand in for the padding at the edges shared with a neighbour. Returns the input to run the
  // conv on and the row padding that is left.
  absl::StatusOr<Tensor> Pad(Tensor x, int p, std::array<int, 3>& lo, std::array<int, 3>& hi) {
    lo = {0, p, p};
    hi = {0, p, p};
    if (split_ == nullptr || split_->size() == 1 || p == 0) return x;
    int top = 0, bottom = 0;
    TV_ASSIGN_OR_RETURN(Tensor ext, Halo(x, p, &top, &bottom));
    lo[1] = p - top;
    hi[1] = p - bottom;
    return ext;
  }

  // x_prev: frames in front of x along T (a causal conv's cache), read in place.
  absl::StatusOr<Tensor> Conv(const ConvW& c, const Tensor& x, std::array<int, 3> stride,
                              std::array<int, 3> lo, std::array<int, 3> hi,
                              const Tensor* x_prev = nullptr, int x_prev_first = 0,
                              const Fuse& fuse = {}) {
    const auto out = [](int64_t n, int l, int h, int64_t k, int s) {
      return (n + l + h - k) / s + 1;
    };
    const int64_t t = x.dim(1) + (x_prev != nullptr ? x_prev->dim(1) : 0);
    const Shape y_shape = {c.w.dim(0), out(t, lo[0], hi[0], c.w.dim(2), stride[0]),
                           out(x.dim(2), lo[1], hi[1], c.w.dim(3), stride[1]),
                           out(x.dim(3), lo[2], hi[2], c.w.dim(4), stride[2])};
    Tensor y;
    if (fuse.into_residual && fuse.residual != nullptr) {
      y = *fuse.residual;
    } else {
      TV_ASSIGN_OR_RETURN(y, ops_.Uninit(y_shape));
    }
    Conv3dOp op{&x, &c.w, &c.b, stride, lo, hi, &y};
    op.x_prev = x_prev;
    op.x_prev_first = x_prev_first;
    op.norm_gamma = fuse.gamma;
    op.norm_inv_rms = fuse.inv;
    op.norm_inv_rms_prev = fuse.inv_prev;
    op.silu = fuse.silu;
    op.residual = fuse.residual;
    TV_RETURN_IF_ERROR(be_.Run(op));
    return y;
  }

  // The RMS_norm statistic of x [C, T, H, W] per position: F32 [T, H, W] (ChannelRmsStatsOp).
  absl::StatusOr<Tensor> Stats(const Tensor& x) {
    const int64_t c = x.dim(0), p = x.numel() / c;
    TV_ASSIGN_OR_RETURN(Tensor xv, x.Reshape({c, p}));
    TV_ASSIGN_OR_RETURN(Tensor inv, be_.AllocateUninitialized(DType::kF32, {p}));
    TV_RETURN_IF_ERROR(be_.Run(ChannelRmsStatsOp{&xv, &inv}));
    return inv.Reshape({x.dim(1), x.dim(2), x.dim(3)});
  }

  // CausalConv3d: kt−1 frames of history in front (cached input, zeros at the start). The conv
  // reads the cache and x in place (Conv3dOp::x_prev); the new cache is the last kt−1 frames of
  // cache ++ x: a copy of x's last frames, or, for a chunk shorter than the history (the frame-
  // by-frame stages), x written over the ring's oldest frames. Takes x by value so that it is
  // freed before the caller's next allocation.
  // Split by rows, x gains its halo rows first and the cache keeps them (the history frames'
  // halo is the neighbours' rows of those frames).
  // Fused (gamma set): the conv normalises its own input as it reads it (RMS_norm · gamma, then
  // SiLU when `silu`), from statistics taken here after the halo rows are in place, and adds
  // `residual` after its bias; the cache keeps raw frames and their statistics.
  absl::StatusOr<Tensor> Causal(const ConvW& c, Tensor x, const Tensor* gamma = nullptr,
                                bool silu = false, const Tensor* residual = nullptr) {
    std::array<int, 3> lo, hi;
    TV_ASSIGN_OR_RETURN(x, Pad(std::move(x), c.pad, lo, hi));
    Fuse fuse;
    fuse.silu = silu;
    fuse.residual = residual;
    fuse.into_residual = residual != nullptr;
    Tensor inv;
    if (gamma != nullptr) {
      TV_ASSIGN_OR_RETURN(inv, Stats(x));
      fuse.gamma = gamma;
      fuse.inv = &inv;
    }
    if (c.slot < 0) return Conv(c, x, {1, 1, 1}, lo, hi, nullptr, 0, fuse);
    const int64_t hist = c.w.dim(2) - 1, t = x.dim(1);
    Tensor& cache = st_.cache[c.slot];
    if (!cache.defined()) {
      TV_ASSIGN_OR_RETURN(cache, be_.Allocate(x.dtype(), {x.dim(0), hist, x.dim(2), x.dim(3)}));
    }
    Tensor& inv_cache = st_.inv_cache[c.slot];
    if (gamma != nullptr) {
      if (!inv_cache.defined()) {  // zero frames: any finite statistic leaves them zero
        TV_ASSIGN_OR_RETURN(inv_cache, be_.Allocate(DType::kF32, {hist, x.dim(2), x.dim(3)}));
      }
      fuse.inv_prev = &inv_cache;
    }
    int& first = st_.first[c.slot];
    TV_ASSIGN_OR_RETURN(Tensor y, Conv(c, x, {1, 1, 1}, lo, hi, &cache, first, fuse));
    if (t >= hist) {
      TV_ASSIGN_OR_RETURN(cache, ops_.Narrow(x, 1, t - hist, hist));
      if (gamma != nullptr) inv_cache = inv.Slice0(t - hist, t);
      first = 0;
      return y;
    }
    for (int64_t j = 0; j < t; ++j) {
      Tensor frame = x;
      if (t > 1) {
        TV_ASSIGN_OR_RETURN(frame, ops_.Narrow(x, 1, j, 1));
      }
      TV_RETURN_IF_ERROR(ops_.CopyInto(frame, cache, {0, first, 0, 0}));
      if (gamma != nullptr) {
        const Tensor inv_frame = inv.Slice0(j, j + 1);
        TV_RETURN_IF_ERROR(ops_.CopyInto(inv_frame, inv_cache, {first, 0, 0}));
      }
      first = static_cast<int>((first + 1) % hist);
    }
    return y;
  }

  // RMS_norm over channels at every position, optionally followed by SiLU (in place).
  absl::StatusOr<Tensor> Norm(const Tensor& gamma, const Tensor& x, bool silu) {
    const int64_t c = x.dim(0), p = x.numel() / c;
    TV_ASSIGN_OR_RETURN(Tensor xv, x.Reshape({c, p}));
    TV_ASSIGN_OR_RETURN(Tensor y, ops_.Uninit({c, p}));
    TV_RETURN_IF_ERROR(be_.Run(ChannelRmsNormOp{&xv, &gamma, &y, silu}));
    return y.Reshape(x.shape());
  }

  // Fused: conv1 normalises x as it reads it, conv2 normalises conv1's output and adds the
  // shortcut (or x) in its epilogue, writing the sum over it: no norm, SiLU or add pass of its
  // own, and no third block-sized tensor. The block owns x (every caller hands over a tensor
  // that nothing else reads: conv outputs, and copies for the caches and per-frame slices).
  absl::StatusOr<Tensor> ResBlock(const ResBlockW& r, Tensor x) {
    if (fused_) {
      TV_ASSIGN_OR_RETURN(Tensor h, Causal(r.conv1, x, &r.gamma1, true));
      if (r.has_shortcut) {
        TV_ASSIGN_OR_RETURN(x, Causal(r.shortcut, x));
      }
      return Causal(r.conv2, std::move(h), &r.gamma2, true, &x);
    }
    TV_ASSIGN_OR_RETURN(Tensor h, Norm(r.gamma1, x, true));
    TV_ASSIGN_OR_RETURN(h, Causal(r.conv1, std::move(h)));
    TV_ASSIGN_OR_RETURN(h, Norm(r.gamma2, h, true));
    TV_ASSIGN_OR_RETURN(h, Causal(r.conv2, std::move(h)));
    if (r.has_shortcut) {
      TV_ASSIGN_OR_RETURN(x, Causal(r.shortcut, x));
    }
    TV_RETURN_IF_ERROR(be_.Run(BinaryOp{BinaryKind::kAdd, &h, &x, &h}));
    return h;
  }

  // Single-head attention over the H·W positions of each frame, scale 1/√C, plus the input.
  // Split by rows, the queries are this rank's positions and K and V are all-gathered: the rows
  // are in rank order, so the gathered [H·W, C] is the whole frame's token order.
  absl::StatusOr<Tensor> Attention(const AttnW& a, const Tensor& x) {
    const int64_t c = x.dim(0), hw = x.dim(2) * x.dim(3);
    const bool split = split_ != nullptr;
    std::vector<int64_t> counts;
    int64_t full = hw;
    if (split) {
      full = 0;
      for (int64_t rows : split_->RowsAt(x.dim(2))) {
        counts.push_back(rows * x.dim(3) * c);
        full += rows * x.dim(3);
      }
    }
    TV_ASSIGN_OR_RETURN(Tensor y, ops_.Uninit(x.shape()));
    for (int64_t t = 0; t < x.dim(1); ++t) {
      TV_ASSIGN_OR_RETURN(Tensor f, ops_.Narrow(x, 1, t, 1));  // [C, 1, H, W]
      Tensor qkv;
      if (fused_) {  // the qkv conv normalises f as it reads it
        TV_ASSIGN_OR_RETURN(Tensor inv, Stats(f));
        Fuse fuse;
        fuse.gamma = &a.gamma;
        fuse.inv = &inv;
        TV_ASSIGN_OR_RETURN(qkv, Conv(a.qkv, f, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, nullptr, 0, fuse));
      } else {
        TV_ASSIGN_OR_RETURN(Tensor n, Norm(a.gamma, f, false));
        TV_ASSIGN_OR_RETURN(qkv, Conv(a.qkv, n, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}));
      }
      TV_ASSIGN_OR_RETURN(Tensor qkv3, qkv.Reshape({3, c, hw}));
      TV_ASSIGN_OR_RETURN(Tensor tok, ops_.Permute(qkv3, {0, 2, 1}));  // [3, HW, C]
      TV_ASSIGN_OR_RETURN(Tensor q, tok.Slice0(0, 1).Reshape({hw, 1, c}));
      TV_ASSIGN_OR_RETURN(Tensor k, tok.Slice0(1, 2).Reshape({hw, 1, c}));
      TV_ASSIGN_OR_RETURN(Tensor v, tok.Slice0(2, 3).Reshape({hw, 1, c}));
      if (split) {
        TV_ASSIGN_OR_RETURN(Tensor kf, ops_.Uninit({full, 1, c}));
        TV_ASSIGN_OR_RETURN(Tensor vf, ops_.Uninit({full, 1, c}));
        TV_RETURN_IF_ERROR(split_->comm->AllGatherV(k, kf, counts));
        TV_RETURN_IF_ERROR(split_->comm->AllGatherV(v, vf, counts));
        k = std::move(kf);
        v = std::move(vf);
      }
      TV_ASSIGN_OR_RETURN(
          Tensor o, ops_.Attention(q, k, v, nullptr, 1.0f / std::sqrt(static_cast<float>(c))));
      TV_ASSIGN_OR_RETURN(Tensor o2, o.Reshape({hw, c}));
      TV_ASSIGN_OR_RETURN(Tensor oc, ops_.Permute(o2, {1, 0}));  // [C, HW]
      TV_ASSIGN_OR_RETURN(Tensor of, oc.Reshape({c, 1, x.dim(2), x.dim(3)}));
      Fuse add;  // fused: the projection adds the input in its epilogue
      add.residual = fused_ ? &f : nullptr;
      TV_ASSIGN_OR_RETURN(Tensor pr,
                          Conv(a.proj, of, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, nullptr, 0, add));
      if (!fused_) TV_RETURN_IF_ERROR(be_.Run(BinaryOp{BinaryKind::kAdd, &pr, &f, &pr}));
      TV_RETURN_IF_ERROR(ops_.CopyInto(pr, y, {0, t, 0, 0}));
    }
    return y;
  }

  // time_conv output [2C, T, H, W] → [C, 2T, H, W]: frame 2t = channels [0, C), 2t+1 = [C, 2C).
  absl::StatusOr<Tensor> Interleave(const Tensor& x) {
    const int64_t c = x.dim(0) / 2, t = x.dim(1), hw = x.dim(2) * x.dim(3);
    TV_ASSIGN_OR_RETURN(Tensor y, ops_.Uninit({c, 2 * t, x.dim(2), x.dim(3)}));
    CopyOp op;
    op.src = &x;
    op.dst = &y;
    op.rank = 4;
    op.shape = {2, c, t, hw};
    op.src_strides = {c * t * hw, t * hw, hw, 1};
    op.dst_strides = {hw, 2 * t * hw, 2 * hw, 1};
    TV_RETURN_IF_ERROR(be_.Run(op));
    return y;
  }

  absl::StatusOr<Tensor> Resample(const ResampleW& r, Tensor x);

 private:
  absl::StatusOr<Tensor> UpsampleFrames(const ConvW& conv, const Tensor& x);

  Backend& be_;
  Ops ops_;
  StreamState& st_;
  const RowSplit* split_;  // null: the whole frame
  bool fused_;             // VaeFused(the backend's device)
};

// Nearest ×2 then 3x3 conv, one frame at a time so the ×2 copy never holds a whole chunk; a
// one-frame x (every call inside the frame-by-frame stages) needs no slice or placement copy.
absl::StatusOr<Tensor> Runner::UpsampleFrames(const ConvW& conv, const Tensor& x) {
  std::array<int, 3> lo, hi;
  if (x.dim(1) == 1) {  // the frame-by-frame stages: x read in place, the conv's output returned
    TV_ASSIGN_OR_RETURN(Tensor u, ops_.Uninit({x.dim(0), 1, 2 * x.dim(2), 2 * x.dim(3)}));
    TV_RETURN_IF_ERROR(be_.Run(Upsample2xOp{&x, &u}));
    TV_ASSIGN_OR_RETURN(u, Pad(std::move(u), conv.pad, lo, hi));
    return Conv(conv, u, {1, 1, 1}, lo, hi);
  }
  TV_ASSIGN_OR_RETURN(Tensor y, ops_.Uninit({conv.w.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)}));
  for (int64_t t = 0; t < x.dim(1); ++t) {
    TV_ASSIGN_OR_RETURN(Tensor f, ops_.Narrow(x, 1, t, 1));
    TV_ASSIGN_OR_RETURN(Tensor u, ops_.Uninit({f.dim(0), 1, 2 * f.dim(2), 2 * f.dim(3)}));
    TV_RETURN_IF_ERROR(be_.Run(Upsample2xOp{&f, &u}));
    TV_ASSIGN_OR_RETURN(u, Pad(std::move(u), conv.pad, lo, hi));
    TV_ASSIGN_OR_RETURN(Tensor c, Conv(conv, u, {1, 1, 1}, lo, hi));
    TV_RETURN_IF_ERROR(ops_.CopyInto(c, y, {0, t, 0, 0}));
  }
  return y;
}

// Stream form of the temporal resamples (docs/model-math.md §5.4): upsample3d passes the very first
// chunk through and runs time_conv on later chunks with zero history (frame 0 never enters it);
// downsample3d passes the first chunk through and later windows start at the previous chunk's last
// frame with stride 2.
absl::StatusOr<Tensor> Runner::Resample(const ResampleW& r, Tensor x) {
  switch (r.mode) {
    case ResampleMode::kUp2d:
      return UpsampleFrames(r.spatial, x);
    case ResampleMode::kUp3d:
      if (st_.started[r.slot]) {
        ConvW time = r.time;
        time.slot = r.slot;
        TV_ASSIGN_OR_RETURN(Tensor y, Causal(time, std::move(x)));
        TV_ASSIGN_OR_RETURN(x, Interleave(y));
      }
      st_.started[r.slot] = true;
      return UpsampleFrames(r.spatial, x);
    case ResampleMode::kDown2d:
      return Conv(r.spatial, x, {1, 2, 2}, {0, 0, 0}, {0, 1, 1});
    case ResampleMode::kDown3d: {
      TV_ASSIGN_OR_RETURN(Tensor s, Conv(r.spatial, x, {1, 2, 2}, {0, 0, 0}, {0, 1, 1}));
      TV_ASSIGN_OR_RETURN(Tensor last, ops_.Narrow(s, 1, s.dim(1) - 1, 1));
      Tensor out = s;
      if (st_.started[r.slot]) {
        if (s.dim(1) % 2 != 0) {
          return absl::InternalError(
              absl::StrCat("vae downsample3d: chunk of ", s.dim(1), " frames is not even"));
        }
        TV_ASSIGN_OR_RETURN(Tensor in, ops_.Concat({st_.cache[r.slot], s}, 1));
        TV_ASSIGN_OR_RETURN(out, Conv(r.time, in, {2, 1, 1}, {0, 0, 0}, {0, 0, 0}));
      }
      st_.cache[r.slot] = last;
      st_.started[r.slot] = true;
      return out;
    }
  }
  return absl::InternalError("vae resample: unknown mode");
}

// Layers [begin, end) of a stage list.
absl::StatusOr<Tensor> RunLayers(Runner& run, const std::vector<LayerW>& layers, size_t begin,
                                 size_t end, Tensor x) {
  for (size_t i = begin; i < end; ++i) {
    if (const auto* rb = std::get_if<ResBlockW>(&layers[i])) {
      TV_ASSIGN_OR_RETURN(x, run.ResBlock(*rb, std::move(x)));
    } else {
      TV_ASSIGN_OR_RETURN(x, run.Resample(std::get<ResampleW>(layers[i]), std::move(x)));
    }
  }
  return x;
}

// Applies `fn` to each frame of x [C, T, H, W] in turn and stacks the results along T. Exact for
// causal convs and per-frame ops, whose streamed result does not depend on the chunk size
// (docs/model-math.md §5.4); it keeps the full-resolution stages to one frame of activations.
template <typename Fn>
absl::StatusOr<Tensor> PerFrame(Backend& be, const Tensor& x, Fn fn) {
  Ops ops(be);
  Tensor out;
  for (int64_t t = 0; t < x.dim(1); ++t) {
    TV_ASSIGN_OR_RETURN(Tensor f, ops.Narrow(x, 1, t, 1));
    TV_ASSIGN_OR_RETURN(Tensor y, fn(std::move(f)));
    if (!out.defined()) {
      Shape shape = y.shape();
      shape[1] *= x.dim(1);
      TV_ASSIGN_OR_RETURN(out, ops.Uninit(shape));
    }
    TV_RETURN_IF_ERROR(ops.CopyInto(y, out, {0, t * y.dim(1), 0, 0}));
  }
  return out;
}

absl::StatusOr<Tensor> RunMiddle(Runner& run, const HalfW& h, Tensor x) {
  TV_ASSIGN_OR_RETURN(x, run.ResBlock(h.mid0, std::move(x)));
  TV_ASSIGN_OR_RETURN(x, run.Attention(h.attn, x));
  return run.ResBlock(h.mid2, std::move(x));
}

absl::StatusOr<Tensor> RunHead(Runner& run, const HalfW& h, const Tensor& x) {
  if (run.fused()) return run.Causal(h.head_conv, x, &h.head_gamma, true);
  TV_ASSIGN_OR_RETURN(Tensor n, run.Norm(h.head_gamma, x, true));
  return run.Causal(h.head_conv, std::move(n));
}

// Latent chunk [z_dim, Tc, H, W] (after conv2) → video chunk [3, Tc', 8H, 8W]. Layers after the
// last temporal upsample run frame by frame.
absl::StatusOr<Tensor> DecodeChunk(Backend& be, Runner& run, const HalfW& d, const Tensor& z) {
  TV_ASSIGN_OR_RETURN(Tensor x, run.Causal(d.conv_in, z));
  TV_ASSIGN_OR_RETURN(x, RunMiddle(run, d, std::move(x)));
  TV_ASSIGN_OR_RETURN(x, RunLayers(run, d.layers, 0, d.temporal_end, std::move(x)));
  return PerFrame(be, x, [&](Tensor f) -> absl::StatusOr<Tensor> {
    TV_ASSIGN_OR_RETURN(f, RunLayers(run, d.layers, d.temporal_end, d.layers.size(), std::move(f)));
    return RunHead(run, d, f);
  });
}

// Video chunk [3, Tc, H, W] → [2·z_dim, Tc', H/8, W/8] (before conv1). Layers before the first
// temporal downsample run frame by frame.
absl::StatusOr<Tensor> EncodeChunk(Backend& be, Runner& run, const HalfW& e, const Tensor& v) {
  TV_ASSIGN_OR_RETURN(Tensor x, PerFrame(be, v, [&](Tensor f) -> absl::StatusOr<Tensor> {
                        TV_ASSIGN_OR_RETURN(f, run.Causal(e.conv_in, std::move(f)));
                        return RunLayers(run, e.layers, 0, e.temporal_begin, std::move(f));
                      }));
  TV_ASSIGN_OR_RETURN(x, RunLayers(run, e.layers, e.temporal_begin, e.layers.size(), std::move(x)));
  TV_ASSIGN_OR_RETURN(x, RunMiddle(run, e, std::move(x)));
  return RunHead(run, e, x);
}

// Copies host chunk [C, Tc, H, W] into host tensor [C, T, H, W] at frame `t0`.
void CopyFrames(const Tensor& chunk, Tensor& dst, int64_t t0) {
  const int64_t c = chunk.dim(0), tc = chunk.dim(1), plane = chunk.dim(2) * chunk.dim(3);
  for (int64_t ch = 0; ch < c; ++ch) {
    std::memcpy(dst.data<float>() + (ch * dst.dim(1) + t0) * plane,
                chunk.data<float>() + ch * tc * plane,
                static_cast<size_t>(tc * plane) * sizeof(float));
  }
}

class WanVaeImpl : public WanVae {
 public:
  WanVaeImpl(const VaeConfig& config, Backend& backend) : config_(config), backend_(backend) {
    for (int c = 0; c < config.z_dim; ++c) inv_std_.push_back(1.0f / config.std[c]);
  }

  absl::StatusOr<Tensor> Decode(const Tensor& z,
                                const std::function<void(int, int)>& on_frame,
                                const ChunkFn& on_chunk,
                                comm::Communicator* split) const override;
  absl::StatusOr<Tensor> Encode(const Tensor& video) const override;
  const VaeConfig& config() const override { return config_; }

  VaeConfig config_;
  Backend& backend_;
  std::vector<float> inv_std_;  // fp32 1/std, as the reference stores the scale
  bool has_encoder_ = false, has_decoder_ = false;
  HalfW enc_, dec_;
  ConvW conv1_;  // top-level 1x1x1 after the encoder, [2z, 2z]
  ConvW conv2_;  // top-level 1x1x1 before the decoder, [z, z]
};

// Split by rows: the ranks' video bands [3, Tc, 8·rows[r], W] all-gathered and laid side by side
// into the whole chunk [3, Tc, 8H, W] (on the device).
absl::StatusOr<Tensor> GatherRows(Ops& ops, const RowSplit& split, const Tensor& band) {
  const std::vector<int64_t> rows = split.RowsAt(band.dim(2));
  const int64_t per_row = band.dim(0) * band.dim(1) * band.dim(3);
  std::vector<int64_t> counts;
  int64_t total_rows = 0;
  for (int64_t r : rows) {
    counts.push_back(r * per_row);
    total_rows += r;
  }
  TV_ASSIGN_OR_RETURN(Tensor all, ops.Uninit({total_rows * per_row}));
  TV_RETURN_IF_ERROR(split.comm->AllGatherV(band, all, counts));
  TV_ASSIGN_OR_RETURN(Tensor out, ops.Uninit({band.dim(0), band.dim(1), total_rows, band.dim(3)}));
  int64_t row0 = 0, off = 0;
  for (int64_t r : rows) {
    TV_ASSIGN_OR_RETURN(Tensor part,
                        all.Slice0(off, off + r * per_row)
                            .Reshape({band.dim(0), band.dim(1), r, band.dim(3)}));
    TV_RETURN_IF_ERROR(ops.CopyInto(part, out, {0, 0, row0, 0}));
    row0 += r;
    off += r * per_row;
  }
  return out;
}

absl::StatusOr<Tensor> WanVaeImpl::Decode(const Tensor& z,
                                          const std::function<void(int, int)>& on_frame,
                                          const ChunkFn& on_chunk,
                                          comm::Communicator* split_comm) const {
  if (!has_decoder_) return absl::FailedPreconditionError("vae decode: decoder weights not loaded");
  if (!z.defined() || z.rank() != 4 || z.dim(0) != config_.z_dim || z.dim(1) < 1 ||
      z.device() != Device::kCpu) {
    return absl::InvalidArgumentError(
        absl::StrCat("vae decode: z ", z.defined() ? z.Describe() : "undefined", " is not a host [",
                     config_.z_dim, ", T, H, W] tensor"));
  }
  const int64_t t = z.dim(1), h = z.dim(2), w = z.dim(3), plane = h * w;
  std::optional<RowSplit> split;
  if (split_comm != nullptr) {  // one rank: no halo, the gathers still run
    if (h < split_comm->size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("vae decode: latent height ", h, " does not split over ", split_comm->size(),
                       " ranks (a split decode needs at least one latent row per rank)"));
    }
    split.emplace();
    split->comm = split_comm;
    split->rows = comm::SplitCounts(h, split_comm->size());
  }
  const bool root = !split || split->rank() == 0;
  // z_raw = z / (1/std) + mean: division by the fp32 reciprocal, exactly as the reference.
  TV_ASSIGN_OR_RETURN(Tensor zr, ToF32(z));  // always a fresh host copy
  for (int64_t c = 0; c < z.dim(0); ++c) {
    float* p = zr.data<float>() + c * t * plane;
    for (int64_t i = 0; i < t * plane; ++i) p[i] = p[i] / inv_std_[c] + config_.mean[c];
  }
  StreamState st(dec_.num_slots);
  Runner run(backend_, st, split ? &*split : nullptr);
  Ops ops(backend_);
  TV_ASSIGN_OR_RETURN(Tensor zd, backend_.Upload(zr, backend_.compute_dtype()));
  if (split) {  // this rank's band of latent rows
    int64_t row0 = 0;
    for (int r = 0; r < split->rank(); ++r) row0 += split->rows[r];
    TV_ASSIGN_OR_RETURN(zd, ops.Narrow(zd, 2, row0, split->rows[split->rank()]));
  }
  TV_ASSIGN_OR_RETURN(Tensor x, run.Conv(conv2_, zd, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}));
  Tensor video;
  if (root && !on_chunk) video = Tensor::Zeros(DType::kF32, {3, 1 + 4 * (t - 1), 8 * h, 8 * w});
  // Chunk i's download is queued behind its work and collected after chunk i+1's work is queued,
  // so the device never waits for the host's copying, conversion and callbacks.
  // TV_VAE_PROFILE=1 prints the host-side split of one decode to stderr: queueing the chunks'
  // work, waiting for the downloads, copying into the video, the callbacks.
  std::optional<PhaseProfile> profile;
  if (PhaseProfile::EnabledBy("TV_VAE_PROFILE")) profile.emplace();
  const auto lap = [&profile](const char* phase) {
    if (profile) profile->Mark(phase);
  };
  std::unique_ptr<PendingDownload> pending;
  int64_t pending_chunk = 0;
  const auto collect = [&]() -> absl::Status {
    TV_ASSIGN_OR_RETURN(Tensor host, pending->Wait());
    pending.reset();
    lap("wait for the download");
    const int64_t f0 = pending_chunk == 0 ? 0 : 1 + 4 * (pending_chunk - 1);
    CopyFrames(host, video, f0);
    lap("copy into the video");
    if (on_frame) on_frame(static_cast<int>(pending_chunk), static_cast<int>(t));
    lap("callbacks");
    return absl::OkStatus();
  };
  for (int64_t i = 0; i < t; ++i) {
    TV_ASSIGN_OR_RETURN(Tensor zi, ops.Narrow(x, 1, i, 1));
    TV_ASSIGN_OR_RETURN(Tensor y, DecodeChunk(backend_, run, dec_, zi));
    if (split) {
      TV_ASSIGN_OR_RETURN(y, GatherRows(ops, *split, y));
      if (!root) continue;  // rank 0 alone downloads the frames and calls back
    }
    const int64_t want = i == 0 ? 1 : 4;
    if (y.rank() != 4 || y.dim(1) != want || y.dim(2) != 8 * h || y.dim(3) != 8 * w) {
      return absl::InternalError(
          absl::StrCat("vae decode: latent frame ", i, " gave ", y.Describe()));
    }
    if (on_chunk) {  // the caller takes the chunk where it is: nothing downloaded here
      TV_RETURN_IF_ERROR(on_chunk(y, i == 0 ? 0 : 1 + 4 * (i - 1)));
      lap("callbacks");
      if (on_frame) on_frame(static_cast<int>(i), static_cast<int>(t));
      continue;
    }
    TV_ASSIGN_OR_RETURN(std::unique_ptr<PendingDownload> next, backend_.DownloadAsync(y));
    lap("queue the chunk's work");
    if (pending) TV_RETURN_IF_ERROR(collect());
    pending = std::move(next);
    pending_chunk = i;
  }
  if (pending) TV_RETURN_IF_ERROR(collect());
  if (profile) {
    profile->Print(stderr, absl::StrCat("vae decode profile (", t, " chunks, host side)"));
  }
  return video;
}

absl::StatusOr<Tensor> WanVaeImpl::Encode(const Tensor& video) const {
  if (!has_encoder_) return absl::FailedPreconditionError("vae encode: encoder weights not loaded");
  if (!video.defined() || video.rank() != 4 || video.dim(0) != 3 || video.dim(1) % 4 != 1 ||
      video.dim(2) % 8 != 0 || video.dim(3) % 8 != 0 || video.dim(2) == 0 || video.dim(3) == 0 ||
      video.device() != Device::kCpu) {
    return absl::InvalidArgumentError(absl::StrCat("vae encode: video ",
                                                   video.defined() ? video.Describe() : "undefined",
                                                   " is not a host [3, 1+4k, 8m, 8n] tensor"));
  }
  const int64_t frames = video.dim(1), lt = 1 + (frames - 1) / 4;
  const int64_t lh = video.dim(2) / 8, lw = video.dim(3) / 8, plane = lh * lw;
  TV_ASSIGN_OR_RETURN(Tensor vd, backend_.Upload(video, backend_.compute_dtype()));
  Tensor latent = Tensor::Zeros(DType::kF32, {config_.z_dim, lt, lh, lw});
  StreamState st(enc_.num_slots);
  Runner run(backend_, st);
  Ops ops(backend_);
  for (int64_t i = 0; i < lt; ++i) {
    TV_ASSIGN_OR_RETURN(Tensor chunk,
                        ops.Narrow(vd, 1, i == 0 ? 0 : 1 + 4 * (i - 1), i == 0 ? 1 : 4));
    TV_ASSIGN_OR_RETURN(Tensor e, EncodeChunk(backend_, run, enc_, chunk));
    TV_ASSIGN_OR_RETURN(e, run.Conv(conv1_, e, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}));
    if (e.dim(1) != 1 || e.dim(2) != lh || e.dim(3) != lw) {
      return absl::InternalError(absl::StrCat("vae encode: chunk ", i, " gave ", e.Describe()));
    }
    TV_ASSIGN_OR_RETURN(Tensor mu, ops.Narrow(e, 0, 0, config_.z_dim));
    TV_ASSIGN_OR_RETURN(Tensor host, backend_.Download(mu));
    CopyFrames(host, latent, i);
  }
  // z = (μ − mean) · (1/std) with the fp32 reciprocal.
  for (int64_t c = 0; c < config_.z_dim; ++c) {
    float* p = latent.data<float>() + c * lt * plane;
    for (int64_t i = 0; i < lt * plane; ++i) p[i] = (p[i] - config_.mean[c]) * inv_std_[c];
  }
  return latent;
}

// Config keys are looked up in `json` itself, then in its "config" object (a golden case.json).
const Json* FindKey(const Json& json, std::string_view key) {
  if (const Json* v = json.Find(key)) return v;
  const Json* cfg = json.Find("config");
  return cfg != nullptr && cfg->is_object() ? cfg->Find(key) : nullptr;
}

absl::StatusOr<std::vector<float>> FloatList(const Json& json, std::string_view key, int n,
                                             const float* fallback) {
  const Json* v = FindKey(json, key);
  if (v == nullptr) return std::vector<float>(fallback, fallback + n);
  if (!v->is_array() || static_cast<int>(v->array().size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("vae config: ", std::string(key), " is not a list of ", n, " numbers"));
  }
  std::vector<float> out;
  for (const Json& e : v->array()) {
    if (!e.is_number())
      return absl::InvalidArgumentError(
          absl::StrCat("vae config: ", std::string(key), " holds a non-number"));
    out.push_back(static_cast<float>(e.number()));
  }
  return out;
}

}  // namespace

bool VaeFused(Device device) {
  const char* v = std::getenv("TV_VAE_FUSED");
  if (v != nullptr && *v != '\0') return std::string(v) != "0";
  return device == Device::kCpu;
}

absl::StatusOr<VaeConfig> VaeConfig::FromJson(const Json& json) {
  VaeConfig c;
  auto int_key = [&](std::string_view key, int& out) -> absl::Status {
    const Json* v = FindKey(json, key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_integer() || v->integer() < 1 || v->integer() > 4096) {
      return absl::InvalidArgumentError(
          absl::StrCat("vae config: ", std::string(key), " must be a positive integer"));
    }
    out = static_cast<int>(v->integer());
    return absl::OkStatus();
  };
  TV_RETURN_IF_ERROR(int_key("dim", c.dim));
  TV_RETURN_IF_ERROR(int_key("z_dim", c.z_dim));
  TV_RETURN_IF_ERROR(int_key("num_res_blocks", c.num_res_blocks));
  if (const Json* v = FindKey(json, "dim_mult")) {
    if (!v->is_array()) return absl::InvalidArgumentError("vae config: dim_mult is not a list");
    c.dim_mult.clear();
    for (const Json& e : v->array()) {
      if (!e.is_integer() || e.integer() < 1)
        return absl::InvalidArgumentError("vae config: dim_mult holds a non-positive entry");
      c.dim_mult.push_back(static_cast<int>(e.integer()));
    }
    if (c.dim_mult.empty())
      return absl::InvalidArgumentError("vae config: dim_mult must be a non-empty list");
  }
  const Json* td = FindKey(json, "temperal_downsample");  // upstream spelling
  if (td == nullptr) td = FindKey(json, "temporal_downsample");
  if (td != nullptr) {
    if (!td->is_array())
      return absl::InvalidArgumentError("vae config: temperal_downsample is not a list");
    c.temporal_downsample.clear();
    for (const Json& e : td->array()) {
      if (!e.is_bool())
        return absl::InvalidArgumentError("vae config: temperal_downsample holds a non-bool");
      c.temporal_downsample.push_back(e.boolean());
    }
  }
  if (c.temporal_downsample.size() + 1 != c.dim_mult.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("vae config: temperal_downsample has ", c.temporal_downsample.size(),
                     " entries, dim_mult needs ", c.dim_mult.size() - 1));
  }
  const bool official = c.z_dim == 16;
  if (!official && (FindKey(json, "vae_mean") == nullptr || FindKey(json, "vae_std") == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("vae config: z_dim ", c.z_dim, " needs vae_mean and vae_std"));
  }
  TV_ASSIGN_OR_RETURN(c.mean, FloatList(json, "vae_mean", c.z_dim, kOfficialMean));
  TV_ASSIGN_OR_RETURN(c.std, FloatList(json, "vae_std", c.z_dim, kOfficialStd));
  for (int i = 0; i < c.z_dim; ++i) {
    if (!(c.std[i] > 0))
      return absl::InvalidArgumentError(
          absl::StrCat("vae config: vae_std[", i, "] is not positive"));
  }
  return c;
}

absl::StatusOr<std::unique_ptr<WanVae>> WanVae::Load(const VaeConfig& config,
                                                     io::WeightSet& weights, Backend& backend,
                                                     bool encoder, bool decoder) {
  if (!encoder && !decoder)
    return absl::InvalidArgumentError("vae load: neither encoder nor decoder requested");
  if (static_cast<int>(config.mean.size()) != config.z_dim ||
      static_cast<int>(config.std.size()) != config.z_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("vae load: mean/std must hold z_dim = ", config.z_dim, " values"));
  }
  if (config.dim_mult.empty() || config.temporal_downsample.size() + 1 != config.dim_mult.size()) {
    return absl::InvalidArgumentError("vae load: dim_mult / temporal_downsample lengths disagree");
  }
  auto vae = std::make_unique<WanVaeImpl>(config, backend);
  const int64_t z = config.z_dim;
  Loader top(weights, backend);
  if (encoder) {
    TV_ASSIGN_OR_RETURN(vae->enc_, LoadEncoder(config, weights, backend));
    TV_ASSIGN_OR_RETURN(vae->conv1_, top.Conv3("conv1", 2 * z, 2 * z, 1, 1));
    vae->has_encoder_ = true;
  }
  if (decoder) {
    TV_ASSIGN_OR_RETURN(vae->dec_, LoadDecoder(config, weights, backend));
    TV_ASSIGN_OR_RETURN(vae->conv2_, top.Conv3("conv2", z, z, 1, 1));
    vae->has_decoder_ = true;
  }
  // The half not asked for is present in full checkpoints; mark it used without loading it.
  std::vector<std::string> skip;
  for (const auto& [name, entry] : weights.entries()) {
    const bool enc_key = name.starts_with("encoder.") || name.starts_with("conv1.");
    const bool dec_key = name.starts_with("decoder.") || name.starts_with("conv2.");
    if ((enc_key && !encoder) || (dec_key && !decoder)) skip.push_back(name);
  }
  for (const std::string& name : skip) weights.Ignore(name);
  TV_RETURN_IF_ERROR(weights.CheckAllUsed());
  return vae;
}

}  // namespace turbovid::engine
