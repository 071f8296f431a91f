// Wan VAE kernels: 3-D convolution as an implicit GEMM on tensor cores (bf16 in, fp32
// accumulate, bias fused), the VAE channel RMS norm (and its statistic alone) and nearest x2
// spatial upsampling.
// y[co, to, ho, wo] = bias[co] + sum_{ci,dt,dh,dw} w[co, ci, dt, dh, dw] ·
//                     f(x)[ci, to·st + dt − pt, ho·sh + dh − ph, wo·sw + dw − pw] (zero outside x)
//                     (+ residual[co, to, ho, wo])
// with the optional input transform f(v) = silu?(v · inv_rms[t, h, w] · gamma[ci]) applied to the
// values read (the VAE's RMS_norm + SiLU fused into the operand load; padding stays zero).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_options.h"
#include "kernels/kernel_types.h"

namespace turbovid::kernels {

// Which conv3d kernel runs (Conv3dPath, kernels/kernel_options.h). kAuto takes the fastest one
// that accepts the shapes.
//  kDirect: one thread per output, fp32 math (any shapes; the independent check path).
//  kGemm:   implicit GEMM, 64x64 tiles, gathers any stride/kernel/padding, x BF16 or F32.
//  kHalo:   implicit GEMM, 96 x (TR·16) tiles over a shared-memory input halo reused by all
//           kh·kw taps; spatial stride 1, kw 1 (pad 0) or 3 (pad 1), W % 8 == 0, x BF16
//           16-byte aligned, packed weights (LaunchConv3dPackWeights).
//  kSm90:   Hopper (sm_90a build, compute capability 9.0) TMA + wgmma implicit GEMM
//           (conv_sm90.cu); spatial stride 1, kh = kw = 3 with pad_w 1 or kh = kw = 1 with
//           pad_w 0, W % 8 == 0, x BF16 16-byte aligned, its own packed weights.
// Every path adds the residual in its epilogue. The input transform (norm / silu) is applied by
// the direct, gemm and halo paths, and by the sm90 path for kh = kw = 3 (its builder warps
// transform the tile as they make the shifted copies; inv_rms 16-byte aligned); sm90 does not
// take a transformed 1x1 conv, which goes to a portable path.
struct Conv3dArgs {
  ConstBuf x;     // [cin, t, h, w]
  ConstBuf w;     // [cout, cin, kt, kh, kw]
  ConstBuf bias;  // [cout] or data == nullptr
  MutBuf y;       // [cout, to, ho, wo]
  // Halo and sm90 paths: the weights packed for that path (Conv3dPackedElems bf16 elements).
  //   halo: [kt][ceil(cin/16)][kh·kw][cout][16]; sm90: [kt·kh·kw][cin][ceil(cout/8)·8].
  const void* w_packed = nullptr;
  // Optional history frames in front of x along T (a causal conv's cache): [cin, t_prev, h, w],
  // so the conv sees x_prev ++ x without the concatenation being copied. Only the sm90 path
  // takes it (t_prev > 0); callers concatenate for the others.
  ConstBuf x_prev;
  int64_t t_prev = 0;
  int64_t prev_first = 0;  // x_prev is a ring: frames in time order prev_first, +1, ... mod t_prev
  // Fused input transform (norm when norm_gamma.data is set, then silu): inv_rms [t, h, w] F32 of
  // x, inv_rms_prev [t_prev, h, w] of x_prev (same ring order), gamma [cin].
  ConstBuf norm_gamma;
  const float* inv_rms = nullptr;
  const float* inv_rms_prev = nullptr;
  bool silu = false;
  // Added after the bias; [cout, to, ho, wo] like y, may be y itself (read before written).
  ConstBuf residual;
  int64_t cin = 0, t = 0, h = 0, w_in = 0;  // input extents (w_in: width; t: frames of x)
  int64_t cout = 0, kt = 1, kh = 1, kw = 1;
  int64_t to = 0, ho = 0, wo = 0;  // output extents (checked by the caller)
  int stride[3] = {1, 1, 1};       // (t, h, w)
  int pad_lo[3] = {0, 0, 0};       // zeros before (t, h, w); the far side follows from to/ho/wo
  Conv3dPath path = Conv3dPath::kAuto;
  bool sm90_debug = false;  // the sm90 path prints its host-side failures to stderr
};

// The path LaunchConv3d will take for `args`, never kAuto: args.path if that path accepts the
// shapes, else the best one that does (kAuto: sm90, then halo, then gemm). Host-only; reads the
// current device's compute capability and shared-memory limit.
Conv3dPath Conv3dChoosePath(const Conv3dArgs& args);
// Elements of the packed weight buffer that the path Conv3dChoosePath(args) picks reads (halo,
// sm90); 0 for the paths that read args.w directly. Callers set args.path to the chosen path
// so that packing and launch agree.
int64_t Conv3dPackedElems(const Conv3dArgs& args);
// Packs args.w (BF16 or F32) into `packed` (bf16, Conv3dPackedElems elements) for that path;
// channels past cin / cout are zero.
cudaError_t LaunchConv3dPackWeights(const Conv3dArgs& args, void* packed, cudaStream_t stream);
// Runs the path Conv3dChoosePath picks. y must not alias x.
cudaError_t LaunchConv3d(const Conv3dArgs& args, cudaStream_t stream);

// The sm90 path (conv_sm90.cu). Built: compiled with sm_90a device code. Available: built and the
// current device has compute capability 9.0. Accepts: available and the shapes fit.
bool Conv3dSm90Built();
bool Conv3dSm90Available();
bool Conv3dSm90Accepts(const Conv3dArgs& args);
int64_t Conv3dSm90PackedElems(const Conv3dArgs& args);
cudaError_t LaunchConv3dSm90PackWeights(const Conv3dArgs& args, void* packed, cudaStream_t stream);
// Runs the sm90 kernel; cudaErrorNotSupported when not available, InvalidValue when the shapes
// or the packed weights do not fit. args.sm90_debug (TV_CONV_SM90_DEBUG=1) prints every host-side
// failure (tensor-map encoding, attributes, launch) to stderr.
cudaError_t LaunchConv3dSm90(const Conv3dArgs& args, cudaStream_t stream);

// inv_rms[p] = √C / max(‖x[:, p]‖₂, 1e-12) (F32), Conv3dArgs::inv_rms.
struct ChannelRmsStatsArgs {
  ConstBuf x;      // [channels, positions]
  float* inv_rms;  // [positions]
  int64_t channels = 0;
  int64_t positions = 0;
};
cudaError_t LaunchChannelRmsStats(const ChannelRmsStatsArgs& args, cudaStream_t stream);

// y[c, p] = x[c, p] / max(‖x[:, p]‖₂, 1e-12) · √C · gamma[c]; y may alias x.
struct ChannelRmsNormArgs {
  ConstBuf x;      // [channels, positions]
  ConstBuf gamma;  // [channels]
  MutBuf y;        // [channels, positions]
  int64_t channels = 0;
  int64_t positions = 0;
  bool silu = false;  // y = silu(norm) when set
};
cudaError_t LaunchChannelRmsNorm(const ChannelRmsNormArgs& args, cudaStream_t stream);

// y[p, 2i + a, 2j + b] = x[p, i, j] for a, b ∈ {0, 1}.
struct Upsample2xArgs {
  ConstBuf x;  // [planes, h, w]
  MutBuf y;    // [planes, 2h, 2w]
  int64_t planes = 0;
  int64_t h = 0;
  int64_t w = 0;
};
cudaError_t LaunchUpsample2x(const Upsample2xArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
