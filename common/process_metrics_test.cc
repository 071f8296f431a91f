// Process, build-info and disk families: values read from /proc and statvfs are plausible and
// move with the process (CPU time, descriptors), and the exposition carries every name once.
#include "common/build_info.h"
#include "common/process_metrics.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace turbovid::common::metrics {
namespace {

double Sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(ProcessMetricsTest, ReadsThisProcess) {
  ProcessSample a;
  ASSERT_TRUE(ReadProcessSample(&a));
  EXPECT_GT(a.resident_bytes, 1 << 20);
  EXPECT_GE(a.virtual_bytes, a.resident_bytes);
  EXPECT_GT(a.max_fds, 0);
  // Started within the last hour, not in the future.
  const double now = static_cast<double>(::time(nullptr));
  EXPECT_LE(a.start_time_seconds, now + 2);
  EXPECT_GT(a.start_time_seconds, now - 3600);
  // Burn some CPU and open a descriptor: both readings move.
  volatile double x = 0;
  for (int i = 0; i < 30'000'000; ++i) x = x + i * 0.5;
  const int fd = ::open("/proc/self/stat", O_RDONLY);
  ASSERT_GE(fd, 0);
  ProcessSample b;
  ASSERT_TRUE(ReadProcessSample(&b));
  EXPECT_GT(b.cpu_seconds, a.cpu_seconds);
  EXPECT_EQ(b.open_fds, a.open_fds + 1);
  ::close(fd);
}

TEST(ProcessMetricsTest, RenderedFamilies) {
  Registry registry;
  AddProcessMetrics(registry);
  AddBuildInfo(registry);
  AddDiskMetrics(registry, "test", {{"tmp", "/tmp"}, {"gone", "/nonexistent/dir"}});
  const std::string text = "\n" + registry.Render();
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Sample(text, "process_open_fds"), 0);
  EXPECT_GT(Sample(text, "process_start_time_seconds"), 1.6e9);
  const BuildInfo& info = GetBuildInfo();
  EXPECT_FALSE(info.version.empty());
  EXPECT_FALSE(info.git_commit.empty());
  EXPECT_NE(text.find("turbovid_build_info{version=\"" + info.version + "\",git_commit=\"" +
                      info.git_commit + "\",build_type=\"" + info.build_type + "\",cuda=\"" +
                      (info.cuda ? "on" : "off") + "\"} 1"),
            std::string::npos)
      << text;
  EXPECT_GT(Sample(text, "turbovid_test_free_bytes{dir=\"tmp\"}"), 0);
  EXPECT_GE(Sample(text, "turbovid_test_capacity_bytes{dir=\"tmp\"}"),
            Sample(text, "turbovid_test_free_bytes{dir=\"tmp\"}"));
  EXPECT_EQ(text.find("dir=\"gone\""), std::string::npos);
  // The CPU counter never goes back (it advances by differences between scrapes).
  const double first = Sample(text, "process_cpu_seconds_total");
  const double second = Sample("\n" + registry.Render(), "process_cpu_seconds_total");
  EXPECT_GE(second, first);
}

}  // namespace
}  // namespace turbovid::common::metrics
