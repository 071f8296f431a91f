// End-to-end pipeline on tiny random checkpoints: T2V and I2V-MoE produce the requested frames,
// cancellation stops between steps, bad requests name the field, noise is reproducible.
#include "engine/pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/cpu/cpu_backend.h"
#include "engine/pipeline/model_dir.h"
#include "engine/testing/tiny_checkpoint.h"
#include "engine/video/mp4_probe.h"
#include "engine/video/mp4_x264.h"
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

// The MP4 leaves through VideoToI420Op and the streaming writer: the encoder chosen is reported
// (here, without NVENC, libx264 directly), the frames are those of a run without an MP4, and with
// return_frames off only the MP4 comes back, the same bytes.
TEST_F(PipelineTest, ReportsTheMp4EncoderAndSkipsFramesOnRequest) {
  if (!video::internal::HaveX264()) GTEST_SKIP() << "no libx264 in this build";
  auto p = Pipeline::Load(*root_ + "/t2v", *backend_);
  ASSERT_TRUE(p.ok()) << p.status();
  const char* saved = std::getenv("TV_MP4_ENCODER");
  const std::string restore = saved == nullptr ? "" : saved;
  unsetenv("TV_MP4_ENCODER");
  auto with = (*p)->Generate(Small(), nullptr, nullptr, true);
  GenerateRequest no_frames = Small();
  no_frames.return_frames = false;
  auto without = (*p)->Generate(no_frames, nullptr, nullptr, true);
  auto frames_only = (*p)->Generate(Small(), nullptr, nullptr, false);
  setenv("TV_MP4_ENCODER", "ffmpeg", 1);
  auto ffmpeg = (*p)->Generate(no_frames, nullptr, nullptr, true);
  saved == nullptr ? unsetenv("TV_MP4_ENCODER") : setenv("TV_MP4_ENCODER", restore.c_str(), 1);
  ASSERT_TRUE(with.ok() && without.ok() && frames_only.ok()) << with.status();
  const std::string want = video::ProbeNvenc().available ? "nvenc" : "x264";
  EXPECT_EQ(with->mp4_encoder, want);
  EXPECT_EQ(without->mp4_encoder, want);
  EXPECT_GE(with->mp4_tail_seconds, 0);
  EXPECT_FALSE(without->frames.defined());
  EXPECT_EQ(without->mp4, with->mp4);
  ASSERT_EQ(with->frames.shape(), frames_only->frames.shape());
  EXPECT_EQ(std::memcmp(with->frames.raw(), frames_only->frames.raw(), with->frames.nbytes()), 0);
  EXPECT_TRUE(frames_only->mp4_encoder.empty());
  if (ffmpeg.ok()) {  // an FFmpeg build: its libx264, reported as such
    EXPECT_EQ(ffmpeg->mp4_encoder, "ffmpeg");
    auto info = video::ProbeMp4(ffmpeg->mp4);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->frames, 5);
  } else {
    EXPECT_EQ(ffmpeg.status().code(), absl::StatusCode::kUnimplemented) << ffmpeg.status();
  }
}

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

// Progressive output: with fragmented_mp4 the MP4 leaves in pieces while the VAE decodes (the
// first, ftyp + moov + frame 0, once the second latent frame is in x264: its lookahead is 4
// frames), then one per latent frame and the rest at the end; the pieces concatenated are the
// result's MP4, whose frames are the request's.
TEST_F(PipelineTest, FragmentedMp4LeavesPieceByPieceDuringTheDecode) {
  if (!video::internal::HaveX264()) GTEST_SKIP() << "fragments need libx264";
  auto p = Pipeline::Load(*root_ + "/t2v", *backend_);
  ASSERT_TRUE(p.ok()) << p.status();
  GenerateRequest r = Small();
  r.frames = 9;  // 3 latent frames
  r.fragmented_mp4 = true;
  std::vector<std::string> pieces;
  r.on_mp4_bytes = [&](const std::string& bytes) { pieces.push_back(bytes); };
  auto out = (*p)->Generate(r, nullptr, nullptr, true);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(pieces.size(), 3u);  // frame 0; frames 1-4; frames 5-8 at the end
  std::string joined;
  for (const std::string& piece : pieces) joined += piece;
  EXPECT_EQ(joined, out->mp4);
  EXPECT_EQ(pieces[0].substr(4, 4), "ftyp");
  auto info = video::ProbeMp4(out->mp4);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->fragmented);
  EXPECT_EQ(info->fragments, 3);
  EXPECT_EQ(info->frames, 9);
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

// preview_width: every denoising step carries a PNG of the first frame of its x0 prediction; at
// the last step (t_next = 0) x0 is the final latent, so that preview is the video's first frame
// (up to the bf16 input and float arithmetic of the preview's x0 = x − t·v).
TEST_F(PipelineTest, PreviewPerStepIsTheFirstFrameOfX0) {
  auto p = Pipeline::Load(*root_ + "/t2v", *backend_);
  ASSERT_TRUE(p.ok()) << p.status();
  GenerateRequest r = Small();
  r.preview_width = 64;  // the video's own width: no resize
  std::vector<std::string> previews;
  int denoising_events = 0;
  auto out = (*p)->Generate(
      r,
      [&](const Progress& e) {
        if (e.stage == Stage::kDenoising && e.step > 0) {
          ++denoising_events;
          previews.push_back(e.preview_png);
        } else {
          EXPECT_TRUE(e.preview_png.empty());
        }
      },
      nullptr, false);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(denoising_events, 2);
  std::vector<Tensor> images;
  for (const std::string& png : previews) {
    auto img = video::DecodeImage(png, "preview");
    ASSERT_TRUE(img.ok()) << img.status();
    ASSERT_EQ(img->shape(), (Shape{48, 64, 3}));
    images.push_back(*img);
  }
  double diff = 0;
  const uint8_t* last = images.back().data<uint8_t>();
  const uint8_t* frame0 = out->frames.data<uint8_t>();  // [5, 48, 64, 3]: frame 0 first
  for (int64_t i = 0; i < images.back().numel(); ++i) diff += std::abs(int{last[i]} - int{frame0[i]});
  EXPECT_LT(diff / images.back().numel(), 2.0);
  std::printf("preview: mean |last preview - frame 0| = %.3f of 255\n", diff / images.back().numel());
  // Smaller previews keep the aspect; out-of-range widths are refused naming the field.
  r.preview_width = 32;
  previews.clear();
  denoising_events = 0;
  ASSERT_TRUE((*p)->Generate(r, [&](const Progress& e) {
                  if (e.stage == Stage::kDenoising && e.step > 0) previews.push_back(e.preview_png);
                }, nullptr, false).ok());
  ASSERT_EQ(previews.size(), 2u);
  auto small = video::DecodeImage(previews[0], "preview");
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->shape(), (Shape{24, 32, 3}));
  r.preview_width = 600;
  auto bad = (*p)->Generate(r, nullptr, nullptr, false);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("preview_width"), std::string::npos);
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
