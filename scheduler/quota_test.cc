#include "scheduler/quota.h"

#include <gtest/gtest.h>

namespace turbovid::scheduler {
namespace {

TEST(TenantQuotasTest, BucketAllowsTheBurstThenTheRate) {
  TenantQuotas quotas({.submits_per_second = 2, .submit_burst = 3, .max_active_jobs = 0});
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
  TenantQuotas quotas({.submits_per_second = 0, .submit_burst = 1, .max_active_jobs = 0});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(quotas.TakeSubmit("alice", 1.0).ok());
  EXPECT_TRUE(quotas.CheckActive("alice", 1000000).ok());
}

TEST(TenantQuotasTest, ActiveJobsCap) {
  TenantQuotas quotas({.submits_per_second = 0, .submit_burst = 1, .max_active_jobs = 2});
  EXPECT_TRUE(quotas.CheckActive("alice", 1).ok());
  const absl::Status refused = quotas.CheckActive("alice", 2);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("the most allowed is 2"), std::string::npos) << refused;
}

}  // namespace
}  // namespace turbovid::scheduler
