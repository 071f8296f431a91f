// gRPC turbovid.v1.VideoService (callback API): thin handlers over a VideoBackend.
#pragma once

#include "server/backend.h"
#include "turbovid/v1/video_service.grpc.pb.h"

namespace turbovid::server {

class VideoServiceImpl final : public v1::VideoService::CallbackService {
 public:
  // `backend` must outlive the service; `observer` may be empty.
  // `auth` (may be null: every caller is the empty tenant, admin) must outlive the service.
  VideoServiceImpl(VideoBackend* backend, RpcObserver observer, Authenticator* auth = nullptr);

  grpc::ServerUnaryReactor* SubmitVideo(grpc::CallbackServerContext* context,
                                        const v1::SubmitVideoRequest* request,
                                        v1::SubmitVideoResponse* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::ServerWriteReactor<v1::Job>* WatchJob(grpc::CallbackServerContext* context,
                                              const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerWriteReactor<v1::VideoChunk>* GetVideo(grpc::CallbackServerContext* context,
                                                     const v1::GetVideoRequest* request) override;
  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* context,
                                      const v1::DeleteJobRequest* request,
                                      v1::DeleteJobResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* context,
                                        const v1::ListWorkersRequest* request,
                                        v1::ListWorkersResponse* response) override;

 private:
  // The caller's credentials (auth off: the empty tenant, admin).
  absl::StatusOr<Principal> Caller(const grpc::CallbackServerContext& context);

  VideoBackend* backend_;
  RpcObserver observer_;
  Authenticator* auth_;
};

}  // namespace turbovid::server
