// The byte counts the memory planner (engine/core/memory_plan.h) works on, for a job on a model:
// weights from the checkpoint's tensor inventory and the backend's dtypes, activations from the
// activation plan (activation_plan.h) plus the job's own uploads. docs/memory.md §1 gives the
// arithmetic and the figures for the real Wan sizes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/memory_plan.h"
#include "engine/core/tensor.h"
#include "engine/pipeline/activation_plan.h"

namespace turbovid::engine {

// (checkpoint tensor name, shape), as engine/testing/tiny_checkpoint.h lists a model's tensors.
using WeightInventory = std::vector<std::pair<std::string, Shape>>;
// Bytes the backend accounts a tensor of n bytes at (Backend::AccountedBytes; identity on CPU).
using AccountFn = std::function<int64_t(int64_t)>;

// Device bytes of a loaded model whose checkpoint holds `inventory`: every tensor in `dtype`
// (the backend's compute dtype), except, with `int8_blocks`, the DiT block linears
// (blocks.*.weight of rank 2 but proj_l), held as int8 [N, K] plus F32 scales [⌈N/128⌉, ⌈K/128⌉].
int64_t WeightBytes(const WeightInventory& inventory, DType dtype, bool int8_blocks,
                    const AccountFn& account);

// How the DiT block linears are held: in the compute dtype, W8A8 int8 (+ 128x128 tile scales),
// or FP8 e4m3 (turbo-fp8: 1 byte a weight + one F32 scale per output row).
enum class BlockLinearWeights : uint8_t { kDense, kInt8, kFp8 };
int64_t WeightBytes(const WeightInventory& inventory, DType dtype, BlockLinearWeights blocks,
                    const AccountFn& account);

// Each stage's activations plus the job's inputs uploaded beside them (text context, x and y per
// forward, RoPE tables, the VAE's video or latent), for `models` and `job`; weights given.
MemoryNeeds JobMemoryNeeds(const ActivationModels& models, const ActivationJob& job,
                           std::vector<int64_t> expert_bytes, int64_t text_encoder_bytes,
                           int64_t vae_bytes);

}  // namespace turbovid::engine
