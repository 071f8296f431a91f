// Every shipped golden case must pass on the CPU backend at its fp32 tolerance.
#include "engine/testing/golden.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/cpu/cpu_backend.h"

namespace turbovid::engine::golden {
namespace {

class GoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, PassesOnCpu) {
  auto backend = MakeCpuBackend();
  auto report = RunCase(std::string(TV_GOLDEN_DIR) + "/" + GetParam(), *backend);
  ASSERT_TRUE(report.ok()) << report.status();
  for (const auto& line : report->lines()) std::printf("  %s\n", line.c_str());
  for (const auto& f : report->failures()) ADD_FAILURE() << f;
  EXPECT_TRUE(report->pass());
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenTest,
                         testing::Values("t5", "dit_t2v", "dit_i2v", "dit_sla_t2v", "sla",
                                         "sla_topk015", "sagesla", "sagesla_sm89", "qlinear",
                                         "vae_decode", "vae_encode", "rcm_t2v", "rcm_i2v_moe",
                                         "pipeline_t2v"));

}  // namespace
}  // namespace turbovid::engine::golden
