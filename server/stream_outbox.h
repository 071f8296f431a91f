// StreamOutbox: the write side of a bidirectional server stream as a plain state machine (no gRPC),
// so every ordering of Send/Close/OnWriteDone/OnCancel can be tested deterministically.
#pragma once

#include <deque>
#include <optional>
#include <utility>

#include "absl/status/status.h"

namespace turbovid::server {

// The caller holds its mutex around every call and performs the returned action under it:
// kStartWrite -> StartWrite(in_flight()), kFinish -> Finish(finish_status()).
// Invariants: at most one write in flight; the in-flight message lives outside the queue, so
// dropping the queue (cancel, failed write) never frees a buffer gRPC is still writing; Finish
// is returned exactly once and only while no write is in flight (gRPC forbids finishing then).
template <typename Message>
class StreamOutbox {
 public:
  enum class Action { kNone, kStartWrite, kFinish };

  // Queues a message; dropped once the stream is closing.
  Action Push(Message message) {
    if (closing_) return Action::kNone;
    queued_.push_back(std::move(message));
    return Next();
  }

  // Finishes with `status` after the queued messages are written (first close wins).
  Action Close(const absl::Status& status) {
    if (closing_) return Action::kNone;
    closing_ = true;
    status_ = status;
    return Next();
  }

  // The in-flight write completed; a failed write drops the rest of the queue.
  Action WriteDone(bool ok) {
    if (!in_flight_.has_value()) return Action::kNone;  // spurious: nothing was written
    in_flight_.reset();
    if (!ok) Abort(absl::UnavailableError("write to worker failed"));
    return Next();
  }

  // The RPC was cancelled (peer gone, deadline, server shutdown): drop what is queued and
  // finish as soon as the in-flight write, if any, has come back.
  Action Cancel() {
    Abort(absl::CancelledError("worker stream cancelled"));
    return Next();
  }

  const Message& in_flight() const { return *in_flight_; }
  bool writing() const { return in_flight_.has_value(); }
  bool finished() const { return finished_; }
  size_t queued() const { return queued_.size(); }
  const absl::Status& finish_status() const { return status_; }

 private:
  void Abort(const absl::Status& status) {
    queued_.clear();
    if (!closing_ || status_.ok()) status_ = status;
    closing_ = true;
  }

  Action Next() {
    if (finished_ || in_flight_.has_value()) return Action::kNone;
    if (!queued_.empty()) {
      in_flight_.emplace(std::move(queued_.front()));
      queued_.pop_front();
      return Action::kStartWrite;
    }
    if (!closing_) return Action::kNone;
    finished_ = true;
    return Action::kFinish;
  }

  std::optional<Message> in_flight_;  // the message gRPC is writing, if any
  std::deque<Message> queued_;        // not yet handed to gRPC
  bool closing_ = false;
  bool finished_ = false;
  absl::Status status_;  // the status Finish gets
};

}  // namespace turbovid::server
