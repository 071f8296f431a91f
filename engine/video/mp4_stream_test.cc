// The streaming writer's encoder choice and its FFmpeg path (built with FFmpeg and libx264):
// AddI420 takes VideoToI420Op's pictures and gives the file AddFrames gives; FFmpeg's encoders
// (libx264 here, h264_nvenc on a GPU that has NVENC: the same code) write a moov-first file and a
// fragmented one that our reader and ffprobe read; the NVENC probe on a machine without NVENC
// says no and the automatic choice is libx264, which TV_MP4_ENCODER overrides.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "common/status_matchers.h"
#include "engine/core/colour.h"
#include "engine/video/mp4_probe.h"
#include "engine/video/mp4_x264.h"
#include "engine/video/run_command.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;

Tensor Clip(int64_t frames, int64_t height, int64_t width) {
  Tensor t = Tensor::Zeros(DType::kU8, {frames, height, width, 3});
  uint8_t* p = t.data<uint8_t>();
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        uint8_t* px = p + ((f * height + y) * width + x) * 3;
        const bool square = x >= 2 * f + 4 && x < 2 * f + 16 && y >= f + 4 && y < f + 16;
        px[0] = square ? 230 : static_cast<uint8_t>(40 + (x * 170) / width);
        px[1] = square ? 40 : static_cast<uint8_t>(30 + (y * 190) / height);
        px[2] = static_cast<uint8_t>(60 + ((x + y + 3 * f) * 150) / (width + height + 60));
      }
    }
  }
  return t;
}

Tensor I420Of(const Tensor& rgb) {
  const int64_t n = rgb.dim(0), h = rgb.dim(1), w = rgb.dim(2);
  Tensor yuv = Tensor::Zeros(DType::kU8, {n, h * w * 3 / 2});
  colour::RgbToI420(rgb.data<uint8_t>(), n, static_cast<int>(w), static_cast<int>(h),
                    yuv.data<uint8_t>());
  return yuv;
}

// Frames ffmpeg decodes from `mp4` (-1 when the CLI is missing or fails).
int64_t DecodedFrames(const std::string& mp4) {
  if (RunCommand("ffprobe -version 2>/dev/null").find("ffprobe") == std::string::npos) return -1;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tv_mp4_stream_" + std::to_string(getpid()) + ".mp4"))
                               .string();
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "wb"), &fclose);
    fwrite(mp4.data(), 1, mp4.size(), f.get());
  }
  const std::string out = RunCommand(
      "ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames "
      "-of csv=p=0 '" +
      path + "'");
  std::filesystem::remove(path);
  return out.empty() ? -1 : std::atoll(out.c_str());
}

// Sets TV_MP4_ENCODER for one scope.
class ScopedEncoderEnv {
 public:
  explicit ScopedEncoderEnv(const char* value) {
    const char* saved = std::getenv("TV_MP4_ENCODER");
    had_ = saved != nullptr;
    if (had_) saved_ = saved;
    value == nullptr ? unsetenv("TV_MP4_ENCODER") : setenv("TV_MP4_ENCODER", value, 1);
  }
  ~ScopedEncoderEnv() {
    had_ ? setenv("TV_MP4_ENCODER", saved_.c_str(), 1) : unsetenv("TV_MP4_ENCODER");
  }

 private:
  bool had_ = false;
  std::string saved_;
};

TEST(Mp4Stream, AddI420GivesTheFileAddFramesGives) {
  ScopedEncoderEnv env("x264");
  const Tensor rgb = Clip(9, 32, 48);
  Mp4Writer a, b;
  ASSERT_TRUE(a.Open(48, 32, Mp4Options{}).ok());
  ASSERT_TRUE(b.Open(48, 32, Mp4Options{}).ok());
  EXPECT_EQ(a.encoder(), Mp4Encoder::kX264);
  ASSERT_TRUE(a.AddFrames(rgb).ok());
  const Tensor yuv = I420Of(rgb);
  ASSERT_TRUE(b.AddI420(yuv.Slice0(0, 1)).ok());  // chunks of 1, then 4, 4: as the VAE hands them
  ASSERT_TRUE(b.AddI420(yuv.Slice0(1, 5)).ok());
  ASSERT_TRUE(b.AddI420(yuv.Slice0(5, 9)).ok());
  auto fa = a.Finish();
  auto fb = b.Finish();
  ASSERT_TRUE(fa.ok() && fb.ok());
  EXPECT_EQ(*fa, *fb);
}

TEST(Mp4Stream, AddI420RejectsWrongPictures) {
  ScopedEncoderEnv env("x264");
  Mp4Writer w;
  ASSERT_TRUE(w.Open(16, 8, Mp4Options{}).ok());
  EXPECT_THAT(w.AddI420(Tensor::Zeros(DType::kU8, {2, 191})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(w.AddI420(Tensor::Zeros(DType::kF32, {2, 192})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const absl::Status bad = w.AddI420(Tensor::Zeros(DType::kU8, {2, 100}));
  EXPECT_THAT(bad.message(), HasSubstr("pictures"));
}

TEST(Mp4Stream, FfmpegEncoderWritesAMoovFirstFile) {
  const Tensor rgb = Clip(9, 32, 48);
  Mp4Writer w;
  ASSERT_TRUE(w.Open(48, 32, Mp4Options{.encoder = Mp4Encoder::kFfmpeg}).ok());
  EXPECT_EQ(w.encoder(), Mp4Encoder::kFfmpeg);
  ASSERT_TRUE(w.AddI420(I420Of(rgb).Slice0(0, 1)).ok());
  ASSERT_TRUE(w.AddFrames(rgb.Slice0(1, 9)).ok());
  EXPECT_EQ(w.frames_added(), 9);
  auto mp4 = w.Finish();
  ASSERT_TRUE(mp4.ok()) << mp4.status();
  auto info = ProbeMp4(*mp4);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->codec, "h264");
  EXPECT_EQ(info->frames, 9);
  EXPECT_EQ(info->width, 48);
  EXPECT_TRUE(info->faststart);
  EXPECT_FALSE(info->fragmented);
  const int64_t decoded = DecodedFrames(*mp4);
  if (decoded >= 0) {
    EXPECT_EQ(decoded, 9);
  }
}

TEST(Mp4Stream, FfmpegEncoderWritesFragmentsAsTheyCome) {
  const Tensor yuv = I420Of(Clip(13, 32, 48));
  Mp4Writer w;
  ASSERT_TRUE(w.Open(48, 32, Mp4Options{.encoder = Mp4Encoder::kFfmpeg, .fragmented = true}).ok());
  std::string pieces;
  int nonempty = 0;
  for (auto [a, b] : {std::pair<int64_t, int64_t>{0, 1}, {1, 5}, {5, 9}, {9, 13}}) {
    ASSERT_TRUE(w.AddI420(yuv.Slice0(a, b)).ok());
    auto piece = w.TakeFragment();
    ASSERT_TRUE(piece.ok()) << piece.status();
    if (!piece->empty()) ++nonempty;
    if (pieces.empty() && !piece->empty()) {
      auto first = ProbeMp4(*piece);  // the first piece alone is a playable file
      ASSERT_TRUE(first.ok()) << first.status();
      EXPECT_TRUE(first->fragmented);
      EXPECT_GE(first->frames, 1);
    }
    pieces += *piece;
  }
  EXPECT_GE(nonempty, 3);  // a fragment per chunk (libx264's zerolatency lookahead of 4 aside)
  auto file = w.Finish();
  ASSERT_TRUE(file.ok()) << file.status();
  auto rest = w.TakeFragment();
  ASSERT_TRUE(rest.ok());
  pieces += *rest;
  EXPECT_EQ(pieces, *file);  // the pieces concatenated are the file
  auto info = ProbeMp4(*file);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->fragmented);
  EXPECT_EQ(info->frames, 13);
  EXPECT_GE(info->fragments, 3);
  const int64_t decoded = DecodedFrames(*file);
  if (decoded >= 0) {
    EXPECT_EQ(decoded, 13);
  }
}

// This machine (CI, the H100 too) has no NVENC: the probe says so once, the automatic choice
// is libx264 called directly, and asking for NVENC by name fails naming it.
TEST(Mp4Stream, WithoutNvencTheAutomaticChoiceIsX264) {
  const NvencProbe& probe = ProbeNvenc();
  if (probe.available) GTEST_SKIP() << "this machine has NVENC: " << probe.detail;
  EXPECT_FALSE(probe.detail.empty());
  EXPECT_EQ(&probe, &ProbeNvenc());  // once per process
  {
    ScopedEncoderEnv env(nullptr);
    Mp4Writer w;
    ASSERT_TRUE(w.Open(16, 16, Mp4Options{}).ok());
    EXPECT_EQ(w.encoder(), Mp4Encoder::kX264);
  }
  {
    ScopedEncoderEnv env("auto");
    auto e = internal::ResolveStreamEncoder(Mp4Options{});
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(*e, Mp4Encoder::kX264);
  }
  {
    ScopedEncoderEnv env("ffmpeg");
    Mp4Writer w;
    ASSERT_TRUE(w.Open(16, 16, Mp4Options{}).ok());
    EXPECT_EQ(w.encoder(), Mp4Encoder::kFfmpeg);
  }
  {
    ScopedEncoderEnv env("nvenc");
    Mp4Writer w;
    const absl::Status s = w.Open(16, 16, Mp4Options{});
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.message(), HasSubstr("h264_nvenc"));
  }
  EXPECT_STREQ(Mp4EncoderName(Mp4Encoder::kNvenc), "nvenc");
  std::printf("NVENC probe: %s; automatic encoder: x264\n", probe.detail.c_str());
}

}  // namespace
}  // namespace turbovid::engine::video
