// DevicePool on a GPU (skips without one): activations carved from the arena, weights and uploads
// kept out of it, overflow counted, regrowth deferred while a block is live, and the CUDA
// backend's Allocate / Upload routing through ReserveActivations.
#include "engine/cuda/device_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/cuda/cuda_backend.h"

namespace turbovid::engine::cuda {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
using Use = DevicePool::Use;

bool HaveGpu() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return false;
  }
  return true;
}

struct Block {
  void* ptr = nullptr;
  std::shared_ptr<void> owner;
};

Block Get(DevicePool& pool, size_t bytes, Use use) {
  Block b;
  EXPECT_EQ(pool.Get(bytes, use, &b.ptr, &b.owner), cudaSuccess);
  return b;
}

TEST(DevicePoolTest, ArenaCarvesActivationsAndCountsOverflow) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto pool = std::make_shared<DevicePool>();
  bool deferred = true;
  ASSERT_EQ(pool->Reserve(8 * kMiB, &deferred), cudaSuccess);
  EXPECT_FALSE(deferred);
  EXPECT_EQ(pool->stats().arena_bytes, 8 * kMiB);
  EXPECT_EQ(pool->stats().reserved, 8 * kMiB);
  {
    Block a = Get(*pool, 1000, Use::kActivation);  // offset 0: the arena's base
    Block b = Get(*pool, 3 * kMiB, Use::kActivation);
    Block w = Get(*pool, 1000, Use::kResident);
    const char* base = static_cast<const char*>(a.ptr);
    EXPECT_EQ(static_cast<const char*>(b.ptr) - base, 1024);  // 1000 rounded to 256
    const char* wp = static_cast<const char*>(w.ptr);
    EXPECT_TRUE(wp < base || wp >= base + 8 * kMiB) << "a resident block inside the arena";
    MemoryStats s = pool->stats();
    EXPECT_EQ(s.activation_in_use, 1024 + 3 * kMiB);
    EXPECT_EQ(s.in_use, 1024 + 3 * kMiB + 1024);  // + the resident block's size class
    EXPECT_EQ(s.overflow_count, 0);
    // The blocks are real device memory.
    ASSERT_EQ(cudaMemset(a.ptr, 1, 1000), cudaSuccess);
    ASSERT_EQ(cudaMemset(b.ptr, 2, 3 * kMiB), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    // 6 MiB does not fit beside 3 MiB in 8: the caching path serves it, counted.
    Block c = Get(*pool, 6 * kMiB, Use::kActivation);
    const char* cp = static_cast<const char*>(c.ptr);
    EXPECT_TRUE(cp < base || cp >= base + 8 * kMiB);
    s = pool->stats();
    EXPECT_EQ(s.overflow_count, 1);
    EXPECT_EQ(s.overflow_bytes, 6 * kMiB);
    EXPECT_EQ(s.activation_in_use, 1024 + 3 * kMiB + 6 * kMiB);
    EXPECT_GE(s.arena_peak, 1024 + 3 * kMiB);
    // A larger arena waits until nothing in the old one is live.
    ASSERT_EQ(pool->Reserve(16 * kMiB, &deferred), cudaSuccess);
    EXPECT_TRUE(deferred);
    EXPECT_EQ(pool->stats().arena_bytes, 8 * kMiB);
  }
  EXPECT_EQ(pool->stats().activation_in_use, 0);
  ASSERT_EQ(pool->Reserve(16 * kMiB, &deferred), cudaSuccess);
  EXPECT_FALSE(deferred);
  EXPECT_EQ(pool->stats().arena_bytes, 16 * kMiB);
  ASSERT_EQ(pool->Reserve(4 * kMiB, &deferred), cudaSuccess);  // smaller: kept as is
  EXPECT_EQ(pool->stats().arena_bytes, 16 * kMiB);
  Block big = Get(*pool, 12 * kMiB, Use::kActivation);
  EXPECT_EQ(pool->stats().overflow_count, 1);  // counted since the last ResetPeak
  pool->ResetPeak();
  EXPECT_EQ(pool->stats().overflow_count, 0);
  EXPECT_EQ(pool->stats().arena_peak, 12 * kMiB);
}

TEST(DevicePoolTest, BackendPutsAllocationsInTheArenaAndUploadsOutside) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  const char* env = std::getenv("TV_ACTIVATION_ARENA");
  if (env != nullptr && std::string(env) == "0") GTEST_SKIP() << "TV_ACTIVATION_ARENA=0";
  auto backend = MakeCudaBackend(0);
  ASSERT_TRUE(backend.ok()) << backend.status();
  Backend& be = **backend;
  ASSERT_TRUE(be.ReserveActivations(4 * kMiB).ok());
  EXPECT_FALSE(be.ReserveActivations(-1).ok());
  auto w = be.Upload(Tensor::Zeros(DType::kF32, {1024, 256}), DType::kBF16);
  ASSERT_TRUE(w.ok());
  MemoryStats s = be.memory_stats();
  EXPECT_EQ(s.activation_in_use, 0);
  EXPECT_EQ(s.arena_bytes, 4 * kMiB);
  auto y = be.Allocate(DType::kBF16, {1024, 256});
  ASSERT_TRUE(y.ok());
  s = be.memory_stats();
  EXPECT_EQ(s.activation_in_use, 512 * 1024);
  EXPECT_EQ(s.overflow_count, 0);
  auto host = be.Download(*y);  // zero-filled by Allocate
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->data<float>()[12345], 0.f);
}

}  // namespace
}  // namespace turbovid::engine::cuda
