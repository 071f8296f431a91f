// Parity of our SentencePiece unigram encoder (spm_model.h) with libsentencepiece 0.1.97 on
// models trained here by spm_train: nmt_nfkc with and without byte fallback on a mixed
// English/Chinese corpus, the tiny-checkpoint model, and identity normalization with
// user-defined symbols and no whitespace cleanup. Also: mutated model files never crash us.
// Only spm_parity_ref.cc sees the sentencepiece headers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/testing/spm_parity_ref.h"
#include "engine/testing/spm_train.h"
#include "engine/testing/tiny_tokenizer.h"
#include "engine/text/spm_model.h"
#include "engine/text/tokenizer.h"

namespace turbovid::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kWanNegative =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";
constexpr const char* kChineseText =
    "一个女孩在公园里跑步，阳光明媚，镜头缓慢推进。城市夜景，霓虹灯闪烁，雨水落在街道上。"
    "小猫在草地上玩耍，画面温暖。海浪拍打沙滩，天空中有白云。老人坐在长椅上看书。"
    "宇航员在太空中漂浮，地球在背后旋转。厨师在厨房里做饭，蒸汽升起。";
// Characters of the negative prompt kept out of the corpora, so that it also hits unknowns.
constexpr const char* kExcluded[] = {"艳", "曝", "畸", "毁", "腿", "陋"};

constexpr const char* kEnglish[] = {
    "a",        "the",     "cat",     "dog",       "runs",     "through",  "forest", "city",
    "night",    "bright",  "golden",  "light",     "over",     "ocean",    "waves",  "slowly",
    "camera",   "pans",    "across",  "red",       "blue",     "mountain", "river",  "sunset",
    "children", "playing", "in",      "park",      "rain",     "street",   "neon",   "astronaut",
    "horse",    "space",   "flowers", "timelapse", "clouds",   "close-up", "of",     "cinematic",
    "shot",     "drone",   "view",    "snowy",     "village",  "coffee",   "steam",  "robot",
    "dancing",  "4k",      "high",    "quality",   "detailed", "portrait", "JPEG",   "1080p",
    "60fps",    "don't",   "it's"};

std::vector<std::string> SplitUtf8(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

class Lcg {
 public:
  explicit Lcg(uint64_t seed) : s_(seed) {}
  uint64_t operator()() {
    s_ = s_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return s_ >> 33;
  }
  template <typename C>
  const auto& Pick(const C& c) {
    return c[(*this)() % std::size(c)];
  }

 private:
  uint64_t s_;
};

std::vector<std::string> ChinesePool() {
  std::set<std::string> excluded(std::begin(kExcluded), std::end(kExcluded));
  std::set<std::string> seen;
  std::vector<std::string> pool;
  for (const std::string& ch : SplitUtf8(std::string(kChineseText) + kWanNegative)) {
    if (static_cast<unsigned char>(ch[0]) < 0x80 || ch == "，" || ch == "。") continue;
    if (excluded.count(ch) || !seen.insert(ch).second) continue;
    pool.push_back(ch);
  }
  return pool;
}

void WriteCorpus(const std::string& path, int lines) {
  const std::vector<std::string> zh = ChinesePool();
  Lcg rng(42);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < lines; ++i) {
    std::string line;
    const int kind = static_cast<int>(rng() % 3);
    const int n = 4 + static_cast<int>(rng() % 12);
    for (int j = 0; j < n; ++j) {
      const bool chinese = kind == 1 || (kind == 2 && rng() % 2 == 0);
      if (chinese) {
        const int run = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < run; ++k) line += zh[rng() % zh.size()];
        if (rng() % 4 == 0) line += "，";
      } else {
        if (!line.empty()) line += rng() % 9 == 0 ? ", " : " ";
        line += rng.Pick(kEnglish);
      }
    }
    line += kind == 1 ? "。" : ".";
    out << line << '\n';
  }
}

// Strings to compare: hand-picked edge cases plus random mixes of fragments.
std::vector<std::string> TestStrings() {
  std::vector<std::string> s = {
      "",
      " ",
      "   ",
      "\t\n",
      "a",
      "hello world",
      "a cat runs through the forest at night.",
      "  leading and trailing spaces  ",
      "multiple     spaces   inside",
      "tabs\tand\nnewlines\r\nmixed \t \n end",
      kWanNegative,
      "色调艳丽，过曝，静态",
      "一个女孩在公园里跑步，阳光明媚。",
      "ｆｕｌｌｗｉｄｔｈ１２３",
      "①②③ ⑩",
      "ﬁ ﬂ ﬃ",
      "ﬁne ﬂowers",
      "Ｈｅｌｌｏ，Ｗｏｒｌｄ！",
      "全角：（括号）【方括号】“引号”",
      "ideographic\u3000space",
      "\u3000\u3000lead",
      "nbsp\u00A0here",
      "zero\u200Bwidth",
      "emoji 😀 here",
      "😀😀😀",
      "👍🏽 family 👨‍👩‍👧",
      "mixed 中文 and English 混合 text",
      "Café naïve résumé",
      "e\u0301 vs é",
      "Å Ω ™ ½ ²",
      "ｶﾀｶﾅ",
      "한국어 텍스트",
      "русский текст",
      "العربية",
      "numbers 0123456789 and 4k 1080p",
      "punctuation!?.,;:'\"()[]{}<>@#$%^&*-_=+|\\/~`",
      "a\0b",
      std::string("nul\0inside", 10),
      "\x7f delete",
      "line\u2028separator",
      "▁already▁escaped",
      "<unk> </s> <pad> <sep> [MASK] <0x41>",
      "abababab ab a b",
      "\xEF\xBF\xBD replacement",
      // Malformed UTF-8 (libsentencepiece turns each bad byte into U+FFFD).
      "\xff",
      "bad \xC3( utf8",
      "\xED\xA0\x80 surrogate",
      "\xC0\x80 overlong",
      "trunc \xE4\xB8",
      "\xF4\x90\x80\x80 too big",
  };
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "golden river sunset 金色河流 ";
  s.push_back(long_text);

  const std::vector<std::string> zh = SplitUtf8(std::string(kChineseText) + kWanNegative);
  const std::vector<std::string> frags = {
      " ",  "  ", "\t", "\n",     "\u3000", "，", "。", "！", "？", "ｆｕｌｌ", "１２３", "①",
      "ﬁ",  "😀",  "é",  "™",      "½",      "-",  ",",  ".",  "'",  "\"",       "(",      ")",
      "４", "Ｋ", "ａ", "\u00A0", "x",      "…",  "—",  "々", "〜", "·"};
  Lcg rng(7);
  for (int i = 0; i < 320; ++i) {
    std::string t;
    const int n = 1 + static_cast<int>(rng() % 14);
    for (int j = 0; j < n; ++j) {
      switch (rng() % 4) {
        case 0:
          t += rng.Pick(kEnglish);
          break;
        case 1:
          for (int k = 1 + static_cast<int>(rng() % 5); k > 0; --k) t += zh[rng() % zh.size()];
          break;
        default:
          t += frags[rng() % frags.size()];
          break;
      }
    }
    s.push_back(t);
  }
  return s;
}

std::string Show(const std::vector<int>& ids, const spm_ref::RefProcessor& ref) {
  std::string out;
  for (int id : ids) absl::StrAppend(&out, id, ":", ref.IdToPiece(id), " ");
  return out;
}

class SpmParityTest : public ::testing::Test {
 protected:
  struct ModelCase {
    std::string name;
    std::string path;
  };

  static void SetUpTestSuite() {
    dir_ = new std::string(
        (fs::path(::testing::TempDir()) / absl::StrCat("tv_spm_parity_", ::getpid())).string());
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const std::string corpus = *dir_ + "/corpus.txt";
    WriteCorpus(corpus, 3000);
    cases_ = new std::vector<ModelCase>();
    const std::vector<std::string> common = {
        "--input=" + corpus, "--model_type=unigram", "--character_coverage=1.0", "--num_threads=1",
        "--minloglevel=2",   "--random_seed=1234",   "--hard_vocab_limit=false"};
    auto train = [&](const std::string& name, std::vector<std::string> flags) {
      flags.insert(flags.begin(), common.begin(), common.end());
      flags.push_back("--model_prefix=" + *dir_ + "/" + name);
      const absl::Status s = spm::RunSpmTrain(flags);
      ASSERT_TRUE(s.ok()) << name << ": " << s;
      cases_->push_back({name, *dir_ + "/" + name + ".model"});
    };
    const std::vector<std::string> wan_ids = {"--pad_id=0", "--eos_id=1", "--unk_id=2",
                                              "--bos_id=-1"};
    auto with = [](std::vector<std::string> a, std::initializer_list<std::string> b) {
      a.insert(a.end(), b.begin(), b.end());
      return a;
    };
    train("nfkc_unk", with(wan_ids, {"--vocab_size=500", "--normalization_rule_name=nmt_nfkc"}));
    train("nfkc_bytes", with(wan_ids, {"--vocab_size=800", "--normalization_rule_name=nmt_nfkc",
                                       "--byte_fallback=true"}));
    train("identity_udf", {"--vocab_size=450", "--normalization_rule_name=identity",
                           "--user_defined_symbols=<sep>,[MASK],ab,金色",
                           "--add_dummy_prefix=false", "--remove_extra_whitespaces=false"});
    train("nfkc_suffix",
          with(wan_ids, {"--vocab_size=600", "--normalization_rule_name=nmt_nfkc",
                         "--treat_whitespace_as_suffix=true", "--byte_fallback=true"}));
    const std::string tiny = *dir_ + "/tiny";
    const absl::Status s = CreateTinyTokenizer(tiny, 512);
    ASSERT_TRUE(s.ok()) << s;
    cases_->push_back({"tiny", tiny + "/spiece.model"});
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete cases_;
  }

  static std::string* dir_;
  static std::vector<ModelCase>* cases_;
};
std::string* SpmParityTest::dir_ = nullptr;
std::vector<SpmParityTest::ModelCase>* SpmParityTest::cases_ = nullptr;

TEST_F(SpmParityTest, IdsEqualLibsentencepiece) {
  const std::vector<std::string> texts = TestStrings();
  ASSERT_EQ(cases_->size(), 5u);
  size_t compared = 0, unk_or_bytes = 0;
  for (const ModelCase& c : *cases_) {
    std::string error;
    std::unique_ptr<spm_ref::RefProcessor> ref = spm_ref::LoadRef(c.path, &error);
    ASSERT_NE(ref, nullptr) << c.name << ": " << error;
    auto ours = spm::Model::Load(c.path);
    ASSERT_TRUE(ours.ok()) << c.name << ": " << ours.status();
    EXPECT_EQ((*ours)->piece_size(), ref->PieceSize()) << c.name;
    EXPECT_EQ((*ours)->eos_id(), ref->EosId()) << c.name;
    int mismatches = 0;
    for (const std::string& text : texts) {
      std::vector<int> want, got;
      ASSERT_TRUE(ref->Encode(text, &want, &error)) << c.name << ": " << error;
      const absl::Status s = (*ours)->Encode(text, &got);
      ASSERT_TRUE(s.ok()) << c.name << ": " << s;
      ++compared;
      for (int id : want) {
        const spm::PieceType t = (*ours)->type(id);
        if (t == spm::PieceType::kUnknown || t == spm::PieceType::kByte) {
          ++unk_or_bytes;
          break;
        }
      }
      if (got != want && ++mismatches <= 10) {
        ADD_FAILURE() << c.name << " differs on \"" << text
                      << "\"\n  libsentencepiece: " << Show(want, *ref)
                      << "\n  ours:             " << Show(got, *ref);
      }
    }
    EXPECT_EQ(mismatches, 0) << c.name;
    // The Wan negative prompt goes through both known pieces and unknown characters.
    std::vector<int> neg;
    ASSERT_TRUE((*ours)->Encode(kWanNegative, &neg).ok());
    int known = 0, unknown = 0;
    for (int id : neg) {
      const spm::PieceType t = (*ours)->type(id);
      (t == spm::PieceType::kUnknown || t == spm::PieceType::kByte ? unknown : known)++;
    }
    std::printf("%-12s %4d pieces, negative prompt: %3zu ids (%d known, %d unk/byte)\n",
                c.name.c_str(), (*ours)->piece_size(), neg.size(), known, unknown);
    EXPECT_GT(known, 20) << c.name;
    EXPECT_GT(unknown, 0) << c.name;
  }
  std::printf("compared %zu encodings (%zu strings x %zu models), %zu with unknown/byte pieces\n",
              compared, texts.size(), cases_->size(), unk_or_bytes);
}

TEST_F(SpmParityTest, TokenizerMatchesCleanedReferencePlusEos) {
  std::string error;
  const ModelCase& tiny = cases_->back();
  std::unique_ptr<spm_ref::RefProcessor> ref = spm_ref::LoadRef(tiny.path, &error);
  ASSERT_NE(ref, nullptr) << error;
  auto tok = Tokenizer::Load(fs::path(tiny.path).parent_path().string());
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const std::string& text : TestStrings()) {
    auto got = (*tok)->Encode(text);
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
      continue;
    }
    std::vector<int> want;
    ASSERT_TRUE(ref->Encode(CleanPrompt(text), &want, &error)) << error;
    if (want.size() > 511) want.resize(511);
    want.push_back(Tokenizer::kEosId);
    EXPECT_EQ(*got, std::vector<int64_t>(want.begin(), want.end())) << text;
  }
}

TEST_F(SpmParityTest, MutatedModelsNeverCrash) {
  const std::vector<std::string> texts = {"hello world", kWanNegative, "ｆｕｌｌ ﬁ ① 😀", ""};
  Lcg rng(99);
  int loaded = 0, rejected = 0;
  for (const ModelCase& c : *cases_) {
    std::ifstream in(c.path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (int i = 0; i < 150; ++i) {
      std::string m = bytes;
      switch (i % 3) {
        case 0:  // truncation
          m.resize(rng() % m.size());
          break;
        case 1:  // a few random bytes
          for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) {
            m[rng() % m.size()] = static_cast<char>(rng());
          }
          break;
        default: {  // a byte flipped inside the normalizer's charsmap (near the end)
          const size_t span = std::min<size_t>(m.size(), 200000);
          m[m.size() - 1 - rng() % span] ^= static_cast<char>(1 + rng() % 255);
          break;
        }
      }
      auto model = spm::Model::FromSerialized(m);
      if (!model.ok()) {
        ++rejected;
        EXPECT_TRUE(model.status().code() == absl::StatusCode::kDataLoss ||
                    model.status().code() == absl::StatusCode::kUnimplemented)
            << model.status();
        continue;
      }
      ++loaded;
      for (const std::string& t : texts) {
        std::vector<int> ids;
        const absl::Status s = (*model)->Encode(t, &ids);
        if (!s.ok()) {
          EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
          continue;
        }
        for (int id : ids) {
          EXPECT_GE(id, 0);
          EXPECT_LT(id, (*model)->piece_size());
        }
      }
    }
  }
  std::printf("mutated models: %d loaded, %d rejected\n", loaded, rejected);
}

}  // namespace
}  // namespace turbovid::engine
