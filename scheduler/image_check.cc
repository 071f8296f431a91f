// Header parsers per format. Each reads only fixed header fields and bounds-checks every read;
// pixel data is left to the worker's decoder.
#include "scheduler/image_check.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace turbovid::scheduler {
namespace {

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("image: ", what));
}

uint32_t Be32(const std::string& b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 3])};
}
uint32_t Be16(const std::string& b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 8) | uint32_t{static_cast<uint8_t>(b[at + 1])};
}
uint32_t Le16(const std::string& b, size_t at) {
  return uint32_t{static_cast<uint8_t>(b[at])} | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 8);
}
uint32_t Le24(const std::string& b, size_t at) {
  return Le16(b, at) | (uint32_t{static_cast<uint8_t>(b[at + 2])} << 16);
}
uint32_t Le32(const std::string& b, size_t at) { return Le16(b, at) | (Le16(b, at + 2) << 16); }
bool StartsWith(const std::string& b, const char* magic, size_t n, size_t at = 0) {
  return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
}

// PNG: signature, then the IHDR chunk (length 13) with width, height, bit depth, colour type.
absl::StatusOr<ImageInfo> Png(const std::string& b) {
  if (b.size() < 8 + 8 + 13 + 4 + 12) return Bad("truncated PNG");
  if (Be32(b, 8) != 13 || !StartsWith(b, "IHDR", 4, 12)) return Bad("PNG without IHDR chunk");
  ImageInfo info{"png", static_cast<int>(Be32(b, 16)), static_cast<int>(Be32(b, 20))};
  const int depth = static_cast<uint8_t>(b[24]);
  const int colour = static_cast<uint8_t>(b[25]);
  if (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16) {
    return Bad(absl::StrCat("PNG bit depth ", depth));
  }
  if (colour != 0 && colour != 2 && colour != 3 && colour != 4 && colour != 6) {
    return Bad(absl::StrCat("PNG colour type ", colour));
  }
  if (!StartsWith(b, "IEND", 4, b.size() - 8)) return Bad("truncated PNG (no IEND chunk)");
  return info;
}

// JPEG: walk the marker segments up to the first SOFn frame header; require the EOI marker.
absl::StatusOr<ImageInfo> Jpeg(const std::string& b) {
  if (b.size() < 4 || static_cast<uint8_t>(b[b.size() - 2]) != 0xFF ||
      static_cast<uint8_t>(b[b.size() - 1]) != 0xD9) {
    return Bad("truncated JPEG (no EOI marker)");
  }
  size_t at = 2;
  while (at + 4 <= b.size()) {
    if (static_cast<uint8_t>(b[at]) != 0xFF) return Bad("corrupt JPEG marker");
    const uint8_t marker = static_cast<uint8_t>(b[at + 1]);
    if (marker == 0xFF) {
      ++at;  // fill byte
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      at += 2;
      continue;
    }
    const uint32_t length = Be16(b, at + 2);
    if (length < 2 || at + 2 + length > b.size()) return Bad("corrupt JPEG segment length");
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (length < 8) return Bad("corrupt JPEG frame header");
      return ImageInfo{"jpeg", static_cast<int>(Be16(b, at + 7)),
                       static_cast<int>(Be16(b, at + 5))};
    }
    if (marker == 0xDA) break;  // scan data before any frame header
    at += 2 + length;
  }
  return Bad("JPEG without frame header");
}

// WebP: RIFF container whose size fits the file, then a VP8, VP8L or VP8X chunk.
absl::StatusOr<ImageInfo> Webp(const std::string& b) {
  if (b.size() < 30) return Bad("truncated WebP");
  if (uint64_t{Le32(b, 4)} + 8 > b.size()) return Bad("truncated WebP (RIFF size)");
  if (StartsWith(b, "VP8 ", 4, 12)) {
    if (!(static_cast<uint8_t>(b[23]) == 0x9D && static_cast<uint8_t>(b[24]) == 0x01 &&
          static_cast<uint8_t>(b[25]) == 0x2A)) {
      return Bad("corrupt WebP VP8 frame tag");
    }
    return ImageInfo{"webp", static_cast<int>(Le16(b, 26) & 0x3FFF),
                     static_cast<int>(Le16(b, 28) & 0x3FFF)};
  }
  if (StartsWith(b, "VP8L", 4, 12)) {
    if (static_cast<uint8_t>(b[20]) != 0x2F) return Bad("corrupt WebP VP8L signature");
    const uint32_t bits = Le32(b, 21);
    return ImageInfo{"webp", static_cast<int>((bits & 0x3FFF) + 1),
                     static_cast<int>(((bits >> 14) & 0x3FFF) + 1)};
  }
  if (StartsWith(b, "VP8X", 4, 12)) {
    return ImageInfo{"webp", static_cast<int>(Le24(b, 24) + 1), static_cast<int>(Le24(b, 27) + 1)};
  }
  return Bad("WebP without VP8/VP8L/VP8X chunk");
}

// BMP: file header size field, a known DIB header size, non-zero width and height.
absl::StatusOr<ImageInfo> Bmp(const std::string& b) {
  if (b.size() < 26) return Bad("truncated BMP");
  if (Le32(b, 2) > b.size()) return Bad("truncated BMP (file size field)");
  const uint32_t dib = Le32(b, 14);
  if (dib == 12) {
    return ImageInfo{"bmp", static_cast<int>(Le16(b, 18)), static_cast<int>(Le16(b, 20))};
  }
  if (dib != 40 && dib != 52 && dib != 56 && dib != 64 && dib != 108 && dib != 124) {
    return Bad(absl::StrCat("BMP header size ", dib));
  }
  const int32_t width = static_cast<int32_t>(Le32(b, 18));
  const int32_t height = static_cast<int32_t>(Le32(b, 22));
  if (Le32(b, 10) >= b.size()) return Bad("truncated BMP (no pixel data)");
  return ImageInfo{"bmp", width, height < 0 ? -height : height};
}

absl::StatusOr<ImageInfo> Gif(const std::string& b) {
  if (b.size() < 14) return Bad("truncated GIF");
  if (static_cast<uint8_t>(b.back()) != 0x3B) return Bad("truncated GIF (no trailer)");
  return ImageInfo{"gif", static_cast<int>(Le16(b, 6)), static_cast<int>(Le16(b, 8))};
}

}  // namespace

absl::StatusOr<ImageInfo> InspectImage(const std::string& bytes) {
  absl::StatusOr<ImageInfo> info;
  if (StartsWith(bytes, "\x89PNG\r\n\x1a\n", 8)) {
    info = Png(bytes);
  } else if (StartsWith(bytes, "\xFF\xD8\xFF", 3)) {
    info = Jpeg(bytes);
  } else if (StartsWith(bytes, "RIFF", 4) && StartsWith(bytes, "WEBP", 4, 8)) {
    info = Webp(bytes);
  } else if (StartsWith(bytes, "BM", 2)) {
    info = Bmp(bytes);
  } else if (StartsWith(bytes, "GIF87a", 6) || StartsWith(bytes, "GIF89a", 6)) {
    info = Gif(bytes);
  } else {
    return Bad("not a PNG, JPEG, WebP, BMP or GIF file");
  }
  if (!info.ok()) return info;
  if (info->width <= 0 || info->height <= 0) {
    return Bad(absl::StrCat(info->format, " size ", info->width, "x", info->height));
  }
  return info;
}

}  // namespace turbovid::scheduler
