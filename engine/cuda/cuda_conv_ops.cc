// CUDA ops of the Wan VAE: conv3d (argument checks mirroring the CPU reference, packed-weight
// cache for the halo and sm90 paths, the fused RMS_norm / SiLU input and residual), the channel
// RMS norm and its statistic, and nearest x2 upsampling.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/core/ops.h"
#include "engine/cuda/cuda_backend_internal.h"
#include "kernels/conv.h"

namespace turbovid::engine::cuda {
namespace {

using kernels::ConstBuf;
using kernels::Conv3dPath;

// Packed copies of conv weights, one per (weight tensor, path): the halo and sm90 kernels read
// different packings, and one layer may meet both (the sm90 path also needs x 16-byte aligned).
// An entry is valid while the weight's storage lives (weak_ptr): a freed weight whose address is
// reused by a new tensor never matches the old entry. Weights are assumed not to change in place.
class PackedWeights {
 public:
  // `a.path` is the path the launch will take (kHalo or kSm90).
  absl::StatusOr<Tensor> Get(CudaBackend& b, const Tensor& w, const kernels::Conv3dArgs& a) {
    std::lock_guard<std::mutex> lock(mu_);
    const Key key{w.raw(), static_cast<int>(a.path)};
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      const Entry& e = it->second;
      const std::shared_ptr<Storage> live = e.storage.lock();
      if (live != nullptr && live == w.storage() && e.offset == w.byte_offset() &&
          e.shape == w.shape() && e.dtype == w.dtype()) {
        return e.packed;
      }
      entries_.erase(it);
    }
    for (auto i = entries_.begin(); i != entries_.end();) {
      i = i->second.storage.expired() ? entries_.erase(i) : std::next(i);
    }
    TV_ASSIGN_OR_RETURN(Tensor packed,
                        b.AllocateResident(DType::kBF16, {kernels::Conv3dPackedElems(a)}));
    TV_RETURN_IF_ERROR(CudaStatus(kernels::LaunchConv3dPackWeights(a, packed.raw(), b.stream()),
                                  "conv3d pack", w.Describe()));
    entries_[key] = Entry{w.storage(), w.byte_offset(), w.shape(), w.dtype(), packed};
    return packed;
  }

 private:
  using Key = std::pair<const void*, int>;  // weight data, Conv3dPath
  struct Entry {
    std::weak_ptr<Storage> storage;
    size_t offset;
    Shape shape;
    DType dtype;
    Tensor packed;  // bf16, kernels/conv.h Conv3dArgs::w_packed
  };
  std::mutex mu_;
  std::map<Key, Entry> entries_;
};

// Whether two tensors share bytes (the conv and upsample kernels need y apart from x).
bool Overlaps(const Tensor& a, const Tensor& b) {
  if (a.storage() != b.storage()) return false;
  const size_t a0 = a.byte_offset(), b0 = b.byte_offset();
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

// Output extent of one axis, or a negative number when the kernel does not fit.
int64_t OutExtent(int64_t in, int lo, int hi, int64_t k, int s) {
  const int64_t padded = in + lo + hi;
  if (padded < k) return -1;
  return (padded - k) / s + 1;
}

absl::Status RunConv3d(CudaBackend& b, PackedWeights& cache, const Conv3dOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "x", op.x));
  TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "w", op.w));
  TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "y", op.y));
  if (op.x->rank() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("conv3d: x ", op.x->Describe(), " is not [Cin, T, H, W]"));
  }
  if (op.w->rank() != 5 || op.w->dim(1) != op.x->dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "conv3d: w ", op.w->Describe(), " is not [Cout, ", op.x->dim(0), ", kt, kh, kw]"));
  }
  kernels::Conv3dArgs a;
  if (op.x_prev != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "x_prev", op.x_prev));
    if (op.x_prev->rank() != 4 || op.x_prev->dim(0) != op.x->dim(0) ||
        op.x_prev->dim(2) != op.x->dim(2) || op.x_prev->dim(3) != op.x->dim(3) ||
        op.x_prev->dtype() != op.x->dtype()) {
      return absl::InvalidArgumentError(
          absl::StrCat("conv3d: x_prev ", op.x_prev->Describe(), " is not [", op.x->dim(0),
                       ", Tp, ", op.x->dim(2), ", ", op.x->dim(3), "] like x ", op.x->Describe()));
    }
    a.t_prev = op.x_prev->dim(1);
    if (op.x_prev_first < 0 || op.x_prev_first >= std::max<int64_t>(a.t_prev, 1)) {
      return absl::InvalidArgumentError(absl::StrCat("conv3d: x_prev_first ", op.x_prev_first,
                                                     " is outside x_prev ", op.x_prev->Describe()));
    }
    a.prev_first = op.x_prev_first;
    TV_ASSIGN_OR_RETURN(a.x_prev, In("conv3d", "x_prev", op.x_prev));
    if (Overlaps(*op.y, *op.x_prev)) {
      return absl::InvalidArgumentError(
          absl::StrCat("conv3d: y ", op.y->Describe(), " overlaps x_prev"));
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (op.stride[i] < 1 || op.pad_lo[i] < 0 || op.pad_hi[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("conv3d: axis ", i, " has stride ",
                                                     op.stride[i], ", pads ", op.pad_lo[i], "/",
                                                     op.pad_hi[i]));
    }
    a.stride[i] = op.stride[i];
    a.pad_lo[i] = op.pad_lo[i];
  }
  a.cin = op.x->dim(0);
  a.t = op.x->dim(1);
  a.h = op.x->dim(2);
  a.w_in = op.x->dim(3);
  a.cout = op.w->dim(0);
  a.kt = op.w->dim(2);
  a.kh = op.w->dim(3);
  a.kw = op.w->dim(4);
  a.to = OutExtent(a.t_prev + a.t, op.pad_lo[0], op.pad_hi[0], a.kt, op.stride[0]);
  a.ho = OutExtent(a.h, op.pad_lo[1], op.pad_hi[1], a.kh, op.stride[1]);
  a.wo = OutExtent(a.w_in, op.pad_lo[2], op.pad_hi[2], a.kw, op.stride[2]);
  if (a.to < 1 || a.ho < 1 || a.wo < 1) {
    return absl::InvalidArgumentError(absl::StrCat("conv3d: kernel ", op.w->Describe(),
                                                   " does not fit padded x ", op.x->Describe()));
  }
  TV_RETURN_IF_ERROR(ExpectShape("conv3d", "y", op.y, {a.cout, a.to, a.ho, a.wo}));
  TV_RETURN_IF_ERROR(CheckConv3dFusion(op, a.cin, a.t, a.h, a.w_in, a.t_prev, op.y->shape()));
  if (op.norm_gamma != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "norm_gamma", op.norm_gamma));
    TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "norm_inv_rms", op.norm_inv_rms));
    TV_ASSIGN_OR_RETURN(a.norm_gamma, In("conv3d", "norm_gamma", op.norm_gamma));
    a.inv_rms = static_cast<const float*>(op.norm_inv_rms->raw());
    if (op.norm_inv_rms_prev != nullptr) {
      TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "norm_inv_rms_prev", op.norm_inv_rms_prev));
      a.inv_rms_prev = static_cast<const float*>(op.norm_inv_rms_prev->raw());
    }
  }
  a.silu = op.silu;
  if (op.residual != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDevice("conv3d", "residual", op.residual));
    TV_ASSIGN_OR_RETURN(a.residual, In("conv3d", "residual", op.residual));
  }
  if (op.bias != nullptr) {
    TV_RETURN_IF_ERROR(ExpectDeviceShape("conv3d", "bias", op.bias, {a.cout}));
    TV_ASSIGN_OR_RETURN(a.bias, In("conv3d", "bias", op.bias));
  }
  TV_ASSIGN_OR_RETURN(a.x, In("conv3d", "x", op.x));
  TV_ASSIGN_OR_RETURN(a.w, In("conv3d", "w", op.w));
  TV_ASSIGN_OR_RETURN(a.y, Out("conv3d", "y", op.y));
  if (Overlaps(*op.y, *op.x)) {
    return absl::InvalidArgumentError(absl::StrCat("conv3d: y ", op.y->Describe(), " overlaps x"));
  }
  const std::string shapes =
      absl::StrCat("x ", op.x->Describe(), " w ", op.w->Describe(), " y ", op.y->Describe(),
                   " stride ", a.stride[0], "/", a.stride[1], "/", a.stride[2], " pad ",
                   a.pad_lo[0], "/", a.pad_lo[1], "/", a.pad_lo[2]);
  // KernelOptions::conv3d (TV_CONV3D_PATH) forces a kernel (parity checks, benchmarks). A forced
  // path that does not take the shapes falls back to the default choice, except sm90 on a device
  // that has it (below).
  a.path = b.kernel_options().conv3d;
  a.sm90_debug = b.kernel_options().conv_sm90_debug;
  Conv3dPath chosen = kernels::Conv3dChoosePath(a);
  Tensor joined, joined_inv;  // x_prev ++ x (and statistics), for the paths that do not read
                              // x_prev themselves
  if (a.t_prev > 0 && chosen != Conv3dPath::kSm90) {
    const Ops ops(b);
    // The ring in time order along `axis`.
    const auto join = [&](const Tensor& prev, const Tensor& cur,
                          int axis) -> absl::StatusOr<Tensor> {
      if (a.prev_first == 0) return ops.Concat({prev, cur}, axis);
      TV_ASSIGN_OR_RETURN(Tensor older,
                          ops.Narrow(prev, axis, a.prev_first, a.t_prev - a.prev_first));
      TV_ASSIGN_OR_RETURN(Tensor newer, ops.Narrow(prev, axis, 0, a.prev_first));
      return ops.Concat({older, newer, cur}, axis);
    };
    TV_ASSIGN_OR_RETURN(joined, join(*op.x_prev, *op.x, 1));
    if (op.norm_inv_rms_prev != nullptr) {
      TV_ASSIGN_OR_RETURN(joined_inv, join(*op.norm_inv_rms_prev, *op.norm_inv_rms, 0));
      a.inv_rms = static_cast<const float*>(joined_inv.raw());
      a.inv_rms_prev = nullptr;
    }
    TV_ASSIGN_OR_RETURN(a.x, In("conv3d", "x", &joined));
    a.t += a.t_prev;
    a.t_prev = 0;
    a.prev_first = 0;
    a.x_prev = {};
    chosen = kernels::Conv3dChoosePath(a);
  }
  // Forced sm90 on a device and build that have it must run it: a parity case for the sm90
  // kernel must not pass on another one. Elsewhere (no sm_90a) it falls back like the others.
  if (a.path == Conv3dPath::kSm90 && chosen != Conv3dPath::kSm90 && b.sm_version() == 90 &&
      kernels::Conv3dSm90Available()) {
    return absl::UnimplementedError(absl::StrCat(
        "conv3d: the sm90 path is forced (TV_CONV3D_PATH=sm90) but its kernel does not take ",
        shapes));
  }
  a.path = chosen;
  Tensor packed;  // kept alive until the launch is queued (the cache holds it too)
  if ((chosen == Conv3dPath::kHalo || chosen == Conv3dPath::kSm90) &&
      kernels::Conv3dPackedElems(a) > 0) {
    TV_ASSIGN_OR_RETURN(packed, cache.Get(b, *op.w, a));
    a.w_packed = packed.raw();
  }
  return CudaStatus(kernels::LaunchConv3d(a, b.stream()), "conv3d", shapes);
}

// y may alias x (the kernel reads every channel of a position before writing any).
absl::Status RunChannelRmsNorm(CudaBackend& b, const ChannelRmsNormOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("channel_rms_norm", "x", op.x));
  if (op.x->rank() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel_rms_norm: x ", op.x->Describe(), " is not [C, P]"));
  }
  const int64_t c = op.x->dim(0), p = op.x->dim(1);
  TV_RETURN_IF_ERROR(ExpectDeviceShape("channel_rms_norm", "gamma", op.gamma, {c}));
  TV_RETURN_IF_ERROR(ExpectDeviceShape("channel_rms_norm", "y", op.y, {c, p}));
  kernels::ChannelRmsNormArgs a;
  TV_ASSIGN_OR_RETURN(a.x, In("channel_rms_norm", "x", op.x));
  TV_ASSIGN_OR_RETURN(a.gamma, In("channel_rms_norm", "gamma", op.gamma));
  TV_ASSIGN_OR_RETURN(a.y, Out("channel_rms_norm", "y", op.y));
  a.channels = c;
  a.positions = p;
  a.silu = op.silu;
  return CudaStatus(kernels::LaunchChannelRmsNorm(a, b.stream()), "channel_rms_norm",
                    op.x->Describe());
}

absl::Status RunChannelRmsStats(CudaBackend& b, const ChannelRmsStatsOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("channel_rms_stats", "x", op.x));
  TV_ASSIGN_OR_RETURN(const int64_t p, CheckChannelRmsStats(op));
  TV_RETURN_IF_ERROR(ExpectDevice("channel_rms_stats", "inv_rms", op.inv_rms));
  kernels::ChannelRmsStatsArgs a;
  TV_ASSIGN_OR_RETURN(a.x, In("channel_rms_stats", "x", op.x));
  a.inv_rms = static_cast<float*>(op.inv_rms->raw());
  a.channels = op.x->dim(0);
  a.positions = p;
  return CudaStatus(kernels::LaunchChannelRmsStats(a, b.stream()), "channel_rms_stats",
                    op.x->Describe());
}

absl::Status RunUpsample2x(CudaBackend& b, const Upsample2xOp& op) {
  TV_RETURN_IF_ERROR(ExpectDevice("upsample2x", "x", op.x));
  if (op.x->rank() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("upsample2x: x ", op.x->Describe(), " is not [C, T, H, W]"));
  }
  const int64_t h = op.x->dim(2), w = op.x->dim(3);
  TV_RETURN_IF_ERROR(
      ExpectDeviceShape("upsample2x", "y", op.y, {op.x->dim(0), op.x->dim(1), 2 * h, 2 * w}));
  if (Overlaps(*op.y, *op.x)) {
    return absl::InvalidArgumentError(
        absl::StrCat("upsample2x: y ", op.y->Describe(), " overlaps x"));
  }
  kernels::Upsample2xArgs a;
  TV_ASSIGN_OR_RETURN(a.x, In("upsample2x", "x", op.x));
  TV_ASSIGN_OR_RETURN(a.y, Out("upsample2x", "y", op.y));
  a.planes = op.x->dim(0) * op.x->dim(1);
  a.h = h;
  a.w = w;
  return CudaStatus(kernels::LaunchUpsample2x(a, b.stream()), "upsample2x", op.x->Describe());
}

}  // namespace

void RegisterCudaConvOps(CudaBackend& backend) {
  auto cache = std::make_shared<PackedWeights>();
  RegisterOpFn<Conv3dOp>(
      backend, [cache](CudaBackend& b, const Conv3dOp& op) { return RunConv3d(b, *cache, op); });
  RegisterOp<ChannelRmsNormOp>(backend, &RunChannelRmsNorm);
  RegisterOp<Upsample2xOp>(backend, &RunUpsample2x);
  RegisterOp<ChannelRmsStatsOp>(backend, &RunChannelRmsStats);
}

}  // namespace turbovid::engine::cuda
