// grpc::ServerBuilder wiring for the services of server/.
#include "server/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "server/video_service.h"
#include "server/worker_hub_service.h"

namespace turbovid::server {

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcServerOptions& options,
                                                              VideoBackend* video,
                                                              WorkerHubBackend* hub,
                                                              RpcObserver observer) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Workers keep one stream open for hours: ping them so dead peers are noticed.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (video != nullptr) {
    server->video_service_ = std::make_unique<VideoServiceImpl>(video, observer);
    builder.RegisterService(server->video_service_.get());
  }
  if (hub != nullptr) {
    server->hub_service_ = std::make_unique<WorkerHubServiceImpl>(hub);
    builder.RegisterService(server->hub_service_.get());
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("grpc: cannot listen on ", options.listen_address));
  }
  TV_LOG(INFO) << "grpc: serving on " << options.listen_address << " (port " << server->port_
               << ")";
  return server;
}

GrpcServer::~GrpcServer() { Shutdown(0); }

void GrpcServer::Shutdown(double grace_seconds) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000));
  server_->Shutdown(deadline);
  server_->Wait();
}

}  // namespace turbovid::server
