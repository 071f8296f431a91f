// MP4 encoding checked by ffprobe, FFmpeg image decoding (and EncodePng round trips through it)
// and the exact float → U8 rounding of VideoToFrames.
#include "engine/video/video.h"
#include "engine/video/run_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "common/status_matchers.h"
#include "engine/core/json.h"

namespace turbovid::engine::video {
namespace {

using ::turbovid::common::testing::StatusIs;

// [F, H, W, 3] U8 gradient that moves with the frame index.
Tensor Gradient(int64_t frames, int64_t height, int64_t width) {
  Tensor t = Tensor::Zeros(DType::kU8, {frames, height, width, 3});
  uint8_t* p = t.data<uint8_t>();
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        uint8_t* px = p + ((f * height + y) * width + x) * 3;
        px[0] = static_cast<uint8_t>((x * 255) / (width - 1));
        px[1] = static_cast<uint8_t>((y * 255) / (height - 1));
        px[2] = static_cast<uint8_t>((f * 29 + x + y) % 256);
      }
    }
  }
  return t;
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + "_" + std::to_string(getpid()) + "_" + std::to_string(std::rand())))
      .string();
}

TEST(VideoTest, EncodedMp4IsH264Yuv420pAt16Fps) {
  const std::string path = TempPath("tv_video_test.mp4");
  ASSERT_TRUE(WriteMp4(Gradient(9, 48, 64), path).ok());
  const std::string probe = RunCommand(
      "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
      "stream=codec_name,width,height,nb_read_frames,pix_fmt,r_frame_rate -of json '" +
      path + "'");
  std::filesystem::remove(path);
  auto json = Json::Parse(probe);
  ASSERT_TRUE(json.ok()) << probe;
  const Json* streams = json->Find("streams");
  ASSERT_NE(streams, nullptr) << probe;
  ASSERT_EQ(streams->array().size(), 1u) << probe;
  const Json& s = streams->array()[0];
  EXPECT_EQ(s.StringOr("codec_name", ""), "h264");
  EXPECT_EQ(s.IntOr("width", 0), 64);
  EXPECT_EQ(s.IntOr("height", 0), 48);
  EXPECT_EQ(s.StringOr("pix_fmt", ""), "yuv420p");
  EXPECT_EQ(s.StringOr("r_frame_rate", ""), "16/1");
  EXPECT_EQ(s.StringOr("nb_read_frames", ""), "9");
}

double MeanAbsDiff(const uint8_t* a, const uint8_t* b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::abs(static_cast<int>(a[i]) - static_cast<int>(b[i]));
  return sum / static_cast<double>(n);
}

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "wb"), &fclose);
  return f != nullptr && fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size();
}

std::string ReadFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "rb"), &fclose);
  std::string out;
  if (f == nullptr) return out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), f.get())) > 0) out.append(buf, n);
  return out;
}

// The ffmpeg CLI decodes our MP4 back to RGB close to the input (colours, order, range).
TEST(VideoTest, Mp4DecodesBackToTheFrames) {
  const Tensor frames = Gradient(5, 32, 48);
  const std::string path = TempPath("tv_video_roundtrip.mp4");
  ASSERT_TRUE(WriteMp4(frames, path).ok());
  const std::string rgb =
      RunCommand("ffmpeg -v error -i '" + path + "' -f rawvideo -pix_fmt rgb24 -");
  std::filesystem::remove(path);
  ASSERT_EQ(rgb.size(), frames.nbytes());
  EXPECT_LT(
      MeanAbsDiff(reinterpret_cast<const uint8_t*>(rgb.data()), frames.data<uint8_t>(), rgb.size()),
      4.0);
}

// JPEG (full-range YUV), WebP and BMP files made by the ffmpeg CLI decode close to the source.
TEST(VideoTest, DecodesJpegWebpAndBmp) {
  auto source = Gradient(1, 40, 56).Reshape({40, 56, 3});
  ASSERT_TRUE(source.ok());
  auto png = EncodePng(*source);
  ASSERT_TRUE(png.ok());
  const std::string in_path = TempPath("tv_video_src") + ".png";
  ASSERT_TRUE(WriteFile(in_path, *png));
  for (const char* ext : {"jpg", "webp", "bmp"}) {
    const std::string out_path = TempPath("tv_video_img") + "." + ext;
    RunCommand("ffmpeg -v error -y -i '" + in_path + "' -q:v 2 '" + out_path + "'");
    const std::string bytes = ReadFile(out_path);
    std::filesystem::remove(out_path);
    ASSERT_FALSE(bytes.empty()) << ext;
    auto decoded = DecodeImage(bytes);
    ASSERT_TRUE(decoded.ok()) << ext << ": " << decoded.status();
    ASSERT_EQ(decoded->shape(), (Shape{40, 56, 3})) << ext;
    EXPECT_LT(MeanAbsDiff(decoded->data<uint8_t>(), source->data<uint8_t>(), source->nbytes()),
              std::string(ext) == "bmp" ? 0.001 : 6.0)
        << ext;
  }
  std::filesystem::remove(in_path);
}

TEST(VideoTest, Mp4HasMoovBeforeMdat) {
  auto mp4 = EncodeMp4(Gradient(3, 16, 16), Mp4Options{.fps = 24, .crf = 23, .preset = "fast"});
  ASSERT_TRUE(mp4.ok()) << mp4.status();
  const size_t moov = mp4->find("moov");
  const size_t mdat = mp4->find("mdat");
  ASSERT_NE(moov, std::string::npos);
  ASSERT_NE(mdat, std::string::npos);
  EXPECT_LT(moov, mdat);
}

TEST(VideoTest, RejectsBadFramesAndOptions) {
  EXPECT_THAT(EncodeMp4(Gradient(2, 47, 64)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4(Gradient(2, 48, 63)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4(Tensor::Zeros(DType::kF32, {2, 16, 16, 3})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4(Tensor()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4(Gradient(1, 16, 16), Mp4Options{.preset = "warp"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4(Gradient(1, 16, 16), Mp4Options{.fps = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(WriteMp4(Gradient(1, 16, 16), "/nonexistent_dir_tv/x.mp4"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(VideoTest, PngRoundTripsExactly) {
  Tensor image = Gradient(1, 37, 53).Slice0(0, 1);
  auto rgb = image.Reshape({37, 53, 3});
  ASSERT_TRUE(rgb.ok());
  auto png = EncodePng(*rgb);
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_EQ(png->substr(1, 3), "PNG");
  auto decoded = DecodeImage(*png);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->shape(), (Shape{37, 53, 3}));
  for (int64_t i = 0; i < rgb->numel(); ++i) {
    ASSERT_EQ(decoded->data<uint8_t>()[i], rgb->data<uint8_t>()[i]) << "at " << i;
  }
}

TEST(VideoTest, CorruptOrEmptyImageIsInvalidArgument) {
  EXPECT_THAT(DecodeImage("", "init_image"), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string junk(1000, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919 + 13) % 251);
  auto status = DecodeImage(junk, "init_image").status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(status.message().find("init_image"), absl::string_view::npos) << status;
  // A PNG cut short after its header.
  auto png = EncodePng(Tensor::Zeros(DType::kU8, {32, 32, 3}));
  ASSERT_TRUE(png.ok());
  EXPECT_THAT(DecodeImage(png->substr(0, 40), "init_image"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VideoTest, VideoToFramesRoundsLikeUpstream) {
  // -0x1.f9f9fap-2: fp32 gives exactly 64.5 → 65, double arithmetic would give 64.
  const float values[] = {-1.0f, 1.0f, 0.0f, -2.0f, 3.0f, -0x1.f9f9fap-2f, 0.5f, -0.5f};
  const uint8_t expected[] = {0, 255, 128, 0, 255, 65, 191, 64};
  constexpr int64_t kCount = 8;
  Tensor video = Tensor::Zeros(DType::kF32, {3, 2, 1, kCount / 2});
  for (int c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < kCount; ++i)
      video.data<float>()[c * kCount + i] = values[(i + c) % kCount];
  }
  Tensor frames = VideoToFrames(video);
  ASSERT_EQ(frames.shape(), (Shape{2, 1, kCount / 2, 3}));
  for (int64_t i = 0; i < kCount; ++i) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(frames.data<uint8_t>()[i * 3 + c], expected[(i + c) % kCount])
          << "value " << values[(i + c) % kCount];
    }
  }
}

}  // namespace
}  // namespace turbovid::engine::video
