// PNG writer: signature, IHDR, one IDAT holding a zlib stream of stored deflate blocks, IEND.
#include "tools/png.h"

#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace turbovid::tools {
namespace {

const std::array<uint32_t, 256>& CrcTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

uint32_t Crc32(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = CrcTable()[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t Adler32(const std::string& bytes) {
  uint32_t a = 1, b = 0;
  for (unsigned char x : bytes) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

void PutU32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

void PutChunk(std::string* out, const char type[4], const std::string& data) {
  PutU32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  *out += body;
  PutU32(out, Crc32(body));
}

// zlib header (deflate, 32K window, no dictionary), stored blocks of at most 65535 bytes,
// Adler-32 trailer (RFC 1950/1951).
std::string ZlibStored(const std::string& raw) {
  std::string z = {'\x78', '\x01'};
  size_t pos = 0;
  do {
    size_t n = std::min<size_t>(65535, raw.size() - pos);
    bool last = pos + n == raw.size();
    z.push_back(last ? 1 : 0);
    z.push_back(static_cast<char>(n & 0xFF));
    z.push_back(static_cast<char>(n >> 8));
    z.push_back(static_cast<char>(~n & 0xFF));
    z.push_back(static_cast<char>((~n >> 8) & 0xFF));
    z.append(raw, pos, n);
    pos += n;
  } while (pos < raw.size());
  PutU32(&z, Adler32(raw));
  return z;
}

}  // namespace

absl::StatusOr<std::string> EncodePng(int width, int height, const std::string& rgb) {
  if (width <= 0 || height <= 0 || width > 16384 || height > 16384) {
    return absl::InvalidArgumentError(absl::StrCat("png: size ", width, "x", height, " out of range"));
  }
  const size_t row = static_cast<size_t>(width) * 3;
  if (rgb.size() != row * height) {
    return absl::InvalidArgumentError(
        absl::StrCat("png: rgb has ", rgb.size(), " bytes, want ", row * height));
  }
  std::string raw;
  raw.reserve((row + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');  // filter type None
    raw.append(rgb, y * row, row);
  }
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  PutU32(&ihdr, static_cast<uint32_t>(width));
  PutU32(&ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bit, RGB, deflate, adaptive, no interlace
  PutChunk(&png, "IHDR", ihdr);
  PutChunk(&png, "IDAT", ZlibStored(raw));
  PutChunk(&png, "IEND", "");
  return png;
}

absl::StatusOr<std::string> MakeTestPatternPng(int width, int height) {
  if (width <= 0 || height <= 0) return EncodePng(width, height, "");
  std::string rgb(static_cast<size_t>(width) * height * 3, '\0');
  const double cx = width * 0.6, cy = height * 0.45, r = std::min(width, height) * 0.25;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      size_t i = (static_cast<size_t>(y) * width + x) * 3;
      bool disc = std::hypot(x - cx, y - cy) < r;
      rgb[i] = static_cast<char>(disc ? 250 : 255 * x / std::max(1, width - 1));
      rgb[i + 1] = static_cast<char>(disc ? 200 : 255 * y / std::max(1, height - 1));
      rgb[i + 2] = static_cast<char>(disc ? 40 : 160);
    }
  }
  return EncodePng(width, height, rgb);
}

}  // namespace turbovid::tools
