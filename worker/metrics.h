// Every metric family of turbovid-worker, declared in one place (docs/design.md §12.5).
#pragma once

#include <string>

#include "common/metrics.h"

namespace turbovid::worker {

struct WorkerMetrics {
  explicit WorkerMetrics(common::metrics::Registry& registry);

  // turbovid_worker_tasks_total{model,result}: result = succeeded|failed|cancelled|returned.
  common::metrics::CounterFamily& tasks_total;
  // turbovid_stage_duration_seconds{stage}: wall time of each pipeline stage.
  common::metrics::HistogramFamily& stage_duration_seconds;
  // turbovid_denoise_step_seconds: wall time of one denoising step.
  common::metrics::HistogramFamily& denoise_step_seconds;
  // turbovid_gpu_memory_bytes{kind=used|peak}: backend memory (host RSS on the CPU backend).
  common::metrics::GaugeFamily& gpu_memory_bytes;
  // turbovid_model_load_seconds{model}: time to load one model's weights.
  common::metrics::HistogramFamily& model_load_seconds;
  // turbovid_worker_connected: 1 while registered with the scheduler.
  common::metrics::GaugeFamily& connected;
  // turbovid_worker_busy: 1 while a task runs.
  common::metrics::GaugeFamily& busy;
  // turbovid_worker_reconnects_total: connection attempts to the scheduler that failed or ended.
  common::metrics::CounterFamily& reconnects_total;
};

// Lower-case stage label for the stage histogram ("denoising", "uploading", ...).
std::string StageLabel(int proto_stage);

}  // namespace turbovid::worker
