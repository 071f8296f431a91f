#include "server/http_auth.h"

#include "common/status_macros.h"
#include "server/tenant_scope.h"

namespace turbovid::server {
namespace {

// The caller of the HTTP request this thread is serving (civetweb serves a request, handler and
// response, on one thread); set by the guard's context object for exactly that time.
thread_local const Principal* t_caller = nullptr;

class CallerContext {
 public:
  explicit CallerContext(Principal caller) : caller_(std::move(caller)) { t_caller = &caller_; }
  ~CallerContext() { t_caller = nullptr; }
  CallerContext(const CallerContext&) = delete;
  CallerContext& operator=(const CallerContext&) = delete;

 private:
  Principal caller_;
};

absl::StatusOr<TenantScopedBackend> Scoped(VideoBackend* inner) {
  if (t_caller == nullptr) {
    return absl::UnauthenticatedError("no caller recorded for this request");
  }
  return TenantScopedBackend(inner, *t_caller);
}

}  // namespace

common::HttpGuard MakeHttpAuthGuard(Authenticator* auth) {
  return [auth](const common::HttpRequest& request) -> absl::StatusOr<std::shared_ptr<void>> {
    const std::string authorization = request.Header("authorization");
    // The web page and its assets carry no data: served to anyone, but with no caller recorded,
    // so any backend call made for such a request is refused.
    const bool api = request.path.rfind("/turbovid/", 0) == 0 || request.path.rfind("/v1/", 0) == 0;
    if (authorization.empty() && auth->enabled() && !api &&
        (request.method == "GET" || request.method == "HEAD")) {
      return std::shared_ptr<void>();
    }
    TV_ASSIGN_OR_RETURN(Principal caller, auth->AuthenticateClient(authorization));
    return std::static_pointer_cast<void>(std::make_shared<CallerContext>(std::move(caller)));
  };
}

absl::StatusOr<v1::Job> CallerScopedBackend::SubmitVideo(const v1::SubmitVideoRequest& request) {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.SubmitVideo(request);
}

void CallerScopedBackend::SubmitVideoAsync(const v1::SubmitVideoRequest& request,
                                           SubmitDone done) {
  absl::StatusOr<TenantScopedBackend> scoped = Scoped(inner_);
  if (!scoped.ok()) return done(scoped.status());
  scoped->SubmitVideoAsync(request, std::move(done));
}

absl::StatusOr<v1::Job> CallerScopedBackend::GetJob(const std::string& job_id) {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.GetJob(job_id);
}

absl::StatusOr<v1::Job> CallerScopedBackend::CancelJob(const std::string& job_id) {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.CancelJob(job_id);
}

absl::StatusOr<v1::ListJobsResponse> CallerScopedBackend::ListJobs(
    const v1::ListJobsRequest& request) {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.ListJobs(request);
}

absl::StatusOr<uint64_t> CallerScopedBackend::WatchJob(const std::string& job_id,
                                                       const std::string& client,
                                                       JobListener listener) {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.WatchJob(job_id, client, std::move(listener));
}

absl::StatusOr<std::unique_ptr<ByteSource>> CallerScopedBackend::OpenVideo(
    const std::string& job_id) {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.OpenVideo(job_id);
}

absl::Status CallerScopedBackend::DeleteJob(const std::string& job_id) {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.DeleteJob(job_id);
}

absl::StatusOr<v1::ListModelsResponse> CallerScopedBackend::ListModels() {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.ListModels();
}

absl::StatusOr<v1::ListWorkersResponse> CallerScopedBackend::ListWorkers() {
  TV_ASSIGN_OR_RETURN(TenantScopedBackend scoped, Scoped(inner_));
  return scoped.ListWorkers();
}

absl::StatusOr<v1::GetFleetResponse> CallerScopedFleetBackend::GetFleet() {
  if (t_caller == nullptr) {
    return absl::UnauthenticatedError("no caller recorded for this request");
  }
  return inner_->GetFleet();
}

}  // namespace turbovid::server
