// Sanity check of an encoded conditioning image without decoding it (the scheduler has no
// FFmpeg): magic bytes of PNG / JPEG / WebP / BMP / GIF plus the header fields that give its size.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace turbovid::scheduler {

struct ImageInfo {
  std::string format;  // "png", "jpeg", "webp", "bmp", "gif"
  int width = 0;
  int height = 0;
};

// InvalidArgument whose message starts with "image: " for unknown, truncated or corrupt headers.
absl::StatusOr<ImageInfo> InspectImage(const std::string& bytes);

}  // namespace turbovid::scheduler
