// The assignment → engine request mapping (defaults per variant, attention, resolved size).
#include "worker/task_runner.h"

#include "gtest/gtest.h"

namespace turbovid::worker {
namespace {

v1::AssignTask Task() {
  v1::AssignTask t;
  t.set_task_id("j1");
  t.set_width_pixels(64);
  t.set_height_pixels(48);
  t.set_seed(7);
  t.mutable_request()->set_prompt("a cat");
  t.mutable_request()->set_image("PNG");
  return t;
}

TEST(ToGenerateRequestTest, TurboDefaults) {
  engine::GenerateRequest g = ToGenerateRequest(Task(), "turbo");
  EXPECT_EQ(g.prompt, "a cat");
  EXPECT_EQ(g.image_bytes, "PNG");
  EXPECT_EQ(g.width, 64);
  EXPECT_EQ(g.height, 48);
  EXPECT_EQ(g.seed, 7u);
  EXPECT_EQ(g.frames, 81);
  EXPECT_EQ(g.steps, 4);
  EXPECT_TRUE(g.sla);
  EXPECT_EQ(g.sampler, engine::SamplerKind::kRcm);
}

TEST(ToGenerateRequestTest, ExplicitValuesAndOriginal) {
  v1::AssignTask t = Task();
  t.mutable_request()->set_num_frames(5);
  t.mutable_request()->set_num_steps(2);
  t.mutable_request()->set_attention(v1::ATTENTION_MODE_DENSE);
  engine::GenerateRequest g = ToGenerateRequest(t, "turbo-int8");
  EXPECT_EQ(g.frames, 5);
  EXPECT_EQ(g.steps, 2);
  EXPECT_FALSE(g.sla);
  t.mutable_request()->set_num_steps(0);
  t.mutable_request()->set_attention(v1::ATTENTION_MODE_UNSPECIFIED);
  g = ToGenerateRequest(t, "original");
  EXPECT_EQ(g.sampler, engine::SamplerKind::kUniPc);
  EXPECT_EQ(g.steps, 50);
  EXPECT_FALSE(g.sla);
}

}  // namespace
}  // namespace turbovid::worker
