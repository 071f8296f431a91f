// umT5 encoder (Wan's T5Encoder: per-layer relative position bias, no attention scaling, gated
// tanh-GELU FFN, T5 RMS norm). Math: docs/model-math.md §4.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/json.h"
#include "engine/io/weights.h"

namespace turbovid::engine {

struct T5Config {
  int vocab = 256384;
  int dim = 4096;
  int dim_attn = 4096;
  int dim_ffn = 10240;
  int num_heads = 64;
  int num_layers = 24;
  int num_buckets = 32;
  int max_distance = 128;
  bool shared_pos = false;
  float eps = 1e-6f;
  static absl::StatusOr<T5Config> FromJson(const Json& json);
};

// Bidirectional relative-position bucket of rel = k_index - q_index (docs/model-math.md §4.3), with
// the logarithmic part evaluated in fp32 like the reference.
int T5RelativeBucket(int64_t rel, int num_buckets, int max_distance);

class UmT5Encoder {
 public:
  virtual ~UmT5Encoder() = default;
  static absl::StatusOr<std::unique_ptr<UmT5Encoder>> Load(const T5Config& config,
                                                           io::WeightSet& weights,
                                                           Backend& backend);
  // ids: real tokens incl. EOS (no padding). Returns [L, dim] host F32.
  virtual absl::StatusOr<Tensor> Encode(const std::vector<int64_t>& ids) const = 0;
  virtual const T5Config& config() const = 0;
};

}  // namespace turbovid::engine
