// Scheduler, worker side: sessions of the WorkerHub stream, registration, dispatch and
// placement, progress, result uploads, leases. Exactly-once completion: a message counts only
// when it comes from the session holding the job's current attempt.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_internal.h"

namespace turbovid::scheduler {
namespace {

constexpr int kMaxTasksPerWorker = 16;

using ModelKey = std::pair<std::string, std::string>;  // (model_id, variant)

// Replaces what a worker can run and holds warm by the list it reported; true when it changed.
bool SetModels(const google::protobuf::RepeatedPtrField<v1::ModelVariant>& models,
               std::set<ModelKey>* variants, std::set<ModelKey>* loaded) {
  std::set<ModelKey> can_run, warm;
  for (const v1::ModelVariant& m : models) {
    can_run.insert({m.model_id(), m.variant()});
    if (m.loaded()) warm.insert({m.model_id(), m.variant()});
  }
  const bool changed = can_run != *variants || warm != *loaded;
  *variants = std::move(can_run);
  *loaded = std::move(warm);
  return changed;
}

// "a:turbo (loaded), b:turbo" for the log.
std::string DescribeModels(const std::set<ModelKey>& variants, const std::set<ModelKey>& loaded) {
  std::string out;
  for (const ModelKey& key : variants) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", key.first, ":", key.second,
                    loaded.count(key) != 0 ? " (loaded)" : "");
  }
  return out;
}

}  // namespace

std::unique_ptr<server::WorkerSession> Scheduler::OpenSession(
    server::WorkerLink* link, const std::string& peer, const server::WorkerCredential& credential) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_session_id_++;
  auto worker = std::make_unique<Worker>();
  worker->session_id = id;
  worker->link = link;
  worker->peer = peer;
  worker->credential = credential;
  worker->last_seen = SteadyNow();
  workers_[id] = std::move(worker);
  if (shutting_down_) link->Close(absl::UnavailableError("scheduler shutting down"));
  return std::make_unique<Session>(this, id);
}

absl::Status Scheduler::HandleMessage(uint64_t session_id, const v1::WorkerMessage& message) {
  // A complete upload is made durable (fsync, rename) outside the lock: an fsync takes
  // milliseconds, and every submit, watch and worker message waits for this lock.
  // The result check (the MP4 parses, its frames and size are the job's) reads the upload here
  // too, before the commit: a video that fails it is never committed nor served.
  std::optional<absl::StatusOr<int64_t>> committed;
  absl::Status rejected;
  std::string rejected_reason;
  if (message.kind_case() == v1::WorkerMessage::kResult) {
    ResultExpectation expect;
    std::unique_ptr<ArtifactWriter> upload =
        TakeCompleteUpload(session_id, message.result(), &expect);
    if (upload != nullptr) {
      if (config_.check_worker_results) {
        rejected = CheckResultVideo(*upload, expect, &rejected_reason);
      }
      if (rejected.ok()) committed = upload->Commit();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(session_id);
  if (it == workers_.end()) return absl::OkStatus();  // dropped already; the stream is closing
  Worker& worker = *it->second;
  worker.last_seen = SteadyNow();
  if (!worker.registered) {
    if (message.kind_case() != v1::WorkerMessage::kRegister) {
      return absl::InvalidArgumentError("register: the first message must be RegisterWorker");
    }
    return HandleRegister(worker, message.register_());
  }
  switch (message.kind_case()) {
    case v1::WorkerMessage::kRegister:
      return absl::InvalidArgumentError("register: sent twice on one stream");
    case v1::WorkerMessage::kHeartbeat:
      worker.draining = message.heartbeat().draining();
      worker.memory_used_bytes = message.heartbeat().memory_used_bytes();
      worker.memory_peak_bytes =
          std::max(worker.memory_peak_bytes, message.heartbeat().memory_peak_bytes());
      TV_RETURN_IF_ERROR(CheckWorkerModels(message.heartbeat().models(), "heartbeat.models"));
      if (message.heartbeat().models_size() > 0 &&
          SetModels(message.heartbeat().models(), &worker.variants, &worker.loaded)) {
        TV_LOG(INFO) << "worker " << worker.info.worker_id()
                     << " models: " << DescribeModels(worker.variants, worker.loaded);
      }
      if (!worker.draining) DispatchLocked();
      return absl::OkStatus();
    case v1::WorkerMessage::kProgress:
      HandleProgress(worker, message.progress());
      return absl::OkStatus();
    case v1::WorkerMessage::kChunk:
      return HandleChunk(worker, message.chunk());
    case v1::WorkerMessage::kResult:
      HandleResult(worker, message.result(), std::move(committed), rejected, rejected_reason);
      return absl::OkStatus();
    case v1::WorkerMessage::kReturned:
      HandleReturned(worker, message.returned());
      return absl::OkStatus();
    case v1::WorkerMessage::KIND_NOT_SET:
      return absl::InvalidArgumentError("worker message: empty");
  }
  return absl::InvalidArgumentError("worker message: unknown kind");
}

void Scheduler::HandleClosed(uint64_t session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (workers_.count(session_id) == 0) return;
  DropWorkerLocked(session_id, "stream closed", /*close_link=*/false);
}

absl::Status Scheduler::HandleRegister(Worker& worker, const v1::RegisterWorker& info) {
  if (info.worker_id().empty()) return absl::InvalidArgumentError("register.worker_id: empty");
  if (static_cast<int64_t>(info.worker_id().size()) > common::kMaxWorkerIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("register.worker_id: ", info.worker_id().size(),
                                                   " bytes > ", common::kMaxWorkerIdBytes));
  }
  // The node class is a placement key and a metrics label: only classes of the catalog.
  if (catalog_.NodeClasses().count(info.node_class()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("register.node_class: '",
                                                   info.node_class().substr(0, 64),
                                                   "' is not a node class of the model catalog"));
  }
  TV_RETURN_IF_ERROR(CheckWorkerModels(info.models(), "register.models"));
  if (info.max_concurrent_tasks() < 0 || info.max_concurrent_tasks() > kMaxTasksPerWorker) {
    return absl::InvalidArgumentError(
        absl::StrCat("register.max_concurrent_tasks: ", info.max_concurrent_tasks(), " not in [0, ",
                     kMaxTasksPerWorker, "]"));
  }
  const std::vector<std::string>& allowed = worker.credential.worker_ids;
  if (!allowed.empty() &&
      std::find(allowed.begin(), allowed.end(), info.worker_id()) == allowed.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("register.worker_id: '", info.worker_id(), "' is not an id that token '",
                     worker.credential.name, "' may register"));
  }
  auto previous = worker_ids_.find(info.worker_id());
  if (previous != worker_ids_.end() && previous->second != worker.session_id) {
    auto held = workers_.find(previous->second);
    if (held != workers_.end() && held->second->credential.name != worker.credential.name) {
      // Another credential cannot evict a connected worker by reusing its id.
      TV_LOG(WARNING) << "worker id " << info.worker_id() << " from " << worker.peer
                      << " refused: held by a worker connected from " << held->second->peer;
      return absl::AlreadyExistsError(
          absl::StrCat("register.worker_id: '", info.worker_id(),
                       "' is held by a connected worker with another credential"));
    }
    // A restarted worker reconnects before its old stream is noticed as dead: replace it.
    DropWorkerLocked(previous->second, "replaced by a new connection", /*close_link=*/true);
  }
  worker.registered = true;
  worker.info = info;
  worker.max_tasks = info.max_concurrent_tasks() == 0 ? 1 : info.max_concurrent_tasks();
  SetModels(info.models(), &worker.variants, &worker.loaded);
  worker_ids_[info.worker_id()] = worker.session_id;
  seen_node_classes_.insert(info.node_class());
  v1::SchedulerMessage reply;
  reply.mutable_registered()->set_worker_id(info.worker_id());
  reply.mutable_registered()->set_heartbeat_interval_seconds(config_.heartbeat_interval_seconds);
  reply.mutable_registered()->set_lease_seconds(config_.lease_seconds);
  worker.link->Send(reply);
  TV_LOG(INFO) << "worker " << info.worker_id() << " registered from " << worker.peer << " ("
               << info.node_class() << ", " << info.gpu_name() << ", "
               << std::max(1, info.gpu_count()) << " GPU(s), tp "
               << std::max(1, info.tensor_parallel_size()) << " x sp "
               << std::max(1, info.sequence_parallel_size()) << ", " << worker.max_tasks
               << " slots; models " << DescribeModels(worker.variants, worker.loaded) << ")";
  DispatchLocked();
  return absl::OkStatus();
}

Scheduler::ActiveJob* Scheduler::TaskOfLocked(const Worker& worker, const std::string& task_id,
                                              int attempt) {
  auto it = active_.find(task_id);
  if (it == active_.end()) return nullptr;
  ActiveJob& job = *it->second;
  if (job.session_id != worker.session_id) return nullptr;
  if (attempt != 0 && attempt != job.stored.attempts) return nullptr;
  return &job;
}

void Scheduler::HandleProgress(Worker& worker, const v1::TaskProgress& p) {
  ActiveJob* job = TaskOfLocked(worker, p.task_id(), p.attempt());
  if (job == nullptr) return;
  const double now = SteadyNow();
  if (job->stored.state == v1::JOB_STATE_ASSIGNED) {
    job->stored.state = v1::JOB_STATE_RUNNING;
    PersistLocked(*job);
  }
  if (p.stage() != job->stage) {
    if (job->stage != v1::STAGE_UNSPECIFIED) {
      metrics_->stage_duration.WithLabels({StageName(job->stage)})
          .Observe(now - job->stage_started_steady);
    }
    if (job->stage == v1::STAGE_LOADING_MODEL) {
      job->load_seconds = now - job->stage_started_steady;
      service_model_.RecordLoad(ServiceKeyOf(*job), job->load_seconds);
    }
    if (job->stage == v1::STAGE_DENOISING) job->denoise_done_steady = now;
    job->stage = p.stage();
    job->stage_started_steady = now;
  }
  if (p.stage() == v1::STAGE_DENOISING && p.step_seconds() > 0) {
    step_stats_.Record(job->node_class, job->placement, p.step_seconds());
    job->denoise_seconds += p.step_seconds();
    metrics_->denoise_step.WithLabels({job->placement.model_id, job->node_class})
        .Observe(p.step_seconds());
  }
  job->step = p.step();
  if (!p.preview_png().empty() && p.stage() == v1::STAGE_DENOISING &&
      job->stored.request.preview_width() > 0 &&
      static_cast<int64_t>(p.preview_png().size()) <= common::kPreviewPngBytes) {
    job->preview_png = p.preview_png();
    job->preview_step = p.step();
  }
  if (p.num_steps() > 0) job->num_steps = p.num_steps();
  job->progress = std::max(job->progress,
                           StageProgress(p.stage(), p.step(), job->num_steps, p.stage_fraction()));
  NotifyLocked(*job);
}

absl::Status Scheduler::HandleChunk(Worker& worker, const v1::ResultChunk& chunk) {
  if (static_cast<int64_t>(chunk.data().size()) > common::kResultChunkBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk.data: ", chunk.data().size(), " bytes > ", common::kResultChunkBytes));
  }
  ActiveJob* job = TaskOfLocked(worker, chunk.task_id(), chunk.attempt());
  if (job == nullptr) return absl::OkStatus();
  if (job->upload == nullptr) {
    absl::StatusOr<std::unique_ptr<ArtifactWriter>> writer =
        artifacts_->BeginWrite(job->stored.job_id);
    if (!writer.ok()) {
      TV_LOG(ERROR) << "job " << job->stored.job_id << ": artifact: " << writer.status();
      v1::SchedulerMessage cancel;
      cancel.mutable_cancel()->set_task_id(job->stored.job_id);
      cancel.mutable_cancel()->set_attempt(job->stored.attempts);
      worker.link->Send(cancel);
      FinalizeLocked(*job, v1::JOB_STATE_FAILED,
                     absl::StrCat("artifact store: ", writer.status().message()));
      return absl::OkStatus();
    }
    job->upload = std::move(*writer);
  }
  absl::Status status =
      chunk.offset() + static_cast<int64_t>(chunk.data().size()) > common::kMaxUploadBytes
          ? absl::ResourceExhaustedError(
                absl::StrCat("video: more than ", common::kMaxUploadBytes, " bytes"))
          : job->upload->Append(chunk.offset(), chunk.data());
  if (absl::IsInvalidArgument(status)) return status;  // out of order: the worker is broken
  if (status.ok() && job->stored.request.progressive()) {
    StreamChunkLocked(worker, *job, chunk.data());  // false: rejected, `job` may be gone
    return absl::OkStatus();
  }
  if (!status.ok()) {
    TV_LOG(ERROR) << "job " << job->stored.job_id << ": artifact: " << status;
    v1::SchedulerMessage cancel;
    cancel.mutable_cancel()->set_task_id(job->stored.job_id);
    cancel.mutable_cancel()->set_attempt(job->stored.attempts);
    worker.link->Send(cancel);
    FinalizeLocked(*job, v1::JOB_STATE_FAILED, absl::StrCat("artifact store: ", status.message()));
  }
  return absl::OkStatus();
}

std::unique_ptr<ArtifactWriter> Scheduler::TakeCompleteUpload(uint64_t session_id,
                                                              const v1::TaskResult& result,
                                                              ResultExpectation* expect) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(session_id);
  if (it == workers_.end() || !it->second->registered) return nullptr;
  ActiveJob* job = TaskOfLocked(*it->second, result.task_id(), result.attempt());
  if (job == nullptr || result.cancelled() || !result.ok() || job->upload == nullptr)
    return nullptr;
  const int64_t received = job->upload->bytes_written();
  if (received != result.video_bytes() || received == 0) return nullptr;
  expect->worker_id = it->second->info.worker_id();
  expect->frames = job->stored.job.num_frames();
  expect->width = job->stored.width_pixels;
  expect->height = job->stored.height_pixels;
  return std::move(job->upload);
}

void Scheduler::HandleResult(Worker& worker, const v1::TaskResult& result,
                             std::optional<absl::StatusOr<int64_t>> committed,
                             const absl::Status& rejected, const std::string& rejected_reason) {
  ActiveJob* job = TaskOfLocked(worker, result.task_id(), result.attempt());
  if (job == nullptr) {
    TV_LOG(INFO) << "worker " << worker.info.worker_id() << ": result for " << result.task_id()
                 << " (attempt " << result.attempt() << ") ignored: not its current task";
    return;
  }
  const std::string model_id = job->placement.model_id;
  const double now = SteadyNow();
  metrics_->run_duration.WithLabels({model_id, worker.info.node_class()})
      .Observe(now - job->assigned_steady);
  if (job->stage != v1::STAGE_UNSPECIFIED) {
    metrics_->stage_duration.WithLabels({StageName(job->stage)})
        .Observe(now - job->stage_started_steady);
  }
  CountRunLocked(*job, result, now);
  if (result.ok() && !result.mp4_encoder().empty()) {
    TV_LOG(INFO) << "job " << job->stored.job_id << ": MP4 encoded by " << result.mp4_encoder()
                 << ", " << result.mp4_tail_seconds() << " s after the last decoded chunk";
  }
  if (result.peak_memory_bytes() > 0) {
    metrics_->job_peak_memory.WithLabels({model_id, worker.info.node_class()})
        .Observe(static_cast<double>(result.peak_memory_bytes()));
  }
  if (result.cancelled()) {
    if (job->cancel_requested) {
      FinalizeLocked(*job, v1::JOB_STATE_CANCELLED, "");
    } else {
      RequeueLocked(*job, "stopped by worker", /*count_loss=*/true);
    }
  } else if (!result.ok()) {
    if (result.error_code() == static_cast<int>(absl::StatusCode::kUnavailable)) {
      TV_LOG(WARNING) << "job " << job->stored.job_id << ": worker unavailable: " << result.error();
      RequeueLocked(*job, "worker unavailable", /*count_loss=*/true);
    } else {
      FinalizeLocked(
          *job, v1::JOB_STATE_FAILED,
          result.error().empty() ? "worker reported a failure" : result.error(),
          absl::AsciiStrToLower(
              absl::StatusCodeToString(static_cast<absl::StatusCode>(result.error_code()))));
    }
  } else if (!rejected.ok()) {
    RejectResultLocked(*job, rejected, rejected_reason);
  } else {
    const int64_t received = job->upload ? job->upload->bytes_written() : 0;
    if (!committed.has_value() && (received != result.video_bytes() || received == 0)) {
      FinalizeLocked(*job, v1::JOB_STATE_FAILED,
                     absl::StrCat("video upload incomplete: ", received, " of ",
                                  result.video_bytes(), " bytes"));
    } else if (absl::StatusOr<int64_t> size =
                   committed.has_value() ? std::move(*committed) : job->upload->Commit();
               !size.ok()) {
      FinalizeLocked(*job, v1::JOB_STATE_FAILED,
                     absl::StrCat("artifact store: ", size.status().message()));
    } else {
      if (job->denoise_done_steady > 0) {
        const std::pair<std::string, std::string> key{job->node_class, model_id};
        const double post = now - job->denoise_done_steady;
        auto [it, fresh] = post_denoise_seconds_.try_emplace(key, post);
        if (!fresh) {
          it->second = config_.step_ewma_alpha * post + (1 - config_.step_ewma_alpha) * it->second;
        }
      }
      RecordServiceLocked(*job, now);
      metrics_->artifact_bytes.Get().Increment(static_cast<double>(*size));
      job->stored.video_bytes = *size;
      worker.loaded.insert({model_id, job->placement.variant->name});
      FinalizeLocked(*job, v1::JOB_STATE_SUCCEEDED, "");
    }
  }
  DispatchLocked();
}

void Scheduler::HandleReturned(Worker& worker, const v1::TaskReturned& returned) {
  ActiveJob* job = TaskOfLocked(worker, returned.task_id(), returned.attempt());
  if (job == nullptr) return;
  // A worker that hands a task back (draining, busy) takes none until its next heartbeat says
  // otherwise, so the task does not bounce between the queue and this worker.
  worker.draining = true;
  RequeueLocked(*job, "returned by worker", /*count_loss=*/false);
  DispatchLocked();
}

void Scheduler::ReleaseTaskLocked(ActiveJob& job) {
  HoldLocked(job, "", "", 0);
  if (job.session_id == 0) return;
  auto it = workers_.find(job.session_id);
  if (it != workers_.end()) it->second->tasks.erase(job.stored.job_id);
  job.session_id = 0;
}

void Scheduler::DropWorkerLocked(uint64_t session_id, const std::string& reason, bool close_link) {
  auto it = workers_.find(session_id);
  if (it == workers_.end()) return;
  std::unique_ptr<Worker> worker = std::move(it->second);
  workers_.erase(it);
  auto by_id = worker_ids_.find(worker->info.worker_id());
  if (by_id != worker_ids_.end() && by_id->second == session_id) worker_ids_.erase(by_id);
  if (close_link) worker->link->Close(absl::UnavailableError(reason));
  if (shutting_down_) return;  // jobs stay as stored; the next start requeues them
  const std::string node_class = worker->registered ? worker->info.node_class() : "unregistered";
  metrics_->workers_lost.WithLabels({node_class, reason}).Increment();
  if (worker->registered) {
    TV_LOG(WARNING) << "worker " << worker->info.worker_id() << " dropped (" << reason << ") with "
                    << worker->tasks.size() << " task(s)";
  }
  const std::set<std::string> tasks = worker->tasks;
  for (const std::string& job_id : tasks) {
    auto job = active_.find(job_id);
    if (job == active_.end() || job->second->session_id != session_id) continue;
    RequeueLocked(*job->second, "worker lost", /*count_loss=*/true);
  }
  DispatchLocked();
}

void Scheduler::DispatchLocked(ActiveJob* arrived) {
  if (shutting_down_) return;
  const double now = UnixNow();
  // Pools of interchangeable workers (cost_placement.h): registered, not draining, same class,
  // layout, memory, GPUs, models and warm set.
  using PoolKey =
      std::tuple<std::string, std::string, int64_t, int, std::set<ModelKey>, std::set<ModelKey>>;
  struct PoolBuild {
    PoolView view;
    std::vector<Worker*> free_workers;  // with at least one free slot
    std::multiset<double> busy_until;   // full workers: their earliest expected finish
    std::string first_busy_id;          // smallest id among the full workers
  };
  std::map<PoolKey, PoolBuild> by_key;
  std::map<std::pair<std::string, std::string>, int> workers_by_layout;
  int free_total = 0;
  for (auto& [id, worker] : workers_) {
    if (!worker->registered || worker->draining) continue;
    const v1::RegisterWorker& info = worker->info;
    const std::string layout = ParallelLayout(info.gpu_count(), info.tensor_parallel_size(),
                                              info.sequence_parallel_size());
    auto [it, fresh] =
        by_key.try_emplace(PoolKey{info.node_class(), layout, UsableMemoryBytes(info), info.gpu_count(),
                                   worker->variants, worker->loaded});
    PoolBuild& pool = it->second;
    ++workers_by_layout[{info.node_class(), layout}];
    if (fresh) {
      pool.view.worker.node_class = info.node_class();
      pool.view.worker.memory_bytes = UsableMemoryBytes(info);
      pool.view.worker.gpu_count = info.gpu_count();
      pool.view.worker.variants = worker->variants;
      pool.view.worker.loaded = worker->loaded;
      pool.view.layout = layout;
      // Prices are per GPU: a worker group costs all of its GPUs.
      pool.view.price_per_hour =
          service_model_.PricePerHour(info.node_class()) * std::max(1, info.gpu_count());
    }
    const int free = worker->max_tasks - static_cast<int>(worker->tasks.size());
    if (free > 0) {
      pool.view.worker.free_slots += free;
      pool.free_workers.push_back(worker.get());
      free_total += free;
      continue;
    }
    if (pool.first_busy_id.empty() || info.worker_id() < pool.first_busy_id) {
      pool.first_busy_id = info.worker_id();
    }
    double until = kNoDeadline;
    for (const std::string& job_id : worker->tasks) {
      auto job = active_.find(job_id);
      if (job != active_.end()) until = std::min(until, job->second->expected_finish_unix);
    }
    if (until < kNoDeadline) pool.busy_until.insert(until);
  }
  if (free_total == 0) return;
  std::vector<PoolView> pools;
  std::vector<PoolBuild*> builds;
  for (auto& [key, pool] : by_key) {
    // Ties between pools go to the smallest worker id that could start now.
    std::sort(pool.free_workers.begin(), pool.free_workers.end(),
              [](Worker* a, Worker* b) { return a->info.worker_id() < b->info.worker_id(); });
    pool.view.worker.worker_id =
        pool.free_workers.empty() ? pool.first_busy_id : pool.free_workers[0]->info.worker_id();
    pool.view.busy_until = &pool.busy_until;
    const std::pair<std::string, std::string> layout_key{pool.view.worker.node_class,
                                                         pool.view.layout};
    pool.view.workers = workers_by_layout[layout_key];
    auto held = held_seconds_.find(layout_key);
    pool.view.held_seconds = held == held_seconds_.end() ? 0 : held->second;
    pools.push_back(pool.view);
    builds.push_back(&pool);
  }
  std::vector<ActiveJob*> jobs;
  std::vector<PlacementJob> placement_jobs;
  for (const QueueEntry& entry : DispatchOrder(queues_)) {
    auto job = active_.find(entry.job_id);
    if (job == active_.end()) continue;
    jobs.push_back(job->second.get());
    placement_jobs.push_back(PlacementJob{&job->second->placement, job->second->deadline_unix});
  }
  if (arrived != nullptr && std::find(jobs.begin(), jobs.end(), arrived) == jobs.end()) {
    jobs.push_back(arrived);
    placement_jobs.push_back(PlacementJob{&arrived->placement, arrived->deadline_unix,
                                          /*behind_held=*/true});
  }
  const ServiceSecondsFn seconds = [&](int j, int p) {
    return PoolServiceSeconds(service_model_, jobs[j]->placement, jobs[j]->stored.job.num_steps(),
                              pools[p]);
  };
  std::vector<PlannedAssignment> holds;
  const std::vector<PlannedAssignment> plan =
      PlanDispatch(now, placement_jobs, pools, seconds, &holds);
  for (const PlannedAssignment& held : holds) {
    HoldLocked(*jobs[held.job], pools[held.choice.pool].worker.node_class,
               pools[held.choice.pool].layout, held.choice.service_seconds);
  }
  for (const PlannedAssignment& planned : plan) {
    PoolBuild& pool = *builds[planned.choice.pool];
    Worker* worker = nullptr;
    for (Worker* w : pool.free_workers) {
      if (w->max_tasks > static_cast<int>(w->tasks.size())) {
        worker = w;
        break;
      }
    }
    if (worker == nullptr) continue;  // cannot happen: the plan takes only free slots
    AssignLocked(*jobs[planned.job], *worker, planned.choice);
  }
}

void Scheduler::AssignLocked(ActiveJob& job, Worker& worker, const PlacementChoice& choice) {
  absl::StatusOr<std::string> image = store_->GetImage(job.stored.job_id);
  if (!image.ok()) {
    FinalizeLocked(job, v1::JOB_STATE_FAILED,
                   absl::StrCat("job store: ", image.status().message()));
    return;
  }
  const std::string& model_id = job.placement.model_id;
  queues_[model_id].Remove(job.stored.request.priority(), job.stored.seq);
  const double now = SteadyNow();
  if (job.stored.attempts == 0) {
    metrics_->queue_wait.WithLabels({model_id}).Observe(now - job.created_steady);
  }
  metrics_->dispatch_latency.Get().Observe(now - job.enqueued_steady);
  job.stored.attempts += 1;
  job.stored.state = v1::JOB_STATE_ASSIGNED;
  job.stored.worker_id = worker.info.worker_id();
  job.stored.started_unix_seconds =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  job.session_id = worker.session_id;
  job.node_class = worker.info.node_class();
  job.assigned_steady = now;
  job.stage = v1::STAGE_UNSPECIFIED;
  job.step = 0;
  job.num_steps = job.stored.job.num_steps();
  job.progress = 0;
  job.denoise_done_steady = 0;
  job.unservable_since = 0;
  job.layout = ParallelLayout(worker.info.gpu_count(), worker.info.tensor_parallel_size(),
                              worker.info.sequence_parallel_size());
  job.price_per_hour =
      service_model_.PricePerHour(job.node_class) * std::max(1, worker.info.gpu_count());
  job.gpus = std::max(1, worker.info.gpu_count());
  const bool known = std::isfinite(choice.service_seconds);
  job.expected_seconds = known ? choice.service_seconds : 0;
  job.expected_finish_unix = known ? choice.completion : kNoDeadline;
  job.load_seconds = 0;
  job.denoise_seconds = 0;
  HoldLocked(job, "", "", 0);
  metrics_->placement_decisions.WithLabels({job.node_class, PlacementReasonName(choice.reason)})
      .Increment();
  worker.tasks.insert(job.stored.job_id);
  PersistLocked(job);

  v1::SchedulerMessage message;
  v1::AssignTask* assign = message.mutable_assign();
  assign->set_task_id(job.stored.job_id);
  assign->set_attempt(job.stored.attempts);
  *assign->mutable_job() = job.stored.job;
  assign->set_image(std::move(*image));
  worker.link->Send(message);
  TV_LOG(INFO) << "job " << job.stored.job_id << ": attempt " << job.stored.attempts << " on "
               << worker.info.worker_id();
  NotifyLocked(job);
  NotifyQueueLocked(model_id, job.stored.request.priority(), job.stored.seq);
}

void Scheduler::ExpireLeases(double now) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> expired;
  for (const auto& [id, worker] : workers_) {
    if (now - worker->last_seen > config_.lease_seconds) expired.push_back(id);
  }
  for (uint64_t id : expired) DropWorkerLocked(id, "lease expired", /*close_link=*/true);
  // A worker that keeps heartbeating but never answers a cancel loses the job anyway.
  std::vector<ActiveJob*> overdue;
  for (auto& [id, job] : active_) {
    if (job->cancel_requested && now - job->cancel_requested_at > config_.lease_seconds) {
      overdue.push_back(job.get());
    }
  }
  for (ActiveJob* job : overdue) FinalizeLocked(*job, v1::JOB_STATE_CANCELLED, "");
}

void Scheduler::CollectMetrics() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, double> oldest_created;  // model -> earliest submit of a queued job
  for (const auto& [id, job] : active_) {
    if (job->stored.state != v1::JOB_STATE_QUEUED) continue;
    auto [it, added] =
        oldest_created.emplace(job->placement.model_id, job->stored.created_unix_seconds);
    if (!added) it->second = std::min(it->second, job->stored.created_unix_seconds);
  }
  const double wall_now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& [model_id, queue] : queues_) {
    metrics_->queue_depth.WithLabels({model_id}).Set(static_cast<double>(queue.size()));
    auto it = oldest_created.find(model_id);
    metrics_->queue_oldest_age.WithLabels({model_id})
        .Set(it == oldest_created.end() ? 0.0 : std::max(0.0, wall_now - it->second));
  }
  int assigned = 0;
  int running = 0;
  for (const auto& [id, job] : active_) {
    assigned += job->stored.state == v1::JOB_STATE_ASSIGNED;
    running += job->stored.state == v1::JOB_STATE_RUNNING;
  }
  CollectUnservableLocked(SteadyNow());
  metrics_->jobs_active.WithLabels({"assigned"}).Set(assigned);
  metrics_->jobs_active.WithLabels({"running"}).Set(running);
  for (const std::string& node_class : seen_node_classes_) {
    int idle = 0, busy = 0, draining = 0;
    double used = 0, peak = 0;
    for (const auto& [id, w] : workers_) {
      if (!w->registered || w->info.node_class() != node_class) continue;
      if (w->draining) {
        ++draining;
      } else if (w->tasks.empty()) {
        ++idle;
      } else {
        ++busy;
      }
      used += static_cast<double>(w->memory_used_bytes);
      peak = std::max(peak, static_cast<double>(w->memory_peak_bytes));
    }
    metrics_->workers.WithLabels({node_class, "idle"}).Set(idle);
    metrics_->workers.WithLabels({node_class, "busy"}).Set(busy);
    metrics_->workers.WithLabels({node_class, "draining"}).Set(draining);
    metrics_->worker_memory_used.WithLabels({node_class}).Set(used);
    metrics_->worker_memory_peak.WithLabels({node_class}).Set(peak);
  }
  CollectFleetMetricsLocked();
  CollectRetentionMetricsLocked();
}

}  // namespace turbovid::scheduler
