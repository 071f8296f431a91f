// The Connect reactor: reads worker messages one at a time into the session, writes queued
// scheduler messages one at a time, and finishes after the queue drains when asked to close.
#include "server/worker_hub_service.h"

#include <deque>
#include <mutex>

#include "common/logging.h"
#include "server/status.h"

namespace turbovid::server {
namespace {

class ConnectReactor final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::SchedulerMessage>,
      public WorkerLink {
 public:
  ConnectReactor(WorkerHubBackend* backend, const std::string& peer) : peer_(peer) {
    session_ = backend->OpenSession(this, peer);
    StartRead(&incoming_);
  }

  // WorkerLink
  void Send(const v1::SchedulerMessage& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ || finished_) return;
    outgoing_.push_back(message);
    PumpLocked();
  }

  void Close(const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ || finished_) return;
    closing_ = true;
    close_status_ = status;
    PumpLocked();
  }

  // Reactor
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The worker half-closed or the stream broke.
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      PumpLocked();
      return;
    }
    absl::Status status = session_->OnMessage(incoming_);
    if (!status.ok()) {
      TV_LOG(WARNING) << "worker " << peer_ << ": closing stream: " << status;
      Close(status);
      return;
    }
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      closing_ = true;
      close_status_ = absl::UnavailableError("write to worker failed");
      outgoing_.clear();
    } else {
      outgoing_.pop_front();
    }
    PumpLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    outgoing_.clear();
    if (!writing_) FinishLocked(absl::CancelledError("worker stream cancelled"));
  }

  void OnDone() override {
    session_->OnClosed();
    session_.reset();
    delete this;
  }

 private:
  void PumpLocked() {
    if (finished_ || writing_) return;
    if (!outgoing_.empty()) {
      writing_ = true;
      StartWrite(&outgoing_.front());
      return;
    }
    if (closing_) FinishLocked(close_status_);
  }

  void FinishLocked(const absl::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(ToGrpcStatus(status));
  }

  std::string peer_;
  std::unique_ptr<WorkerSession> session_;
  v1::WorkerMessage incoming_;
  std::mutex mu_;
  std::deque<v1::SchedulerMessage> outgoing_;  // front is in flight while writing_
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  absl::Status close_status_;
};

}  // namespace

WorkerHubServiceImpl::WorkerHubServiceImpl(WorkerHubBackend* backend) : backend_(backend) {}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::SchedulerMessage>* WorkerHubServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  return new ConnectReactor(backend_, context->peer());
}

}  // namespace turbovid::server
