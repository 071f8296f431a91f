// A thin client of turbovid.v1.VideoService for the CLI and the load generator: gRPC status
// becomes absl::Status, retryable failures are retried, watches resume across reconnects.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "turbovid/v1/fleet_service.grpc.pb.h"
#include "turbovid/v1/video_service.grpc.pb.h"

namespace turbovid::tools {

namespace v1 = ::turbovid::v1;

// gRPC status → absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status);
// "QUEUED", "DENOISING", ... (the enum name without its prefix).
std::string StateName(v1::JobState state);
std::string StageName(v1::Stage stage);
bool IsFinal(v1::JobState state);
// A random 128-bit hex id for client_request_id.
std::string RandomRequestId();

class VideoClient {
 public:
  // address: "host:port" of the scheduler's gRPC port. Credentials come from the environment:
  // TURBOVID_API_KEY (sent as `authorization: Bearer <key>` on every call) and TURBOVID_CA_CERT
  // (a PEM file: set = TLS, verified against it; else a plaintext channel). The CLI's --api-key
  // and --ca-cert flags set them.
  explicit VideoClient(const std::string& address, absl::Duration rpc_timeout = absl::Seconds(30));

  // Retries UNAVAILABLE / DEADLINE_EXCEEDED with the same client_request_id until retry_for
  // has passed (the scheduler returns the same job for a repeated id).
  absl::StatusOr<v1::Job> Submit(const v1::SubmitVideoRequest& request,
                                 absl::Duration retry_for = absl::Seconds(20));
  absl::StatusOr<v1::Job> Get(const std::string& job_id);
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request);
  absl::Status Delete(const std::string& job_id);
  absl::StatusOr<v1::ListModelsResponse> ListModels();
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers();
  // turbovid.v1.FleetService.GetFleet on the same channel and credentials.
  absl::StatusOr<v1::GetFleetResponse> GetFleet();
  // Calls on_update for each streamed Job until a final state; reconnects when the stream
  // breaks with UNAVAILABLE (scheduler restart) until `timeout` has passed. Returns the final job.
  absl::StatusOr<v1::Job> Watch(const std::string& job_id,
                                const std::function<void(const v1::Job&)>& on_update,
                                absl::Duration timeout);
  // Streams the MP4 of a SUCCEEDED job into `path` (through `path`.part, renamed when complete).
  // Returns its size in bytes. A download cut by a scheduler restart starts again, until
  // `retry_for` has passed.
  absl::StatusOr<int64_t> Download(const std::string& job_id, const std::string& path,
                                   absl::Duration retry_for = absl::Seconds(60));
  // The same, into memory (one attempt).
  absl::StatusOr<std::string> DownloadBytes(const std::string& job_id);

  v1::VideoService::Stub& stub() { return *stub_; }

 private:
  void SetDeadline(grpc::ClientContext* context) const;  // also adds the API key
  void Authorize(grpc::ClientContext* context) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoService::Stub> stub_;
  absl::Duration rpc_timeout_;
  std::string api_key_;
};

}  // namespace turbovid::tools
