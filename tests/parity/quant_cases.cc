// Parity cases for Int8Linear: the int8 weight and its scales are made inside each run (the same
// bits on both backends) by the offline quantiser; x (and bias) are the harness's random inputs.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/core/quantize.h"
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {
namespace {

constexpr int64_t kBlk = kInt8Block;

// The CUDA op reproduces the CPU reference bit for bit: x is rounded to bf16 by the op on both
// backends, the int8 operands and scales are identical, and the fp32 accumulation follows the
// same fma order; so no slack over the naive-bf16 error is allowed, only kFloor (1e-5 relative
// L2, below one bf16 ulp in any single element of these outputs).
constexpr double kExact = 0.0;

// Deterministic [n, k] int8 weight with scales that differ per 128-row tile.
absl::Status MakeWeight(int64_t n, int64_t k, Tensor* wq, Tensor* ws) {
  std::mt19937 rng(static_cast<uint32_t>(n * 131 + k * 7 + 5));
  std::uniform_real_distribution<float> dist(-0.2f, 0.2f);
  Tensor w = Tensor::Zeros(DType::kF32, {n, k});
  for (int64_t r = 0; r < n; ++r) {
    const float tile_gain = 1.f + static_cast<float>(r / kBlk);
    for (int64_t c = 0; c < k; ++c) w.data<float>()[r * k + c] = dist(rng) * tile_gain;
  }
  return QuantizeBlockInt8(w, wq, ws);
}

// Runs Int8Linear on x (already placed) with optional bias; returns y, then the probes x_int8,
// x_scale and acc when `probes`.
absl::StatusOr<std::vector<Tensor>> RunInt8(Env& env, const Tensor& x, const Tensor* bias,
                                            int64_t n, bool probes) {
  const int64_t m = x.dim(0), k = x.dim(1);
  Tensor wq_host, ws_host;
  TV_RETURN_IF_ERROR(MakeWeight(n, k, &wq_host, &ws_host));
  TV_ASSIGN_OR_RETURN(Tensor wq, env.Place(wq_host));
  TV_ASSIGN_OR_RETURN(Tensor ws, env.Place(ws_host));
  TV_ASSIGN_OR_RETURN(Tensor y, env.Alloc({m, n}));
  Int8LinearOp op;
  op.x = &x;
  op.w_int8 = &wq;
  op.w_scale = &ws;
  op.bias = bias;
  op.y = &y;
  Tensor xq, xs, acc;
  if (probes) {
    TV_ASSIGN_OR_RETURN(xq, env.Place(Tensor::Zeros(DType::kI8, {m, k})));
    TV_ASSIGN_OR_RETURN(
        xs, env.Place(Tensor::Zeros(DType::kF32, {(m + kBlk - 1) / kBlk, (k + kBlk - 1) / kBlk})));
    TV_ASSIGN_OR_RETURN(acc, env.Place(Tensor::Zeros(DType::kF32, {m, n})));
    op.x_int8 = &xq;
    op.x_scale = &xs;
    op.acc = &acc;
  }
  TV_RETURN_IF_ERROR(env.b.Run(op));
  if (!probes) return std::vector<Tensor>{y};
  return std::vector<Tensor>{y, xq, xs, acc};
}

Case Int8LinearCase(int64_t m, int64_t k, int64_t n, bool bias, bool probes, float range,
                    const std::string& why) {
  std::string name = "int8_linear " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                     std::to_string(n) + (bias ? " +bias" : "") + (probes ? " probes" : "") + " " +
                     why;
  std::vector<Input> in = {{{m, k}, false, -range, range}};
  if (bias) in.push_back({{n}});
  return {name, OpKindOf<Int8LinearOp>(), in,
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            return RunInt8(env, t[0], bias ? &t[1] : nullptr, n, probes);
          },
          kExact};
}

// x built in the run: tile (0, 0) all zero (amax floor 1e-8), tile (0, 1) with amax exactly 1 so
// q = 128·v hits ties (v = odd/256 → half-integers, round to even) and ±amax (→ 127 / -128).
Case Int8SpecialValuesCase() {
  const int64_t m = 130, k = 256, n = 136;
  return {"int8_linear 130x256x136 +bias probes zero tile, ties, saturation",
          OpKindOf<Int8LinearOp>(),
          {{{n}}},
          [=](Env& env, std::vector<Tensor>& t) -> absl::StatusOr<std::vector<Tensor>> {
            Tensor x = Tensor::Zeros(DType::kF32, {m, k});
            float* v = x.data<float>();
            std::mt19937 rng(7);
            std::uniform_real_distribution<float> dist(-2.f, 2.f);
            for (int64_t r = 0; r < m; ++r) {
              for (int64_t c = 0; c < k; ++c) {
                float val = 0.f;
                if (r >= kBlk) {
                  val = dist(rng);
                } else if (c >= kBlk) {
                  // i/256 for i in [-256, 256]: exact in bf16; both ±1 occur.
                  const int64_t i = (r * 37 + c * 11) % 513 - 256;
                  val = static_cast<float>(i) / 256.f;
                  if (r == 0 && c == kBlk) val = 1.f;
                  if (r == 1 && c == kBlk) val = -1.f;
                }
                v[r * k + c] = val;
              }
            }
            Tensor placed = x;
            if (env.b.compute_dtype() == DType::kBF16) {
              placed = Tensor::Zeros(DType::kBF16, {m, k});
              for (int64_t i = 0; i < m * k; ++i) placed.data<uint16_t>()[i] = F32ToBf16(v[i]);
            }
            TV_ASSIGN_OR_RETURN(Tensor dx, env.Place(placed));
            return RunInt8(env, dx, &t[0], n, true);
          },
          kExact};
}

}  // namespace

std::vector<Case> QuantCases() {
  return {
      Int8LinearCase(7, 200, 130, true, true, 1.f, "(scalar path: k % 16 != 0)"),
      Int8LinearCase(7, 208, 130, false, false, 1.f, "(mma, k tail 80)"),
      Int8LinearCase(257, 1536, 256, true, true, 3.f, "(mma, 12 k blocks)"),
      Int8LinearCase(1, 128, 128, true, false, 1.f, "(mma, one row)"),
      Int8LinearCase(130, 384, 200, false, true, 8.f, "(mma, n tail 72)"),
      Int8SpecialValuesCase(),
  };
}

}  // namespace turbovid::engine::parity
