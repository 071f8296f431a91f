#include "scheduler/quota.h"

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"

namespace turbovid::scheduler {
namespace {

QuotaConfig Limits(double per_second, double burst, int max_active, double gpu_per_day = 0) {
  QuotaConfig config;
  config.submits_per_second = per_second;
  config.submit_burst = burst;
  config.max_active_jobs = max_active;
  config.gpu_seconds_per_day = gpu_per_day;
  return config;
}

TEST(TenantQuotasTest, BucketAllowsTheBurstThenTheRate) {
  TenantQuotas quotas(Limits(2, 3, 0));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(quotas.TakeSubmit("alice", 10.0).ok()) << i;
  const absl::Status refused = quotas.TakeSubmit("alice", 10.0);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("tenant 'alice'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("retry after 0.50 s"), std::string::npos) << refused;
  // Tenants have their own buckets.
  EXPECT_TRUE(quotas.TakeSubmit("bob", 10.0).ok());
  // Half a second later one token has come back, and only one.
  EXPECT_TRUE(quotas.TakeSubmit("alice", 10.5).ok());
  EXPECT_FALSE(quotas.TakeSubmit("alice", 10.5).ok());
  // A long pause refills to the burst, no more.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(quotas.TakeSubmit("alice", 100.0).ok()) << i;
  EXPECT_FALSE(quotas.TakeSubmit("alice", 100.0).ok());
}

TEST(TenantQuotasTest, ZeroMeansUnlimited) {
  TenantQuotas quotas(Limits(0, 1, 0));
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(quotas.TakeSubmit("alice", 1.0).ok());
  EXPECT_TRUE(quotas.CheckActive("alice", 1000000).ok());
}

TEST(TenantQuotasTest, ActiveJobsCap) {
  TenantQuotas quotas(Limits(0, 1, 2));
  EXPECT_TRUE(quotas.CheckActive("alice", 1).ok());
  const absl::Status refused = quotas.CheckActive("alice", 2);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("the most allowed is 2"), std::string::npos) << refused;
}

TEST(TenantQuotasTest, TenantOverridesReplaceTheDefaults) {
  QuotaConfig config = Limits(0, 20, 5);
  QuotaLimits alice = config;  // a tenant entry: the defaults with its own keys set
  alice.max_active_jobs = 1;
  alice.submits_per_second = 1;
  alice.submit_burst = 1;
  config.tenants["alice"] = alice;
  TenantQuotas quotas(config);
  EXPECT_FALSE(quotas.CheckActive("alice", 1).ok());
  EXPECT_TRUE(quotas.CheckActive("bob", 4).ok());
  EXPECT_FALSE(quotas.CheckActive("bob", 5).ok());
  EXPECT_TRUE(quotas.TakeSubmit("alice", 1.0).ok());
  EXPECT_FALSE(quotas.TakeSubmit("alice", 1.0).ok());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(quotas.TakeSubmit("bob", 1.0).ok());
}

// A fake clock: unix seconds passed in by the test.
TEST(TenantQuotasTest, GpuSecondsPerDayRollsOverTwentyFourHours) {
  QuotaConfig config = Limits(0, 20, 0, /*gpu_per_day=*/100);
  TenantQuotas quotas(config);
  const double t0 = 1'000'000;
  EXPECT_TRUE(quotas.CheckGpuBudget("alice", t0).ok());
  quotas.AddGpuSeconds("alice", t0, 60);
  quotas.AddGpuSeconds("alice", t0 + 3600, 30);
  EXPECT_DOUBLE_EQ(quotas.GpuSecondsUsed("alice", t0 + 3600), 90);
  EXPECT_TRUE(quotas.CheckGpuBudget("alice", t0 + 3600).ok());  // under 100
  quotas.AddGpuSeconds("alice", t0 + 7200, 20);                  // 110: over
  absl::Status refused = quotas.CheckGpuBudget("alice", t0 + 7200);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("tenant 'alice'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("gpu_seconds_per_day is 100"), std::string::npos) << refused;
  // The first 60 s leave the window at t0 + 24 h, leaving 50 < 100.
  const double wait = 86400 - 7200;
  EXPECT_NE(refused.message().find(absl::StrFormat("retry after %.2f s", wait)),
            std::string::npos)
      << refused;
  // Other tenants have their own ledger.
  EXPECT_TRUE(quotas.CheckGpuBudget("bob", t0 + 7200).ok());
  // Just before the first entry leaves: still refused; at that moment: admitted.
  EXPECT_FALSE(quotas.CheckGpuBudget("alice", t0 + 86400 - 1).ok());
  EXPECT_TRUE(quotas.CheckGpuBudget("alice", t0 + 86400).ok());
  EXPECT_DOUBLE_EQ(quotas.GpuSecondsUsed("alice", t0 + 86400), 50);
  EXPECT_DOUBLE_EQ(quotas.GpuSecondsUsed("alice", t0 + 86400 + 7200), 0);
}

TEST(TenantQuotasTest, GpuBudgetWaitsForEnoughEntriesToLeave) {
  TenantQuotas quotas(Limits(0, 20, 0, /*gpu_per_day=*/10));
  const double t0 = 5'000'000;
  // Recorded out of order (a restart loads them sorted; live finishes may interleave).
  quotas.AddGpuSeconds("alice", t0 + 20, 4);
  quotas.AddGpuSeconds("alice", t0, 4);
  quotas.AddGpuSeconds("alice", t0 + 10, 4);
  quotas.AddGpuSeconds("alice", t0 + 30, 0);  // nothing used: not recorded
  // 12 >= 10: the entry at t0 must leave (8 < 10).
  absl::Status refused = quotas.CheckGpuBudget("alice", t0 + 100);
  EXPECT_NE(refused.message().find("retry after 86300.00 s"), std::string::npos) << refused;
  EXPECT_EQ(quotas.GpuSecondsByTenant(t0 + 100).at("alice"), 12);
}

TEST(TenantQuotasTest, TenantWithoutGpuBudgetIsNeverRefused) {
  QuotaConfig config = Limits(0, 20, 0, /*gpu_per_day=*/10);
  QuotaLimits unlimited = config;
  unlimited.gpu_seconds_per_day = 0;
  config.tenants["batch"] = unlimited;
  TenantQuotas quotas(config);
  quotas.AddGpuSeconds("batch", 100, 1e6);
  EXPECT_TRUE(quotas.CheckGpuBudget("batch", 101).ok());
  EXPECT_DOUBLE_EQ(quotas.GpuSecondsUsed("batch", 101), 1e6);
}

}  // namespace
}  // namespace turbovid::scheduler
