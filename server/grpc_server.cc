// grpc::ServerBuilder wiring for the services of server/.
#include "server/grpc_server.h"

#include <dlfcn.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "server/fleet_service.h"
#include "server/video_service.h"
#include "server/worker_hub_service.h"

namespace turbovid::server {
namespace {

// Loading the library registers its plugin with grpc::ServerBuilder (a static initializer).
absl::Status LoadReflection() {
  static void* const handle = dlopen(TV_GRPC_REFLECTION_LIBRARY, RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    return absl::UnavailableError(absl::StrCat("grpc reflection: cannot load ",
                                               TV_GRPC_REFLECTION_LIBRARY, ": ", dlerror()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadPem(const char* field, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read '", path, "'"));
  }
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": '", path, "' is not a PEM file"));
  }
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const GrpcServerOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("tls.client_ca_file: set without tls.cert_file");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("tls.cert_file and tls.key_file: set both or neither");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  TV_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("tls.cert_file", options.tls_cert_file));
  TV_ASSIGN_OR_RETURN(pair.private_key, ReadPem("tls.key_file", options.tls_key_file));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca_file.empty()) {
    TV_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                        ReadPem("tls.client_ca_file", options.tls_client_ca_file));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcServerOptions& options,
                                                              VideoBackend* video,
                                                              WorkerHubBackend* hub,
                                                              RpcObserver observer,
                                                              FleetBackend* fleet) {
  grpc::EnableDefaultHealthCheckService(true);
  // A process-wide plugin: once loaded, every later server of the process has it.
  if (options.reflection) TV_RETURN_IF_ERROR(LoadReflection());
  TV_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      ServerCredentials(options));
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Workers keep one stream open for hours: ping them so dead peers are noticed.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (video != nullptr) {
    server->video_service_ = std::make_unique<VideoServiceImpl>(video, observer, options.auth);
    builder.RegisterService(server->video_service_.get());
  }
  if (fleet != nullptr) {
    server->fleet_service_ = std::make_unique<FleetServiceImpl>(fleet, observer, options.auth);
    builder.RegisterService(server->fleet_service_.get());
  }
  if (hub != nullptr) {
    server->hub_service_ = std::make_unique<WorkerHubServiceImpl>(hub, options.auth);
    builder.RegisterService(server->hub_service_.get());
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("grpc: cannot listen on ", options.listen_address));
  }
  TV_LOG(INFO) << "grpc: serving on " << options.listen_address << " (port " << server->port_
               << (options.tls_cert_file.empty() ? ", plaintext"
                   : options.tls_client_ca_file.empty() ? ", TLS"
                                                        : ", mutual TLS")
               << (options.reflection ? ", reflection on" : "") << ")";
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
