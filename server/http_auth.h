// Authentication of the HTTP job gateway without touching its routes: a guard (common/http_server.h)
// checks the Authorization header of each request and records the caller for the connection's
// thread, and the gateway is handed a CallerScopedBackend, which scopes every call to that caller
// (server/tenant_scope.h). A call on a thread with no recorded caller is refused.
#pragma once

#include <memory>

#include "common/http_server.h"
#include "server/auth.h"
#include "server/backend.h"

namespace turbovid::server {

// The guard to install with HttpServer::SetGuard; `auth` must outlive the server.
common::HttpGuard MakeHttpAuthGuard(Authenticator* auth);

class CallerScopedBackend final : public VideoBackend {
 public:
  explicit CallerScopedBackend(VideoBackend* inner) : inner_(inner) {}

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
  absl::StatusOr<v1::ListModelsResponse> ListModels() override;
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers() override;

 private:
  VideoBackend* inner_;
};

// The fleet view (FleetService.GetFleet) for the HTTP gateway: like ListWorkers, the same for
// every authenticated caller, refused on a thread with no recorded caller.
class CallerScopedFleetBackend final : public FleetBackend {
 public:
  explicit CallerScopedFleetBackend(FleetBackend* inner) : inner_(inner) {}
  absl::StatusOr<v1::GetFleetResponse> GetFleet() override;

 private:
  FleetBackend* inner_;
};

}  // namespace turbovid::server
