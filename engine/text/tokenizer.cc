// Tokenizer over our SentencePiece unigram reader and prompt cleaning (docs/model-math.md §4.4); tiny
// tokenizers for tests are trained in engine/testing/tiny_tokenizer.cc.
#include "engine/text/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

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

}  // namespace turbovid::engine
