// Shared helpers of the libFuzzer targets: an owned in-memory Storage and a read of every byte
// a parsed tensor claims, so a view past its buffer trips AddressSanitizer.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace turbovid::fuzz {

// Copies the input into its own heap block so ASan sees its exact bounds.
inline std::shared_ptr<engine::Storage> OwnedStorage(const uint8_t* data, size_t size) {
  auto s = std::make_shared<engine::Storage>();
  void* p = std::malloc(size == 0 ? 1 : size);
  if (size != 0) std::memcpy(p, data, size);
  s->data = p;
  s->bytes = size;
  s->owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  return s;
}

inline void TouchAll(const engine::io::TensorMap& tensors) {
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : tensors) {
    const auto* p = static_cast<const uint8_t*>(t.raw());
    for (size_t i = 0; i < t.nbytes(); ++i) sink = sink ^ p[i];
  }
  (void)sink;
}

}  // namespace turbovid::fuzz
