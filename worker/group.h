// A worker group: the processes (one per GPU) of one node that serve as one logical worker with a
// tensor x sequence parallel layout (docs/parallelism.md §5). Rank 0, the leader, is the process
// the operator starts: it spawns ranks 1..n-1 (this binary again), registers with the scheduler
// once, receives the tasks and broadcasts each to the followers, and alone reports progress and
// results. Every rank runs the same pipeline on its shard. Any rank's death breaks the group: the
// leader reports its task lost (requeued) and exits; followers exit with it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/comm/communicator.h"
#include "engine/comm/parallel.h"
#include "engine/core/backend.h"
#include "worker/metrics.h"
#include "worker/model_set.h"
#include "worker/task_runner.h"
#include "worker/worker_config.h"

namespace turbovid::worker {

// Exit code of a rank whose group broke (a rank died or failed on its own mid-task): its
// supervisor restarts the leader, which re-forms the group.
inline constexpr int kExitGroupLost = 4;
// The signal a follower gets when its leader dies (PR_SET_PDEATHSIG): it aborts the group's
// communicators, so that the follower exits instead of waiting in a collective for the dead.
// SIGTERM is left to the operator (a follower ignores it: rank 0 leads the shutdown).
inline constexpr int kLeaderGoneSignal = SIGUSR2;

class WorkerGroup {
 public:
  ~WorkerGroup();

  // Leader (config.group_rank 0): spawns ranks 1..world-1 as `exe` with `args` (the leader's own
  // command line) plus --group-rank R --group-name NAME; each inherits this environment
  // (NCCL_NVLS_ENABLE=0 included) and gets kLeaderGoneSignal when the leader dies. Then every rank
  // joins the group's control channel (socket communicator), waiting up to
  // config.group_timeout_seconds for the others.
  static absl::StatusOr<std::unique_ptr<WorkerGroup>> Start(const WorkerConfig& config,
                                                            const std::string& exe,
                                                            const std::vector<std::string>& args);

  int rank() const { return control_->rank(); }
  int size() const { return control_->size(); }
  bool leader() const { return rank() == 0; }
  const engine::comm::ParallelLayout& layout() const { return layout_; }

  // Collective: the data communicator of `backend` (NCCL on CUDA, sockets on the CPU backend)
  // split into the tensor- and sequence-parallel groups the models use.
  absl::Status MakeGroups(engine::Backend& backend, int device);
  const engine::comm::ParallelGroups* groups() const { return groups_.get(); }

  // Leader → followers, between tasks (control channel).
  absl::Status SendTask(const std::string& assign_task_bytes);
  absl::Status SendShutdown();
  struct Command {
    bool shutdown = false;
    std::string assign_task_bytes;  // a serialized AssignTask when !shutdown
  };
  // Follower: the leader's next command; Unavailable when the leader is gone.
  absl::StatusOr<Command> Receive();

  // Collective over the control channel: every rank's `mine` → the first failure in rank order
  // (OK when every rank succeeded), so that all ranks take the same branch.
  absl::Status Agree(const absl::Status& mine);

  // Leader: a thread that waits on the followers; the first that exits aborts the group and
  // calls on_lost(why) once. Follower: nothing (it gets kLeaderGoneSignal when the leader dies).
  void WatchFollowers(std::function<void(const std::string& why)> on_lost);
  // Ends the watch (waits for a running on_lost to return).
  void StopWatching();
  // Every communicator of this rank fails from now on (Unavailable); safe from any thread.
  void Abort();
  bool aborted() const { return aborted_.load(); }
  // Leader: waits up to `seconds` for the followers to exit, then SIGKILLs the rest.
  void Reap(double seconds);

 private:
  WorkerGroup() = default;
  absl::Status Spawn(const WorkerConfig& config, const std::string& exe,
                     const std::vector<std::string>& args);

  engine::comm::ParallelLayout layout_;
  std::string name_;
  std::unique_ptr<engine::comm::Communicator> control_;
  std::unique_ptr<engine::comm::ParallelGroups> groups_;
  std::atomic<bool> aborted_{false};
  std::mutex mu_;
  std::vector<pid_t> followers_;  // leader: by rank - 1; 0 once reaped
  std::thread watcher_;
  std::atomic<bool> stop_watching_{false};
};

// Leader: sends `task` to the followers, then runs it as RunTask does, every rank agreeing
// before the pipeline starts. A failure the ranks may not share (a rank gone, or this rank failing
// inside the pipeline on its own, where the others may wait for it in a collective) aborts the
// group and comes back as Unavailable, which the scheduler requeues.
TaskOutcome RunGroupTask(WorkerGroup& group, const v1::AssignTask& task, ModelSet& models,
                         const ProgressSink& sink, const std::function<bool()>& cancelled,
                         const UploadFn& upload, double progress_interval_seconds,
                         WorkerMetrics& metrics, const std::string& node_class);

// Follower: runs the leader's tasks (no progress, no upload) until it says shut down (returns 0)
// or the group breaks (kExitGroupLost).
int RunFollower(WorkerGroup& group, ModelSet& models, WorkerMetrics& metrics,
                const WorkerConfig& config);

}  // namespace turbovid::worker
