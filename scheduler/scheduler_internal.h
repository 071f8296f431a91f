// The in-memory records of Scheduler, shared by scheduler.cc and scheduler_workers.cc only.
#pragma once

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "scheduler/scheduler.h"
#include "server/live_video.h"

namespace turbovid::scheduler {

// A job that is not final: its durable record plus what only lives in memory.
struct Scheduler::ActiveJob {
  StoredJob stored;
  PlacementRequest placement;  // model, variant (catalog pointer), size
  v1::Stage stage = v1::STAGE_UNSPECIFIED;
  int step = 0;
  int num_steps = 0;
  double progress = 0;
  std::string preview_png;  // the latest step's preview (SubmitVideoRequest.preview_width > 0)
  int preview_step = 0;
  uint64_t session_id = 0;  // worker session holding the current attempt; 0 = none
  std::string node_class;   // of that worker
  bool cancel_requested = false;
  double cancel_requested_at = 0;  // steady seconds
  std::unique_ptr<ArtifactWriter> upload;
  // Progressive jobs (scheduler_progressive.cc): what GetVideo readers follow for the current
  // attempt (made by the first reader or the first bytes), the bytes received after the last
  // whole fragment, the init segment (ftyp + moov) the fragments are checked against, and the
  // bytes and frames relayed so far.
  std::shared_ptr<server::LiveVideo> live;
  std::string stream_tail;
  std::string stream_init;
  int64_t stream_bytes = 0;
  int64_t stream_frames = 0;
  double created_steady = 0;  // for latencies measured in this process
  double enqueued_steady = 0;
  double assigned_steady = 0;
  double stage_started_steady = 0;
  double denoise_done_steady = 0;  // when the last denoising step was reported
  double unservable_since = 0;  // steady seconds since no registered worker serves it; 0 = served
  // Fleet economics (docs/fleet.md): the deadline from the accepted request, and the current
  // attempt's placement and measurements.
  double deadline_unix = kNoDeadline;
  std::string layout;                         // of the worker holding the attempt
  double price_per_hour = 0;                  // of that worker (per GPU x its GPUs)
  int gpus = 1;                               // of that worker (GPU-seconds per tenant)
  double expected_seconds = 0;                // the model's service time there; 0 = unknown
  double expected_finish_unix = kNoDeadline;  // when that worker should be free again
  double load_seconds = 0;                    // spent in LOADING_MODEL (not service time)
  double denoise_seconds = 0;                 // sum of the reported step times
  // While queued: the (node class, layout) placement holds it for, and its work there.
  std::pair<std::string, std::string> held_for;
  double held_seconds = 0;
};

// One connected worker stream.
struct Scheduler::Worker {
  uint64_t session_id = 0;
  server::WorkerLink* link = nullptr;
  std::string peer;
  server::WorkerCredential credential;  // what it authenticated as
  bool registered = false;
  v1::RegisterWorker info;
  bool draining = false;
  double last_seen = 0;  // steady seconds of its last message
  int max_tasks = 1;
  std::set<std::string> tasks;  // job ids assigned to it
  int64_t memory_used_bytes = 0;
  int64_t memory_peak_bytes = 0;
  std::set<std::pair<std::string, std::string>> variants;
  std::set<std::pair<std::string, std::string>> loaded;
};

// The WorkerSession handed to the gRPC reactor: forwards to the scheduler by session id.
class Scheduler::Session final : public server::WorkerSession {
 public:
  Session(Scheduler* scheduler, uint64_t session_id)
      : scheduler_(scheduler), session_id_(session_id) {}
  absl::Status OnMessage(const v1::WorkerMessage& message) override {
    return scheduler_->HandleMessage(session_id_, message);
  }
  void OnClosed() override { scheduler_->HandleClosed(session_id_); }

 private:
  Scheduler* scheduler_;
  uint64_t session_id_;
};

// Unix time now (seconds): the clock of deadlines and of placement's expected completions.
double UnixNow();
// The accepted request's deadline on the placement clock; kNoDeadline when it has none.
// Device memory per GPU a worker offers jobs: memory_bytes, or its memory budget when smaller
// (memory_limit_bytes, 0 = none).
inline int64_t UsableMemoryBytes(const v1::RegisterWorker& info) {
  const int64_t limit = info.memory_limit_bytes();
  if (limit <= 0) return info.memory_bytes();
  return info.memory_bytes() > 0 ? std::min(info.memory_bytes(), limit) : limit;
}

inline double DeadlineOf(const v1::SubmitVideoRequest& accepted) {
  return accepted.deadline_unix_seconds() > 0 ? accepted.deadline_unix_seconds() : kNoDeadline;
}
// The prior table named by config.placement.service_times_file (empty when none); every node
// class it names must be one of the catalog's.
absl::StatusOr<ServiceTimeTable> LoadServiceTimes(const SchedulerConfig& config,
                                                  const ModelCatalog& catalog);

const char* StateName(v1::JobState state);
const char* StageName(v1::Stage stage);
// Progress of the whole job in [0, 1] from the stage a worker reports.
double StageProgress(v1::Stage stage, int step, int num_steps, double stage_fraction);

}  // namespace turbovid::scheduler
