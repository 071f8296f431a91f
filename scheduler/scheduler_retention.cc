// Scheduler: retention of finished jobs, the artifact store's size limit, GPU-seconds per tenant
// and the check of worker results (docs/operations.md "Retention, quotas and result checks").
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "engine/video/mp4_probe.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_internal.h"

namespace turbovid::scheduler {

namespace {
constexpr int kExpireBatch = 500;  // rows read per store query of a sweep
}  // namespace

int Scheduler::ExpireFinished(double now_unix) {
  const double ttl = config_.retention.finished_job_ttl_seconds;
  if (ttl <= 0) return 0;
  int expired = 0;
  while (true) {
    absl::StatusOr<std::vector<std::string>> ids =
        store_->ListFinishedBefore(now_unix - ttl, kExpireBatch);
    if (!ids.ok()) {
      TV_LOG(WARNING) << "retention: " << ids.status();
      return expired;
    }
    int removed_here = 0;
    for (const std::string& id : *ids) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        // Recovered or still finishing in memory: not ours to remove (its row may be stale).
        if (active_.count(id) > 0 || pending_finishes_.count(id) > 0) continue;
      }
      absl::StatusOr<StoredJob> stored = store_->Get(id);
      if (!stored.ok()) continue;  // removed meanwhile
      // The video first: a crash between the two leaves a row the next sweep removes, never a
      // file no row points to.
      if (absl::Status removed = artifacts_->Remove(id); !removed.ok()) {
        TV_LOG(WARNING) << "retention: job " << id << ": " << removed;
        continue;
      }
      absl::Status status = store_->RemoveFinished(id);
      if (!status.ok()) {
        TV_LOG(WARNING) << "retention: job " << id << ": " << status;
        continue;
      }
      metrics_->jobs_expired.WithLabels({StateName(stored->state)}).Increment();
      ++removed_here;
    }
    expired += removed_here;
    // A short batch was the last; a batch with nothing removable would repeat itself.
    if (static_cast<int>(ids->size()) < kExpireBatch || removed_here == 0) break;
  }
  if (expired > 0) {
    TV_LOG(INFO) << "retention: " << expired << " job(s) finished more than " << ttl
                 << " s ago removed (rows and videos)";
  }
  return expired;
}

absl::Status Scheduler::CheckArtifactStoreLimit() const {
  const int64_t limit = config_.retention.artifact_store_max_bytes;
  if (limit <= 0) return absl::OkStatus();
  const ArtifactUsage usage = artifacts_->Usage();
  if (usage.bytes < limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "artifact store full: it holds ", usage.bytes, " bytes in ", usage.files,
      " videos, retention.artifact_store_max_bytes is ", limit,
      "; retry after finished jobs expire or are deleted"));
}

absl::Status Scheduler::LoadGpuUsage() {
  TV_ASSIGN_OR_RETURN(std::vector<JobStore::GpuUsage> usage,
                      store_->GpuUsageSince(UnixNow() - TenantQuotas::kGpuWindowSeconds));
  std::lock_guard<std::mutex> lock(mu_);
  for (const JobStore::GpuUsage& u : usage) {
    quotas_.AddGpuSeconds(u.tenant, u.finished_unix_seconds, u.gpu_seconds);
  }
  if (!usage.empty()) {
    TV_LOG(INFO) << "quotas: GPU-seconds of " << usage.size()
                 << " job(s) finished in the last 24 h loaded from the job store";
  }
  return absl::OkStatus();
}

void Scheduler::CountRunLocked(ActiveJob& job, const v1::TaskResult& result, double now_steady) {
  // The worker's own run time, bounded by what the scheduler saw (assignment to result); the
  // scheduler's measure when the worker reports none.
  const double measured = std::max(0.0, now_steady - job.assigned_steady);
  const double reported = result.run_seconds();
  const double run = reported > 0 ? std::min(reported, measured) : measured;
  job.stored.gpu_seconds += run * std::max(1, job.gpus);
}

void Scheduler::ChargeGpuLocked(const ActiveJob& job) {
  if (!(job.stored.gpu_seconds > 0)) return;
  const std::string& tenant = job.stored.request.tenant();
  quotas_.AddGpuSeconds(tenant, job.stored.finished_unix_seconds, job.stored.gpu_seconds);
  metrics_->tenant_gpu_seconds_total.WithLabels({tenant}).Increment(job.stored.gpu_seconds);
}

absl::Status Scheduler::CheckResultVideo(ArtifactWriter& upload, const ResultExpectation& expect,
                                         std::string* reason) {
  const std::string who = absl::StrCat("worker ", expect.worker_id, ": ");
  // Read whole into memory to be parsed: bounded by twice the job's raw frames (4:2:0), far
  // above what an H.264 encoder writes, so a worker cannot make the scheduler read gigabytes.
  const int64_t max_bytes =
      int64_t{3} * expect.frames * expect.width * expect.height + (int64_t{1} << 20);
  if (upload.bytes_written() > max_bytes) {
    *reason = "oversized";
    return absl::FailedPreconditionError(
        absl::StrCat(who, "uploaded video is ", upload.bytes_written(), " bytes, more than ",
                     max_bytes, " (twice the job's raw frames)"));
  }
  absl::StatusOr<std::string> bytes = upload.ReadBack();
  if (!bytes.ok()) {
    *reason = "unreadable";
    return absl::FailedPreconditionError(
        absl::StrCat(who, "uploaded video unreadable: ", bytes.status().message()));
  }
  absl::StatusOr<engine::video::Mp4Info> info = engine::video::ProbeMp4(*bytes);
  if (!info.ok()) {
    *reason = "unparseable";
    return absl::FailedPreconditionError(
        absl::StrCat(who, "uploaded video is not a valid MP4 (", info.status().message(), ")"));
  }
  if (info->frames != expect.frames) {
    *reason = "frames";
    return absl::FailedPreconditionError(absl::StrCat(who, "uploaded video has ", info->frames,
                                                      " frames, the job asked for ",
                                                      expect.frames));
  }
  if (info->width != expect.width || info->height != expect.height) {
    *reason = "size";
    return absl::FailedPreconditionError(absl::StrCat(who, "uploaded video is ", info->width, "x",
                                                      info->height, ", the job renders at ",
                                                      expect.width, "x", expect.height));
  }
  return absl::OkStatus();
}

void Scheduler::RejectResultLocked(ActiveJob& job, const absl::Status& check,
                                   const std::string& reason) {
  metrics_->results_rejected.WithLabels({reason}).Increment();
  const std::string error = absl::StrCat("result rejected: ", check.message());
  TV_LOG(WARNING) << "job " << job.stored.job_id << ": " << error;
  job.upload.reset();
  if (job.stored.losses + 1 >= config_.max_attempts && !job.cancel_requested) {
    ++job.stored.losses;
    FinalizeLocked(job, v1::JOB_STATE_FAILED, error, "result_rejected");
    return;
  }
  job.stored.error = error;  // shown while it waits for another attempt
  RequeueLocked(job, "result rejected", /*count_loss=*/true);
}

void Scheduler::CollectRetentionMetricsLocked() {
  const ArtifactUsage usage = artifacts_->Usage();
  metrics_->artifact_store_bytes.Get().Set(static_cast<double>(usage.bytes));
  metrics_->artifact_store_files.Get().Set(static_cast<double>(usage.files));
  metrics_->artifact_store_max_bytes.Get().Set(
      static_cast<double>(config_.retention.artifact_store_max_bytes));
  for (const auto& [tenant, seconds] : quotas_.GpuSecondsByTenant(UnixNow())) {
    metrics_->tenant_gpu_seconds.WithLabels({tenant}).Set(seconds);
  }
}

}  // namespace turbovid::scheduler
