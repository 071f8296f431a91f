// NvmlDevice: one GPU read through NVML (libnvidia-ml.so.1), loaded with dlopen at run time and
// never linked, so that the worker starts and serves /metrics on a host without the NVIDIA driver.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace turbovid::worker {

// The driver's NVML library (versioned soname: the unversioned name comes only with dev packages).
inline constexpr char kNvmlLibrary[] = "libnvidia-ml.so.1";

// One reading of a device. A field NVML cannot give on this device (NOT_SUPPORTED on some boards,
// or a query error) is left empty, so its series is left out rather than reported as 0.
struct GpuSample {
  // Share of NVML's last sample period (1/6 s to 1 s by board) in which a kernel ran, 0..1.
  std::optional<double> utilization_ratio;
  std::optional<double> power_watts;          // whole board
  std::optional<double> temperature_celsius;  // GPU die
  // Device memory in use by every process and context on the device, as nvidia-smi shows it.
  std::optional<int64_t> memory_used_bytes;
  std::optional<int64_t> memory_total_bytes;
};

// One NVML device handle and the library that made it. Thread-safe: NVML's calls are.
class NvmlDevice {
 public:
  // Loads `library` (a soname or a path), calls nvmlInit_v2 and opens the device whose PCI bus id
  // is `pci_bus_id` ("0000:65:00.0", any hex widths), or NVML device `index` when `pci_bus_id` is
  // empty. The bus id is the safe key: NVML numbers devices in PCI order and ignores
  // CUDA_VISIBLE_DEVICES, so its index and the CUDA device index can differ.
  // NotFound: no such library or device; Unimplemented: the library lacks an entry point;
  // Unavailable: nvmlInit_v2 failed (driver not loaded, no permission).
  static absl::StatusOr<std::unique_ptr<NvmlDevice>> Open(const std::string& library,
                                                          const std::string& pci_bus_id, int index);
  ~NvmlDevice();  // nvmlShutdown, then dlclose
  NvmlDevice(const NvmlDevice&) = delete;
  NvmlDevice& operator=(const NvmlDevice&) = delete;

  const std::string& name() const { return name_; }  // e.g. "NVIDIA H100 80GB HBM3"
  // Queries the device now (a few NVML calls, well under a millisecond each).
  GpuSample Sample() const;

 private:
  struct Api;  // the resolved entry points and the dlopen handle (nvml.cc)
  NvmlDevice(std::unique_ptr<Api> api, void* device, std::string name);

  std::unique_ptr<Api> api_;
  void* device_;  // nvmlDevice_t
  std::string name_;
};

}  // namespace turbovid::worker
