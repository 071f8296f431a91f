// Wan VAE kernels: 3-D convolution as an implicit GEMM on tensor cores (bf16 in, fp32
// accumulate, bias fused), the VAE channel RMS norm and nearest x2 spatial upsampling.
// y[co, to, ho, wo] = bias[co] + sum_{ci,dt,dh,dw} w[co, ci, dt, dh, dw] ·
//                     x[ci, to·st + dt − pt, ho·sh + dh − ph, wo·sw + dw − pw] (zero outside x)
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/kernel_types.h"

namespace turbovid::kernels {

// Which conv3d kernel runs. kAuto takes the fastest one that accepts the shapes.
//  kDirect: one thread per output, fp32 math (any shapes; the independent check path).
//  kGemm:   implicit GEMM, 64x64 tiles, gathers any stride/kernel/padding, x BF16 or F32.
//  kHalo:   implicit GEMM, 96 x (TR·16) tiles over a shared-memory input halo reused by all
//           kh·kw taps; spatial stride 1, kw 1 (pad 0) or 3 (pad 1), W % 8 == 0, x BF16
//           16-byte aligned, packed weights (LaunchConv3dPackWeights).
enum class Conv3dPath : int { kAuto = 0, kDirect = 1, kGemm = 2, kHalo = 3 };

struct Conv3dArgs {
  ConstBuf x;     // [cin, t, h, w]
  ConstBuf w;     // [cout, cin, kt, kh, kw]
  ConstBuf bias;  // [cout] or data == nullptr
  MutBuf y;       // [cout, to, ho, wo]
  // Halo path only: bf16 [kt][ceil(cin/16)][kh·kw][cout][16] (Conv3dPackedElems elements).
  const void* w_packed = nullptr;
  int64_t cin = 0, t = 0, h = 0, w_in = 0;  // input extents (w_in: width)
  int64_t cout = 0, kt = 1, kh = 1, kw = 1;
  int64_t to = 0, ho = 0, wo = 0;  // output extents (checked by the caller)
  int stride[3] = {1, 1, 1};       // (t, h, w)
  int pad_lo[3] = {0, 0, 0};       // zeros before (t, h, w); the far side follows from to/ho/wo
  Conv3dPath path = Conv3dPath::kAuto;
};

// The path LaunchConv3d will take for `args` (args.path if that path accepts the shapes, else
// the best one that does). Host-only; reads the device's shared-memory limit.
Conv3dPath Conv3dChoosePath(const Conv3dArgs& args);
// Elements of the packed weight buffer the halo path reads.
int64_t Conv3dPackedElems(const Conv3dArgs& args);
// Packs args.w (BF16 or F32) into `packed` (bf16, Conv3dPackedElems elements); input channels
// past cin are zero.
cudaError_t LaunchConv3dPackWeights(const Conv3dArgs& args, void* packed, cudaStream_t stream);
// Runs the path Conv3dChoosePath picks. y must not alias x.
cudaError_t LaunchConv3d(const Conv3dArgs& args, cudaStream_t stream);

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
