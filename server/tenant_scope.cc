#include "server/tenant_scope.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::server {

absl::Status CheckOwner(const Principal& caller, const v1::Job& job) {
  if (caller.admin || job.request().tenant() == caller.tenant) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("job_id: no job ", job.job_id()));
}

absl::StatusOr<v1::Job> TenantScopedBackend::SubmitVideo(const v1::SubmitVideoRequest& request) {
  if (request.tenant() == caller_.tenant) return inner_->SubmitVideo(request);
  v1::SubmitVideoRequest owned = request;
  owned.set_tenant(caller_.tenant);
  return inner_->SubmitVideo(owned);
}

void TenantScopedBackend::SubmitVideoAsync(const v1::SubmitVideoRequest& request,
                                           SubmitDone done) {
  if (request.tenant() == caller_.tenant) return inner_->SubmitVideoAsync(request, std::move(done));
  v1::SubmitVideoRequest owned = request;
  owned.set_tenant(caller_.tenant);
  inner_->SubmitVideoAsync(owned, std::move(done));
}

absl::StatusOr<v1::Job> TenantScopedBackend::GetJob(const std::string& job_id) {
  TV_ASSIGN_OR_RETURN(v1::Job job, inner_->GetJob(job_id));
  TV_RETURN_IF_ERROR(CheckOwner(caller_, job));
  return job;
}

absl::StatusOr<v1::Job> TenantScopedBackend::CancelJob(const std::string& job_id) {
  TV_RETURN_IF_ERROR(GetJob(job_id).status());  // a job's tenant never changes
  return inner_->CancelJob(job_id);
}

absl::StatusOr<v1::ListJobsResponse> TenantScopedBackend::ListJobs(
    const v1::ListJobsRequest& request) {
  if (caller_.admin || request.tenant() == caller_.tenant) return inner_->ListJobs(request);
  v1::ListJobsRequest own = request;
  own.set_tenant(caller_.tenant);
  return inner_->ListJobs(own);
}

absl::StatusOr<uint64_t> TenantScopedBackend::WatchJob(const std::string& job_id,
                                                       const std::string& client,
                                                       JobListener listener) {
  TV_RETURN_IF_ERROR(GetJob(job_id).status());
  return inner_->WatchJob(job_id, client, std::move(listener));
}

absl::StatusOr<std::unique_ptr<ByteSource>> TenantScopedBackend::OpenVideo(
    const std::string& job_id) {
  TV_RETURN_IF_ERROR(GetJob(job_id).status());
  return inner_->OpenVideo(job_id);
}

absl::Status TenantScopedBackend::DeleteJob(const std::string& job_id) {
  TV_RETURN_IF_ERROR(GetJob(job_id).status());
  return inner_->DeleteJob(job_id);
}

}  // namespace turbovid::server
