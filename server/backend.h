// What the gRPC front end needs from the control plane: the scheduler implements these interfaces
// (server/ sits below scheduler/, so it defines them and never includes scheduler headers).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/auth.h"
#include "turbovid/v1/fleet_service.pb.h"
#include "turbovid/v1/video_service.pb.h"
#include "turbovid/v1/worker_hub.pb.h"

namespace turbovid::server {

namespace v1 = ::turbovid::v1;

class LiveVideo;  // server/live_video.h

// The bytes of one stored artifact, read front to back.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // -1 while unknown (a progressive job that is still running: live() is set).
  virtual int64_t size() const = 0;
  // Up to max_bytes from the current position; "" at the end.
  virtual absl::StatusOr<std::string> Read(size_t max_bytes) = 0;
  // Moves the read position to `offset` in [0, size()] (HTTP range requests).
  virtual absl::Status Seek(int64_t offset) = 0;
  // A progressive job's MP4 while the job runs (SubmitVideoRequest.progressive): readers follow
  // it as it grows. nullptr for a stored file.
  virtual std::shared_ptr<LiveVideo> live() const { return nullptr; }
};

// A watch event: a job snapshot, or (job == nullptr) the end of the watch with `status`
// (e.g. Unavailable when the scheduler shuts down). Called under the backend's lock: it must
// be quick and must not call back into the backend.
using JobListener = std::function<void(const v1::Job* job, const absl::Status& status)>;

// The outcome of an asynchronous submit.
using SubmitDone = std::function<void(absl::StatusOr<v1::Job> job)>;

class VideoBackend {
 public:
  virtual ~VideoBackend() = default;
  virtual absl::StatusOr<v1::Job> SubmitVideo(const v1::SubmitVideoRequest& request) = 0;
  // SubmitVideo without holding the calling thread while the job is made durable: `done` gets
  // the result, before this returns or later on another thread. The default calls SubmitVideo.
  virtual void SubmitVideoAsync(const v1::SubmitVideoRequest& request, SubmitDone done) {
    done(SubmitVideo(request));
  }
  virtual absl::StatusOr<v1::Job> GetJob(const std::string& job_id) = 0;
  virtual absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) = 0;
  virtual absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request) = 0;
  // Calls `listener` with the current job (possibly before returning), then on every change.
  // After a snapshot in a final state, or a close event, no more calls come. Returns a watch id.
  virtual absl::StatusOr<uint64_t> WatchJob(const std::string& job_id, const std::string& client,
                                            JobListener listener) = 0;
  // Stops a watch; once it returns the listener is never called again. Unknown ids are ignored.
  virtual void Unwatch(uint64_t watch_id) = 0;
  // The MP4 of a SUCCEEDED job; FailedPrecondition for other states, NotFound for unknown jobs.
  // A progressive job that is not final gives a live source (ByteSource::live()).
  virtual absl::StatusOr<std::unique_ptr<ByteSource>> OpenVideo(const std::string& job_id) = 0;
  // Cancels the job if it is not final, removes its video and marks it deleted: from then on it
  // is NotFound. NotFound for unknown (or already deleted) jobs.
  virtual absl::Status DeleteJob(const std::string& job_id) = 0;
  // The catalog with the registered workers serving each variant.
  virtual absl::StatusOr<v1::ListModelsResponse> ListModels() = 0;
  // Registered workers, by node class and worker id.
  virtual absl::StatusOr<v1::ListWorkersResponse> ListWorkers() = 0;
};

// The scheduler's side of one worker's Connect stream.
class WorkerLink {
 public:
  virtual ~WorkerLink() = default;
  // Queues a message to the worker; never blocks. Ignored once the stream is closing.
  virtual void Send(const v1::SchedulerMessage& message) = 0;
  // Ends the stream with `status` after the queued messages are written.
  virtual void Close(const absl::Status& status) = 0;
};

// One connected worker, as seen by the control plane. Calls come one at a time per session.
class WorkerSession {
 public:
  virtual ~WorkerSession() = default;
  // A non-OK status ends the stream with it.
  virtual absl::Status OnMessage(const v1::WorkerMessage& message) = 0;
  // The stream is gone (either side ended it). After this returns the link is never used again.
  virtual void OnClosed() = 0;
};

class WorkerHubBackend {
 public:
  virtual ~WorkerHubBackend() = default;
  // `link` stays valid until the session's OnClosed returns; `peer` is the gRPC peer string;
  // `credential` is what the worker authenticated as (server/auth.h).
  virtual std::unique_ptr<WorkerSession> OpenSession(WorkerLink* link, const std::string& peer,
                                                     const WorkerCredential& credential) = 0;
};

// The fleet view behind turbovid.v1.FleetService (docs/fleet.md).
class FleetBackend {
 public:
  virtual ~FleetBackend() = default;
  virtual absl::StatusOr<v1::GetFleetResponse> GetFleet() = 0;
};

// Called once per finished RPC (method name, final code, seconds) for metrics.
using RpcObserver = std::function<void(const char* method, absl::StatusCode code, double seconds)>;

}  // namespace turbovid::server
