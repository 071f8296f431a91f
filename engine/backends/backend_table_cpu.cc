// The backend table of a build without CUDA: the CPU reference backend alone.
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/backends/backend_table.h"

namespace turbovid::engine::internal {

std::span<const BackendEntry> BuiltBackendTable() {
  static constexpr std::array<BackendEntry, 1> kTable = {{
      {"cpu", &MakeCpuEntry, &QueryCpuEntry},
  }};
  return kTable;
}

absl::StatusOr<std::unique_ptr<comm::Communicator>> MakeTableDeviceCommunicator(
    Backend& backend, int /*device*/, comm::Communicator& /*host*/) {
  return absl::UnimplementedError(absl::StrCat("communicator: backend ",
                                               std::string(backend.name()), " is not built"));
}

}  // namespace turbovid::engine::internal
