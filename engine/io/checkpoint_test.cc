// WeightSet::Load dispatch (file kinds, sharded indexes, directories), diffusers naming, and the
// named errors for missing, mismatched and corrupt checkpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/status_matchers.h"
#include "engine/io/pth.h"
#include "engine/io/safetensors.h"
#include "engine/io/weights.h"

namespace turbovid::engine::io {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;

// A fresh empty directory under the test temp dir.
std::string Dir(const std::string& name) {
  fs::path p = fs::path(testing::TempDir()) / ("ckpt_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}
void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}
std::string Message(const absl::Status& s) { return std::string(s.message()); }

TensorMap Tensors(std::initializer_list<const char*> names) {
  TensorMap m;
  float v = 1;
  for (const char* n : names) {
    Tensor t = Tensor::Zeros(DType::kF32, {2});
    t.data<float>()[0] = v++;
    m[n] = t;
  }
  return m;
}

TEST(CheckpointTest, LoadsEachFileKind) {
  const std::string d = Dir("kinds");
  const TensorMap m = Tensors({"net.blocks.0.self_attn.q.weight", "head.head.bias"});
  ASSERT_TRUE(WriteSafetensors(d + "/a.safetensors", m).ok());
  ASSERT_TRUE(WritePth(d + "/b.pth", m).ok());
  ASSERT_TRUE(WritePth(d + "/c.pt", m).ok());
  for (const char* f : {"/a.safetensors", "/b.pth", "/c.pt"}) {
    auto set = WeightSet::Load(d + f);
    ASSERT_TRUE(set.ok()) << set.status();
    const auto* e = set->Find("blocks.0.self_attn.q.weight");
    ASSERT_NE(e, nullptr) << f;
    EXPECT_EQ(e->file, d + f);
    EXPECT_EQ(e->tensor.data<float>()[0], 1.0f);
    EXPECT_TRUE(set->Has("head.head.bias"));
  }
  EXPECT_THAT(WeightSet::Load(d + "/none.safetensors"), StatusIs(absl::StatusCode::kNotFound));
  WriteText(d + "/x.bin", "zz");
  EXPECT_THAT(WeightSet::Load(d + "/x.bin"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CheckpointTest, DirectoryResolution) {
  const std::string d = Dir("dir");
  const TensorMap m = Tensors({"patch_embedding.bias"});
  EXPECT_THAT(WeightSet::Load(d), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_TRUE(WritePth(d + "/dit.pth", m).ok());
  auto one = WeightSet::Load(d);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->Find("patch_embedding.bias")->file, d + "/dit.pth");

  ASSERT_TRUE(WritePth(d + "/Wan2.1_VAE.pth", Tensors({"decoder.conv1.bias"})).ok());
  auto two = WeightSet::Load(d);
  EXPECT_THAT(two, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Message(two.status()), HasSubstr("dit.pth"));
  EXPECT_THAT(Message(two.status()), HasSubstr("Wan2.1_VAE.pth"));

  ASSERT_TRUE(WriteSafetensors(d + "/diffusion_pytorch_model.safetensors", m).ok());
  auto named = WeightSet::Load(d);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_THAT(named->Find("patch_embedding.bias")->file, HasSubstr("diffusion_pytorch_model"));
}

// Two shards plus an index in the official layout.
std::string MakeSharded(const std::string& d, const std::string& extra_map = "") {
  EXPECT_TRUE(WriteSafetensors(d + "/diffusion_pytorch_model-00001-of-00002.safetensors",
                               Tensors({"blocks.0.attn1.to_q.weight", "blocks.0.norm2.weight"}))
                  .ok());
  EXPECT_TRUE(WriteSafetensors(d + "/diffusion_pytorch_model-00002-of-00002.safetensors",
                               Tensors({"proj_out.weight"}))
                  .ok());
  const std::string index = d + "/diffusion_pytorch_model.safetensors.index.json";
  WriteText(index, R"({"metadata": {"total_size": 24}, "weight_map": {
      "blocks.0.attn1.to_q.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
      "blocks.0.norm2.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",)" +
                       extra_map + R"(
      "proj_out.weight": "diffusion_pytorch_model-00002-of-00002.safetensors"}})");
  return index;
}

TEST(CheckpointTest, ShardedDiffusersCheckpoint) {
  const std::string d = Dir("sharded");
  const std::string index = MakeSharded(d);
  for (const std::string& path : {index, d}) {
    auto set = WeightSet::Load(path);
    ASSERT_TRUE(set.ok()) << set.status();
    EXPECT_EQ(set->entries().size(), 3u);
    ASSERT_TRUE(set->Has("blocks.0.self_attn.q.weight"));
    EXPECT_TRUE(set->Has("blocks.0.norm3.weight"));  // diffusers norm2 = Wan norm3
    ASSERT_TRUE(set->Has("head.head.weight"));
    EXPECT_THAT(set->Find("head.head.weight")->file, HasSubstr("00002-of-00002"));
  }
}

TEST(CheckpointTest, ShardMismatchesAreNamed) {
  {  // listed key absent from its shard
    const std::string d = Dir("absent");
    const std::string index = MakeSharded(
        d, R"("blocks.9.ffn.0.weight": "diffusion_pytorch_model-00002-of-00002.safetensors",)");
    auto r = WeightSet::Load(index);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(Message(r.status()), HasSubstr("blocks.9.ffn.0.weight"));
    EXPECT_THAT(Message(r.status()), HasSubstr("00002-of-00002"));
    EXPECT_THAT(Message(r.status()), HasSubstr(index));
  }
  {  // shard tensor not in the map
    const std::string d = Dir("unlisted");
    const std::string index = MakeSharded(d);
    ASSERT_TRUE(WriteSafetensors(d + "/diffusion_pytorch_model-00002-of-00002.safetensors",
                                 Tensors({"proj_out.weight", "proj_out.bias"}))
                    .ok());
    auto r = WeightSet::Load(index);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(Message(r.status()), HasSubstr("proj_out.bias"));
    EXPECT_THAT(Message(r.status()), HasSubstr(index));
  }
  {  // shard file missing
    const std::string d = Dir("noshard");
    const std::string index = MakeSharded(d, R"("x": "missing-shard.safetensors",)");
    auto r = WeightSet::Load(index);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(Message(r.status()), HasSubstr("missing-shard.safetensors"));
    EXPECT_THAT(Message(r.status()), HasSubstr(index));
  }
  {  // corrupt index
    const std::string d = Dir("badindex");
    const std::string index = d + "/m.safetensors.index.json";
    WriteText(index, "{\"weight_map\": ");
    auto r = WeightSet::Load(index);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(Message(r.status()), HasSubstr(index));
    WriteText(index, "{\"metadata\": {}}");
    EXPECT_THAT(WeightSet::Load(index), StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST(CheckpointTest, CorruptFilesNameTheFile) {
  const std::string d = Dir("corrupt");
  const std::string st = d + "/w.safetensors";
  WriteText(st, std::string("\x10\0\0\0\0\0\0\0{\"a\":", 13));
  auto r = WeightSet::Load(st);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(Message(r.status()), HasSubstr(st));
  const std::string pth = d + "/w.pth";
  WriteText(pth, "PK\x03\x04 truncated");
  r = WeightSet::Load(pth);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(Message(r.status()), HasSubstr(pth));
}

TEST(CheckpointTest, DuplicateAfterNormalisationIsDataLoss) {
  const std::string d = Dir("dup");
  ASSERT_TRUE(
      WriteSafetensors(d + "/w.safetensors", Tensors({"net.head.head.bias", "head.head.bias"}))
          .ok());
  auto r = WeightSet::Load(d + "/w.safetensors");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(Message(r.status()), HasSubstr("head.head.bias"));
}

TEST(CheckpointTest, UmT5NamesKeepNorm2) {
  const std::string d = Dir("t5");
  ASSERT_TRUE(WritePth(d + "/models_t5_umt5-xxl-enc-bf16.pth",
                       Tensors({"blocks.0.norm2.weight", "blocks.0.attn.q.weight"}))
                  .ok());
  auto set = WeightSet::Load(d);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->Has("blocks.0.norm2.weight"));
}

TEST(CheckpointTest, ReadJsonFile) {
  const std::string d = Dir("json");
  WriteText(d + "/config.json", R"({"dim": 1536, "num_layers": 30})");
  auto j = ReadJsonFile(d + "/config.json");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->IntOr("dim", 0), 1536);
  EXPECT_THAT(ReadJsonFile(d + "/nope.json"), StatusIs(absl::StatusCode::kNotFound));
  WriteText(d + "/bad.json", "{\"dim\": }");
  auto bad = ReadJsonFile(d + "/bad.json");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(Message(bad.status()), HasSubstr("bad.json"));
}

}  // namespace
}  // namespace turbovid::engine::io
