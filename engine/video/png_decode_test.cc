// Our PNG decoder on files written here by a small independent writer (every colour type and bit
// depth, Adam7 or not, all five filters, tRNS, split IDATs): the RGB must be what the samples say
// and, in the FFmpeg build, byte-identical to FFmpeg's DecodeImage. Then broken files: truncated,
// bad CRC, bad header, bad filter, corrupt zlib, huge size, random damage → InvalidArgument.
#include "engine/video/png_decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

using ::turbovid::common::testing::StatusIs;

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

std::string Chunk(const std::string& type, const std::string& data) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(data.size()));
  const std::string body = type + data;
  out += body;
  PutU32(&out,
         static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
  return out;
}

std::string Header(uint32_t w, uint32_t h, int depth, int colour, int interlace) {
  std::string ihdr;
  PutU32(&ihdr, w);
  PutU32(&ihdr, h);
  ihdr += {static_cast<char>(depth), static_cast<char>(colour), 0, 0, static_cast<char>(interlace)};
  return Chunk("IHDR", ihdr);
}

std::string Zlib(const std::string& raw) {
  uLongf size = compressBound(raw.size());
  std::string out(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                      reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 9),
            Z_OK);
  out.resize(size);
  return out;
}

int Channels(int colour) { return colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1; }

struct Image {
  int width = 0, height = 0, depth = 8, colour = 2;
  bool adam7 = false;
  std::vector<uint32_t> samples;  // [height, width, channels], each < 2^depth
  std::vector<std::array<uint8_t, 3>> palette;
  std::string trns;          // tRNS chunk data, if any
  int filter_override = -1;  // every row gets this filter byte when ≥ 0
  int idat_pieces = 3;
};

// Packs and filters one row of `w` pixels starting at image pixel (x0, y) with step dx; the
// filter type cycles through 0…4 with the row number.
std::string FilteredRow(const Image& im, int x0, int y, int dx, int w, const std::string& prev,
                        int row_index, std::string* unfiltered) {
  const int ch = Channels(im.colour);
  const int bits = im.depth * ch;
  std::string raw((static_cast<size_t>(w) * bits + 7) / 8, '\0');
  for (int i = 0; i < w; ++i) {
    for (int c = 0; c < ch; ++c) {
      const uint32_t s = im.samples[(static_cast<size_t>(y) * im.width + x0 + i * dx) * ch + c];
      const int64_t bit = (static_cast<int64_t>(i) * ch + c) * im.depth;
      if (im.depth == 16) {
        raw[bit / 8] = static_cast<char>(s >> 8);
        raw[bit / 8 + 1] = static_cast<char>(s);
      } else if (im.depth == 8) {
        raw[bit / 8] = static_cast<char>(s);
      } else {
        raw[bit / 8] = static_cast<char>(raw[bit / 8] | s << (8 - im.depth - bit % 8));
      }
    }
  }
  const int type = im.filter_override >= 0 ? im.filter_override : row_index % 5;
  const size_t stride = std::max(1, bits / 8);
  std::string out(1, static_cast<char>(type));
  for (size_t i = 0; i < raw.size(); ++i) {
    const int a = i >= stride ? static_cast<uint8_t>(raw[i - stride]) : 0;
    const int b = prev.empty() ? 0 : static_cast<uint8_t>(prev[i]);
    const int c = prev.empty() || i < stride ? 0 : static_cast<uint8_t>(prev[i - stride]);
    int p = 0;
    if (type == 1) p = a;
    if (type == 2) p = b;
    if (type == 3) p = (a + b) / 2;
    if (type == 4) {
      const int e = a + b - c, pa = std::abs(e - a), pb = std::abs(e - b), pc = std::abs(e - c);
      p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
    out.push_back(static_cast<char>(static_cast<uint8_t>(raw[i]) - p));
  }
  *unfiltered = raw;
  return out;
}

std::string WritePng(const Image& im) {
  static constexpr int kPasses[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                        {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  static constexpr int kWhole[1][4] = {{0, 0, 1, 1}};
  std::string data;
  int row_index = 0;
  for (int p = 0; p < (im.adam7 ? 7 : 1); ++p) {
    const int* pass = im.adam7 ? kPasses[p] : kWhole[0];
    std::string prev;
    for (int y = pass[1]; y < im.height; y += pass[3]) {
      const int w = im.width > pass[0] ? (im.width - pass[0] + pass[2] - 1) / pass[2] : 0;
      if (w == 0) break;
      std::string unfiltered;
      data += FilteredRow(im, pass[0], y, pass[2], w, prev, row_index++, &unfiltered);
      prev = unfiltered;
    }
  }
  std::string png("\x89PNG\r\n\x1a\n", 8);
  png += Header(im.width, im.height, im.depth, im.colour, im.adam7 ? 1 : 0);
  if (!im.palette.empty()) {
    std::string plte;
    for (const auto& c : im.palette) plte.append(reinterpret_cast<const char*>(c.data()), 3);
    png += Chunk("PLTE", plte);
  }
  if (!im.trns.empty()) png += Chunk("tRNS", im.trns);
  png += Chunk("tEXt", std::string("Comment\0written by png_decode_test", 34));
  const std::string z = Zlib(data);
  const size_t piece = (z.size() + im.idat_pieces - 1) / im.idat_pieces;
  for (size_t at = 0; at < z.size(); at += piece) png += Chunk("IDAT", z.substr(at, piece));
  png += Chunk("IEND", "");
  return png;
}

// What the samples mean as RGB bytes (independent of the decoder).
std::vector<uint8_t> ExpectedRgb(const Image& im) {
  const int ch = Channels(im.colour);
  std::vector<uint8_t> rgb;
  auto to8 = [&](uint32_t s) -> uint8_t {
    if (im.depth == 16) return static_cast<uint8_t>(std::min<uint32_t>(255, (s + 128) >> 8));
    if (im.depth == 8 || im.colour == 3) return static_cast<uint8_t>(s);
    return static_cast<uint8_t>(s * 255 / ((1u << im.depth) - 1));
  };
  for (int i = 0; i < im.width * im.height; ++i) {
    const uint32_t* s = &im.samples[static_cast<size_t>(i) * ch];
    if (im.colour == 3) {
      const auto c = s[0] < im.palette.size() ? im.palette[s[0]] : std::array<uint8_t, 3>{0, 0, 0};
      rgb.insert(rgb.end(), c.begin(), c.end());
    } else if (ch <= 2) {
      rgb.insert(rgb.end(), 3, to8(s[0]));
    } else {
      for (int c = 0; c < 3; ++c) rgb.push_back(to8(s[c]));
    }
  }
  return rgb;
}

Image Random(int w, int h, int colour, int depth, bool adam7, uint32_t seed) {
  Image im;
  im.width = w, im.height = h, im.colour = colour, im.depth = depth, im.adam7 = adam7;
  uint32_t x = seed * 2654435761u + 1;
  const int ch = Channels(colour);
  for (int i = 0; i < w * h * ch; ++i) {
    x = x * 1664525u + 1013904223u;
    im.samples.push_back((x >> 8) & ((1u << depth) - 1));
  }
  if (colour == 3) {
    // Fewer entries than indices for 8 bits: the indices past the palette come out black.
    const int entries = depth == 8 ? 200 : 1 << depth;
    for (int i = 0; i < entries; ++i) {
      im.palette.push_back({static_cast<uint8_t>(i * 7), static_cast<uint8_t>(255 - i),
                            static_cast<uint8_t>(i * 91)});
    }
  }
  return im;
}

void ExpectDecodes(const Image& im, const std::string& what) {
  const std::string png = WritePng(im);
  auto ours = DecodePng(png);
  ASSERT_TRUE(ours.ok()) << what << ": " << ours.status();
  ASSERT_EQ(ours->shape(), (Shape{im.height, im.width, 3})) << what;
  const std::vector<uint8_t> want = ExpectedRgb(im);
  const std::vector<uint8_t> got(ours->data<uint8_t>(), ours->data<uint8_t>() + ours->numel());
  EXPECT_EQ(got, want) << what;
  // FFmpeg's decoder and rgb24 conversion in the FFmpeg build (our own decoder again without it).
  auto reference = DecodeImage(png);
  ASSERT_TRUE(reference.ok()) << what << ": " << reference.status();
  const std::vector<uint8_t> ref(reference->data<uint8_t>(),
                                 reference->data<uint8_t>() + reference->numel());
  EXPECT_EQ(got, ref) << what << ": differs from DecodeImage";
}

TEST(PngDecodeTest, EveryColourTypeDepthAndInterlace) {
  const std::pair<int, std::vector<int>> formats[] = {
      {0, {1, 2, 4, 8, 16}}, {2, {8, 16}}, {3, {1, 2, 4, 8}}, {4, {8, 16}}, {6, {8, 16}}};
  uint32_t seed = 1;
  for (const auto& [colour, depths] : formats) {
    for (int depth : depths) {
      for (bool adam7 : {false, true}) {
        for (auto [w, h] :
             {std::pair{13, 11}, std::pair{1, 1}, std::pair{3, 17}, std::pair{40, 2}}) {
          ExpectDecodes(
              Random(w, h, colour, depth, adam7, seed++),
              absl::StrCat("colour ", colour, " depth ", depth, " adam7 ", adam7, " ", w, "x", h));
        }
      }
    }
  }
}

// 16-bit samples round to 8 bits, saturating at the top: the values either side of each step.
TEST(PngDecodeTest, SixteenBitSamplesRound) {
  const uint32_t edges[] = {0x0000, 0x007f, 0x0080, 0x00ff, 0x3bc2, 0x7f7f, 0x7f80,
                            0xfe7f, 0xfe80, 0xff7f, 0xff80, 0xfffe, 0xffff};
  for (int colour : {0, 2, 4, 6}) {
    Image im = Random(13, 1, colour, 16, false, 3);
    for (size_t i = 0; i < im.samples.size(); ++i) im.samples[i] = edges[i % 13];
    ExpectDecodes(im, absl::StrCat("colour ", colour, " 16-bit edges"));
  }
}

TEST(PngDecodeTest, TransparencyIsDropped) {
  Image grey = Random(9, 7, 0, 8, false, 5);
  grey.trns = std::string("\x00\x10", 2);  // grey 16 is transparent
  ExpectDecodes(grey, "grey tRNS");
  Image rgb = Random(9, 7, 2, 16, true, 6);
  rgb.trns = std::string("\x00\x01\x00\x02\x00\x03", 6);
  ExpectDecodes(rgb, "rgb16 tRNS");
  Image palette = Random(9, 7, 3, 4, false, 7);
  palette.trns = std::string("\x00\x80\xff", 3);
  ExpectDecodes(palette, "palette tRNS");
}

TEST(PngDecodeTest, EncodePngRoundTrips) {
  Tensor rgb = Tensor::Zeros(DType::kU8, {37, 53, 3});
  for (int64_t i = 0; i < rgb.numel(); ++i)
    rgb.data<uint8_t>()[i] = static_cast<uint8_t>(i * i % 251);
  auto png = EncodePng(rgb);
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_TRUE(IsPng(*png));
  for (auto decoded : {DecodePng(*png), DecodeImage(*png)}) {
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ASSERT_EQ(decoded->shape(), rgb.shape());
    for (int64_t i = 0; i < rgb.numel(); ++i) {
      ASSERT_EQ(decoded->data<uint8_t>()[i], rgb.data<uint8_t>()[i]) << "at " << i;
    }
  }
  EXPECT_THAT(EncodePng(Tensor::Zeros(DType::kU8, {2, 2, 4})),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

void ExpectBad(const std::string& png, const std::string& what) {
  auto out = DecodePng(png, "init_image");
  EXPECT_THAT(out, StatusIs(absl::StatusCode::kInvalidArgument)) << what;
  if (!out.ok()) {
    EXPECT_NE(out.status().message().find("init_image"), std::string::npos) << out.status();
  }
}

TEST(PngDecodeTest, BrokenFilesAreInvalidArgumentNamingTheField) {
  const std::string good = WritePng(Random(16, 16, 2, 8, false, 9));
  ASSERT_TRUE(DecodePng(good).ok());
  const std::string sig("\x89PNG\r\n\x1a\n", 8);
  ExpectBad("", "empty");
  ExpectBad("GIF89a and then some", "not a PNG");
  ExpectBad(std::string((size_t{64} << 20) + 1, '\0'), "over 64 MiB");
  // Every cut short of the whole file fails, except right before IEND, where the image is whole.
  const size_t iend = good.size() - 12;
  for (size_t n = 0; n < good.size(); ++n) {
    if (n != iend) ExpectBad(good.substr(0, n), absl::StrCat("cut at ", n));
  }
  EXPECT_TRUE(DecodePng(good.substr(0, iend)).ok());
  std::string crc = good;
  crc[sig.size() + 8 + 3] ^= 1;  // a byte of IHDR's width; its CRC no longer matches
  ExpectBad(crc, "bad IHDR CRC");
  std::string idat_crc = good;
  idat_crc[good.size() - 12 - 6] ^= 0x40;  // inside the last IDAT
  ExpectBad(idat_crc, "bad IDAT CRC");
  const std::string idat = Chunk("IDAT", Zlib(std::string(17 * 16 * 3, '\0')));
  ExpectBad(sig + Header(100000, 100000, 8, 2, 0) + idat + Chunk("IEND", ""), "huge");
  ExpectBad(sig + Header(0, 5, 8, 2, 0) + idat + Chunk("IEND", ""), "zero width");
  ExpectBad(sig + Header(16, 16, 4, 2, 0) + idat + Chunk("IEND", ""), "RGB at 4 bits");
  ExpectBad(sig + Header(16, 16, 8, 3, 0) + idat + Chunk("IEND", ""), "palette without PLTE");
  ExpectBad(sig + Header(16, 16, 8, 2, 2) + idat + Chunk("IEND", ""), "interlace 2");
  ExpectBad(sig + Header(16, 16, 8, 2, 0) + Chunk("IEND", ""), "no IDAT");
  ExpectBad(sig + Header(16, 17, 8, 2, 0) + idat + Chunk("IEND", ""), "too little data");
  ExpectBad(
      sig + Header(16, 16, 8, 2, 0) + Chunk("IDAT", "\x78\x9c\xff\xff\xff\xff") + Chunk("IEND", ""),
      "corrupt zlib");
  ExpectBad(sig + Header(16, 16, 8, 2, 0) + Chunk("QUUX", "x") + idat + Chunk("IEND", ""),
            "unknown critical chunk");
  ExpectBad(sig + Chunk("tEXt", "a") + Header(16, 16, 8, 2, 0) + idat + Chunk("IEND", ""),
            "IHDR not first");
  Image bad_filter = Random(4, 4, 2, 8, false, 3);
  bad_filter.filter_override = 5;
  ExpectBad(WritePng(bad_filter), "filter type 5");
  // An unknown ancillary chunk is skipped.
  EXPECT_TRUE(
      DecodePng(sig + Header(16, 16, 8, 2, 0) + Chunk("quUX", "x") + idat + Chunk("IEND", ""))
          .ok());
}

// Random damage: any status but InvalidArgument (or a crash, under the sanitizers) is a bug.
TEST(PngDecodeTest, RandomDamageNeverCrashes) {
  const std::string good = WritePng(Random(24, 9, 6, 16, true, 11));
  uint32_t x = 12345;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string png = good;
    for (int k = 0; k < 1 + trial % 4; ++k) {
      x = x * 1664525u + 1013904223u;
      png[(x >> 8) % png.size()] = static_cast<char>(x >> 24);
    }
    auto out = DecodePng(png);
    if (!out.ok()) {
      ASSERT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    }
  }
}

}  // namespace
}  // namespace turbovid::engine::video
