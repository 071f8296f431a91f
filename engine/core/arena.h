// Arena: hands out offsets inside one region of fixed size (the CUDA backend's activation arena;
// no device code here, so it is tested on the host). Best fit over the free blocks, kept by offset
// and by size; a freed block merges with free neighbours; every block is 256-byte aligned.
// Allocate and Free are O(log n) in the number of blocks.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace turbovid::engine {

class Arena {
 public:
  // Block granularity: cudaMalloc's own alignment, which every vectorised kernel load relies on.
  static constexpr int64_t kAlignment = 256;

  struct Stats {
    int64_t capacity = 0;
    int64_t in_use = 0;        // bytes of live blocks (each rounded up to kAlignment)
    int64_t peak = 0;          // highest in_use since construction or ResetPeak()
    int64_t largest_free = 0;  // the largest request that fits now
    int64_t free_blocks = 0;
    int64_t live_blocks = 0;
  };

  // A region of `capacity` bytes (rounded down to kAlignment; ≤ 0 → empty).
  explicit Arena(int64_t capacity = 0);

  // `bytes` rounded up to kAlignment (0 → kAlignment).
  static int64_t RoundUp(int64_t bytes);

  // Offset of a new block of at least `bytes`, or nullopt when no free block is large enough
  // (or bytes < 0). The smallest fitting free block is split, the block taken from its start.
  std::optional<int64_t> Allocate(int64_t bytes);
  // Releases the live block starting at `offset`; false (and no change) when there is none.
  bool Free(int64_t offset);

  int64_t capacity() const { return capacity_; }
  Stats stats() const;
  void ResetPeak() { peak_ = in_use_; }

 private:
  void AddFree(int64_t offset, int64_t size);
  void RemoveFree(std::map<int64_t, int64_t>::iterator it);

  int64_t capacity_ = 0;
  int64_t in_use_ = 0;
  int64_t peak_ = 0;
  std::map<int64_t, int64_t> free_;                // offset → size, no two adjacent
  std::set<std::pair<int64_t, int64_t>> by_size_;  // (size, offset) of every free block
  std::map<int64_t, int64_t> live_;                // offset → size
};

}  // namespace turbovid::engine
