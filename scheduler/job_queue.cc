// JobQueue on libstdc++'s policy-based tree with order statistics (header-only GNU extension).
#include "scheduler/job_queue.h"

#include <algorithm>
#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <functional>
#include <iterator>
#include <utility>

namespace turbovid::scheduler {

// Key (-priority, seq): ascending order is dispatch order.
using Key = std::pair<int, int64_t>;

struct JobQueue::Tree {
  __gnu_pbds::tree<Key, std::string, std::less<Key>, __gnu_pbds::rb_tree_tag,
                   __gnu_pbds::tree_order_statistics_node_update>
      map;
};

JobQueue::JobQueue() : tree_(std::make_unique<Tree>()) {}
JobQueue::~JobQueue() = default;
JobQueue::JobQueue(JobQueue&&) noexcept = default;
JobQueue& JobQueue::operator=(JobQueue&&) noexcept = default;

void JobQueue::Push(const QueueEntry& entry) {
  tree_->map.insert({Key{-entry.priority, entry.seq}, entry.job_id});
}

bool JobQueue::Remove(int priority, int64_t seq) {
  return tree_->map.erase(Key{-priority, seq}) > 0;
}

int JobQueue::Position(int priority, int64_t seq) const {
  const Key key{-priority, seq};
  if (tree_->map.find(key) == tree_->map.end()) return 0;
  return static_cast<int>(tree_->map.order_of_key(key)) + 1;
}

size_t JobQueue::size() const { return tree_->map.size(); }

std::vector<QueueEntry> JobQueue::Head(size_t n) const {
  std::vector<QueueEntry> out;
  for (auto it = tree_->map.begin(); it != tree_->map.end() && out.size() < n; ++it) {
    out.push_back(QueueEntry{-it->first.first, it->first.second, it->second});
  }
  return out;
}

std::vector<QueueEntry> DispatchOrder(const std::map<std::string, JobQueue>& queues,
                                      size_t per_queue) {
  std::vector<QueueEntry> out;
  for (const auto& [name, queue] : queues) {
    std::vector<QueueEntry> head = queue.Head(per_queue);
    out.insert(out.end(), std::make_move_iterator(head.begin()),
               std::make_move_iterator(head.end()));
  }
  std::sort(out.begin(), out.end(), [](const QueueEntry& a, const QueueEntry& b) {
    return std::make_pair(-a.priority, a.seq) < std::make_pair(-b.priority, b.seq);
  });
  return out;
}

}  // namespace turbovid::scheduler
