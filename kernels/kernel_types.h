// Element types the kernels read and write. Activations are BF16 on the CUDA backend; side
// tables (rope angles, probes) may be F32, so each pointer carries its element type.
#pragma once

namespace turbovid::kernels {

enum class ElemType : int { kF32 = 0, kBF16 = 1 };

// A device pointer tagged with its element type.
struct ConstBuf {
  const void* data = nullptr;
  ElemType type = ElemType::kBF16;
};
struct MutBuf {
  void* data = nullptr;
  ElemType type = ElemType::kBF16;
};

}  // namespace turbovid::kernels
