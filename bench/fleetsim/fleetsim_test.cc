// turbovid-fleetsim on hand-computed cases (the scheduler's placement on a simulated clock),
// the workload generator and traces, and a small sweep. Service times: 1.3B turbo at 480p/81
// frames takes 2 s on an H100 at 3.60/h (0.002 per job) and 10 s on an RTX 5090 at 0.36/h
// (0.001 per job).
#include <cmath>
#include <filesystem>
#include <fstream>

#include "bench/fleetsim/simulator.h"
#include "bench/fleetsim/sweep.h"
#include "bench/fleetsim/workload.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turbovid::fleetsim {
namespace {

using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

scheduler::PriorEntry Prior(const std::string& node_class, double fixed, double step) {
  scheduler::PriorEntry e;
  e.node_class = node_class;
  e.model_id = "wan2.1-t2v-1.3b";
  e.variant = "turbo";
  e.width_pixels = 832;
  e.height_pixels = 480;
  e.num_frames = 81;
  e.fixed_seconds = fixed;
  e.step_seconds = step;
  e.basis = "estimate";
  return e;
}

class FleetSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto catalog = scheduler::ModelCatalog::LoadFile(TV_MODELS_YAML);
    ASSERT_THAT(catalog, IsOk());
    catalog_ = std::move(*catalog);
    scheduler::ServiceTimeTable table;
    table.node_classes["h100"].price_per_hour = 3.6;
    table.node_classes["rtx5090"].price_per_hour = 0.36;
    table.priors = {Prior("h100", 1.2, 0.2), Prior("rtx5090", 2, 2)};
    model_ = std::make_unique<scheduler::ServiceTimeModel>(0.3, table);
  }
  // Arrivals of the 1.3B turbo job at `times` with `deadlines` (0 = none).
  Workload Jobs(const std::vector<double>& times, const std::vector<double>& deadlines) {
    WorkloadSpec spec;
    spec.mix = {JobKind{.model = "wan2.1-t2v-1.3b", .variant = "turbo", .resolution = "480p"}};
    spec.jobs = 1;
    Workload w = *GenerateWorkload(spec, catalog_, 1);
    w.arrivals.clear();
    for (size_t i = 0; i < times.size(); ++i) {
      w.arrivals.push_back(Arrival{times[i], 0, deadlines[i], 0});
    }
    return w;
  }
  SimReport Run(const Workload& w, std::map<std::string, int> workers, SimOptions options = {}) {
    FleetSpec fleet;
    fleet.workers = std::move(workers);
    absl::StatusOr<SimReport> r = Simulate(w, fleet, *model_, catalog_, options);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : SimReport{};
  }
  static const ClassReport& Class(const SimReport& r, const std::string& name) {
    for (const ClassReport& c : r.classes) {
      if (c.node_class == name) return c;
    }
    static const ClassReport none;
    return none;
  }

  scheduler::ModelCatalog catalog_;
  std::unique_ptr<scheduler::ServiceTimeModel> model_;
};

TEST_F(FleetSimTest, OneWorkerServesInArrivalOrder) {
  // Jobs at 0, 1, 2 on one H100: done at 2, 4, 6; latencies 2, 3, 4.
  const SimReport r = Run(Jobs({0, 1, 2}, {0, 0, 0}), {{"h100", 1}});
  EXPECT_EQ(r.completed, 3);
  EXPECT_DOUBLE_EQ(r.latency_mean, 3);
  EXPECT_DOUBLE_EQ(r.latency_p50, 3);
  EXPECT_DOUBLE_EQ(r.latency_max, 4);
  EXPECT_DOUBLE_EQ(r.span_seconds, 6);
  EXPECT_NEAR(r.fleet_cost_per_video, 3.6 * 6 / 3600 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(Class(r, "h100").utilization, 1.0);
  EXPECT_EQ(r.deadline_jobs, 0);
}

TEST_F(FleetSimTest, CheapestInTimeThenTheFastAndHeldForTheCheapOne) {
  // t=0, due 15: the 5090 (done 10, 0.001) beats the H100 (0.002).
  // t=0.5, due 15.5: the 5090 is busy until 10 -> 20: too late; the H100, done 2.5.
  // t=1, due 101: waits for the 5090 (10 -> 20, 0.001) although the H100 is idle from 2.5.
  const SimReport r = Run(Jobs({0, 0.5, 1}, {15, 15, 100}), {{"h100", 1}, {"rtx5090", 1}});
  EXPECT_EQ(r.completed, 3);
  EXPECT_EQ(Class(r, "rtx5090").jobs, 2);
  EXPECT_EQ(Class(r, "h100").jobs, 1);
  EXPECT_DOUBLE_EQ(Class(r, "h100").latency_p50, 2);
  EXPECT_DOUBLE_EQ(r.latency_max, 19);
  EXPECT_DOUBLE_EQ(r.span_seconds, 20);
  EXPECT_EQ(r.deadline_jobs, 3);
  EXPECT_EQ(r.deadline_misses, 0);
  EXPECT_NEAR(Class(r, "rtx5090").busy_cost_per_video, 0.001, 1e-12);
  // No 5090: everything on the H100, the third job waits for it (no deadline miss: due at 101).
  const SimReport h100 = Run(Jobs({0, 0.5, 1}, {15, 15, 100}), {{"h100", 1}});
  EXPECT_DOUBLE_EQ(h100.latency_max, 5);
}

TEST_F(FleetSimTest, JobsNoClassCanRunAreUnservable) {
  WorkloadSpec spec;
  // bf16 14B: no 5090 entry in the catalog
  spec.mix = {JobKind{.model = "wan2.1-t2v-14b", .variant = "turbo", .resolution = "720p"}};
  spec.jobs = 5;
  const Workload w = *GenerateWorkload(spec, catalog_, 5);
  const SimReport r = Run(w, {{"rtx5090", 2}});
  EXPECT_EQ(r.unservable, 5);
  EXPECT_EQ(r.completed, 0);
  FleetSpec fleet;
  fleet.workers["a100"] = 1;
  EXPECT_THAT(Simulate(w, fleet, *model_, catalog_, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(FleetSimTest, AutoscaleSignalOfABacklog) {
  // Ten jobs at t=0 due in 5 s on one H100: one runs (2 s left), nine wait. The sample at t=0:
  // (2 + 9 x 2) / 5 = 4 workers to drain in time, + 20 s of work per 300 s window / 0.8 -> 5.
  SimOptions options;
  options.autoscale_sample_seconds = 1000;
  const SimReport r =
      Run(Jobs(std::vector<double>(10, 0), std::vector<double>(10, 5)), {{"h100", 1}}, options);
  EXPECT_DOUBLE_EQ(Class(r, "h100").desired_max, 5);
  EXPECT_EQ(r.deadline_misses, 8);  // done at 2, 4, ..., 20: only the first two by t=5
}

TEST_F(FleetSimTest, JitterIsSeededAndKeepsTheMean) {
  SimOptions options;
  options.jitter_cv = 0.2;
  options.seed = 7;
  std::vector<double> times;
  for (int i = 0; i < 4000; ++i) times.push_back(i * 1.0);
  const Workload w = Jobs(times, std::vector<double>(times.size(), 0));
  const SimReport a = Run(w, {{"h100", 4}}, options);
  const SimReport b = Run(w, {{"h100", 4}}, options);
  EXPECT_DOUBLE_EQ(a.latency_p95, b.latency_p95);
  EXPECT_NEAR(Class(a, "h100").busy_seconds / 4000, 2.0, 0.05);
  EXPECT_GT(a.latency_p99, a.latency_p50);
}

TEST_F(FleetSimTest, GeneratorRatesAndBursts) {
  WorkloadSpec poisson;
  poisson.rate_per_second = 2;
  poisson.mix = {JobKind{.model = "wan2.1-t2v-1.3b"}};
  const Workload p = *GenerateWorkload(poisson, catalog_, 20000);
  ASSERT_EQ(p.arrivals.size(), 20000u);
  EXPECT_NEAR(p.arrivals.back().time, 10000, 300);
  EXPECT_EQ(p.shapes[0].shape.width_pixels, 832);  // the model's default 480p 16:9
  EXPECT_EQ(p.shapes[0].shape.num_steps, 4);       // the variant's default
  WorkloadSpec bursty = poisson;
  bursty.process = "bursty";
  bursty.rate_per_second = 0.3;
  bursty.burst_rate_per_second = 2;
  bursty.burst_seconds = 60;
  bursty.period_seconds = 600;
  const Workload b = *GenerateWorkload(bursty, catalog_, 20000);
  int in_burst = 0;
  for (const Arrival& a : b.arrivals) in_burst += std::fmod(a.time, 600) < 60;
  // Expected share: 2 x 60 / (2 x 60 + 0.3 x 540) = 0.4255.
  EXPECT_NEAR(in_burst / 20000.0, 0.4255, 0.02);
}

TEST_F(FleetSimTest, TracesRoundTripAndBadRowsNameTheLine) {
  WorkloadSpec spec;
  spec.mix = {JobKind{.weight = 2,
                      .model = "wan2.1-t2v-1.3b",
                      .variant = "turbo",
                      .resolution = "480p",
                      .deadline_seconds = 30},
              JobKind{.model = "wan2.1-t2v-14b",
                      .variant = "turbo-int8",
                      .resolution = "1280x720",
                      .frames = 121,
                      .steps = 2,
                      .priority = 5}};
  const Workload w = *GenerateWorkload(spec, catalog_, 500);
  const std::string path = ::testing::TempDir() + "/fleetsim_trace.csv";
  ASSERT_THAT(WriteTrace(w, path), IsOk());
  absl::StatusOr<Workload> back = ReadTrace(path, catalog_);
  ASSERT_THAT(back, IsOk());
  ASSERT_EQ(back->arrivals.size(), w.arrivals.size());
  for (size_t i = 0; i < w.arrivals.size(); ++i) {
    EXPECT_NEAR(back->arrivals[i].time, w.arrivals[i].time, 1e-3);
    EXPECT_EQ(back->shapes[back->arrivals[i].shape].shape.num_frames,
              w.shapes[w.arrivals[i].shape].shape.num_frames);
    EXPECT_EQ(back->arrivals[i].deadline_seconds, w.arrivals[i].deadline_seconds);
    EXPECT_EQ(back->arrivals[i].priority, w.arrivals[i].priority);
  }
  std::ofstream(path) << "time,model,variant,resolution,frames,deadline\n"
                         "1,wan2.1-t2v-1.3b,turbo,480p,81,30\n"
                         "2,wan9,turbo,480p,81,30\n";
  absl::StatusOr<Workload> bad = ReadTrace(path, catalog_);
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr(":3:"));
  std::ofstream(path) << "time,model,resolution,frames,deadline\n";  // no variant column
  EXPECT_THAT(ReadTrace(path, catalog_), StatusIs(absl::StatusCode::kInvalidArgument));
  std::ofstream(path) << "time,model,variant,resolution,frames,deadline\n"
                         "1,wan2.1-t2v-1.3b,turbo,480p,80,30\n";  // not 4k+1
  EXPECT_THAT(ReadTrace(path, catalog_), StatusIs(absl::StatusCode::kInvalidArgument));
  std::filesystem::remove(path);
}

TEST_F(FleetSimTest, CommittedWorkloadsLoad) {
  for (const char* name : {"interactive-1.3b.yaml", "mixed-bursty.yaml", "batch-trace.csv"}) {
    absl::StatusOr<Workload> w =
        LoadWorkload(std::string(TV_WORKLOADS_DIR) + "/" + name, catalog_, 100);
    ASSERT_THAT(w, IsOk()) << name;
    EXPECT_EQ(w->arrivals.size(), 100u) << name;
  }
}

TEST_F(FleetSimTest, SweepFindsTheCheapestMixThatMeetsTheSlo) {
  // 1 job per second, due in 30 s: 2 Erlangs on H100s, 10 on 5090s.
  WorkloadSpec spec;
  spec.rate_per_second = 1;
  spec.mix = {JobKind{.model = "wan2.1-t2v-1.3b", .resolution = "480p", .deadline_seconds = 30}};
  const Workload w = *GenerateWorkload(spec, catalog_, 1500);
  SweepOptions o;
  o.max_a = 14;  // rtx5090
  o.max_b = 5;   // h100
  o.slo_seconds = 15;
  o.grid = 4;
  absl::StatusOr<SweepResult> r = Sweep(w, *model_, catalog_, o);
  ASSERT_THAT(r, IsOk());
  ASSERT_GE(r->best, 0);
  const SweepPoint& best = r->points[r->best];
  EXPECT_TRUE(best.meets);
  for (const SweepPoint& p : r->points) {
    if (p.meets) {
      EXPECT_GE(p.cost_per_video, best.cost_per_video);
    }
    // With one fewer H100 the same number of 5090s misses the SLO (the search's answer).
    if (p.a == best.a && p.b == best.b - 1) {
      EXPECT_FALSE(p.meets);
    }
  }
  const std::string svg = FrontierSvg(*r, o, "test <sweep>");
  EXPECT_THAT(svg, ::testing::StartsWith("<svg "));
  EXPECT_THAT(svg, ::testing::HasSubstr("<polyline"));
  EXPECT_THAT(svg, ::testing::HasSubstr("test &lt;sweep&gt;"));
  EXPECT_THAT(svg, ::testing::EndsWith("</svg>\n"));
  o.slo_seconds = 0.5;  // faster than any job: nothing meets it
  r = Sweep(w, *model_, catalog_, o);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->best, -1);
}

}  // namespace
}  // namespace turbovid::fleetsim
