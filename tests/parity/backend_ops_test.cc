// Backend-ops parity (docs/design.md §13.2): each case runs one op on the CPU reference (fp32) and
// on the CUDA backend (bf16 storage, fp32 math) from the same random inputs, and compares the
// relative L2 error of the CUDA result against the error of the naive bf16 computation: the CPU op
// run on bf16-rounded inputs with its output rounded to bf16. CUDA may be at most kSlack times
// further from the fp32 reference than that (plus a tiny absolute floor for exactly-representable
// cases).
// Every input and every output the case allocates sits between guard bands of a fixed byte
// pattern; a write outside the tensor changes a band and fails the case.
// Skips when no CUDA device is present.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/backend.h"
#include "engine/core/ops.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "kernels/kernel_options.h"
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {

absl::Status RunWithKernelOptions(Backend& b, const std::function<absl::Status()>& run,
                                  const std::function<void(kernels::KernelOptions&)>& change) {
  if (b.device() != Device::kCuda) return run();
  TV_ASSIGN_OR_RETURN(const kernels::KernelOptions saved, GetCudaKernelOptions(b));
  kernels::KernelOptions forced = saved;
  change(forced);
  TV_RETURN_IF_ERROR(SetCudaKernelOptions(b, forced));
  const absl::Status status = run();
  TV_RETURN_IF_ERROR(SetCudaKernelOptions(b, saved));
  return status;
}

namespace {

Case LinearCase(int64_t m, int64_t k, int64_t n, bool bias, Activation act) {
  std::string name = "linear " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                     std::to_string(n) + (bias ? " +bias" : "") +
                     (act == Activation::kGeluTanh ? " gelu"
                      : act == Activation::kSilu   ? " silu"
                                                   : "");
  std::vector<Input> in = {{{m, k}}, {{n, k}, false, -0.2f, 0.2f}};
  if (bias) in.push_back({{n}});
  return {name, OpKindOf<LinearOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({m, n}));
            LinearOp op{&t[0], &t[1], bias ? &t[2] : nullptr, act, &y};
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{y};
          }};
}

// The LayerNorm operands a case appends to its inputs: affine weight and bias, then the
// modulation scale and shift (mod_rows: 0 = none, 1 = broadcast [E], m = per row [M, E]).
void AddNormInputs(std::vector<Input>& in, int64_t m, int64_t e, bool affine, int mod_rows) {
  if (affine) {
    in.push_back({{e}});
    in.push_back({{e}});
  }
  if (mod_rows) {
    in.push_back({{mod_rows == 1 ? 1 : m, e}, false, -0.5f, 0.5f});
    in.push_back({{mod_rows == 1 ? 1 : m, e}});
  }
}
std::string NormName(bool affine, int mod_rows) {
  return std::string(affine ? " affine" : "") +
         (mod_rows == 0 ? "" : mod_rows == 1 ? " mod[E]" : " mod[M,E]");
}
// Points ln's weight/bias/scale/shift at t[i], t[i + 1], ... in AddNormInputs' order.
void BindNorm(std::vector<Tensor>& t, size_t i, bool affine, int mod_rows, LayerNormOp& ln) {
  if (affine) {
    ln.weight = &t[i++];
    ln.bias = &t[i++];
  }
  if (mod_rows) {
    ln.scale = &t[i++];
    ln.shift = &t[i++];
  }
}

Case LayerNormCase(int64_t m, int64_t e, bool affine, int mod_rows, bool x_f32 = false) {
  std::vector<Input> in = {{{m, e}, x_f32, -3.f, 5.f}};
  AddNormInputs(in, m, e, affine, mod_rows);
  return {"layer_norm " + std::to_string(m) + "x" + std::to_string(e) + NormName(affine, mod_rows) +
              (x_f32 ? " x f32" : ""),
          OpKindOf<LayerNormOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({m, e}));
            LayerNormOp op;
            op.x = &t[0];
            BindNorm(t, 1, affine, mod_rows, op);
            op.y = &y;
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{y};
          }};
}

Case RmsNormCase(int64_t m, int64_t e, bool weight) {
  std::vector<Input> in = {{{m, e}, false, -2.f, 2.f}};
  if (weight) in.push_back({{e}, false, 0.5f, 1.5f});
  return {"rms_norm " + std::to_string(m) + "x" + std::to_string(e) + (weight ? " w" : ""),
          OpKindOf<RmsNormOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({m, e}));
            RmsNormOp op{&t[0], weight ? &t[1] : nullptr, 1e-6f, &y};
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{y};
          }};
}

// The DiT's q/k norm fused with RoPE: RmsNorm over n·d, then each d-wide head rotated.
Case RmsNormRopeCase(int64_t m, int64_t n, int64_t d) {
  const int64_t e = n * d;
  return {"rms_norm+rope " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(d),
          OpKindOf<RmsNormOp>(),
          {{{m, e}, false, -3.f, 3.f}, {{e}}, {{m, d / 2}, true}, {{m, d / 2}, true}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({m, e}));
            RmsNormOp op{&t[0], &t[1], 1e-6f, &y};
            op.rope_cos = &t[2];
            op.rope_sin = &t[3];
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{y};
          }};
}

// Tensor-parallel q/k norm: a shard of n·d columns normalised by a given whole-row Σx² over
// `full` columns (with RoPE), and the row sums of squares behind it.
Case RmsNormShardCase(int64_t m, int64_t n, int64_t d, int64_t full) {
  const int64_t e = n * d;
  const float lo = 0.5f * static_cast<float>(full), hi = 1.5f * static_cast<float>(full);
  return {"rms_norm shard " + std::to_string(m) + "x" + std::to_string(e) + " of " +
              std::to_string(full),
          OpKindOf<RmsNormOp>(),
          {{{m, e}, false, -2.f, 2.f}, {{e}}, {{m, d / 2}, true}, {{m, d / 2}, true},
           {{m}, true, lo, hi}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({m, e}));
            RmsNormOp op{&t[0], &t[1], 1e-6f, &y};
            op.rope_cos = &t[2];
            op.rope_sin = &t[3];
            op.row_sum_sq = &t[4];
            op.full_width = full;
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{y};
          }};
}

Case RowSumSquaresCase(int64_t m, int64_t e) {
  return {"row_sum_squares " + std::to_string(m) + "x" + std::to_string(e),
          OpKindOf<RowSumSquaresOp>(),
          {{{m, e}, false, -2.f, 2.f}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Place(Tensor::Zeros(DType::kF32, {m})));
            TV_RETURN_IF_ERROR(env.b.Run(RowSumSquaresOp{&t[0], &y}));
            return std::vector<Tensor>{y};
          }};
}

Case RopeCase(int64_t l, int64_t n, int64_t d) {
  return {"rope " + std::to_string(l) + "x" + std::to_string(n) + "x" + std::to_string(d),
          OpKindOf<RopeOp>(),
          {{{l, n, d}}, {{l, d / 2}, true}, {{l, d / 2}, true}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            RopeOp op{&t[0], &t[1], &t[2]};
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{t[0]};
          }};
}

Case AttentionCase(int64_t lq, int64_t lk, int64_t n, int64_t d, int64_t dv, bool bias) {
  std::string name = "attention q" + std::to_string(lq) + " k" + std::to_string(lk) + " h" +
                     std::to_string(n) + " d" + std::to_string(d) + "/" + std::to_string(dv) +
                     (bias ? " +bias" : "");
  std::vector<Input> in = {
      {{lq, n, d}, false, -2.f, 2.f}, {{lk, n, d}, false, -2.f, 2.f}, {{lk, n, dv}}};
  if (bias) in.push_back({{n, lq, lk}, false, -2.f, 2.f});
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  return {name, OpKindOf<AttentionOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor out, env.Alloc({lq, n, dv}));
            AttentionOp op{&t[0], &t[1], &t[2], bias ? &t[3] : nullptr, scale, &out};
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{out};
          }};
}

Case UnaryCase(UnaryKind kind, int64_t n) {
  return {std::string("unary ") + (kind == UnaryKind::kGeluTanh ? "gelu " : "silu ") +
              std::to_string(n),
          OpKindOf<UnaryOp>(),
          {{{n}, false, -6.f, 6.f}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({n}));
            TV_RETURN_IF_ERROR(env.b.Run(UnaryOp{kind, &t[0], &y}));
            return std::vector<Tensor>{y};
          }};
}

Case BinaryCase(BinaryKind kind, Shape a, Shape bs) {
  return {std::string("binary ") + (kind == BinaryKind::kAdd ? "add " : "mul ") + ShapeString(a) +
              " by " + ShapeString(bs),
          OpKindOf<BinaryOp>(),
          {{a}, {bs}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc(a));
            TV_RETURN_IF_ERROR(env.b.Run(BinaryOp{kind, &t[0], &t[1], &y}));
            return std::vector<Tensor>{y};
          }};
}

Case GatedAddCase(int64_t m, int64_t e, int gate_rows) {
  std::vector<Input> in = {{{m, e}}, {{m, e}}};
  if (gate_rows) in.push_back({{gate_rows == 1 ? 1 : m, e}});
  return {"gated_add " + std::to_string(m) + "x" + std::to_string(e) +
              (gate_rows == 0   ? ""
               : gate_rows == 1 ? " gate[E]"
                                : " gate[M,E]"),
          OpKindOf<GatedAddOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_RETURN_IF_ERROR(env.b.Run(GatedAddOp{&t[0], &t[1], gate_rows ? &t[2] : nullptr}));
            return std::vector<Tensor>{t[0]};
          }};
}

// The residual add fused with the next LayerNorm (GatedAddOp::norm_y): x F32 (the DiT's fp32
// residual stream, kept F32 on both backends) or the compute dtype; both x and the norm compared.
Case GatedAddNormCase(int64_t m, int64_t e, bool x_f32, int gate_rows, bool affine, int mod_rows) {
  std::vector<Input> in = {{{m, e}, x_f32, -3.f, 5.f}, {{m, e}}};
  if (gate_rows) in.push_back({{gate_rows == 1 ? 1 : m, e}});
  AddNormInputs(in, m, e, affine, mod_rows);
  return {"gated_add+layer_norm " + std::to_string(m) + "x" + std::to_string(e) +
              (x_f32 ? " x f32" : "") + (gate_rows == 1 ? " gate[E]" : gate_rows ? " gate[M,E]" : "") +
              NormName(affine, mod_rows),
          OpKindOf<GatedAddOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            TV_ASSIGN_OR_RETURN(Tensor n, env.Alloc({m, e}));
            GatedAddOp op{&t[0], &t[1], gate_rows ? &t[2] : nullptr};
            LayerNormOp ln;
            BindNorm(t, gate_rows ? 3 : 2, affine, mod_rows, ln);
            op.norm_weight = ln.weight;
            op.norm_bias = ln.bias;
            op.norm_scale = ln.scale;
            op.norm_shift = ln.shift;
            op.norm_y = &n;
            TV_RETURN_IF_ERROR(env.b.Run(op));
            return std::vector<Tensor>{t[0], n};
          }};
}

Case EmbeddingCase(int64_t v, int64_t e, int64_t l) {
  return {"embedding " + std::to_string(v) + "x" + std::to_string(e) + " l" + std::to_string(l),
          OpKindOf<EmbeddingOp>(),
          {{{v, e}}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            Tensor ids = Tensor::Zeros(DType::kI64, {l});
            for (int64_t i = 0; i < l; ++i) ids.data<int64_t>()[i] = (i * 7 + 3) % v;
            TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({l, e}));
            TV_RETURN_IF_ERROR(env.b.Run(EmbeddingOp{&t[0], &ids, &y}));
            return std::vector<Tensor>{y};
          }};
}

Case PermuteCase(Shape s, std::vector<int> perm) {
  return {"copy permute " + ShapeString(s),
          OpKindOf<CopyOp>(),
          {{s}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            Ops ops(env.b);
            TV_ASSIGN_OR_RETURN(Tensor y, ops.Permute(t[0], perm));
            return std::vector<Tensor>{y};
          }};
}

Case ConcatCase(Shape a, Shape c, int axis) {
  return {"copy concat " + ShapeString(a) + "+" + ShapeString(c),
          OpKindOf<CopyOp>(),
          {{a}, {c}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            Ops ops(env.b);
            TV_ASSIGN_OR_RETURN(Tensor y, ops.Concat({t[0], t[1]}, axis));
            return std::vector<Tensor>{y};
          }};
}

std::vector<Case> AllCases() {
  std::vector<Case> cases = {
      LinearCase(7, 64, 33, false, Activation::kNone),
      LinearCase(130, 96, 200, true, Activation::kNone),
      LinearCase(65, 128, 72, true, Activation::kGeluTanh),
      LinearCase(33, 64, 48, false, Activation::kGeluTanh),
      LinearCase(17, 40, 24, true, Activation::kSilu),
      LinearCase(257, 1536, 256, true, Activation::kNone),
      LayerNormCase(5, 96, false, 0),
      LayerNormCase(37, 200, true, 0),
      LayerNormCase(64, 1536, false, 64),
      LayerNormCase(33, 1000, false, 1),
      LayerNormCase(3, 10240, true, 3),  // vector path, two vectors per thread
      LayerNormCase(64, 1536, false, 1, true),  // fp32 residual's first norm (vector path)
      LayerNormCase(7, 100, true, 7, true),     // fp32 x, scalar path
      GatedAddNormCase(64, 1536, true, 1, false, 1),   // the DiT's SA/FFN residual + next norm
      GatedAddNormCase(37, 5120, true, 0, true, 0),    // 14B width, the cross-attention's norm3
      GatedAddNormCase(9, 1536, false, 9, false, 9),   // bf16 residual (TV_DIT_RESIDUAL=bf16)
      GatedAddNormCase(5, 100, true, 1, true, 1),      // the scalar fallback (E % 8 != 0)
      GatedAddNormCase(3, 10240, true, 1, false, 1),   // two vectors per thread
      RmsNormCase(9, 128, true),
      RmsNormCase(33, 1536, true),
      RmsNormCase(3, 77, false),
      RmsNormRopeCase(37, 12, 128),
      RmsNormRopeCase(5, 3, 64),
      RmsNormShardCase(37, 3, 128, 1536),  // 1.3B q/k norm at tensor parallel 4
      RmsNormShardCase(6, 5, 128, 5120),   // 14B at tensor parallel 8
      RowSumSquaresCase(37, 384),
      RowSumSquaresCase(5, 1000),
      RopeCase(13, 3, 64),
      RopeCase(70, 12, 128),
      AttentionCase(37, 50, 2, 64, 64, false),
      AttentionCase(129, 77, 3, 128, 128, false),
      AttentionCase(17, 23, 4, 32, 32, true),
      AttentionCase(65, 300, 2, 100, 100, false),
      AttentionCase(31, 31, 1, 8, 16, true),
      // Flash paths (bf16, no bias, D = Dv in {64, 128}): ragged Lq/Lk against the 128-query and
      // 64-key tiles, a single partial key tile, cross-attention-like Lk, exact multiples.
      AttentionCase(1000, 1000, 3, 128, 128, false),
      AttentionCase(257, 77, 12, 128, 128, false),
      AttentionCase(5, 3, 4, 128, 128, false),
      AttentionCase(256, 192, 3, 128, 128, false),
      AttentionCase(333, 190, 5, 64, 64, false),
      AttentionCase(129, 513, 12, 64, 64, false),
      // General kernel at the VAE mid-block head dim (one head, D = 384) and at its 512 limit.
      AttentionCase(300, 300, 1, 384, 384, false),
      AttentionCase(320, 296, 1, 384, 384, false),  // GEMM path (lk % 8 == 0)
      AttentionCase(40, 70, 2, 512, 512, true),
      UnaryCase(UnaryKind::kGeluTanh, 1000),
      UnaryCase(UnaryKind::kSilu, 4099),
      BinaryCase(BinaryKind::kAdd, {17, 40}, {40}),
      BinaryCase(BinaryKind::kMul, {5, 9, 7}, {5, 9, 7}),
      GatedAddCase(19, 48, 0),
      GatedAddCase(19, 48, 1),
      GatedAddCase(33, 130, 33),
      GatedAddCase(17, 1536, 17),  // vector path with a per-row gate
      EmbeddingCase(50, 24, 11),
      PermuteCase({5, 6, 7}, {2, 0, 1}),
      ConcatCase({3, 5, 4}, {3, 2, 4}, 1),
      // Long contiguous rows (the VAE's causal-cache concat): 16-byte vector path, then a row
      // length that is not a multiple of 16 bytes (element-sized path).
      ConcatCase({4, 2, 9, 16}, {4, 3, 9, 16}, 1),
      ConcatCase({3, 1, 5, 27}, {3, 2, 5, 27}, 1),
      PermuteCase({2, 3, 40, 64}, {1, 0, 2, 3}),
  };
  for (auto family : {ConvCases, SlaCases, QuantCases, Fp8Cases, VideoCases}) {
    for (Case& c : family()) cases.push_back(std::move(c));
  }
  return cases;
}

Tensor RandomHost(const Input& in, std::mt19937& rng) {
  Tensor t = Tensor::Zeros(DType::kF32, in.shape);
  std::uniform_real_distribution<float> dist(in.lo, in.hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

Tensor RoundedBf16(const Tensor& t) {
  Tensor r = t.Clone();
  for (int64_t i = 0; i < r.numel(); ++i) r.data<float>()[i] = RoundToBf16(r.data<float>()[i]);
  return r;
}

// F32 host tensor `t` stored as `dtype` (F32 or BF16, rounded to nearest even) on the host.
Tensor HostAs(const Tensor& t, DType dtype) {
  if (dtype == DType::kF32) return t.Clone();
  Tensor r = Tensor::Zeros(DType::kBF16, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.data<uint16_t>()[i] = F32ToBf16(t.data<float>()[i]);
  return r;
}

// Uploads host inputs to `b` (tables stay F32) between guard bands, runs the case, checks the
// bands, returns host F32 outputs.
absl::StatusOr<std::vector<Tensor>> RunOn(Backend& b, const Case& c,
                                          const std::vector<Tensor>& host) {
  Env env{b, {}};
  std::vector<Tensor> dev;
  for (size_t i = 0; i < host.size(); ++i) {
    TV_ASSIGN_OR_RETURN(
        Tensor t,
        env.Place(HostAs(host[i], c.inputs[i].f32_table ? DType::kF32 : b.compute_dtype())));
    dev.push_back(std::move(t));
  }
  TV_ASSIGN_OR_RETURN(std::vector<Tensor> outs, c.run(env, dev));
  TV_RETURN_IF_ERROR(b.Synchronize());
  TV_ASSIGN_OR_RETURN(int64_t broken, env.BrokenGuards());
  if (broken != 0) {
    return absl::InternalError(absl::StrCat(c.name, ": ", broken, " guard elements overwritten"));
  }
  std::vector<Tensor> res;
  for (const Tensor& o : outs) {
    TV_ASSIGN_OR_RETURN(Tensor h, b.Download(o));
    TV_ASSIGN_OR_RETURN(Tensor f, ToF32(h));
    res.push_back(std::move(f));
  }
  return res;
}

double RelL2(const Tensor& a, const Tensor& ref) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double d = static_cast<double>(a.data<float>()[i]) - ref.data<float>()[i];
    num += d * d;
    den += static_cast<double>(ref.data<float>()[i]) * ref.data<float>()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

int NonFinite(const Tensor& t) {
  int n = 0;
  for (int64_t i = 0; i < t.numel(); ++i) n += std::isfinite(t.data<float>()[i]) ? 0 : 1;
  return n;
}

// The harness itself (guards, views, every case's wiring) on the CPU backend: runs without a GPU.
// The kernel-path switches the CUDA backend reads once when it is made: every spelling the docs
// name, unset / empty as the default, and an error naming the variable for anything else. Needs no
// GPU (the environment is read before any device is touched).
TEST(CudaKernelOptions, EnvironmentSpellings) {
  const char* kVars[] = {"TV_ATTENTION",      "TV_FA_SM90",        "TV_SLA_PATH",
                         "TV_SLA_PORTABLE",   "TV_CONV3D_PATH",    "TV_KERNELS",
                         "TV_INT8_GEMM",      "TV_CONV_SM90_DEBUG", "TV_FP8_FAST_ACCUM",
                         "TV_FP8_SCALING",    "TV_SAGESLA_LINEAR", "TV_SAGESLA_PATH"};
  for (const char* v : kVars) unsetenv(v);
  absl::StatusOr<kernels::KernelOptions> o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->attention, kernels::AttentionPath::kAuto);
  EXPECT_EQ(o->fa_sm90, kernels::FaSm90Variant::kAuto);
  EXPECT_EQ(o->sla, kernels::SlaPath::kAuto);
  EXPECT_EQ(o->conv3d, kernels::Conv3dPath::kAuto);
  EXPECT_EQ(o->int8_gemm, kernels::Int8GemmPath::kAuto);
  EXPECT_EQ(o->sagesla, kernels::SageSlaPath::kAuto);
  EXPECT_FALSE(o->conv_sm90_debug);
  EXPECT_FALSE(o->fp8_fast_accum);
  EXPECT_FALSE(o->fp8_epilogue_scaling);

  setenv("TV_ATTENTION", "flash", 1);
  setenv("TV_FA_SM90", "s3pp", 1);
  setenv("TV_SLA_PATH", "wgmma", 1);
  setenv("TV_CONV3D_PATH", "halo", 1);
  setenv("TV_INT8_GEMM", "sm90", 1);
  setenv("TV_CONV_SM90_DEBUG", "1", 1);
  setenv("TV_SLA_PORTABLE", "", 1);
  setenv("TV_FP8_FAST_ACCUM", "1", 1);
  setenv("TV_FP8_SCALING", "epilogue", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->attention, kernels::AttentionPath::kFlash);
  EXPECT_EQ(o->fa_sm90, kernels::FaSm90Variant::kS3Pp);
  EXPECT_EQ(o->sla, kernels::SlaPath::kWgmma);
  EXPECT_EQ(o->conv3d, kernels::Conv3dPath::kHalo);
  EXPECT_EQ(o->int8_gemm, kernels::Int8GemmPath::kSm90);
  EXPECT_TRUE(o->conv_sm90_debug);
  EXPECT_TRUE(o->fp8_fast_accum);
  EXPECT_TRUE(o->fp8_epilogue_scaling);

  setenv("TV_SLA_PORTABLE", "1", 1);  // overrides TV_SLA_PATH, as before
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->sla, kernels::SlaPath::kPortable);

  // TV_KERNELS=portable turns the int8 GEMM's kAuto into mma.sync; TV_INT8_GEMM still wins.
  setenv("TV_INT8_GEMM", "", 1);
  setenv("TV_KERNELS", "portable", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->int8_gemm, kernels::Int8GemmPath::kMma);
  setenv("TV_INT8_GEMM", "sm90", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->int8_gemm, kernels::Int8GemmPath::kSm90);
  unsetenv("TV_KERNELS");
  setenv("TV_INT8_GEMM", "wgmma", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("TV_INT8_GEMM=wgmma"), std::string::npos)
      << o.status().message();
  unsetenv("TV_INT8_GEMM");
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_FALSE(o->sage_linear_simple);
  setenv("TV_SAGESLA_LINEAR", "simple", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_TRUE(o->sage_linear_simple);
  setenv("TV_SAGESLA_LINEAR", "cores", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("TV_SAGESLA_LINEAR=cores"), std::string::npos);
  unsetenv("TV_SAGESLA_LINEAR");
  // TV_SAGESLA_PATH: wgmma | mma; TV_KERNELS=portable makes the default mma.sync, a named path wins.
  setenv("TV_SAGESLA_PATH", "mma", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->sagesla, kernels::SageSlaPath::kMma);
  setenv("TV_SAGESLA_PATH", "wgmma", 1);
  setenv("TV_KERNELS", "portable", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->sagesla, kernels::SageSlaPath::kWgmma);
  unsetenv("TV_SAGESLA_PATH");
  o = CudaKernelOptionsFromEnv();
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->sagesla, kernels::SageSlaPath::kMma);
  unsetenv("TV_KERNELS");
  setenv("TV_SAGESLA_PATH", "sm90", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("TV_SAGESLA_PATH=sm90"), std::string::npos)
      << o.status().message();
  unsetenv("TV_SAGESLA_PATH");
  setenv("TV_FP8_SCALING", "cublas", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("TV_FP8_SCALING=cublas"), std::string::npos)
      << o.status().message();
  setenv("TV_FP8_SCALING", "auto", 1);

  setenv("TV_CONV3D_PATH", "fast", 1);
  o = CudaKernelOptionsFromEnv();
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("TV_CONV3D_PATH=fast"), std::string::npos)
      << o.status().message();
  for (const char* v : kVars) unsetenv(v);
}

TEST(BackendOpsParity, CpuCasesRunGuarded) {
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  std::mt19937 rng(99);
  for (const Case& c : AllCases()) {
    std::vector<Tensor> host;
    for (const Input& in : c.inputs) host.push_back(RandomHost(in, rng));
    auto out = RunOn(*cpu, c, host);
    EXPECT_TRUE(out.ok()) << c.name << ": " << out.status();
  }
}

TEST(BackendOpsParity, CudaMatchesCpu) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend();
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA backend: " << cuda.status().message();
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  const std::vector<Case> cases = AllCases();

  std::set<size_t> covered;
  for (const Case& c : cases) covered.insert(c.kind);
  // Ops whose parity has a test of its own with stricter checks than a rel-L2 ratio:
  // SageSlaParity.CudaMatchesCpu (exact int8 / e4m3 codes and scales, o_s and out).
  covered.insert(OpKindOf<SageSlaOp>());
  for (size_t kind = 0; kind < kNumOpKinds; ++kind) {
    if ((*cuda)->Supports(kind)) {
      EXPECT_TRUE(covered.count(kind)) << "no parity case for " << OpName(kind);
    }
  }

  std::printf("%-44s %12s %12s %8s %s\n", "case", "naive_bf16", "cuda", "ratio", "result");
  std::mt19937 rng(1234);
  for (const Case& c : cases) {
    std::vector<Tensor> host, host_rounded;
    for (const Input& in : c.inputs) {
      host.push_back(RandomHost(in, rng));
      host_rounded.push_back(in.f32_table ? host.back().Clone() : RoundedBf16(host.back()));
    }
    auto ref = RunOn(*cpu, c, host);
    ASSERT_TRUE(ref.ok()) << c.name << ": " << ref.status();
    auto naive = RunOn(*cpu, c, host_rounded);
    ASSERT_TRUE(naive.ok()) << c.name << ": " << naive.status();
    auto got = RunOn(**cuda, c, host);
    if (!got.ok()) {
      ADD_FAILURE() << c.name << ": " << got.status();
      std::printf("%-44s %12s %12s %8s FAIL (%s)\n", c.name.c_str(), "-", "-", "-",
                  std::string(got.status().message()).c_str());
      continue;
    }
    for (size_t o = 0; o < ref->size(); ++o) {
      Tensor naive_out = RoundedBf16((*naive)[o]);
      const double e_naive = RelL2(naive_out, (*ref)[o]);
      const double e_cuda = RelL2((*got)[o], (*ref)[o]);
      const int bad = NonFinite((*got)[o]) - NonFinite((*ref)[o]);
      const bool ok = bad == 0 && e_cuda <= c.slack * e_naive + kFloor;
      std::printf("%-44s %12.3e %12.3e %8.2f %s\n", c.name.c_str(), e_naive, e_cuda,
                  e_cuda / std::max(e_naive, 1e-12), ok ? "ok" : "FAIL");
      EXPECT_EQ(bad, 0) << c.name << ": non-finite mismatch";
      EXPECT_LE(e_cuda, c.slack * e_naive + kFloor) << c.name;
    }
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace turbovid::engine::parity
