#include "engine/cuda/device_pool.h"

#include <algorithm>
#include <vector>

namespace turbovid::engine::cuda {

size_t DevicePool::RoundUp(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{2} << 20, kSmallLimit = size_t{1} << 20;
  if (bytes == 0) bytes = 1;
  if (bytes <= kSmallLimit) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

DevicePool::~DevicePool() { Trim(); }

cudaError_t DevicePool::Get(size_t bytes, void** ptr, std::shared_ptr<void>* owner) {
  const size_t size = RoundUp(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Exact size class first; a larger cached block only if it wastes at most a quarter.
    auto it = free_.lower_bound(size);
    if (it != free_.end() && it->first <= size + size / 4) {
      p = it->second;
      const size_t got = it->first;
      free_.erase(it);
      in_use_ += static_cast<int64_t>(got);
      peak_ = std::max(peak_, in_use_);
      *ptr = p;
      *owner = Owner(p, got);
      return cudaSuccess;
    }
  }
  cudaError_t e = cudaMalloc(&p, size);
  if (e != cudaSuccess) {
    cudaGetLastError();
    Trim();
    e = cudaMalloc(&p, size);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return e;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    reserved_ += static_cast<int64_t>(size);
    in_use_ += static_cast<int64_t>(size);
    peak_ = std::max(peak_, in_use_);
  }
  *ptr = p;
  *owner = Owner(p, size);
  return cudaSuccess;
}

std::shared_ptr<void> DevicePool::Owner(void* p, size_t size) {
  std::weak_ptr<DevicePool> self = weak_from_this();
  return std::shared_ptr<void>(p, [self, size](void* q) {
    if (auto pool = self.lock()) {
      pool->Put(q, size);
    } else {
      cudaFree(q);  // the pool is gone (backend destroyed first): release directly
    }
  });
}

void DevicePool::Put(void* ptr, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  in_use_ -= static_cast<int64_t>(size);
  free_.emplace(size, ptr);
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
  return MemoryStats{in_use_, peak_, reserved_};
}

void DevicePool::ResetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  peak_ = in_use_;
}

}  // namespace turbovid::engine::cuda
