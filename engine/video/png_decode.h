// Our own PNG decoder (zlib for inflate, no FFmpeg): every colour type, bit depth and filter,
// Adam7 interlace, CRCs checked, to [H, W, 3] U8 RGB. DecodeImage uses it in builds without
// FFmpeg; the tests check it against FFmpeg's decoder byte for byte.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::video {

// True when `bytes` starts with the 8-byte PNG signature.
bool IsPng(std::string_view bytes);

// PNG bytes → [H, W, 3] U8 RGB, the same bytes FFmpeg's decoder and its rgb24 conversion give:
// alpha (an alpha channel or tRNS) dropped, 16-bit samples v rounded to min(255, (v + 128) >> 8),
// 1/2/4-bit grey scaled to 0…255 (×255, ×0x55, ×0x11), a palette index past the palette black.
// Ancillary chunks are skipped (their CRCs checked too). Anything malformed — bad signature, chunk,
// CRC, header field, zlib stream or filter byte, too little image data — more than 64 MiB of input
// or more than 64 Mpixel → InvalidArgument naming `field`.
absl::StatusOr<Tensor> DecodePng(std::string_view bytes, const std::string& field = "image");

}  // namespace turbovid::engine::video
