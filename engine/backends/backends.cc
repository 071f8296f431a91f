// MakeBackend / QueryDevice over the table of built backends (backend_table.h).
#include "engine/backends/backends.h"

#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/backends/backend_table.h"
#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine {
namespace internal {

absl::StatusOr<std::unique_ptr<Backend>> MakeCpuEntry(int /*device*/) { return MakeCpuBackend(); }

absl::StatusOr<DeviceInfo> QueryCpuEntry(int /*device*/) {
  return DeviceInfo{"host CPU", 0, 0, ""};
}

}  // namespace internal
namespace {

// Every backend this code base has, built or not.
constexpr std::array<const char*, 2> kKnownBackends = {"cpu", "cuda"};

absl::StatusOr<const internal::BackendEntry*> Find(std::string_view name) {
  for (const internal::BackendEntry& e : internal::BuiltBackendTable()) {
    if (e.name == name) return &e;
  }
  for (const char* known : kKnownBackends) {
    if (known == name) {
      return absl::UnimplementedError(absl::StrCat(
          "backend '", std::string(name),
          "' is not built into this binary (built: ", absl::StrJoin(BuiltBackends(), ", "), ")"));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "backend: '", std::string(name), "' is not one of ", absl::StrJoin(kKnownBackends, ", ")));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(std::string_view name, int device) {
  absl::StatusOr<const internal::BackendEntry*> entry = Find(name);
  if (!entry.ok()) return entry.status();
  return (*entry)->make(device);
}

absl::StatusOr<DeviceInfo> QueryDevice(std::string_view name, int device) {
  absl::StatusOr<const internal::BackendEntry*> entry = Find(name);
  if (!entry.ok()) return entry.status();
  return (*entry)->query(device);
}

std::vector<std::string> BuiltBackends() {
  std::vector<std::string> names;
  for (const internal::BackendEntry& e : internal::BuiltBackendTable()) {
    names.emplace_back(e.name);
  }
  return names;
}

absl::StatusOr<std::unique_ptr<comm::Communicator>> MakeDeviceCommunicator(
    Backend& backend, int device, comm::Communicator& host) {
  if (backend.device() == Device::kCpu) return host.Split(/*color=*/0, /*key=*/host.rank());
  return internal::MakeTableDeviceCommunicator(backend, device, host);
}

}  // namespace turbovid::engine
