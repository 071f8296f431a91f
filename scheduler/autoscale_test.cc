// The autoscaling signal on hand-computed cases: an RTX 5090 class at 0.36/h that needs 10 s for
// the job and an H100 class at 3.60/h that needs 2 s; now is t = 1000.
#include "scheduler/autoscale.h"

#include <cmath>

#include "gtest/gtest.h"

namespace turbovid::scheduler {
namespace {

class AutoscaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    variant_.name = "turbo";
    variant_.memory_bytes = {{"h100", 1}, {"rtx5090", 1}};
    request_ = PlacementRequest{"m", &variant_, 832, 480, 81};
    classes_ = {Class("rtx5090", 0.36), Class("h100", 3.6)};
  }
  static ClassCapacity Class(const std::string& name, double price) {
    ClassCapacity c;
    c.probe.worker_id = name;
    c.probe.node_class = name;
    c.probe.variants = {{"m", "turbo"}};
    c.probe.gpu_count = kMaxGroupGpus;  // as CatalogClassCapacity: a group as large as needed
    c.price_per_hour = price;
    return c;
  }
  static std::optional<double> Seconds(int, int cls) { return cls == 0 ? 10.0 : 2.0; }
  int Route(double deadline, double* seconds = nullptr) {
    return RouteJob(1000, PlacementJob{&request_, deadline}, 0, classes_, Seconds, options_,
                    seconds);
  }

  VariantSpec variant_;
  PlacementRequest request_;
  std::vector<ClassCapacity> classes_;
  AutoscaleOptions options_;
};

TEST_F(AutoscaleTest, RoutesToTheCheapestClassWithinTheSlackElseTheFastest) {
  double s = 0;
  EXPECT_EQ(Route(1015, &s), 0);  // 10 s <= 15 s of slack and cheaper
  EXPECT_DOUBLE_EQ(s, 10);
  EXPECT_EQ(Route(1005), 1);      // only the H100 makes 5 s
  EXPECT_EQ(Route(1001, &s), 1);  // nobody makes 1 s: the fastest
  EXPECT_DOUBLE_EQ(s, 2);
  EXPECT_EQ(Route(kNoDeadline), 0);  // the default SLO (300 s)
  options_.default_slo_seconds = 5;
  EXPECT_EQ(Route(kNoDeadline), 1);
  classes_[1].probe.variants.clear();
  EXPECT_EQ(Route(1005), 0);  // the H100 cannot run it: the 5090, late
  classes_[0].probe.variants.clear();
  EXPECT_EQ(Route(1005), -1);
}

TEST_F(AutoscaleTest, DrainTermIsTheFluidBoundOverSlacks) {
  // Three jobs due at 1030 (30 s of slack) go to the 5090 class: 10/30, 20/30, 30/30 -> 1 worker.
  std::vector<PlacementJob> queued(3, PlacementJob{&request_, 1030});
  std::vector<ClassLoad> loads(2);
  std::vector<ClassDemand> d = DesiredWorkers(1000, queued, classes_, loads, Seconds, options_);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].queued_jobs, 3);
  EXPECT_DOUBLE_EQ(d[0].queued_seconds, 30);
  EXPECT_DOUBLE_EQ(d[0].drain_workers, 1.0);
  EXPECT_EQ(d[0].desired_workers, 1);
  EXPECT_EQ(d[1].desired_workers, 0);
  // 15 s still running on the class come first: (15 + 30) / 30 = 1.5 -> 2.
  loads[0].running_remaining_seconds = 15;
  d = DesiredWorkers(1000, queued, classes_, loads, Seconds, options_);
  EXPECT_DOUBLE_EQ(d[0].drain_workers, 1.5);
  EXPECT_EQ(d[0].desired_workers, 2);
  // A job due at 1005 only the H100 makes: 2 / 5 = 0.4 -> 1 H100.
  queued.push_back(PlacementJob{&request_, 1005});
  d = DesiredWorkers(1000, queued, classes_, loads, Seconds, options_);
  EXPECT_EQ(d[1].queued_jobs, 1);
  EXPECT_DOUBLE_EQ(d[1].drain_workers, 0.4);
  EXPECT_EQ(d[1].desired_workers, 1);
}

TEST_F(AutoscaleTest, ArrivalTermAndBusyFloor) {
  std::vector<ClassLoad> loads(2);
  loads[1].offered_load = 1.6;  // 1.6 workers' worth of work arrives per second
  std::vector<ClassDemand> d = DesiredWorkers(1000, {}, classes_, loads, Seconds, options_);
  EXPECT_DOUBLE_EQ(d[1].arrival_workers, 2.0);  // at 80 % utilisation
  EXPECT_EQ(d[1].desired_workers, 2);
  EXPECT_EQ(d[0].desired_workers, 0);  // no queue, no arrivals, running work alone asks nothing
  loads[1].busy_workers = 3;           // never below the workers busy now
  d = DesiredWorkers(1000, {}, classes_, loads, Seconds, options_);
  EXPECT_EQ(d[1].desired_workers, 3);
}

TEST_F(AutoscaleTest, AGroupCostsAllItsGpus) {
  // The 5090 at 1.08/h (10 s: 0.003) against the H100 at 3.60/h per GPU (2 s: 0.002 on one GPU).
  classes_[0].price_per_hour = 1.08;
  EXPECT_EQ(Route(1015), 1);
  EXPECT_EQ(GroupGpus(request_, "h100"), 1);
  EXPECT_EQ(FreshLayout(request_, "h100"), "1gpu");
  // A variant that needs two H100s: 0.004 for the pair, so the 5090 is the cheaper in time.
  variant_.gpus = {{"h100", 2}};
  EXPECT_EQ(GroupGpus(request_, "h100"), 2);
  EXPECT_EQ(GroupGpus(request_, "rtx5090"), 1);
  EXPECT_EQ(FreshLayout(request_, "h100"), "tp2");
  EXPECT_EQ(Route(1015), 0);
  EXPECT_EQ(Route(1005), 1);  // only the pair is in time
}

TEST(DecayingRateTest, ExponentialWindow) {
  DecayingRate rate(10);
  EXPECT_DOUBLE_EQ(rate.Value(5), 0);
  rate.Add(0, 10);  // 10 s of work over a 10 s window: one worker's worth
  EXPECT_DOUBLE_EQ(rate.Value(0), 1);
  EXPECT_NEAR(rate.Value(10), std::exp(-1), 1e-12);
  rate.Add(10, 10);
  EXPECT_NEAR(rate.Value(10), std::exp(-1) + 1, 1e-12);
}

}  // namespace
}  // namespace turbovid::scheduler
