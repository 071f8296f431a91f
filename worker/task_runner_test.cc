// The resolved job → engine request mapping: a field-by-field copy that never looks at the
// variant's name, and rejects a job with a parameter left unresolved.
#include "worker/task_runner.h"

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turbovid::worker {
namespace {

using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

v1::ResolvedJob Job() {
  v1::ResolvedJob job;
  job.set_model_id("wan2.1-t2v-1.3b");
  job.set_variant("turbo");
  job.set_sampler(v1::SAMPLER_RCM);
  job.set_num_steps(3);
  job.set_num_frames(9);
  job.set_width_pixels(64);
  job.set_height_pixels(48);
  job.set_seed(7);
  job.set_attention(v1::ATTENTION_MODE_SLA);
  job.set_sla_topk(0.25f);
  job.set_prompt("a cat");
  job.set_negative_prompt("blur");
  return job;
}

TEST(ToGenerateRequestTest, CopiesEveryField) {
  absl::StatusOr<engine::GenerateRequest> g = ToGenerateRequest(Job(), "PNG");
  ASSERT_THAT(g, IsOk());
  EXPECT_EQ(g->prompt, "a cat");
  EXPECT_EQ(g->negative_prompt, "blur");
  EXPECT_EQ(g->image_bytes, "PNG");
  EXPECT_EQ(g->width, 64);
  EXPECT_EQ(g->height, 48);
  EXPECT_EQ(g->seed, 7u);
  EXPECT_EQ(g->frames, 9);
  EXPECT_EQ(g->steps, 3);
  EXPECT_EQ(g->sampler, engine::SamplerKind::kRcm);
  EXPECT_EQ(g->attention, engine::AttentionMode::kSla);
  EXPECT_EQ(g->sla_topk, 0.25f);
  EXPECT_FALSE(g->return_frames);  // the worker wants the MP4 only
}

// The sampler comes from the job, whatever the variant is called: an rCM variant not named
// "turbo…" runs rCM, a UniPC variant named "turbo…" runs UniPC.
TEST(ToGenerateRequestTest, SamplerIsTheJobsNotTheVariantNames) {
  v1::ResolvedJob job = Job();
  job.set_variant("distilled-fast");
  ASSERT_THAT(ToGenerateRequest(job, ""), IsOk());
  EXPECT_EQ(ToGenerateRequest(job, "")->sampler, engine::SamplerKind::kRcm);
  job.set_variant("turbo-guided");
  job.set_sampler(v1::SAMPLER_UNIPC);
  job.set_attention(v1::ATTENTION_MODE_DENSE);
  ASSERT_THAT(ToGenerateRequest(job, ""), IsOk());
  EXPECT_EQ(ToGenerateRequest(job, "")->sampler, engine::SamplerKind::kUniPc);
  EXPECT_EQ(ToGenerateRequest(job, "")->attention, engine::AttentionMode::kDense);
}

// SAGESLA runs the backend's own upstream build of SageSLA (Hopper or RTX 4090/5090 numerics);
// previews pass through.
TEST(ToGenerateRequestTest, SageSlaIsTheBackendsBuildAndPreviewsPassThrough) {
  v1::ResolvedJob job = Job();
  job.set_attention(v1::ATTENTION_MODE_SAGESLA);
  job.set_preview_width(96);
  absl::StatusOr<engine::GenerateRequest> g = ToGenerateRequest(job, "");
  ASSERT_THAT(g, IsOk());
  EXPECT_EQ(g->attention, engine::AttentionMode::kSageSla);
  EXPECT_TRUE(g->sagesla_native);
  EXPECT_EQ(g->sla_topk, 0.25f);
  EXPECT_EQ(g->preview_width, 96);
  EXPECT_FALSE(g->fragmented_mp4);
  job.set_progressive(true);
  EXPECT_TRUE(ToGenerateRequest(job, "")->fragmented_mp4);
}

TEST(ToGenerateRequestTest, UnresolvedFieldsAreInvalid) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  v1::ResolvedJob job = Job();
  job.clear_sampler();
  EXPECT_THAT(ToGenerateRequest(job, ""), StatusIs(kInvalid));
  job = Job();
  job.clear_attention();
  EXPECT_THAT(ToGenerateRequest(job, ""), StatusIs(kInvalid));
  job = Job();
  job.set_attention(static_cast<v1::AttentionMode>(9));
  EXPECT_THAT(ToGenerateRequest(job, ""), StatusIs(kInvalid));
  job = Job();
  job.clear_num_steps();
  EXPECT_THAT(ToGenerateRequest(job, ""), StatusIs(kInvalid));
  job = Job();
  job.clear_num_frames();
  EXPECT_THAT(ToGenerateRequest(job, ""), StatusIs(kInvalid));
  job = Job();
  job.clear_width_pixels();
  EXPECT_THAT(ToGenerateRequest(job, ""), StatusIs(kInvalid));
}

}  // namespace
}  // namespace turbovid::worker
