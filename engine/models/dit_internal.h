// Internals of the Wan DiT shared by its sources: a Linear (bf16 or int8, whole or one rank's
// tensor-parallel shard), a block's weights, the loader and the model class. dit.cc runs the
// forward pass, dit_load.cc parses configs and loads weights, dit_parallel.cc holds the
// tensor- and sequence-parallel steps (docs/parallelism.md).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/comm/parallel.h"
#include "engine/core/ops.h"
#include "engine/models/dit.h"

namespace turbovid::engine::dit {

// How a Linear is cut over the tensor-parallel ranks (docs/parallelism.md §2).
enum class Shard : uint8_t {
  kNone,     // replicated
  kOutputs,  // "column parallel": rows of w (outputs) and of b; Q/K/V, FFN-up
  kInputs,   // "row parallel": columns of w (inputs); partial sums, all-reduced, then + b
};

// One Linear of the model: bf16/fp32 weight, TurboDiffusion int8 weight + 128x128 scales, or
// e4m3 codes + per-row scales quantised at load (turbo-fp8, docs/model-math.md §11.6).
struct Linear {
  Tensor w;          // [out, in] compute dtype (unquantised)
  Tensor w_int8;     // [out, in] I8 (quantised)
  Tensor scale;      // [ceil(out/128), ceil(in/128)] F32 (quantised)
  Tensor w_fp8;      // [out, in] U8 e4m3 codes (fp8)
  Tensor fp8_scale;  // [out] F32 (fp8)
  Tensor b;          // [out] (all of it for Shard::kInputs)
  bool quantized = false;
  bool fp8 = false;
  Shard shard = Shard::kNone;

  // y = act(x·wᵀ + b); a kInputs shard leaves b out (added once after the all-reduce).
  absl::StatusOr<Tensor> Apply(const Ops& ops, const Tensor& x,
                               Activation act = Activation::kNone) const;
};

struct Block {
  Tensor modulation;  // [6, E]
  Linear sa_q, sa_k, sa_v, sa_o, ca_q, ca_k, ca_v, ca_o, ffn0, ffn2;
  Tensor sa_norm_q, sa_norm_k, ca_norm_q, ca_norm_k;  // [E / tp] (the rank's heads)
  Tensor norm3_w, norm3_b;                            // [E]
  Tensor proj_l_w, proj_l_b;                          // [D, D], [D] (SLA only)
};

// Loader state: the weight set, the target backend, whether block linears are int8, and the
// tensor-parallel rank whose shard is taken.
struct Loader {
  io::WeightSet& ws;
  Backend& backend;
  bool quantized;
  bool fp8 = false;  // block linears quantised to e4m3 here, from the checkpoint's bf16 weights
  int tp_rank = 0;
  int tp_size = 1;
  bool split_heads = true;  // attention weights split over tp (false: replicated)
  bool shard_at_one = false;  // tp_size 1 still takes kInputs/kOutputs "shards" (whole tensors)

  absl::StatusOr<Tensor> Take(const std::string& name, const Shape& shape);
  // Rows [r·n/tp, (r+1)·n/tp) of a tensor whose dim 0 is n (a norm weight over the rank's heads).
  absl::StatusOr<Tensor> TakeShardRows(const std::string& name, const Shape& shape);
  absl::StatusOr<Linear> TakeLinear(const std::string& prefix, int64_t out, int64_t in,
                                    bool allow_int8, Shard shard = Shard::kNone);
};

// How a forward's L tokens are split over the sequence-parallel ranks: contiguous runs in
// rank order, the first L % sp ranks one token longer.
struct TokenSplit {
  std::vector<int64_t> counts;  // tokens of each sequence rank
  int64_t total = 0;            // L
  int64_t first = 0, last = 0;  // this rank's tokens [first, last)
  static TokenSplit Of(int64_t total, int parts, int rank);
};

class WanDitImpl : public WanDit {
 public:
  WanDitImpl(const DitConfig& config, const DitOptions& options, Backend& backend, bool quantized);

  absl::Status LoadAll(io::WeightSet& ws);
  absl::StatusOr<Context> PrepareContext(
      const Tensor& context,
      const std::function<absl::Status(int group)>* before_group) const override;
  std::vector<std::vector<Tensor>> WeightGroups() const override;
  absl::StatusOr<Tensor> Forward(const Tensor& x, const Tensor* y, double timestep,
                                 const Context& context, const DitForwardOptions& attention,
                                 const TensorSink* sink) const override;
  absl::Status CheckForwardOptions(const DitForwardOptions& attention) const override;
  const DitConfig& config() const override { return config_; }
  bool quantized() const override { return quantized_; }
  bool fp8() const override { return options_.fp8_linears; }
  DType residual_dtype() const override {
    return options_.residual_f32 ? DType::kF32 : backend_.compute_dtype();
  }

 private:
  absl::StatusOr<Tensor> Patchify(const Tensor& x, const Tensor* y) const;
  absl::StatusOr<std::pair<Tensor, Tensor>> TimeEmbedding(double timestep) const;
  absl::Status RopeTables(int64_t f, int64_t h, int64_t w, Tensor* cos, Tensor* sin) const;
  // Block i on the residual x [Ls, E] (updated in place). a: LayerNorm(x) modulated for this
  // block's self-attention; m: this block's modulation + e0 [6, E]; next_scale/next_shift: the
  // modulation of the norm after the block (the next block's self-attention or the head), whose
  // output it returns, fused with the block's last residual add.
  absl::StatusOr<Tensor> RunBlock(int i, Tensor& x, Tensor a, const Tensor& m,
                                  const Tensor& next_scale, const Tensor& next_shift,
                                  const Tensor& cos, const Tensor& sin, const TokenSplit& split,
                                  const Context& context, const DitForwardOptions& attention,
                                  const TensorSink* sink) const;
  absl::StatusOr<Tensor> SelfAttention(int i, const Tensor& a, const Tensor& cos, const Tensor& sin,
                                       const TokenSplit& split, const DitForwardOptions& attention,
                                       const TensorSink* sink) const;
  absl::StatusOr<Tensor> SparseLinearAttention(int i, const Tensor& q, const Tensor& k,
                                               const Tensor& v, float topk,
                                               const TensorSink* sink) const;
  absl::StatusOr<Tensor> SageSparseLinearAttention(int i, const Tensor& q, const Tensor& k,
                                                   const Tensor& v,
                                                   const DitForwardOptions& attention,
                                                   const TensorSink* sink) const;
  // a: the head's modulated LayerNorm of this rank's tokens (from the last block).
  absl::StatusOr<Tensor> Head(const Tensor& a, const TokenSplit& split, int64_t f, int64_t h,
                              int64_t w) const;
  // A sparse-map probe [heads here, nq, nk] (device) gathered over both groups, to the sink.
  absl::Status SinkSparseMap(int i, const Tensor& map, const TensorSink* sink) const;

  // dit_parallel.cc. Each is the plain single-rank step when its group has one rank.
  // x·wᵀ of a kInputs Linear summed over the tensor-parallel ranks, then + b.
  absl::StatusOr<Tensor> RowParallel(const Linear& l, const Tensor& x) const;
  // The q/k RMSNorm over all E columns of x [M, E/tp] (Σx² all-reduced over the tensor-parallel
  // ranks), then the RoPE when cos/sin are given.
  absl::StatusOr<Tensor> QkNorm(const Tensor& x, const Tensor& weight, const Tensor* cos,
                                const Tensor* sin) const;
  // Ulysses: [Ls, Nl, D] (this rank's tokens, all its heads) → [L, Nl/sp, D] (all tokens, this
  // rank's share of the heads), and back.
  absl::StatusOr<Tensor> SeqToHeads(const Tensor& x, const TokenSplit& split) const;
  absl::StatusOr<Tensor> HeadsToSeq(const Tensor& x, const TokenSplit& split) const;
  // [Ls, C] → [L, C]: every rank's tokens, in order (sequence-parallel group).
  absl::StatusOr<Tensor> GatherTokens(const Tensor& x, const TokenSplit& split) const;

  int tp() const { return parallel_ ? parallel_->layout().tensor_parallel : 1; }
  // Whether the tensor/sequence-parallel collectives run: groups of more than one rank, or any
  // group when the layout asks for collectives_at_one_rank.
  bool at_one() const { return parallel_ && parallel_->layout().collectives_at_one_rank; }
  bool tp_collectives() const { return tp() > 1 || at_one(); }
  bool sp_collectives() const { return sp() > 1 || at_one(); }
  // Whether the heads split over the tensor ranks (else attention is replicated there), and
  // whether a tensor rank's heads split over its sequence ranks (else q/k/v are gathered).
  bool attention_tp() const { return config_.num_heads % tp() == 0; }
  bool attention_sp() const { return local_heads() % sp() == 0; }
  int sp() const { return parallel_ ? parallel_->layout().sequence_parallel : 1; }
  int64_t local_heads() const {
    return attention_tp() ? config_.num_heads / tp() : config_.num_heads;
  }

  DitConfig config_;
  DitOptions options_;
  const comm::ParallelGroups* parallel_;  // null: one rank
  Backend& backend_;
  Ops ops_;
  bool quantized_;
  bool has_proj_l_ = false;  // every block loaded proj_l (SLA possible)
  Tensor patch_w_;           // [E, in_dim·4], columns (c, q, r)
  Tensor patch_b_;           // [E]
  Linear text0_, text2_, time0_, time2_, time_proj_, head_;
  Tensor head_modulation_;  // [2, E]
  std::vector<Block> blocks_;
  // RoPE tables of the last latent grid (f, h, w): every step of a job reuses them.
  mutable std::mutex rope_mu_;
  mutable std::tuple<int64_t, int64_t, int64_t> rope_key_{-1, -1, -1};
  mutable Tensor rope_cos_, rope_sin_;
};

}  // namespace turbovid::engine::dit
