// The backend table of a build without CUDA: the CPU reference backend alone.
#include <array>

#include "engine/backends/backend_table.h"

namespace turbovid::engine::internal {

std::span<const BackendEntry> BuiltBackendTable() {
  static constexpr std::array<BackendEntry, 1> kTable = {{
      {"cpu", &MakeCpuEntry, &QueryCpuEntry},
  }};
  return kTable;
}

}  // namespace turbovid::engine::internal
