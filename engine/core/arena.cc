// Arena: best-fit offsets with coalescing (see arena.h).
#include "engine/core/arena.h"

#include <iterator>
#include <limits>

namespace turbovid::engine {

Arena::Arena(int64_t capacity) : capacity_(capacity > 0 ? capacity / kAlignment * kAlignment : 0) {
  if (capacity_ > 0) AddFree(0, capacity_);
}

int64_t Arena::RoundUp(int64_t bytes) {
  if (bytes <= 0) return kAlignment;
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

void Arena::AddFree(int64_t offset, int64_t size) {
  free_.emplace(offset, size);
  by_size_.emplace(size, offset);
}

void Arena::RemoveFree(std::map<int64_t, int64_t>::iterator it) {
  by_size_.erase({it->second, it->first});
  free_.erase(it);
}

std::optional<int64_t> Arena::Allocate(int64_t bytes) {
  // Checked before rounding so that a huge request cannot overflow.
  if (bytes < 0 || bytes > capacity_) return std::nullopt;
  const int64_t size = RoundUp(bytes);
  // Smallest free block of at least `size`; among equal sizes the lowest offset.
  auto fit = by_size_.lower_bound({size, std::numeric_limits<int64_t>::min()});
  if (fit == by_size_.end()) return std::nullopt;
  const auto [block_size, offset] = *fit;
  RemoveFree(free_.find(offset));
  if (block_size > size) AddFree(offset + size, block_size - size);
  live_.emplace(offset, size);
  in_use_ += size;
  if (in_use_ > peak_) peak_ = in_use_;
  return offset;
}

bool Arena::Free(int64_t offset) {
  auto live = live_.find(offset);
  if (live == live_.end()) return false;
  int64_t begin = offset, end = offset + live->second;
  in_use_ -= live->second;
  live_.erase(live);
  // Merge with the free block ending at `begin` and the one starting at `end`.
  auto next = free_.lower_bound(begin);
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == begin) {
      begin = prev->first;
      RemoveFree(prev);
    }
  }
  next = free_.find(end);
  if (next != free_.end()) {
    end += next->second;
    RemoveFree(next);
  }
  AddFree(begin, end - begin);
  return true;
}

Arena::Stats Arena::stats() const {
  Stats s;
  s.capacity = capacity_;
  s.in_use = in_use_;
  s.peak = peak_;
  s.largest_free = by_size_.empty() ? 0 : by_size_.rbegin()->first;
  s.free_blocks = static_cast<int64_t>(free_.size());
  s.live_blocks = static_cast<int64_t>(live_.size());
  return s;
}

}  // namespace turbovid::engine
