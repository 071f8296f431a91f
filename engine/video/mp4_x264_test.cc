// The libx264-only MP4 path: ffprobe reads what our muxer writes, ffmpeg decodes it back close to
// the input (PSNR), chunked AddFrames gives the same file, bad sizes and options are rejected with
// the field named, and EncodeMp4 switches paths by Mp4Options::encoder and $TV_MP4_ENCODER.
#include "engine/video/mp4_x264.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "engine/core/json.h"
#include "engine/video/mp4_probe.h"
#include "engine/video/run_command.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;

// [F, H, W, 3] U8: smooth colour ramps that drift with the frame index, plus (with `square`) a
// moving red square with hard edges so that motion search and chroma edges get exercised.
Tensor Clip(int64_t frames, int64_t height, int64_t width, bool with_square = true) {
  Tensor t = Tensor::Zeros(DType::kU8, {frames, height, width, 3});
  uint8_t* p = t.data<uint8_t>();
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        uint8_t* px = p + ((f * height + y) * width + x) * 3;
        const bool square =
            with_square && x >= 2 * f + 8 && x < 2 * f + 24 && y >= f + 8 && y < f + 24;
        px[0] = square ? 230 : static_cast<uint8_t>(40 + (x * 170) / width);
        px[1] = square ? 40 : static_cast<uint8_t>(30 + (y * 190) / height);
        px[2] = static_cast<uint8_t>(60 + ((x + y + 3 * f) * 150) / (width + height + 3 * frames));
      }
    }
  }
  return t;
}

bool HaveFfmpegCli() {
  return RunCommand("ffprobe -version 2>/dev/null").find("ffprobe") != std::string::npos &&
         RunCommand("ffmpeg -version 2>/dev/null").find("ffmpeg") != std::string::npos;
}

// Writes `bytes` to a fresh temporary file and returns its path.
std::string TempFile(const std::string& bytes) {
  static int counter = 0;
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("tv_mp4_x264_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".mp4"))
          .string();
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "wb"), &fclose);
  if (f != nullptr) fwrite(bytes.data(), 1, bytes.size(), f.get());
  return path;
}

// ffprobe's view of the only video stream.
Json Probe(const std::string& mp4) {
  const std::string path = TempFile(mp4);
  const std::string out = RunCommand(
      "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
      "stream=codec_name,profile,width,height,nb_frames,nb_read_frames,pix_fmt,r_frame_rate,"
      "avg_frame_rate,start_time,duration,color_space,color_range,chroma_location -of json '" +
      path + "'");
  std::filesystem::remove(path);
  auto json = Json::Parse(out);
  if (!json.ok() || json->Find("streams") == nullptr ||
      json->Find("streams")->array().size() != 1) {
    ADD_FAILURE() << "ffprobe: " << out;
    return Json();
  }
  return json->Find("streams")->array()[0];
}

// ffmpeg's RGB24 decode of the file.
std::string DecodeRgb(const std::string& mp4) {
  const std::string path = TempFile(mp4);
  std::string rgb = RunCommand("ffmpeg -v error -i '" + path + "' -f rawvideo -pix_fmt rgb24 -");
  std::filesystem::remove(path);
  return rgb;
}

double Psnr(const std::string& decoded, const Tensor& frames) {
  if (decoded.size() != frames.nbytes()) return 0;
  const uint8_t* a = reinterpret_cast<const uint8_t*>(decoded.data());
  const uint8_t* b = frames.data<uint8_t>();
  double sum = 0;
  for (size_t i = 0; i < decoded.size(); ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  const double mse = std::max(sum / decoded.size(), 1e-10);
  return 10 * std::log10(255.0 * 255.0 / mse);
}

void ExpectStream(const Json& s, int width, int height, int frames) {
  EXPECT_EQ(s.StringOr("codec_name", ""), "h264");
  EXPECT_EQ(s.StringOr("pix_fmt", ""), "yuv420p");
  EXPECT_EQ(s.IntOr("width", 0), width);
  EXPECT_EQ(s.IntOr("height", 0), height);
  EXPECT_EQ(s.StringOr("r_frame_rate", ""), "16/1");
  EXPECT_EQ(s.StringOr("avg_frame_rate", ""), "16/1");
  EXPECT_EQ(s.StringOr("nb_frames", ""), std::to_string(frames));
  EXPECT_EQ(s.StringOr("nb_read_frames", ""), std::to_string(frames));
  EXPECT_EQ(s.StringOr("start_time", ""), "0.000000");  // the edit list hides the B-frame delay
  EXPECT_EQ(s.StringOr("color_space", ""), "smpte170m");
  EXPECT_EQ(s.StringOr("color_range", ""), "tv");
  EXPECT_EQ(s.StringOr("chroma_location", ""), "center");
}

class Mp4X264Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveFfmpegCli()) GTEST_SKIP() << "no ffmpeg/ffprobe command on this machine";
  }
};

TEST_F(Mp4X264Test, ProbesAsH264Yuv420pAt16FpsAndDecodesBack) {
  const Tensor frames = Clip(17, 64, 96);
  auto mp4 = EncodeMp4X264(frames);
  ASSERT_TRUE(mp4.ok()) << mp4.status();
  const Json s = Probe(*mp4);
  ExpectStream(s, 96, 64, 17);
  EXPECT_EQ(s.StringOr("profile", ""), "High");
  EXPECT_EQ(s.StringOr("duration", ""), "1.062500");
  EXPECT_LT(mp4->find("moov"), mp4->find("mdat"));
  const double psnr = Psnr(DecodeRgb(*mp4), frames);
  EXPECT_GT(psnr, 30.0);
  std::printf("x264 path: %zu bytes, PSNR %.2f dB\n", mp4->size(), psnr);
}

TEST_F(Mp4X264Test, ChunkedAddFramesGivesTheSameFile) {
  const Tensor frames = Clip(17, 64, 96);
  auto whole = EncodeMp4X264(frames);
  ASSERT_TRUE(whole.ok()) << whole.status();
  Mp4Writer writer;
  ASSERT_TRUE(writer.Open(96, 64, 16).ok());
  for (auto [begin, end] : {std::pair{0, 1}, std::pair{1, 5}, std::pair{5, 17}}) {
    ASSERT_TRUE(writer.AddFrames(frames.Slice0(begin, end)).ok());
  }
  EXPECT_EQ(writer.frames_added(), 17);
  auto chunked = writer.Finish();
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  ExpectStream(Probe(*chunked), 96, 64, 17);
  EXPECT_GT(Psnr(DecodeRgb(*chunked), frames), 30.0);
  EXPECT_EQ(*chunked, *whole);  // x264 is deterministic with its default b_deterministic
  EXPECT_THAT(writer.AddFrames(frames), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Top-level boxes of an MP4: (type, size) in order; sizes checked to tile the bytes.
std::vector<std::pair<std::string, uint64_t>> TopBoxes(const std::string& mp4) {
  std::vector<std::pair<std::string, uint64_t>> boxes;
  size_t at = 0;
  while (at + 8 <= mp4.size()) {
    uint64_t size = 0;
    for (int i = 0; i < 4; ++i) size = size << 8 | static_cast<uint8_t>(mp4[at + i]);
    boxes.push_back({mp4.substr(at + 4, 4), size});
    if (size < 8) break;
    at += size;
  }
  EXPECT_EQ(at, mp4.size()) << "boxes do not tile the file";
  return boxes;
}

// Fragmented: ftyp + moov (mvex, no samples) come with the first fragment; each TakeFragment
// after AddFrames closes one moof + mdat with the frames added but the last 4 (x264's lookahead),
// Finish the rest; the pieces concatenated are Finish()'s file; ffprobe reads the prefix after
// the first fragment and the whole file frame for frame; our reader counts the same samples.
TEST_F(Mp4X264Test, FragmentedWriterHandsOutOneFragmentPerChunk) {
  const Tensor frames = Clip(17, 64, 96);
  Mp4Options options;
  options.fragmented = true;
  Mp4Writer writer;
  ASSERT_TRUE(writer.Open(96, 64, options).ok());
  auto none = writer.TakeFragment();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, "");  // no frame yet: nothing handed out, not even ftyp + moov
  std::vector<std::string> pieces;
  for (auto [begin, end] : {std::pair{0, 1}, std::pair{1, 5}, std::pair{5, 9}, std::pair{9, 17}}) {
    ASSERT_TRUE(writer.AddFrames(frames.Slice0(begin, end)).ok());
    auto piece = writer.TakeFragment();
    ASSERT_TRUE(piece.ok()) << piece.status();
    if (begin == 0) {
      EXPECT_EQ(*piece, "");  // frame 0 is still in the lookahead
    } else {
      ASSERT_FALSE(piece->empty());
      pieces.push_back(*piece);
    }
  }
  auto whole = writer.Finish();
  ASSERT_TRUE(whole.ok()) << whole.status();
  auto tail = writer.TakeFragment();
  ASSERT_TRUE(tail.ok()) << tail.status();
  ASSERT_FALSE(tail->empty());  // the last 4 frames
  pieces.push_back(*tail);
  auto spent = writer.TakeFragment();
  ASSERT_TRUE(spent.ok()) << spent.status();
  EXPECT_EQ(*spent, "");
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  EXPECT_EQ(joined, *whole);

  const auto first = TopBoxes(pieces[0]);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0].first, "ftyp");
  EXPECT_EQ(first[1].first, "moov");
  EXPECT_EQ(first[2].first, "moof");
  EXPECT_EQ(first[3].first, "mdat");
  for (size_t i = 1; i < pieces.size(); ++i) {
    const auto boxes = TopBoxes(pieces[i]);
    ASSERT_EQ(boxes.size(), 2u) << "piece " << i;
    EXPECT_EQ(boxes[0].first, "moof");
    EXPECT_EQ(boxes[1].first, "mdat");
  }
  EXPECT_NE(pieces[0].find("mvex"), std::string::npos);
  EXPECT_NE(pieces[0].find("trex"), std::string::npos);

  // Our reader: samples per fragment summed, one frame = 1000 ticks of 16000 per second.
  const int64_t expected[] = {1, 5, 13, 17};
  std::string prefix;
  for (size_t i = 0; i < pieces.size(); ++i) {
    prefix += pieces[i];
    auto info = ProbeMp4(prefix);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_TRUE(info->fragmented);
    EXPECT_EQ(info->fragments, static_cast<int64_t>(i + 1));
    EXPECT_EQ(info->frames, expected[i]);
    EXPECT_EQ(info->duration_ticks, static_cast<uint64_t>(expected[i]) * 1000);
    EXPECT_EQ(info->timescale, 16000u);
    EXPECT_EQ(info->width, 96);
    EXPECT_EQ(info->height, 64);
    EXPECT_EQ(info->codec, "h264");
  }
  EXPECT_EQ(ProbeMp4(*whole)->fps, 16.0);

  // ffprobe: the first fragment alone and the whole file, frame for frame; ffmpeg decodes back.
  const Json one = Probe(pieces[0]);
  EXPECT_EQ(one.StringOr("codec_name", ""), "h264");
  EXPECT_EQ(one.StringOr("nb_read_frames", ""), "1");
  const Json two = Probe(pieces[0] + pieces[1]);
  EXPECT_EQ(two.StringOr("nb_read_frames", ""), "5");
  EXPECT_EQ(Probe(pieces[0] + pieces[1] + pieces[2]).StringOr("nb_read_frames", ""), "13");
  const Json all = Probe(*whole);
  EXPECT_EQ(all.StringOr("nb_read_frames", ""), "17");
  EXPECT_EQ(all.IntOr("width", 0), 96);
  EXPECT_EQ(all.IntOr("height", 0), 64);
  EXPECT_EQ(all.StringOr("r_frame_rate", ""), "16/1");
  EXPECT_EQ(all.StringOr("duration", ""), "1.062500");
  EXPECT_GT(Psnr(DecodeRgb(*whole), frames), 30.0);
}

TEST(Mp4X264Checks, TakeFragmentNeedsAFragmentedWriter) {
  Mp4Writer writer;
  ASSERT_TRUE(writer.Open(96, 64, 16).ok());
  EXPECT_THAT(writer.TakeFragment(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Presets without B-frames (no ctts, empty edit), with more chunks, lossless (High 4:4:4
// Predictive) and another rate all give files ffprobe reads frame for frame.
TEST_F(Mp4X264Test, PresetsRatesAndLengthsGiveValidFiles) {
  const Tensor frames = Clip(40, 48, 64);
  for (const char* preset : {"ultrafast", "superfast", "medium"}) {
    auto mp4 = EncodeMp4X264(frames, Mp4Options{.fps = 16, .crf = 23, .preset = preset});
    ASSERT_TRUE(mp4.ok()) << preset << ": " << mp4.status();
    ExpectStream(Probe(*mp4), 64, 48, 40);
    EXPECT_GT(Psnr(DecodeRgb(*mp4), frames), 30.0) << preset;
  }
  auto lossless = EncodeMp4X264(frames.Slice0(0, 5), Mp4Options{.crf = 0});
  ASSERT_TRUE(lossless.ok()) << lossless.status();
  EXPECT_EQ(Probe(*lossless).StringOr("nb_read_frames", ""), "5");
  auto fps24 = EncodeMp4X264(frames.Slice0(0, 30), Mp4Options{.fps = 24});
  ASSERT_TRUE(fps24.ok()) << fps24.status();
  const Json s = Probe(*fps24);
  EXPECT_EQ(s.StringOr("r_frame_rate", ""), "24/1");
  EXPECT_EQ(s.StringOr("nb_read_frames", ""), "30");
  EXPECT_EQ(s.StringOr("duration", ""), "1.250000");
}

// The FFmpeg path and ours convert colours alike (BT.601 limited range) and tag them alike.
// Lossless (crf 0), so that only the RGB → yuv420p conversions differ, on smooth content (at hard
// saturated edges the chroma filters, swscale's bicubic and our [1 2 1], part more).
TEST_F(Mp4X264Test, MatchesTheFfmpegPathWhenBuilt) {
  const Tensor frames = Clip(9, 64, 96, /*with_square=*/false);
  auto ffmpeg = EncodeMp4(frames, Mp4Options{.crf = 0, .encoder = Mp4Encoder::kFfmpeg});
  if (!ffmpeg.ok()) {
    EXPECT_THAT(ffmpeg.status(), StatusIs(absl::StatusCode::kUnimplemented));
    GTEST_SKIP() << "this build has no FFmpeg path";
  }
  auto x264 = EncodeMp4(frames, Mp4Options{.crf = 0, .encoder = Mp4Encoder::kX264});
  ASSERT_TRUE(x264.ok()) << x264.status();
  EXPECT_NE(ffmpeg->find("Lavf"), std::string::npos);  // FFmpeg's muxer signs its files
  EXPECT_EQ(x264->find("Lavf"), std::string::npos);
  const std::string a = DecodeRgb(*ffmpeg);
  const std::string b = DecodeRgb(*x264);
  ASSERT_EQ(a.size(), b.size());
  // Per channel: no colour shift (a matrix or range mismatch moves means by several levels).
  for (int c = 0; c < 3; ++c) {
    double sum = 0, abs_sum = 0;
    for (size_t i = c; i < a.size(); i += 3) {
      const int d = int(uint8_t(a[i])) - int(uint8_t(b[i]));
      sum += d;
      abs_sum += std::abs(d);
    }
    EXPECT_LT(std::abs(sum) / (a.size() / 3), 0.1) << "channel " << c;
    EXPECT_LT(abs_sum / (a.size() / 3), 0.25) << "channel " << c;
    std::printf("channel %d: mean diff %.3f, mean abs diff %.3f\n", c, sum / (a.size() / 3),
                abs_sum / (a.size() / 3));
  }
  const Json pa = Probe(*ffmpeg);
  const Json pb = Probe(*x264);
  for (const char* key : {"color_space", "color_range", "profile", "pix_fmt", "r_frame_rate"}) {
    EXPECT_EQ(pa.StringOr(key, "?"), pb.StringOr(key, "!")) << key;
  }
}

TEST(Mp4X264Checks, RejectsOddSizesAndBadOptionsNamingTheField) {
  auto odd_h = EncodeMp4X264(Clip(2, 47, 64));
  EXPECT_THAT(odd_h.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(odd_h.status().message(), HasSubstr("frames"));
  EXPECT_THAT(EncodeMp4X264(Clip(2, 48, 63)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4X264(Tensor::Zeros(DType::kF32, {2, 16, 16, 3})).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4X264(Tensor()).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  auto preset = EncodeMp4X264(Clip(1, 16, 16), Mp4Options{.preset = "warp"});
  EXPECT_THAT(preset.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(preset.status().message(), HasSubstr("preset"));
  EXPECT_THAT(EncodeMp4X264(Clip(1, 16, 16), Mp4Options{.fps = 0}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeMp4X264(Clip(1, 16, 16), Mp4Options{.crf = 52}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));

  Mp4Writer odd_w;
  const absl::Status width = odd_w.Open(95, 64, 16);
  EXPECT_THAT(width, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(width.message(), HasSubstr("width"));
  Mp4Writer odd_height;
  const absl::Status height = odd_height.Open(96, 63, 16);
  EXPECT_THAT(height, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(height.message(), HasSubstr("height"));

  Mp4Writer writer;
  EXPECT_THAT(writer.AddFrames(Clip(1, 16, 16)), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_TRUE(writer.Open(32, 16, 16).ok());
  EXPECT_THAT(writer.Open(32, 16, 16), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(writer.AddFrames(Clip(1, 16, 16)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(writer.Finish().status(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(Mp4X264Checks, EncoderFollowsOptionsThenEnvironment) {
  const Tensor frames = Clip(3, 16, 32);
  const char* saved = std::getenv("TV_MP4_ENCODER");
  const std::string restore = saved == nullptr ? "" : saved;
  setenv("TV_MP4_ENCODER", "x264", 1);
  auto env_x264 = EncodeMp4(frames);
  ASSERT_TRUE(env_x264.ok()) << env_x264.status();
  EXPECT_EQ(env_x264->find("Lavf"), std::string::npos);
  setenv("TV_MP4_ENCODER", "quicksync", 1);
  const absl::Status bad = EncodeMp4(frames).status();
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad.message(), HasSubstr("TV_MP4_ENCODER"));
  // An explicit encoder wins over the environment.
  EXPECT_TRUE(EncodeMp4(frames, Mp4Options{.encoder = Mp4Encoder::kX264}).ok());
  if (saved == nullptr) {
    unsetenv("TV_MP4_ENCODER");
  } else {
    setenv("TV_MP4_ENCODER", restore.c_str(), 1);
  }
  EXPECT_TRUE(internal::HaveX264());
}

// 81 frames of 480×832 (the 1.3B 480p clip) through the streaming writer in 4 chunks; prints the
// time (informational: the CI machine's cores are shared).
TEST(Mp4X264Checks, Encodes81FramesOf480pInChunks) {
  const Tensor frames = Clip(81, 480, 832);
  const auto start = std::chrono::steady_clock::now();
  Mp4Writer writer;
  ASSERT_TRUE(writer.Open(832, 480, 16).ok());
  for (int64_t begin = 0; begin < 81; begin += 21) {
    ASSERT_TRUE(writer.AddFrames(frames.Slice0(begin, std::min<int64_t>(81, begin + 21))).ok());
  }
  auto mp4 = writer.Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(mp4.ok()) << mp4.status();
  std::printf("81x480x832 veryfast crf 18: %.3f s, %zu bytes\n", seconds, mp4->size());
}

// The fragmented form of the same clip, added as the VAE hands it out (1, then 4 frames per
// latent frame), a fragment taken after each: time, size and when the first fragment is ready,
// beside the one above (no B-frames, threads over slices, a 4-frame lookahead).
TEST(Mp4X264Checks, Encodes81FramesOf480pAsFragments) {
  const Tensor frames = Clip(81, 480, 832);
  const auto start = std::chrono::steady_clock::now();
  Mp4Options options;
  options.fragmented = true;
  Mp4Writer writer;
  ASSERT_TRUE(writer.Open(832, 480, options).ok());
  double first_fragment = 0;
  for (int64_t begin = 0; begin < 81; begin = begin == 0 ? 1 : begin + 4) {
    ASSERT_TRUE(writer.AddFrames(frames.Slice0(begin, begin == 0 ? 1 : begin + 4)).ok());
    auto piece = writer.TakeFragment();
    ASSERT_TRUE(piece.ok()) << piece.status();
    if (!piece->empty() && first_fragment == 0) {
      first_fragment =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  auto mp4 = writer.Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(mp4.ok()) << mp4.status();
  auto info = ProbeMp4(*mp4);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->frames, 81);
  EXPECT_EQ(info->fragments, 21);
  std::printf(
      "81x480x832 veryfast crf 18, 21 fragments: %.3f s (first fragment %.3f s), %zu bytes\n",
      seconds, first_fragment, mp4->size());
}

}  // namespace
}  // namespace turbovid::engine::video
