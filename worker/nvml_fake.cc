// Test only: a stand-in libnvidia-ml with the entry points NvmlDevice resolves and canned readings
// (one device, PCI bus id 0000:65:00.0; temperature NOT_SUPPORTED). TV_FAKE_NVML_INIT_FAIL=1 makes
// nvmlInit_v2 fail as it does when the driver is not loaded.
#include <cstdlib>
#include <cstring>

namespace {

constexpr int kSuccess = 0;
constexpr int kErrorUninitialized = 1;
constexpr int kErrorInvalidArgument = 2;
constexpr int kErrorNotSupported = 3;
constexpr int kErrorNotFound = 6;
constexpr int kErrorDriverNotLoaded = 9;

int live_inits = 0;  // nvmlInit_v2 calls not yet matched by nvmlShutdown
char the_device;     // its address is the one device handle

struct Utilization {
  unsigned int gpu;
  unsigned int memory;
};
struct Memory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

bool IsDevice(void* device) { return device == &the_device; }

}  // namespace

extern "C" {

int FakeNvmlLiveInits() { return live_inits; }

int nvmlInit_v2() {
  const char* fail = std::getenv("TV_FAKE_NVML_INIT_FAIL");
  if (fail != nullptr && std::strcmp(fail, "1") == 0) return kErrorDriverNotLoaded;
  ++live_inits;
  return kSuccess;
}

int nvmlShutdown() {
  if (live_inits == 0) return kErrorUninitialized;
  --live_inits;
  return kSuccess;
}

const char* nvmlErrorString(int result) {
  return result == kErrorDriverNotLoaded ? "Driver Not Loaded" : "Fake NVML error";
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (live_inits == 0) return kErrorUninitialized;
  if (index != 0) return kErrorInvalidArgument;
  *device = &the_device;
  return kSuccess;
}

int nvmlDeviceGetHandleByPciBusId_v2(const char* pci_bus_id, void** device) {
  if (live_inits == 0) return kErrorUninitialized;
  if (std::strcmp(pci_bus_id, "0000:65:00.0") != 0) return kErrorNotFound;
  *device = &the_device;
  return kSuccess;
}

int nvmlDeviceGetUtilizationRates(void* device, Utilization* utilization) {
  if (!IsDevice(device)) return kErrorInvalidArgument;
  *utilization = {42, 17};
  return kSuccess;
}

int nvmlDeviceGetPowerUsage(void* device, unsigned int* milliwatts) {
  if (!IsDevice(device)) return kErrorInvalidArgument;
  *milliwatts = 312500;
  return kSuccess;
}

int nvmlDeviceGetMemoryInfo(void* device, Memory* memory) {
  if (!IsDevice(device)) return kErrorInvalidArgument;
  *memory = {80ull << 30, 60ull << 30, 20ull << 30};
  return kSuccess;
}

int nvmlDeviceGetTemperature(void* device, int /*sensor*/, unsigned int* /*celsius*/) {
  if (!IsDevice(device)) return kErrorInvalidArgument;
  return kErrorNotSupported;
}

int nvmlDeviceGetName(void* device, char* name, unsigned int length) {
  if (!IsDevice(device)) return kErrorInvalidArgument;
  std::strncpy(name, "Fake GPU 80GB", length);
  name[length - 1] = '\0';
  return kSuccess;
}

}  // extern "C"
