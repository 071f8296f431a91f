// gRPC turbovid.v1.WorkerHub (callback API): one bidirectional reactor per connected worker,
// bridging the stream to a WorkerSession of the control plane.
#pragma once

#include "server/backend.h"
#include "turbovid/v1/worker_hub.grpc.pb.h"

namespace turbovid::server {

class WorkerHubServiceImpl final : public v1::WorkerHub::CallbackService {
 public:
  explicit WorkerHubServiceImpl(WorkerHubBackend* backend);

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::SchedulerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  WorkerHubBackend* backend_;
};

}  // namespace turbovid::server
