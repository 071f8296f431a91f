// The memory plan's inputs and choices: weight bytes from the checkpoint inventory equal what the
// CPU backend counts when the tiny models load; the real Wan 1.3B / 14B / A14B sizes at 480p and
// 720p planned with the CUDA backend's accounting (docs/memory.md §5 has the same figures); and
// the tiny I2V-MoE pipeline under budgets that force each residency gives the unconstrained
// run's frames, stays within the budget, and is refused when no plan fits.
#include "engine/pipeline/memory_needs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/cpu/cpu_backend.h"
#include "engine/io/weights.h"
#include "engine/models/text_encoder.h"
#include "engine/pipeline/model_dir.h"
#include "engine/pipeline/pipeline.h"
#include "engine/testing/tiny_checkpoint.h"
#include "common/status_macros.h"
#include "engine/video/video.h"

namespace turbovid::engine {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// engine/cuda/device_pool.cc's size classes: 512-byte granules up to 1 MiB, then 2 MiB.
int64_t CudaPoolBytes(int64_t b) {
  if (b <= 0) b = 1;
  if (b <= (int64_t{1} << 20)) return (b + 511) / 512 * 512;
  return (b + (int64_t{2} << 20) - 1) / (int64_t{2} << 20) * (int64_t{2} << 20);
}

int64_t Params(const TensorShapes& shapes) {
  int64_t n = 0;
  for (const auto& [name, shape] : shapes) n += NumElements(shape);
  return n;
}

DitConfig Wan13B() {
  DitConfig c;  // the defaults are Wan2.1 T2V 1.3B
  return c;
}
DitConfig Wan14B(bool i2v) {
  DitConfig c;
  c.dim = 5120;
  c.ffn_dim = 13824;
  c.num_heads = 40;
  c.num_layers = 40;
  if (i2v) {  // Wan2.2 I2V A14B expert: x | mask | image latent in, no CLIP branch
    c.model_type = "i2v";
    c.in_dim = 36;
  }
  return c;
}

struct Case {
  DitConfig dit;
  int experts;
  bool int8;
  int width, height;
  bool fp8 = false;  // turbo-fp8: block linears e4m3 + a scale per row
};

MemoryNeeds RealNeeds(const Case& c) {
  const VaeConfig vae;
  const T5Config t5;
  ActivationModels models;
  models.t5 = t5;
  models.dit = c.dit;
  models.dit_quantized = c.int8;
  models.dit_fp8 = c.fp8;
  models.num_experts = c.experts;
  models.vae = vae;
  ActivationJob job;
  job.i2v = c.experts > 1;
  job.latent_frames = 21;  // 81 frames
  job.latent_height = c.height / 8;
  job.latent_width = c.width / 8;
  job.attention = AttentionMode::kSla;
  job.sla_topk = 0.1f;
  job.dtype = DType::kBF16;
  job.cuda_scratch = true;
  const BlockLinearWeights blocks = c.fp8    ? BlockLinearWeights::kFp8
                                    : c.int8 ? BlockLinearWeights::kInt8
                                             : BlockLinearWeights::kDense;
  const int64_t expert = WeightBytes(DitTensorShapes(c.dit, /*sla=*/true), DType::kBF16, blocks, CudaPoolBytes);
  const int64_t text = WeightBytes(T5TensorShapes(t5), DType::kBF16, false, CudaPoolBytes);
  const int64_t vae_bytes = WeightBytes(VaeTensorShapes(vae, job.i2v, true), DType::kBF16, false, CudaPoolBytes);
  return JobMemoryNeeds(models, job, std::vector<int64_t>(c.experts, expert), text, vae_bytes);
}

void Print(const char* name, const MemoryNeeds& n) {
  std::printf("%s: expert %.2f GiB x%zu, umT5 %.2f GiB, VAE %.3f GiB, activations: text %.2f, "
              "vae encode %.2f, dit %.2f, vae decode %.2f GiB\n",
              name, n.expert_bytes[0] / double(kGiB), n.expert_bytes.size(),
              n.text_encoder_bytes / double(kGiB), n.vae_bytes / double(kGiB),
              n.text_activations / double(kGiB), n.vae_encode_activations / double(kGiB),
              n.dit_activations / double(kGiB), n.vae_decode_activations / double(kGiB));
}

TEST(MemoryNeeds, RealSizesParameterCounts) {
  EXPECT_NEAR(Params(DitTensorShapes(Wan13B(), false)) / 1e9, 1.42, 0.01);
  EXPECT_NEAR(Params(DitTensorShapes(Wan14B(false), false)) / 1e9, 14.29, 0.01);
  EXPECT_NEAR(Params(DitTensorShapes(Wan14B(true), false)) / 1e9, 14.29, 0.01);
  EXPECT_NEAR(Params(T5TensorShapes(T5Config())) / 1e9, 5.68, 0.01);
}

TEST(MemoryNeeds, RealSizesUnderBudgets) {
  // Wan2.1 T2V 1.3B, 480p: everything resident, far below a 32 GiB card.
  const MemoryNeeds small = RealNeeds({Wan13B(), 1, false, 832, 480});
  Print("1.3B bf16 480p", small);
  auto p = PlanMemory(small, 32 * kGiB);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->text, TextResidency::kResident);
  EXPECT_LT(p->peak, 24 * kGiB);

  // Wan2.1 T2V 14B bf16, 720p: 26.6 GiB of DiT weights alone; with umT5 (10.6 GiB) it does
  // not fit 32 GiB in any plan, and fits an 80 GiB H100 with everything resident.
  const MemoryNeeds t2v14 = RealNeeds({Wan14B(false), 1, false, 1280, 720});
  Print("14B bf16 720p", t2v14);
  EXPECT_FALSE(PlanMemory(t2v14, 32 * kGiB).ok());
  p = PlanMemory(t2v14, 80 * kGiB);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->text, TextResidency::kResident);

  // Wan2.2 I2V A14B bf16, 720p: two 26.6 GiB experts. 32 GiB: no plan (one expert and umT5 at
  // the text stage already pass it). 80 GiB: streaming the inactive expert.
  const MemoryNeeds a14 = RealNeeds({Wan14B(true), 2, false, 1280, 720});
  Print("A14B bf16 720p", a14);
  auto refused = PlanMemory(a14, 32 * kGiB);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("32.00 GiB"), std::string::npos) << refused.status();
  p = PlanMemory(a14, 80 * kGiB);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->experts, ExpertResidency::kAllResident);  // 2 x 26.6 + 10.6 + activations < 80

  // A14B int8 (W8A8 block linears), 720p: experts 13.4 GiB each. 32 GiB: not both resident,
  // but one expert streamed into one slot with umT5 offloaded after encoding fits.
  const MemoryNeeds a14q = RealNeeds({Wan14B(true), 2, true, 1280, 720});
  Print("A14B int8 720p", a14q);
  EXPECT_GT(EvaluateMemoryPlan(a14q, ExpertResidency::kAllResident, TextResidency::kOffloadAfterEncode).peak,
            32 * kGiB);
  p = PlanMemory(a14q, 32 * kGiB);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->experts, ExpertResidency::kStreamInactive);
  std::printf("A14B int8 720p under 32 GiB: %s\n", p->Describe().c_str());
  EXPECT_LE(p->peak, 32 * kGiB);

  // turbo-fp8 (e4m3 block linears + one F32 scale per row, quantised at load): about the int8
  // expert's size. T2V 14B at 720p then fits 32 GiB with umT5 offloaded after encoding; A14B
  // streams as int8 does.
  const MemoryNeeds t2v14f = RealNeeds({Wan14B(false), 1, false, 1280, 720, true});
  Print("14B fp8 720p", t2v14f);
  EXPECT_LT(t2v14f.expert_bytes[0], t2v14.expert_bytes[0] * 11 / 20);
  p = PlanMemory(t2v14f, 32 * kGiB);
  ASSERT_TRUE(p.ok()) << p.status();
  std::printf("14B fp8 720p under 32 GiB: %s\n", p->Describe().c_str());
  const MemoryNeeds a14f = RealNeeds({Wan14B(true), 2, false, 1280, 720, true});
  Print("A14B fp8 720p", a14f);
  p = PlanMemory(a14f, 32 * kGiB);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->experts, ExpertResidency::kStreamInactive);
  std::printf("A14B fp8 720p under 32 GiB: %s\n", p->Describe().c_str());
}

class MemoryPipelineTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::TempDir() + "/tv_memory_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(*root_);
    ASSERT_TRUE(MakeTinyCheckpoint("i2v-moe", *root_ + "/i2v").ok());
  }
  static GenerateRequest Job() {
    GenerateRequest r;
    r.prompt = "a red fox running through snow";
    r.frames = 5;
    r.width = 64;
    r.height = 48;
    r.steps = 3;
    r.seed = 11;
    Tensor img = Tensor::Zeros(DType::kU8, {48, 64, 3});
    for (int64_t i = 0; i < img.numel(); ++i) img.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
    auto png = video::EncodePng(img);
    EXPECT_TRUE(png.ok());
    r.image_bytes = *png;
    r.adapt_size_to_image = false;
    return r;
  }
  // Runs Job() on a fresh backend under `budget` (0: none).
  static absl::StatusOr<GenerateResult> Run(int64_t budget, MemoryPlan* plan = nullptr) {
    auto backend = MakeCpuBackend();
    backend->SetMemoryLimit(budget);
    TV_ASSIGN_OR_RETURN(auto p, Pipeline::Load(*root_ + "/i2v", *backend));
    if (plan != nullptr) {
      TV_ASSIGN_OR_RETURN(*plan, p->PlanMemory(Job()));
    }
    return p->Generate(Job(), nullptr, nullptr, false);
  }
  static std::string* root_;
};
std::string* MemoryPipelineTest::root_ = nullptr;

TEST_F(MemoryPipelineTest, MeasuredWeightsMatchTheInventory) {
  auto backend = MakeCpuBackend();
  auto dir = ModelDir::Open(*root_ + "/i2v");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto weights = io::WeightSet::Load(dir->dit_dirs[0]);
  ASSERT_TRUE(weights.ok()) << weights.status();
  WeightInventory inventory;
  for (const auto& [name, entry] : weights->entries()) inventory.push_back({name, entry.tensor.shape()});
  auto config = LoadDitConfig(dir->dit_dirs[0], *weights);
  ASSERT_TRUE(config.ok()) << config.status();
  const int64_t before = backend->memory_stats().in_use;
  auto dit = WanDit::Load(*config, *weights, *backend, DitOptions());
  ASSERT_TRUE(dit.ok()) << dit.status();
  EXPECT_EQ(backend->memory_stats().in_use - before, WeightBytes(inventory, DType::kF32, false, nullptr));
}

// turbo-fp8: the block linears held as e4m3 codes (1 byte) + one F32 scale per row, both in the
// loaded model's measured bytes and in the worker's estimate from the checkpoint headers.
TEST_F(MemoryPipelineTest, Fp8WeightsCountOneBytePlusRowScales) {
  auto backend = MakeCpuBackend();
  auto dir = ModelDir::Open(*root_ + "/i2v");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto weights = io::WeightSet::Load(dir->dit_dirs[0]);
  ASSERT_TRUE(weights.ok()) << weights.status();
  WeightInventory inventory;
  int64_t saved = 0;  // on disk minus as held, over both experts' block linears
  for (const auto& [name, entry] : weights->entries()) {
    inventory.push_back({name, entry.tensor.shape()});
    if (IsQuantizedBlockLinear(name, entry.tensor.rank())) {
      saved += static_cast<int64_t>(entry.tensor.nbytes()) - entry.tensor.numel() -
               4 * entry.tensor.dim(0);
    }
  }
  ASSERT_GT(saved, 0);
  auto config = LoadDitConfig(dir->dit_dirs[0], *weights);
  ASSERT_TRUE(config.ok()) << config.status();
  const int64_t before = backend->memory_stats().in_use;
  DitOptions options;
  options.fp8_linears = true;
  auto dit = WanDit::Load(*config, *weights, *backend, options);
  ASSERT_TRUE(dit.ok()) << dit.status();
  const int64_t fp8 = WeightBytes(inventory, DType::kF32, BlockLinearWeights::kFp8, nullptr);
  EXPECT_EQ(backend->memory_stats().in_use - before, fp8);
  EXPECT_LT(fp8, WeightBytes(inventory, DType::kF32, BlockLinearWeights::kDense, nullptr));
  auto disk = CheckpointBytes(*root_ + "/i2v");
  auto disk_fp8 = CheckpointBytes(*root_ + "/i2v", /*fp8_blocks=*/true);
  ASSERT_TRUE(disk.ok() && disk_fp8.ok());
  EXPECT_EQ(*disk - *disk_fp8, saved * static_cast<int64_t>(dir->dit_dirs.size()));
}

TEST_F(MemoryPipelineTest, EveryResidencyGivesTheSameFramesWithinTheBudget) {
  auto free_run = Run(0);
  ASSERT_TRUE(free_run.ok()) << free_run.status();
  // The needs the pipeline plans this job with (measured weights), and each plan's peak.
  auto backend = MakeCpuBackend();
  auto loaded = Pipeline::Load(*root_ + "/i2v", *backend);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto needs = (*loaded)->MemoryNeedsOf(Job());
  ASSERT_TRUE(needs.ok()) << needs.status();
  ASSERT_EQ(needs->expert_bytes.size(), 2u);
  int streamed_runs = 0;
  for (const auto& [experts, text] :
       {std::pair{ExpertResidency::kAllResident, TextResidency::kOffloadAfterEncode},
        std::pair{ExpertResidency::kStreamInactive, TextResidency::kResident},
        std::pair{ExpertResidency::kStreamInactive, TextResidency::kOffloadAfterEncode}}) {
    const MemoryPlan want = EvaluateMemoryPlan(*needs, experts, text);
    auto chosen = PlanMemory(*needs, want.peak);
    ASSERT_TRUE(chosen.ok()) << chosen.status();
    // A plan earlier in the preference order may fit the same budget: run what is chosen.
    SCOPED_TRACE(chosen->Describe());
    MemoryPlan plan;
    auto run = Run(want.peak, &plan);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(plan.experts, chosen->experts);
    EXPECT_EQ(plan.text, chosen->text);
    streamed_runs += plan.experts == ExpertResidency::kStreamInactive;
    EXPECT_LE(run->accounted_peak_bytes, want.peak);
    EXPECT_EQ(run->peak_bytes, run->accounted_peak_bytes);
    ASSERT_EQ(run->frames.shape(), free_run->frames.shape());
    EXPECT_EQ(std::memcmp(run->frames.raw(), free_run->frames.raw(), run->frames.nbytes()), 0);
  }
  EXPECT_GE(streamed_runs, 1);
}

TEST_F(MemoryPipelineTest, ABudgetTooSmallIsRefusedAtAdmission) {
  auto backend = MakeCpuBackend();
  auto loaded = Pipeline::Load(*root_ + "/i2v", *backend);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto needs = (*loaded)->MemoryNeedsOf(Job());
  ASSERT_TRUE(needs.ok()) << needs.status();
  const int64_t smallest =
      EvaluateMemoryPlan(*needs, ExpertResidency::kStreamInactive, TextResidency::kOffloadAfterEncode).peak;
  // The models load (their weights fit), the job does not.
  backend->SetMemoryLimit(smallest - 1);
  int progress_calls = 0;
  auto r = (*loaded)->Generate(Job(), [&](const Progress&) { ++progress_calls; }, nullptr, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("over the memory budget"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find(std::to_string(smallest) + " bytes"), std::string::npos) << r.status();
  EXPECT_EQ(progress_calls, 0);  // refused before any stage began
}

TEST_F(MemoryPipelineTest, AllocatorRefusesPastTheBudget) {
  auto backend = MakeCpuBackend();
  backend->SetMemoryLimit(1 << 20);
  auto a = backend->Allocate(DType::kF32, {128, 1024});  // 512 KiB
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = backend->Allocate(DType::kF32, {128, 1024});  // 1 MiB in all: at the budget
  ASSERT_TRUE(b.ok()) << b.status();
  auto c = backend->Allocate(DType::kF32, {1});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("over the budget of 1.0 MiB"), std::string::npos) << c.status();
  auto u = backend->Upload(Tensor::Zeros(DType::kF32, {4}), DType::kF32);
  EXPECT_FALSE(u.ok());
  *b = Tensor();  // freed bytes count no more
  EXPECT_TRUE(backend->Upload(Tensor::Zeros(DType::kF32, {4}), DType::kF32).ok());
  EXPECT_EQ(backend->memory_stats().peak, 1 << 20);
}

TEST_F(MemoryPipelineTest, OffloadedTextEncoderUploadsOnlyOnACacheMiss) {
  auto backend = MakeCpuBackend();
  auto text = TextEncoder::Load(*root_ + "/i2v", *backend);
  ASSERT_TRUE(text.ok()) << text.status();
  auto reference_backend = MakeCpuBackend();
  auto reference = TextEncoder::Load(*root_ + "/i2v", *reference_backend);
  ASSERT_TRUE(reference.ok()) << reference.status();
  const int64_t loaded = backend->memory_stats().in_use;
  ASSERT_GT(loaded, 0);
  auto a = (*text)->Encode("a red fox");
  ASSERT_TRUE(a.ok()) << a.status();
  (*text)->Offload();
  EXPECT_FALSE((*text)->resident());
  EXPECT_EQ(backend->memory_stats().in_use, 0);  // the weights left the device
  auto hit = (*text)->Encode("a red fox");  // cache hit: no upload
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_FALSE((*text)->resident());
  auto miss = (*text)->Encode("a grey wolf");  // miss: uploaded again
  ASSERT_TRUE(miss.ok()) << miss.status();
  EXPECT_TRUE((*text)->resident());
  EXPECT_EQ(backend->memory_stats().in_use, loaded);
  auto want = (*reference)->Encode("a grey wolf");
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_EQ(miss->nbytes(), want->nbytes());
  EXPECT_EQ(std::memcmp(miss->raw(), want->raw(), want->nbytes()), 0);
}

}  // namespace
}  // namespace turbovid::engine
