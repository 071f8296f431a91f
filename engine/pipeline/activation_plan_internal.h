// Shape-level replay used by activation_plan.cc and activation_plan_vae.cc: a Buf stands for a
// Tensor (copies and reshapes share its bytes, which count as live until the last copy goes), a
// Sim allocates them the way Ops / Backend::Allocate would. Replays keep the models' variable
// scopes and moves, since those decide what is live at each allocation.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "engine/core/arena.h"
#include "engine/core/tensor.h"
#include "engine/pipeline/activation_plan.h"

namespace turbovid::engine::plan {

// Live bytes and their peak, each block also placed in a best-fit Arena of `capacity` bytes
// (the one the CUDA backend will carve): its extent (highest end of a block) and whether every
// block found room.
class Live {
 public:
  static constexpr int64_t kUnbounded = int64_t{1} << 50;
  explicit Live(int64_t capacity = kUnbounded) : arena_(capacity) {}
  // Counts `bytes` live and places `arena_bytes` in the arena: the offset, or -1 when it is full.
  int64_t Add(int64_t bytes, int64_t arena_bytes);
  void Sub(int64_t bytes, int64_t offset);
  int64_t peak() const { return peak_; }
  int64_t extent() const { return extent_; }
  bool fit() const { return fit_; }

 private:
  Arena arena_;
  int64_t live_ = 0;
  int64_t peak_ = 0;
  int64_t extent_ = 0;
  bool fit_ = true;
};

class Buf {
 public:
  Buf() = default;
  // `bytes` count as live (`arena_bytes` in the arena) until the last copy goes.
  Buf(Live& live, int64_t bytes, int64_t arena_bytes, Shape shape);
  bool defined() const { return block_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? i + static_cast<int>(shape_.size()) : i]; }
  Buf Reshape(Shape shape) const;  // shares the bytes

 private:
  struct Block {
    // A constructor, not an aggregate: make_shared needs one before C++20's parenthesised
    // aggregate initialisation, which Clang 14 lacks.
    Block(Live* l, int64_t b, int64_t o) : live(l), bytes(b), offset(o) {}
    Live* live;
    int64_t bytes;
    int64_t offset;
    ~Block() { live->Sub(bytes, offset); }
  };
  std::shared_ptr<Block> block_;
  Shape shape_;
};

class Sim {
 public:
  Sim(Live& live, const ActivationJob& job) : live_(live), job_(job) {}
  const ActivationJob& job() const { return job_; }
  Live& live() const { return live_; }

  Buf Empty(Shape shape) const { return Alloc(std::move(shape), DTypeSize(job_.dtype)); }
  Buf Alloc(Shape shape, int64_t elem_bytes) const;

  // Scratch a CUDA op allocates after its output and drops before returning (cuda_scratch only).
  void Scratch(std::initializer_list<int64_t> bytes) const;
  // engine/cuda/cuda_ops.cc RunAttention: a single wide head goes through S = q·kᵀ in F32.
  void AttentionScratch(int64_t lq, int64_t lk, int64_t n, int64_t d, int64_t dv, bool bias) const;
  // engine/cuda/cuda_sla_ops.cc: the kernels' workspace (kernels/sla.cu MakePlan), bounded.
  void SlaScratch(int64_t l, int64_t n, int64_t d) const;
  // engine/cuda/cuda_quant_ops.cc: x quantised to int8 [M, K] plus its 128x128 tile scales.
  void Int8Scratch(int64_t m, int64_t k) const;
  // engine/cuda/cuda_quant_ops.cc: x quantised to e4m3 [M, K] plus one F32 scale per row.
  void Fp8Scratch(int64_t m, int64_t k) const;

 private:
  Live& live_;
  const ActivationJob& job_;
};

// The umT5 encoder over `tokens` tokens (output downloaded: nothing stays live).
void ReplayT5Encode(const Sim& sim, const T5Config& config, int64_t tokens);

// WanDit::Context of one prompt: per block K and V.
struct DitContext {
  std::vector<Buf> k, v;
};
// How the replayed block linears run: bf16, W8A8 int8 or FP8 e4m3 (each quantiser's scratch).
enum class LinearQuant : uint8_t { kNone, kInt8, kFp8 };
DitContext ReplayDitContext(const Sim& sim, const DitConfig& config, LinearQuant quant);
// One WanDit::Forward on the job's latent grid with `context` live.
void ReplayDitForward(const Sim& sim, const DitConfig& config, LinearQuant quant,
                      const DitContext& context, bool residual_f32);

// WanVae::Decode of a latent [z_dim, T, H, W]; WanVae::Encode of a video [3, F, 8H, 8W].
void ReplayVaeDecode(const Sim& sim, const VaeConfig& config, int64_t t, int64_t h, int64_t w);
void ReplayVaeEncode(const Sim& sim, const VaeConfig& config, int64_t frames, int64_t height,
                     int64_t width);

}  // namespace turbovid::engine::plan
