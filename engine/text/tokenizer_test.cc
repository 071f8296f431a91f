// Tokenizer (tiny trained SentencePiece model), prompt cleaning, PromptCache and TextEncoder
// loading a tiny checkpoint folder.
#include "engine/text/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/io/safetensors.h"
#include "engine/models/t5.h"
#include "engine/models/text_encoder.h"
#include "engine/testing/tiny_tokenizer.h"
#include "engine/text/spm_model.h"

namespace turbovid::engine {
namespace {

using ::testing::ElementsAre;
using ::turbovid::common::testing::StatusIs;

namespace fs = std::filesystem;

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        (fs::path(::testing::TempDir()) / absl::StrCat("tv_tokenizer_", ::getpid())).string());
    fs::remove_all(*dir_);
    TV_ASSERT_OK(CreateTinyTokenizer(*dir_ + "/google/umt5-xxl", 512));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string TokenizerDir() { return *dir_ + "/google/umt5-xxl"; }
  static std::string* dir_;
};
std::string* TokenizerTest::dir_ = nullptr;

TEST(TokenizerClean, WhitespaceEntitiesAndQuotes) {
  EXPECT_EQ(CleanPrompt("  a \t\n b   c\r\n"), "a b c");
  EXPECT_EQ(CleanPrompt("a\xC2\xA0\xE3\x80\x80"
                        "b"),
            "a b");  // NBSP, ideographic space
  EXPECT_EQ(CleanPrompt("Tom &amp; Jerry"), "Tom & Jerry");
  EXPECT_EQ(CleanPrompt("&amp;amp;lt;b&amp;gt;"), "<b>");
  EXPECT_EQ(CleanPrompt("it&#39;s &#x27;x&#X27; &quot;y&quot;"), "it's 'x' \"y\"");
  EXPECT_EQ(CleanPrompt("a&nbsp;&nbsp;b"), "a b");
  EXPECT_EQ(CleanPrompt("\xE2\x80\x9Cquoted\xE2\x80\x9D it\xE2\x80\x99s"), "\"quoted\" it's");
  EXPECT_EQ(CleanPrompt("&unknown; & &#; &#128512;"), "&unknown; & &#; \xF0\x9F\x98\x80");
  EXPECT_EQ(CleanPrompt("&#150;"), "\xE2\x80\x93");  // Windows-1252 remap, as Python does
  EXPECT_EQ(CleanPrompt("\xE8\x89\xB2\xE8\xB0\x83 "), "\xE8\x89\xB2\xE8\xB0\x83");
  EXPECT_EQ(CleanPrompt(" \n\t "), "");
}

TEST_F(TokenizerTest, EncodeAppendsEosOnly) {
  auto tok = LoadTokenizer(TokenizerDir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 512);
  auto ids = Tokenize(**tok, "a cat runs through the forest at night.");
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_GE(ids->size(), 2u);
  EXPECT_EQ(ids->back(), Tokenizer::kEosId);
  for (size_t i = 0; i + 1 < ids->size(); ++i) {
    EXPECT_GT((*ids)[i], 1) << i;  // no pad, no BOS/EOS inside
    EXPECT_LT((*ids)[i], 512) << i;
  }
  auto empty = Tokenize(**tok, "   ");
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, ElementsAre(Tokenizer::kEosId));
}

TEST_F(TokenizerTest, CleaningCollapsesWhitespaceBeforeEncoding) {
  auto tok = LoadTokenizer(TokenizerDir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto a = Tokenize(**tok, "  a   red\n\n dog\t&amp; blue  cat ");
  auto b = Tokenize(**tok, "a red dog & blue cat");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_F(TokenizerTest, TruncatesTo512KeepingEos) {
  auto tok = LoadTokenizer(TokenizerDir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::string text;
  for (int i = 0; i < 800; ++i) text += "golden river sunset ";
  auto ids = Tokenize(**tok, text);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->size(), 512u);
  EXPECT_EQ(ids->back(), Tokenizer::kEosId);
  EXPECT_NE((*ids)[510], Tokenizer::kEosId);
}

TEST_F(TokenizerTest, ErrorsCarryCodes) {
  auto tok = LoadTokenizer(TokenizerDir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_THAT(Tokenize(**tok, "bad \xC3( utf8"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(LoadTokenizer(*dir_ + "/nowhere"), StatusIs(absl::StatusCode::kNotFound));
  const std::string junk_dir = *dir_ + "/junk";
  fs::create_directories(junk_dir);
  std::ofstream(junk_dir + "/spiece.model") << "not a model";
  EXPECT_THAT(LoadTokenizer(junk_dir), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(TokenizerTest, TrainingIsDeterministic) {
  const std::string again = *dir_ + "/again";
  TV_ASSERT_OK(CreateTinyTokenizer(again, 512));
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string a = read(TokenizerDir() + "/spiece.model");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, read(again + "/spiece.model"));
  EXPECT_THAT(CreateTinyTokenizer(again, 3), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CreateTinyTokenizer(again, 300), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(TokenizerTest, TrainingWithoutSpmTrainIsFailedPrecondition) {
  ::setenv("TV_SPM_TRAIN", "/nonexistent/spm_train", 1);
  const absl::Status s = CreateTinyTokenizer(*dir_ + "/no_trainer", 512);
  ::unsetenv("TV_SPM_TRAIN");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(fs::exists(*dir_ + "/no_trainer/spiece.model"));
}

// Hand-built ModelProto wire data for spm::Model.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>(0x80 | (v & 0x7F)));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string LenField(int field, const std::string& bytes) {
  return Varint(static_cast<uint64_t>(field) << 3 | 2) + Varint(bytes.size()) + bytes;
}
std::string VarintField(int field, uint64_t v) {
  return Varint(static_cast<uint64_t>(field) << 3) + Varint(v);
}
std::string PieceField(const std::string& text, float score, int type) {
  uint32_t bits = 0;
  std::memcpy(&bits, &score, 4);
  std::string f = Varint(2 << 3 | 5);
  for (int i = 0; i < 4; ++i) f.push_back(static_cast<char>(bits >> (8 * i)));
  return LenField(1, LenField(1, text) + f + VarintField(3, static_cast<uint64_t>(type)));
}
// ids: 0 <unk>, 1 </s>, 2 ▁a, 3 a, 4 b (no charsmap: identity normalization).
std::string SmallModel() {
  return PieceField("<unk>", 0, 2) + PieceField("</s>", 0, 3) +
         PieceField(
             "\xE2\x96\x81"
             "a",
             -1, 1) +
         PieceField("a", -2, 1) + PieceField("b", -3, 1) +
         LenField(2, VarintField(3, 1) + VarintField(40, 0) + VarintField(42, 1));
}

TEST(SpmModel, EncodesHandBuiltModel) {
  auto m = spm::Model::FromSerialized(SmallModel());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->piece_size(), 5);
  EXPECT_EQ((*m)->eos_id(), 1);
  EXPECT_EQ((*m)->pad_id(), -1);
  std::vector<int> ids;
  TV_ASSERT_OK((*m)->Encode("  a   b ", &ids));
  EXPECT_THAT(ids, ElementsAre(2, 0, 4));  // ▁a, ▁ (unknown), b
  TV_ASSERT_OK((*m)->Encode("bb", &ids));
  EXPECT_THAT(ids, ElementsAre(0, 4, 4));
  TV_ASSERT_OK((*m)->Encode("xyz", &ids));
  EXPECT_THAT(ids, ElementsAre(0));  // ▁xyz: one merged unknown
  TV_ASSERT_OK((*m)->Encode("", &ids));
  EXPECT_TRUE(ids.empty());
  EXPECT_EQ((*m)->PieceToId("a"), 3);
  EXPECT_EQ((*m)->PieceToId("zz"), 0);
}

TEST(SpmModel, RejectsHostileAndUnsupportedModels) {
  const std::string good = SmallModel();
  const auto code = [](const std::string& bytes) {
    return spm::Model::FromSerialized(bytes).status().code();
  };
  using absl::StatusCode;
  EXPECT_EQ(code(good + LenField(2, VarintField(3, 2))), StatusCode::kUnimplemented);  // BPE
  for (size_t cut = 1; cut < good.size(); ++cut) {
    const StatusCode c = code(good.substr(0, cut));
    EXPECT_TRUE(c == StatusCode::kDataLoss || c == StatusCode::kOk) << cut;
  }
  EXPECT_EQ(code(good + std::string(11, '\xFF')), StatusCode::kDataLoss);  // endless varint
  EXPECT_EQ(code(good + "\x0A\x7F"
                        "ab"),
            StatusCode::kDataLoss);                                           // length past the end
  EXPECT_EQ(code(good + "\x0B"), StatusCode::kDataLoss);                      // group wire type
  EXPECT_EQ(code(PieceField("a", -1, 1)), StatusCode::kDataLoss);             // no <unk>
  EXPECT_EQ(code(good + PieceField("a", -1, 1)), StatusCode::kDataLoss);      // duplicate
  EXPECT_EQ(code(good + PieceField("", -1, 1)), StatusCode::kDataLoss);       // empty piece
  EXPECT_EQ(code(good + PieceField("<unk2>", 0, 2)), StatusCode::kDataLoss);  // two unknowns
  EXPECT_EQ(code(good + PieceField("<0x41>", 0, 6)), StatusCode::kDataLoss);  // no byte_fallback
  EXPECT_EQ(code(good + LenField(2, VarintField(35, 1))), StatusCode::kDataLoss);  // no bytes
  EXPECT_EQ(code(good + LenField(3, LenField(2, std::string("\xFF\xFF\x00\x00"
                                                            "abc",
                                                            7)))),
            StatusCode::kDataLoss);  // charsmap trie larger than the blob
  EXPECT_EQ(code(""), StatusCode::kDataLoss);
  // A charsmap whose only rule points past the replacement table: DataLoss when used.
  std::string trie(4 * 512, '\0');
  auto put = [&](size_t unit, uint32_t v) {
    for (int i = 0; i < 4; ++i) trie[4 * unit + i] = static_cast<char>(v >> (8 * i));
  };
  put(0, 1u << 10);             // root: offset 1 → children at 1 ^ label
  put(1 ^ 'q', 'q' | 1u << 8);  // 'q' with a leaf, offset 0 → leaf at the same slot's ^ 0
  // The leaf sits at (1 ^ 'q') ^ 0, i.e. the unit itself; its value bits are the unit's.
  std::string blob = std::string("\x00\x08\x00\x00", 4) + trie + std::string("x\0", 2);
  auto m = spm::Model::FromSerialized(good + LenField(3, LenField(2, blob)));
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<int> ids;
  EXPECT_THAT((*m)->Encode("q", &ids), StatusIs(absl::StatusCode::kDataLoss));
  TV_EXPECT_OK((*m)->Encode("a", &ids));
}

TEST(TokenizerPromptCache, LruEvictsOldestAndKeysByModel) {
  PromptCache cache(2);
  Tensor t = Tensor::Zeros(DType::kF32, {1, 2});
  t.data<float>()[0] = 1.f;
  cache.Put("m1", "a", t);
  cache.Put("m1", "b", t);
  EXPECT_TRUE(cache.Get("m1", "a").defined());  // a becomes most recent
  EXPECT_FALSE(cache.Get("m2", "a").defined());
  cache.Put("m1", "c", t);  // evicts b
  EXPECT_FALSE(cache.Get("m1", "b").defined());
  EXPECT_TRUE(cache.Get("m1", "c").defined());
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.misses(), 2u);
  Tensor got = cache.Get("m1", "a");
  got.data<float>()[0] = 5.f;  // callers get a private copy
  EXPECT_EQ(cache.Get("m1", "a").data<float>()[0], 1.f);
  PromptCache off(0);
  off.Put("m", "p", t);
  EXPECT_FALSE(off.Get("m", "p").defined());
}

// Writes a tiny umT5 checkpoint (random bf16-exact weights) in the official layout.
void WriteTinyT5(const std::string& dir, int vocab) {
  const int dim = 16, ffn = 32, heads = 2, buckets = 32;
  io::TensorMap w;
  uint64_t s = 7;
  auto add = [&](const std::string& name, Shape shape) {
    Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      t.data<float>()[i] = RoundToBf16(static_cast<float>((s >> 40) & 0xFFFF) / 65536.f - 0.5f);
    }
    w[name] = t;
  };
  add("token_embedding.weight", {vocab, dim});
  add("norm.weight", {dim});
  const std::string p = "blocks.0.";
  add(p + "norm1.weight", {dim});
  for (const char* m : {"q", "k", "v", "o"}) add(p + "attn." + m + ".weight", {dim, dim});
  add(p + "norm2.weight", {dim});
  add(p + "ffn.gate.0.weight", {ffn, dim});
  add(p + "ffn.fc1.weight", {ffn, dim});
  add(p + "ffn.fc2.weight", {dim, ffn});
  add(p + "pos_embedding.embedding.weight", {buckets, heads});
  TV_ASSERT_OK(io::WriteSafetensors(dir + "/" + TextEncoder::kWeightsSafetensors, w));
  std::ofstream(dir + "/" + TextEncoder::kConfigFile)
      << absl::StrCat(R"({"t5": {"vocab": )", vocab, R"(, "dim": 16, "dim_attn": 16,
          "dim_ffn": 32, "num_heads": 2, "num_layers": 1, "num_buckets": 32}})");
}

TEST_F(TokenizerTest, TextEncoderCachesEmbeddings) {
  WriteTinyT5(*dir_, 512);
  auto backend = MakeCpuBackend();
  auto enc = TextEncoder::Load(*dir_, *backend);
  ASSERT_TRUE(enc.ok()) << enc.status();
  auto ids = (*enc)->Tokenize("a dog jumping in a puddle");
  ASSERT_TRUE(ids.ok());
  auto first = (*enc)->Encode("a dog jumping in a puddle");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->shape(), (Shape{static_cast<int64_t>(ids->size()), 16}));
  EXPECT_EQ(first->dtype(), DType::kF32);
  auto second = (*enc)->Encode("a dog jumping in a puddle");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*enc)->cache().hits(), 1u);
  EXPECT_EQ((*enc)->cache().misses(), 1u);
  ASSERT_EQ(second->shape(), first->shape());
  EXPECT_EQ(std::memcmp(second->raw(), first->raw(), first->nbytes()), 0);
  auto other = (*enc)->Encode("a   dog jumping in a puddle");  // other key, same tokens
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*enc)->cache().misses(), 2u);
  EXPECT_EQ(std::memcmp(other->raw(), first->raw(), first->nbytes()), 0);
  EXPECT_THAT((*enc)->Encode("\xFF"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(TokenizerTest, TextEncoderRejectsMismatchedCheckpoints) {
  auto backend = MakeCpuBackend();
  WriteTinyT5(*dir_, 300);  // fewer embedding rows than tokenizer pieces
  EXPECT_THAT(TextEncoder::Load(*dir_, *backend), StatusIs(absl::StatusCode::kInvalidArgument));
  fs::remove(*dir_ + "/" + TextEncoder::kWeightsSafetensors);
  WriteTinyT5(*dir_, 512);
  fs::remove(*dir_ + "/" + TextEncoder::kWeightsSafetensors);
  EXPECT_THAT(TextEncoder::Load(*dir_, *backend), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace turbovid::engine
