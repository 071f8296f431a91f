// NvmlDevice: dlopen + dlsym of the few NVML entry points the worker's metrics read. Their types
// are declared here from NVML's documented C ABI, since no nvml.h is installed where we build.
#include "worker/nvml.h"

#include <dlfcn.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace turbovid::worker {
namespace {

// nvmlReturn_t and nvmlTemperatureSensors_t are C enums, passed as int.
using NvmlReturn = int;
using NvmlDeviceHandle = void*;  // nvmlDevice_t: pointer to an opaque struct
struct NvmlUtilization {         // nvmlUtilization_t, percent over the last sample period
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlMemory {  // nvmlMemory_t, bytes
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr NvmlReturn kNvmlErrorInvalidArgument = 2;  // e.g. an index past the last device
constexpr NvmlReturn kNvmlErrorNotFound = 6;
constexpr int kNvmlTemperatureGpu = 0;            // NVML_TEMPERATURE_GPU
constexpr unsigned int kNvmlNameBufferSize = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE

std::string DlError() {
  const char* e = dlerror();
  return e != nullptr ? e : "unknown dl error";
}

}  // namespace

struct NvmlDevice::Api {
  void* library = nullptr;
  bool initialized = false;
  NvmlReturn (*init)() = nullptr;      // nvmlInit_v2
  NvmlReturn (*shutdown)() = nullptr;  // nvmlShutdown
  NvmlReturn (*handle_by_index)(unsigned int, NvmlDeviceHandle*) = nullptr;
  NvmlReturn (*handle_by_pci_bus_id)(const char*, NvmlDeviceHandle*) = nullptr;
  NvmlReturn (*utilization)(NvmlDeviceHandle, NvmlUtilization*) = nullptr;
  NvmlReturn (*power_milliwatts)(NvmlDeviceHandle, unsigned int*) = nullptr;
  NvmlReturn (*memory)(NvmlDeviceHandle, NvmlMemory*) = nullptr;
  NvmlReturn (*temperature)(NvmlDeviceHandle, int, unsigned int*) = nullptr;
  NvmlReturn (*name)(NvmlDeviceHandle, char*, unsigned int) = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;  // optional: only for messages

  ~Api() {
    if (initialized) shutdown();
    if (library != nullptr) dlclose(library);
  }

  template <typename Fn>
  absl::Status Resolve(const char* symbol, Fn* fn) {
    *fn = reinterpret_cast<Fn>(dlsym(library, symbol));
    if (*fn != nullptr) return absl::OkStatus();
    return absl::UnimplementedError(absl::StrCat("nvml: no ", symbol, " in the library"));
  }

  std::string ErrorText(NvmlReturn r) const {
    const char* text = error_string != nullptr ? error_string(r) : nullptr;
    return absl::StrCat(text != nullptr ? text : "NVML error", " (", r, ")");
  }
};

absl::StatusOr<std::unique_ptr<NvmlDevice>> NvmlDevice::Open(const std::string& library,
                                                             const std::string& pci_bus_id,
                                                             int index) {
  if (pci_bus_id.empty() && index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("nvml: device index ", index));
  }
  auto api = std::make_unique<Api>();
  api->library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api->library == nullptr) {
    return absl::NotFoundError(absl::StrCat("nvml: dlopen ", library, ": ", DlError()));
  }
  for (absl::Status s :
       {api->Resolve("nvmlInit_v2", &api->init), api->Resolve("nvmlShutdown", &api->shutdown),
        api->Resolve("nvmlDeviceGetHandleByIndex_v2", &api->handle_by_index),
        api->Resolve("nvmlDeviceGetHandleByPciBusId_v2", &api->handle_by_pci_bus_id),
        api->Resolve("nvmlDeviceGetUtilizationRates", &api->utilization),
        api->Resolve("nvmlDeviceGetPowerUsage", &api->power_milliwatts),
        api->Resolve("nvmlDeviceGetMemoryInfo", &api->memory),
        api->Resolve("nvmlDeviceGetTemperature", &api->temperature),
        api->Resolve("nvmlDeviceGetName", &api->name)}) {
    if (!s.ok()) return s;
  }
  (void)api->Resolve("nvmlErrorString", &api->error_string);
  const NvmlReturn init = api->init();
  if (init != kNvmlSuccess) {
    return absl::UnavailableError(absl::StrCat("nvml: nvmlInit_v2: ", api->ErrorText(init)));
  }
  api->initialized = true;

  NvmlDeviceHandle device = nullptr;
  const NvmlReturn found = pci_bus_id.empty()
                               ? api->handle_by_index(static_cast<unsigned int>(index), &device)
                               : api->handle_by_pci_bus_id(pci_bus_id.c_str(), &device);
  if (found != kNvmlSuccess) {
    const std::string what = pci_bus_id.empty() ? absl::StrCat("index ", index)
                                                : absl::StrCat("PCI bus id ", pci_bus_id);
    const std::string message =
        absl::StrCat("nvml: no device at ", what, ": ", api->ErrorText(found));
    if (found == kNvmlErrorNotFound || found == kNvmlErrorInvalidArgument) {
      return absl::NotFoundError(message);
    }
    return absl::UnavailableError(message);
  }
  char name[kNvmlNameBufferSize] = {};
  if (api->name(device, name, sizeof(name)) != kNvmlSuccess) name[0] = '\0';
  return std::unique_ptr<NvmlDevice>(new NvmlDevice(std::move(api), device, name));
}

NvmlDevice::NvmlDevice(std::unique_ptr<Api> api, void* device, std::string name)
    : api_(std::move(api)), device_(device), name_(std::move(name)) {}

NvmlDevice::~NvmlDevice() = default;

GpuSample NvmlDevice::Sample() const {
  GpuSample sample;
  NvmlUtilization utilization{};
  if (api_->utilization(device_, &utilization) == kNvmlSuccess) {
    sample.utilization_ratio = utilization.gpu / 100.0;
  }
  unsigned int milliwatts = 0;
  if (api_->power_milliwatts(device_, &milliwatts) == kNvmlSuccess) {
    sample.power_watts = milliwatts / 1000.0;
  }
  unsigned int celsius = 0;
  if (api_->temperature(device_, kNvmlTemperatureGpu, &celsius) == kNvmlSuccess) {
    sample.temperature_celsius = celsius;
  }
  NvmlMemory memory{};
  if (api_->memory(device_, &memory) == kNvmlSuccess) {
    sample.memory_used_bytes = static_cast<int64_t>(memory.used);
    sample.memory_total_bytes = static_cast<int64_t>(memory.total);
  }
  return sample;
}

}  // namespace turbovid::worker
