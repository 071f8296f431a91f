// Tokenizer over our SentencePiece unigram reader, prompt cleaning and tiny-model training via the
// spm_train binary (docs/model-math.md §4.4).
#include "engine/text/tokenizer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/text/spm_train.h"

namespace turbovid::engine {
namespace {

// Decodes UTF-8; false on malformed input (overlong, surrogate, out of range, truncated).
bool DecodeUtf8(std::string_view s, std::u32string* out, size_t* bad_at) {
  out->clear();
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      *bad_at = i;
      return false;
    }
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int j = 1; j < len; ++j) {
      const unsigned char cc = static_cast<unsigned char>(s[i + j]);
      if ((cc >> 6) != 0x2) {
        *bad_at = i;
        return false;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      *bad_at = i;
      return false;
    }
    out->push_back(cp);
    i += len;
  }
  return true;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Python's str.isspace(), which is also what `\s` and str.strip() use on str.
bool IsPySpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// The entities prompts actually carry; `legacy` ones are also recognised without ';' as
// Python's html.unescape does.
struct NamedEntity {
  std::u32string_view name;
  char32_t cp;
  bool legacy;
};
constexpr NamedEntity kEntities[] = {
    {U"amp", U'&', true},      {U"lt", U'<', true},        {U"gt", U'>', true},
    {U"quot", U'"', true},     {U"apos", U'\'', false},    {U"nbsp", 0xA0, true},
    {U"copy", 0xA9, true},     {U"reg", 0xAE, true},       {U"deg", 0xB0, true},
    {U"middot", 0xB7, true},   {U"times", 0xD7, true},     {U"laquo", 0xAB, true},
    {U"raquo", 0xBB, true},    {U"ndash", 0x2013, false},  {U"mdash", 0x2014, false},
    {U"lsquo", 0x2018, false}, {U"rsquo", 0x2019, false},  {U"ldquo", 0x201C, false},
    {U"rdquo", 0x201D, false}, {U"hellip", 0x2026, false}, {U"trade", 0x2122, false},
    {U"euro", 0x20AC, false},  {U"bull", 0x2022, false},
};

// Python html's table for numeric references 0x80..0x9F (Windows-1252); 0 = keep as is.
constexpr char32_t kCp1252[32] = {0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
                                  0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

// Numeric character reference value → replacement per Python's html.unescape; `drop` for the
// code points it deletes (controls, noncharacters).
char32_t NumericRef(uint64_t num, bool* drop) {
  *drop = false;
  if (num >= 0x80 && num <= 0x9F) return kCp1252[num - 0x80] ? kCp1252[num - 0x80] : num;
  if (num == 0 || num > 0x10FFFF || (num >= 0xD800 && num <= 0xDFFF)) return 0xFFFD;
  if (num == 0x0D) return 0x0D;
  if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) || num == 0x7F ||
      (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE) {
    *drop = true;
  }
  return static_cast<char32_t>(num);
}

// Parses a reference starting after '&' at s[i]; returns the characters consumed (0 = none).
size_t ParseEntity(const std::u32string& s, size_t i, std::u32string* out) {
  if (i < s.size() && s[i] == U'#') {
    size_t j = i + 1;
    const bool hex = j < s.size() && (s[j] == U'x' || s[j] == U'X');
    if (hex) ++j;
    uint64_t num = 0;
    const size_t start = j;
    for (; j < s.size(); ++j) {
      const char32_t c = s[j];
      int d = c >= U'0' && c <= U'9' ? static_cast<int>(c - U'0') : -1;
      if (hex && c >= U'a' && c <= U'f') d = static_cast<int>(c - U'a') + 10;
      if (hex && c >= U'A' && c <= U'F') d = static_cast<int>(c - U'A') + 10;
      if (d < 0) break;
      num = std::min<uint64_t>(num * (hex ? 16 : 10) + d, uint64_t{1} << 40);
    }
    if (j == start) return 0;
    if (j < s.size() && s[j] == U';') ++j;
    bool drop = false;
    const char32_t cp = NumericRef(num, &drop);
    if (!drop) out->push_back(cp);
    return j - i;
  }
  // Longest match wins, like Python's lookup of the longest known prefix.
  size_t best = 0;
  char32_t best_cp = 0;
  for (const NamedEntity& e : kEntities) {
    const size_t n = e.name.size();
    if (s.compare(i, n, e.name) != 0) continue;
    const bool semi = i + n < s.size() && s[i + n] == U';';
    const size_t used = n + (semi ? 1 : 0);
    if ((semi || e.legacy) && used > best) {
      best = used;
      best_cp = e.cp;
    }
  }
  if (best > 0) out->push_back(best_cp);
  return best;
}

std::u32string HtmlUnescape(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == U'&') {
      const size_t used = ParseEntity(s, i + 1, &out);
      if (used > 0) {
        i += used;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// ftfy's uncurl_quotes: U+02BC, U+2018..U+201B → '\'', U+201C..U+201F → '"'.
void UncurlQuotes(std::u32string& s) {
  for (char32_t& c : s) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
}

std::u32string CollapseWhitespace(const std::u32string& s) {
  std::u32string out;
  bool pending_space = false;
  for (char32_t c : s) {
    if (IsPySpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(U' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string CleanCodePoints(std::u32string s) {
  // ftfy.fix_text (approximation): its own HTML unescape when the text has no '<', then quotes.
  if (s.find(U'<') == std::u32string::npos) s = HtmlUnescape(s);
  UncurlQuotes(s);
  s = HtmlUnescape(HtmlUnescape(s));
  s = CollapseWhitespace(s);  // strip + collapse + strip in one pass
  std::string out;
  for (char32_t c : s) AppendUtf8(c, &out);
  return out;
}

}  // namespace

std::string CleanPrompt(const std::string& text) {
  std::u32string cps;
  size_t bad_at = 0;
  if (!DecodeUtf8(text, &cps, &bad_at)) return text;  // Encode() reports malformed input
  return CleanCodePoints(std::move(cps));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "spiece.model").string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": tokenizer model not found"));
  }
  TV_ASSIGN_OR_RETURN(std::unique_ptr<spm::Model> model, spm::Model::Load(path));
  if (model->eos_id() != kEosId) {
    return absl::DataLossError(absl::StrCat(path, ": eos id ", model->eos_id(), " != ", kEosId));
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(model)));
}

absl::StatusOr<std::vector<int64_t>> Tokenizer::Encode(const std::string& text,
                                                       int max_tokens) const {
  std::u32string cps;
  size_t bad_at = 0;
  if (!DecodeUtf8(text, &cps, &bad_at)) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: invalid UTF-8 at byte ", bad_at));
  }
  if (max_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens: ", max_tokens, " < 1"));
  }
  std::vector<int> pieces;
  TV_RETURN_IF_ERROR(model_->Encode(CleanCodePoints(std::move(cps)), &pieces));
  const size_t keep = std::min(pieces.size(), static_cast<size_t>(max_tokens - 1));
  std::vector<int64_t> ids(pieces.begin(), pieces.begin() + keep);
  ids.push_back(kEosId);
  return ids;
}

namespace {

// English prompt words; the tiny corpus mixes them with generated pseudo-words so that a unigram
// model of a few hundred pieces has enough distinct substrings to choose from.
constexpr const char* kWords[] = {
    "a",          "the",      "cat",      "dog",        "runs",         "walks",       "through",
    "forest",     "city",     "night",    "bright",     "golden",       "light",       "over",
    "ocean",      "waves",    "slowly",   "camera",     "pans",         "across",      "red",
    "blue",       "green",    "mountain", "river",      "sunset",       "children",    "playing",
    "in",         "park",     "old",      "man",        "woman",        "smiling",     "rain",
    "falling",    "on",       "street",   "neon",       "signs",        "glowing",     "astronaut",
    "riding",     "horse",    "space",    "station",    "flowers",      "blooming",    "timelapse",
    "clouds",     "moving",   "fast",     "close-up",   "of",           "eyes",        "cinematic",
    "shot",       "drone",    "view",     "snowy",      "village",      "winter",      "morning",
    "coffee",     "steam",    "rising",   "from",       "cup",          "robot",       "dancing",
    "stage",      "crowd",    "cheering", "birds",      "flying",       "above",       "lake",
    "reflection", "trees",    "autumn",   "leaves",     "wind",         "blowing",     "soft",
    "warm",       "cold",     "dark",     "stormy",     "sky",          "lightning",   "train",
    "passing",    "bridge",   "painting", "style",      "watercolor",   "realistic",   "4k",
    "high",       "quality",  "detailed", "portrait",   "young",        "girl",        "boy",
    "reading",    "book",     "library",  "quiet",      "room",         "kitchen",     "chef",
    "cooking",    "pasta",    "fire",     "candle",     "flickering",   "beach",       "sand",
    "footprints", "surfer",   "catching", "big",        "wave",         "jellyfish",   "underwater",
    "coral",      "reef",     "fish",     "swimming",   "desert",       "camel",       "dunes",
    "pyramid",    "ancient",  "temple",   "monk",       "meditating",   "garden",      "butterfly",
    "landing",    "flower",   "petals",   "street",     "market",       "vendors",     "selling",
    "fruit",      "bicycle",  "racing",   "car",        "highway",      "tunnel",      "spaceship",
    "launching",  "rocket",   "smoke",    "explosion",  "slow",         "motion",      "water",
    "droplets",   "splash",   "glass",    "shattering", "mirror",       "dragon",      "breathing",
    "castle",     "knight",   "sword",    "battle",     "wolves",       "howling",     "moon",
    "stars",      "galaxy",   "nebula",   "zooming",    "into",         "microscope",  "cells",
    "dividing",   "hands",    "typing",   "keyboard",   "computer",     "screen",      "code",
    "scrolling",  "office",   "workers",  "meeting",    "table",        "grandmother", "knitting",
    "sweater",    "cat's",    "tail",     "puppy",      "chasing",      "ball",        "grass",
    "field",      "wheat",    "tractor",  "farmer",     "barn",         "sheep",       "grazing",
    "hills",      "fog",      "mist",     "lantern",    "festival",     "fireworks",   "exploding",
    "colorful",   "umbrella", "jumping",  "puddle",     "skateboarder", "trick",       "ramp",
    "violinist",  "playing",  "music",    "orchestra",  "concert",      "hall",        "applause",
    "and",        "with",     "while",    "under",      "behind",       "beside",      "near",
    "far",        "away",     "together", "alone",      "happy",        "sad",         "angry",
    "calm"};

// Deterministic pseudo-English sentences (fixed LCG) for training tiny tokenizers, one per line.
class TinyCorpus {
 public:
  explicit TinyCorpus(int pseudo_words) {
    static constexpr const char* kOnsets[] = {"b", "c", "d",  "f",  "g",  "h",  "j",  "k",
                                              "l", "m", "n",  "p",  "r",  "s",  "t",  "v",
                                              "w", "z", "br", "ch", "sh", "st", "tr", "pl"};
    static constexpr const char* kVowels[] = {"a", "e", "i", "o", "u", "ai", "ou", "ee", "y"};
    static constexpr const char* kCodas[] = {"", "", "", "n", "r", "s", "l", "m", "t", "ng"};
    for (int i = 0; i < pseudo_words; ++i) {
      std::string w;
      const int syllables = 1 + static_cast<int>(Rand() % 3);
      for (int j = 0; j < syllables; ++j) {
        w += kOnsets[Rand() % std::size(kOnsets)];
        w += kVowels[Rand() % std::size(kVowels)];
        w += kCodas[Rand() % std::size(kCodas)];
      }
      pseudo_.push_back(std::move(w));
    }
  }
  std::string NextSentence() {
    std::string s;
    const int n = 4 + static_cast<int>(Rand() % 12);
    for (int i = 0; i < n; ++i) {
      if (i > 0) s += Rand() % 9 == 0 ? ", " : " ";
      if (Rand() % 5 < 2 && !pseudo_.empty()) {
        s += pseudo_[Rand() % pseudo_.size()];
      } else {
        s += kWords[Rand() % std::size(kWords)];
      }
    }
    s += Rand() % 3 == 0 ? "!" : ".";
    return s;
  }

 private:
  uint64_t Rand() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return state_ >> 33;
  }
  uint64_t state_ = 0x5eed;
  std::vector<std::string> pseudo_;
};

}  // namespace

absl::Status TrainTinyTokenizer(const std::string& dir, int vocab_size) {
  if (vocab_size < kMinTinyVocab) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size: ", vocab_size, " < ", kMinTinyVocab,
                                                   " (byte fallback takes 256 pieces)"));
  }
  std::string spm_train;
  TV_RETURN_IF_ERROR(spm::FindSpmTrain(&spm_train));
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create: ", ec.message()));

  // Scratch folder next to the output so that concurrent trainings never share files.
  const fs::path work = fs::path(dir) / absl::StrCat(".spm_train.", ::getpid());
  fs::remove_all(work, ec);
  fs::create_directories(work, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(work.string(), ": cannot create: ", ec.message()));
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(p, ignored);
    }
  } cleanup{work};

  const fs::path corpus_path = work / "corpus.txt";
  {
    std::ofstream corpus(corpus_path, std::ios::binary | std::ios::trunc);
    TinyCorpus gen(vocab_size * 4);
    const int sentences = std::max(4000, vocab_size * 16);
    for (int i = 0; i < sentences; ++i) corpus << gen.NextSentence() << '\n';
    corpus.close();
    if (!corpus) return absl::InternalError(absl::StrCat(corpus_path.string(), ": write failed"));
  }
  // Relative paths from inside `work`: the model records its TrainerSpec, which must not depend
  // on where it was trained.
  TV_RETURN_IF_ERROR(spm::RunSpmTrain(
      {
          "--input=corpus.txt",
          "--model_prefix=spiece",
          "--model_type=unigram",
          absl::StrCat("--vocab_size=", vocab_size),
          "--pad_id=0",
          "--eos_id=1",
          "--unk_id=2",
          "--bos_id=-1",
          "--normalization_rule_name=nmt_nfkc",
          "--byte_fallback=true",
          "--character_coverage=1.0",
          "--num_threads=1",
          "--shuffle_input_sentence=false",
          "--random_seed=1234",
          "--minloglevel=2",
      },
      work.string()));
  const fs::path trained = work / "spiece.model";
  // Check what we wrote before publishing it.
  TV_ASSIGN_OR_RETURN(std::unique_ptr<spm::Model> model, spm::Model::Load(trained.string()));
  if (model->piece_size() != vocab_size || model->eos_id() != Tokenizer::kEosId ||
      model->pad_id() != Tokenizer::kPadId) {
    return absl::InternalError(absl::StrCat("spm_train produced ", model->piece_size(),
                                            " pieces (eos ", model->eos_id(), ", pad ",
                                            model->pad_id(), "), wanted ", vocab_size));
  }
  const fs::path out = fs::path(dir) / "spiece.model";
  fs::rename(trained, out, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(out.string(), ": cannot write: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace turbovid::engine
