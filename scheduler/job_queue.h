// One model's queue of QUEUED jobs: higher priority first, then submit order (FIFO). Positions
// come from an order-statistics tree, so a watcher's queue position costs O(log n).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace turbovid::scheduler {

struct QueueEntry {
  int priority = 0;
  int64_t seq = 0;
  std::string job_id;
};

class JobQueue {
 public:
  JobQueue();
  ~JobQueue();
  JobQueue(JobQueue&&) noexcept;
  JobQueue& operator=(JobQueue&&) noexcept;

  void Push(const QueueEntry& entry);
  bool Remove(int priority, int64_t seq);  // false when absent
  // 1-based position; 0 when absent.
  int Position(int priority, int64_t seq) const;
  size_t size() const;
  // The first `n` entries in dispatch order.
  std::vector<QueueEntry> Head(size_t n) const;

 private:
  struct Tree;
  std::unique_ptr<Tree> tree_;
};

// Queued jobs looked at per model queue in one dispatch pass.
inline constexpr size_t kDispatchScanPerQueue = 64;

// The jobs one dispatch pass considers, best first: the first `per_queue` of every queue, merged
// by priority, then submit order (seq). The scheduler and turbovid-fleetsim both dispatch in it.
std::vector<QueueEntry> DispatchOrder(const std::map<std::string, JobQueue>& queues,
                                      size_t per_queue = kDispatchScanPerQueue);

}  // namespace turbovid::scheduler
