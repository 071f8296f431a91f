// DevicePool: the activation arena and the caching path (see device_pool.h).
#include "engine/cuda/device_pool.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "common/logging.h"
#include "common/status_macros.h"

namespace turbovid::engine::cuda {

size_t DevicePool::RoundUp(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{2} << 20, kSmallLimit = size_t{1} << 20;
  if (bytes == 0) bytes = 1;
  if (bytes <= kSmallLimit) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

cudaError_t DevicePool::MallocOrTrim(size_t size, void** p) {
  cudaError_t e = cudaMalloc(p, size);
  if (e == cudaSuccess) return e;
  cudaGetLastError();
  Trim();
  e = cudaMalloc(p, size);
  if (e != cudaSuccess) cudaGetLastError();
  return e;
}

DevicePool::~DevicePool() {
  Trim();
  if (arena_base_ != nullptr) {
    cudaDeviceSynchronize();  // queued work may still use arena blocks
    cudaFree(arena_base_);
  }
}

void DevicePool::AddInUse(int64_t bytes, bool activation) {
  in_use_ += bytes;
  peak_ = std::max(peak_, in_use_);
  if (activation) {
    activation_in_use_ += bytes;
    activation_peak_ = std::max(activation_peak_, activation_in_use_);
  }
}

cudaError_t DevicePool::Get(size_t bytes, Use use, void** ptr, std::shared_ptr<void>* owner) {
  const bool activation = use == Use::kActivation;
  const size_t size = RoundUp(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (activation && arena_base_ != nullptr) {
      if (std::optional<int64_t> off = arena_.Allocate(static_cast<int64_t>(bytes))) {
        const int64_t got = Arena::RoundUp(static_cast<int64_t>(bytes));
        AddInUse(got, true);
        *ptr = static_cast<char*>(arena_base_) + *off;
        *owner = ArenaOwner(*ptr, *off, got);
        return cudaSuccess;
      }
      if (overflow_count_++ == 0) {
        // Once per job (ResetPeak): a plan that is too small shows in any run's log.
        const Arena::Stats a = arena_.stats();
        TV_LOG(WARNING) << "cuda: activation of " << bytes << " bytes does not fit the arena ("
                        << (a.capacity >> 20) << " MiB, " << (a.in_use >> 20)
                        << " MiB in use, largest free " << (a.largest_free >> 20)
                        << " MiB); it and later misses take the caching pool (memory_stats)";
      }
      overflow_bytes_ += static_cast<int64_t>(bytes);
    }
    // Exact size class first; a larger cached block only if it wastes at most a quarter.
    auto it = free_.lower_bound(size);
    if (it != free_.end() && it->first <= size + size / 4) {
      p = it->second;
      const size_t got = it->first;
      free_.erase(it);
      AddInUse(static_cast<int64_t>(got), activation);
      *ptr = p;
      *owner = Owner(p, got, activation);
      return cudaSuccess;
    }
  }
  if (const cudaError_t e = MallocOrTrim(size, &p); e != cudaSuccess) return e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reserved_ += static_cast<int64_t>(size);
    AddInUse(static_cast<int64_t>(size), activation);
  }
  *ptr = p;
  *owner = Owner(p, size, activation);
  return cudaSuccess;
}

cudaError_t DevicePool::Reserve(size_t bytes, bool* deferred) {
  *deferred = false;
  void* old = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int64_t>(bytes) <= arena_.capacity()) return cudaSuccess;
    if (arena_.stats().live_blocks > 0) {
      *deferred = true;
      return cudaSuccess;
    }
    old = arena_base_;
    reserved_ -= arena_.capacity();
    arena_base_ = nullptr;
    arena_ = Arena();
  }
  if (old != nullptr) {
    cudaDeviceSynchronize();  // the last job's kernels may still read the old arena
    cudaFree(old);
  }
  // Whole 2 MiB pages, like the large size classes.
  const size_t size = RoundUp(std::max<size_t>(bytes, size_t{2} << 20));
  void* p = nullptr;
  if (const cudaError_t e = MallocOrTrim(size, &p); e != cudaSuccess) return e;
  std::lock_guard<std::mutex> lock(mu_);
  arena_base_ = p;
  arena_ = Arena(static_cast<int64_t>(size));
  reserved_ += arena_.capacity();
  return cudaSuccess;
}

std::shared_ptr<void> DevicePool::Owner(void* p, size_t size, bool activation) {
  std::weak_ptr<DevicePool> self = weak_from_this();
  return std::shared_ptr<void>(p, [self, size, activation](void* q) {
    if (auto pool = self.lock()) {
      pool->Put(q, size, activation);
    } else {
      cudaFree(q);  // the pool is gone (backend destroyed first): release directly
    }
  });
}

std::shared_ptr<void> DevicePool::ArenaOwner(void* p, int64_t offset, int64_t size) {
  std::weak_ptr<DevicePool> self = weak_from_this();
  // The arena only changes while none of its blocks is live, so `offset` is always in the
  // current one. Without the pool the whole arena is already gone: nothing to release.
  return std::shared_ptr<void>(p, [self, offset, size](void*) {
    if (auto pool = self.lock()) pool->PutArena(offset, size);
  });
}

void DevicePool::Put(void* ptr, size_t size, bool activation) {
  std::lock_guard<std::mutex> lock(mu_);
  in_use_ -= static_cast<int64_t>(size);
  if (activation) activation_in_use_ -= static_cast<int64_t>(size);
  free_.emplace(size, ptr);
}

void DevicePool::PutArena(int64_t offset, int64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  in_use_ -= size;
  activation_in_use_ -= size;
  TV_CHECK(arena_.Free(offset));
}

void DevicePool::Trim() {
  std::vector<std::pair<size_t, void*>> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocks.assign(free_.begin(), free_.end());
    free_.clear();
    for (const auto& [size, p] : blocks) reserved_ -= static_cast<int64_t>(size);
  }
  if (blocks.empty()) return;
  cudaDeviceSynchronize();  // cached blocks may still be read by queued work
  for (const auto& [size, p] : blocks) cudaFree(p);
}

MemoryStats DevicePool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  MemoryStats s;
  s.in_use = in_use_;
  s.peak = peak_;
  s.reserved = reserved_;
  s.activation_in_use = activation_in_use_;
  s.activation_peak = activation_peak_;
  s.arena_bytes = arena_.capacity();
  s.arena_peak = arena_.stats().peak;
  s.overflow_count = overflow_count_;
  s.overflow_bytes = overflow_bytes_;
  return s;
}

void DevicePool::ResetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  peak_ = in_use_;
  activation_peak_ = activation_in_use_;
  arena_.ResetPeak();
  overflow_count_ = 0;
  overflow_bytes_ = 0;
}

}  // namespace turbovid::engine::cuda
