// CPU reference conv ops (being written).
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
void RegisterConvOps(CpuBackend&) {}
}  // namespace turbovid::engine::cpu
