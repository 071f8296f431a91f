// Exposition text of a small registry, exactly; and promtool's verdict on it when installed.
#include "common/metrics.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace turbovid::common::metrics {
namespace {

void Fill(Registry& registry) {
  auto& jobs = registry.AddCounter("turbovid_jobs_total", "Jobs that reached a final state.",
                                   {"model", "state"});
  jobs.WithLabels({"tiny-t2v", "succeeded"}).Increment();
  jobs.WithLabels({"tiny-t2v", "succeeded"}).Increment(2);
  jobs.WithLabels({"a\"b\\c\nd", "failed"}).Increment();
  auto& depth = registry.AddGauge("turbovid_queue_depth", "Jobs waiting.\nPer model.", {"model"});
  depth.WithLabels({"tiny-t2v"}).Set(4);
  depth.WithLabels({"tiny-t2v"}).Decrement(1.5);
  registry.AddGauge("turbovid_up", "1 while serving.").Get().Set(1);
  auto& wait = registry.AddHistogram("turbovid_wait_seconds", "Queue wait.", {}, {0.1, 1, 10});
  wait.Get().Observe(0.05);
  wait.Get().Observe(0.1);
  wait.Get().Observe(5);
  wait.Get().Observe(100);
}

TEST(MetricsTest, RendersExactExposition) {
  Registry registry;
  Fill(registry);
  const std::string expected =
      "# HELP turbovid_jobs_total Jobs that reached a final state.\n"
      "# TYPE turbovid_jobs_total counter\n"
      "turbovid_jobs_total{model=\"a\\\"b\\\\c\\nd\",state=\"failed\"} 1\n"
      "turbovid_jobs_total{model=\"tiny-t2v\",state=\"succeeded\"} 3\n"
      "# HELP turbovid_queue_depth Jobs waiting.\\nPer model.\n"
      "# TYPE turbovid_queue_depth gauge\n"
      "turbovid_queue_depth{model=\"tiny-t2v\"} 2.5\n"
      "# HELP turbovid_up 1 while serving.\n"
      "# TYPE turbovid_up gauge\n"
      "turbovid_up 1\n"
      "# HELP turbovid_wait_seconds Queue wait.\n"
      "# TYPE turbovid_wait_seconds histogram\n"
      "turbovid_wait_seconds_bucket{le=\"0.1\"} 2\n"
      "turbovid_wait_seconds_bucket{le=\"1\"} 2\n"
      "turbovid_wait_seconds_bucket{le=\"10\"} 3\n"
      "turbovid_wait_seconds_bucket{le=\"+Inf\"} 4\n"
      "turbovid_wait_seconds_sum 105.15\n"
      "turbovid_wait_seconds_count 4\n";
  EXPECT_EQ(registry.Render(), expected);
}

TEST(MetricsTest, LabelledHistogramPutsLeLast) {
  Registry registry;
  auto& step = registry.AddHistogram("turbovid_step_seconds", "Step time.", {"model"}, {1, 2});
  step.WithLabels({"m"}).Observe(1.5);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("turbovid_step_seconds_bucket{model=\"m\",le=\"1\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("turbovid_step_seconds_bucket{model=\"m\",le=\"2\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("turbovid_step_seconds_bucket{model=\"m\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("turbovid_step_seconds_sum{model=\"m\"} 1.5\n"), std::string::npos);
}

TEST(MetricsTest, FormatsSpecialValues) {
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(EscapeLabelValue("x\"y"), "x\\\"y");
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry registry;
  auto& counter = registry.AddCounter("c_total", "c", {"k"});
  auto& hist = registry.AddHistogram("h_seconds", "h", {}, ExponentialBuckets(0.001, 2, 10));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.WithLabels({"x"}).Increment();
        hist.Get().Observe(0.01);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.WithLabels({"x"}).Value(), 40000);
  EXPECT_EQ(hist.Get().Read().count, 40000u);
}

TEST(MetricsTest, CollectHookRunsBeforeRender) {
  Registry registry;
  auto& gauge = registry.AddGauge("g", "g");
  int calls = 0;
  registry.AddCollectHook([&] { gauge.Get().Set(++calls); });
  EXPECT_NE(registry.Render().find("g 1\n"), std::string::npos);
  EXPECT_NE(registry.Render().find("g 2\n"), std::string::npos);
}

#ifdef TV_PROMTOOL
TEST(MetricsTest, PromtoolAcceptsExposition) {
  Registry registry;
  Fill(registry);
  const std::string path = ::testing::TempDir() + "/tv_metrics_test.prom";
  {
    std::ofstream out(path);
    out << registry.Render();
  }
  const std::string command = std::string(TV_PROMTOOL) + " check metrics < " + path;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::remove(path.c_str());
}
#endif

TEST(MetricsTest, ResolutionLabelTiers) {
  EXPECT_EQ(ResolutionLabel(64, 64), "480p");
  EXPECT_EQ(ResolutionLabel(832, 480), "480p");
  EXPECT_EQ(ResolutionLabel(640, 640), "480p");
  EXPECT_EQ(ResolutionLabel(1280, 720), "720p");
  EXPECT_EQ(ResolutionLabel(960, 960), "720p");
  EXPECT_EQ(ResolutionLabel(1920, 1080), "larger");
}

}  // namespace
}  // namespace turbovid::common::metrics
