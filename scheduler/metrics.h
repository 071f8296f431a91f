// Every metric family of turbovid-scheduler (docs/design.md §12.5: all declared in metrics.cc).
#pragma once

#include "common/metrics.h"

namespace turbovid::scheduler {

struct SchedulerMetrics {
  explicit SchedulerMetrics(common::metrics::Registry& registry);

  common::metrics::CounterFamily& jobs_submitted;         // {model}
  common::metrics::CounterFamily& jobs;                   // {model, variant, state}: final states
  common::metrics::CounterFamily& jobs_failed;            // {model, variant, reason}
  common::metrics::CounterFamily& submit_rejected;        // {code}
  common::metrics::CounterFamily& quota_refusals;         // {reason}: submit_rate, active_jobs
  common::metrics::CounterFamily& job_requeues;           // {reason}
  common::metrics::GaugeFamily& queue_depth;              // {model}
  common::metrics::GaugeFamily& queue_unservable_age;     // {model, variant}
  common::metrics::GaugeFamily& queue_oldest_age;         // {model}: oldest QUEUED job's age
  common::metrics::GaugeFamily& jobs_active;              // {state}: assigned, running
  common::metrics::HistogramFamily& queue_wait;           // {model}
  // {model, variant, node_class, resolution}: submit to final state; node_class of the last
  // worker ("none" if it never ran), resolution = common::metrics::ResolutionLabel.
  common::metrics::HistogramFamily& job_duration;
  common::metrics::HistogramFamily& run_duration;         // {model, node_class}: assign to result
  common::metrics::HistogramFamily& stage_duration;       // {stage}
  common::metrics::HistogramFamily& denoise_step;         // {model, node_class}
  common::metrics::HistogramFamily& dispatch_latency;     // {}: queued (or requeued) to assigned
  common::metrics::HistogramFamily& submit_latency;       // {}: SubmitVideo handler
  common::metrics::HistogramFamily& rpc_duration;         // {method, code}
  common::metrics::GaugeFamily& workers;                  // {node_class, state}
  common::metrics::CounterFamily& workers_lost;           // {node_class, reason}
  common::metrics::GaugeFamily& worker_memory_used;       // {node_class}: sum over workers
  common::metrics::GaugeFamily& worker_memory_peak;       // {node_class}: max over workers
  common::metrics::HistogramFamily& job_peak_memory;      // {model, node_class}
  common::metrics::CounterFamily& artifact_bytes;         // {}
  common::metrics::GaugeFamily& up;                       // {}: 1 while serving
  common::metrics::GaugeFamily& db_integrity_ok;          // {}: 1 after a passed quick_check
  common::metrics::CounterFamily& db_integrity_failures;  // {}
  common::metrics::GaugeFamily& db_backup_last_success;   // {}: unix seconds
  common::metrics::GaugeFamily& db_backup_last_size;      // {}: bytes
  common::metrics::CounterFamily& db_backup_failures;     // {}
  common::metrics::HistogramFamily& db_backup_duration;   // {}
  common::metrics::CounterFamily& tls_reloads;            // {result}: ok, refused
  common::metrics::GaugeFamily& tls_certificate_expiry;   // {}: unix seconds
  // Fleet economics (docs/fleet.md).
  common::metrics::CounterFamily& placement_decisions;   // {node_class, reason}
  common::metrics::HistogramFamily& job_service;         // {model, variant, node_class}
  common::metrics::HistogramFamily& service_time_ratio;  // {node_class}: measured / expected
  common::metrics::CounterFamily& job_cost;              // {model, node_class}
  common::metrics::CounterFamily& deadline_jobs;         // {model, result}: met, missed
  common::metrics::GaugeFamily& pool_desired_workers;    // {node_class}
  common::metrics::GaugeFamily& pool_offered_load;       // {node_class}
  common::metrics::GaugeFamily& pool_queued_work;        // {node_class}
  common::metrics::GaugeFamily& node_class_price;        // {node_class}
  common::metrics::GaugeFamily& service_time_estimate;   // {model, variant, node_class}
  // Retention, the artifact store and the result check (docs/operations.md).
  common::metrics::GaugeFamily& artifact_store_bytes;       // {}
  common::metrics::GaugeFamily& artifact_store_files;       // {}
  common::metrics::GaugeFamily& artifact_store_max_bytes;   // {}: the configured limit, 0 = none
  common::metrics::CounterFamily& jobs_expired;             // {state}
  common::metrics::CounterFamily& results_rejected;         // {reason}
  // Progressive output: last denoising step → first fragment servable to GetVideo readers.
  common::metrics::HistogramFamily& progressive_first_bytes;  // {model, node_class}
  common::metrics::GaugeFamily& tenant_gpu_seconds;         // {tenant}: the last 24 h
  common::metrics::CounterFamily& tenant_gpu_seconds_total;  // {tenant}
};

}  // namespace turbovid::scheduler
