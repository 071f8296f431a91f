// The checkpoint inventories must name exactly the tensors of the upstream-made golden weights.
#include "engine/testing/tiny_checkpoint.h"

#include <gtest/gtest.h>

#include <map>

#include "engine/io/safetensors.h"

namespace turbovid::engine {
namespace {

std::string Golden(const std::string& rel) { return std::string(TV_SOURCE_DIR) + "/tests/data/golden/" + rel; }

void ExpectSameInventory(const TensorShapes& shapes, const std::string& file) {
  auto tensors = io::ReadSafetensors(file);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  std::map<std::string, Shape> ours(shapes.begin(), shapes.end());
  EXPECT_EQ(ours.size(), shapes.size()) << "duplicate names";
  EXPECT_EQ(ours.size(), tensors->size());
  for (const auto& [name, t] : *tensors) {
    auto it = ours.find(name);
    ASSERT_NE(it, ours.end()) << name << " missing from the inventory";
    EXPECT_EQ(it->second, t.shape()) << name;
  }
}

TEST(TinyCheckpointTest, VaeInventoryMatchesUpstream) {
  VaeConfig c;
  c.dim = 16;
  ExpectSameInventory(VaeTensorShapes(c, false, true), Golden("vae_decode/weights.safetensors"));
  ExpectSameInventory(VaeTensorShapes(c, true, false), Golden("vae_encode/weights.safetensors"));
}

TEST(TinyCheckpointTest, T5InventoryMatchesUpstream) {
  T5Config c;
  c.vocab = 512;
  c.dim = 64;
  c.dim_attn = 64;
  c.dim_ffn = 128;
  c.num_heads = 4;
  c.num_layers = 2;
  ExpectSameInventory(T5TensorShapes(c), Golden("t5/weights.safetensors"));
}

TEST(TinyCheckpointTest, DitInventoryMatchesUpstream) {
  DitConfig c;
  c.dim = 256;
  c.ffn_dim = 512;
  c.text_dim = 64;
  c.num_heads = 2;
  c.num_layers = 2;
  ExpectSameInventory(DitTensorShapes(c, false), Golden("dit_t2v/weights.safetensors"));
}

}  // namespace
}  // namespace turbovid::engine
