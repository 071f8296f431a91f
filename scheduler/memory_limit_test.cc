// A worker's memory budget (RegisterWorker.memory_limit_bytes) caps the memory placement checks
// a variant against (docs/memory.md §3); an older worker (0) keeps its device memory.
#include "gtest/gtest.h"
#include "scheduler/placement.h"
#include "scheduler/scheduler_internal.h"

namespace turbovid::scheduler {
namespace {

constexpr int64_t kGiB = 1ll << 30;

TEST(MemoryLimitTest, UsableMemoryIsTheSmallerOfDeviceAndBudget) {
  v1::RegisterWorker info;
  info.set_memory_bytes(80 * kGiB);
  EXPECT_EQ(UsableMemoryBytes(info), 80 * kGiB);  // no budget (an older worker)
  info.set_memory_limit_bytes(32 * kGiB);
  EXPECT_EQ(UsableMemoryBytes(info), 32 * kGiB);
  info.set_memory_limit_bytes(100 * kGiB);
  EXPECT_EQ(UsableMemoryBytes(info), 80 * kGiB);
  info.set_memory_bytes(0);  // device memory not reported: the budget alone
  EXPECT_EQ(UsableMemoryBytes(info), 100 * kGiB);
}

TEST(MemoryLimitTest, AVariantAboveTheBudgetIsNotPlaced) {
  VariantSpec variant;
  variant.name = "turbo-int8";
  variant.memory_bytes = {{"h100", 44 * kGiB}};
  const PlacementRequest request{"wan2.2-i2v-a14b", &variant, 1280, 720, 81};
  v1::RegisterWorker info;
  info.set_memory_bytes(80 * kGiB);
  WorkerView w;
  w.worker_id = "w";
  w.node_class = "h100";
  w.free_slots = 1;
  w.variants = {{"wan2.2-i2v-a14b", "turbo-int8"}};
  w.memory_bytes = UsableMemoryBytes(info);
  EXPECT_TRUE(CanRun(request, w));
  info.set_memory_limit_bytes(32 * kGiB);  // the 5090 emulation on an H100
  w.memory_bytes = UsableMemoryBytes(info);
  EXPECT_FALSE(CanRun(request, w));
}

}  // namespace
}  // namespace turbovid::scheduler
