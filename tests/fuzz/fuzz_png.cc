// libFuzzer: DecodePng on arbitrary bytes must return a status, never crash, read out of bounds
// or allocate for a header's claims before the data is there; a decoded image has the shape it
// says and every byte of it is read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/video/png_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto image = turbovid::engine::video::DecodePng(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (image.ok()) {
    volatile uint8_t sink = 0;
    const auto* p = image->data<uint8_t>();
    for (int64_t i = 0; i < image->numel(); ++i) sink = sink ^ p[i];
    (void)sink;
  }
  return 0;
}
