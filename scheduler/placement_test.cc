// Placement inputs: fit (variant listed, memory by node class) and availability (draining, free
// slot); the step EWMA and its per-token fallback; the priority queue order. Which fitting worker
// wins is cost_placement_test.cc.
#include "scheduler/placement.h"

#include "gtest/gtest.h"
#include "scheduler/job_queue.h"

namespace turbovid::scheduler {
namespace {

constexpr int64_t kGiB = 1ll << 30;

class PlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    variant_.name = "turbo";
    variant_.memory_bytes = {{"h100", 60 * kGiB}, {"rtx5090", 30 * kGiB}};
    request_ = PlacementRequest{"wan2.1-t2v-14b", &variant_, 1280, 720, 81};
  }
  WorkerView Worker(const std::string& id, const std::string& node_class, int64_t memory) {
    WorkerView w;
    w.worker_id = id;
    w.node_class = node_class;
    w.memory_bytes = memory;
    w.free_slots = 1;
    w.variants = {{"wan2.1-t2v-14b", "turbo"}};
    return w;
  }
  VariantSpec variant_;
  PlacementRequest request_;
};

TEST_F(PlacementTest, FitChecks) {
  EXPECT_TRUE(CanRun(request_, Worker("a", "h100", 80 * kGiB)));
  EXPECT_FALSE(CanRun(request_, Worker("a", "h100", 40 * kGiB)));  // too little memory
  WorkerView tp = Worker("a", "h100", 40 * kGiB);
  tp.gpu_count = 2;  // a tensor-parallel pair holds it
  EXPECT_TRUE(CanRun(request_, tp));
  EXPECT_FALSE(CanRun(request_, Worker("a", "cpu", 0)));  // class not in the catalog entry
  WorkerView other = Worker("a", "h100", 80 * kGiB);
  other.variants = {{"wan2.1-t2v-14b", "original"}};
  EXPECT_FALSE(CanRun(request_, other));
  WorkerView draining = Worker("a", "h100", 80 * kGiB);
  draining.draining = true;
  EXPECT_FALSE(CanRun(request_, draining));
  EXPECT_TRUE(Fits(request_, draining));  // fits, just not now
  WorkerView busy = Worker("a", "h100", 80 * kGiB);
  busy.free_slots = 0;
  EXPECT_FALSE(CanRun(request_, busy));
  EXPECT_TRUE(Fits(request_, busy));
  EXPECT_FALSE(Fits(request_, other));
}

// A variant that needs a group of GPUs on a node class goes to worker groups that large only.
TEST_F(PlacementTest, GpuCountOfTheNodeClass) {
  variant_.gpus = {{"h100", 4}};
  WorkerView one = Worker("a", "h100", 80 * kGiB);
  EXPECT_FALSE(CanRun(request_, one));
  EXPECT_FALSE(Fits(request_, one));
  WorkerView two = one;
  two.gpu_count = 2;
  EXPECT_FALSE(CanRun(request_, two));
  WorkerView group = one;
  group.gpu_count = 8;
  EXPECT_TRUE(CanRun(request_, group));
  variant_.memory_bytes["h200"] = 64 * kGiB;  // no gpus entry for h200: one GPU is enough
  EXPECT_TRUE(CanRun(request_, Worker("b", "h200", 141 * kGiB)));
}

TEST_F(PlacementTest, StepStatsEwmaAndTokenFallback) {
  StepStats stats(0.5);
  EXPECT_FALSE(stats.Estimate("h100", request_).has_value());
  stats.Record("h100", request_, 2.0);
  stats.Record("h100", request_, 4.0);
  EXPECT_DOUBLE_EQ(*stats.Estimate("h100", request_), 3.0);
  PlacementRequest small = request_;
  small.width_pixels = 640;  // half the tokens of 1280x720
  ASSERT_TRUE(stats.Estimate("h100", small).has_value());
  EXPECT_NEAR(*stats.Estimate("h100", small), 1.5, 1e-9);
  EXPECT_FALSE(stats.Estimate("rtx5090", small).has_value());
}

TEST(JobQueueTest, PriorityThenFifoWithPositions) {
  JobQueue queue;
  queue.Push({0, 1, "a"});
  queue.Push({0, 2, "b"});
  queue.Push({5, 3, "c"});
  queue.Push({-1, 4, "d"});
  const std::vector<QueueEntry> head = queue.Head(10);
  ASSERT_EQ(head.size(), 4u);
  EXPECT_EQ(head[0].job_id, "c");
  EXPECT_EQ(head[1].job_id, "a");
  EXPECT_EQ(head[2].job_id, "b");
  EXPECT_EQ(head[3].job_id, "d");
  EXPECT_EQ(queue.Position(0, 2), 3);
  EXPECT_TRUE(queue.Remove(5, 3));
  EXPECT_FALSE(queue.Remove(5, 3));
  EXPECT_EQ(queue.Position(0, 2), 2);
  EXPECT_EQ(queue.Position(9, 9), 0);
  EXPECT_EQ(queue.size(), 3u);
}

TEST(JobQueueTest, DispatchOrderMergesQueuesByPriorityThenSeqUpToTheScanLimit) {
  std::map<std::string, JobQueue> queues;
  queues["a"].Push({0, 5, "a5"});
  queues["a"].Push({0, 1, "a1"});
  queues["b"].Push({0, 3, "b3"});
  queues["b"].Push({9, 7, "b7"});
  std::vector<std::string> ids;
  for (const QueueEntry& e : DispatchOrder(queues)) ids.push_back(e.job_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"b7", "a1", "b3", "a5"}));
  ids.clear();
  for (const QueueEntry& e : DispatchOrder(queues, 1)) ids.push_back(e.job_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"b7", "a1"}));  // the head of each queue only
}

}  // namespace
}  // namespace turbovid::scheduler
