// Metric names, help, labels and buckets of turbovid-scheduler. Base units, bounded labels.
#include "scheduler/metrics.h"

namespace turbovid::scheduler {

using common::metrics::ExponentialBuckets;

SchedulerMetrics::SchedulerMetrics(common::metrics::Registry& r)
    : jobs_submitted(r.AddCounter("turbovid_jobs_submitted_total",
                                  "Jobs accepted by SubmitVideo (not counting idempotent retries).",
                                  {"model"})),
      jobs(r.AddCounter("turbovid_jobs_total", "Jobs that reached a final state.",
                        {"model", "variant", "state"})),
      jobs_failed(r.AddCounter("turbovid_jobs_failed_total",
                               "Jobs that failed, by reason: worker_lost, artifact, job_store, "
                               "catalog, other, or the worker's status code in lower case.",
                               {"model", "variant", "reason"})),
      submit_rejected(r.AddCounter("turbovid_submit_rejected_total",
                                   "SubmitVideo calls rejected, by status code.", {"code"})),
      quota_refusals(r.AddCounter("turbovid_quota_refusals_total",
                                  "Submits refused by a tenant quota (RESOURCE_EXHAUSTED), by reason.",
                                  {"reason"})),
      job_requeues(r.AddCounter("turbovid_job_requeues_total",
                                "Jobs put back in the queue, by reason.", {"reason"})),
      queue_depth(r.AddGauge("turbovid_queue_depth", "Jobs waiting in the queue.", {"model"})),
      queue_unservable_age(
          r.AddGauge("turbovid_queue_unservable_oldest_age_seconds",
                     "Wait of the oldest queued job that no registered worker serves (0: none).",
                     {"model", "variant"})),
      queue_oldest_age(r.AddGauge("turbovid_queue_oldest_age_seconds",
                                  "Seconds since the oldest queued job of the model was "
                                  "submitted; 0 when none waits.",
                                  {"model"})),
      jobs_active(
          r.AddGauge("turbovid_jobs_active", "Jobs assigned to or running on workers.", {"state"})),
      queue_wait(r.AddHistogram("turbovid_job_queue_wait_seconds",
                                "Time from submit to the first assignment.", {"model"},
                                ExponentialBuckets(0.001, 2.5, 16))),
      job_duration(r.AddHistogram("turbovid_job_duration_seconds",
                                  "Time from submit to a final state (end to end).",
                                  {"model", "variant", "node_class", "resolution"},
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
      up(r.AddGauge("turbovid_scheduler_up", "1 while the scheduler serves requests.")),
      db_integrity_ok(r.AddGauge("turbovid_scheduler_db_integrity_ok",
                                 "1 while the job store's last quick_check passed, else 0.")),
      db_integrity_failures(r.AddCounter("turbovid_scheduler_db_integrity_failures_total",
                                         "Periodic job-store integrity checks that failed.")),
      db_backup_last_success(
          r.AddGauge("turbovid_scheduler_db_backup_last_success_timestamp_seconds",
                     "Unix time of the last job-store backup written and checked.")),
      db_backup_last_size(r.AddGauge("turbovid_scheduler_db_backup_last_size_bytes",
                                     "Size of the last job-store backup.")),
      db_backup_failures(r.AddCounter("turbovid_scheduler_db_backup_failures_total",
                                      "Job-store backups that failed.")),
      db_backup_duration(r.AddHistogram("turbovid_scheduler_db_backup_duration_seconds",
                                        "Time to write, check and rename one backup.", {},
                                        ExponentialBuckets(0.001, 4, 12))),
      tls_reloads(r.AddCounter("turbovid_tls_reloads_total",
                               "Changed TLS certificate files: ok = in use for new connections, "
                               "refused = unreadable or key not matching (the previous stays).",
                               {"result"})),
      tls_certificate_expiry(
          r.AddGauge("turbovid_tls_certificate_expiry_timestamp_seconds",
                     "Unix time the TLS certificate in use expires (absent without TLS).")),
      placement_decisions(
          r.AddCounter("turbovid_placement_decisions_total",
                       "Assignments by node class and placement rule (cheapest_meeting_deadline, "
                       "earliest_completion, cheapest_idle).",
                       {"node_class", "reason"})),
      job_service(r.AddHistogram("turbovid_job_service_seconds",
                                 "Service time of succeeded jobs: assignment to result without the "
                                 "model load (what the service-time model learns).",
                                 {"model", "variant", "node_class"},
                                 ExponentialBuckets(0.05, 2, 16))),
      service_time_ratio(r.AddHistogram(
          "turbovid_service_time_prediction_ratio",
          "Measured service time over the model's expectation at placement, per succeeded job.",
          {"node_class"}, ExponentialBuckets(0.25, 1.25, 13))),
      job_cost(r.AddCounter("turbovid_job_cost_total",
                            "Price per hour x service time of succeeded jobs, in the currency of "
                            "the service-times table.",
                            {"model", "node_class"})),
      deadline_jobs(r.AddCounter("turbovid_deadline_jobs_total",
                                 "Succeeded jobs that carried a deadline, by whether they met it.",
                                 {"model", "result"})),
      pool_desired_workers(r.AddGauge(
          "turbovid_pool_desired_workers",
          "Workers of the node class the service-time model says the queue and the recent "
          "arrivals need to meet their deadlines (the autoscaling signal).",
          {"node_class"})),
      pool_offered_load(r.AddGauge("turbovid_pool_offered_load",
                                   "Expected seconds of work per second arriving for the node "
                                   "class (busy workers' worth), averaged over the load window.",
                                   {"node_class"})),
      pool_queued_work(r.AddGauge("turbovid_pool_queued_work_seconds",
                                  "Expected work of the queued jobs the model routes to the class.",
                                  {"node_class"})),
      node_class_price(r.AddGauge("turbovid_node_class_price_per_hour",
                                  "Configured price of one worker of the node class per hour.",
                                  {"node_class"})),
      service_time_estimate(r.AddGauge(
          "turbovid_service_time_estimate_seconds",
          "The service-time model's estimate for the model's default shape and the variant's "
          "default steps on one worker of the class.",
          {"model", "variant", "node_class"})),
      artifact_store_bytes(r.AddGauge("turbovid_artifact_store_bytes",
                                      "Bytes of the videos the artifact store holds.")),
      artifact_store_files(r.AddGauge("turbovid_artifact_store_files",
                                      "Videos the artifact store holds.")),
      artifact_store_max_bytes(r.AddGauge(
          "turbovid_artifact_store_max_bytes",
          "retention.artifact_store_max_bytes: submits are refused at or over it (0 = no limit).")),
      jobs_expired(r.AddCounter("turbovid_jobs_expired_total",
                                "Finished jobs removed by retention (row and video), by state.",
                                {"state"})),
      results_rejected(r.AddCounter(
          "turbovid_results_rejected_total",
          "Worker results refused by the result check, by reason: unparseable, frames, size, oversized, unreadable.",
          {"reason"})),
      progressive_first_bytes(r.AddHistogram(
          "turbovid_progressive_first_bytes_seconds",
          "Progressive jobs: seconds from the last denoising step reported by the worker to the "
          "first whole MP4 fragment the scheduler serves to GetVideo and HTTP readers.",
          {"model", "node_class"}, ExponentialBuckets(0.005, 2, 14))),
      tenant_gpu_seconds(r.AddGauge("turbovid_tenant_gpu_seconds",
                                    "GPU-seconds of the tenant's jobs finished in the last 24 h.",
                                    {"tenant"})),
      tenant_gpu_seconds_total(r.AddCounter(
          "turbovid_tenant_gpu_seconds_total",
          "GPU-seconds of the tenant's finished jobs (run time x GPUs) since the start.",
          {"tenant"})) {}

}  // namespace turbovid::scheduler
