// CPU reference quant ops (being written).
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
void RegisterQuantOps(CpuBackend&) {}
}  // namespace turbovid::engine::cpu
