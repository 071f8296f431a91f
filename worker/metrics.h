// Every metric family of turbovid-worker, declared in one place (docs/design.md §12.5), and the
// device gauges sampled on every scrape (backend memory, NVML utilisation, power, temperature).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/metrics.h"
#include "worker/nvml.h"

namespace turbovid::worker {

// What the device gauges read on each scrape, from WorkerMetrics::AttachDevice on.
struct DeviceSource {
  // Memory the worker's backend holds now: the CUDA backend's device allocator (weights, cached
  // blocks, activation arena), or the process's resident set on the CPU backend.
  std::function<int64_t()> used_bytes;
  int64_t total_bytes = 0;           // device memory (CUDA) or host RAM (CPU backend)
  std::unique_ptr<NvmlDevice> nvml;  // null: the NVML families are not exported at all
};

struct WorkerMetrics {
  explicit WorkerMetrics(common::metrics::Registry& registry);
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // Samples `source` on every scrape until DetachDevice. With `source.nvml` it also registers
  // (once per process) and sets the turbovid_gpu_{utilization_ratio,power_watts,
  // temperature_celsius,device_memory_used_bytes} gauges; without it they stay absent.
  void AttachDevice(DeviceSource source);
  // Stops sampling (before what `source` reads goes away); the gauges keep their last values.
  void DetachDevice();

  // turbovid_worker_tasks_total{model,variant,node_class,result}: result = succeeded|failed|
  // cancelled|returned|lost.
  common::metrics::CounterFamily& tasks_total;
  // turbovid_worker_stage_duration_seconds{model,variant,node_class,resolution,stage};
  // resolution = common::metrics::ResolutionLabel of the job's size.
  common::metrics::HistogramFamily& stage_duration_seconds;
  // turbovid_worker_denoise_step_seconds{model,variant,node_class,resolution}.
  common::metrics::HistogramFamily& denoise_step_seconds;
  // turbovid_model_load_seconds{model,variant}: time to load one model's weights.
  common::metrics::HistogramFamily& model_load_seconds;
  // turbovid_worker_video_bytes{model,variant}: size of each MP4 the worker produced.
  common::metrics::HistogramFamily& video_bytes;
  // turbovid_worker_task_peak_memory_bytes{model,variant}: each generated task's memory peak.
  common::metrics::HistogramFamily& task_peak_memory_bytes;
  // turbovid_gpu_memory_{used,total,peak}_bytes: see DeviceSource; peak = the last task's.
  common::metrics::GaugeFamily& gpu_memory_used_bytes;
  common::metrics::GaugeFamily& gpu_memory_total_bytes;
  common::metrics::GaugeFamily& gpu_memory_peak_bytes;
  // turbovid_worker_connected: 1 while registered with the scheduler.
  common::metrics::GaugeFamily& connected;
  // turbovid_worker_busy: 1 while a task runs.
  common::metrics::GaugeFamily& busy;
  // turbovid_worker_reconnects_total: connection attempts to the scheduler that failed or ended.
  common::metrics::CounterFamily& reconnects_total;
  // turbovid_worker_price_per_hour{node_class}: the config's price_per_hour (the node's hour).
  common::metrics::GaugeFamily& price_per_hour;
  // turbovid_worker_task_cost_total{model,variant,node_class}: task wall time x price per second.
  common::metrics::CounterFamily& task_cost_total;

 private:
  void SampleDevice();                          // the registry's collect hook
  void SetNvmlGauges(const GpuSample& sample);  // under device_mu_

  common::metrics::Registry& registry_;
  std::mutex device_mu_;
  std::unique_ptr<DeviceSource> device_;  // null while detached
  // The NVML gauges, registered by the first AttachDevice with NVML; null before.
  common::metrics::GaugeFamily* gpu_utilization_ratio_ = nullptr;
  common::metrics::GaugeFamily* gpu_power_watts_ = nullptr;
  common::metrics::GaugeFamily* gpu_temperature_celsius_ = nullptr;
  common::metrics::GaugeFamily* gpu_device_memory_used_bytes_ = nullptr;
};

// Lower-case stage label for the stage histogram ("denoising", "uploading", ...).
std::string StageLabel(int proto_stage);

}  // namespace turbovid::worker
