// VideoService handlers: validate ids, check the deadline, call the backend, convert the status
// once (ToGrpcStatus), report the outcome to the observer. Streams are write reactors.
#include "server/video_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "common/logging.h"
#include "server/grpc_auth.h"
#include "server/live_video.h"
#include "server/status.h"
#include "server/tenant_scope.h"

namespace turbovid::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxJobIdBytes = common::kMaxJobIdBytes;
constexpr size_t kVideoChunkBytes = common::kVideoChunkBytes;  // GetVideo chunk size
constexpr size_t kMaxPendingWatchEvents = 256;

absl::Status CheckJobId(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: empty");
  if (job_id.size() > kMaxJobIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_id: ", job_id.size(), " bytes > ", kMaxJobIdBytes));
  }
  return absl::OkStatus();
}

absl::Status CheckDeadline(const grpc::CallbackServerContext* context) {
  if (context->deadline() < std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError("deadline passed before the request was handled");
  }
  return absl::OkStatus();
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Finishes a unary call with `status` and reports it.
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, const char* method,
                                      const absl::Status& status, Clock::time_point start,
                                      const RpcObserver& observer) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (observer) observer(method, status.code(), SecondsSince(start));
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

bool IsFinal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

// Streams job snapshots from a backend watch. Events arrive on the backend's threads and are
// queued; one write is in flight at a time. Writing starts only after WatchJob returned, so the
// reactor cannot finish (and be deleted) while the backend is still inside WatchJob.
class WatchReactor final : public grpc::ServerWriteReactor<v1::Job> {
 public:
  WatchReactor(VideoBackend* backend, const std::string& job_id, const std::string& client,
               const RpcObserver& observer)
      : backend_(backend), observer_(observer), start_(Clock::now()) {
    absl::StatusOr<uint64_t> watch = backend_->WatchJob(
        job_id, client,
        [this](const v1::Job* job, const absl::Status& status) { OnEvent(job, status); });
    std::lock_guard<std::mutex> lock(mu_);
    if (!watch.ok()) {
      FinishLocked(watch.status());
      return;
    }
    watch_id_ = *watch;
    started_ = true;
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(absl::CancelledError("client went away"));
      return;
    }
    if (IsFinal(pending_.front().state())) last_written_final_ = true;
    pending_.pop_front();
    PumpLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(absl::CancelledError("watch cancelled"));
  }

  void OnDone() override {
    uint64_t watch_id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      watch_id = watch_id_;
    }
    if (watch_id != 0) backend_->Unwatch(watch_id);
    if (observer_) observer_("WatchJob", final_status_.code(), SecondsSince(start_));
    delete this;
  }

 private:
  void OnEvent(const v1::Job* job, const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (job == nullptr) {
      end_status_ = status;
      ended_ = true;
    } else {
      // A slow client loses intermediate progress snapshots, never the newest one (the front
      // may be in flight, so the one after it goes).
      if (pending_.size() >= kMaxPendingWatchEvents) pending_.erase(pending_.begin() + 1);
      pending_.push_back(*job);
    }
    if (started_) PumpLocked();
  }

  void PumpLocked() {
    if (finished_ || writing_) return;
    if (last_written_final_) {
      FinishLocked(absl::OkStatus());
      return;
    }
    if (!pending_.empty()) {
      writing_ = true;
      StartWrite(&pending_.front());
      return;
    }
    if (ended_) FinishLocked(end_status_);
  }

  void FinishLocked(const absl::Status& status) {
    if (finished_) return;
    finished_ = true;
    final_status_ = status;
    Finish(ToGrpcStatus(status));
  }

  VideoBackend* backend_;
  RpcObserver observer_;
  Clock::time_point start_;
  std::mutex mu_;
  std::deque<v1::Job> pending_;  // front is being written while writing_
  uint64_t watch_id_ = 0;
  bool started_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool ended_ = false;
  bool last_written_final_ = false;
  absl::Status end_status_;
  absl::Status final_status_;
};

// Streams one artifact in 1 MiB chunks, reading the next chunk when the previous write is done.
class VideoReactor final : public grpc::ServerWriteReactor<v1::VideoChunk> {
 public:
  VideoReactor(std::unique_ptr<ByteSource> source, const RpcObserver& observer)
      : source_(std::move(source)), observer_(observer), start_(Clock::now()) {
    std::lock_guard<std::mutex> lock(mu_);
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok) {
      Done(absl::CancelledError("client went away"));
      return;
    }
    WriteNext();
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
    }
    if (observer_) observer_("GetVideo", status_.code(), SecondsSince(start_));
    delete this;
  }

 private:
  void WriteNext() {
    absl::StatusOr<std::string> data = source_->Read(kVideoChunkBytes);
    if (!data.ok()) {
      Done(data.status());
      return;
    }
    if (data->empty()) {
      Done(offset_ == source_->size()
               ? absl::OkStatus()
               : absl::DataLossError(
                     absl::StrCat("video: ", offset_, " of ", source_->size(), " bytes readable")));
      return;
    }
    chunk_.set_offset(offset_);
    chunk_.set_total_bytes(source_->size());
    offset_ += static_cast<int64_t>(data->size());
    chunk_.set_data(std::move(*data));
    StartWrite(&chunk_);
  }

  void Done(const absl::Status& status) {
    status_ = status;
    Finish(ToGrpcStatus(status));
  }

  // gRPC runs the reactions one after another, but on different threads and ordered inside its
  // core, which ThreadSanitizer cannot see (Debian's gRPC is not built with it); mu_ shows it.
  std::mutex mu_;
  std::unique_ptr<ByteSource> source_;
  RpcObserver observer_;
  Clock::time_point start_;
  v1::VideoChunk chunk_;
  int64_t offset_ = 0;
  absl::Status status_;
};

// Streams a progressive job's MP4 while it is produced: writes what the LiveVideo holds past
// the client's offset, then waits (WhenReadable) for more, until the stream ends with its
// status. The waiter reaches the reactor through `waker_`, which OnDone clears, so a late wake
// never touches a deleted reactor.
class LiveVideoReactor final : public grpc::ServerWriteReactor<v1::VideoChunk> {
 public:
  LiveVideoReactor(std::shared_ptr<LiveVideo> live, const RpcObserver& observer)
      : live_(std::move(live)),
        observer_(observer),
        start_(Clock::now()),
        waker_(std::make_shared<Waker>()) {
    waker_->reactor = this;
    std::lock_guard<std::mutex> lock(mu_);
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      DoneLocked(absl::CancelledError("client went away"));
      return;
    }
    PumpLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writing_) DoneLocked(absl::CancelledError("client went away"));
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> waker(waker_->mu);
      waker_->reactor = nullptr;
    }
    uint64_t wait = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      wait = wait_id_;
    }
    if (wait != 0) live_->CancelWait(wait);
    if (observer_) observer_("GetVideo", status_.code(), SecondsSince(start_));
    delete this;
  }

 private:
  struct Waker {
    std::mutex mu;
    LiveVideoReactor* reactor = nullptr;
  };

  void OnReadable() {
    std::lock_guard<std::mutex> lock(mu_);
    wait_id_ = 0;
    PumpLocked();
  }

  void PumpLocked() {
    while (!finished_ && !writing_ && wait_id_ == 0) {
      LiveVideo::Read r = live_->ReadAt(offset_, kVideoChunkBytes);
      // A complete end whose size no chunk carried yet: one empty chunk that says it.
      const bool tell_total = r.data.empty() && r.ended && r.status.ok() && !told_total_;
      if (!r.data.empty() || tell_total) {
        chunk_.set_offset(offset_);
        chunk_.set_total_bytes(r.total);
        told_total_ = r.total > 0;
        offset_ += static_cast<int64_t>(r.data.size());
        chunk_.set_data(std::move(r.data));
        writing_ = true;
        StartWrite(&chunk_);
        return;
      }
      if (r.ended) {
        DoneLocked(r.status);
        return;
      }
      std::weak_ptr<Waker> weak = waker_;
      wait_id_ = live_->WhenReadable(offset_, [weak] {
        std::shared_ptr<Waker> waker = weak.lock();
        if (waker == nullptr) return;
        std::lock_guard<std::mutex> lock(waker->mu);
        if (waker->reactor != nullptr) waker->reactor->OnReadable();
      });
      // 0: readable already (bytes or the end came in between): read again.
    }
  }

  void DoneLocked(const absl::Status& status) {
    if (finished_) return;
    finished_ = true;
    status_ = status;
    Finish(ToGrpcStatus(status));
  }

  std::mutex mu_;
  std::shared_ptr<LiveVideo> live_;
  RpcObserver observer_;
  Clock::time_point start_;
  std::shared_ptr<Waker> waker_;
  v1::VideoChunk chunk_;
  int64_t offset_ = 0;
  uint64_t wait_id_ = 0;     // a WhenReadable waiter is pending
  bool told_total_ = false;  // a chunk carried total_bytes
  bool writing_ = false;
  bool finished_ = false;
  absl::Status status_;
};

// Finishes a stream at once with an error (bad request, unknown job).
template <typename T>
class ErrorWriteReactor final : public grpc::ServerWriteReactor<T> {
 public:
  explicit ErrorWriteReactor(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

VideoServiceImpl::VideoServiceImpl(VideoBackend* backend, RpcObserver observer,
                                   Authenticator* auth)
    : backend_(backend), observer_(std::move(observer)), auth_(auth) {}

absl::StatusOr<Principal> VideoServiceImpl::Caller(const grpc::CallbackServerContext& context) {
  if (auth_ == nullptr) return Principal{.key_name = "", .tenant = "", .admin = true};
  return auth_->AuthenticateClient(AuthorizationMetadata(context));
}

grpc::ServerUnaryReactor* VideoServiceImpl::SubmitVideo(grpc::CallbackServerContext* context,
                                                        const v1::SubmitVideoRequest* request,
                                                        v1::SubmitVideoResponse* response) {
  const Clock::time_point start = Clock::now();
  absl::Status status = CheckDeadline(context);
  if (!status.ok()) return FinishUnary(context, "SubmitVideo", status, start, observer_);
  absl::StatusOr<Principal> caller = Caller(*context);
  if (!caller.ok()) return FinishUnary(context, "SubmitVideo", caller.status(), start, observer_);
  TenantScopedBackend scoped(backend_, *std::move(caller));
  // The callback thread never waits for another submit's commit (the backend group-commits the
  // submits arriving together): the call is finished, on whichever thread, once the job is durable.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  scoped.SubmitVideoAsync(
      *request, [reactor, response, start, observer = observer_](absl::StatusOr<v1::Job> job) {
        if (job.ok()) *response->mutable_job() = std::move(*job);
        if (observer) observer("SubmitVideo", job.status().code(), SecondsSince(start));
        reactor->Finish(ToGrpcStatus(job.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* VideoServiceImpl::GetJob(grpc::CallbackServerContext* context,
                                                   const v1::GetJobRequest* request,
                                                   v1::Job* response) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::Status status = caller.ok() ? CheckJobId(request->job_id()) : caller.status();
  if (status.ok()) {
    absl::StatusOr<v1::Job> job =
        TenantScopedBackend(backend_, *std::move(caller)).GetJob(request->job_id());
    status = job.status();
    if (job.ok()) *response = std::move(*job);
  }
  return FinishUnary(context, "GetJob", status, start, observer_);
}

grpc::ServerUnaryReactor* VideoServiceImpl::CancelJob(grpc::CallbackServerContext* context,
                                                      const v1::CancelJobRequest* request,
                                                      v1::Job* response) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::Status status = caller.ok() ? CheckJobId(request->job_id()) : caller.status();
  if (status.ok()) {
    absl::StatusOr<v1::Job> job =
        TenantScopedBackend(backend_, *std::move(caller)).CancelJob(request->job_id());
    status = job.status();
    if (job.ok()) *response = std::move(*job);
  }
  return FinishUnary(context, "CancelJob", status, start, observer_);
}

grpc::ServerUnaryReactor* VideoServiceImpl::ListJobs(grpc::CallbackServerContext* context,
                                                     const v1::ListJobsRequest* request,
                                                     v1::ListJobsResponse* response) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::Status status = caller.status();
  if (status.ok() && (request->page_size() < 0 || request->page_size() > 1000)) {
    status = absl::InvalidArgumentError(
        absl::StrCat("page_size: ", request->page_size(), " is not in [0, 1000]"));
  }
  if (status.ok()) {
    absl::StatusOr<v1::ListJobsResponse> list =
        TenantScopedBackend(backend_, *std::move(caller)).ListJobs(*request);
    status = list.status();
    if (list.ok()) *response = std::move(*list);
  }
  return FinishUnary(context, "ListJobs", status, start, observer_);
}

grpc::ServerUnaryReactor* VideoServiceImpl::DeleteJob(grpc::CallbackServerContext* context,
                                                      const v1::DeleteJobRequest* request,
                                                      v1::DeleteJobResponse* response) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::Status status = caller.ok() ? CheckJobId(request->job_id()) : caller.status();
  if (status.ok()) {
    status = TenantScopedBackend(backend_, *std::move(caller)).DeleteJob(request->job_id());
  }
  if (status.ok()) {
    response->set_job_id(request->job_id());
    response->set_deleted(true);
  }
  return FinishUnary(context, "DeleteJob", status, start, observer_);
}

grpc::ServerUnaryReactor* VideoServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest*,
                                                       v1::ListModelsResponse* response) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::StatusOr<v1::ListModelsResponse> models =
      caller.ok() ? backend_->ListModels()
                  : absl::StatusOr<v1::ListModelsResponse>(caller.status());
  if (models.ok()) *response = std::move(*models);
  return FinishUnary(context, "ListModels", models.status(), start, observer_);
}

grpc::ServerUnaryReactor* VideoServiceImpl::ListWorkers(grpc::CallbackServerContext* context,
                                                        const v1::ListWorkersRequest*,
                                                        v1::ListWorkersResponse* response) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::StatusOr<v1::ListWorkersResponse> workers =
      caller.ok() ? backend_->ListWorkers()
                  : absl::StatusOr<v1::ListWorkersResponse>(caller.status());
  if (workers.ok()) *response = std::move(*workers);
  return FinishUnary(context, "ListWorkers", workers.status(), start, observer_);
}

namespace {

// The host of a gRPC peer ("ipv4:10.0.0.7:51234" -> "ipv4:10.0.0.7"): every connection of one
// client machine counts against one watch budget.
std::string ClientOf(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  const size_t scheme = peer.find(':');
  if (colon == std::string::npos || colon == scheme) return peer;
  return peer.substr(0, colon);
}

}  // namespace

grpc::ServerWriteReactor<v1::Job>* VideoServiceImpl::WatchJob(grpc::CallbackServerContext* context,
                                                              const v1::WatchJobRequest* request) {
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::Status status = caller.ok() ? CheckJobId(request->job_id()) : caller.status();
  // Ownership first; the watch itself runs on the unscoped backend (the reactor unwatches it).
  if (status.ok()) {
    status = TenantScopedBackend(backend_, *std::move(caller)).GetJob(request->job_id()).status();
  }
  if (!status.ok()) {
    if (observer_) observer_("WatchJob", status.code(), 0.0);
    return new ErrorWriteReactor<v1::Job>(status);
  }
  return new WatchReactor(backend_, request->job_id(), ClientOf(context->peer()), observer_);
}

grpc::ServerWriteReactor<v1::VideoChunk>* VideoServiceImpl::GetVideo(
    grpc::CallbackServerContext* context, const v1::GetVideoRequest* request) {
  absl::StatusOr<Principal> caller = Caller(*context);
  absl::Status status = caller.ok() ? CheckJobId(request->job_id()) : caller.status();
  absl::StatusOr<std::unique_ptr<ByteSource>> source =
      status.ok() ? TenantScopedBackend(backend_, *std::move(caller)).OpenVideo(request->job_id())
                  : absl::StatusOr<std::unique_ptr<ByteSource>>(status);
  if (!source.ok()) {
    if (observer_) observer_("GetVideo", source.status().code(), 0.0);
    return new ErrorWriteReactor<v1::VideoChunk>(source.status());
  }
  if (std::shared_ptr<LiveVideo> live = (*source)->live(); live != nullptr) {
    return new LiveVideoReactor(std::move(live), observer_);
  }
  return new VideoReactor(std::move(*source), observer_);
}

}  // namespace turbovid::server
