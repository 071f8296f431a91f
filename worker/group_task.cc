// A task on a worker group: the leader's side (send, agree, run, settle) and the followers' loop.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "worker/group.h"

namespace turbovid::worker {
namespace {

// Whether the outcome leaves the ranks out of step: a rank gone (the group's collectives
// failed) or a pipeline failure that only this rank may have seen.
bool Breaks(const WorkerGroup& group, const TaskOutcome& o) {
  if (group.aborted()) return true;
  if (!o.ran_pipeline) return absl::IsUnavailable(o.status);  // the agreement itself failed
  return !o.pipeline_status.ok() && !absl::IsCancelled(o.pipeline_status);
}

}  // namespace

TaskOutcome RunGroupTask(WorkerGroup& group, const v1::AssignTask& task, ModelSet& models,
                         const ProgressSink& sink, const std::function<bool()>& cancelled,
                         const UploadFn& upload, double progress_interval_seconds,
                         WorkerMetrics& metrics, const std::string& node_class) {
  TaskOutcome outcome;
  std::string bytes;
  task.SerializeToString(&bytes);
  if (absl::Status s = group.SendTask(bytes); !s.ok()) {
    group.Abort();
    outcome.status = absl::UnavailableError(
        absl::StrCat("worker group: the other ranks did not take the task: ", s.message()));
    return outcome;
  }
  AgreeFn agree = [&group](const absl::Status& mine) { return group.Agree(mine); };
  outcome = RunTask(task, models, sink, cancelled, upload, progress_interval_seconds, metrics,
                    node_class, agree);
  if (Breaks(group, outcome)) {
    group.Abort();
    outcome.status = absl::UnavailableError(absl::StrCat(
        "worker group broken during the task: ",
        outcome.ran_pipeline ? outcome.pipeline_status.message() : outcome.status.message()));
  }
  return outcome;
}

int RunFollower(WorkerGroup& group, ModelSet& models, WorkerMetrics& metrics,
                const WorkerConfig& config) {
  const std::string me = absl::StrCat("worker group rank ", group.rank());
  AgreeFn agree = [&group](const absl::Status& mine) { return group.Agree(mine); };
  const ProgressSink no_progress = [](const v1::TaskProgress&) {};
  const UploadFn no_upload = [](const std::string&, bool) { return absl::OkStatus(); };
  const std::function<bool()> never = [] { return false; };  // rank 0 decides (broadcast)
  while (true) {
    absl::StatusOr<WorkerGroup::Command> cmd = group.Receive();
    if (!cmd.ok()) {
      TV_LOG(WARNING) << me << ": the group's leader is gone (" << cmd.status() << "); exiting";
      group.Abort();
      return kExitGroupLost;
    }
    if (cmd->shutdown) {
      TV_LOG(INFO) << me << ": shut down by rank 0";
      return 0;
    }
    v1::AssignTask task;
    if (!task.ParseFromString(cmd->assign_task_bytes)) {
      TV_LOG(ERROR) << me << ": unreadable task from rank 0; exiting";
      group.Abort();
      return kExitGroupLost;
    }
    TaskOutcome o = RunTask(task, models, no_progress, never, no_upload,
                            config.progress_interval_seconds, metrics, config.node_class, agree);
    if (Breaks(group, o)) {
      TV_LOG(ERROR) << me << ": task " << task.task_id()
                    << " broke the group: " << (o.ran_pipeline ? o.pipeline_status : o.status)
                    << "; exiting";
      group.Abort();
      return kExitGroupLost;
    }
    TV_LOG(INFO) << me << ": task " << task.task_id() << " done: " << o.status;
  }
}

}  // namespace turbovid::worker
