// Self-attention kernel of a DiT forward, chosen per call (engine::GenerateRequest, then
// WanDit::Forward); the model holds no attention state.
#pragma once

#include <cstdint>

namespace turbovid::engine {

// Every switch over it lists all values, so a mode added later is handled everywhere or fails to
// compile.
enum class AttentionMode : uint8_t {
  kDense,    // full softmax attention
  kSla,      // sparse-linear attention: top-k key blocks + linear attention over the rest
  kSageSla,  // SLA with the sparse branch quantised (int8 Q/K, FP8 P/V) as TurboDiffusion's SageSLA
};

inline const char* AttentionModeName(AttentionMode mode) {
  switch (mode) {
    case AttentionMode::kDense:
      return "dense";
    case AttentionMode::kSla:
      return "SLA";
    case AttentionMode::kSageSla:
      return "SageSLA";
  }
  return "?";
}

}  // namespace turbovid::engine
