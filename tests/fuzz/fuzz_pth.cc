// libFuzzer: a whole torch.save archive (libzip listing, our central-directory walk for stored
// entry offsets, zero-copy views) from arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "engine/io/pth.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed =
      turbovid::engine::io::ParsePth(turbovid::fuzz::OwnedStorage(data, size), "fuzz.pth");
  if (parsed.ok()) turbovid::fuzz::TouchAll(*parsed);
  return 0;
}
