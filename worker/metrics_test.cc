// WorkerMetrics: the device gauges with and without NVML (the fake libnvidia-ml), label order of
// the task families, and promtool's verdict on the whole exposition when promtool is installed.
#include "worker/metrics.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "turbovid/v1/video_service.pb.h"

namespace turbovid::worker {
namespace {

constexpr const char* kNvmlFamilies[] = {
    "turbovid_gpu_utilization_ratio", "turbovid_gpu_power_watts",
    "turbovid_gpu_temperature_celsius", "turbovid_gpu_device_memory_used_bytes"};

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

DeviceSource HostSource(int64_t used, int64_t total) {
  DeviceSource source;
  source.used_bytes = [used] { return used; };
  source.total_bytes = total;
  return source;
}

// One of every task-level observation, as a finished task leaves them.
void ObserveTask(WorkerMetrics& metrics) {
  metrics.tasks_total.WithLabels({"tiny-t2v", "turbo", "cpu", "succeeded"}).Increment();
  metrics.stage_duration_seconds.WithLabels({"tiny-t2v", "turbo", "cpu", "480p", "denoising"})
      .Observe(0.02);
  metrics.denoise_step_seconds.WithLabels({"tiny-t2v", "turbo", "cpu", "480p"}).Observe(0.01);
  metrics.price_per_hour.WithLabels({"cpu"}).Set(3.6);
  metrics.task_cost_total.WithLabels({"tiny-t2v", "turbo", "cpu"}).Increment(0.25);
  metrics.model_load_seconds.WithLabels({"tiny-t2v", "turbo"}).Observe(0.3);
  metrics.video_bytes.WithLabels({"tiny-t2v", "turbo"}).Observe(5000);
  metrics.task_peak_memory_bytes.WithLabels({"tiny-t2v", "turbo"}).Observe(123456789);
  metrics.gpu_memory_peak_bytes.Get().Set(123456789);
}

TEST(WorkerMetricsTest, WithoutNvmlOnlyTheMemoryGauges) {
  common::metrics::Registry registry;
  WorkerMetrics metrics(registry);
  metrics.AttachDevice(HostSource(123, 456));
  const std::string text = registry.Render();
  EXPECT_TRUE(Has(text, "\nturbovid_gpu_memory_used_bytes 123\n")) << text;
  EXPECT_TRUE(Has(text, "\nturbovid_gpu_memory_total_bytes 456\n")) << text;
  for (const char* family : kNvmlFamilies) EXPECT_FALSE(Has(text, family)) << family;
}

TEST(WorkerMetricsTest, SampledOnEveryScrapeUntilDetached) {
  common::metrics::Registry registry;
  WorkerMetrics metrics(registry);
  int calls = 0;
  DeviceSource source;
  source.used_bytes = [&calls] { return int64_t{1000} * ++calls; };
  metrics.AttachDevice(std::move(source));
  EXPECT_TRUE(Has(registry.Render(), "\nturbovid_gpu_memory_used_bytes 1000\n"));
  EXPECT_TRUE(Has(registry.Render(), "\nturbovid_gpu_memory_used_bytes 2000\n"));
  metrics.DetachDevice();
  EXPECT_TRUE(Has(registry.Render(), "\nturbovid_gpu_memory_used_bytes 2000\n"));
  EXPECT_EQ(calls, 2);
}

TEST(WorkerMetricsTest, NvmlGaugesFromTheFakeLibrary) {
  common::metrics::Registry registry;
  WorkerMetrics metrics(registry);
  for (int attach = 0; attach < 2; ++attach) {  // a second attach registers nothing twice
    DeviceSource source = HostSource(7, 8);
    absl::StatusOr<std::unique_ptr<NvmlDevice>> nvml =
        NvmlDevice::Open(TV_FAKE_NVML, "0000:65:00.0", 0);
    ASSERT_TRUE(nvml.ok()) << nvml.status();
    source.nvml = std::move(*nvml);
    metrics.AttachDevice(std::move(source));
    const std::string text = registry.Render();
    EXPECT_TRUE(Has(text, "\nturbovid_gpu_utilization_ratio 0.42\n")) << text;
    EXPECT_TRUE(Has(text, "\nturbovid_gpu_power_watts 312.5\n")) << text;
    EXPECT_TRUE(Has(text, "\nturbovid_gpu_device_memory_used_bytes 21474836480\n")) << text;
    // The fake reports no temperature: no family, rather than a constant 0.
    EXPECT_FALSE(Has(text, "turbovid_gpu_temperature_celsius")) << text;
    metrics.DetachDevice();
  }
}

TEST(WorkerMetricsTest, TaskFamiliesCarryTheirLabels) {
  common::metrics::Registry registry;
  WorkerMetrics metrics(registry);
  ObserveTask(metrics);
  const std::string text = registry.Render();
  for (const char* line : {
           "turbovid_worker_tasks_total{model=\"tiny-t2v\",variant=\"turbo\",node_class=\"cpu\","
           "result=\"succeeded\"} 1",
           "turbovid_worker_stage_duration_seconds_count{model=\"tiny-t2v\",variant=\"turbo\","
           "node_class=\"cpu\",resolution=\"480p\",stage=\"denoising\"} 1",
           "turbovid_worker_denoise_step_seconds_count{model=\"tiny-t2v\",variant=\"turbo\","
           "node_class=\"cpu\",resolution=\"480p\"} 1",
           "turbovid_worker_price_per_hour{node_class=\"cpu\"} 3.6",
           "turbovid_worker_task_cost_total{model=\"tiny-t2v\",variant=\"turbo\","
           "node_class=\"cpu\"} 0.25",
           "turbovid_model_load_seconds_count{model=\"tiny-t2v\",variant=\"turbo\"} 1",
           "turbovid_worker_video_bytes_sum{model=\"tiny-t2v\",variant=\"turbo\"} 5000",
           "turbovid_worker_task_peak_memory_bytes_count{model=\"tiny-t2v\",variant=\"turbo\"} 1",
           "turbovid_gpu_memory_peak_bytes 123456789",
       }) {
    EXPECT_TRUE(Has(text, std::string("\n") + line + "\n")) << line << "\n" << text;
  }
  EXPECT_EQ(StageLabel(v1::STAGE_DENOISING), "denoising");
  EXPECT_EQ(StageLabel(v1::STAGE_UPLOADING), "uploading");
}

#ifdef TV_PROMTOOL
TEST(WorkerMetricsTest, PromtoolAcceptsExpositionWithAndWithoutNvml) {
  for (bool with_nvml : {false, true}) {
    common::metrics::Registry registry;
    WorkerMetrics metrics(registry);
    DeviceSource source = HostSource(7, 8);
    if (with_nvml) {
      absl::StatusOr<std::unique_ptr<NvmlDevice>> nvml = NvmlDevice::Open(TV_FAKE_NVML, "", 0);
      ASSERT_TRUE(nvml.ok()) << nvml.status();
      source.nvml = std::move(*nvml);
    }
    metrics.AttachDevice(std::move(source));
    ObserveTask(metrics);
    const std::string path = ::testing::TempDir() + "/tv_worker_metrics_test.prom";
    {
      std::ofstream out(path);
      out << registry.Render();
    }
    const std::string command = std::string(TV_PROMTOOL) + " check metrics < " + path;
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    std::remove(path.c_str());
  }
}
#endif

}  // namespace
}  // namespace turbovid::worker
