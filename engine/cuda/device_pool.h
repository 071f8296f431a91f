// Caching device allocator for the CUDA backend: the activation arena. Blocks are rounded up to a
// size class and, once their last tensor is gone, kept in a free list for the next allocation of
// that class instead of going back to cudaFree (which synchronises the device). All work runs on
// one stream, so a block reused by a later launch is ordered after every earlier use. After the
// first denoising step the cache holds the step's working set and later steps allocate nothing.
// Tracks bytes in use, the peak, and bytes reserved from the driver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include <cuda_runtime_api.h>

#include "engine/core/backend.h"

namespace turbovid::engine::cuda {

class DevicePool : public std::enable_shared_from_this<DevicePool> {
 public:
  // Size class of a request: 512-byte granules up to 1 MiB, then 2 MiB granules.
  static size_t RoundUp(size_t bytes);

  ~DevicePool();

  // A block of at least `bytes`; `owner` releases it back to this pool. Retries once after
  // returning every cached block to the driver when cudaMalloc fails.
  cudaError_t Get(size_t bytes, void** ptr, std::shared_ptr<void>* owner);
  // Returns every cached (free) block to the driver.
  void Trim();
  MemoryStats stats() const;
  void ResetPeak();

 private:
  // The shared_ptr deleter that hands block `p` of class `size` back to the pool.
  std::shared_ptr<void> Owner(void* p, size_t size);
  void Put(void* ptr, size_t size);

  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;  // size class → cached blocks
  int64_t in_use_ = 0;
  int64_t peak_ = 0;
  int64_t reserved_ = 0;
};

}  // namespace turbovid::engine::cuda
