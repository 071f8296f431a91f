// The Connect reactor: reads worker messages one at a time into the session, writes queued
// scheduler messages one at a time (StreamOutbox), and finishes after the queue drains on close.
#include "server/worker_hub_service.h"

#include <mutex>

#include "common/logging.h"
#include "server/grpc_auth.h"
#include "server/status.h"
#include "server/stream_outbox.h"

namespace turbovid::server {
namespace {

// Callback orderings handled (gRPC runs reactions on its threads, one of a kind at a time):
// OnReadDone and OnWriteDone may interleave with each other, with Send/Close from control-plane
// threads and with OnCancel; OnDone comes last, after Finish and after every started read and
// write has reported. The outbox keeps the write side consistent under all of them.
class ConnectReactor final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::SchedulerMessage>,
      public WorkerLink {
 public:
  ConnectReactor(WorkerHubBackend* backend, const std::string& peer,
                 const WorkerCredential& credential)
      : peer_(peer) {
    session_ = backend->OpenSession(this, peer, credential);
    std::lock_guard<std::mutex> lock(mu_);
    StartRead(&incoming_);
  }

  // WorkerLink
  void Send(const v1::SchedulerMessage& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    ActLocked(outbox_.Push(message));
  }

  void Close(const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    ActLocked(outbox_.Close(status));
  }

  // Reactor
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The worker half-closed or the stream broke: finish after the queue drains.
      Close(absl::OkStatus());
      return;
    }
    WorkerSession* session;
    {
      // gRPC orders this after the StartRead that asked for it, through its own core; taking mu_
      // (held around every StartRead) makes that order visible to ThreadSanitizer too.
      std::lock_guard<std::mutex> lock(mu_);
      session = session_.get();
    }
    // Outside mu_: the session may Send or Close from here.
    absl::Status status = session->OnMessage(incoming_);
    if (!status.ok()) {
      TV_LOG(WARNING) << "worker " << peer_ << ": closing stream: " << status;
      Close(status);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!outbox_.finished()) StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    ActLocked(outbox_.WriteDone(ok));
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    ActLocked(outbox_.Cancel());
  }

  void OnDone() override {
    {
      // OnDone comes after every other reaction has returned (gRPC's guarantee, kept in its
      // core); the empty critical section shows ThreadSanitizer that order before the delete.
      std::lock_guard<std::mutex> lock(mu_);
    }
    session_->OnClosed();
    session_.reset();
    delete this;
  }

 private:
  using Outbox = StreamOutbox<v1::SchedulerMessage>;

  void ActLocked(Outbox::Action action) {
    switch (action) {
      case Outbox::Action::kNone:
        return;
      case Outbox::Action::kStartWrite:
        StartWrite(&outbox_.in_flight());
        return;
      case Outbox::Action::kFinish:
        Finish(ToGrpcStatus(outbox_.finish_status()));
        return;
    }
  }

  std::string peer_;
  std::unique_ptr<WorkerSession> session_;
  v1::WorkerMessage incoming_;
  std::mutex mu_;
  Outbox outbox_;  // guarded by mu_
};

// A stream refused before it reaches the control plane (bad or missing credentials).
class RefusedReactor final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::SchedulerMessage> {
 public:
  explicit RefusedReactor(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

WorkerHubServiceImpl::WorkerHubServiceImpl(WorkerHubBackend* backend, Authenticator* auth)
    : backend_(backend), auth_(auth) {}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::SchedulerMessage>* WorkerHubServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  WorkerCredential credential;
  if (auth_ != nullptr) {
    absl::StatusOr<WorkerCredential> checked =
        auth_->AuthenticateWorker(AuthorizationMetadata(*context));
    if (!checked.ok()) {
      // Never the presented token; the peer only.
      TV_LOG(WARNING) << "worker stream from " << context->peer()
                      << " refused: " << checked.status().message();
      return new RefusedReactor(checked.status());
    }
    credential = *std::move(checked);
  }
  return new ConnectReactor(backend_, context->peer(), credential);
}

}  // namespace turbovid::server
