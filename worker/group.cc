// WorkerGroup: spawning the follower ranks, the control channel (commands, agreement), the
// data groups, and the leader's watch over its followers.
#include "worker/group.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "engine/backends/backends.h"
#include "engine/comm/socket_communicator.h"

namespace turbovid::worker {

namespace comm = engine::comm;

WorkerGroup::~WorkerGroup() { StopWatching(); }

absl::StatusOr<std::unique_ptr<WorkerGroup>> WorkerGroup::Start(
    const WorkerConfig& config, const std::string& exe, const std::vector<std::string>& args) {
  std::unique_ptr<WorkerGroup> g(new WorkerGroup());
  g->layout_ = comm::ParallelLayout{config.tensor_parallel_size, config.sequence_parallel_size};
  const int world = g->layout_.world();
  if (config.group_rank == 0) {
    g->name_ = comm::RandomGroupName();
    TV_RETURN_IF_ERROR(g->Spawn(config, exe, args));
  } else {
    g->name_ = config.group_name;
  }
  absl::StatusOr<std::unique_ptr<comm::Communicator>> control =
      comm::ConnectSocketGroup(g->name_, config.group_rank, world, config.group_timeout_seconds);
  if (!control.ok()) {
    if (config.group_rank == 0) g->Reap(5);
    return absl::Status(control.status().code(),
                        absl::StrCat("worker group ", g->name_, ": ", control.status().message()));
  }
  g->control_ = std::move(*control);
  return g;
}

absl::Status WorkerGroup::Spawn(const WorkerConfig& config, const std::string& exe,
                                const std::vector<std::string>& args) {
  const pid_t leader = getpid();
  for (int r = 1; r < layout_.world(); ++r) {
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> argv_s = {exe};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    argv_s.insert(argv_s.end(), {"--group-rank", std::to_string(r), "--group-name", name_});
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("worker group: fork rank ", r, ": ", std::strerror(errno)));
    }
    if (pid == 0) {
      // kLeaderGoneSignal when the leader goes, however it goes; and not if it is already gone.
      prctl(PR_SET_PDEATHSIG, kLeaderGoneSignal);
      if (getppid() != leader) _exit(kExitGroupLost);
      execv(exe.c_str(), argv.data());
      _exit(127);
    }
    TV_LOG(INFO) << "worker group " << name_ << ": started rank " << r << " (pid " << pid
                 << ", device " << config.device + r << ")";
    std::lock_guard<std::mutex> lock(mu_);
    followers_.push_back(pid);
  }
  return absl::OkStatus();
}

absl::Status WorkerGroup::MakeGroups(engine::Backend& backend, int device) {
  TV_ASSIGN_OR_RETURN(std::unique_ptr<comm::Communicator> data,
                      engine::MakeDeviceCommunicator(backend, device, *control_));
  TV_ASSIGN_OR_RETURN(groups_, comm::ParallelGroups::Create(std::move(data), layout_));
  TV_LOG(INFO) << "worker group " << name_ << ": rank " << rank() << " of " << size() << " ("
               << layout_.ToString() << ", tensor rank " << groups_->tp_rank() << ", sequence rank "
               << groups_->sp_rank() << ", " << groups_->world().kind() << " collectives)";
  return absl::OkStatus();
}

namespace {

// A command travels as [kind, bytes] (I64) then the bytes (U8).
constexpr int64_t kTaskCommand = 1;
constexpr int64_t kShutdownCommand = 2;

absl::Status SendCommand(comm::Communicator& c, int64_t kind, const std::string& bytes) {
  engine::Tensor head = engine::Tensor::Zeros(engine::DType::kI64, {2});
  head.data<int64_t>()[0] = kind;
  head.data<int64_t>()[1] = static_cast<int64_t>(bytes.size());
  TV_RETURN_IF_ERROR(c.Broadcast(head, 0));
  if (bytes.empty()) return absl::OkStatus();
  engine::Tensor body =
      engine::Tensor::Zeros(engine::DType::kU8, {static_cast<int64_t>(bytes.size())});
  std::memcpy(body.raw(), bytes.data(), bytes.size());
  return c.Broadcast(body, 0);
}

}  // namespace

absl::Status WorkerGroup::SendTask(const std::string& assign_task_bytes) {
  return SendCommand(*control_, kTaskCommand, assign_task_bytes);
}

absl::Status WorkerGroup::SendShutdown() { return SendCommand(*control_, kShutdownCommand, ""); }

absl::StatusOr<WorkerGroup::Command> WorkerGroup::Receive() {
  engine::Tensor head = engine::Tensor::Zeros(engine::DType::kI64, {2});
  TV_RETURN_IF_ERROR(control_->Broadcast(head, 0));
  const int64_t kind = head.data<int64_t>()[0], n = head.data<int64_t>()[1];
  Command cmd;
  if (kind == kShutdownCommand) {
    cmd.shutdown = true;
    return cmd;
  }
  if (kind != kTaskCommand || n <= 0 || n > (int64_t{1} << 30)) {
    return absl::InternalError(
        absl::StrCat("worker group: bad command ", kind, " of ", n, " bytes"));
  }
  engine::Tensor body = engine::Tensor::Zeros(engine::DType::kU8, {n});
  TV_RETURN_IF_ERROR(control_->Broadcast(body, 0));
  cmd.assign_task_bytes.assign(static_cast<const char*>(body.raw()), static_cast<size_t>(n));
  return cmd;
}

absl::Status WorkerGroup::Agree(const absl::Status& mine) {
  engine::Tensor code = engine::Tensor::Zeros(engine::DType::kI64, {1});
  code.data<int64_t>()[0] = static_cast<int64_t>(mine.code());
  engine::Tensor all = engine::Tensor::Zeros(engine::DType::kI64, {size()});
  TV_RETURN_IF_ERROR(control_->AllGather(code, all));
  for (int r = 0; r < size(); ++r) {
    const auto c = static_cast<absl::StatusCode>(all.data<int64_t>()[r]);
    if (c == absl::StatusCode::kOk) continue;
    if (r == rank()) return mine;
    return absl::Status(c, absl::StrCat("worker group rank ", r, " could not run the task"));
  }
  return absl::OkStatus();
}

void WorkerGroup::Abort() {
  if (aborted_.exchange(true)) return;
  if (groups_) groups_->Abort();
  if (control_) control_->Abort();
}

void WorkerGroup::WatchFollowers(std::function<void(const std::string& why)> on_lost) {
  if (!leader()) return;
  watcher_ = std::thread([this, on_lost = std::move(on_lost)] {
    while (!stop_watching_.load()) {
      std::string why;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (size_t i = 0; i < followers_.size() && why.empty(); ++i) {
          if (followers_[i] == 0) continue;
          int status = 0;
          if (waitpid(followers_[i], &status, WNOHANG) != followers_[i]) continue;
          why = absl::StrCat("rank ", i + 1, " (pid ", followers_[i], ") ",
                             WIFSIGNALED(status)
                                 ? absl::StrCat("was killed by signal ", WTERMSIG(status))
                                 : absl::StrCat("exited with code ", WEXITSTATUS(status)));
          followers_[i] = 0;
        }
      }
      if (!why.empty()) {
        TV_LOG(ERROR) << "worker group " << name_ << ": " << why << "; the group is broken";
        Abort();
        on_lost(why);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

void WorkerGroup::StopWatching() {
  stop_watching_.store(true);
  if (watcher_.joinable()) watcher_.join();
}

void WorkerGroup::Reap(double seconds) {
  StopWatching();
  std::lock_guard<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  for (size_t i = 0; i < followers_.size(); ++i) {
    if (followers_[i] == 0) continue;
    int status = 0;
    while (waitpid(followers_[i], &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        TV_LOG(WARNING) << "worker group " << name_ << ": rank " << i + 1 << " (pid "
                        << followers_[i] << ") did not exit; killing it";
        kill(followers_[i], SIGKILL);
        waitpid(followers_[i], &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    followers_[i] = 0;
  }
}

}  // namespace turbovid::worker
