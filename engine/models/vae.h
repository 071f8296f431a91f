// Wan2.1 VAE (z_dim 16, 4x8x8): causal-conv encoder and decoder with the latent mean/std
// normalisation. Math: docs/model-math.md §5.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/comm/communicator.h"
#include "engine/core/backend.h"
#include "engine/core/json.h"
#include "engine/io/weights.h"

namespace turbovid::engine {

struct VaeConfig {
  int dim = 96;
  int z_dim = 16;
  std::vector<int> dim_mult{1, 2, 4, 4};
  int num_res_blocks = 2;
  std::vector<bool> temporal_downsample{false, true, true};
  std::vector<float> mean;  // [z_dim] official constants unless given
  std::vector<float> std;   // [z_dim]
  static absl::StatusOr<VaeConfig> FromJson(const Json& json);  // fills official mean/std
};

class WanVae {
 public:
  virtual ~WanVae() = default;
  // Loads the halves asked for (the other half's tensors are ignored, not required).
  static absl::StatusOr<std::unique_ptr<WanVae>> Load(const VaeConfig& config,
                                                      io::WeightSet& weights, Backend& backend,
                                                      bool encoder, bool decoder);
  // z: normalised latent [z_dim, T, H, W] host F32 → video [3, 1+4(T-1), 8H, 8W] host F32,
  // NOT clamped. `on_frame(i, T)` is called after each latent frame is decoded (may be null).
  // With `on_chunk` the video stays on the backend: `on_chunk(chunk, first)` gets each latent
  // frame's video frames [3, n, 8H, 8W] as a backend tensor (compute dtype; first output frame
  // index `first`) as soon as their work is queued, valid during the call (work the caller queues
  // on it runs in order), nothing is downloaded and Decode returns an undefined tensor; an error
  // it returns ends the decode. So a caller can convert and encode a chunk while the next decodes.
  //
  // With `split` the decode is split by rows over its ranks (docs/parallelism.md §4):
  // collective, every rank calls it with the same z; each decodes its band of latent rows (halo
  // rows exchanged before every 3×3 conv), the video chunks are gathered, and rank 0 of `split`
  // alone calls the callbacks and returns the video (the other ranks return an undefined
  // tensor). The latent height must be at least split->size(). A one-rank `split` decodes the
  // whole frame through the same gathers (no halo): the one-rank collectives path.
  using ChunkFn = std::function<absl::Status(const Tensor& chunk, int64_t first)>;
  virtual absl::StatusOr<Tensor> Decode(const Tensor& z, const std::function<void(int, int)>& on_frame = {},
                                        const ChunkFn& on_chunk = {},
                                        comm::Communicator* split = nullptr) const = 0;
  // video: [3, 1+4k, H, W] host F32 in [-1, 1] → normalised μ [z_dim, 1+k, H/8, W/8] host F32.
  virtual absl::StatusOr<Tensor> Encode(const Tensor& video) const = 0;
  virtual const VaeConfig& config() const = 0;
};

// Whether the VAE runs its fused form (docs/model-math.md §5.7: RMS_norm, SiLU and residual adds
// inside the convs) on a backend of `device`: TV_VAE_FUSED=1 or 0 decides; unset, the CPU
// reference runs it and CUDA does not (measured on an H100: the fused convs fall to about 150
// TFLOP/s against 700 for the plain ones, the 480p decode 2.85 s against 1.07 s; see
// docs/benchmarks.md). Read on every Encode/Decode (and by the activation plan).
bool VaeFused(Device device);

}  // namespace turbovid::engine
