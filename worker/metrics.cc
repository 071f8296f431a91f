// WorkerMetrics: names, help texts, labels and buckets of the worker's families.
#include "worker/metrics.h"

#include "absl/strings/ascii.h"
#include "turbovid/v1/video_service.pb.h"

namespace turbovid::worker {

using common::metrics::ExponentialBuckets;

WorkerMetrics::WorkerMetrics(common::metrics::Registry& registry)
    : tasks_total(registry.AddCounter("turbovid_worker_tasks_total",
                                      "Tasks finished by this worker, by model and result.",
                                      {"model", "result"})),
      stage_duration_seconds(registry.AddHistogram(
          "turbovid_stage_duration_seconds", "Wall time of one pipeline stage of a task.",
          {"stage"}, ExponentialBuckets(0.005, 2.5, 14))),
      denoise_step_seconds(registry.AddHistogram("turbovid_denoise_step_seconds",
                                                 "Wall time of one denoising step.", {},
                                                 ExponentialBuckets(0.005, 2.0, 16))),
      gpu_memory_bytes(registry.AddGauge(
          "turbovid_gpu_memory_bytes",
          "Backend memory in use and the peak of the last task (host RSS on the CPU backend).",
          {"kind"})),
      model_load_seconds(registry.AddHistogram("turbovid_model_load_seconds",
                                               "Time to load one model's weights.", {"model"},
                                               ExponentialBuckets(0.01, 2.5, 14))),
      connected(registry.AddGauge("turbovid_worker_connected",
                                  "1 while the worker is registered with the scheduler.")),
      busy(registry.AddGauge("turbovid_worker_busy", "1 while the worker runs a task.")),
      reconnects_total(registry.AddCounter(
          "turbovid_worker_reconnects_total",
          "Scheduler connections that failed or ended (each is followed by a retry).")) {
  gpu_memory_bytes.WithLabels({"used"}).Set(0);
  gpu_memory_bytes.WithLabels({"peak"}).Set(0);
}

std::string StageLabel(int proto_stage) {
  std::string name = turbovid::v1::Stage_Name(static_cast<turbovid::v1::Stage>(proto_stage));
  if (name.rfind("STAGE_", 0) == 0) name = name.substr(6);
  return absl::AsciiStrToLower(name);
}

}  // namespace turbovid::worker
