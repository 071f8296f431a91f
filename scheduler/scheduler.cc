// Scheduler: recovery, lifecycle and the client API (submit, get, list, cancel, watch, video),
// plus the job transitions shared with the worker side (enqueue, requeue, finalize, notify).
#include "scheduler/scheduler.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "scheduler/admission.h"
#include "scheduler/scheduler_internal.h"
#include "scheduler/urgency.h"

namespace turbovid::scheduler {
namespace {

// The stored idempotency key: client_request_id within the caller's tenant, so that one tenant
// never receives another's job by reusing its id. (Admission refuses control characters in
// client_request_id, so the separator cannot be forged.)
std::string DedupeKey(const v1::SubmitVideoRequest& request) {
  if (request.client_request_id().empty() || request.tenant().empty()) {
    return request.client_request_id();
  }
  return absl::StrCat(request.tenant(), "\x1f", request.client_request_id());
}

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

uint64_t RandomU64() {
  thread_local absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

std::string NewJobId() { return absl::StrFormat("j%016x", RandomU64()); }

bool IsFinal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
}

// The turbovid_jobs_failed_total reason of a failure the scheduler itself decided, from the
// error's fixed prefix (the worker's own failures are labelled by their status code instead).
std::string FailureReason(const std::string& error) {
  if (absl::StartsWith(error, "worker lost")) return "worker_lost";
  if (absl::StartsWith(error, "artifact store") || absl::StartsWith(error, "video upload")) {
    return "artifact";
  }
  if (absl::StartsWith(error, "job store")) return "job_store";
  if (absl::StrContains(error, "no longer in the catalog")) return "catalog";
  return "other";
}

}  // namespace

// Progress of the whole job from its stage: pre-denoise [0, .1), denoise [.1, .9), after [.9, 1).
double StageProgress(v1::Stage stage, int step, int num_steps, double fraction) {
  fraction = std::min(1.0, std::max(0.0, fraction));
  switch (stage) {
    case v1::STAGE_UNSPECIFIED:
      return 0;
    case v1::STAGE_LOADING_MODEL:
      return 0.05 * fraction;
    case v1::STAGE_ENCODING_TEXT:
      return 0.05 + 0.025 * fraction;
    case v1::STAGE_ENCODING_IMAGE:
      return 0.075 + 0.025 * fraction;
    case v1::STAGE_DENOISING:
      return 0.1 + 0.8 * (num_steps > 0 ? std::min(1.0, double(step) / num_steps) : fraction);
    case v1::STAGE_DECODING_VIDEO:
      return 0.9 + 0.05 * fraction;
    case v1::STAGE_ENCODING_MP4:
      return 0.95 + 0.03 * fraction;
    case v1::STAGE_UPLOADING:
      return 0.98 + 0.02 * fraction;
    default:
      return 0;
  }
}

const char* StateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED:
      return "queued";
    case v1::JOB_STATE_ASSIGNED:
      return "assigned";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

const char* StageName(v1::Stage stage) {
  switch (stage) {
    case v1::STAGE_LOADING_MODEL:
      return "loading_model";
    case v1::STAGE_ENCODING_TEXT:
      return "encoding_text";
    case v1::STAGE_ENCODING_IMAGE:
      return "encoding_image";
    case v1::STAGE_DENOISING:
      return "denoising";
    case v1::STAGE_DECODING_VIDEO:
      return "decoding_video";
    case v1::STAGE_ENCODING_MP4:
      return "encoding_mp4";
    case v1::STAGE_UPLOADING:
      return "uploading";
    default:
      return "unspecified";
  }
}

double Scheduler::SteadyNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Scheduler::Scheduler(const SchedulerConfig& config, ModelCatalog catalog,
                     std::unique_ptr<JobStore> store, std::unique_ptr<ArtifactStore> artifacts,
                     SchedulerMetrics* metrics, ServiceTimeTable service_times)
    : config_(config),
      catalog_(std::move(catalog)),
      store_(std::move(store)),
      artifacts_(std::move(artifacts)),
      metrics_(metrics),
      quotas_(config.quotas),
      step_stats_(config.step_ewma_alpha),
      service_model_(config.step_ewma_alpha, std::move(service_times)),
      class_capacity_(CatalogClassCapacity(catalog_, service_model_)),
      offered_load_(class_capacity_.size(), DecayingRate(config.placement.load_window_seconds)) {}

Scheduler::~Scheduler() { Stop(); }

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    const SchedulerConfig& config, ModelCatalog catalog, std::unique_ptr<JobStore> store,
    std::unique_ptr<ArtifactStore> artifacts, SchedulerMetrics* metrics) {
  TV_ASSIGN_OR_RETURN(ServiceTimeTable service_times, LoadServiceTimes(config, catalog));
  std::unique_ptr<Scheduler> scheduler(new Scheduler(config, std::move(catalog), std::move(store),
                                                     std::move(artifacts), metrics,
                                                     std::move(service_times)));
  TV_RETURN_IF_ERROR(scheduler->LoadGpuUsage());
  TV_RETURN_IF_ERROR(scheduler->Recover());
  return scheduler;
}

absl::Status Scheduler::Recover() {
  TV_ASSIGN_OR_RETURN(int requeued, store_->RequeueInterrupted());
  TV_ASSIGN_OR_RETURN(std::vector<StoredJob> jobs, store_->LoadUnfinished());
  std::lock_guard<std::mutex> lock(mu_);
  for (StoredJob& stored : jobs) {
    auto job = std::make_unique<ActiveJob>();
    job->stored = std::move(stored);
    job->created_steady = job->enqueued_steady = SteadyNow();
    const ModelSpec* model = catalog_.Find(job->stored.request.model_id());
    const VariantSpec* variant =
        model == nullptr ? nullptr : model->FindVariant(job->stored.request.variant());
    ActiveJob& ref = *job;
    active_[ref.stored.job_id] = std::move(job);
    if (ref.stored.deleted_unix_seconds > 0) {  // deleted while it ran: its cancel is done now
      FinalizeLocked(ref, v1::JOB_STATE_CANCELLED, "");
      continue;
    }
    // A committed artifact means the job succeeded and only its final row was lost (a full
    // disk, a crash between the two writes): finish it from the artifact, never render again.
    absl::StatusOr<std::optional<int64_t>> artifact = artifacts_->CommittedSize(ref.stored.job_id);
    if (!artifact.ok()) {
      TV_LOG(WARNING) << "job " << ref.stored.job_id << ": " << artifact.status();
    } else if (artifact->has_value() && **artifact > 0) {
      TV_LOG(INFO) << "job " << ref.stored.job_id << ": artifact of " << **artifact
                   << " bytes committed before the restart; finished from it";
      ref.stored.video_bytes = **artifact;
      FinalizeLocked(ref, v1::JOB_STATE_SUCCEEDED, "");
      continue;
    }
    if (variant == nullptr) {
      FinalizeLocked(ref, v1::JOB_STATE_FAILED,
                     absl::StrCat("model ", ref.stored.request.model_id(), " variant ",
                                  ref.stored.request.variant(), " is no longer in the catalog"));
      continue;
    }
    if (ref.stored.job.model_id().empty()) {
      // A row from before jobs stored their ResolvedJob: its accepted request has every
      // default filled in, so the rebuilt job is what admission would have stored.
      absl::StatusOr<v1::ResolvedJob> rebuilt = ResolveJob(ref.stored.request, *variant);
      if (!rebuilt.ok()) {
        FinalizeLocked(ref, v1::JOB_STATE_FAILED,
                       absl::StrCat("job store: ", rebuilt.status().message()));
        continue;
      }
      ref.stored.job = std::move(*rebuilt);
    } else if (absl::Status valid = CheckResolvedJob(ref.stored.job); !valid.ok()) {
      FinalizeLocked(ref, v1::JOB_STATE_FAILED, absl::StrCat("job store: ", valid.message()));
      continue;
    }
    ref.placement = PlacementRequest{model->id, variant, ref.stored.width_pixels,
                                     ref.stored.height_pixels, ref.stored.request.num_frames()};
    ref.deadline_unix = DeadlineOf(ref.stored.request);
    EnqueueLocked(ref);
  }
  TV_LOG(INFO) << "job store: " << active_.size() << " unfinished jobs recovered (" << requeued
               << " were assigned or running)";
  return absl::OkStatus();
}

void Scheduler::Start() {
  last_sweep_steady_.store(SteadyNow());
  sweeper_ = std::thread([this] { SweepLoop(); });
}

void Scheduler::SweepLoop() {
  const double period = std::max(0.05, std::min(1.0, config_.lease_seconds / 4));
  std::unique_lock<std::mutex> lock(sweep_mu_);
  while (!stop_sweep_) {
    sweep_cv_.wait_for(lock, std::chrono::duration<double>(period));
    if (stop_sweep_) break;
    lock.unlock();
    ExpireLeases(SteadyNow());
    RetryPendingFinishes(SteadyNow());
    CheckUnservable(SteadyNow());
    if (SteadyNow() >= next_retention_sweep_) {
      ExpireFinished(WallNow());
      next_retention_sweep_ = SteadyNow() + config_.retention.sweep_interval_seconds;
    }
    last_sweep_steady_.store(SteadyNow());
    lock.lock();
  }
}

void Scheduler::BeginShutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return;
  shutting_down_ = true;
  const absl::Status closing = absl::UnavailableError("scheduler shutting down");
  for (auto& [id, watch] : watches_) watch.listener(nullptr, closing);
  watches_.clear();
  watches_by_job_.clear();
  watched_by_model_.clear();
  watches_by_client_.clear();
  // Running jobs stay ASSIGNED/RUNNING in the store; the next start puts them back in the queue.
  for (auto& [session_id, worker] : workers_) worker->link->Close(closing);
  for (auto& [job_id, job] : active_) EndStreamLocked(*job, closing);
  metrics_->up.Get().Set(0);
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(sweep_mu_);
    stop_sweep_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (store_ != nullptr) {
    // A last try; what still fails is finished from its artifact (or rerun) at the next start.
    RetryPendingFinishes(std::numeric_limits<double>::infinity());
    store_->StopInserts();  // the queued submits finish first (their callbacks take mu_)
    absl::Status status = store_->Checkpoint();
    if (!status.ok()) TV_LOG(WARNING) << "job store checkpoint: " << status;
  }
}

absl::StatusOr<std::variant<v1::Job, Scheduler::AdmittedSubmit>> Scheduler::AdmitSubmit(
    const v1::SubmitVideoRequest& request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return absl::UnavailableError("scheduler shutting down");
  }
  TV_ASSIGN_OR_RETURN(ResolvedRequest resolved,
                      ValidateSubmit(request, catalog_, config_.admission, RandomU64()));
  const double now_unix = WallNow();
  TV_ASSIGN_OR_RETURN(Urgency urgency, ResolveUrgency(request, config_.placement, now_unix));
  const std::string& model_id = resolved.model->id;
  TV_RETURN_IF_ERROR(CheckArtifactStoreLimit());
  size_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TV_RETURN_IF_ERROR(CheckQuotasLocked(request.tenant()));
    queued = queues_[model_id].size() + reserved_[model_id];
    if (queued < static_cast<size_t>(config_.admission.max_queue_length)) {
      ++reserved_[model_id];
      ++tenant_reserved_[request.tenant()];
    }
  }
  if (queued >= static_cast<size_t>(config_.admission.max_queue_length)) {
    // A retried submit gets its job even when the queue is full. (Below the limit the insert
    // finds the job by its client request id, which saves a read per submit.)
    if (!request.client_request_id().empty()) {
      TV_ASSIGN_OR_RETURN(std::optional<StoredJob> existing,
                          store_->FindByClientRequestId(DedupeKey(request)));
      if (existing.has_value()) {
        TV_ASSIGN_OR_RETURN(v1::Job job, GetJob(existing->job_id));
        return job;
      }
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("queue of ", model_id, " is full (", queued, " jobs)"));
  }
  AdmittedSubmit admitted;
  StoredJob& stored = admitted.stored;
  stored.job_id = NewJobId();
  stored.client_request_id = DedupeKey(request);
  stored.request = AcceptedRequest(request, resolved);
  ApplyUrgency(urgency, &stored.request);
  stored.job = resolved.job;
  stored.image = request.image();
  stored.seed = resolved.seed;
  stored.width_pixels = resolved.width_pixels;
  stored.height_pixels = resolved.height_pixels;
  stored.created_unix_seconds = now_unix;
  admitted.placement = PlacementRequest{model_id, resolved.variant, resolved.width_pixels,
                                        resolved.height_pixels, resolved.num_frames};
  return admitted;
}

absl::Status Scheduler::CheckQuotasLocked(const std::string& tenant) {
  const QuotaLimits& quota = quotas_.config().For(tenant);
  absl::Status status = quotas_.TakeSubmit(tenant, SteadyNow());
  const char* reason = "submit_rate";
  if (status.ok() && quota.gpu_seconds_per_day > 0) {
    status = quotas_.CheckGpuBudget(tenant, WallNow());
    reason = "gpu_seconds";
  }
  if (status.ok() && quota.max_active_jobs > 0) {
    // Only with the quota set: a scan of the jobs not yet final.
    int active = tenant_reserved_[tenant];
    for (const auto& [id, job] : active_) active += job->stored.request.tenant() == tenant;
    status = quotas_.CheckActive(tenant, active);
    reason = "active_jobs";
  }
  if (!status.ok()) metrics_->quota_refusals.WithLabels({reason}).Increment();
  return status;
}

absl::StatusOr<v1::Job> Scheduler::FinishSubmit(const PlacementRequest& placement,
                                                const std::string& tenant,
                                                absl::StatusOr<JobStore::InsertResult> inserted) {
  std::lock_guard<std::mutex> lock(mu_);
  --reserved_[placement.model_id];
  if (--tenant_reserved_[tenant] <= 0) tenant_reserved_.erase(tenant);
  if (!inserted.ok()) return inserted.status();
  if (!inserted->created) {
    auto it = active_.find(inserted->job.job_id);
    return it != active_.end() ? ToProtoLocked(*it->second) : StoredToProto(inserted->job);
  }
  auto job = std::make_unique<ActiveJob>();
  job->stored = std::move(inserted->job);
  job->stored.image.clear();  // in the store; read back at assignment
  job->placement = placement;
  job->created_steady = job->enqueued_steady = SteadyNow();
  job->deadline_unix = DeadlineOf(job->stored.request);
  ActiveJob& ref = *job;
  active_[ref.stored.job_id] = std::move(job);
  metrics_->jobs_submitted.WithLabels({placement.model_id}).Increment();
  EnqueueLocked(ref);
  MarkUnservableLocked(ref, SteadyNow());
  CountArrivalLocked(ref);
  v1::Job snapshot = ToProtoLocked(ref);
  DispatchLocked(&ref);
  return snapshot;
}

void Scheduler::SubmitVideoAsync(const v1::SubmitVideoRequest& request, server::SubmitDone done) {
  auto reply = [this, done = std::move(done)](absl::StatusOr<v1::Job> result) {
    if (!result.ok()) {
      metrics_->submit_rejected.WithLabels({absl::StatusCodeToString(result.status().code())})
          .Increment();
    }
    done(std::move(result));
  };
  absl::StatusOr<std::variant<v1::Job, AdmittedSubmit>> admitted = AdmitSubmit(request);
  if (!admitted.ok()) {
    reply(admitted.status());
    return;
  }
  if (v1::Job* existing = std::get_if<v1::Job>(&*admitted)) {
    reply(std::move(*existing));
    return;
  }
  AdmittedSubmit& submit = std::get<AdmittedSubmit>(*admitted);
  // Acknowledged only from here: the insert is committed (WAL written) when this runs.
  store_->InsertAsync(std::move(submit.stored),
                      [this, placement = submit.placement, tenant = request.tenant(),
                       reply = std::move(reply)](absl::StatusOr<JobStore::InsertResult> inserted) {
                        reply(FinishSubmit(placement, tenant, std::move(inserted)));
                      });
}

absl::StatusOr<v1::Job> Scheduler::SubmitVideo(const v1::SubmitVideoRequest& request) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::StatusOr<v1::Job>> result;
  SubmitVideoAsync(request, [&](absl::StatusOr<v1::Job> job) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(job);
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  return std::move(*result);
}

absl::StatusOr<v1::Job> Scheduler::GetJob(const std::string& job_id) {
  const absl::Status deleted =
      absl::NotFoundError(absl::StrCat("job_id: job ", job_id, " was deleted"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(job_id);
    if (it != active_.end()) {
      if (it->second->stored.deleted_unix_seconds > 0) return deleted;
      return ToProtoLocked(*it->second);
    }
    auto pending = pending_finishes_.find(job_id);
    if (pending != pending_finishes_.end()) {
      if (pending->second.stored.deleted_unix_seconds > 0) return deleted;
      return StoredToProto(pending->second.stored);
    }
  }
  TV_ASSIGN_OR_RETURN(StoredJob stored, store_->Get(job_id));
  std::lock_guard<std::mutex> lock(mu_);
  // It may have become active again (recovery) or changed since the read: prefer memory.
  auto it = active_.find(job_id);
  if (it != active_.end()) stored = it->second->stored;
  if (stored.deleted_unix_seconds > 0) return deleted;
  if (it != active_.end()) return ToProtoLocked(*it->second);
  auto pending = pending_finishes_.find(job_id);
  if (pending != pending_finishes_.end()) return StoredToProto(pending->second.stored);
  return StoredToProto(stored);
}

absl::StatusOr<v1::Job> Scheduler::CancelJob(const std::string& job_id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = active_.find(job_id);
  if (it == active_.end()) {
    lock.unlock();
    return GetJob(job_id);  // final already (cancel is idempotent) or NotFound
  }
  ActiveJob& job = *it->second;
  if (job.stored.deleted_unix_seconds > 0) {
    return absl::NotFoundError(absl::StrCat("job_id: job ", job_id, " was deleted"));
  }
  auto worker = workers_.find(job.session_id);
  if (job.stored.state == v1::JOB_STATE_QUEUED || worker == workers_.end()) {
    return FinalizeLocked(job, v1::JOB_STATE_CANCELLED, "");
  }
  if (!job.cancel_requested) {
    job.cancel_requested = true;
    job.cancel_requested_at = SteadyNow();
    // Progressive: its readers stop now (and new ones get the same answer), not when the worker
    // has stopped; the bytes still coming are not relayed.
    if (job.stored.request.progressive()) {
      LiveOfLocked(job)->End(absl::CancelledError(absl::StrCat("job ", job_id, " was cancelled")));
    }
    v1::SchedulerMessage message;
    message.mutable_cancel()->set_task_id(job.stored.job_id);
    message.mutable_cancel()->set_attempt(job.stored.attempts);
    worker->second->link->Send(message);
    TV_LOG(INFO) << "job " << job_id << ": cancel sent to worker " << job.stored.worker_id;
  }
  return ToProtoLocked(job);
}

absl::StatusOr<v1::ListJobsResponse> Scheduler::ListJobs(const v1::ListJobsRequest& request) {
  ListFilter filter;
  filter.state = request.state();
  filter.model_id = request.model_id();
  filter.tenant = request.tenant();
  const int page_size = request.page_size() == 0 ? 50 : request.page_size();
  filter.limit = page_size + 1;
  if (!request.page_token().empty() &&
      (!absl::SimpleAtoi(request.page_token(), &filter.before_seq) || filter.before_seq <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: '", request.page_token().substr(0, 64), "' is not valid"));
  }
  if (!v1::JobState_IsValid(request.state())) {
    return absl::InvalidArgumentError(absl::StrCat("state: unknown value ", request.state()));
  }
  filter.ascending = request.oldest_first();
  if (filter.ascending && filter.before_seq > 0) {  // the token continues an oldest-first listing
    filter.after_seq = filter.before_seq;
    filter.before_seq = 0;
  }
  if (!request.after_job_id().empty()) {
    if (!request.page_token().empty()) {
      return absl::InvalidArgumentError("after_job_id: not together with page_token");
    }
    absl::StatusOr<StoredJob> after = store_->Get(request.after_job_id());
    if (!after.ok() || after->deleted_unix_seconds > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("after_job_id: no job '", request.after_job_id().substr(0, 128), "'"));
    }
    (filter.ascending ? filter.after_seq : filter.before_seq) = after->seq;
  }
  TV_ASSIGN_OR_RETURN(std::vector<StoredJob> jobs, store_->List(filter));
  v1::ListJobsResponse response;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < jobs.size() && static_cast<int>(i) < page_size; ++i) {
    auto it = active_.find(jobs[i].job_id);
    auto pending = pending_finishes_.find(jobs[i].job_id);
    *response.add_jobs() = it != active_.end() ? ToProtoLocked(*it->second)
                           : pending != pending_finishes_.end()
                               ? StoredToProto(pending->second.stored)
                               : StoredToProto(jobs[i]);
  }
  if (static_cast<int>(jobs.size()) > page_size) {
    response.set_next_page_token(absl::StrCat(jobs[page_size - 1].seq));
  }
  return response;
}

absl::StatusOr<uint64_t> Scheduler::WatchJob(const std::string& job_id, const std::string& client,
                                             server::JobListener listener) {
  // Final jobs come from the store: one snapshot, no registration.
  std::unique_lock<std::mutex> lock(mu_);
  if (shutting_down_) return absl::UnavailableError("scheduler shutting down");
  auto it = active_.find(job_id);
  if (it == active_.end()) {
    lock.unlock();
    TV_ASSIGN_OR_RETURN(v1::Job job, GetJob(job_id));
    lock.lock();
    auto again = active_.find(job_id);
    if (again == active_.end()) {
      listener(&job, absl::OkStatus());
      return uint64_t{0};
    }
    it = again;
  }
  if (static_cast<int>(watches_.size()) >= config_.max_watch_streams) {
    return absl::ResourceExhaustedError(absl::StrCat("watch streams: ", watches_.size(),
                                                     " open, max_watch_streams ",
                                                     config_.max_watch_streams));
  }
  int& per_client = watches_by_client_[client];
  if (per_client >= config_.max_watch_streams_per_client) {
    return absl::ResourceExhaustedError(absl::StrCat("watch streams of ", client, ": ", per_client,
                                                     " open, max_watch_streams_per_client ",
                                                     config_.max_watch_streams_per_client));
  }
  ++per_client;
  const ActiveJob& job = *it->second;
  const uint64_t id = next_watch_id_++;
  const v1::Job snapshot = ToProtoLocked(job);
  listener(&snapshot, absl::OkStatus());
  watches_[id] = Watch{job_id, client, std::move(listener)};
  auto [by_job, fresh] = watches_by_job_.try_emplace(job_id);
  if (fresh) {
    by_job->second.model_id = job.placement.model_id;
    by_job->second.key = {-job.stored.request.priority(), job.stored.seq, job_id};
    watched_by_model_[job.placement.model_id].insert(by_job->second.key);
  }
  by_job->second.ids.insert(id);
  return id;
}

void Scheduler::Unwatch(uint64_t watch_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watches_.find(watch_id);
  if (it == watches_.end()) return;
  auto by_client = watches_by_client_.find(it->second.client);
  if (by_client != watches_by_client_.end() && --by_client->second <= 0) {
    watches_by_client_.erase(by_client);
  }
  auto by_job = watches_by_job_.find(it->second.job_id);
  if (by_job != watches_by_job_.end()) {
    by_job->second.ids.erase(watch_id);
    if (by_job->second.ids.empty()) EraseJobWatchesLocked(it->second.job_id);
  }
  watches_.erase(it);
}

void Scheduler::EraseJobWatchesLocked(const std::string& job_id) {
  auto by_job = watches_by_job_.find(job_id);
  if (by_job == watches_by_job_.end()) return;
  auto model = watched_by_model_.find(by_job->second.model_id);
  if (model != watched_by_model_.end()) {
    model->second.erase(by_job->second.key);
    if (model->second.empty()) watched_by_model_.erase(model);
  }
  watches_by_job_.erase(by_job);
}

absl::StatusOr<std::unique_ptr<server::ByteSource>> Scheduler::OpenVideo(
    const std::string& job_id) {
  {
    // A progressive job that is not final: its readers follow the current attempt's stream.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(job_id);
    if (it != active_.end() && it->second->stored.request.progressive() &&
        it->second->stored.deleted_unix_seconds == 0 && !shutting_down_) {
      return std::make_unique<server::LiveByteSource>(LiveOfLocked(*it->second));
    }
  }
  TV_ASSIGN_OR_RETURN(v1::Job job, GetJob(job_id));
  if (job.state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", StateName(job.state()), ", not succeeded"));
  }
  return artifacts_->Open(job_id);
}

bool Scheduler::Live() const {
  const double limit = std::max(10.0, config_.lease_seconds);
  return SteadyNow() - last_sweep_steady_.load() < limit;
}

int Scheduler::RegisteredWorkers() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [id, worker] : workers_) n += worker->registered ? 1 : 0;
  return n;
}

v1::Job Scheduler::StoredToProto(const StoredJob& s) {
  v1::Job job;
  job.set_job_id(s.job_id);
  job.set_state(s.state);
  *job.mutable_request() = s.request;
  job.set_num_steps(s.request.num_steps());
  job.set_progress(s.state == v1::JOB_STATE_SUCCEEDED ? 1.0 : 0.0);
  job.set_worker_id(s.worker_id);
  job.set_error(s.error);
  job.set_attempts(s.attempts);
  job.set_created_unix_seconds(s.created_unix_seconds);
  job.set_started_unix_seconds(s.started_unix_seconds);
  job.set_finished_unix_seconds(s.finished_unix_seconds);
  job.set_video_bytes(s.video_bytes);
  job.set_seed(s.seed);
  job.set_width_pixels(s.width_pixels);
  job.set_height_pixels(s.height_pixels);
  return job;
}

v1::Job Scheduler::ToProtoLocked(const ActiveJob& a) const {
  v1::Job job = StoredToProto(a.stored);
  job.set_stage(a.stage);
  job.set_step(a.step);
  if (a.num_steps > 0) job.set_num_steps(a.num_steps);
  job.set_progress(a.progress);
  if (!a.preview_png.empty() && a.stored.state == v1::JOB_STATE_RUNNING) {
    job.set_preview_png(a.preview_png);
    job.set_preview_step(a.preview_step);
  }
  job.set_eta_seconds(EtaLocked(a));
  job.set_status_message(StatusMessageLocked(a));
  if (a.stored.state == v1::JOB_STATE_QUEUED) {
    auto queue = queues_.find(a.placement.model_id);
    if (queue != queues_.end()) {
      job.set_queue_position(queue->second.Position(a.stored.request.priority(), a.stored.seq));
    }
  }
  return job;
}

double Scheduler::EtaLocked(const ActiveJob& a) const {
  if (a.stored.state != v1::JOB_STATE_RUNNING && a.stored.state != v1::JOB_STATE_ASSIGNED) return 0;
  const std::optional<double> step = step_stats_.Estimate(a.node_class, a.placement);
  auto post_it = post_denoise_seconds_.find({a.node_class, a.placement.model_id});
  const double post = post_it == post_denoise_seconds_.end() ? 0 : post_it->second;
  const int total = a.num_steps > 0 ? a.num_steps : a.stored.request.num_steps();
  if (a.stage == v1::STAGE_UNSPECIFIED || a.stage < v1::STAGE_DENOISING) {
    return step.has_value() ? *step * total + post : 0;
  }
  if (a.stage == v1::STAGE_DENOISING) {
    return step.has_value() ? *step * std::max(0, total - a.step) + post : 0;
  }
  // Past denoising: the rest of the post-denoise time.
  const double elapsed = SteadyNow() - a.denoise_done_steady;
  return std::max(0.0, post - elapsed);
}

void Scheduler::NotifyLocked(const ActiveJob& job) {
  auto it = watches_by_job_.find(job.stored.job_id);
  if (it == watches_by_job_.end()) return;
  const v1::Job snapshot = ToProtoLocked(job);
  for (uint64_t id : it->second.ids) watches_.at(id).listener(&snapshot, absl::OkStatus());
  if (IsFinal(job.stored.state)) {
    for (uint64_t id : it->second.ids) {
      auto watch = watches_.find(id);
      auto by_client = watches_by_client_.find(watch->second.client);
      if (by_client != watches_by_client_.end() && --by_client->second <= 0) {
        watches_by_client_.erase(by_client);
      }
      watches_.erase(watch);
    }
    EraseJobWatchesLocked(job.stored.job_id);
  }
}

void Scheduler::NotifyQueueLocked(const std::string& model_id, int priority, int64_t seq) {
  auto model = watched_by_model_.find(model_id);
  if (model == watched_by_model_.end()) return;
  // Jobs ahead of the entry kept their position; the cost is the watched jobs behind it.
  const QueueKey from{-priority, seq, std::string()};
  std::vector<const ActiveJob*> moved;
  for (auto key = model->second.upper_bound(from); key != model->second.end(); ++key) {
    auto it = active_.find(std::get<2>(*key));
    if (it != active_.end() && it->second->stored.state == v1::JOB_STATE_QUEUED &&
        std::get<1>(*key) != seq) {
      moved.push_back(it->second.get());
    }
  }
  for (const ActiveJob* job : moved) NotifyLocked(*job);
}

void Scheduler::RetryPendingFinishes(double now) {
  std::vector<StoredJob> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, pending] : pending_finishes_) {
      if (pending.next_try_steady <= now) due.push_back(pending.stored);
    }
  }
  if (due.empty()) return;
  // The rows are final and no longer in active_, so nothing else writes them: the store is
  // called without the main lock and a retry rewrites the same values (idempotent).
  std::vector<absl::Status> results;
  for (const StoredJob& stored : due) results.push_back(store_->Update(stored));
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < due.size(); ++i) {
    auto it = pending_finishes_.find(due[i].job_id);
    if (it == pending_finishes_.end()) continue;
    if (results[i].ok()) {
      TV_LOG(INFO) << "job " << due[i].job_id << ": " << StateName(due[i].state) << " stored";
      pending_finishes_.erase(it);
      continue;
    }
    PendingFinish& pending = it->second;
    pending.backoff_seconds = std::min(kFinishRetryMaxSeconds, 2 * pending.backoff_seconds);
    pending.next_try_steady = (std::isinf(now) ? SteadyNow() : now) + pending.backoff_seconds;
    TV_LOG(WARNING) << "job " << due[i].job_id << ": storing " << StateName(due[i].state)
                    << " failed again, next try in " << pending.backoff_seconds
                    << " s: " << results[i];
  }
}

int Scheduler::PendingFinishes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(pending_finishes_.size());
}

void Scheduler::PersistLocked(const ActiveJob& job) {
  absl::Status status = store_->Update(job.stored);
  if (!status.ok()) TV_LOG(ERROR) << "job " << job.stored.job_id << ": persist: " << status;
}

void Scheduler::EnqueueLocked(ActiveJob& job) {
  job.stored.state = v1::JOB_STATE_QUEUED;
  job.enqueued_steady = SteadyNow();
  JobQueue& queue = queues_[job.placement.model_id];
  queue.Push(QueueEntry{job.stored.request.priority(), job.stored.seq, job.stored.job_id});
  // Only jobs behind the new one move; at the tail (the common case) nobody does.
  if (queue.Position(job.stored.request.priority(), job.stored.seq) <
      static_cast<int>(queue.size())) {
    NotifyQueueLocked(job.placement.model_id, job.stored.request.priority(), job.stored.seq);
  }
}

v1::Job Scheduler::FinalizeLocked(ActiveJob& job, v1::JobState state, const std::string& error,
                                  const std::string& reason) {
  const std::string model_id = job.stored.request.model_id();
  const int priority = job.stored.request.priority();
  const int64_t seq = job.stored.seq;
  const bool was_queued = job.stored.state == v1::JOB_STATE_QUEUED;
  if (was_queued) queues_[model_id].Remove(job.stored.request.priority(), job.stored.seq);
  ReleaseTaskLocked(job);
  job.stored.state = state;
  job.stored.error = error;
  job.stored.finished_unix_seconds = WallNow();
  if (state == v1::JOB_STATE_SUCCEEDED) job.progress = 1.0;
  job.upload.reset();
  EndStreamLocked(
      job, state == v1::JOB_STATE_SUCCEEDED ? absl::OkStatus()
           : state == v1::JOB_STATE_CANCELLED
               ? absl::CancelledError(absl::StrCat("job ", job.stored.job_id, " was cancelled"))
               : absl::FailedPreconditionError(
                     absl::StrCat("job ", job.stored.job_id, " failed: ", error)));
  if (absl::Status status = store_->Update(job.stored); !status.ok()) {
    // Never lost and never rerun: retried off the lock (RetryPendingFinishes), and a committed
    // artifact finishes the job at the next start if the scheduler stops first.
    TV_LOG(ERROR) << "job " << job.stored.job_id << ": storing " << StateName(state)
                  << " failed, will retry: " << status;
    pending_finishes_[job.stored.job_id] =
        PendingFinish{job.stored, SteadyNow() + kFinishRetryFirstSeconds, kFinishRetryFirstSeconds};
  }
  ChargeGpuLocked(job);
  if (job.stored.deleted_unix_seconds > 0) {  // deleted while it ran: its video goes too
    absl::Status removed = artifacts_->Remove(job.stored.job_id);
    if (!removed.ok()) TV_LOG(WARNING) << "job " << job.stored.job_id << ": " << removed;
  }
  const std::string& variant = job.stored.request.variant();
  metrics_->jobs.WithLabels({model_id, variant, StateName(state)}).Increment();
  if (state == v1::JOB_STATE_FAILED) {
    metrics_->jobs_failed
        .WithLabels({model_id, variant, reason.empty() ? FailureReason(error) : reason})
        .Increment();
  }
  metrics_->job_duration
      .WithLabels({model_id, variant, job.node_class.empty() ? "none" : job.node_class,
                   common::metrics::ResolutionLabel(job.placement.width_pixels,
                                                    job.placement.height_pixels)})
      .Observe(std::max(0.0, job.stored.finished_unix_seconds - job.stored.created_unix_seconds));
  TV_LOG(INFO) << "job " << job.stored.job_id << ": " << StateName(state)
               << (error.empty() ? "" : ": ") << error;
  NotifyLocked(job);
  v1::Job snapshot = ToProtoLocked(job);
  const std::string job_id = job.stored.job_id;
  active_.erase(job_id);  // `job` is gone from here on
  if (was_queued) NotifyQueueLocked(model_id, priority, seq);
  return snapshot;
}

void Scheduler::RequeueLocked(ActiveJob& job, const std::string& reason, bool count_loss) {
  ReleaseTaskLocked(job);
  if (job.cancel_requested) {
    FinalizeLocked(job, v1::JOB_STATE_CANCELLED, "");
    return;
  }
  if (count_loss) ++job.stored.losses;
  if (job.stored.losses >= config_.max_attempts) {
    FinalizeLocked(job, v1::JOB_STATE_FAILED,
                   absl::StrCat("worker lost ", job.stored.losses, " times (last: ", reason, ")"));
    return;
  }
  metrics_->job_requeues.WithLabels({reason}).Increment();
  job.stored.worker_id.clear();
  job.stage = v1::STAGE_UNSPECIFIED;
  job.step = 0;
  job.progress = 0;
  job.upload.reset();
  EndStreamLocked(job, absl::AbortedError(absl::StrCat(
                           "job ", job.stored.job_id, ": its attempt ended (", reason,
                           ") and it was queued again; call GetVideo again for the next attempt")));
  TV_LOG(INFO) << "job " << job.stored.job_id << ": back in the queue (" << reason << ")";
  EnqueueLocked(job);
  PersistLocked(job);
  NotifyLocked(job);
}

}  // namespace turbovid::scheduler
