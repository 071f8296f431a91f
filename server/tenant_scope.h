// A VideoBackend seen through one caller's credentials: jobs it submits carry its tenant, and it
// sees, watches, cancels, lists and downloads only its tenant's jobs (an admin sees all). Another
// tenant's job is NotFound with the same message as a job that does not exist. Used by the gRPC
// handlers and the HTTP gateway alike.
#pragma once

#include <string>

#include "server/auth.h"
#include "server/backend.h"

namespace turbovid::server {

// NotFound unless `job` belongs to `caller` (or caller is an admin).
absl::Status CheckOwner(const Principal& caller, const v1::Job& job);

class TenantScopedBackend final : public VideoBackend {
 public:
  // `inner` must outlive this object.
  TenantScopedBackend(VideoBackend* inner, Principal caller)
      : inner_(inner), caller_(std::move(caller)) {}

  absl::StatusOr<v1::Job> SubmitVideo(const v1::SubmitVideoRequest& request) override;
  void SubmitVideoAsync(const v1::SubmitVideoRequest& request, SubmitDone done) override;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) override;
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request) override;
  absl::StatusOr<uint64_t> WatchJob(const std::string& job_id, const std::string& client,
                                    JobListener listener) override;
  void Unwatch(uint64_t watch_id) override { inner_->Unwatch(watch_id); }
  absl::StatusOr<std::unique_ptr<ByteSource>> OpenVideo(const std::string& job_id) override;
  absl::Status DeleteJob(const std::string& job_id) override;
  // The catalog and the workers are the same for every authenticated caller.
  absl::StatusOr<v1::ListModelsResponse> ListModels() override { return inner_->ListModels(); }
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers() override { return inner_->ListWorkers(); }

 private:
  VideoBackend* inner_;
  Principal caller_;
};

}  // namespace turbovid::server
