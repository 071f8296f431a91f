// NvmlDevice against a missing library, a library without NVML, and the fake libnvidia-ml
// (nvml_fake.cc): the graceful paths and the unit conversions, no GPU needed.
#include "worker/nvml.h"

#include <dlfcn.h>

#include <cstdlib>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace turbovid::worker {
namespace {

using ::turbovid::common::testing::StatusIs;

// nvmlInit_v2 calls of the fake not yet matched by nvmlShutdown. Holding our own handle keeps the
// fake loaded, so its counter survives NvmlDevice's dlclose.
int FakeLiveInits() {
  static void* library = dlopen(TV_FAKE_NVML, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return -1;
  auto fn = reinterpret_cast<int (*)()>(dlsym(library, "FakeNvmlLiveInits"));
  return fn != nullptr ? fn() : -1;
}

TEST(NvmlTest, MissingLibraryIsNotFound) {
  EXPECT_THAT(NvmlDevice::Open("libturbovid-no-such-nvml.so.1", "", 0),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(NvmlTest, LibraryWithoutNvmlIsUnimplemented) {
  EXPECT_THAT(NvmlDevice::Open("libc.so.6", "", 0), StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(NvmlTest, FailedInitIsUnavailable) {
  ASSERT_EQ(FakeLiveInits(), 0);
  setenv("TV_FAKE_NVML_INIT_FAIL", "1", 1);
  EXPECT_THAT(NvmlDevice::Open(TV_FAKE_NVML, "", 0), StatusIs(absl::StatusCode::kUnavailable));
  unsetenv("TV_FAKE_NVML_INIT_FAIL");
  EXPECT_EQ(FakeLiveInits(), 0);
}

TEST(NvmlTest, OpensByPciBusIdAndConvertsUnits) {
  ASSERT_EQ(FakeLiveInits(), 0);
  {
    // The bus id decides; the index (what CUDA calls the device) is not consulted.
    absl::StatusOr<std::unique_ptr<NvmlDevice>> device =
        NvmlDevice::Open(TV_FAKE_NVML, "0000:65:00.0", 3);
    ASSERT_TRUE(device.ok()) << device.status();
    EXPECT_EQ(FakeLiveInits(), 1);
    EXPECT_EQ((*device)->name(), "Fake GPU 80GB");
    const GpuSample sample = (*device)->Sample();
    ASSERT_TRUE(sample.utilization_ratio.has_value());
    EXPECT_DOUBLE_EQ(*sample.utilization_ratio, 0.42);  // 42 %
    ASSERT_TRUE(sample.power_watts.has_value());
    EXPECT_DOUBLE_EQ(*sample.power_watts, 312.5);          // 312500 mW
    EXPECT_FALSE(sample.temperature_celsius.has_value());  // NOT_SUPPORTED
    EXPECT_EQ(sample.memory_used_bytes, int64_t{20} << 30);
    EXPECT_EQ(sample.memory_total_bytes, int64_t{80} << 30);
  }
  EXPECT_EQ(FakeLiveInits(), 0);  // nvmlShutdown ran
}

TEST(NvmlTest, UnknownPciBusIdIsNotFound) {
  EXPECT_THAT(NvmlDevice::Open(TV_FAKE_NVML, "0000:01:00.0", 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(FakeLiveInits(), 0);
}

TEST(NvmlTest, OpensByIndexWithoutBusId) {
  EXPECT_TRUE(NvmlDevice::Open(TV_FAKE_NVML, "", 0).ok());
  EXPECT_THAT(NvmlDevice::Open(TV_FAKE_NVML, "", 1), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(NvmlDevice::Open(TV_FAKE_NVML, "", -1), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace turbovid::worker
