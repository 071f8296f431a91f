// The control plane: durable jobs, per-model priority queues, the worker registry, placement,
// leases, cancellation, progress fan-out to watchers and artifact uploads. Implements the
// backends of server/ (client API and WorkerHub). One mutex guards all in-memory state; the
// job store is written under it so the database sees transitions in order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "scheduler/artifact_store.h"
#include "scheduler/autoscale.h"
#include "scheduler/config.h"
#include "scheduler/cost_placement.h"
#include "scheduler/job_queue.h"
#include "scheduler/job_store.h"
#include "scheduler/metrics.h"
#include "scheduler/model_catalog.h"
#include "scheduler/placement.h"
#include "scheduler/service_time.h"
#include "server/backend.h"

namespace turbovid::scheduler {

namespace v1 = ::turbovid::v1;

class Scheduler final : public server::VideoBackend,
                        public server::WorkerHubBackend,
                        public server::FleetBackend {
 public:
  // Recovers from the store: interrupted jobs go back to the queue with their attempts kept.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerConfig& config,
                                                           ModelCatalog catalog,
                                                           std::unique_ptr<JobStore> store,
                                                           std::unique_ptr<ArtifactStore> artifacts,
                                                           SchedulerMetrics* metrics);
  ~Scheduler() override;

  // Starts the lease sweeper thread.
  void Start();
  // Rejects new submits, ends watch streams and closes worker streams (jobs stay durable).
  void BeginShutdown();
  // Joins the sweeper, commits the queued submits and checkpoints the store.
  void Stop();

  // server::VideoBackend
  // Admission, then the store's group commit; `done` runs once the job is committed, on the
  // thread that committed it (this one, or one whose commit was running when this one queued).
  void SubmitVideoAsync(const v1::SubmitVideoRequest& request, server::SubmitDone done) override;
  absl::StatusOr<v1::Job> SubmitVideo(const v1::SubmitVideoRequest& request) override;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) override;
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request) override;
  // At most max_watch_streams_per_client per `client` and max_watch_streams in all, else
  // RESOURCE_EXHAUSTED.
  absl::StatusOr<uint64_t> WatchJob(const std::string& job_id, const std::string& client,
                                    server::JobListener listener) override;
  void Unwatch(uint64_t watch_id) override;
  absl::StatusOr<std::unique_ptr<server::ByteSource>> OpenVideo(const std::string& job_id) override;
  absl::Status DeleteJob(const std::string& job_id) override;
  absl::StatusOr<v1::ListModelsResponse> ListModels() override;
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers() override;

  // server::WorkerHubBackend
  // A worker id held by a connected worker is taken over only by a connection with the same
  // credential (a restarted worker); any other gets ALREADY_EXISTS (docs/design.md §5.10).
  std::unique_ptr<server::WorkerSession> OpenSession(
      server::WorkerLink* link, const std::string& peer,
      const server::WorkerCredential& credential) override;

  // server::FleetBackend (scheduler_fleet.cc): node classes, prices, the autoscaling signal and
  // the service-time model's estimates.
  absl::StatusOr<v1::GetFleetResponse> GetFleet() override;

  // Drops workers silent for longer than the lease and times out unanswered cancels; the
  // sweeper calls it with the steady clock, tests with any time.
  void ExpireLeases(double now_steady_seconds);
  // Marks queued jobs that no registered worker serves (Job.status_message), clears the mark
  // when one does, fails those marked longer than unservable_job_timeout_seconds. The sweeper
  // calls it with the steady clock, tests with any time.
  void CheckUnservable(double now_steady_seconds);
  static double SteadyNow();

  // Stores the final rows the store refused before (a full disk), each with its own backoff;
  // the sweeper calls it without the main lock held, tests with any time.
  void RetryPendingFinishes(double now_steady_seconds);
  // Jobs finished in memory whose final row is not stored yet.
  int PendingFinishes() const;

  // Retention (scheduler_retention.cc): removes the rows and videos of jobs final for longer
  // than retention.finished_job_ttl_seconds at `now_unix`; returns how many. Jobs not final (or
  // whose final row is not stored yet) are never touched. The sweeper calls it every
  // retention.sweep_interval_seconds, tests with any time.
  int ExpireFinished(double now_unix);

  // Workers connected and registered (for readiness and tests).
  int RegisteredWorkers() const;
  // Live: the sweeper (which takes the main lock) ran recently, so the loop is not stuck.
  bool Live() const;
  // Sets the gauges computed from live state (queue depth, workers, memory); a collect hook.
  void CollectMetrics();

 private:
  struct ActiveJob;
  struct Worker;
  class Session;

  Scheduler(const SchedulerConfig& config, ModelCatalog catalog, std::unique_ptr<JobStore> store,
            std::unique_ptr<ArtifactStore> artifacts, SchedulerMetrics* metrics,
            ServiceTimeTable service_times);
  absl::Status Recover();
  void SweepLoop();

  // A submit past admission, its queue slot reserved, waiting for the store.
  struct AdmittedSubmit {
    StoredJob stored;
    PlacementRequest placement;
  };
  // Validation and the queue reservation. A Job is the answer already (the job stored for a
  // retried client request id, looked up here when the queue is full).
  absl::StatusOr<std::variant<v1::Job, AdmittedSubmit>> AdmitSubmit(
      const v1::SubmitVideoRequest& request);
  // After the insert committed (or failed): releases the reservation, queues the new job.
  absl::StatusOr<v1::Job> FinishSubmit(const PlacementRequest& placement,
                                       const std::string& tenant,
                                       absl::StatusOr<JobStore::InsertResult> inserted);
  // Per-tenant quotas (config quotas); counts a refusal in the metrics.
  absl::Status CheckQuotasLocked(const std::string& tenant);

  // Retention, the artifact store's limit, GPU accounting, the result check
  // (scheduler_retention.cc).
  // RESOURCE_EXHAUSTED while the artifact store holds retention.artifact_store_max_bytes or more.
  absl::Status CheckArtifactStoreLimit() const;
  // The GPU-seconds of the last 24 hours from the store (jobs finished before a restart).
  absl::Status LoadGpuUsage();
  // A result of the job's current attempt arrived: adds its run time x GPUs to the job.
  void CountRunLocked(ActiveJob& job, const v1::TaskResult& result, double now_steady);
  // The job is final: its GPU-seconds go to its tenant's ledger and counter.
  void ChargeGpuLocked(const ActiveJob& job);
  // What a complete upload must be: the job's frames and size, and who sent it.
  struct ResultExpectation {
    std::string worker_id;
    int frames = 0;
    int width = 0;
    int height = 0;
  };
  // Parses the upload as MP4 and compares its video track with `expect`: OK, or the reason
  // (FailedPrecondition "worker W: ..."; `reason` gets the metric label).
  static absl::Status CheckResultVideo(ArtifactWriter& upload, const ResultExpectation& expect,
                                       std::string* reason);
  // An attempt whose video failed the check: counted as a lost attempt (requeued, or FAILED
  // with the check's error after max_attempts).
  void RejectResultLocked(ActiveJob& job, const absl::Status& check, const std::string& reason);
  void CollectRetentionMetricsLocked();

  // Progressive output (scheduler_progressive.cc, docs/api.md).
  std::shared_ptr<server::LiveVideo> LiveOfLocked(ActiveJob& job);
  // A chunk of a progressive job's upload, appended to the artifact already: whole fragments go
  // to the job's readers once checked (the result check's rules, per fragment). False when the
  // stream failed the check: the attempt was cancelled and rejected, `job` may be gone.
  bool StreamChunkLocked(Worker& worker, ActiveJob& job, const std::string& data);
  // Cancels the attempt on its worker and rejects it as a bad result; returns false.
  bool RejectStreamLocked(Worker& worker, ActiveJob& job, const absl::Status& check,
                          const std::string& reason);
  // Ends the current attempt's stream for its readers (OK only with the whole file relayed) and
  // forgets it.
  void EndStreamLocked(ActiveJob& job, const absl::Status& status);

  // Client side (scheduler.cc).
  v1::Job ToProtoLocked(const ActiveJob& job) const;
  static v1::Job StoredToProto(const StoredJob& job);
  void NotifyLocked(const ActiveJob& job);
  // The queue of `model_id` gained or lost the entry (priority, seq): only the watched queued
  // jobs behind it moved, and only their watchers hear of it.
  void NotifyQueueLocked(const std::string& model_id, int priority, int64_t seq);
  void PersistLocked(const ActiveJob& job);
  // A final row the store refused: kept (and answered by GetJob) until a retry stores it.
  struct PendingFinish {
    StoredJob stored;
    double next_try_steady = 0;
    double backoff_seconds = 0;
  };
  static constexpr double kFinishRetryFirstSeconds = 0.1;
  static constexpr double kFinishRetryMaxSeconds = 30;
  void EnqueueLocked(ActiveJob& job);
  // Returns the final snapshot; `job` is destroyed. `reason` labels a failure in
  // turbovid_jobs_failed_total; empty = derived from the error's prefix (FailureReason).
  v1::Job FinalizeLocked(ActiveJob& job, v1::JobState state, const std::string& error,
                         const std::string& reason = "");
  void RequeueLocked(ActiveJob& job, const std::string& reason, bool count_loss);
  double EtaLocked(const ActiveJob& job) const;

  // Worker side (scheduler_workers.cc).
  absl::Status HandleMessage(uint64_t session_id, const v1::WorkerMessage& message);
  void HandleClosed(uint64_t session_id);
  absl::Status HandleRegister(Worker& worker, const v1::RegisterWorker& message);
  void HandleProgress(Worker& worker, const v1::TaskProgress& progress);
  absl::Status HandleChunk(Worker& worker, const v1::ResultChunk& chunk);
  // The upload of a successful result, complete, taken from its job to be committed without
  // the lock; nullptr when there is none (HandleResult then decides under the lock).
  std::unique_ptr<ArtifactWriter> TakeCompleteUpload(uint64_t session_id,
                                                     const v1::TaskResult& result,
                                                     ResultExpectation* expect);
  // `committed`: the outcome of the Commit of the upload TakeCompleteUpload took, if it took one;
  // `rejected`: not OK when that upload failed the result check (it was not committed).
  void HandleResult(Worker& worker, const v1::TaskResult& result,
                    std::optional<absl::StatusOr<int64_t>> committed,
                    const absl::Status& rejected = absl::OkStatus(),
                    const std::string& rejected_reason = "");
  void HandleReturned(Worker& worker, const v1::TaskReturned& returned);
  ActiveJob* TaskOfLocked(const Worker& worker, const std::string& task_id, int attempt);
  // Frees the job's worker slot and drops its hold on a pool.
  void ReleaseTaskLocked(ActiveJob& job);
  void DropWorkerLocked(uint64_t session_id, const std::string& reason, bool close_link);
  // `arrived`: a job just queued; beyond the scan window it is placed behind the held work.
  void DispatchLocked(ActiveJob* arrived = nullptr);
  void AssignLocked(ActiveJob& job, Worker& worker, const PlacementChoice& choice);

  // Fleet economics (scheduler_fleet.cc).
  ServiceKey ServiceKeyOf(const ActiveJob& job) const;
  // The offered load of the class the model routes a new job to.
  void CountArrivalLocked(const ActiveJob& job);
  // A succeeded job: the service-time model, cost and deadline metrics.
  void RecordServiceLocked(const ActiveJob& job, double now_steady);
  struct FleetDemand {
    std::vector<ClassDemand> demand;  // parallel to class_capacity_
    std::vector<ClassLoad> loads;
  };
  FleetDemand DemandLocked(double now_unix) const;
  // Moves a queued job's hold to (node class, layout) for `seconds` of work; "" = none.
  void HoldLocked(ActiveJob& job, const std::string& node_class, const std::string& layout,
                  double seconds);
  void CollectFleetMetricsLocked();

  // Unservable jobs and listings (scheduler_admin.cc).
  // Whether a registered worker lists the job's variant on a node class that can run it.
  bool ServedLocked(const PlacementRequest& request) const;
  // Marks (or unmarks) one queued job; true when its mark changed. `cache` (may be null) keeps
  // ServedLocked's answer per (model, variant) across the jobs of one sweep.
  bool MarkUnservableLocked(ActiveJob& job, double now,
                            std::map<std::pair<std::string, std::string>, bool>* cache = nullptr);
  std::string StatusMessageLocked(const ActiveJob& job) const;
  // Sets turbovid_queue_unservable_oldest_age_seconds (a collect hook's part).
  void CollectUnservableLocked(double now);
  // A catalog check of the models a worker lists; `field` names them in the error.
  absl::Status CheckWorkerModels(const google::protobuf::RepeatedPtrField<v1::ModelVariant>& models,
                                 const char* field) const;

  const SchedulerConfig config_;
  const ModelCatalog catalog_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  SchedulerMetrics* metrics_;

  mutable std::mutex mu_;
  bool shutting_down_ = false;
  std::unordered_map<std::string, std::unique_ptr<ActiveJob>> active_;  // not final
  std::map<std::string, JobQueue> queues_;                              // by model id
  std::map<std::string, int> reserved_;  // submits between the admission check and the commit
  TenantQuotas quotas_;                   // guarded by mu_
  std::map<std::string, int> tenant_reserved_;  // reserved_ by tenant (quotas.max_active_jobs)
  std::map<std::string, PendingFinish> pending_finishes_;  // by job id
  StepStats step_stats_;
  ServiceTimeModel service_model_;
  std::vector<ClassCapacity> class_capacity_;  // every node class of the catalog
  std::vector<DecayingRate> offered_load_;     // parallel to class_capacity_
  // Expected work of the queued jobs held for a busy pool, by (node class, layout).
  std::map<std::pair<std::string, std::string>, double> held_seconds_;
  std::map<std::pair<std::string, std::string>, double> post_denoise_seconds_;  // EWMA
  std::set<std::string> seen_node_classes_;  // gauges of classes that left are set to 0
  // (model, variant) whose unservable-age gauge was set: reset to 0 once none waits.
  std::set<std::pair<std::string, std::string>> unservable_gauges_;
  std::unordered_map<uint64_t, std::unique_ptr<Worker>> workers_;  // by session id
  std::unordered_map<std::string, uint64_t> worker_ids_;           // worker id -> session id
  uint64_t next_session_id_ = 1;
  struct Watch {
    std::string job_id;
    std::string client;
    server::JobListener listener;
  };
  // Queue order of a watched job: (-priority, seq, job id), so a set of them iterates in
  // dispatch order and "behind an entry" is an upper_bound.
  using QueueKey = std::tuple<int, int64_t, std::string>;
  struct JobWatches {
    std::set<uint64_t> ids;
    std::string model_id;
    QueueKey key;
  };
  void EraseJobWatchesLocked(const std::string& job_id);
  std::unordered_map<uint64_t, Watch> watches_;
  std::unordered_map<std::string, JobWatches> watches_by_job_;
  std::map<std::string, std::set<QueueKey>> watched_by_model_;  // watched jobs, queue order
  std::unordered_map<std::string, int> watches_by_client_;
  uint64_t next_watch_id_ = 1;

  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  bool stop_sweep_ = false;
  std::atomic<double> last_sweep_steady_{0};
  double next_retention_sweep_ = 0;  // steady seconds; the sweeper thread only
  std::thread sweeper_;
};

}  // namespace turbovid::scheduler
