// The worker's scheduler link and task loop: dials WorkerHub.Connect with backoff + jitter,
// registers, heartbeats, runs one task at a time on the engine, streams progress and the MP4,
// honours CancelTask, and drains on request (finish the running task, return an unstarted one).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "turbovid/v1/worker_hub.grpc.pb.h"
#include "worker/metrics.h"
#include "worker/task_runner.h"
#include "worker/worker_config.h"

namespace turbovid::worker {

// What the memory gauges and heartbeats report as used: the backend's device memory, or the
// process RSS on the CPU backend.
int64_t DeviceMemoryUsedBytes(const engine::Backend& backend);
// What the worker's device gauges sample on every scrape (WorkerMetrics::AttachDevice), NVML
// included when it loads. `backend` must outlive the attachment.
DeviceSource MakeDeviceSource(const WorkerConfig& config, const engine::Backend& backend);

// Exit codes of Run().
inline constexpr int kExitDrained = 0;
inline constexpr int kExitStopped = 1;
inline constexpr int kExitPoisoned = 3;  // backend failed with Internal: restart the process
// kExitGroupLost (4, worker/group.h): a rank of the worker's group died or failed on its own.

class WorkerGroup;

class Worker {
 public:
  // Reads the worker token and the TLS files named by `config`; errors name the field.
  // `group`: the worker group this process leads (docs/parallelism.md §5), or null.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerConfig config,
                                                        engine::Backend& backend,
                                                        ModelSet& models, WorkerMetrics& metrics,
                                                        WorkerGroup* group = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves until drained, stopped or poisoned; returns the process exit code.
  int Run();
  // Finish the running task (return an unstarted one), then disconnect and return from Run.
  void RequestDrain();
  // Cancel the running task and return from Run as soon as possible.
  void RequestStop();
  // The worker group broke (`why`: which rank and how): a running task is reported lost
  // (Unavailable, so the scheduler requeues it), and Run returns kExitGroupLost.
  void GroupLost(const std::string& why);
  // False once the backend is poisoned (an Internal error from a GPU backend).
  bool live() const { return live_.load(); }

 private:
  Worker(WorkerConfig config, engine::Backend& backend, ModelSet& models, WorkerMetrics& metrics,
         WorkerGroup* group, std::string token,
         std::shared_ptr<grpc::ChannelCredentials> credentials);

  struct Session;
  struct Pending {
    v1::AssignTask task;
    std::shared_ptr<Session> session;
  };

  absl::Status RunSession(bool* registered);
  void HeartbeatLoop(std::shared_ptr<Session> session);
  void HandleAssign(const std::shared_ptr<Session>& session, const v1::AssignTask& assign);
  void HandleCancel(const std::shared_ptr<Session>& session, const v1::CancelTask& cancel);
  void TaskLoop();
  void RunOne(const Pending& pending);
  void ReturnTask(const std::shared_ptr<Session>& session, const v1::AssignTask& task,
                  const std::string& reason);
  // Under mu_: once draining with nothing to do, close the current session and wake Run.
  void MaybeFinishDrainLocked();
  bool IdleLocked() const { return !pending_.has_value() && current_task_id_.empty(); }
  v1::WorkerMessage RegisterMessage() const;
  int64_t MemoryUsedBytes() const;  // DeviceMemoryUsedBytes(backend_), for heartbeats

  const WorkerConfig config_;
  engine::Backend& backend_;  // the device the models run on (heartbeat memory)
  WorkerGroup* group_;        // null unless this process leads a worker group
  ModelSet& models_;  // loads on the task thread; Describe() from the heartbeat thread
  WorkerMetrics& metrics_;
  const std::string token_;  // "" = none sent
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerHub::Stub> stub_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<Session> session_;  // registered session, null while disconnected
  std::optional<Pending> pending_;    // assigned, not started
  std::string current_task_id_;       // running task, "" when idle
  bool draining_ = false;
  bool stopping_ = false;
  bool drain_done_ = false;
  std::atomic<bool> cancel_current_{false};
  std::atomic<bool> live_{true};
  std::atomic<bool> group_lost_{false};
  std::string group_lost_why_;  // under mu_
  std::atomic<int64_t> peak_bytes_{0};
  std::thread task_thread_;
};

}  // namespace turbovid::worker
