// Device memory of the CUDA backend, in two parts.
// - The activation arena: one cudaMalloc sized per job from its shape (Reserve, fed by
//   engine/pipeline/activation_plan.h), carved by a best-fit suballocator (engine/core/arena.h).
//   Activations (Allocate: op outputs and op scratch) come from it; a request that does not fit
//   takes the caching path below and is counted as overflow (stats(); the first miss of a job is
//   also logged), so a low estimate shows. The arena is kept across jobs; it holds nothing
//   between them as long as only activations are put in it.
// - The caching path: weights and uploads (always), and activations when no arena is reserved or
//   it is full. Blocks are rounded up to a size class and, once their last tensor is gone, kept in
//   a free list for the next request of that class instead of going back to cudaFree (which
//   synchronises the device).
// All work runs on one stream, so a block (or arena range) reused by a later launch is ordered
// after every earlier use. Tracks bytes in use, the peak, bytes reserved from the driver, and the
// activations' share of them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "engine/core/arena.h"
#include "engine/core/backend.h"

namespace turbovid::engine::cuda {

class DevicePool : public std::enable_shared_from_this<DevicePool> {
 public:
  // kResident: weights and uploads, never in the arena. kActivation: the arena when it has room.
  enum class Use { kResident, kActivation };

  // Size class of a request: 512-byte granules up to 1 MiB, then 2 MiB granules.
  static size_t RoundUp(size_t bytes);

  ~DevicePool();

  // A block of at least `bytes`; `owner` releases it back to this pool. Retries once after
  // returning every cached block to the driver when cudaMalloc fails.
  cudaError_t Get(size_t bytes, Use use, void** ptr, std::shared_ptr<void>* owner);
  // Makes the arena hold at least `bytes`. The same or a smaller size changes nothing. A larger
  // one frees the old arena and allocates the new one, but only while no arena block is live;
  // otherwise the old arena stays and *deferred is set. When the new arena cannot be allocated
  // (even after Trim) there is no arena afterwards and the cudaMalloc error is returned.
  cudaError_t Reserve(size_t bytes, bool* deferred);
  // Returns every cached (free) block to the driver; the arena stays.
  void Trim();
  MemoryStats stats() const;
  void ResetPeak();

 private:
  // The shared_ptr deleter that hands block `p` of class `size` back to the pool.
  std::shared_ptr<void> Owner(void* p, size_t size, bool activation);
  // The deleter of an arena block at `offset` (`size` bytes as rounded by the arena).
  std::shared_ptr<void> ArenaOwner(void* p, int64_t offset, int64_t size);
  // cudaMalloc; when it fails, returns every cached block to the driver and tries once more.
  cudaError_t MallocOrTrim(size_t size, void** p);
  void Put(void* ptr, size_t size, bool activation);
  void PutArena(int64_t offset, int64_t size);
  void AddInUse(int64_t bytes, bool activation);  // with mu_ held

  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;  // size class → cached blocks
  int64_t in_use_ = 0;
  int64_t peak_ = 0;
  int64_t reserved_ = 0;
  int64_t activation_in_use_ = 0;
  int64_t activation_peak_ = 0;
  void* arena_base_ = nullptr;  // cudaMalloc'd, arena_.capacity() bytes
  Arena arena_;
  int64_t overflow_count_ = 0;
  int64_t overflow_bytes_ = 0;
};

}  // namespace turbovid::engine::cuda
