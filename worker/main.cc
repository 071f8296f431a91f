// turbovid-worker: loads its preloaded models on one GPU (or the CPU), serves /metrics /healthz
// /readyz, dials the scheduler and runs tasks until SIGTERM or POST /drain from this host (drain:
// not ready at once, the running task finishes) or a second signal (stop).
// `turbovid-worker drain` asks the worker on this host to drain (a Kubernetes preStop hook).
// With tensor_parallel_size x sequence_parallel_size > 1 it leads a worker group: it starts one
// process per further GPU (this binary, --group-rank R), and those followers run its tasks beside
// it (worker/group.h, docs/parallelism.md §5). Serve() runs past 60 lines: the startup and
// teardown order (HTTP, backend, models, ready, gRPC health, worker, followers) reads best whole.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/build_info.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/process_metrics.h"
#include "common/status_macros.h"
#include "engine/backends/backends.h"
#include "engine/comm/nccl_communicator.h"
#include "server/grpc_server.h"
#include "worker/group.h"
#include "worker/metrics.h"
#include "worker/model_set.h"
#include "worker/task_runner.h"
#include "worker/worker.h"
#include "worker/worker_config.h"

namespace {

using turbovid::worker::WorkerConfig;

absl::StatusOr<WorkerConfig> ReadConfig(const std::vector<std::string>& args) {
  WorkerConfig config;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string path;
    if (args[i] == "--config" && i + 1 < args.size()) path = args[i + 1];
    if (args[i].rfind("--config=", 0) == 0) path = args[i].substr(9);
    if (path.empty()) continue;
    auto loaded = turbovid::worker::LoadWorkerConfig(path);
    if (!loaded.ok()) return loaded.status();
    config = std::move(*loaded);
  }
  absl::Status s = turbovid::worker::ApplyWorkerFlags(args, &config);
  if (!s.ok()) return s;
  if (config.worker_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    config.worker_id = config.backend == "cpu"
                           ? absl::StrCat(host, ":cpu:", getpid())
                           : absl::StrCat(host, ":gpu", config.device);
  }
  if (config.gpu_name.empty() && config.backend == "cpu") config.gpu_name = "cpu";
  if (config.memory_bytes == 0 && config.backend == "cpu") {
    config.memory_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  }
  s = turbovid::worker::FillDeviceInfo(&config);
  if (!s.ok()) return s;
  s = turbovid::worker::ValidateWorkerConfig(config);
  if (!s.ok()) return s;
  return config;
}

// Signals are taken synchronously by one thread: the first SIGTERM/SIGINT drains, the second
// stops; SIGUSR1 only wakes the thread at exit. POST /drain drains without counting as a signal,
// so the SIGTERM an orchestrator sends after its preStop hook still only drains.
struct SignalState {
  std::mutex mu;  // guards `worker` and `http` against their destruction while in use
  turbovid::worker::Worker* worker = nullptr;
  turbovid::common::HttpServer* http = nullptr;
  std::atomic<int> count{0};
  std::atomic<bool> exiting{false};
  std::atomic<bool> drain_requested{false};
  // A follower rank's group: SIGTERM/SIGINT are ignored (rank 0 leads the shutdown), the signal
  // of its leader's death (kLeaderGoneSignal) aborts the group.
  std::atomic<turbovid::worker::WorkerGroup*> follower_group{nullptr};
  bool follower = false;

  void SetWorker(turbovid::worker::Worker* w) {
    std::lock_guard<std::mutex> lock(mu);
    worker = w;
  }
  void SetHttp(turbovid::common::HttpServer* h) {
    std::lock_guard<std::mutex> lock(mu);
    http = h;
  }
  // Not ready from now on; the worker (once running) finishes its task and exits.
  void Drain() {
    drain_requested.store(true);
    std::lock_guard<std::mutex> lock(mu);
    if (http != nullptr) http->SetReady(false);
    if (worker != nullptr) worker->RequestDrain();  // else checked after loading
  }
  void Stop() {
    std::lock_guard<std::mutex> lock(mu);
    if (worker != nullptr) worker->RequestStop();
  }
  void GroupLost(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    if (worker != nullptr) worker->GroupLost(why);
  }
};

void SignalLoop(sigset_t set, SignalState* state) {
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (state->exiting.load()) return;
    if (sig == SIGUSR1) continue;
    if (sig == turbovid::worker::kLeaderGoneSignal) {
      if (!state->follower) continue;
      TV_LOG(WARNING) << "the worker group's rank 0 is gone; leaving";
      turbovid::worker::WorkerGroup* g = state->follower_group.load();
      if (g != nullptr) g->Abort();
      ++state->count;
      continue;
    }
    if (state->follower) {
      TV_LOG(INFO) << "signal " << sig << " ignored: rank 0 shuts the worker group down";
      continue;
    }
    int n = ++state->count;
    TV_LOG(INFO) << "signal " << sig << (n == 1 ? ": draining" : ": stopping");
    if (n == 1) {
      state->Drain();
    } else {
      state->Stop();
    }
  }
}

// POST /drain, from this host only (anyone who can reach the metrics port must not stop a worker).
turbovid::common::HttpResponse DrainHandler(const turbovid::common::HttpRequest& request,
                                            SignalState* state) {
  if (request.method != "POST") return {405, "text/plain; charset=utf-8", "POST only\n"};
  if (!turbovid::common::IsLoopbackAddress(request.remote_address)) {
    return {403, "text/plain; charset=utf-8", "drain is accepted from this host only\n"};
  }
  if (!state->drain_requested.load()) TV_LOG(INFO) << "POST /drain: draining";
  state->Drain();
  return {200, "text/plain; charset=utf-8", "draining\n"};
}

// `turbovid-worker drain [--config FILE] [--http-port N]`: POST /drain to this host's worker.
int RunDrainCommand(const std::vector<std::string>& args) {
  WorkerConfig config;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] != "--config") continue;
    auto loaded = turbovid::worker::LoadWorkerConfig(args[i + 1]);
    if (!loaded.ok()) {
      std::fprintf(stderr, "turbovid-worker drain: %s\n", loaded.status().ToString().c_str());
      return 2;
    }
    config = std::move(*loaded);
  }
  if (absl::Status s = turbovid::worker::ApplyWorkerFlags(args, &config); !s.ok()) {
    std::fprintf(stderr, "turbovid-worker drain: %s\n", s.ToString().c_str());
    return 2;
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(config.http_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::fprintf(stderr, "turbovid-worker drain: no worker on 127.0.0.1:%d\n", config.http_port);
    if (fd >= 0) close(fd);
    return 1;
  }
  const std::string request =
      "POST /drain HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
  std::string reply;
  if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[512];
    ssize_t got = 0;
    while ((got = read(fd, buf, sizeof(buf))) > 0) reply.append(buf, static_cast<size_t>(got));
  }
  close(fd);
  const bool ok = reply.rfind("HTTP/1.", 0) == 0 && reply.find(" 200 ") != std::string::npos;
  std::printf("%s\n", ok ? "draining" : reply.substr(0, reply.find("\r\n")).c_str());
  return ok ? 0 : 1;
}

// The backend for this rank's device and, in a group, the data communicators over it.
struct Engine {
  std::unique_ptr<turbovid::engine::Backend> backend;
  int device = 0;
};

absl::StatusOr<Engine> MakeEngine(const WorkerConfig& config, turbovid::worker::WorkerGroup* group) {
  Engine e;
  e.device = config.device + config.group_rank;  // one GPU per rank, from `device` on
  TV_ASSIGN_OR_RETURN(e.backend, turbovid::engine::MakeBackend(config.backend, e.device));
  // Every rank holds its own share within the budget (docs/memory.md).
  e.backend->SetMemoryLimit(config.memory_limit_bytes());
  if (group != nullptr) TV_RETURN_IF_ERROR(group->MakeGroups(*e.backend, e.device));
  return e;
}

turbovid::worker::ModelSet::Loader GroupLoader(turbovid::engine::Backend& backend,
                                               turbovid::worker::WorkerGroup* group,
                                               bool split_vae_decode) {
  turbovid::worker::ModelSet::Loader loader = turbovid::worker::ModelSet::EngineLoader(backend);
  if (group == nullptr) return loader;
  const turbovid::engine::comm::ParallelGroups* groups = group->groups();
  turbovid::engine::PipelineOptions options;
  options.split_vae_decode = split_vae_decode;
  loader.load = [&backend, groups, options](const turbovid::worker::ModelEntry& entry) {
    turbovid::engine::PipelineOptions entry_options = options;
    entry_options.fp8_linears = turbovid::worker::Fp8Weights(entry);
    return turbovid::engine::Pipeline::Load(entry.path, backend, groups, entry_options);
  };
  return loader;
}

// A follower rank: no HTTP, no scheduler link; its models, then the leader's tasks.
int RunFollowerRank(const WorkerConfig& config, turbovid::worker::WorkerGroup& group,
                    SignalState& signals) {
  turbovid::common::metrics::Registry registry;  // not exported: the leader reports
  turbovid::worker::WorkerMetrics metrics(registry);
  absl::StatusOr<Engine> engine = MakeEngine(config, &group);
  if (!engine.ok()) {
    TV_LOG(ERROR) << "worker group rank " << config.group_rank << ": " << engine.status();
    return turbovid::worker::kExitGroupLost;
  }
  const int64_t budget =
      config.memory_budget_bytes > 0 ? config.memory_budget_bytes : config.memory_bytes;
  turbovid::worker::ModelSet models(config.models, budget,
                                    GroupLoader(*engine->backend, &group, config.split_vae_decode),
                                    metrics);
  if (absl::Status s = models.LoadPreloaded(); !s.ok()) {
    TV_LOG(ERROR) << "worker group rank " << config.group_rank << ": " << s;
    return turbovid::worker::kExitGroupLost;
  }
  if (signals.count.load() > 0) return turbovid::worker::kExitGroupLost;
  return turbovid::worker::RunFollower(group, models, metrics, config);
}

}  // namespace

// Rank 0 of a group, or a lone worker: HTTP, backend, models, gRPC health, the scheduler link;
// returns the exit code once the worker is done (and, in a group, the followers are gone).
int Serve(const WorkerConfig& config, turbovid::worker::WorkerGroup* group, SignalState& signals) {
  // The leader notices a follower's death at once, also while it loads (then it gives up).
  std::atomic<bool> group_lost{false};
  if (group) {
    group->WatchFollowers([&](const std::string& why) {
      group_lost.store(true);
      signals.GroupLost(why);
    });
  }

  turbovid::common::metrics::Registry registry;
  turbovid::worker::WorkerMetrics metrics(registry);
  turbovid::common::metrics::AddProcessMetrics(registry);
  turbovid::common::metrics::AddBuildInfo(registry);
  metrics.price_per_hour.WithLabels({config.node_class}).Set(config.price_per_hour);
  turbovid::common::HttpServer http(&registry);
  signals.SetHttp(&http);
  http.Handle("/drain", [&signals](const turbovid::common::HttpRequest& request) {
    return DrainHandler(request, &signals);
  });
  std::atomic<bool> live{true};
  http.SetLivenessCheck([&] { return live.load(); });
  turbovid::common::HttpServer::Options http_options;
  http_options.listen_address = config.http_address;
  http_options.port = config.http_port;
  http_options.num_threads = 2;
  int code = 0;
  auto finish = [&](int exit_code) {
    http.Stop();
    signals.SetHttp(nullptr);
    if (group) {
      // Followers leave on the shutdown command, or (broken group) with their leader.
      if (exit_code != turbovid::worker::kExitGroupLost && !group->aborted()) {
        (void)group->SendShutdown();
      } else {
        group->Abort();
      }
      group->Reap(30);
      if (group_lost.load()) exit_code = turbovid::worker::kExitGroupLost;
    }
    return exit_code;
  };
  if (absl::Status s = http.Start(http_options); !s.ok()) {
    TV_LOG(ERROR) << "http: " << s;
    return finish(2);
  }
  TV_LOG(INFO) << "worker " << config.worker_id << " (" << config.node_class << ", "
               << config.backend << ") http on " << config.http_address << ":" << http.port();

  absl::StatusOr<Engine> engine = MakeEngine(config, group);
  if (!engine.ok()) {
    TV_LOG(ERROR) << engine.status();
    return finish(group ? turbovid::worker::kExitGroupLost : 2);
  }
  turbovid::engine::Backend& backend = *engine->backend;
  // Device gauges (and NVML) from here on, so that /metrics shows the models loading; detached
  // before the backend goes.
  metrics.AttachDevice(turbovid::worker::MakeDeviceSource(config, backend));
  absl::Cleanup detach_device = [&metrics] { metrics.DetachDevice(); };
  // The budget counts weights only: activations need the rest (set it below the device's memory
  // when several models share a GPU).
  // With a device memory budget (memory_limit_gib) and no weights budget, the device budget.
  int64_t budget = config.memory_budget_bytes > 0 ? config.memory_budget_bytes : config.memory_bytes;
  if (config.memory_budget_bytes == 0 && config.memory_limit_bytes() > 0) {
    budget = budget > 0 ? std::min(budget, config.memory_limit_bytes()) : config.memory_limit_bytes();
  }
  TV_LOG(INFO) << "memory budget for model weights: " << budget << " bytes";
  if (config.memory_limit_bytes() > 0) {
    TV_LOG(INFO) << "device memory budget (memory_limit_gib " << config.memory_limit_gib
                 << "): " << config.memory_limit_bytes() << " bytes";
  }
  turbovid::worker::ModelSet models(
      config.models, budget, GroupLoader(backend, group, config.split_vae_decode), metrics);
  if (absl::Status s = models.LoadPreloaded(); !s.ok()) {
    TV_LOG(ERROR) << s;
    return finish(group ? turbovid::worker::kExitGroupLost : 2);
  }
  if (signals.count.load() > 0 || signals.drain_requested.load()) {
    TV_LOG(INFO) << "drain requested while loading; exiting";
    return finish(0);
  }
  if (group_lost.load()) return finish(turbovid::worker::kExitGroupLost);
  http.SetReady(true);
  // Standard gRPC health + reflection (no services of our own): SERVING once models are loaded.
  std::unique_ptr<turbovid::server::GrpcServer> grpc_health;
  if (!config.grpc_listen.empty()) {
    turbovid::server::GrpcServerOptions grpc_options;
    grpc_options.listen_address = config.grpc_listen;
    grpc_options.reflection = true;  // health and reflection only: nothing to hide
    auto started = turbovid::server::GrpcServer::Start(grpc_options, nullptr, nullptr, nullptr);
    if (!started.ok()) {
      TV_LOG(ERROR) << "grpc health: " << started.status();
      return finish(2);
    }
    grpc_health = std::move(*started);
    TV_LOG(INFO) << "grpc health + reflection on port " << grpc_health->port();
  }
  {
    auto created = turbovid::worker::Worker::Create(config, backend, models, metrics, group);
    if (!created.ok()) {
      TV_LOG(ERROR) << created.status();
      return finish(2);
    }
    turbovid::worker::Worker& worker = **created;
    http.SetLivenessCheck([&] { return worker.live(); });
    signals.SetWorker(&worker);
    if (signals.drain_requested.load()) {
      http.SetReady(false);
      worker.RequestDrain();
    }
    if (group_lost.load()) worker.GroupLost("a rank exited while the worker started");
    code = worker.Run();
    if (group) group->StopWatching();  // no GroupLost on a Worker about to go
    signals.SetWorker(nullptr);
    http.SetReady(false);
    if (grpc_health) grpc_health->Shutdown(1.0);
    http.SetLivenessCheck([&] { return code != turbovid::worker::kExitPoisoned; });
  }
  TV_LOG(INFO) << "worker exiting with code " << code;
  return finish(code);
}

int main(int argc, char** argv) {
  // First of all: NCCL never uses NVLink multicast here, nor in any process started below
  // (they inherit the environment; docs/parallelism.md §5).
  turbovid::engine::comm::DisableNvlinkMulticast();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "drain") {
    return RunDrainCommand(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(turbovid::worker::WorkerUsage(), stdout);
      return 0;
    }
  }
  absl::StatusOr<WorkerConfig> config = ReadConfig(args);
  if (!config.ok()) {
    std::fprintf(stderr, "turbovid-worker: %s\n%s", config.status().ToString().c_str(),
                 turbovid::worker::WorkerUsage());
    return 2;
  }
  auto level = turbovid::common::ParseLogLevel(config->log_level);
  if (!level.ok()) {
    std::fprintf(stderr, "turbovid-worker: log_level: %s\n", config->log_level.c_str());
    return 2;
  }
  turbovid::common::SetMinLogLevel(*level);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, turbovid::worker::kLeaderGoneSignal);
  // Inherited by every thread started below, and by the ranks this process starts: a follower
  // has them blocked from its first instruction, so its leader's death waits for sigwait.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  SignalState signals;
  signals.follower = config->group_rank > 0;
  std::thread signal_thread(SignalLoop, set, &signals);
  auto stop_signals = [&] {
    signals.exiting.store(true);
    pthread_kill(signal_thread.native_handle(), SIGUSR1);
    signal_thread.join();
  };

  // A worker group: the leader starts the other ranks, then every rank joins the control channel.
  std::unique_ptr<turbovid::worker::WorkerGroup> group;
  if (config->group_size() > 1) {
    absl::StatusOr<std::unique_ptr<turbovid::worker::WorkerGroup>> started =
        turbovid::worker::WorkerGroup::Start(*config, "/proc/self/exe", args);
    if (!started.ok()) {
      TV_LOG(ERROR) << started.status();
      stop_signals();
      return turbovid::worker::kExitGroupLost;
    }
    group = std::move(*started);
    if (!group->leader()) {
      signals.follower_group.store(group.get());
      const int code = RunFollowerRank(*config, *group, signals);
      signals.follower_group.store(nullptr);
      TV_LOG(INFO) << "worker group rank " << group->rank() << " exiting with code " << code;
      stop_signals();
      return code;
    }
  }
  const int code = Serve(*config, group.get(), signals);
  stop_signals();
  return code;
}
