// Cost- and deadline-aware placement on hand-computed cases, with the clock as a plain number
// moved by the test. Two pools: an RTX 5090 at 0.36/h (0.0001 per second) that needs 10 s for the
// job, an H100 at 3.60/h (0.001 per second) that needs 2 s: the 5090 costs 0.001 per job, the
// H100 0.002. Now is t = 1000.
#include "scheduler/cost_placement.h"

#include <cmath>
#include <map>

#include "gtest/gtest.h"

namespace turbovid::scheduler {
namespace {

constexpr int64_t kGiB = 1ll << 30;

class CostPlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    variant_.name = "turbo";
    variant_.memory_bytes = {{"h100", 60 * kGiB}, {"rtx5090", 30 * kGiB}};
    request_ = PlacementRequest{"wan2.1-t2v-14b", &variant_, 1280, 720, 81};
    pools_ = {Pool("w-5090", "rtx5090", 32 * kGiB, 0.36), Pool("w-h100", "h100", 80 * kGiB, 3.6)};
    seconds_ = {{"rtx5090", 10.0}, {"h100", 2.0}};
  }
  PoolView Pool(const std::string& first_id, const std::string& node_class, int64_t memory,
                double price) {
    PoolView p;
    p.worker.worker_id = first_id;
    p.worker.node_class = node_class;
    p.worker.memory_bytes = memory;
    p.worker.free_slots = 1;
    p.worker.variants = {{"wan2.1-t2v-14b", "turbo"}};
    p.price_per_hour = price;
    return p;
  }
  // Marks pool `p` busy, one worker freeing at `until` (nothing free).
  void Busy(int p, double until) {
    busy_[p] = {until};
    pools_[p].worker.free_slots = 0;
    pools_[p].busy_until = &busy_[p];
  }
  ServiceSecondsFn Seconds() {
    return [this](int, int pool) -> std::optional<double> {
      auto it = seconds_.find(pools_[pool].worker.node_class);
      if (it == seconds_.end()) return std::nullopt;
      return it->second;
    };
  }
  PlacementChoice Choose(double now, double deadline) {
    std::vector<PoolCalendar> calendars;
    for (const PoolView& p : pools_) calendars.emplace_back(p.busy_until);
    return ChoosePool(now, PlacementJob{&request_, deadline}, 0, pools_, calendars, Seconds());
  }

  VariantSpec variant_;
  PlacementRequest request_;
  std::vector<PoolView> pools_;
  std::map<int, std::multiset<double>> busy_;
  std::map<std::string, double> seconds_;
};

TEST_F(CostPlacementTest, CheapestPoolThatMeetsTheDeadline) {
  // Both idle, deadline 1015: the 5090 ends at 1010 for 0.001, the H100 at 1002 for 0.002.
  PlacementChoice c = Choose(1000, 1015);
  EXPECT_EQ(c.pool, 0);
  EXPECT_FALSE(c.wait);
  EXPECT_EQ(c.reason, PlacementReason::kCheapestMeetingDeadline);
  EXPECT_DOUBLE_EQ(c.completion, 1010);
  EXPECT_DOUBLE_EQ(c.cost, 0.001);
  // Deadline 1005: only the H100 makes it.
  c = Choose(1000, 1005);
  EXPECT_EQ(c.pool, 1);
  EXPECT_EQ(c.reason, PlacementReason::kCheapestMeetingDeadline);
  EXPECT_DOUBLE_EQ(c.cost, 0.002);
  // Deadline 1001: nobody makes it; the earliest completion (H100, 1002) wins.
  c = Choose(1000, 1001);
  EXPECT_EQ(c.pool, 1);
  EXPECT_EQ(c.reason, PlacementReason::kEarliestCompletion);
  EXPECT_DOUBLE_EQ(c.completion, 1002);
}

TEST_F(CostPlacementTest, WaitsForACheaperBusyPoolOnlyWhileThatStillMeetsTheDeadline) {
  Busy(0, 1003);  // the 5090 frees at 1003: done at 1013 <= 1015, cheaper than the idle H100
  PlacementChoice c = Choose(1000, 1015);
  EXPECT_EQ(c.pool, 0);
  EXPECT_TRUE(c.wait);
  EXPECT_DOUBLE_EQ(c.start, 1003);
  EXPECT_DOUBLE_EQ(c.completion, 1013);
  // The clock moves and the 5090 is late (still busy at 1004): it would end at 1014, still in
  // time, so the job keeps waiting.
  c = Choose(1004, 1015);
  EXPECT_EQ(c.pool, 0);
  EXPECT_TRUE(c.wait);
  EXPECT_DOUBLE_EQ(c.completion, 1014);
  // At 1006 the 5090 would end at 1016: too late, the H100 takes the job now.
  c = Choose(1006, 1015);
  EXPECT_EQ(c.pool, 1);
  EXPECT_FALSE(c.wait);
  EXPECT_DOUBLE_EQ(c.completion, 1008);
  // Expected to free at 1006 instead: 1016 > 1015 from the start.
  Busy(0, 1006);
  EXPECT_EQ(Choose(1000, 1015).pool, 1);
}

TEST_F(CostPlacementTest, NoDeadlineTakesTheCheapestIdlePoolAndNeverWaits) {
  PlacementChoice c = Choose(1000, kNoDeadline);
  EXPECT_EQ(c.pool, 0);
  EXPECT_EQ(c.reason, PlacementReason::kCheapestIdle);
  Busy(0, 1001);
  c = Choose(1000, kNoDeadline);
  EXPECT_EQ(c.pool, 1);
  EXPECT_FALSE(c.wait);
  Busy(1, 1001);
  EXPECT_EQ(Choose(1000, kNoDeadline).pool, -1);  // nothing idle: stays queued
}

TEST_F(CostPlacementTest, WithoutPricesWarmFirstThenFasterThenWorkerId) {
  pools_[0].price_per_hour = pools_[1].price_per_hour = 0;
  EXPECT_EQ(Choose(1000, kNoDeadline).pool, 1);  // nothing warm: the faster H100
  pools_[0].worker.loaded = {{"wan2.1-t2v-14b", "turbo"}};
  EXPECT_EQ(Choose(1000, kNoDeadline).pool, 0);  // warm beats faster-but-cold
  seconds_.clear();                              // nothing known: warm, then the worker id
  EXPECT_EQ(Choose(1000, kNoDeadline).pool, 0);
  pools_[0].worker.loaded.clear();
  pools_[0].worker.worker_id = "z";
  EXPECT_EQ(Choose(1000, kNoDeadline).pool, 1);
}

TEST_F(CostPlacementTest, UnknownServiceTimeAtAPriceRanksLast) {
  seconds_.erase("rtx5090");  // the 5090's cost is unknown: the known H100 wins, deadline or not
  EXPECT_EQ(Choose(1000, kNoDeadline).pool, 1);
  EXPECT_EQ(Choose(1000, 1015).pool, 1);
  seconds_.erase("h100");  // nothing known and a deadline: rather an idle worker than a wait
  Busy(1, 1001);
  PlacementChoice c = Choose(1000, 1015);
  EXPECT_EQ(c.pool, 0);
  EXPECT_FALSE(c.wait);
  EXPECT_EQ(c.reason, PlacementReason::kEarliestCompletion);
}

TEST_F(CostPlacementTest, PoolsThatDoNotFitAreSkipped) {
  pools_[0].worker.memory_bytes = 16 * kGiB;  // a 5090 pool with too little memory
  EXPECT_EQ(Choose(1000, 1015).pool, 1);
  pools_[1].worker.variants.clear();  // the H100 does not list the variant
  EXPECT_EQ(Choose(1000, 1015).pool, -1);
}

TEST_F(CostPlacementTest, PassPlacesInOrderAndLaterJobsSeeEarlierOnes) {
  // One idle worker each; two jobs due at 1015. Job 0 takes the 5090 (ends 1010); job 1 would
  // start on it at 1010 and end at 1020: too late, so it takes the H100.
  std::vector<PlacementJob> jobs = {{&request_, 1015}, {&request_, 1015}};
  std::vector<PlannedAssignment> plan = PlanDispatch(1000, jobs, pools_, Seconds());
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].job, 0);
  EXPECT_EQ(plan[0].choice.pool, 0);
  EXPECT_EQ(plan[1].job, 1);
  EXPECT_EQ(plan[1].choice.pool, 1);
  EXPECT_EQ(pools_[0].worker.free_slots, 0);
  EXPECT_EQ(pools_[1].worker.free_slots, 0);
}

TEST_F(CostPlacementTest, HeldJobsQueueUpOnTheBusyPoolTheyWaitFor) {
  Busy(0, 1001);
  // Due at 1025: job 0 waits for the 5090 (1001 -> 1011), job 1 after it (1011 -> 1021): both
  // cheaper than the idle H100 and in time, so nothing starts and the H100 stays idle.
  std::vector<PlacementJob> jobs = {{&request_, 1025}, {&request_, 1025}};
  std::vector<PlannedAssignment> holds;
  EXPECT_TRUE(PlanDispatch(1000, jobs, pools_, Seconds(), &holds).empty());
  ASSERT_EQ(holds.size(), 2u);
  EXPECT_EQ(holds[1].job, 1);
  EXPECT_EQ(holds[1].choice.pool, 0);
  EXPECT_DOUBLE_EQ(holds[1].choice.completion, 1021);
  EXPECT_EQ(pools_[1].worker.free_slots, 1);
  // Job 1 due at 1020 instead: 1021 is too late behind job 0, so it takes the H100 now; a third
  // job without a deadline finds nothing idle any more.
  jobs = {{&request_, 1025}, {&request_, 1020}, {&request_, kNoDeadline}};
  std::vector<PlannedAssignment> plan = PlanDispatch(1000, jobs, pools_, Seconds());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].job, 1);
  EXPECT_EQ(plan[0].choice.pool, 1);
  EXPECT_DOUBLE_EQ(plan[0].choice.completion, 1002);
}

TEST_F(CostPlacementTest, AJobWithoutDeadlineTakesWhatAHeldJobLeavesIdle) {
  Busy(0, 1001);
  std::vector<PlacementJob> jobs = {{&request_, 1025}, {&request_, kNoDeadline}};
  std::vector<PlannedAssignment> plan = PlanDispatch(1000, jobs, pools_, Seconds());
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].job, 1);
  EXPECT_EQ(plan[0].choice.pool, 1);
  EXPECT_EQ(plan[0].choice.reason, PlacementReason::kCheapestIdle);
}

TEST_F(CostPlacementTest, AJobBehindTheWindowWaitsBehindTheHeldWork) {
  // The 5090 pool: 2 workers, both busy until 1001, 30 s of queued work held for it. A job
  // from beyond the scan window would start at 1001 + 30 / 2 = 1016 and end at 1026: past its
  // deadline of 1020, so it takes the idle H100; inside the window it would wait (1011).
  Busy(0, 1001);
  pools_[0].workers = 2;
  pools_[0].held_seconds = 30;
  PlacementJob job{&request_, 1020};
  std::vector<PoolCalendar> calendars;
  for (const PoolView& p : pools_) calendars.emplace_back(p.busy_until);
  PlacementChoice c = ChoosePool(1000, job, 0, pools_, calendars, Seconds());
  EXPECT_EQ(c.pool, 0);
  EXPECT_TRUE(c.wait);
  job.behind_held = true;
  c = ChoosePool(1000, job, 0, pools_, calendars, Seconds());
  EXPECT_EQ(c.pool, 1);
  EXPECT_FALSE(c.wait);
  job.deadline = 1030;  // 1026 is in time: it joins the held jobs
  c = ChoosePool(1000, job, 0, pools_, calendars, Seconds());
  EXPECT_EQ(c.pool, 0);
  EXPECT_DOUBLE_EQ(c.completion, 1026);
}

TEST_F(CostPlacementTest, CalendarTakesBusyAndNewlyOccupiedWorkersInTimeOrder) {
  std::multiset<double> busy = {1005, 1020};
  PoolCalendar calendar(&busy);
  EXPECT_DOUBLE_EQ(calendar.NextFree(1000), 1005);
  EXPECT_DOUBLE_EQ(calendar.NextFree(1010), 1010);  // overdue: as soon as now
  calendar.Reserve(1000, 3);                        // 1005 -> 1008
  EXPECT_DOUBLE_EQ(calendar.NextFree(1000), 1008);
  calendar.Reserve(1000, 20);  // 1008 -> 1028
  EXPECT_DOUBLE_EQ(calendar.NextFree(1000), 1020);
  calendar.Reserve(1000, std::nan(""));  // unknown: that worker's next free time is unknown
  EXPECT_DOUBLE_EQ(calendar.NextFree(1000), 1028);
  calendar.Reserve(1000, 1);
  EXPECT_DOUBLE_EQ(calendar.NextFree(1000), 1029);
  PoolCalendar empty(nullptr);
  EXPECT_TRUE(std::isinf(empty.NextFree(1000)));
  empty.Occupy(1004);
  EXPECT_DOUBLE_EQ(empty.NextFree(1000), 1004);
}

TEST_F(CostPlacementTest, PoolServiceSecondsAddsTheLoadOfAColdPool) {
  ServiceTimeTable table;
  PriorEntry prior;
  prior.node_class = "h100";
  prior.model_id = "wan2.1-t2v-14b";
  prior.variant = "turbo";
  prior.width_pixels = 1280;
  prior.height_pixels = 720;
  prior.num_frames = 81;
  prior.step_seconds = 4;
  prior.fixed_seconds = 3;
  prior.load_seconds = 30;
  prior.basis = "measured";
  table.priors.push_back(prior);
  ServiceTimeModel model(0.5, table);
  EXPECT_DOUBLE_EQ(*PoolServiceSeconds(model, request_, 4, pools_[1]), 3 + 4 * 4 + 30);
  pools_[1].worker.loaded = {{"wan2.1-t2v-14b", "turbo"}};
  EXPECT_DOUBLE_EQ(*PoolServiceSeconds(model, request_, 2, pools_[1]), 3 + 2 * 4);
  EXPECT_FALSE(PoolServiceSeconds(model, request_, 4, pools_[0]).has_value());
}

}  // namespace
}  // namespace turbovid::scheduler
