// The planner's choice order and stage arithmetic on hand-made byte counts (the real Wan
// configs are planned in engine/pipeline/memory_needs_test.cc).
#include "engine/core/memory_plan.h"

#include <gtest/gtest.h>

namespace turbovid::engine {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

MemoryNeeds TwoExperts() {
  MemoryNeeds n;
  n.expert_bytes = {10 * kGiB, 10 * kGiB};
  n.text_encoder_bytes = 6 * kGiB;
  n.vae_bytes = kGiB / 4;
  n.text_activations = kGiB / 8;
  n.vae_encode_activations = kGiB;
  n.dit_activations = 3 * kGiB;
  n.vae_decode_activations = 2 * kGiB;
  return n;
}

TEST(MemoryPlan, StageArithmetic) {
  const MemoryNeeds n = TwoExperts();
  const MemoryPlan all = EvaluateMemoryPlan(n, ExpertResidency::kAllResident, TextResidency::kResident);
  EXPECT_EQ(all.dit_slot_bytes, 20 * kGiB);
  EXPECT_EQ(all.text_stage, 20 * kGiB + kGiB / 4 + 6 * kGiB + kGiB / 8);
  EXPECT_EQ(all.dit_stage, 20 * kGiB + kGiB / 4 + 6 * kGiB + 3 * kGiB);
  EXPECT_EQ(all.peak, all.dit_stage);
  const MemoryPlan small =
      EvaluateMemoryPlan(n, ExpertResidency::kStreamInactive, TextResidency::kOffloadAfterEncode);
  EXPECT_EQ(small.dit_slot_bytes, 10 * kGiB);
  EXPECT_EQ(small.dit_stage, 10 * kGiB + kGiB / 4 + 3 * kGiB);
  EXPECT_EQ(small.text_stage, 10 * kGiB + kGiB / 4 + 6 * kGiB + kGiB / 8);  // umT5 on while encoding
  EXPECT_EQ(small.peak, small.text_stage);
}

TEST(MemoryPlan, ChoosesTheFastestPlanThatFits) {
  const MemoryNeeds n = TwoExperts();
  auto p = PlanMemory(n, 0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->experts, ExpertResidency::kAllResident);
  EXPECT_EQ(p->text, TextResidency::kResident);
  p = PlanMemory(n, 27 * kGiB);  // 29.25 resident; offloaded: text stage 26.375, DiT 23.25
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->experts, ExpertResidency::kAllResident);
  EXPECT_EQ(p->text, TextResidency::kOffloadAfterEncode);
  p = PlanMemory(n, 20 * kGiB);  // streaming with umT5 resident: 19.25
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->experts, ExpertResidency::kStreamInactive);
  EXPECT_EQ(p->text, TextResidency::kResident);
  p = PlanMemory(n, 17 * kGiB);  // both: 16.375 (text stage)
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->experts, ExpertResidency::kStreamInactive);
  EXPECT_EQ(p->text, TextResidency::kOffloadAfterEncode);
  EXPECT_LE(p->peak, 17 * kGiB);
}

TEST(MemoryPlan, RefusalNamesNeedAndBudget) {
  const MemoryNeeds n = TwoExperts();
  auto p = PlanMemory(n, 16 * kGiB);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(p.status().message().find("needs 16.38 GiB"), std::string::npos) << p.status();
  EXPECT_NE(p.status().message().find("memory budget of 16.00 GiB"), std::string::npos) << p.status();
}

TEST(MemoryPlan, OneExpertNeverStreams) {
  MemoryNeeds n = TwoExperts();
  n.expert_bytes = {10 * kGiB};
  auto p = PlanMemory(n, 17 * kGiB);  // umT5 offloaded: text stage 16.375, DiT 13.25
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->experts, ExpertResidency::kAllResident);
  EXPECT_EQ(p->text, TextResidency::kOffloadAfterEncode);
  EXPECT_FALSE(PlanMemory(n, 16 * kGiB).ok());
}

}  // namespace
}  // namespace turbovid::engine
