// End-to-end pipeline on tiny random checkpoints: T2V and I2V-MoE produce the requested frames,
// cancellation stops between steps, bad requests name the field, noise is reproducible.
#include "engine/pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "engine/cpu/cpu_backend.h"
#include "engine/pipeline/model_dir.h"
#include "engine/testing/tiny_checkpoint.h"
#include "engine/video/video.h"

namespace turbovid::engine {
namespace {

class PipelineTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One folder per process: ctest runs the tests of this suite as parallel processes.
    root_ = new std::string(testing::TempDir() + "/tv_pipeline_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(*root_);
    ASSERT_TRUE(MakeTinyCheckpoint("t2v", *root_ + "/t2v").ok());
    ASSERT_TRUE(MakeTinyCheckpoint("i2v-moe", *root_ + "/i2v").ok());
  }
  static GenerateRequest Small() {
    GenerateRequest r;
    r.prompt = "a red fox running through snow";
    r.frames = 5;
    r.width = 64;
    r.height = 48;
    r.steps = 2;
    r.seed = 7;
    return r;
  }
  static std::string* root_;
  std::unique_ptr<Backend> backend_ = MakeCpuBackend();
};
std::string* PipelineTest::root_ = nullptr;

TEST_F(PipelineTest, T2vProducesFramesProgressAndMp4) {
  auto p = Pipeline::Load(*root_ + "/t2v", *backend_);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<Progress> events;
  auto r = (*p)->Generate(Small(), [&](const Progress& e) { events.push_back(e); }, nullptr, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->frames.shape(), (Shape{5, 48, 64, 3}));
  EXPECT_GT(r->mp4.size(), 100u);
  int last_step = 0;
  for (const auto& e : events) {
    if (e.stage == Stage::kDenoising) {
      EXPECT_GE(e.step, last_step);
      last_step = e.step;
    }
  }
  EXPECT_EQ(last_step, 2);
  EXPECT_EQ(events.back().stage, Stage::kEncodingMp4);
  // Same seed, same frames; SLA runs too.
  auto again = (*p)->Generate(Small(), nullptr, nullptr, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::memcmp(again->frames.raw(), r->frames.raw(), r->frames.nbytes()), 0);
  GenerateRequest sla = Small();
  sla.attention = AttentionMode::kSla;
  sla.frames = 9;
  sla.width = 128;
  sla.height = 128;
  EXPECT_TRUE((*p)->Generate(sla, nullptr, nullptr, false).ok());
}

TEST_F(PipelineTest, CancelStopsBetweenSteps) {
  auto p = Pipeline::Load(*root_ + "/t2v", *backend_);
  ASSERT_TRUE(p.ok()) << p.status();
  int steps_seen = 0;
  GenerateRequest r = Small();
  r.steps = 4;
  auto out = (*p)->Generate(
      r, [&](const Progress& e) { if (e.stage == Stage::kDenoising && e.step > 0) steps_seen = e.step; },
      [&] { return steps_seen >= 1; }, false);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(steps_seen, 1);
}

TEST_F(PipelineTest, InvalidRequestsNameTheField) {
  auto p = Pipeline::Load(*root_ + "/t2v", *backend_);
  ASSERT_TRUE(p.ok()) << p.status();
  struct Case {
    void (*mutate)(GenerateRequest&);
    const char* field;
  };
  const Case cases[] = {{[](GenerateRequest& r) { r.frames = 80; }, "frames"},
                        {[](GenerateRequest& r) { r.width = 72; }, "width"},
                        {[](GenerateRequest& r) { r.prompt.clear(); }, "prompt"},
                        {[](GenerateRequest& r) { r.steps = 9; }, "steps"},
                        {[](GenerateRequest& r) { r.image_bytes = "x"; }, "image"}};
  for (const Case& c : cases) {
    GenerateRequest r = Small();
    c.mutate(r);
    auto out = (*p)->Generate(r, nullptr, nullptr, false);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(std::string(out.status().message()).find(c.field), std::string::npos) << out.status();
  }
}

TEST_F(PipelineTest, I2vMoeRunsFromAnImage) {
  auto p = Pipeline::Load(*root_ + "/i2v", *backend_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->is_i2v());
  Tensor rgb = Tensor::Zeros(DType::kU8, {40, 60, 3});
  for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
  auto png = video::EncodePng(rgb);
  ASSERT_TRUE(png.ok()) << png.status();
  GenerateRequest r = Small();
  r.image_bytes = *png;
  r.steps = 4;
  auto out = (*p)->Generate(r, nullptr, nullptr, true);
  ASSERT_TRUE(out.ok()) << out.status();
  // Area 64x48 at the image's 2:3 aspect → 64x48 rounded to multiples of 16.
  EXPECT_EQ(out->frames.dim(0), 5);
  EXPECT_EQ(out->frames.dim(1) % 16, 0);
  EXPECT_EQ(out->frames.dim(2) % 16, 0);
  r.image_bytes = "not an image";
  EXPECT_EQ((*p)->Generate(r, nullptr, nullptr, false).status().code(), absl::StatusCode::kInvalidArgument);
}

// The estimate counts tensor bytes only: at most the files' sizes (headers and pickles on top),
// and the I2V-MoE folder's second expert shows up in it.
TEST_F(PipelineTest, CheckpointBytesCountsEveryTensorOfTheFolder) {
  auto t2v = CheckpointBytes(*root_ + "/t2v");
  ASSERT_TRUE(t2v.ok()) << t2v.status();
  int64_t file_bytes = 0;
  for (const char* name : {"diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth",
                           "Wan2.1_VAE.pth"}) {
    file_bytes += static_cast<int64_t>(std::filesystem::file_size(*root_ + "/t2v/" + name));
  }
  EXPECT_GT(*t2v, file_bytes / 2);
  EXPECT_LE(*t2v, file_bytes);
  auto i2v = CheckpointBytes(*root_ + "/i2v");
  ASSERT_TRUE(i2v.ok()) << i2v.status();
  EXPECT_GT(*i2v, *t2v);
  EXPECT_EQ(CheckpointBytes(*root_ + "/missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace turbovid::engine
