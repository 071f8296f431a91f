// A minimal PNG writer (8-bit RGB, zlib "stored" blocks, no compression) so the CLI can make an
// I2V conditioning image without FFmpeg or the engine.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace turbovid::tools {

// rgb: [height, width, 3] u8, row-major. Returns the bytes of a valid PNG file.
absl::StatusOr<std::string> EncodePng(int width, int height, const std::string& rgb);

// A smooth colour test pattern (gradients plus a disc) of the given size, as PNG bytes.
absl::StatusOr<std::string> MakeTestPatternPng(int width, int height);

}  // namespace turbovid::tools
