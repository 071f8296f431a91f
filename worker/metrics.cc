// WorkerMetrics: names, help texts, labels and buckets of the worker's families, and the scrape
// hook that reads the attached device (backend memory, NVML).
#include "worker/metrics.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/logging.h"
#include "turbovid/v1/video_service.pb.h"

namespace turbovid::worker {
namespace {

using common::metrics::ExponentialBuckets;

// 1 ms .. 10 min in 1-2.5-5 steps: a tiny CPU model's stage or step takes milliseconds, a GPU
// stage 0.05-30 s, a 14B model's load or a long CPU denoise minutes.
std::vector<double> DurationBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,     2.5,    5,     10,   25,    50,   100, 250,  600};
}

}  // namespace

WorkerMetrics::WorkerMetrics(common::metrics::Registry& registry)
    : tasks_total(
          registry.AddCounter("turbovid_worker_tasks_total",
                              "Tasks finished by this worker, by model, variant and result.",
                              {"model", "variant", "node_class", "result"})),
      stage_duration_seconds(registry.AddHistogram(
          "turbovid_worker_stage_duration_seconds",
          "Wall time of one pipeline stage of a task, measured on the worker.",
          {"model", "variant", "node_class", "resolution", "stage"}, DurationBuckets())),
      denoise_step_seconds(
          registry.AddHistogram("turbovid_worker_denoise_step_seconds",
                                "Wall time of one denoising step, measured on the worker.",
                                {"model", "variant", "node_class", "resolution"},
                                DurationBuckets())),
      model_load_seconds(registry.AddHistogram("turbovid_model_load_seconds",
                                               "Time to load one model's weights at startup.",
                                               {"model", "variant"}, DurationBuckets())),
      video_bytes(registry.AddHistogram(
          "turbovid_worker_video_bytes", "Size of each MP4 the worker produced.",
          {"model", "variant"}, ExponentialBuckets(4096, 4, 10))),  // 4 KiB .. 1 GiB
      task_peak_memory_bytes(registry.AddHistogram(
          "turbovid_worker_task_peak_memory_bytes",
          "Peak memory of each task that finished generating: device peak (weights and the "
          "task's activations) on the CUDA backend; the process's peak RSS so far on the CPU "
          "backend.",
          {"model", "variant"}, ExponentialBuckets(1 << 24, 2, 15))),  // 16 MiB .. 256 GiB
      gpu_memory_used_bytes(registry.AddGauge(
          "turbovid_gpu_memory_used_bytes",
          "Memory the backend holds: the CUDA allocator's device memory (weights, cached blocks, "
          "activation arena); the process's resident set size on the CPU backend.")),
      gpu_memory_total_bytes(registry.AddGauge(
          "turbovid_gpu_memory_total_bytes",
          "Memory of the worker's device; host physical memory on the CPU backend.")),
      gpu_memory_peak_bytes(
          registry.AddGauge("turbovid_gpu_memory_peak_bytes",
                            "Peak memory of the last task that finished generating (see "
                            "turbovid_worker_task_peak_memory_bytes).")),
      connected(registry.AddGauge("turbovid_worker_connected",
                                  "1 while the worker is registered with the scheduler.")),
      busy(registry.AddGauge("turbovid_worker_busy", "1 while the worker runs a task.")),
      reconnects_total(registry.AddCounter(
          "turbovid_worker_reconnects_total",
          "Scheduler connections that failed or ended (each is followed by a retry).")),
      price_per_hour(registry.AddGauge(
          "turbovid_worker_price_per_hour",
          "What an hour of this worker's node costs (price_per_hour in its config; 0 = not set).",
          {"node_class"})),
      task_cost_total(registry.AddCounter(
          "turbovid_worker_task_cost_total",
          "Cost of the tasks run: each task's wall time times price_per_hour / 3600.",
          {"model", "variant", "node_class"})),
      registry_(registry) {
  registry.AddCollectHook([this] { SampleDevice(); });
}

void WorkerMetrics::AttachDevice(DeviceSource source) {
  std::lock_guard<std::mutex> lock(device_mu_);
  device_ = std::make_unique<DeviceSource>(std::move(source));
  if (device_->nvml == nullptr) return;
  // A quantity this board does not report (e.g. power on some models) gets no family at all, so
  // it is absent rather than a constant 0.
  const GpuSample first = device_->nvml->Sample();
  auto add = [&](common::metrics::GaugeFamily** family, bool supported, const char* name,
                 const char* help) {
    if (*family != nullptr) return;
    if (!supported) {
      TV_LOG(INFO) << "nvml: " << device_->nvml->name() << " does not report " << name;
      return;
    }
    *family = &registry_.AddGauge(name, help);
  };
  add(&gpu_utilization_ratio_, first.utilization_ratio.has_value(),
      "turbovid_gpu_utilization_ratio",
      "Share of the last NVML sample period (1/6 s to 1 s) in which a kernel ran on the device, "
      "0..1.");
  add(&gpu_power_watts_, first.power_watts.has_value(), "turbovid_gpu_power_watts",
      "Power draw of the whole board (NVML).");
  add(&gpu_temperature_celsius_, first.temperature_celsius.has_value(),
      "turbovid_gpu_temperature_celsius", "GPU die temperature (NVML).");
  add(&gpu_device_memory_used_bytes_, first.memory_used_bytes.has_value(),
      "turbovid_gpu_device_memory_used_bytes",
      "Device memory used by every process and context on the device, as nvidia-smi shows it "
      "(NVML).");
  SetNvmlGauges(first);
}

void WorkerMetrics::DetachDevice() {
  std::lock_guard<std::mutex> lock(device_mu_);
  device_.reset();
}

void WorkerMetrics::SampleDevice() {
  std::lock_guard<std::mutex> lock(device_mu_);
  if (device_ == nullptr) return;
  if (device_->used_bytes) {
    gpu_memory_used_bytes.Get().Set(static_cast<double>(device_->used_bytes()));
  }
  gpu_memory_total_bytes.Get().Set(static_cast<double>(device_->total_bytes));
  if (device_->nvml != nullptr) SetNvmlGauges(device_->nvml->Sample());
}

void WorkerMetrics::SetNvmlGauges(const GpuSample& s) {
  auto set = [](common::metrics::GaugeFamily* family, const auto& value) {
    if (family != nullptr && value.has_value()) family->Get().Set(static_cast<double>(*value));
  };
  set(gpu_utilization_ratio_, s.utilization_ratio);
  set(gpu_power_watts_, s.power_watts);
  set(gpu_temperature_celsius_, s.temperature_celsius);
  set(gpu_device_memory_used_bytes_, s.memory_used_bytes);
}

std::string StageLabel(int proto_stage) {
  std::string name = turbovid::v1::Stage_Name(static_cast<turbovid::v1::Stage>(proto_stage));
  if (name.rfind("STAGE_", 0) == 0) name = name.substr(6);
  return absl::AsciiStrToLower(name);
}

}  // namespace turbovid::worker
