// Builds and runs the scheduler's gRPC server: VideoService, WorkerHub, the standard health
// service and server reflection. No gRPC headers here, so the binary's main stays light.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/limits.h"
#include "server/backend.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace turbovid::common {
class TlsReloader;
}  // namespace turbovid::common

namespace turbovid::server {

class CertificateStaging;

class FleetServiceImpl;
class VideoServiceImpl;
class WorkerHubServiceImpl;
class Authenticator;

struct GrpcServerOptions {
  std::string listen_address = "0.0.0.0:50051";       // host:port; port 0 picks a free one
  int max_message_bytes = common::kGrpcMessageBytes;  // send/receive cap (images ride in Submit)
  Authenticator* auth = nullptr;  // API keys and worker tokens; null = no checks (tests)
  bool reflection = false;        // server reflection (lists every service and message)
  // TLS from the reloader's current set (null = plaintext); a client CA in it = mTLS (clients
  // and workers must present a certificate signed by it). Every set the reloader accepts later
  // is served to new connections within about a second; connections already open keep theirs.
  // The reloader must outlive the server.
  common::TlsReloader* tls = nullptr;
};

class GrpcServer {
 public:
  // Any backend may be null (its service is then not registered).
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const GrpcServerOptions& options,
                                                           VideoBackend* video,
                                                           WorkerHubBackend* hub,
                                                           RpcObserver observer,
                                                           FleetBackend* fleet = nullptr);
  ~GrpcServer();

  int port() const { return port_; }
  // Health NOT_SERVING, stop accepting calls, cancel the remaining ones after grace_seconds.
  void Shutdown(double grace_seconds);

 private:
  GrpcServer() = default;

  std::unique_ptr<VideoServiceImpl> video_service_;
  std::unique_ptr<FleetServiceImpl> fleet_service_;
  std::unique_ptr<WorkerHubServiceImpl> hub_service_;
  std::shared_ptr<CertificateStaging> staging_;  // with TLS
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace turbovid::server
