// libFuzzer: ParseSafetensors on arbitrary bytes must return a status, never crash or read out
// of bounds; every tensor it returns must lie inside the buffer.
#include <cstddef>
#include <cstdint>

#include "engine/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = turbovid::engine::io::ParseSafetensors(turbovid::fuzz::OwnedStorage(data, size),
                                                       "fuzz.safetensors");
  if (parsed.ok()) turbovid::fuzz::TouchAll(*parsed);
  return 0;
}
