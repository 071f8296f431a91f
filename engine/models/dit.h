// Wan2.1 / Wan2.2 DiT (WanModel) over the Backend interface: T2V (16 input channels) and I2V
// (36 = x | mask | latent), dense / SLA self-attention, bf16, W8A8 int8 or FP8 e4m3 block linears.
// Math: docs/model-math.md §3 (DiT), §9 (SLA), §11 (int8 linears; FP8 linears §11.6).
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/json.h"
#include "engine/io/weights.h"
#include "engine/models/attention_mode.h"

namespace turbovid::engine {
namespace comm {
class ParallelGroups;
}  // namespace comm

struct DitConfig {
  std::string model_type = "t2v";  // t2v | i2v
  int in_dim = 16;
  int dim = 1536;
  int ffn_dim = 8960;
  int freq_dim = 256;
  int text_dim = 4096;
  int text_len = 512;
  int out_dim = 16;
  int num_heads = 12;
  int num_layers = 30;
  float eps = 1e-6f;
  std::array<int, 3> patch_size{1, 2, 2};

  int head_dim() const { return dim / num_heads; }
  // From a checkpoint config.json or a golden case "config" object; errors name the key.
  static absl::StatusOr<DitConfig> FromJson(const Json& json);
};

// Load-time options: SLA tile sizes, whether the checkpoint must hold the SLA tensors, and the
// parallel groups of this rank.
struct DitOptions {
  bool require_sla = false;  // fail the load unless every block has proj_l (SLA possible)
  int sla_block_q = 128;     // query tokens per SLA block
  int sla_block_k = 64;      // key tokens per SLA block
  // Tensor × sequence parallelism (docs/parallelism.md): this rank loads only its shard of the
  // block weights (heads / FFN columns of its tensor rank) and, in Forward, works on its share of
  // the tokens; every call (PrepareContext, Forward) is then collective over the groups, and
  // every rank gets the whole result. Null: one rank. Must outlive the model.
  const comm::ParallelGroups* parallel = nullptr;
  // A layout whose tensor x sequence ranks do not divide the heads is refused (InvalidArgument)
  // unless this is set: then the attention that cannot split is replicated (tensor parallel:
  // every rank holds all of Q/K/V/O and runs every head, only the FFN is split; sequence
  // parallel: q/k/v of all tokens are gathered and every rank attends over all of them). Exact,
  // but the attention gains nothing; the golden runs of 1-head cases use it.
  bool allow_replicated_attention = false;
  // turbo-fp8 (docs/model-math.md §11.6): every block linear but proj_l (self/cross-attention q,
  // k, v, o, ffn.0, ffn.2) quantised at load to FP8 e4m3 with a per-output-row scale, on the
  // backend, the bf16 weight freed after each; the forward then runs Fp8LinearOp. Needs a bf16
  // checkpoint (an int8 one is refused). With tensor parallelism each rank quantises its own
  // shard: an input-split linear (o, ffn.2) then has per-rank row scales.
  bool fp8_linears = false;
  // The residual stream (the tokens between blocks) in F32, as upstream keeps it, rather than in
  // the backend's compute dtype: the gated adds accumulate in fp32 and the next LayerNorm reads
  // the fp32 sum (docs/model-math.md §3.5). Only changes anything where the compute dtype is
  // narrower (CUDA: bf16). The environment variable TV_DIT_RESIDUAL=bf16 turns it off at load,
  // to compare the two in one build.
  bool residual_f32 = true;
};

// Per-call options of WanDit::Forward: two forwards on one model may use different ones.
struct DitForwardOptions {
  AttentionMode attention = AttentionMode::kDense;
  float sla_topk = 0.1f;  // SLA, SageSLA: fraction of key blocks each query block keeps, (0, 1]
  // SageSLA: which upstream GPU build to reproduce; it fixes the block sizes (64 x 128 or
  // 128 x 64), independent of the loaded SLA tiles.
  SageSlaVariant sagesla = SageSlaVariant::kSm90;
  // Weight streaming (docs/memory.md §4): called before the forward uses weight group g (see
  // WanDit::WeightGroups) — g = 0 before the first op, 1 + i before block i — so that the caller
  // can make the compute wait for that group's upload. Null: nothing to wait for.
  const std::function<absl::Status(int group)>* before_group = nullptr;
};

// Receives named intermediate tensors (host copies), e.g. "blocks.0.self_attn.sparse_map".
using TensorSink = std::function<void(const std::string& name, const Tensor& host)>;

class WanDit {
 public:
  // Text context after the text MLP plus per-block cross-attention K/V; constant per prompt.
  struct Context {
    std::vector<Tensor> k;  // per block, [text_len, N, D]
    std::vector<Tensor> v;  // per block, [text_len, N, D]
  };

  virtual ~WanDit() = default;
  // Loads and checks every tensor against `config` (missing/extra/misshapen → error naming the
  // file and tensor). Quantised (-quant) checkpoints are detected from `int8_weight` keys.
  static absl::StatusOr<std::unique_ptr<WanDit>> Load(const DitConfig& config,
                                                      io::WeightSet& weights, Backend& backend,
                                                      const DitOptions& options);

  // context: [L, text_dim] host F32, L ≤ text_len (zero-padded to text_len, all rows attended).
  // `before_group` as in DitForwardOptions (group 0 before the text MLP, 1 + i before block i).
  virtual absl::StatusOr<Context> PrepareContext(
      const Tensor& context,
      const std::function<absl::Status(int group)>* before_group = nullptr) const = 0;

  // The model's device weight tensors (shallow copies sharing the storage) in groups: group 0 the
  // embeddings and the head, group 1 + i block i's. Two experts of one architecture list tensors
  // of the same shapes and dtypes in the same order, so one's bytes can be copied into the
  // other's (the weight slot of docs/memory.md §4).
  virtual std::vector<std::vector<Tensor>> WeightGroups() const = 0;

  // x: [in_dim - y_channels, T, H, W] host F32; y: [20, T, H, W] host F32 for I2V or null;
  // timestep: the value fed to the sinusoid (Wan: integer 1000σ; rCM: bf16(1000 t)).
  // `attention` picks the self-attention of this call only (CheckForwardOptions first), so
  // concurrent forwards on one model may differ. Returns the velocity [out_dim, T, H, W] host F32.
  virtual absl::StatusOr<Tensor> Forward(const Tensor& x, const Tensor* y, double timestep,
                                         const Context& context, const DitForwardOptions& attention,
                                         const TensorSink* sink = nullptr) const = 0;

  // Whether this model can run a forward with `attention` (SLA block sizes stay as loaded).
  // SLA and SageSLA need the checkpoint's proj_l tensors, which are loaded whenever present:
  // without them FailedPrecondition; a topk outside (0, 1] is InvalidArgument; SageSLA on a
  // backend without the op is Unimplemented.
  virtual absl::Status CheckForwardOptions(const DitForwardOptions& attention) const = 0;

  virtual const DitConfig& config() const = 0;
  virtual bool quantized() const = 0;
  // Block linears in FP8 e4m3 (DitOptions::fp8_linears).
  virtual bool fp8() const = 0;
  // The dtype of the residual stream (DitOptions::residual_f32 on this backend).
  virtual DType residual_dtype() const = 0;
};

}  // namespace turbovid::engine
