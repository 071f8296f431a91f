// libFuzzer: ProbeMp4 on arbitrary bytes must return a status, never crash or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/video/mp4_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)turbovid::engine::video::ProbeMp4(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
