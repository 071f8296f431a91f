// The MP4 of a progressive job (SubmitVideoRequest.progressive) while its worker produces it: the
// scheduler appends whole MP4 boxes as they arrive and ends the stream when the attempt ends;
// any number of readers (GetVideo, the HTTP download) follow it from byte 0. gRPC-free.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/backend.h"

namespace turbovid::server {

class LiveVideo {
 public:
  // What a reader gets at `offset`: bytes, or nothing yet, or the end.
  struct Read {
    std::string data;     // up to the asked bytes from the offset; empty when none yet
    bool ended = false;   // no more bytes will come (with data empty: the reader is done)
    absl::Status status;  // when ended: OK = the file is complete, else why it stopped
    int64_t total = 0;    // the file's size once it ended OK; 0 before
  };

  // Adds bytes at the end and wakes the readers waiting for them. Ignored once ended.
  void Append(std::string_view bytes);
  // No more bytes: OK when the bytes appended are the whole file, else the reason readers end
  // with (Cancelled, FailedPrecondition for a failed job, Aborted for a requeued attempt,
  // Unavailable at shutdown). The first call wins.
  void End(const absl::Status& status);

  int64_t size() const;
  bool ended() const;

  // Never blocks.
  Read ReadAt(int64_t offset, size_t max_bytes) const;
  // Waits up to `timeout` for bytes past `offset` or the end, then reads.
  Read WaitRead(int64_t offset, size_t max_bytes, absl::Duration timeout) const;
  // Asynchronous readers: `ready` runs once, on the thread that appends or ends, without this
  // object's lock, when bytes past `offset` exist or the stream ended. Returns 0 (and never runs
  // `ready`) when that is true already; else an id for CancelWait.
  uint64_t WhenReadable(int64_t offset, std::function<void()> ready);
  // Drops a waiter that has not run; a waiter already running may still be running.
  void CancelWait(uint64_t id);

 private:
  struct Waiter {
    int64_t offset;
    std::function<void()> ready;
  };
  void WakeLocked(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string bytes_;
  bool ended_ = false;
  absl::Status status_;
  uint64_t next_waiter_ = 1;
  std::map<uint64_t, Waiter> waiters_;
};

// A ByteSource over a LiveVideo for readers that may block (the HTTP download's thread): Read
// waits until bytes come or the stream ends; "" at a complete end, the stream's status at an
// incomplete one. size() is -1; Seek only to 0.
class LiveByteSource final : public ByteSource {
 public:
  explicit LiveByteSource(std::shared_ptr<LiveVideo> live) : live_(std::move(live)) {}
  int64_t size() const override { return -1; }
  absl::StatusOr<std::string> Read(size_t max_bytes) override;
  absl::Status Seek(int64_t offset) override;
  std::shared_ptr<LiveVideo> live() const override { return live_; }

 private:
  std::shared_ptr<LiveVideo> live_;
  int64_t offset_ = 0;
};

}  // namespace turbovid::server
