// grpc::ServerBuilder wiring for the services of server/.
#include "server/grpc_server.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/tls.h"
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

// gRPC's FileWatcherCertificateProvider re-reads fixed paths once a second, but it neither checks
// that a key matches its certificate nor keeps the previous pair when a file is unreadable. So
// it never sees the operator's files: it watches <staging>/current/{key,cert,ca}.pem, a
// directory (mode 0700, under the system's temporary directory) to which only sets that
// common::TlsReloader loaded and checked are published. Each set goes to gen-N/, and the
// `current` link is swapped with rename(). The watcher detects a swap between its reads of key
// and certificate by their modification times (seconds), so every generation's files get a
// time later than the previous generation's.
}  // namespace

class CertificateStaging {
 public:
  static absl::StatusOr<std::shared_ptr<CertificateStaging>> Create(
      const common::TlsMaterial& material) {
    namespace fs = std::filesystem;
    std::string pattern = (fs::temp_directory_path() / "turbovid-grpc-tls-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("tls: cannot create a directory like '", pattern,
                                              "': ", std::strerror(errno)));
    }
    std::shared_ptr<CertificateStaging> staging(new CertificateStaging(pattern));
    TV_RETURN_IF_ERROR(staging->Publish(material));
    return staging;
  }
  ~CertificateStaging() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string path(const char* name) const { return dir_ + "/current/" + name; }

  absl::Status Publish(const common::TlsMaterial& material) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string gen = absl::StrCat("gen-", ++generation_);
    const std::string gen_dir = absl::StrCat(dir_, "/", gen);
    if (mkdir(gen_dir.c_str(), 0700) != 0) {
      return absl::InternalError(absl::StrCat("tls: mkdir ", gen_dir, ": ", std::strerror(errno)));
    }
    mtime_ = std::max<int64_t>(mtime_ + 1, time(nullptr));
    for (const auto& [name, text] :
         {std::pair<const char*, const std::string*>{"key.pem", &material.private_key_pem},
          {"cert.pem", &material.cert_chain_pem},
          {"ca.pem", &material.client_ca_pem}}) {
      const std::string file = absl::StrCat(gen_dir, "/", name);
      const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      bool ok = fd >= 0 && write(fd, text->data(), text->size()) ==
                               static_cast<ssize_t>(text->size());
      if (fd >= 0) {
        const timespec times[2] = {{mtime_, 0}, {mtime_, 0}};
        ok = futimens(fd, times) == 0 && ok;
        ok = close(fd) == 0 && ok;
      }
      if (!ok) return absl::InternalError(absl::StrCat("tls: cannot write ", file));
    }
    const std::string link = dir_ + "/current";
    const std::string temp = dir_ + "/current.tmp";
    unlink(temp.c_str());
    if (symlink(gen.c_str(), temp.c_str()) != 0 || rename(temp.c_str(), link.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("tls: cannot switch ", link, ": ",
                                              std::strerror(errno)));
    }
    if (generation_ > 2) {  // one generation back stays for a watcher in the middle of a read
      std::error_code ignored;
      std::filesystem::remove_all(absl::StrCat(dir_, "/gen-", generation_ - 2), ignored);
    }
    return absl::OkStatus();
  }

 private:
  explicit CertificateStaging(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
  std::mutex mu_;
  int64_t generation_ = 0;
  int64_t mtime_ = 0;
};

namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const GrpcServerOptions& options, std::shared_ptr<CertificateStaging>* staging_out) {
  if (options.tls == nullptr) return grpc::InsecureServerCredentials();
  const std::shared_ptr<const common::TlsMaterial> material = options.tls->current();
  TV_ASSIGN_OR_RETURN(std::shared_ptr<CertificateStaging> staging,
                      CertificateStaging::Create(*material));
  const bool mutual = !material->client_ca_pem.empty();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      staging->path("key.pem"), staging->path("cert.pem"),
      mutual ? staging->path("ca.pem") : std::string(), /*refresh_interval_sec=*/1);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (mutual) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  // The reloader keeps the staging alive while it may still publish to it.
  options.tls->OnReload([staging](const common::TlsMaterial& next) {
    const absl::Status published = staging->Publish(next);
    if (!published.ok()) TV_LOG(ERROR) << "grpc: " << published;
  });
  *staging_out = std::move(staging);
  return grpc::experimental::TlsServerCredentials(tls);
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
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  TV_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      ServerCredentials(options, &server->staging_));
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
               << (options.tls == nullptr                              ? ", plaintext"
                   : options.tls->current()->client_ca_pem.empty() ? ", TLS"
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
