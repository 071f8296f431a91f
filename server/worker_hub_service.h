// gRPC turbovid.v1.WorkerHub (callback API): one bidirectional reactor per connected worker,
// bridging the stream to a WorkerSession of the control plane.
#pragma once

#include "server/auth.h"
#include "server/backend.h"
#include "turbovid/v1/worker_hub.grpc.pb.h"

namespace turbovid::server {

class WorkerHubServiceImpl final : public v1::WorkerHub::CallbackService {
 public:
  // `auth` (may be null: no checks) must outlive the service.
  WorkerHubServiceImpl(WorkerHubBackend* backend, Authenticator* auth);

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::SchedulerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  WorkerHubBackend* backend_;
  Authenticator* auth_;
};

}  // namespace turbovid::server
