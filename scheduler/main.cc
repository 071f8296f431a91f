// turbovid-scheduler: loads configs/scheduler.yaml (flags override), opens the job store and the
// artifact store, serves gRPC (VideoService, WorkerHub, health, reflection when configured), the
// ops HTTP port (/metrics, /healthz, /readyz) and, on its own port, the HTTP job APIs (the native
// JSON gateway, the OpenAI-compatible /v1/videos, the web page), and shuts down gracefully on
// SIGTERM/SIGINT. `keys add|revoke|list` edit the API keys file.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/build_info.h"
#include "common/process_metrics.h"
#include "common/status_macros.h"
#include "common/tls.h"
#include "scheduler/config.h"
#include "scheduler/data_dir_lock.h"
#include "scheduler/db_maintenance.h"
#include "scheduler/metrics.h"
#include "scheduler/scheduler.h"
#include "server/grpc_server.h"
#include "server/auth.h"
#include "server/http_auth.h"
#include "server/http_gateway.h"
#include "server/openai_gateway.h"
#include "server/protobuf_log.h"
#include "server/web_ui.h"

namespace turbovid::scheduler {
namespace {

constexpr char kUsage[] =
    "usage: turbovid-scheduler [--config FILE] [--listen HOST:PORT] [--http-address ADDR]\n"
    "                          [--http-port N] [--db FILE] [--artifacts DIR] [--models FILE]\n"
    "                          [--lease-seconds S] [--max-attempts N] [--log-level LEVEL]\n"
    "                          [--unservable-job-timeout-seconds S]\n"
    "                          [--ports-file FILE] [--allow-empty-db]\n"
    "                          [--auth-mode required|off] [--api-keys-file FILE]\n"
    "                          [--worker-tokens-file FILE] [--api-http-address ADDR]\n"
    "                          [--api-http-port N] [--http-threads N]\n"
    "                          [--http-request-timeout-ms MS] [--tls-cert FILE] [--tls-key FILE]\n"
    "                          [--tls-client-ca FILE] [--grpc-reflection]\n"
    "                          [--quota-submits-per-second R] [--quota-submit-burst N]\n"
    "                          [--quota-max-active-jobs N] [--quota-gpu-seconds-per-day S]\n"
    "                          [--finished-job-ttl-seconds S] [--retention-sweep-seconds S]\n"
    "                          [--artifact-store-max-bytes N]\n"
    "       turbovid-scheduler recover --db BROKEN --out NEW\n"
    "       turbovid-scheduler keys add --file KEYS --name NAME --tenant TENANT [--admin]\n"
    "       turbovid-scheduler keys revoke --file KEYS --name NAME\n"
    "       turbovid-scheduler keys list --file KEYS\n"
    "       turbovid-scheduler token-hash   (reads a secret on stdin, prints its SHA-256 hex)\n"
    "Flags override the YAML config (default configs/scheduler.yaml when it exists).\n"
    "--ports-file writes 'grpc_port=N http_port=M api_http_port=K' once serving (for port 0).\n"
    "tls (--tls-cert/--tls-key/--tls-client-ca) covers every port; the files are re-read within\n"
    "  a second or two of a change and on SIGHUP (a broken set is refused, the old one kept).\n"
    "keys add prints the new key once; only its SHA-256 is stored. A running scheduler picks up\n"
    "  an edited keys file within a second.\n"
    "--allow-empty-db starts with no jobs although the database is empty (0 bytes), missing or\n"
    "  without its jobs table while its '<db>.initialized' marker says it held jobs.\n"
    "recover salvages the jobs SQLite can still read from a damaged database into NEW (a new\n"
    "  file) and reports rows copied and lost; run it with the scheduler stopped, then point\n"
    "  --db (db_path) at NEW. Exits 1 when not a single job could be read.\n";

struct Flags {
  std::string config_path;
  std::string ports_file;
  std::vector<std::pair<std::string, std::string>> overrides;
};

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg == "--allow-empty-db" || arg == "--grpc-reflection") {  // switches: take no value
      flags.overrides.emplace_back(arg, "true");
      continue;
    }
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(arg, ": missing value"));
    }
    if (arg == "--config") {
      flags.config_path = value;
    } else if (arg == "--ports-file") {
      flags.ports_file = value;
    } else {
      flags.overrides.emplace_back(arg, value);
    }
  }
  return flags;
}

absl::Status ApplyOverride(const std::string& flag, const std::string& value,
                           SchedulerConfig* config) {
  auto to_int = [&](int* out) -> absl::Status {
    if (!absl::SimpleAtoi(value, out)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not an integer"));
    }
    return absl::OkStatus();
  };
  if (flag == "--listen") {
    config->listen_address = value;
  } else if (flag == "--http-address") {
    config->http_address = value;
  } else if (flag == "--http-port") {
    return to_int(&config->http_port);
  } else if (flag == "--api-http-address") {
    config->api_http_address = value;
  } else if (flag == "--api-http-port") {
    return to_int(&config->api_http_port);
  } else if (flag == "--http-threads") {
    return to_int(&config->http_threads);
  } else if (flag == "--http-request-timeout-ms") {
    return to_int(&config->http_request_timeout_ms);
  } else if (flag == "--grpc-reflection") {
    config->grpc_reflection = value != "false";
  } else if (flag == "--quota-submits-per-second" || flag == "--quota-submit-burst") {
    double* out = flag == "--quota-submit-burst" ? &config->quotas.submit_burst
                                                 : &config->quotas.submits_per_second;
    if (!absl::SimpleAtod(value, out)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not a number"));
    }
  } else if (flag == "--quota-max-active-jobs") {
    return to_int(&config->quotas.max_active_jobs);
  } else if (flag == "--quota-gpu-seconds-per-day" || flag == "--finished-job-ttl-seconds" ||
             flag == "--retention-sweep-seconds") {
    double* out = flag == "--quota-gpu-seconds-per-day" ? &config->quotas.gpu_seconds_per_day
                  : flag == "--finished-job-ttl-seconds"
                      ? &config->retention.finished_job_ttl_seconds
                      : &config->retention.sweep_interval_seconds;
    if (!absl::SimpleAtod(value, out)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not a number"));
    }
  } else if (flag == "--artifact-store-max-bytes") {
    if (!absl::SimpleAtoi(value, &config->retention.artifact_store_max_bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not an integer"));
    }
  } else if (flag == "--auth-mode") {
    if (value != "required" && value != "off") {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": '", value, "' is not 'required' or 'off'"));
    }
    config->auth.off = value == "off";
  } else if (flag == "--api-keys-file") {
    config->auth.api_keys_file = value;
  } else if (flag == "--worker-tokens-file") {
    config->auth.worker_tokens_file = value;
  } else if (flag == "--tls-cert") {
    config->tls.cert_file = value;
  } else if (flag == "--tls-key") {
    config->tls.key_file = value;
  } else if (flag == "--tls-client-ca") {
    config->tls.client_ca_file = value;
  } else if (flag == "--db") {
    config->db_path = value;
  } else if (flag == "--allow-empty-db") {
    config->allow_empty_db = value != "false";
  } else if (flag == "--artifacts") {
    config->artifact_dir = value;
  } else if (flag == "--models") {
    config->models_file = value;
  } else if (flag == "--max-attempts") {
    return to_int(&config->max_attempts);
  } else if (flag == "--lease-seconds") {
    if (!absl::SimpleAtod(value, &config->lease_seconds)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not a number"));
    }
  } else if (flag == "--unservable-job-timeout-seconds") {
    if (!absl::SimpleAtod(value, &config->unservable_job_timeout_seconds)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not a number"));
    }
  } else if (flag == "--log-level") {
    TV_ASSIGN_OR_RETURN(common::LogLevel level, common::ParseLogLevel(value));
    common::SetMinLogLevel(level);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": unknown flag\n", kUsage));
  }
  return absl::OkStatus();
}

absl::StatusOr<SchedulerConfig> LoadConfig(const Flags& flags) {
  SchedulerConfig config;
  std::string path = flags.config_path;
  if (path.empty() && std::filesystem::exists("configs/scheduler.yaml")) {
    path = "configs/scheduler.yaml";
  }
  if (!path.empty()) {
    TV_ASSIGN_OR_RETURN(config, LoadSchedulerConfig(path));
  }
  for (const auto& [flag, value] : flags.overrides) {
    TV_RETURN_IF_ERROR(ApplyOverride(flag, value, &config));
  }
  TV_RETURN_IF_ERROR(ValidateSchedulerConfig(config));
  return config;
}

// Every idle HTTP connection and gRPC stream is a descriptor: use the hard limit, not the soft
// default (often 1024).
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

absl::Status Run(int argc, char** argv, const sigset_t& signals) {
  RaiseDescriptorLimit();
  server::RouteProtobufLogs();
  TV_ASSIGN_OR_RETURN(Flags flags, ParseFlags(argc, argv));
  TV_ASSIGN_OR_RETURN(SchedulerConfig config, LoadConfig(flags));
  // Before anything reads or deletes state: two schedulers on one directory run jobs twice, lose
  // cancels and delete each other's uploads. Held until Run returns (process exit).
  TV_ASSIGN_OR_RETURN(std::unique_ptr<DataDirLock> data_lock,
                      DataDirLock::Acquire(config.db_path, config.artifact_dir));
  TV_ASSIGN_OR_RETURN(ModelCatalog catalog, ModelCatalog::LoadFile(config.models_file));
  TV_ASSIGN_OR_RETURN(std::unique_ptr<server::Authenticator> auth,
                      server::Authenticator::Create({.enabled = !config.auth.off,
                                                     .api_keys_file = config.auth.api_keys_file,
                                                     .worker_tokens_file =
                                                         config.auth.worker_tokens_file}));
  if (config.auth.off) {
    TV_LOG(WARNING) << "AUTHENTICATION IS OFF (auth.mode: off): any client that reaches "
                    << config.listen_address << " or the HTTP job gateway can submit, read, "
                    << "cancel and download every job, and any process can register as a worker";
  }
  // One certificate for every listener, re-read when its files change (and on SIGHUP).
  std::unique_ptr<common::TlsReloader> tls;
  if (!config.tls.cert_file.empty() || !config.tls.key_file.empty() ||
      !config.tls.client_ca_file.empty()) {
    if (config.tls.cert_file.empty() && !config.tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError("tls.client_ca_file: set without tls.cert_file");
    }
    TV_ASSIGN_OR_RETURN(tls, common::TlsReloader::Create({.cert_file = config.tls.cert_file,
                                                          .key_file = config.tls.key_file,
                                                          .client_ca_file =
                                                              config.tls.client_ca_file}));
  }

  common::metrics::Registry registry;
  SchedulerMetrics metrics(registry);
  common::HttpServer http(&registry);  // the ops port: /metrics /healthz /readyz only
  TV_RETURN_IF_ERROR(http.Start({.listen_address = config.http_address,
                                 .port = config.http_port,
                                 .num_threads = config.http_threads,
                                 .request_timeout_ms = config.http_request_timeout_ms,
                                 .name = "http (ops)",
                                 // TLS, never client certificates: probes and scrapers have none.
                                 .tls = tls.get()}));

  TV_RETURN_IF_ERROR(
      CheckDatabaseAtStart(config.db_path, DbBackupDir(config), config.allow_empty_db));
  TV_ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store,
                      JobStore::Open(config.db_path, config.db_synchronous_full));
  TV_RETURN_IF_ERROR(WriteDbMarker(config.db_path));
  TV_ASSIGN_OR_RETURN(std::unique_ptr<LocalArtifactStore> artifacts,
                      LocalArtifactStore::Create(config.artifact_dir));
  TV_ASSIGN_OR_RETURN(std::unique_ptr<Scheduler> scheduler,
                      Scheduler::Create(config, std::move(catalog), std::move(store),
                                        std::move(artifacts), &metrics));
  // Destroyed before `scheduler` on every return: no scrape or probe reaches a dead scheduler.
  // The job APIs' own listener: whoever can scrape /metrics cannot submit or download.
  common::HttpServer api_http(nullptr);
  server::CallerScopedBackend api_backend(scheduler.get());
  server::CallerScopedFleetBackend api_fleet(scheduler.get());
  // BeginShutdown first: it ends the watches that /events streams wait on.
  struct HttpStopper {
    common::HttpServer* http;
    common::HttpServer* api_http;
    Scheduler* scheduler;
    ~HttpStopper() {
      scheduler->BeginShutdown();
      api_http->Stop();
      http->Stop();
    }
  } http_stopper{&http, &api_http, scheduler.get()};
  registry.AddCollectHook([&scheduler] { scheduler->CollectMetrics(); });
  if (tls != nullptr) {
    struct Seen {
      std::mutex mu;  // scrapes may run at once
      uint64_t ok = 0;
      uint64_t refused = 0;
    };
    registry.AddCollectHook([&tls, &metrics, seen = std::make_shared<Seen>()] {
      metrics.tls_certificate_expiry.Get().Set(static_cast<double>(tls->current()->not_after));
      std::lock_guard<std::mutex> lock(seen->mu);
      const uint64_t ok = tls->reloads(), refused = tls->failures();
      metrics.tls_reloads.WithLabels({"ok"}).Increment(static_cast<double>(ok - seen->ok));
      metrics.tls_reloads.WithLabels({"refused"})
          .Increment(static_cast<double>(refused - seen->refused));
      seen->ok = ok;
      seen->refused = refused;
    });
  }
  common::metrics::AddProcessMetrics(registry);
  common::metrics::AddBuildInfo(registry);
  common::metrics::AddDiskMetrics(
      registry, "scheduler_data",
      {{"db", std::filesystem::absolute(config.db_path).parent_path().string()},
       {"artifacts", config.artifact_dir}});
  scheduler->Start();
  http.SetLivenessCheck([&scheduler] { return scheduler->Live(); });
  if (config.api_http_port >= 0) {
    api_http.SetGuard(server::MakeHttpAuthGuard(auth.get()));
    // Each /events stream holds a thread (max_event_streams of http_threads).
    server::InstallHttpGateway(&api_http, &api_backend, {.max_event_streams = 32}, &api_fleet);
    server::InstallOpenAiGateway(&api_http, &api_backend);
    server::InstallWebUi(&api_http);
    TV_RETURN_IF_ERROR(api_http.Start({.listen_address = config.api_http_address,
                                       .port = config.api_http_port,
                                       .num_threads = config.http_threads,
                                       .request_timeout_ms = config.http_request_timeout_ms,
                                       .name = "http (job API)",
                                       .tls = tls.get(),
                                       .require_client_certificate =
                                           !config.tls.client_ca_file.empty()}));
    api_http.SetReady(true);
  }
  // A failed periodic check leaves /readyz at 503 until a restart (corruption does not heal).
  std::atomic<bool> db_ok{true};
  DbMaintainer db_maintainer(
      {.db_path = config.db_path,
       .integrity_interval_seconds = config.db_integrity_check_interval_seconds,
       .backup_dir = DbBackupDir(config),
       .backup_interval_seconds = config.db_backup_interval_seconds,
       .backup_keep = config.db_backup_keep},
      &metrics, [&http, &db_ok](bool ok) {
        if (ok) return;
        db_ok.store(false);
        http.SetReady(false);
      });

  auto observer = [&metrics](const char* method, absl::StatusCode code, double seconds) {
    metrics.rpc_duration.WithLabels({method, absl::StatusCodeToString(code)}).Observe(seconds);
    if (std::string(method) == "SubmitVideo") metrics.submit_latency.Get().Observe(seconds);
  };
  server::GrpcServerOptions grpc_options;
  grpc_options.listen_address = config.listen_address;
  grpc_options.max_message_bytes = static_cast<int>(config.max_message_bytes);
  grpc_options.auth = auth.get();
  grpc_options.reflection = config.grpc_reflection;
  grpc_options.tls = tls.get();
  TV_ASSIGN_OR_RETURN(std::unique_ptr<server::GrpcServer> grpc,
                      server::GrpcServer::Start(grpc_options, scheduler.get(), scheduler.get(),
                                                observer, scheduler.get()));
  metrics.up.Get().Set(1);
  http.SetReady(db_ok.load());
  TV_LOG(INFO) << "turbovid-scheduler serving: grpc_port=" << grpc->port()
               << " http_port=" << http.port() << " api_http_port=" << api_http.port()
               << " db=" << config.db_path << " auth=" << (config.auth.off ? "OFF" : "required");
  if (!flags.ports_file.empty()) {
    const std::string temp = flags.ports_file + ".tmp";
    std::ofstream(temp) << "grpc_port=" << grpc->port() << " http_port=" << http.port()
                        << " api_http_port=" << api_http.port() << "\n";
    std::filesystem::rename(temp, flags.ports_file);
  }

  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    if (tls == nullptr) {
      TV_LOG(INFO) << "SIGHUP: no tls configured, nothing to reload";
    } else if (!tls->Check(/*force=*/true)) {
      TV_LOG(INFO) << "SIGHUP: certificate unchanged or refused (see above)";
    }
  }
  TV_LOG(INFO) << "signal " << signal_number << ": shutting down";
  http.SetReady(false);
  scheduler->BeginShutdown();
  grpc->Shutdown(config.shutdown_grace_seconds);
  scheduler->Stop();
  api_http.Stop();
  http.Stop();
  TV_LOG(INFO) << "turbovid-scheduler stopped";
  return absl::OkStatus();
}

// `turbovid-scheduler recover --db BROKEN --out NEW`.
int RunRecover(int argc, char** argv) {
  std::string db;
  std::string out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--db") {
      db = argv[i + 1];
    } else if (arg == "--out") {
      out = argv[i + 1];
    } else {
      db.clear();  // an unknown flag: print the usage
      break;
    }
  }
  if (db.empty() || out.empty() || argc % 2 == 0) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  absl::StatusOr<RecoverReport> report = RecoverDatabase(db, out);
  if (!report.ok()) {
    TV_LOG(ERROR) << "recover: " << report.status();
    return 1;
  }
  for (const std::string& note : report->notes) std::printf("note: %s\n", note.c_str());
  std::printf("recovered %s -> %s: jobs copied=%lld lost=%s\n", db.c_str(), out.c_str(),
              static_cast<long long>(report->rows_copied),
              report->rows_lost < 0 ? "unknown" : std::to_string(report->rows_lost).c_str());
  return 0;
}

// `turbovid-scheduler keys add|revoke|list --file KEYS ...`.
int RunKeys(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string action = argv[1];
  std::string file, name, tenant;
  bool admin = false;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--admin") {
      admin = true;
    } else if (i + 1 < argc && arg == "--file") {
      file = argv[++i];
    } else if (i + 1 < argc && arg == "--name") {
      name = argv[++i];
    } else if (i + 1 < argc && arg == "--tenant") {
      tenant = argv[++i];
    } else {
      std::fprintf(stderr, "keys: unknown or incomplete argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (file.empty()) {
    std::fputs("keys: --file is required\n", stderr);
    return 2;
  }
  if (action == "add") {
    absl::StatusOr<std::string> key = server::AddApiKey(file, name, tenant, admin);
    if (!key.ok()) {
      TV_LOG(ERROR) << "keys add: " << key.status();
      return 1;
    }
    // The only time the key is shown: stdout, for the operator to hand over.
    std::printf("%s\n", key->c_str());
    std::fprintf(stderr, "added key '%s' for tenant '%s'%s to %s\n", name.c_str(),
                 tenant.c_str(), admin ? " (admin)" : "", file.c_str());
    return 0;
  }
  if (action == "revoke") {
    const absl::Status status = server::RevokeApiKey(file, name);
    if (!status.ok()) {
      TV_LOG(ERROR) << "keys revoke: " << status;
      return 1;
    }
    std::fprintf(stderr, "revoked key '%s' in %s\n", name.c_str(), file.c_str());
    return 0;
  }
  if (action == "list") {
    absl::StatusOr<std::vector<server::ApiKey>> keys = server::LoadApiKeys(file);
    if (!keys.ok()) {
      TV_LOG(ERROR) << "keys list: " << keys.status();
      return 1;
    }
    for (const server::ApiKey& key : *keys) {
      std::printf("%s tenant=%s%s\n", key.name.c_str(), key.tenant.c_str(),
                  key.admin ? " admin" : "");
    }
    return 0;
  }
  std::fprintf(stderr, "keys: unknown action '%s'\n%s", action.c_str(), kUsage);
  return 2;
}

// `turbovid-scheduler token-hash`: the SHA-256 of a worker token read from stdin, for the
// worker tokens file.
int RunTokenHash() {
  std::string secret((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    std::fputs("token-hash: empty input\n", stderr);
    return 2;
  }
  std::printf("%s\n", server::Sha256Hex(secret).c_str());
  return 0;
}

}  // namespace
}  // namespace turbovid::scheduler

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "recover") {
    return turbovid::scheduler::RunRecover(argc - 1, argv + 1);
  }
  if (argc > 1 && std::string(argv[1]) == "keys") {
    return turbovid::scheduler::RunKeys(argc - 1, argv + 1);
  }
  if (argc > 1 && std::string(argv[1]) == "token-hash") {
    return turbovid::scheduler::RunTokenHash();
  }
  // Abseil's deadlock detector (on in this Abseil build) checks a lock graph on every absl::Mutex
  // lock, i.e. on every gRPC call; a debugging aid, measurable on the submit path.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Block the stop signals in every thread; the main thread takes them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // re-read the TLS files
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const absl::Status status = turbovid::scheduler::Run(argc, argv, signals);
  if (!status.ok()) {
    TV_LOG(ERROR) << status;
    return 1;
  }
  return 0;
}
