// CPU reference sla ops (being written).
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::cpu {
void RegisterSlaOps(CpuBackend&) {}
}  // namespace turbovid::engine::cpu
