// Simple non-causal attention (correctness baseline, not FA3): one warp per (query, head), online
// softmax in fp32 over all keys, optional additive bias [N, Lq, Lk]. Head dims up to 128.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/kernel_types.h"

namespace turbovid::kernels {

struct AttentionArgs {
  ConstBuf q;     // [lq, heads, d]
  ConstBuf k;     // [lk, heads, d]
  ConstBuf v;     // [lk, heads, dv]
  ConstBuf bias;  // [heads, lq, lk] or null
  MutBuf out;     // [lq, heads, dv]
  int64_t lq = 0;
  int64_t lk = 0;
  int64_t heads = 0;
  int d = 0;
  int dv = 0;
  float scale = 1.f;
};
constexpr int kAttentionMaxHeadDim = 128;  // 4 fp32 values per lane of one warp
cudaError_t LaunchAttention(const AttentionArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
