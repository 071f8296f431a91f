// The activation plan against the live activation bytes the CPU backend measures: every stage
// (umT5, DiT dense / SLA / int8 / I2V, VAE decode / encode) on small random models, and whole
// pipeline jobs (T2V rCM, T2V UniPC + CFG, I2V-MoE) on tiny checkpoints. The estimate must cover
// the measurement and stay within 1.5x of it; the arena must hold the plan.
#include "engine/pipeline/activation_plan.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>

#include "engine/core/quantize.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/io/weights.h"
#include "engine/models/text_encoder.h"
#include "engine/pipeline/model_dir.h"
#include "engine/pipeline/pipeline.h"
#include "engine/testing/tiny_checkpoint.h"
#include "engine/video/video.h"

namespace turbovid::engine {
namespace {

Tensor Random(const Shape& shape, std::mt19937& gen) {
  std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

// Weights of `shapes`, small random values; with `int8`, the DiT block linears become
// TurboDiffusion int8 weights + scales.
io::WeightSet Weights(const TensorShapes& shapes, bool int8 = false) {
  std::mt19937 gen(7);
  io::WeightSet ws;
  for (const auto& [name, shape] : shapes) {
    const bool block_linear = name.starts_with("blocks.") && name.ends_with(".weight") &&
                              shape.size() == 2 && name.find("proj_l") == std::string::npos;
    if (int8 && block_linear) {
      Tensor q, s;
      EXPECT_TRUE(QuantizeBlockInt8(Random(shape, gen), &q, &s).ok());
      const std::string prefix = name.substr(0, name.size() - 7);
      EXPECT_TRUE(ws.Add(prefix + ".int8_weight", q, "test").ok());
      EXPECT_TRUE(ws.Add(prefix + ".scale", s, "test").ok());
    } else {
      EXPECT_TRUE(ws.Add(name, Random(shape, gen), "test").ok()) << name;
    }
  }
  return ws;
}

ActivationJob CpuJob() {
  ActivationJob job;
  job.dtype = DType::kF32;
  return job;
}

// estimate ≥ measured, estimate ≤ 1.5 · measured.
void ExpectCovers(const char* what, int64_t estimate, int64_t measured) {
  std::printf("%-28s estimate %9lld  measured %9lld  ratio %.3f\n", what,
              static_cast<long long>(estimate), static_cast<long long>(measured),
              measured > 0 ? static_cast<double>(estimate) / measured : 0.0);
  EXPECT_GT(measured, 0) << what;
  EXPECT_GE(estimate, measured) << what;
  EXPECT_LE(estimate, measured * 3 / 2) << what;
}

class ActivationPlanTest : public testing::Test {
 protected:
  int64_t Peak() const { return backend_->memory_stats().activation_peak; }
  std::unique_ptr<Backend> backend_ = MakeCpuBackend();
};

TEST_F(ActivationPlanTest, CpuBackendCountsLiveAllocations) {
  {
    auto a = backend_->Allocate(DType::kF32, {10, 10});
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(backend_->memory_stats().activation_in_use, 400);
    Tensor view = a->Slice0(2, 4);  // shares the storage
    a = backend_->Allocate(DType::kI8, {3});
    EXPECT_EQ(backend_->memory_stats().activation_in_use, 403);
    EXPECT_EQ(Peak(), 403);
  }
  EXPECT_EQ(backend_->memory_stats().activation_in_use, 0);
  auto up = backend_->Upload(Tensor::Zeros(DType::kF32, {100}), DType::kF32);  // not counted
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(backend_->memory_stats().activation_in_use, 0);
  backend_->ResetPeakMemory();
  EXPECT_EQ(Peak(), 0);
  EXPECT_TRUE(backend_->ReserveActivations(1 << 20).ok());  // no arena on the CPU
}

TEST_F(ActivationPlanTest, T5EncodeMatches) {
  for (bool shared_pos : {false, true}) {
    T5Config c;
    c.vocab = 64;
    c.dim = 32;
    c.dim_attn = 48;
    c.dim_ffn = 80;
    c.num_heads = 4;
    c.num_layers = 2;
    c.num_buckets = 8;
    c.max_distance = 16;
    c.shared_pos = shared_pos;
    TensorShapes shapes = T5TensorShapes(c);
    // T5TensorShapes lists only the per-layer tables.
    if (shared_pos)
      shapes.push_back({"pos_embedding.embedding.weight", {c.num_buckets, c.num_heads}});
    io::WeightSet ws = Weights(shapes);
    auto t5 = UmT5Encoder::Load(c, ws, *backend_);
    ASSERT_TRUE(t5.ok()) << t5.status();
    std::vector<int64_t> ids(13);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i * 5 % 64);
    backend_->ResetPeakMemory();
    ASSERT_TRUE((*t5)->Encode(ids).ok());
    ActivationModels models;
    models.t5 = c;
    ActivationJob job = CpuJob();
    job.text_tokens = static_cast<int64_t>(ids.size());
    ExpectCovers(shared_pos ? "t5 (shared pos)" : "t5", PlanActivations(models, job).text_encode,
                 Peak());
  }
}

struct DitCase {
  const char* name;
  AttentionMode attention;
  bool int8;
  bool i2v;
  bool fp8 = false;  // block linears quantised to e4m3 at load (turbo-fp8)
};

TEST_F(ActivationPlanTest, DitContextAndForwardMatch) {
  for (const DitCase& k : {DitCase{"dit dense", AttentionMode::kDense, false, false},
                           DitCase{"dit sla", AttentionMode::kSla, false, false},
                           DitCase{"dit int8", AttentionMode::kDense, true, false},
                           DitCase{"dit i2v", AttentionMode::kDense, false, true},
                           DitCase{"dit fp8", AttentionMode::kSla, false, false, true}}) {
    DitConfig c;
    c.model_type = k.i2v ? "i2v" : "t2v";
    c.in_dim = k.i2v ? 12 : 4;
    c.out_dim = 4;
    c.dim = 64;
    c.ffn_dim = 160;
    c.freq_dim = 16;
    c.text_dim = 24;
    c.text_len = 10;
    c.num_heads = 2;
    c.num_layers = 2;
    io::WeightSet ws = Weights(DitTensorShapes(c, /*sla=*/true), k.int8);
    DitOptions options;
    options.require_sla = k.attention == AttentionMode::kSla;
    options.fp8_linears = k.fp8;
    // 72 tokens: 2 key blocks, one of them selected.
    const DitForwardOptions attention{k.attention, 0.5f};
    auto dit = WanDit::Load(c, ws, *backend_, options);
    ASSERT_TRUE(dit.ok()) << dit.status();
    std::mt19937 gen(3);
    const Tensor context = Random({7, c.text_dim}, gen);
    const Tensor x = Random({4, 3, 8, 12}, gen);
    const Tensor y = Random({8, 3, 8, 12}, gen);
    backend_->ResetPeakMemory();
    {
      auto ctx = (*dit)->PrepareContext(context);
      ASSERT_TRUE(ctx.ok()) << ctx.status();
      ASSERT_TRUE((*dit)->Forward(x, k.i2v ? &y : nullptr, 500.0, *ctx, attention).ok());
    }
    ActivationModels models;
    models.dit = c;
    models.dit_quantized = k.int8;
    models.dit_fp8 = k.fp8;
    ActivationJob job = CpuJob();
    job.latent_frames = 3;
    job.latent_height = 8;
    job.latent_width = 12;
    job.attention = k.attention;
    job.i2v = k.i2v;
    ExpectCovers(k.name, PlanActivations(models, job).dit, Peak());
  }
}

TEST_F(ActivationPlanTest, VaeDecodeAndEncodeMatch) {
  auto json = Json::Parse(R"({"dim": 4})");
  ASSERT_TRUE(json.ok());
  auto c = VaeConfig::FromJson(*json);
  ASSERT_TRUE(c.ok()) << c.status();
  io::WeightSet ws = Weights(VaeTensorShapes(*c, true, true));
  auto vae = WanVae::Load(*c, ws, *backend_, true, true);
  ASSERT_TRUE(vae.ok()) << vae.status();
  std::mt19937 gen(5);
  ActivationModels models;
  models.vae = *c;
  ActivationJob job = CpuJob();
  job.latent_frames = 3;
  job.latent_height = 4;
  job.latent_width = 6;
  job.i2v = true;  // plans the encode too
  const ActivationPlan plan = PlanActivations(models, job);
  backend_->ResetPeakMemory();
  ASSERT_TRUE((*vae)->Decode(Random({16, 3, 4, 6}, gen)).ok());
  ExpectCovers("vae decode", plan.vae_decode, Peak());
  backend_->ResetPeakMemory();
  ASSERT_TRUE((*vae)->Encode(Random({3, 9, 32, 48}, gen)).ok());
  ExpectCovers("vae encode", plan.vae_encode, Peak());
}

class ActivationPlanPipelineTest : public ActivationPlanTest {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::TempDir() + "/tv_activation_plan_test_" +
                            std::to_string(getpid()));
    std::filesystem::remove_all(*root_);
    ASSERT_TRUE(MakeTinyCheckpoint("t2v", *root_ + "/t2v").ok());
    ASSERT_TRUE(MakeTinyCheckpoint("i2v-moe", *root_ + "/i2v").ok());
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*root_);
    delete root_;
  }

  // Runs `r` on the tiny checkpoint `kind` and holds the job's activation peak against the plan.
  void RunJob(const char* what, const std::string& kind, const GenerateRequest& r) {
    const std::string dir = *root_ + "/" + kind;
    auto pipeline = Pipeline::Load(dir, *backend_);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    auto text = TextEncoder::Load(dir, *backend_);
    ASSERT_TRUE(text.ok()) << text.status();
    auto ids = (*text)->Tokenize(r.prompt);
    auto neg = (*text)->Tokenize(kWanNegativePrompt);
    ASSERT_TRUE(ids.ok() && neg.ok());
    auto out = (*pipeline)->Generate(r, nullptr, nullptr, false);
    ASSERT_TRUE(out.ok()) << out.status();
    const int64_t measured = Peak();

    const bool i2v = kind == "i2v";
    const TinyModelSizes sizes = TinySizes(i2v);
    ActivationModels models;
    models.t5 = sizes.t5;
    models.dit = sizes.dit;
    models.vae = sizes.vae;
    models.num_experts = i2v ? 2 : 1;
    ActivationJob job = CpuJob();
    job.cfg = r.sampler == SamplerKind::kUniPc;
    job.text_tokens =
        static_cast<int64_t>(job.cfg ? std::max(ids->size(), neg->size()) : ids->size());
    job.latent_frames = (r.frames - 1) / 4 + 1;
    job.latent_height = r.height / 8;
    job.latent_width = r.width / 8;
    job.i2v = i2v;
    job.attention = r.attention;
    const ActivationPlan plan = PlanActivations(models, job);
    ExpectCovers(what, plan.peak(), measured);
    EXPECT_GE(plan.arena, plan.peak() + plan.peak() / 32);
    EXPECT_EQ(plan.arena % (2 << 20), 0);
  }

  static GenerateRequest Small() {
    GenerateRequest r;
    r.prompt = "a red fox running through snow";
    r.frames = 9;
    r.width = 64;
    r.height = 48;
    r.steps = 2;
    r.seed = 7;
    return r;
  }
  static std::string* root_;
};
std::string* ActivationPlanPipelineTest::root_ = nullptr;

TEST_F(ActivationPlanPipelineTest, T2vJobs) {
  GenerateRequest r = Small();
  RunJob("pipeline t2v rcm", "t2v", r);
  r.attention = AttentionMode::kSla;
  r.width = r.height = 128;  // enough key blocks for top-k 0.1
  RunJob("pipeline t2v rcm sla", "t2v", r);
  r = Small();
  r.sampler = SamplerKind::kUniPc;
  RunJob("pipeline t2v unipc cfg", "t2v", r);
}

TEST_F(ActivationPlanPipelineTest, I2vMoeJob) {
  // A 48x64 image keeps the requested 64x48 (AdaptiveSize), so the plan can use it as is.
  Tensor rgb = Tensor::Zeros(DType::kU8, {48, 64, 3});
  for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
  auto png = video::EncodePng(rgb);
  ASSERT_TRUE(png.ok()) << png.status();
  GenerateRequest r = Small();
  r.image_bytes = *png;
  RunJob("pipeline i2v-moe", "i2v", r);
}

// The real sizes (bf16, CUDA scratch): printed for the record (docs, the GPU check), with sanity
// bounds only. Wan2.1 1.3B at 480p and 14B at 720p, 81 frames; I2V-A14B at 720p with UniPC + CFG.
TEST(ActivationPlanRealSizes, WanModels) {
  auto vae = Json::Parse(R"({"dim": 96})");
  ASSERT_TRUE(vae.ok());
  struct Model {
    const char* name;
    int dim, ffn_dim, heads, layers, experts;
    int64_t h, w;
    bool i2v_cfg;
  };
  for (const Model& m : {Model{"1.3B 480p", 1536, 8960, 12, 30, 1, 60, 104, false},
                         Model{"14B 720p", 5120, 13824, 40, 40, 1, 90, 160, false},
                         Model{"A14B i2v 720p cfg", 5120, 13824, 40, 40, 2, 90, 160, true}}) {
    ActivationModels models;
    models.dit.dim = m.dim;
    models.dit.ffn_dim = m.ffn_dim;
    models.dit.num_heads = m.heads;
    models.dit.num_layers = m.layers;
    models.dit.in_dim = m.i2v_cfg ? 36 : 16;
    models.num_experts = m.experts;
    models.vae = *VaeConfig::FromJson(*vae);
    ActivationJob job;
    job.latent_frames = 21;
    job.latent_height = m.h;
    job.latent_width = m.w;
    job.i2v = job.cfg = m.i2v_cfg;
    job.cuda_scratch = true;
    for (AttentionMode mode : {AttentionMode::kDense, AttentionMode::kSla}) {
      job.attention = mode;
      const ActivationPlan p = PlanActivations(models, job);
      std::printf(
          "%-18s %-5s MiB: t5 %lld, vae encode %lld, dit %lld, vae decode %lld, arena %lld\n",
          m.name, mode == AttentionMode::kSla ? "sla" : "dense",
          static_cast<long long>(p.text_encode >> 20), static_cast<long long>(p.vae_encode >> 20),
          static_cast<long long>(p.dit >> 20), static_cast<long long>(p.vae_decode >> 20),
          static_cast<long long>(p.arena >> 20));
      EXPECT_GE(p.arena, p.peak());
      EXPECT_LE(p.arena, p.peak() * 4 / 3);
      // At least the eight [L, E] bf16 tensors a block holds in its FFN.
      const int64_t l = 21 * (m.h / 2) * (m.w / 2);
      EXPECT_GT(p.dit, l * m.dim * 2 * 8);
    }
  }
}

}  // namespace
}  // namespace turbovid::engine
