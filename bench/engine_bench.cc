// CPU benchmarks of the engine (Google Benchmark; never asserts):
//   BM_TinyPipelineT2V  — the whole tiny T2V pipeline (umT5 → 4 rCM steps → VAE → MP4)
//   BM_Dit13BBlock      — one real-size Wan2.1 T2V-1.3B transformer block (dim 1536, 12 heads,
//                         ffn 8960, random weights) at a small resolution, dense or SLA
#include <benchmark/benchmark.h>

#include <cmath>
#include <filesystem>

#include "engine/cpu/cpu_backend.h"
#include "engine/models/dit.h"
#include "engine/pipeline/pipeline.h"
#include "engine/samplers/noise.h"
#include "engine/testing/tiny_checkpoint.h"

namespace turbovid::engine {
namespace {

void BM_TinyPipelineT2V(benchmark::State& state) {
  const std::string dir = std::filesystem::temp_directory_path() / "tv_bench_tiny_t2v";
  if (!std::filesystem::exists(dir + "/turbovid.json") && !MakeTinyCheckpoint("t2v", dir).ok()) {
    state.SkipWithError("make tiny checkpoint failed");
    return;
  }
  auto backend = MakeCpuBackend();
  auto pipeline = Pipeline::Load(dir, *backend);
  if (!pipeline.ok()) {
    state.SkipWithError(std::string(pipeline.status().message()).c_str());
    return;
  }
  GenerateRequest r;
  r.prompt = "a red fox running through fresh snow";
  r.frames = static_cast<int>(state.range(0));
  r.width = static_cast<int>(state.range(1));
  r.height = static_cast<int>(state.range(2));
  r.steps = 4;
  for (auto _ : state) {
    auto out = (*pipeline)->Generate(r, nullptr, nullptr, /*encode_mp4=*/true);
    if (!out.ok()) state.SkipWithError(std::string(out.status().message()).c_str());
    benchmark::DoNotOptimize(out);
  }
  state.SetLabel(std::to_string(r.frames) + "f " + std::to_string(r.width) + "x" + std::to_string(r.height));
}
BENCHMARK(BM_TinyPipelineT2V)->Args({9, 128, 128})->Args({17, 256, 256})->Unit(benchmark::kMillisecond)->UseRealTime();

// One block of the 1.3B model: the weight set holds only blocks.0 plus the embeddings.
void BM_Dit13BBlock(benchmark::State& state) {
  DitConfig c;  // defaults are Wan2.1 T2V-1.3B
  c.num_layers = 1;
  io::WeightSet weights;
  uint64_t stream = 100;
  for (const auto& [name, shape] : DitTensorShapes(c, /*sla=*/true)) {
    Tensor t = GaussianNoise(shape, 5, ++stream);
    int64_t fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= 1.0f / std::sqrt(static_cast<float>(fan_in));
    (void)weights.Add(name, t, "random");
  }
  auto backend = MakeCpuBackend();
  DitOptions options;
  options.require_sla = state.range(3) != 0;
  DitForwardOptions attention;
  attention.attention = state.range(3) ? AttentionMode::kSla : AttentionMode::kDense;
  auto dit = WanDit::Load(c, weights, *backend, options);
  if (!dit.ok()) {
    state.SkipWithError(std::string(dit.status().message()).c_str());
    return;
  }
  auto ctx = (*dit)->PrepareContext(GaussianNoise({24, c.text_dim}, 6, 1));
  const int64_t t = state.range(0), h = state.range(1) / 8, w = state.range(2) / 8;
  const Tensor x = GaussianNoise({16, t, h, w}, 7, 1);
  for (auto _ : state) {
    auto v = (*dit)->Forward(x, nullptr, 988, *ctx, attention);
    if (!v.ok()) state.SkipWithError(std::string(v.status().message()).c_str());
    benchmark::DoNotOptimize(v);
  }
  const int64_t tokens = t * (h / 2) * (w / 2);
  state.SetLabel(std::to_string(tokens) + " tokens, " + (state.range(3) ? "sla" : "dense"));
  state.counters["tokens"] = static_cast<double>(tokens);
}
// Latent frames, width, height (pixels), SLA on/off.
BENCHMARK(BM_Dit13BBlock)
    ->Args({2, 160, 96, 0})
    ->Args({3, 320, 192, 0})
    ->Args({3, 320, 192, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace turbovid::engine

BENCHMARK_MAIN();
