// NormalizeKey: a table of TurboDiffusion, wrapper, diffusers and official names.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/io/weights.h"

namespace turbovid::engine::io {
namespace {

struct Case {
  const char* in;
  const char* want;
  KeyStyle style = KeyStyle::kAuto;
};

TEST(KeyNamesTest, Table) {
  const Case cases[] = {
      // Official and TurboDiffusion names pass through.
      {"blocks.3.self_attn.q.weight", "blocks.3.self_attn.q.weight"},
      {"blocks.0.self_attn.q.int8_weight", "blocks.0.self_attn.q.int8_weight"},
      {"blocks.0.ffn.0.scale", "blocks.0.ffn.0.scale"},
      {"blocks.1.self_attn.attn_op.local_attn.proj_l.weight",
       "blocks.1.self_attn.attn_op.local_attn.proj_l.weight"},
      {"blocks.0.norm3.weight", "blocks.0.norm3.weight"},
      {"blocks.0.norm2.weight", "blocks.0.norm2.weight"},  // umT5 name, per key: untouched
      {"token_embedding.weight", "token_embedding.weight"},
      {"decoder.upsamples.3.resample.1.weight", "decoder.upsamples.3.resample.1.weight"},
      {"patch_embedding.weight", "patch_embedding.weight"},
      // Training / wrapper prefixes.
      {"net.blocks.2.cross_attn.k.bias", "blocks.2.cross_attn.k.bias"},
      {"net.blocks.0._checkpoint_wrapped_module.ffn.0.weight", "blocks.0.ffn.0.weight"},
      {"blocks.4._checkpoint_wrapped_module.modulation", "blocks.4.modulation"},
      {"head._checkpoint_wrapped_module.head.weight", "head.head.weight"},
      {"model.blocks.1.norm3.bias", "blocks.1.norm3.bias"},
      {"net.model.head.modulation", "head.modulation"},
      {"model.something_else.weight", "model.something_else.weight"},
      {"model.modelling.weight", "model.modelling.weight"},
      // Diffusers → official (docs/model-math.md §2.2).
      {"condition_embedder.time_embedder.linear_1.weight", "time_embedding.0.weight"},
      {"condition_embedder.time_embedder.linear_2.bias", "time_embedding.2.bias"},
      {"condition_embedder.time_proj.weight", "time_projection.1.weight"},
      {"condition_embedder.text_embedder.linear_1.weight", "text_embedding.0.weight"},
      {"condition_embedder.text_embedder.linear_2.bias", "text_embedding.2.bias"},
      {"condition_embedder.image_embedder.norm1.weight", "img_emb.proj.0.weight"},
      {"condition_embedder.image_embedder.ff.net.0.proj.weight", "img_emb.proj.1.weight"},
      {"condition_embedder.image_embedder.ff.net.2.bias", "img_emb.proj.3.bias"},
      {"condition_embedder.image_embedder.norm2.bias", "img_emb.proj.4.bias"},
      {"condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"},
      {"scale_shift_table", "head.modulation"},
      {"proj_out.weight", "head.head.weight"},
      {"blocks.7.scale_shift_table", "blocks.7.modulation"},
      {"blocks.12.attn1.to_q.weight", "blocks.12.self_attn.q.weight"},
      {"blocks.0.attn1.to_k.bias", "blocks.0.self_attn.k.bias"},
      {"blocks.0.attn1.to_v.weight", "blocks.0.self_attn.v.weight"},
      {"blocks.0.attn1.to_out.0.weight", "blocks.0.self_attn.o.weight"},
      {"blocks.0.attn1.norm_q.weight", "blocks.0.self_attn.norm_q.weight"},
      {"blocks.0.attn1.norm_k.weight", "blocks.0.self_attn.norm_k.weight"},
      {"blocks.0.attn2.to_q.weight", "blocks.0.cross_attn.q.weight"},
      {"blocks.0.attn2.to_out.0.bias", "blocks.0.cross_attn.o.bias"},
      {"blocks.0.attn2.norm_k.weight", "blocks.0.cross_attn.norm_k.weight"},
      {"blocks.0.attn2.add_k_proj.weight", "blocks.0.cross_attn.k_img.weight"},
      {"blocks.0.attn2.add_v_proj.bias", "blocks.0.cross_attn.v_img.bias"},
      {"blocks.0.attn2.norm_added_k.weight", "blocks.0.cross_attn.norm_k_img.weight"},
      {"blocks.0.ffn.net.0.proj.weight", "blocks.0.ffn.0.weight"},
      {"blocks.0.ffn.net.2.bias", "blocks.0.ffn.2.bias"},
      {"model.blocks.0.attn1.to_q.weight", "blocks.0.self_attn.q.weight"},
      // norm2 ↔ norm3 only when the whole set is diffusers-style.
      {"blocks.5.norm2.weight", "blocks.5.norm3.weight", KeyStyle::kDiffusers},
      {"blocks.5.norm2.bias", "blocks.5.norm3.bias", KeyStyle::kDiffusers},
      {"blocks.5.norm3.weight", "blocks.5.norm2.weight", KeyStyle::kDiffusers},
      {"patch_embedding.bias", "patch_embedding.bias", KeyStyle::kDiffusers},
      {"blocks.0.attn1.to_q.weight", "blocks.0.self_attn.q.weight", KeyStyle::kDiffusers},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(NormalizeKey(c.in, c.style), c.want) << c.in;
  }
}

TEST(KeyNamesTest, DetectsDiffusersSets) {
  EXPECT_EQ(DetectKeyStyle({"blocks.0.norm2.weight", "blocks.0.attn1.to_q.weight"}),
            KeyStyle::kDiffusers);
  EXPECT_EQ(DetectKeyStyle({"blocks.0.norm2.weight", "blocks.0.attn.q.weight"}), KeyStyle::kAuto);
  EXPECT_EQ(DetectKeyStyle({"net.blocks.0.self_attn.q.weight", "head.head.weight"}),
            KeyStyle::kAuto);
  EXPECT_TRUE(IsDiffusersKey("proj_out.bias"));
  EXPECT_FALSE(IsDiffusersKey("blocks.x.attn1.to_q.weight"));
  EXPECT_FALSE(IsDiffusersKey("blocks.0.ffn.0.weight"));
}

}  // namespace
}  // namespace turbovid::engine::io
