// EncodePng with zlib alone, in every build: 8-bit RGB, each row's filter chosen by the usual
// least-sum-of-absolute-differences rule, one IDAT. The engine's I2V tests make their input
// images with it, so they run in builds without FFmpeg too.
#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/video/video.h"

namespace turbovid::engine::video {
namespace {

constexpr int64_t kMaxSide = 16384;

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void PutChunk(std::string* out, const char (&type)[5], const std::string& data) {
  PutU32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out->size();
  out->append(type, 4);
  out->append(data);
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(out->data() + start),
                          static_cast<uInt>(out->size() - start));
  PutU32(out, static_cast<uint32_t>(crc));
}

uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

// Appends `row` (n bytes, 3 per pixel; `prev` the row above or nullptr) with the filter among the
// five whose output has the least sum of |byte as signed|.
void AppendFilteredRow(const uint8_t* row, const uint8_t* prev, size_t n, std::string* out) {
  std::array<std::vector<uint8_t>, 5> candidates;
  size_t best = 0;
  int64_t best_cost = -1;
  for (size_t type = 0; type < candidates.size(); ++type) {
    std::vector<uint8_t>& f = candidates[type];
    f.resize(n);
    int64_t cost = 0;
    for (size_t i = 0; i < n; ++i) {
      const int a = i >= 3 ? row[i - 3] : 0;
      const int b = prev != nullptr ? prev[i] : 0;
      const int c = prev != nullptr && i >= 3 ? prev[i - 3] : 0;
      const int predicted = type == 0   ? 0
                            : type == 1 ? a
                            : type == 2 ? b
                            : type == 3 ? (a + b) >> 1
                                        : Paeth(a, b, c);
      f[i] = static_cast<uint8_t>(row[i] - predicted);
      cost += std::abs(static_cast<int8_t>(f[i]));
    }
    if (best_cost < 0 || cost < best_cost) best = type, best_cost = cost;
  }
  out->push_back(static_cast<char>(best));
  out->append(reinterpret_cast<const char*>(candidates[best].data()), n);
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const Tensor& rgb) {
  if (!rgb.defined() || rgb.device() != Device::kCpu || rgb.dtype() != DType::kU8 ||
      rgb.rank() != 3 || rgb.dim(2) != 3 || rgb.dim(0) < 1 || rgb.dim(1) < 1 ||
      rgb.dim(0) > kMaxSide || rgb.dim(1) > kMaxSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("rgb: ", rgb.defined() ? rgb.Describe() : "empty",
                     " is not a host U8 [H, W, 3] tensor with sides in [1, ", kMaxSide, "]"));
  }
  const int64_t height = rgb.dim(0), width = rgb.dim(1);
  const size_t row = static_cast<size_t>(width) * 3;
  std::string filtered;
  filtered.reserve((row + 1) * height);
  const auto* px = rgb.data<uint8_t>();
  for (int64_t y = 0; y < height; ++y) {
    AppendFilteredRow(px + y * row, y > 0 ? px + (y - 1) * row : nullptr, row, &filtered);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(filtered.size()));
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                reinterpret_cast<const Bytef*>(filtered.data()),
                static_cast<uLong>(filtered.size()), Z_DEFAULT_COMPRESSION) != Z_OK) {
    return absl::ResourceExhaustedError("EncodePng: zlib compress2 failed");
  }
  packed.resize(packed_size);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  PutU32(&ihdr, static_cast<uint32_t>(width));
  PutU32(&ihdr, static_cast<uint32_t>(height));
  ihdr.append("\x08\x02\x00\x00\x00", 5);  // 8 bits, RGB, deflate, adaptive filters, no interlace
  PutChunk(&png, "IHDR", ihdr);
  PutChunk(&png, "IDAT", packed);
  PutChunk(&png, "IEND", "");
  return png;
}

}  // namespace turbovid::engine::video
