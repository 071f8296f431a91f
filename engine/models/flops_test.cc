// FLOP counts against the reference totals of docs/model-math.md §12.
#include "engine/models/flops.h"

#include <gtest/gtest.h>

namespace turbovid::engine {
namespace {

DitConfig Wan14B() {
  DitConfig c;
  c.dim = 5120;
  c.ffn_dim = 13824;
  c.num_heads = 40;
  c.num_layers = 40;
  return c;
}

TEST(FlopsTest, Dit13BAt480pMatchesTheAnchor) {
  const DitFlops f = DitForwardFlops(DitConfig{}, 21, 60, 104, nullptr);
  EXPECT_NEAR(f.blocks_only / 1e12, 283.0, 0.05);
  // Embeddings and head add about 22 GFLOP.
  EXPECT_GT(f.total(), f.blocks_only);
  EXPECT_LT(f.total() - f.blocks_only, 3e10);
  EXPECT_DOUBLE_EQ(f.self_attention, f.self_attention_dense);
  EXPECT_EQ(f.sla_sparse, 0);
}

TEST(FlopsTest, OneWan14BBlockAt720pMatchesTheAnchor) {
  DitConfig c = Wan14B();
  c.num_layers = 1;
  EXPECT_NEAR(DitForwardFlops(c, 21, 90, 160, nullptr).blocks_only / 1e12, 163.1, 0.05);
}

TEST(FlopsTest, SlaCountsSelectedBlocksAndTheLinearBranch) {
  EXPECT_EQ(SlaSelectedBlocks(512, 0.1f), 51);
  EXPECT_EQ(SlaSelectedBlocks(512, 0.15f), 76);
  EXPECT_EQ(SlaSelectedBlocks(1182, 0.1f), 118);
  EXPECT_EQ(SlaSelectedBlocks(1182, 0.15f), 177);
  EXPECT_EQ(SlaSelectedBlocks(12, 1.0f), 12);
  const SlaShape sla;
  const DitFlops f = DitForwardFlops(DitConfig{}, 21, 60, 104, &sla);
  // 51 of 512 key blocks of 64 per query row: 3264 of 32760 keys.
  EXPECT_NEAR(f.sla_sparse / f.self_attention_dense, 3264.0 / 32760.0, 1e-9);
  EXPECT_GT(f.sla_linear, 0);
  EXPECT_GT(f.sla_select, 0);
  EXPECT_DOUBLE_EQ(f.self_attention, f.sla_sparse + f.sla_linear + f.sla_select);
  EXPECT_LT(f.self_attention, 0.2 * f.self_attention_dense);
}

TEST(FlopsTest, UmT5On512TokensMatchesTheAnchor) {
  EXPECT_NEAR(T5EncodeFlops(T5Config{}, 512) / 1e12, 4.84, 0.01);
}

TEST(FlopsTest, VaeDecodeMatchesFlopCounterMode) {
  EXPECT_NEAR(VaeDecodeFlops(VaeConfig{}, 21, 60, 104) / 1e12, 275.4, 0.05);
  EXPECT_NEAR(VaeDecodeFlops(VaeConfig{}, 21, 90, 160) / 1e12, 639.2, 0.05);
}

}  // namespace
}  // namespace turbovid::engine
