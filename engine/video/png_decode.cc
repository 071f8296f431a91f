// PNG → RGB without FFmpeg: chunk walk with CRCs (zlib's crc32), inflate into a buffer that grows
// only as data arrives (a small file cannot make us allocate for a huge header), unfiltering,
// Adam7 passes, then samples → RGB bytes the way FFmpeg's decoder + rgb24 conversion give them.
#include "engine/video/png_decode.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::video {
namespace {

// DecodeImage's contract (engine/video/video.h).
constexpr size_t kMaxImageBytes = size_t{64} << 20;
constexpr int64_t kMaxPixels = int64_t{64} << 20;
constexpr std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);

using Rgb = std::array<uint8_t, 3>;

struct Header {
  int64_t width = 0;
  int64_t height = 0;
  int depth = 0;   // bits per sample
  int colour = 0;  // 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA
  bool adam7 = false;
  int channels() const { return colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1; }
  int pixel_bits() const { return depth * channels(); }
  // Filters work on whole bytes: the byte distance to the same sample of the previous pixel.
  int filter_stride() const { return std::max(1, pixel_bits() / 8); }
  uint64_t row_bytes(int64_t w) const { return (static_cast<uint64_t>(w) * pixel_bits() + 7) / 8; }
};

struct Png {
  Header header;
  std::vector<Rgb> palette;
  std::vector<std::string_view> idat;  // the zlib stream, in pieces
};

// One Adam7 pass (or the whole image): first pixel and step in each direction.
struct Pass {
  int x0, y0, dx, dy;
};
constexpr Pass kWhole[] = {{0, 0, 1, 1}};
constexpr Pass kAdam7[] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                           {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

int64_t PassSize(int64_t size, int first, int step) {
  return size > first ? (size - first + step - 1) / step : 0;
}

uint32_t Be32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

absl::Status Bad(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": PNG ", what));
}

absl::StatusOr<Header> ParseHeader(std::string_view data, const std::string& field) {
  if (data.size() != 13) return Bad(field, absl::StrCat("IHDR: ", data.size(), " bytes, not 13"));
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  Header h;
  h.width = Be32(p);
  h.height = Be32(p + 4);
  h.depth = p[8];
  h.colour = p[9];
  if (h.width < 1 || h.height < 1 || h.width > 0x7fffffff || h.height > 0x7fffffff) {
    return Bad(field, absl::StrCat("IHDR: size ", h.width, "x", h.height, " is invalid"));
  }
  if (h.width * h.height > kMaxPixels) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", h.width, "x", h.height, " is over ", kMaxPixels, " pixels"));
  }
  const int d = h.depth;
  const bool depth_ok =
      h.colour == 0   ? (d == 1 || d == 2 || d == 4 || d == 8 || d == 16)
      : h.colour == 3 ? (d == 1 || d == 2 || d == 4 || d == 8)
                      : (h.colour == 2 || h.colour == 4 || h.colour == 6) && (d == 8 || d == 16);
  if (!depth_ok) {
    return Bad(field, absl::StrCat("IHDR: colour type ", h.colour, " with bit depth ", d,
                                   " is not a PNG format"));
  }
  if (p[10] != 0 || p[11] != 0 || p[12] > 1) {
    return Bad(field, absl::StrCat("IHDR: compression ", int{p[10]}, ", filter ", int{p[11]},
                                   ", interlace ", int{p[12]}, " are not all defined"));
  }
  h.adam7 = p[12] == 1;
  return h;
}

// Walks the chunks up to IEND: IHDR first, PLTE (palette images) before the first IDAT, every CRC
// checked, unknown ancillary chunks skipped, unknown critical ones refused.
absl::StatusOr<Png> ReadChunks(std::string_view bytes, const std::string& field) {
  Png png;
  bool have_header = false;
  size_t at = kSignature.size();
  while (true) {
    if (bytes.size() - at < 12) {
      if (have_header && !png.idat.empty() && at == bytes.size()) break;  // IEND missing: tolerated
      return Bad(field, absl::StrCat("truncated at byte ", at, " (chunk header or IEND missing)"));
    }
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    const uint32_t length = Be32(p);
    const std::string_view type = bytes.substr(at + 4, 4);
    for (char c : type) {
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
        return Bad(field, absl::StrCat("chunk at byte ", at, ": type is not four letters"));
      }
    }
    const std::string name(type);
    if (length > 0x7fffffffu || length > bytes.size() - at - 12) {
      return Bad(field, absl::StrCat("chunk ", name, " at byte ", at, ": length ", length,
                                     " runs past the end of the file"));
    }
    const std::string_view data = bytes.substr(at + 8, length);
    const uint32_t crc = Be32(p + 8 + length);
    const uLong computed =
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(type.data()), 4 + length);
    if (computed != crc) return Bad(field, absl::StrCat("chunk ", name, ": CRC mismatch"));
    at += 12 + size_t{length};
    if (!have_header && name != "IHDR") return Bad(field, "IHDR is not the first chunk");
    if (name == "IHDR") {
      if (have_header) return Bad(field, "second IHDR");
      TV_ASSIGN_OR_RETURN(png.header, ParseHeader(data, field));
      have_header = true;
    } else if (name == "PLTE") {
      if (!png.idat.empty() || !png.palette.empty() || length % 3 != 0 || length == 0 ||
          length > 768) {
        return Bad(field, absl::StrCat("PLTE: ", length, " bytes, a second one or after IDAT"));
      }
      for (size_t i = 0; i < length; i += 3) {
        png.palette.push_back({static_cast<uint8_t>(data[i]), static_cast<uint8_t>(data[i + 1]),
                               static_cast<uint8_t>(data[i + 2])});
      }
    } else if (name == "IDAT") {
      if (png.header.colour == 3 && png.palette.empty()) return Bad(field, "no PLTE before IDAT");
      png.idat.push_back(data);
    } else if (name == "IEND") {
      break;
    } else if ((type[0] & 0x20) == 0) {
      return Bad(field, absl::StrCat("unknown critical chunk ", name));
    }
  }
  if (png.idat.empty()) return Bad(field, "no IDAT chunk");
  return png;
}

// Inflates the IDAT stream until `expected` bytes have come out; data past them is ignored, as
// libpng and FFmpeg do. The output grows with what actually inflates.
absl::StatusOr<std::vector<uint8_t>> Inflate(const std::vector<std::string_view>& pieces,
                                             size_t expected, const std::string& field) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return absl::ResourceExhaustedError("png: inflateInit failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> owner(&z, &inflateEnd);
  std::vector<uint8_t> out(std::min<size_t>(expected, size_t{1} << 16));
  size_t produced = 0;
  uint8_t scratch = 0;
  bool ended = false;  // the zlib stream's end (and its Adler-32) was read
  for (size_t piece = 0; piece < pieces.size() && !ended; ++piece) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(pieces[piece].data()));
    z.avail_in = static_cast<uInt>(pieces[piece].size());
    while (z.avail_in > 0 && !ended) {
      const bool full = produced == expected;
      if (!full && produced == out.size()) out.resize(std::min(expected, out.size() * 2));
      z.next_out = full ? &scratch : out.data() + produced;
      z.avail_out = full ? 1 : static_cast<uInt>(std::min<size_t>(out.size() - produced, 1 << 30));
      const uInt room = z.avail_out;
      const int ret = inflate(&z, Z_NO_FLUSH);
      if (full && z.avail_out == 0) return out;  // more data than the image holds: ignored
      if (!full) produced += room - z.avail_out;
      if (ret == Z_MEM_ERROR) return absl::ResourceExhaustedError("png: out of memory inflating");
      if (ret != Z_OK && ret != Z_BUF_ERROR && ret != Z_STREAM_END) {
        return Bad(field, absl::StrCat("IDAT: zlib: ", z.msg != nullptr ? z.msg : "bad data"));
      }
      ended = ret == Z_STREAM_END;
    }
  }
  // Complete data without the stream's end (Adler-32) is accepted, as libpng and FFmpeg do.
  if (produced < expected) {
    return Bad(field, absl::StrCat("IDAT: ", produced, " bytes of image data, want ", expected));
  }
  return out;
}

uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

// Reverses the filter of `row` (its filter byte first) in place, `prev` the unfiltered row above
// (nullptr for a pass's first row).
absl::Status Unfilter(uint8_t* row, const uint8_t* prev, size_t n, int stride,
                      const std::string& field) {
  const uint8_t type = row[0];
  uint8_t* x = row + 1;
  const uint8_t* up = prev != nullptr ? prev + 1 : nullptr;
  for (size_t i = 0; i < n; ++i) {
    const int a = i >= static_cast<size_t>(stride) ? x[i - stride] : 0;
    const int b = up != nullptr ? up[i] : 0;
    const int c = up != nullptr && i >= static_cast<size_t>(stride) ? up[i - stride] : 0;
    switch (type) {
      case 0:
        break;
      case 1:
        x[i] = static_cast<uint8_t>(x[i] + a);
        break;
      case 2:
        x[i] = static_cast<uint8_t>(x[i] + b);
        break;
      case 3:
        x[i] = static_cast<uint8_t>(x[i] + ((a + b) >> 1));
        break;
      case 4:
        x[i] = static_cast<uint8_t>(x[i] + Paeth(a, b, c));
        break;
      default:
        return Bad(field, absl::StrCat("row filter type ", int{type}, " is not 0…4"));
    }
  }
  return absl::OkStatus();
}

// Sample k of an unfiltered row in 8 bits: sub-byte samples as stored (MSB first), 16-bit ones
// rounded, min(255, (v + 128) >> 8): FFmpeg's rgb48/gray16 → rgb24 conversion rounds, it does not
// keep the high byte (0x3bc2 → 60, not 59).
uint8_t Sample(const uint8_t* row, int64_t k, int depth) {
  if (depth == 8) return row[k];
  if (depth == 16) {
    const int v = row[2 * k] << 8 | row[2 * k + 1];
    return static_cast<uint8_t>(std::min(255, (v + 128) >> 8));
  }
  const int64_t bit = k * depth;
  return static_cast<uint8_t>((row[bit / 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1));
}

// One unfiltered row of `w` pixels → RGB.
void RowToRgb(const Png& png, const uint8_t* row, int64_t w, uint8_t* rgb) {
  const Header& h = png.header;
  for (int64_t x = 0; x < w; ++x, rgb += 3) {
    switch (h.colour) {
      case 0:
      case 4: {
        uint8_t g = Sample(row, x * h.channels(), h.depth);
        if (h.depth < 8) g = static_cast<uint8_t>(g * (255 / ((1 << h.depth) - 1)));
        rgb[0] = rgb[1] = rgb[2] = g;
        break;
      }
      case 3: {
        const uint8_t i = Sample(row, x, h.depth);
        const Rgb c = i < png.palette.size() ? png.palette[i] : Rgb{0, 0, 0};
        std::memcpy(rgb, c.data(), 3);
        break;
      }
      default:  // 2 and 6
        for (int c = 0; c < 3; ++c) rgb[c] = Sample(row, x * h.channels() + c, h.depth);
    }
  }
}

}  // namespace

bool IsPng(std::string_view bytes) { return bytes.substr(0, kSignature.size()) == kSignature; }

absl::StatusOr<Tensor> DecodePng(std::string_view bytes, const std::string& field) {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": no image bytes"));
  if (bytes.size() > kMaxImageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", bytes.size(), " bytes is over the limit of ", kMaxImageBytes));
  }
  if (!IsPng(bytes)) return Bad(field, "signature missing");
  TV_ASSIGN_OR_RETURN(const Png png, ReadChunks(bytes, field));
  const Header& h = png.header;
  const std::span<const Pass> passes = h.adam7 ? std::span<const Pass>(kAdam7) : kWhole;
  size_t expected = 0;
  for (const Pass& pass : passes) {
    const int64_t w = PassSize(h.width, pass.x0, pass.dx);
    const int64_t rows = PassSize(h.height, pass.y0, pass.dy);
    if (w > 0 && rows > 0) expected += rows * (1 + h.row_bytes(w));
  }
  TV_ASSIGN_OR_RETURN(std::vector<uint8_t> raw, Inflate(png.idat, expected, field));
  Tensor out = Tensor::Zeros(DType::kU8, {h.height, h.width, 3});
  uint8_t* dst = out.data<uint8_t>();
  std::vector<uint8_t> rgb(static_cast<size_t>(h.width) * 3);
  uint8_t* at = raw.data();
  for (const Pass& pass : passes) {
    const int64_t w = PassSize(h.width, pass.x0, pass.dx);
    const int64_t rows = PassSize(h.height, pass.y0, pass.dy);
    if (w == 0 || rows == 0) continue;
    const size_t stride = 1 + h.row_bytes(w);
    for (int64_t r = 0; r < rows; ++r, at += stride) {
      TV_RETURN_IF_ERROR(
          Unfilter(at, r > 0 ? at - stride : nullptr, stride - 1, h.filter_stride(), field));
      RowToRgb(png, at + 1, w, rgb.data());
      const int64_t y = pass.y0 + r * pass.dy;
      for (int64_t i = 0; i < w; ++i) {
        std::memcpy(dst + (y * h.width + pass.x0 + i * pass.dx) * 3, &rgb[i * 3], 3);
      }
    }
  }
  return out;
}

}  // namespace turbovid::engine::video
