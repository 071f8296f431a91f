// The video API in a build without FFmpeg: PNG decodes through our own decoder, other image formats
// are refused by name (Unimplemented), unknown bytes are InvalidArgument, FFmpeg's MP4 encoder is
// Unimplemented.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/status_matchers.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

using ::turbovid::common::testing::StatusIs;

TEST(NoFfmpegTest, DecodesPngAndNamesTheFormatsItCannot) {
  Tensor rgb = Tensor::Zeros(DType::kU8, {5, 7, 3});
  for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(i * 3);
  auto png = EncodePng(rgb);
  ASSERT_TRUE(png.ok()) << png.status();
  auto decoded = DecodeImage(*png, "image");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->shape(), rgb.shape());
  const std::pair<std::string, std::string> others[] = {
      {std::string("\xff\xd8\xff\xe0\x00\x10JFIF", 10), "JPEG"},
      {std::string("RIFF\x10\x00\x00\x00WEBPVP8 ", 16), "WebP"},
      {"GIF89a\x01\x00\x01\x00", "GIF"},
      {"BM\x36\x00\x00\x00", "BMP"}};
  for (const auto& [bytes, format] : others) {
    auto out = DecodeImage(bytes, "init_image");
    EXPECT_THAT(out, StatusIs(absl::StatusCode::kUnimplemented)) << format;
    EXPECT_NE(out.status().message().find("init_image"), std::string::npos) << out.status();
    EXPECT_NE(out.status().message().find(format), std::string::npos) << out.status();
  }
  EXPECT_THAT(DecodeImage("plain text, no image", "image"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeImage("", "image"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4(Tensor::Zeros(DType::kU8, {1, 16, 16, 3}),
                        Mp4Options{.encoder = Mp4Encoder::kFfmpeg}),
              StatusIs(absl::StatusCode::kUnimplemented));
}

}  // namespace
}  // namespace turbovid::engine::video
