// Attention launchers. LaunchAttention is the general kernel (any dtype mix, additive bias, head
// dims up to 512, CUDA cores, fp32 math); kernels/flash_attention.h holds the tensor-core ones.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/flash_attention.h"
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
// 16 fp32 accumulator values per lane of a warp; also the shared-memory limit (about 96 KB at
// d = dv = 512, under the 99 KB a block may opt into on sm_120).
constexpr int kAttentionMaxHeadDim = 512;
cudaError_t LaunchAttention(const AttentionArgs& args, cudaStream_t stream);

}  // namespace turbovid::kernels
