// LiveVideo: a growing byte buffer with blocking and callback readers.
#include "server/live_video.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace turbovid::server {

void LiveVideo::Append(std::string_view bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  if (ended_ || bytes.empty()) return;
  bytes_.append(bytes);
  WakeLocked(lock);
}

void LiveVideo::End(const absl::Status& status) {
  std::unique_lock<std::mutex> lock(mu_);
  if (ended_) return;
  ended_ = true;
  status_ = status;
  WakeLocked(lock);
}

void LiveVideo::WakeLocked(std::unique_lock<std::mutex>& lock) {
  std::vector<std::function<void()>> ready;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (ended_ || static_cast<int64_t>(bytes_.size()) > it->second.offset) {
      ready.push_back(std::move(it->second.ready));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  cv_.notify_all();
  lock.unlock();
  for (auto& fn : ready) fn();
}

int64_t LiveVideo::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(bytes_.size());
}

bool LiveVideo::ended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ended_;
}

LiveVideo::Read LiveVideo::ReadAt(int64_t offset, size_t max_bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  Read r;
  const int64_t size = static_cast<int64_t>(bytes_.size());
  if (offset >= 0 && offset < size) {
    r.data = bytes_.substr(static_cast<size_t>(offset),
                           std::min<size_t>(max_bytes, static_cast<size_t>(size - offset)));
  }
  r.ended = ended_;
  r.status = status_;
  r.total = ended_ && status_.ok() ? size : 0;
  return r;
}

LiveVideo::Read LiveVideo::WaitRead(int64_t offset, size_t max_bytes,
                                    absl::Duration timeout) const {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                 [&] { return ended_ || static_cast<int64_t>(bytes_.size()) > offset; });
  }
  return ReadAt(offset, max_bytes);
}

uint64_t LiveVideo::WhenReadable(int64_t offset, std::function<void()> ready) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ended_ || static_cast<int64_t>(bytes_.size()) > offset) return 0;
  const uint64_t id = next_waiter_++;
  waiters_[id] = Waiter{offset, std::move(ready)};
  return id;
}

void LiveVideo::CancelWait(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  waiters_.erase(id);
}

absl::StatusOr<std::string> LiveByteSource::Read(size_t max_bytes) {
  for (;;) {
    LiveVideo::Read r = live_->WaitRead(offset_, max_bytes, absl::Seconds(1));
    if (!r.data.empty()) {
      offset_ += static_cast<int64_t>(r.data.size());
      return std::move(r.data);
    }
    if (r.ended) {
      if (!r.status.ok()) return r.status;
      return std::string();
    }
  }
}

absl::Status LiveByteSource::Seek(int64_t offset) {
  if (offset != 0) {
    return absl::FailedPreconditionError("range: a video still being produced is read from 0");
  }
  offset_ = 0;
  return absl::OkStatus();
}

}  // namespace turbovid::server
