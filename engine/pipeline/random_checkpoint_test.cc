// Random benchmark checkpoints: streamed safetensors are valid, deterministic and reused; the
// hand-written tokenizer loads; a tiny random folder loads and runs as a pipeline.
#include "engine/pipeline/random_checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/cpu/cpu_backend.h"
#include "engine/io/safetensors.h"
#include "engine/pipeline/pipeline.h"
#include "engine/text/tokenizer.h"

namespace turbovid::engine {
namespace {

std::string TempDir(const std::string& name) {
  const std::string dir =
      testing::TempDir() + "/tv_random_ckpt_" + name + "_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RandomCheckpointTest, StreamedSafetensorsAreValidDeterministicAndReused) {
  const std::string dir = TempDir("st");
  // More than one 32 MiB chunk for the big tensor, odd sizes elsewhere.
  const TensorShapes shapes = {{"blocks.0.ffn.0.weight", {4100, 4099}},
                               {"blocks.0.ffn.0.bias", {4100}},
                               {"blocks.0.norm3.weight", {77}},
                               {"blocks.0.modulation", {1, 6, 5}}};
  const std::string a = dir + "/a.safetensors", b = dir + "/b.safetensors";
  ASSERT_TRUE(WriteRandomSafetensors(a, shapes, 7).ok());
  ASSERT_TRUE(WriteRandomSafetensors(b, shapes, 7).ok());
  EXPECT_EQ(ReadAll(a), ReadAll(b));
  auto tensors = io::ReadSafetensors(a);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ASSERT_EQ(tensors->size(), 4u);
  const Tensor& w = tensors->at("blocks.0.ffn.0.weight");
  EXPECT_EQ(w.dtype(), DType::kBF16);
  EXPECT_EQ(tensors->at("blocks.0.norm3.weight").dtype(), DType::kF32);
  // Mean 0 and std 1/sqrt(fan_in) for weights.
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double v = Bf16ToF32(w.data<uint16_t>()[i]);
    sum += v;
    sq += v * v;
  }
  const double mean = sum / w.numel(), std = std::sqrt(sq / w.numel() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(std * std::sqrt(4099.0), 1.0, 0.01);
  const Tensor& g = tensors->at("blocks.0.norm3.weight");
  for (int64_t i = 0; i < g.numel(); ++i) {
    EXPECT_GT(g.data<float>()[i], 0.8f);
    EXPECT_LT(g.data<float>()[i], 1.2f);
  }
  // A complete file with the same header is kept as is; another seed rewrites it.
  const auto before = std::filesystem::last_write_time(a);
  ASSERT_TRUE(WriteRandomSafetensors(a, shapes, 7).ok());
  EXPECT_EQ(std::filesystem::last_write_time(a), before);
  ASSERT_TRUE(WriteRandomSafetensors(b, shapes, 8).ok());
  EXPECT_NE(ReadAll(a), ReadAll(b));
  EXPECT_FALSE(std::filesystem::exists(a + ".partial"));
}

TEST(RandomCheckpointTest, HandWrittenTokenizerLoadsAndEncodesWholeWords) {
  const std::string dir = TempDir("tok");
  ASSERT_TRUE(WriteBenchTokenizer(dir, 4096).ok());
  auto tok = Tokenizer::Load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto ids = tok.value()->Encode("a young woman walks through the rain");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->size(), 8u);  // seven words + EOS
  EXPECT_EQ(ids->back(), Tokenizer::kEosId);
  // Anything else falls back to bytes.
  auto other = tok.value()->Encode("Zebra 斑马");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_GT(other->size(), 4u);
  EXPECT_FALSE(WriteBenchTokenizer(dir, 100).ok());
}

TEST(RandomCheckpointTest, TinyFolderRunsThroughThePipeline) {
  const std::string work = TempDir("tiny");
  auto model = RandomModelByName("tiny");
  ASSERT_TRUE(model.ok());
  auto dir = EnsureRandomCheckpoint(*model, work, RandomParts{}, 3);
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto backend = MakeCpuBackend();
  auto pipeline = Pipeline::Load(*dir, *backend);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  GenerateRequest req;
  req.prompt = "a dog runs on the beach";
  req.frames = 5;
  req.width = 32;
  req.height = 32;
  req.steps = 2;
  auto result = (*pipeline)->Generate(req, nullptr, nullptr, /*encode_mp4=*/false);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->frames.dim(0), 5);
  EXPECT_FALSE(RandomModelByName("wan9").ok());
  // The real sizes share umT5 + VAE through links (only the small parts are written here).
  auto big = RandomModelByName("wan2.1-t2v-14b");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->dit.dim, 5120);
  EXPECT_TRUE(big->shared_parts);
}

}  // namespace
}  // namespace turbovid::engine
