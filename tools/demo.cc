// `turbovid demo`: makes two tiny checkpoints, starts turbovid-scheduler and one CPU
// turbovid-worker on loopback in a temporary folder, generates one T2V and one I2V video through
// the public API, prints where they are, and stops its children (also on failure or Ctrl-C).
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/png.h"
#include "tools/process.h"

namespace turbovid::tools {
namespace {

namespace fs = std::filesystem;

// Children, for the signal handler (which may only call async-signal-safe functions).
constexpr int kMaxChildren = 8;
std::atomic<pid_t> g_children[kMaxChildren];

void OnInterrupt(int) {
  for (auto& pid : g_children) {
    pid_t p = pid.load();
    if (p > 0) kill(p, SIGTERM);
  }
  const char msg[] = "\nturbovid demo: interrupted, children stopped\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)ignored;
  _exit(130);
}

void Track(const ChildProcess& child) {
  for (auto& pid : g_children) {
    pid_t expected = 0;
    if (pid.compare_exchange_strong(expected, child.pid())) return;
  }
}

std::string Tail(const std::string& path, size_t bytes = 2000) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

// Polls http://127.0.0.1:port/readyz until 200, failing early if the child exits.
absl::Status WaitReady(ChildProcess& child, int port, const std::string& log,
                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!child.Running()) {
      return absl::UnavailableError(
          absl::StrCat(child.name(), " exited; last lines of ", log, ":\n", Tail(log)));
    }
    auto r = HttpGet("127.0.0.1", port, "/readyz", absl::Seconds(2));
    if (r.ok() && r->status == 200) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat(child.name(), " not ready after ",
                                                  absl::FormatDuration(timeout), "; see ", log));
}

struct DemoPaths {
  std::string engine, scheduler, worker;
};

absl::Status MakeCheckpoint(const DemoPaths& bins, const fs::path& dir, const std::string& kind,
                            const fs::path& out) {
  const std::string log = (dir / "logs" / ("make-tiny-" + kind + ".log")).string();
  std::fprintf(stderr, "making tiny %s checkpoint in %s\n", kind.c_str(), out.c_str());
  auto code = RunProcess({bins.engine, "make-tiny-checkpoint", "--kind", kind, "--out", out.string()},
                         log, absl::Minutes(5));
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(absl::StrCat("make-tiny-checkpoint --kind ", kind, " exited ",
                                            *code, ":\n", Tail(log)));
  }
  return absl::OkStatus();
}

// The model catalog: --models, else configs/models.yaml in the working folder, in the source
// tree above a build folder, or next to an installed binary.
absl::StatusOr<std::string> FindCatalog(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const fs::path exe = SelfExeDir();
  for (const fs::path& p : {fs::current_path() / "configs/models.yaml",
                            exe / "../../configs/models.yaml", exe / "../configs/models.yaml",
                            exe / "../share/turbovid/configs/models.yaml"}) {
    std::error_code ec;
    if (fs::exists(p, ec)) return p.lexically_normal().string();
  }
  return absl::NotFoundError("configs/models.yaml not found; pass --models FILE");
}

int Fail(const absl::Status& status) {
  ReportError(status);
  return 1;
}

}  // namespace

int DemoCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(
      argv, {"dir", "engine-bin", "scheduler-bin", "worker-bin", "models", "timeout"}, {"quiet"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  auto catalog = FindCatalog(args->Get("models"));
  if (!catalog.ok()) return Fail(catalog.status());
  DemoPaths bins;
  for (auto [name, flag, out] : {std::tuple{"turbovid-engine", "engine-bin", &bins.engine},
                                 std::tuple{"turbovid-scheduler", "scheduler-bin", &bins.scheduler},
                                 std::tuple{"turbovid-worker", "worker-bin", &bins.worker}}) {
    auto path = FindBinary(name, args->Get(flag));
    if (!path.ok()) return Fail(path.status());
    *out = *path;
  }
  auto timeout_s = args->GetDouble("timeout", 600);
  if (!timeout_s.ok()) return ReportError(timeout_s.status()) + 1;
  fs::path dir = args->Get("dir");
  if (dir.empty()) {
    char tmpl[] = "/tmp/turbovid-demo-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Fail(absl::InternalError("mkdtemp failed"));
    dir = tmpl;
  }
  std::error_code ec;
  fs::create_directories(dir / "logs", ec);
  fs::create_directories(dir / "models", ec);
  if (ec) return Fail(absl::InternalError(absl::StrCat("cannot create ", dir.string())));
  std::fprintf(stderr, "demo folder: %s\n", dir.c_str());

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const fs::path t2v_dir = dir / "models" / "tiny-t2v";
  const fs::path i2v_dir = dir / "models" / "tiny-i2v";
  if (absl::Status s = MakeCheckpoint(bins, dir, "t2v", t2v_dir); !s.ok()) return Fail(s);
  if (absl::Status s = MakeCheckpoint(bins, dir, "i2v-moe", i2v_dir); !s.ok()) return Fail(s);

  auto grpc_port = FreeTcpPort();
  auto sched_http = FreeTcpPort();
  auto worker_http = FreeTcpPort();
  for (const auto* p : {&grpc_port, &sched_http, &worker_http}) {
    if (!p->ok()) return Fail(p->status());
  }
  const std::string address = absl::StrCat("127.0.0.1:", *grpc_port);
  const std::string sched_log = (dir / "logs" / "scheduler.log").string();
  const std::string worker_log = (dir / "logs" / "worker.log").string();
  auto scheduler = ChildProcess::Start(
      {bins.scheduler, "--listen", address, "--http-port", absl::StrCat(*sched_http),
       "--http-address", "127.0.0.1", "--db", (dir / "jobs.db").string(), "--artifacts",
       (dir / "artifacts").string(), "--models", *catalog,
       // A throwaway scheduler on loopback for one demo run: no keys to hand out.
       "--auth-mode", "off", "--api-http-port", "-1"},
      sched_log);
  if (!scheduler.ok()) return Fail(scheduler.status());
  Track(**scheduler);
  auto worker = ChildProcess::Start(
      {bins.worker, "--scheduler", address, "--backend", "cpu", "--node-class", "cpu",
       "--worker-id", "demo-cpu-0", "--http-address", "127.0.0.1", "--http-port",
       absl::StrCat(*worker_http), "--model", "tiny-t2v:turbo=" + t2v_dir.string(), "--model",
       "tiny-i2v:turbo=" + i2v_dir.string()},
      worker_log);
  if (!worker.ok()) return Fail(worker.status());
  Track(**worker);
  std::fprintf(stderr, "scheduler %s (pid %d, metrics :%d), worker pid %d (metrics :%d)\n",
               address.c_str(), (*scheduler)->pid(), *sched_http, (*worker)->pid(), *worker_http);

  auto stop_all = [&](int code) {
    (*worker)->Stop(absl::Seconds(10));
    (*scheduler)->Stop(absl::Seconds(10));
    return code;
  };
  if (absl::Status s = WaitReady(**scheduler, *sched_http, sched_log, absl::Seconds(60)); !s.ok()) {
    return stop_all(Fail(s));
  }
  if (absl::Status s = WaitReady(**worker, *worker_http, worker_log, absl::Seconds(300)); !s.ok()) {
    return stop_all(Fail(s));
  }

  const int width = 64, height = 64;
  auto png = MakeTestPatternPng(width, height);
  if (!png.ok()) return stop_all(Fail(png.status()));
  const fs::path image_path = dir / "input.png";
  std::ofstream(image_path, std::ios::binary) << *png;

  VideoClient client(address);
  std::vector<std::string> outputs;
  for (bool i2v : {false, true}) {
    v1::SubmitVideoRequest r;
    r.set_model_id(i2v ? "tiny-i2v" : "tiny-t2v");
    r.set_prompt(i2v ? "the sun rises over a quiet lake" : "a red fox running through snow");
    if (i2v) r.set_image(*png);
    r.set_num_frames(5);
    r.mutable_size()->set_width_pixels(width);
    r.mutable_size()->set_height_pixels(height);
    r.set_num_steps(2);
    r.set_seed(42);
    r.set_client_request_id(RandomRequestId());
    const std::string out = (dir / (i2v ? "i2v.mp4" : "t2v.mp4")).string();
    ProgressPrinter printer(stderr, i2v ? "i2v " : "t2v ");
    auto job = GenerateVideo(client, r, out, args->Has("quiet") ? nullptr : &printer,
                             absl::Seconds(*timeout_s));
    if (!job.ok()) return stop_all(Fail(job.status()));
    if (job->state() != v1::JOB_STATE_SUCCEEDED) {
      return stop_all(Fail(absl::InternalError(absl::StrCat(
          "job ", job->job_id(), " ended ", StateName(job->state()), ": ", job->error()))));
    }
    outputs.push_back(absl::StrCat(i2v ? "I2V" : "T2V", " video: ", out, " (",
                                   job->video_bytes(), " bytes, ", job->width_pixels(), "x",
                                   job->height_pixels(), ", ", job->request().num_frames(),
                                   " frames, job ", job->job_id(), ")"));
  }
  stop_all(0);
  for (const std::string& line : outputs) std::printf("%s\n", line.c_str());
  std::printf("input image: %s\nlogs: %s\n", image_path.c_str(), (dir / "logs").c_str());
  return 0;
}

}  // namespace turbovid::tools
