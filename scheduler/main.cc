// turbovid-scheduler: loads configs/scheduler.yaml (flags override), opens the job store and the
// artifact store, serves gRPC (VideoService, WorkerHub, health, reflection) and HTTP (/metrics,
// /healthz, /readyz, the native JSON gateway, the OpenAI-compatible /v1/videos, the web page),
// and shuts down gracefully on SIGTERM/SIGINT.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/build_info.h"
#include "common/process_metrics.h"
#include "common/status_macros.h"
#include "scheduler/config.h"
#include "scheduler/data_dir_lock.h"
#include "scheduler/db_maintenance.h"
#include "scheduler/metrics.h"
#include "scheduler/scheduler.h"
#include "server/grpc_server.h"
#include "server/http_gateway.h"
#include "server/openai_gateway.h"
#include "server/web_ui.h"

namespace turbovid::scheduler {
namespace {

constexpr char kUsage[] =
    "usage: turbovid-scheduler [--config FILE] [--listen HOST:PORT] [--http-address ADDR]\n"
    "                          [--http-port N] [--db FILE] [--artifacts DIR] [--models FILE]\n"
    "                          [--lease-seconds S] [--max-attempts N] [--log-level LEVEL]\n"
    "                          [--unservable-job-timeout-seconds S]\n"
    "                          [--ports-file FILE] [--allow-empty-db]\n"
    "       turbovid-scheduler recover --db BROKEN --out NEW\n"
    "Flags override the YAML config (default configs/scheduler.yaml when it exists).\n"
    "--ports-file writes 'grpc_port=N http_port=M' once serving (for port 0).\n"
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
    if (arg == "--allow-empty-db") {  // a switch: takes no value
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

absl::Status Run(int argc, char** argv, const sigset_t& signals) {
  TV_ASSIGN_OR_RETURN(Flags flags, ParseFlags(argc, argv));
  TV_ASSIGN_OR_RETURN(SchedulerConfig config, LoadConfig(flags));
  // Before anything reads or deletes state: two schedulers on one directory run jobs twice, lose
  // cancels and delete each other's uploads. Held until Run returns (process exit).
  TV_ASSIGN_OR_RETURN(std::unique_ptr<DataDirLock> data_lock,
                      DataDirLock::Acquire(config.db_path, config.artifact_dir));
  TV_ASSIGN_OR_RETURN(ModelCatalog catalog, ModelCatalog::LoadFile(config.models_file));

  common::metrics::Registry registry;
  SchedulerMetrics metrics(registry);
  common::HttpServer http(&registry);
  // Threads: each /events stream holds one (GatewayOptions::max_event_streams), the rest serve
  // the APIs, the page, probes and scrapes.
  TV_RETURN_IF_ERROR(http.Start(
      {.listen_address = config.http_address, .port = config.http_port, .num_threads = 48}));

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
  // BeginShutdown first: it ends the watches that /events streams wait on.
  struct HttpStopper {
    common::HttpServer* http;
    Scheduler* scheduler;
    ~HttpStopper() {
      scheduler->BeginShutdown();
      http->Stop();
    }
  } http_stopper{&http, scheduler.get()};
  registry.AddCollectHook([&scheduler] { scheduler->CollectMetrics(); });
  common::metrics::AddProcessMetrics(registry);
  common::metrics::AddBuildInfo(registry);
  common::metrics::AddDiskMetrics(
      registry, "scheduler_data",
      {{"db", std::filesystem::absolute(config.db_path).parent_path().string()},
       {"artifacts", config.artifact_dir}});
  scheduler->Start();
  http.SetLivenessCheck([&scheduler] { return scheduler->Live(); });
  server::InstallHttpGateway(&http, scheduler.get(), {.max_event_streams = 32});
  server::InstallOpenAiGateway(&http, scheduler.get());
  server::InstallWebUi(&http);
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
  TV_ASSIGN_OR_RETURN(
      std::unique_ptr<server::GrpcServer> grpc,
      server::GrpcServer::Start(grpc_options, scheduler.get(), scheduler.get(), observer));
  metrics.up.Get().Set(1);
  http.SetReady(db_ok.load());
  TV_LOG(INFO) << "turbovid-scheduler serving: grpc_port=" << grpc->port()
               << " http_port=" << http.port() << " db=" << config.db_path;
  if (!flags.ports_file.empty()) {
    const std::string temp = flags.ports_file + ".tmp";
    std::ofstream(temp) << "grpc_port=" << grpc->port() << " http_port=" << http.port() << "\n";
    std::filesystem::rename(temp, flags.ports_file);
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  TV_LOG(INFO) << "signal " << signal_number << ": shutting down";
  http.SetReady(false);
  scheduler->BeginShutdown();
  grpc->Shutdown(config.shutdown_grace_seconds);
  scheduler->Stop();
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

}  // namespace
}  // namespace turbovid::scheduler

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "recover") {
    return turbovid::scheduler::RunRecover(argc - 1, argv + 1);
  }
  // Abseil's deadlock detector (on in this Abseil build) checks a lock graph on every absl::Mutex
  // lock, i.e. on every gRPC call; a debugging aid, measurable on the submit path.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Block the stop signals in every thread; the main thread takes them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const absl::Status status = turbovid::scheduler::Run(argc, argv, signals);
  if (!status.ok()) {
    TV_LOG(ERROR) << status;
    return 1;
  }
  return 0;
}
