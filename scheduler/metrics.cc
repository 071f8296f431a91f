// Metric names, help, labels and buckets of turbovid-scheduler. Base units, bounded labels.
#include "scheduler/metrics.h"

namespace turbovid::scheduler {

using common::metrics::ExponentialBuckets;

SchedulerMetrics::SchedulerMetrics(common::metrics::Registry& r)
    : jobs_submitted(r.AddCounter("turbovid_jobs_submitted_total",
                                  "Jobs accepted by SubmitVideo (not counting idempotent retries).",
                                  {"model"})),
      jobs(r.AddCounter("turbovid_jobs_total", "Jobs that reached a final state.",
                        {"model", "state"})),
      submit_rejected(r.AddCounter("turbovid_submit_rejected_total",
                                   "SubmitVideo calls rejected, by status code.", {"code"})),
      job_requeues(r.AddCounter("turbovid_job_requeues_total",
                                "Jobs put back in the queue, by reason.", {"reason"})),
      queue_depth(r.AddGauge("turbovid_queue_depth", "Jobs waiting in the queue.", {"model"})),
      jobs_active(
          r.AddGauge("turbovid_jobs_active", "Jobs assigned to or running on workers.", {"state"})),
      queue_wait(r.AddHistogram("turbovid_job_queue_wait_seconds",
                                "Time from submit to the first assignment.", {"model"},
                                ExponentialBuckets(0.001, 2.5, 16))),
      job_duration(r.AddHistogram("turbovid_job_duration_seconds",
                                  "Time from submit to a final state (end to end).", {"model"},
                                  ExponentialBuckets(0.05, 2, 16))),
      run_duration(r.AddHistogram("turbovid_job_run_seconds",
                                  "Time from the last assignment to the worker's result.",
                                  {"model", "node_class"}, ExponentialBuckets(0.05, 2, 16))),
      stage_duration(r.AddHistogram("turbovid_stage_duration_seconds",
                                    "Wall time of each job stage as reported by workers.",
                                    {"stage"}, ExponentialBuckets(0.005, 2.5, 14))),
      denoise_step(r.AddHistogram("turbovid_denoise_step_seconds",
                                  "Wall time of one denoising step.", {"model", "node_class"},
                                  ExponentialBuckets(0.005, 2, 16))),
      dispatch_latency(r.AddHistogram("turbovid_dispatch_latency_seconds",
                                      "Time from entering the queue to an assignment.", {},
                                      ExponentialBuckets(0.0001, 3, 16))),
      submit_latency(r.AddHistogram("turbovid_submit_latency_seconds",
                                    "SubmitVideo handling time, durable commit included.", {},
                                    ExponentialBuckets(0.0001, 2, 16))),
      rpc_duration(r.AddHistogram("turbovid_rpc_duration_seconds",
                                  "gRPC VideoService calls by method and status code.",
                                  {"method", "code"}, ExponentialBuckets(0.0001, 4, 12))),
      workers(r.AddGauge("turbovid_workers", "Connected workers by node class and state.",
                         {"node_class", "state"})),
      workers_lost(r.AddCounter("turbovid_workers_lost_total",
                                "Worker streams lost with a task or without.",
                                {"node_class", "reason"})),
      worker_memory_used(r.AddGauge("turbovid_worker_memory_used_bytes",
                                    "Device memory in use, summed over workers.", {"node_class"})),
      worker_memory_peak(r.AddGauge("turbovid_worker_memory_peak_bytes",
                                    "Peak device memory of the busiest worker.", {"node_class"})),
      job_peak_memory(r.AddHistogram("turbovid_job_peak_memory_bytes",
                                     "Peak device memory reported per finished job.",
                                     {"model", "node_class"}, ExponentialBuckets(1 << 26, 2, 14))),
      artifact_bytes(r.AddCounter("turbovid_artifact_bytes_total",
                                  "MP4 bytes committed to the artifact store.")),
      up(r.AddGauge("turbovid_scheduler_up", "1 while the scheduler serves requests.")) {}

}  // namespace turbovid::scheduler
