// ProbeMp4 on MP4s built box by box here (exact fields, v1 mdhd, a sound track first, mdat
// before moov, 64-bit sizes), on the MP4s of both our encoders against ffprobe, and on truncated,
// damaged and garbage files (DataLoss naming the box).
#include "engine/video/mp4_probe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "engine/core/json.h"
#include "engine/video/run_command.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

using ::turbovid::common::testing::StatusIs;

std::string U16(uint32_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string U32(uint32_t v) { return U16(v >> 16) + U16(v & 0xffff); }
std::string U64(uint64_t v) { return U32(static_cast<uint32_t>(v >> 32)) + U32(v & 0xffffffffu); }
std::string Box(const std::string& type, const std::string& body) {
  return U32(static_cast<uint32_t>(8 + body.size())) + type + body;
}
std::string FullBox(const std::string& type, int version, const std::string& body) {
  return Box(type, std::string(1, static_cast<char>(version)) + std::string(3, '\0') + body);
}

struct Spec {
  int width = 64, height = 48;
  uint32_t timescale = 16000;
  std::vector<std::pair<uint32_t, uint32_t>> stts = {{5, 1000}};  // (count, delta)
  std::vector<uint32_t> sizes = {100, 20, 20, 30, 10};
  int mdhd_version = 0;
  bool sound_first = false;
  bool mdat_first = false;
  bool large_mdat = false;
  std::string entry = "avc1";
};

std::string Trak(const std::string& handler, const std::string& stbl, uint32_t timescale,
                 uint64_t duration, int mdhd_version) {
  const std::string mdhd =
      mdhd_version == 1
          ? FullBox("mdhd", 1, U64(0) + U64(0) + U32(timescale) + U64(duration) + U32(0x55c40000))
          : FullBox("mdhd", 0,
                    U32(0) + U32(0) + U32(timescale) + U32(static_cast<uint32_t>(duration)) +
                        U32(0x55c40000));
  const std::string hdlr = FullBox("hdlr", 0, U32(0) + handler + std::string(12, '\0') + "x\0");
  return Box("trak", Box("mdia", mdhd + hdlr + Box("minf", Box("stbl", stbl))));
}

std::string Build(const Spec& s) {
  const std::string avcc = Box("avcC", std::string("\x01\x64\x00\x1f\xff\xe0", 6));
  const std::string entry =
      Box(s.entry, std::string(6, '\0') + U16(1) + std::string(16, '\0') + U16(s.width) +
                       U16(s.height) + U32(0x00480000) + U32(0x00480000) + U32(0) + U16(1) +
                       std::string(32, '\0') + U16(0x18) + U16(0xffff) + avcc);
  std::string stts = U32(static_cast<uint32_t>(s.stts.size()));
  uint64_t ticks = 0;
  for (auto [n, d] : s.stts) stts += U32(n) + U32(d), ticks += uint64_t{n} * d;
  std::string stsz = U32(0) + U32(static_cast<uint32_t>(s.sizes.size()));
  uint32_t payload = 0;
  for (uint32_t size : s.sizes) stsz += U32(size), payload += size;
  const std::string stbl = FullBox("stsd", 0, U32(1) + entry) + FullBox("stts", 0, stts) +
                           FullBox("stsz", 0, stsz) + FullBox("stco", 0, U32(1) + U32(0));
  std::string moov_body = FullBox("mvhd", 0, std::string(96, '\0'));
  if (s.sound_first) {
    moov_body += Trak("soun", FullBox("stsd", 0, U32(0)), 48000, 1000, 0);
  }
  moov_body += Trak("vide", stbl, s.timescale, ticks, s.mdhd_version);
  const std::string moov = Box("moov", moov_body);
  const std::string data(payload, '\x42');
  const std::string mdat =
      s.large_mdat ? U32(1) + "mdat" + U64(16 + data.size()) + data : Box("mdat", data);
  const std::string ftyp = Box("ftyp", "isom" + U32(0x200) + "isomavc1");
  return s.mdat_first ? ftyp + mdat + moov : ftyp + moov + mdat;
}

TEST(Mp4ProbeTest, ReadsTheFieldsOfAHandBuiltFile) {
  const std::string file = Build({});
  auto info = ProbeMp4(file);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->codec, "h264");
  EXPECT_EQ(info->profile, "High");
  EXPECT_EQ(info->level, 31);
  EXPECT_EQ(info->width, 64);
  EXPECT_EQ(info->height, 48);
  EXPECT_EQ(info->frames, 5);
  EXPECT_EQ(info->timescale, 16000u);
  EXPECT_EQ(info->duration_ticks, 5000u);
  EXPECT_DOUBLE_EQ(info->duration_seconds, 0.3125);
  EXPECT_EQ(info->fps_num, 16);
  EXPECT_EQ(info->fps_den, 1);
  EXPECT_DOUBLE_EQ(info->fps, 16.0);
  EXPECT_EQ(info->size_bytes, file.size());
  EXPECT_TRUE(info->faststart);
}

TEST(Mp4ProbeTest, VariantsOfTheLayout) {
  Spec s;
  s.mdhd_version = 1;
  s.sound_first = true;
  s.mdat_first = true;
  s.large_mdat = true;
  s.timescale = 30000;
  s.stts = {{4, 1001}, {1, 2002}};  // NTSC-ish, last frame twice as long
  auto info = ProbeMp4(Build(s));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->faststart);
  EXPECT_EQ(info->frames, 5);
  EXPECT_EQ(info->duration_ticks, 6006u);
  EXPECT_EQ(info->fps_num, 25000);  // 5 · 30000 / 6006 = 150000 / 6006 = 25000 / 1001
  EXPECT_EQ(info->fps_den, 1001);
  Spec hevc;
  hevc.entry = "hvc1";
  info = ProbeMp4(Build(hevc));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->codec, "hevc");
  EXPECT_EQ(info->profile, "");
}

void ExpectCorrupt(const std::string& bytes, const std::string& box, const std::string& what) {
  auto info = ProbeMp4(bytes);
  ASSERT_THAT(info, StatusIs(absl::StatusCode::kDataLoss)) << what;
  EXPECT_NE(info.status().message().find(box), std::string::npos) << what << ": " << info.status();
}

TEST(Mp4ProbeTest, TruncatedDamagedAndGarbageFilesAreDataLoss) {
  const std::string file = Build({});
  for (size_t n = 0; n < file.size(); ++n) {
    EXPECT_THAT(ProbeMp4(file.substr(0, n)), StatusIs(absl::StatusCode::kDataLoss)) << n;
  }
  ExpectCorrupt(file.substr(0, file.size() - 1), "mdat", "cut in mdat");
  ExpectCorrupt("", "ftyp", "empty");
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 7919 % 251);
  ExpectCorrupt(garbage, "ftyp", "garbage");
  Spec many;
  many.sizes = {100, 20, 20, 30, 10};
  many.stts = {{6, 1000}};
  ExpectCorrupt(Build(many), "stbl", "stts and stsz disagree");
  std::string oversized = Build({});
  const size_t stsz = oversized.find("stsz");
  oversized.replace(stsz + 16, 4, U32(1u << 30));  // first sample size, mdat unchanged
  ExpectCorrupt(oversized, "stsz", "samples beyond mdat");
  std::string short_stsz = Build({});
  short_stsz.replace(short_stsz.find("stsz") + 12, 4, U32(1000));  // count 1000, 5 entries
  ExpectCorrupt(short_stsz, "stsz", "stsz count past its box");
  std::string no_video = Build({});
  no_video.replace(no_video.find("vide"), 4, "text");
  ExpectCorrupt(no_video, "video track", "no video track");
  // Random damage anywhere: a status, never a crash.
  uint32_t x = 99;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bad = file;
    for (int k = 0; k < 1 + trial % 3; ++k) {
      x = x * 1664525u + 1013904223u;
      bad[(x >> 8) % bad.size()] = static_cast<char>(x >> 24);
    }
    (void)ProbeMp4(bad);
  }
}

// [F, H, W, 3] U8 frames that change from frame to frame.
Tensor Frames(int64_t frames, int64_t height, int64_t width) {
  Tensor t = Tensor::Zeros(DType::kU8, {frames, height, width, 3});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(i * 31 / 7);
  return t;
}

// Both encoders (each skipped when not built): our reading equals ffprobe's (skipped without it).
// Fragmented files of another muxer (FFmpeg's, as `-movflags frag_keyframe+empty_moov+
// default_base_moof` writes them) are read too: samples summed over the moofs; a trun whose data
// leaves its mdat, or a truncated fragment, is DataLoss naming the box.
TEST(Mp4ProbeTest, ReadsFragmentedFilesOfFfmpegAndRejectsBrokenFragments) {
  if (RunCommand("command -v ffmpeg").find("ffmpeg") == std::string::npos) {
    GTEST_SKIP() << "no ffmpeg command";
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            absl::StrCat("tv_probe_fragmented_", getpid(), ".mp4"))
                               .string();
  RunCommand("ffmpeg -v error -f lavfi -i testsrc=size=64x48:rate=8 -frames:v 6 -c:v libx264 "
             "-pix_fmt yuv420p -g 2 -movflags +frag_keyframe+empty_moov+default_base_moof -y '" +
             path + "'");
  auto read = ProbeMp4File(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->fragmented);
  EXPECT_EQ(read->fragments, 3);
  EXPECT_EQ(read->frames, 6);
  EXPECT_EQ(read->width, 64);
  EXPECT_EQ(read->height, 48);
  EXPECT_NEAR(read->duration_seconds, 0.75, 1e-9);
  EXPECT_NEAR(read->fps, 8.0, 1e-9);
  // The file again, in memory, then damaged: the last mdat cut short → the trun's data is not
  // inside it; the file cut short → a box does not fit.
  std::string bytes;
  {
    RunCommand("ffmpeg -v error -f lavfi -i testsrc=size=64x48:rate=8 -frames:v 6 -c:v libx264 "
               "-pix_fmt yuv420p -g 2 -movflags +frag_keyframe+empty_moov+default_base_moof "
               "-y '" + path + "'");
    std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "rb"), &fclose);
    ASSERT_NE(f, nullptr);
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof(buf), f.get())) > 0) bytes.append(buf, n);
    std::filesystem::remove(path);
  }
  const size_t last_mdat = bytes.rfind("mdat") - 4;
  std::string shrunk = bytes;
  const uint32_t size = (static_cast<uint8_t>(bytes[last_mdat]) << 24) |
                        (static_cast<uint8_t>(bytes[last_mdat + 1]) << 16) |
                        (static_cast<uint8_t>(bytes[last_mdat + 2]) << 8) |
                        static_cast<uint8_t>(bytes[last_mdat + 3]);
  const uint32_t smaller = size - 10;
  for (int i = 0; i < 4; ++i) shrunk[last_mdat + i] = static_cast<char>(smaller >> (24 - 8 * i));
  shrunk.erase(last_mdat + smaller, 10);  // the mdat's last 10 bytes (an mfra may follow)
  auto broken = ProbeMp4(shrunk);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(broken.status().message().find("moof/traf/trun"), std::string::npos)
      << broken.status();
  auto cut = ProbeMp4(bytes.substr(0, bytes.size() - 5));
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  // A trun of 2^32 - 1 samples without per-sample fields (all defaults), as libFuzzer built one:
  // refused at once by its sizes, not after a loop over every sample (it timed out the fuzzer).
  std::string huge = bytes;
  const size_t trun = huge.find("trun");
  ASSERT_NE(trun, std::string::npos);
  for (int i = 0; i < 4; ++i) huge[trun + 4 + i] = 0;                   // version 0, no flags
  for (int i = 0; i < 4; ++i) huge[trun + 8 + i] = static_cast<char>(0xff);  // sample_count
  const auto t0 = std::chrono::steady_clock::now();
  auto many = ProbeMp4(huge);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(many.status().code(), absl::StatusCode::kDataLoss) << many.status();
  EXPECT_LT(seconds, 0.5);
}

TEST(Mp4ProbeTest, AgreesWithFfprobeOnOurEncoders) {
  const bool have_ffprobe = RunCommand("command -v ffprobe").find("ffprobe") != std::string::npos;
  int encoders = 0;
  for (Mp4Encoder encoder : {Mp4Encoder::kX264, Mp4Encoder::kFfmpeg}) {
    const std::string name = encoder == Mp4Encoder::kX264 ? "x264" : "ffmpeg";
    auto mp4 = EncodeMp4(Frames(17, 48, 64), Mp4Options{.fps = 16, .encoder = encoder});
    if (mp4.status().code() == absl::StatusCode::kUnimplemented) continue;
    ASSERT_TRUE(mp4.ok()) << name << ": " << mp4.status();
    ++encoders;
    auto info = ProbeMp4(*mp4);
    ASSERT_TRUE(info.ok()) << name << ": " << info.status();
    EXPECT_EQ(info->codec, "h264") << name;
    EXPECT_EQ(info->width, 64) << name;
    EXPECT_EQ(info->height, 48) << name;
    EXPECT_EQ(info->frames, 17) << name;
    EXPECT_EQ(info->fps_num, 16) << name;
    EXPECT_EQ(info->fps_den, 1) << name;
    EXPECT_TRUE(info->faststart) << name;
    if (!have_ffprobe) continue;
    const std::string path = (std::filesystem::temp_directory_path() /
                              absl::StrCat("tv_probe_", getpid(), "_", name, ".mp4"))
                                 .string();
    {
      std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "wb"), &fclose);
      ASSERT_NE(f, nullptr);
      ASSERT_EQ(fwrite(mp4->data(), 1, mp4->size(), f.get()), mp4->size());
    }
    auto from_file = ProbeMp4File(path);
    const std::string out = RunCommand(
        "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
        "stream=codec_name,profile,level,width,height,nb_read_frames,avg_frame_rate,duration "
        "-show_entries format=size -of json '" +
        path + "'");
    std::filesystem::remove(path);
    ASSERT_TRUE(from_file.ok()) << from_file.status();
    auto json = Json::Parse(out);
    ASSERT_TRUE(json.ok()) << out;
    const Json& s = json->Find("streams")->array().at(0);
    EXPECT_EQ(s.StringOr("codec_name", ""), info->codec) << name;
    EXPECT_EQ(s.StringOr("profile", ""), info->profile) << name;
    EXPECT_EQ(s.IntOr("level", 0), info->level) << name;
    EXPECT_EQ(s.IntOr("width", 0), info->width) << name;
    EXPECT_EQ(s.IntOr("height", 0), info->height) << name;
    EXPECT_EQ(s.StringOr("nb_read_frames", ""), absl::StrCat(info->frames)) << name;
    EXPECT_EQ(s.StringOr("avg_frame_rate", ""), absl::StrCat(info->fps_num, "/", info->fps_den))
        << name;
    EXPECT_NEAR(std::stod(s.StringOr("duration", "0")), info->duration_seconds, 1e-3) << name;
    EXPECT_EQ(json->Find("format")->StringOr("size", ""), absl::StrCat(info->size_bytes)) << name;
    EXPECT_EQ(from_file->size_bytes, info->size_bytes);
  }
  if (encoders == 0) GTEST_SKIP() << "this build has no MP4 encoder";
  EXPECT_THAT(ProbeMp4File("/nonexistent_dir_tv/x.mp4"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace turbovid::engine::video
