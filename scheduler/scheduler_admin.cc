// Scheduler: what the catalog offers and who serves it (ListModels, ListWorkers), DeleteJob, the
// catalog check of the models a worker lists, and queued jobs that no registered worker serves
// (status message, gauge, failure after unservable_job_timeout_seconds).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "scheduler/admission.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_internal.h"

namespace turbovid::scheduler {
namespace {

using ModelKey = std::pair<std::string, std::string>;  // (model_id, variant)

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> NodeClassesOf(const VariantSpec& variant) {
  std::vector<std::string> classes;
  for (const auto& [node_class, bytes] : variant.memory_bytes) classes.push_back(node_class);
  return classes;  // std::map order: sorted
}

}  // namespace

absl::Status Scheduler::CheckWorkerModels(
    const google::protobuf::RepeatedPtrField<v1::ModelVariant>& models, const char* field) const {
  for (int i = 0; i < models.size(); ++i) {
    const v1::ModelVariant& m = models[i];
    const ModelSpec* model = catalog_.Find(m.model_id());
    if (model == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "].model_id: '", m.model_id().substr(0, 128),
                       "' is not in the scheduler's model catalog (", config_.models_file,
                       "; known: ", catalog_.ModelIds(), ")"));
    }
    if (model->FindVariant(m.variant()) == nullptr) {
      std::vector<std::string> names;
      for (const VariantSpec& v : model->variants) names.push_back(v.name);
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", i, "].variant: '", m.variant().substr(0, 128), "' is not a variant of ",
          model->id, " in the scheduler's catalog (known: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

bool Scheduler::ServedLocked(const PlacementRequest& request) const {
  for (const auto& [id, worker] : workers_) {
    if (!worker->registered) continue;
    // Busy or draining workers count: they serve the variant, just not this instant.
    WorkerView view;
    view.node_class = worker->info.node_class();
    view.memory_bytes = UsableMemoryBytes(worker->info);
    view.gpu_count = worker->info.gpu_count();
    view.free_slots = 1;
    view.variants = worker->variants;
    if (CanRun(request, view)) return true;
  }
  return false;
}

bool Scheduler::MarkUnservableLocked(ActiveJob& job, double now,
                                     std::map<std::pair<std::string, std::string>, bool>* cache) {
  if (job.stored.state != v1::JOB_STATE_QUEUED) return false;
  bool served = false;
  if (cache == nullptr || job.placement.variant == nullptr) {
    served = ServedLocked(job.placement);
  } else {
    const ModelKey key{job.placement.model_id, job.placement.variant->name};
    auto [it, fresh] = cache->try_emplace(key, false);
    if (fresh) it->second = ServedLocked(job.placement);
    served = it->second;
  }
  if (served == (job.unservable_since == 0)) return false;
  job.unservable_since = served ? 0 : now;
  if (served) {
    TV_LOG(INFO) << "job " << job.stored.job_id << ": a registered worker serves it now";
  } else {
    TV_LOG(WARNING) << "job " << job.stored.job_id << ": " << StatusMessageLocked(job);
  }
  return true;
}

std::string Scheduler::StatusMessageLocked(const ActiveJob& job) const {
  if (job.unservable_since == 0 || job.stored.state != v1::JOB_STATE_QUEUED) return "";
  const VariantSpec* variant = job.placement.variant;
  std::string out =
      absl::StrCat("no registered worker serves ", job.placement.model_id, " variant ",
                   variant ? variant->name : "?", " (node classes that can run it: ",
                   variant ? absl::StrJoin(NodeClassesOf(*variant), ", ") : "", ")");
  const double timeout = config_.unservable_job_timeout_seconds;
  if (timeout <= 0) return absl::StrCat(out, "; waiting until one registers");
  const double left = std::max(0.0, timeout - (SteadyNow() - job.unservable_since));
  return absl::StrCat(out, "; the job fails in ", static_cast<int64_t>(std::ceil(left)),
                      " s unless one registers (unservable_job_timeout_seconds)");
}

void Scheduler::CheckUnservable(double now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return;
  const double timeout = config_.unservable_job_timeout_seconds;
  std::vector<ActiveJob*> expired;
  // One look at the workers per (model, variant), not per job: queues can hold thousands.
  std::map<ModelKey, bool> served;
  for (auto& [job_id, job] : active_) {
    if (MarkUnservableLocked(*job, now, &served)) NotifyLocked(*job);
    if (timeout > 0 && job->unservable_since > 0 && now - job->unservable_since >= timeout) {
      expired.push_back(job.get());
    }
  }
  for (ActiveJob* job : expired) {
    const std::string variant = job->placement.variant ? job->placement.variant->name : "?";
    FinalizeLocked(*job, v1::JOB_STATE_FAILED,
                   absl::StrCat("no registered worker served ", job->placement.model_id,
                                " variant ", variant, " for ", static_cast<int64_t>(timeout),
                                " s (unservable_job_timeout_seconds)"));
  }
}

void Scheduler::CollectUnservableLocked(double now) {
  std::map<ModelKey, double> oldest;
  for (const auto& [job_id, job] : active_) {
    if (job->unservable_since == 0 || job->placement.variant == nullptr) continue;
    double& age = oldest[{job->placement.model_id, job->placement.variant->name}];
    age = std::max(age, now - job->unservable_since);
  }
  for (const ModelKey& key : unservable_gauges_) {
    if (oldest.count(key) == 0)
      metrics_->queue_unservable_age.WithLabels({key.first, key.second}).Set(0);
  }
  for (const auto& [key, age] : oldest) {
    metrics_->queue_unservable_age.WithLabels({key.first, key.second}).Set(age);
    unservable_gauges_.insert(key);
  }
}

absl::Status Scheduler::DeleteJob(const std::string& job_id) {
  TV_ASSIGN_OR_RETURN(v1::Job job, GetJob(job_id));  // NotFound when unknown or deleted already
  const double now = WallNow();
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = active_.find(job_id);
    if (it != active_.end()) {
      ActiveJob& active = *it->second;
      // Marked first: a cancel that finalizes at once, or a result that lands later, then
      // finds the job deleted and removes its video (FinalizeLocked).
      active.stored.deleted_unix_seconds = now;
      TV_RETURN_IF_ERROR(store_->MarkDeleted(job_id, now));
      // A progressive job's readers stop now, NOT_FOUND from here on: ended before a finalize
      // below could end them as CANCELLED (the first end wins), and before it frees `active`.
      if (active.live != nullptr) {
        active.live->End(absl::NotFoundError(absl::StrCat("job_id: job ", job_id, " was deleted")));
      }
      auto worker = workers_.find(active.session_id);
      if (active.stored.state == v1::JOB_STATE_QUEUED || worker == workers_.end()) {
        FinalizeLocked(active, v1::JOB_STATE_CANCELLED, "");  // erases `active`
      } else if (!active.cancel_requested) {
        active.cancel_requested = true;
        active.cancel_requested_at = SteadyNow();
        v1::SchedulerMessage message;
        message.mutable_cancel()->set_task_id(job_id);
        message.mutable_cancel()->set_attempt(active.stored.attempts);
        worker->second->link->Send(message);
      }
      TV_LOG(INFO) << "job " << job_id << ": deleted";
      return absl::OkStatus();
    }
  }
  TV_RETURN_IF_ERROR(store_->MarkDeleted(job_id, now));
  TV_RETURN_IF_ERROR(artifacts_->Remove(job_id));
  TV_LOG(INFO) << "job " << job_id << ": deleted";
  return absl::OkStatus();
}

absl::StatusOr<v1::ListModelsResponse> Scheduler::ListModels() {
  v1::ListModelsResponse response;
  std::lock_guard<std::mutex> lock(mu_);
  for (const ModelSpec& model : catalog_.models()) {
    v1::ModelInfo* info = response.add_models();
    info->set_model_id(model.id);
    info->set_experts(model.experts);
    info->set_default_variant(model.default_variant);
    int width = 0, height = 0;
    if (DefaultSize(model, &width, &height).ok()) {
      info->set_default_width_pixels(width);
      info->set_default_height_pixels(height);
    }
    info->set_default_num_frames(model.default_num_frames);
    for (const VariantSpec& variant : model.variants) {
      v1::VariantInfo* v = info->add_variants();
      v->set_variant(variant.name);
      v->set_is_default(variant.name == model.default_variant);
      v->set_is_i2v(variant.is_i2v);
      v->set_sampler(variant.sampler);
      v->set_default_steps(variant.default_steps);
      v->set_max_steps(variant.max_steps);
      v->set_attention(variant.attention);
      v->set_weights(variant.weights);
      v->set_cfg(variant.cfg);
      for (const std::string& node_class : NodeClassesOf(variant)) v->add_node_classes(node_class);
      const ModelKey key{model.id, variant.name};
      for (const auto& [id, worker] : workers_) {
        if (!worker->registered || worker->variants.count(key) == 0) continue;
        v->set_workers(v->workers() + 1);
        if (worker->loaded.count(key) != 0) v->set_workers_loaded(v->workers_loaded() + 1);
      }
    }
  }
  return response;
}

absl::StatusOr<v1::ListWorkersResponse> Scheduler::ListWorkers() {
  v1::ListWorkersResponse response;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Worker*> sorted;
  for (const auto& [id, worker] : workers_) {
    if (worker->registered) sorted.push_back(worker.get());
  }
  std::sort(sorted.begin(), sorted.end(), [](const Worker* a, const Worker* b) {
    return std::tie(a->info.node_class(), a->info.worker_id()) <
           std::tie(b->info.node_class(), b->info.worker_id());
  });
  const double now = SteadyNow();
  for (const Worker* w : sorted) {
    v1::WorkerInfo* info = response.add_workers();
    info->set_worker_id(w->info.worker_id());
    info->set_node_class(w->info.node_class());
    info->set_gpu_name(w->info.gpu_name());
    info->set_memory_bytes(w->info.memory_bytes());
    info->set_gpu_count(w->info.gpu_count());
    info->set_tensor_parallel_size(w->info.tensor_parallel_size());
    info->set_sequence_parallel_size(w->info.sequence_parallel_size());
    info->set_max_concurrent_tasks(w->max_tasks);
    for (const std::string& job_id : w->tasks) info->add_job_ids(job_id);
    info->set_draining(w->draining);
    info->set_memory_used_bytes(w->memory_used_bytes);
    info->set_memory_peak_bytes(w->memory_peak_bytes);
    for (const ModelKey& key : w->variants) {
      v1::WorkerModel* m = info->add_models();
      m->set_model_id(key.first);
      m->set_variant(key.second);
      m->set_loaded(w->loaded.count(key) != 0);
    }
    info->set_peer(w->peer);
    info->set_idle_seconds(std::max(0.0, now - w->last_seen));
  }
  return response;
}

}  // namespace turbovid::scheduler
