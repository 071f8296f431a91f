// Tensor-core flash attention (non-causal, no bias) for bf16 q/k/v/out with D = Dv in {64, 128}:
// a portable mma.sync kernel (sm_90a, sm_120a) and a Hopper wgmma + TMA kernel (sm_90a only).
// Same arguments as the simple kernel (kernels/attention.h); out = softmax(scale * q k^T) v.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/kernel_options.h"

namespace turbovid::kernels {

struct AttentionArgs;  // kernels/attention.h

// True when the flash kernels accept `args`: no bias, all four buffers bf16 and 16-byte aligned,
// d == dv in {64, 128}, lq >= 0, lk > 0, heads > 0, scale finite and > 0.
bool FlashAttentionSupports(const AttentionArgs& args);

// FA2-style mma.sync kernel. `warps` picks the query tile (4 → 64 rows, 8 → 128 rows; 0 = the
// default for the device). Returns cudaErrorInvalidValue when FlashAttentionSupports is false.
cudaError_t LaunchFlashAttention(const AttentionArgs& args, cudaStream_t stream, int warps = 0);

// Whether the Hopper kernel is enabled in the automatic dispatch (it is always callable through
// AttentionPath::kSm90, TV_ATTENTION=sm90, on an sm_90 device).
bool FlashAttentionSm90Enabled();
// FA3-style kernel: TMA loads into a shared-memory ring guarded by mbarriers, one producer warp,
// two consumer warpgroups issuing wgmma. Only d == dv == 128. cudaErrorNotSupported when the
// library was built without sm_90a or the shape is outside what the kernel takes. `variant`
// forces one of the compiled variants; kAuto picks by key length.
cudaError_t LaunchFlashAttentionSm90(const AttentionArgs& args, cudaStream_t stream,
                                     FaSm90Variant variant = FaSm90Variant::kAuto);

}  // namespace turbovid::kernels
