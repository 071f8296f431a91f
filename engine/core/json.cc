// Recursive-descent JSON parser (see json.h).
#include "engine/core/json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace turbovid::engine {

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  absl::StatusOr<Json> ParseDocument() {
    Json value;
    absl::Status status = ParseValue(value, 0);
    if (!status.ok()) return status;
    SkipSpace();
    if (pos_ != text_.size()) return Error("trailing characters");
    return value;
  }

 private:
  static constexpr int kMaxDepth = 64;

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("json: ", std::string(what), " at offset ", pos_));
  }
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  absl::Status ParseValue(Json& out, int depth) {
    if (depth > kMaxDepth) return Error("nesting too deep");
    SkipSpace();
    if (pos_ >= text_.size()) return Error("unexpected end");
    char c = text_[pos_];
    if (c == '{') return ParseObject(out, depth);
    if (c == '[') return ParseArray(out, depth);
    if (c == '"') {
      out.type_ = Json::Type::kString;
      return ParseString(out.string_);
    }
    if (Consume("true")) {
      out.type_ = Json::Type::kBool;
      out.bool_ = true;
      return absl::OkStatus();
    }
    if (Consume("false")) {
      out.type_ = Json::Type::kBool;
      return absl::OkStatus();
    }
    if (Consume("null")) return absl::OkStatus();
    return ParseNumber(out);
  }

  absl::Status ParseObject(Json& out, int depth) {
    out.type_ = Json::Type::kObject;
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected object key");
      std::string key;
      if (auto s = ParseString(key); !s.ok()) return s;
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      Json value;
      if (auto s = ParseValue(value, depth + 1); !s.ok()) return s;
      if (!out.object_.emplace(std::move(key), std::move(value)).second) {
        return Error("duplicate object key");
      }
      SkipSpace();
      if (pos_ >= text_.size()) return Error("unterminated object");
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (text_[pos_] == '}') {
        ++pos_;
        return absl::OkStatus();
      }
      return Error("expected ',' or '}'");
    }
  }

  absl::Status ParseArray(Json& out, int depth) {
    out.type_ = Json::Type::kArray;
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      Json value;
      if (auto s = ParseValue(value, depth + 1); !s.ok()) return s;
      out.array_.push_back(std::move(value));
      SkipSpace();
      if (pos_ >= text_.size()) return Error("unterminated array");
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (text_[pos_] == ']') {
        ++pos_;
        return absl::OkStatus();
      }
      return Error("expected ',' or ']'");
    }
  }

  static void AppendUtf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  absl::Status ParseHex4(uint32_t& cp) {
    if (pos_ + 4 > text_.size()) return Error("short \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char h = text_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= h - '0';
      else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
      else return Error("bad hex digit");
    }
    return absl::OkStatus();
  }

  absl::Status ParseString(std::string& out) {
    ++pos_;  // opening quote
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return absl::OkStatus();
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (auto s = ParseHex4(cp); !s.ok()) return s;
          if (cp >= 0xD800 && cp < 0xDC00 && Consume("\\u")) {
            uint32_t lo = 0;
            if (auto s = ParseHex4(lo); !s.ok()) return s;
            if (lo < 0xDC00 || lo >= 0xE000) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  absl::Status ParseNumber(Json& out) {
    size_t start = pos_;
    bool integral = true;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    size_t digits = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    if (pos_ == digits) return Error("unexpected character");
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integral = false;
      ++pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    }
    std::string token(text_.substr(start, pos_ - start));
    out.type_ = Json::Type::kNumber;
    out.number_ = std::strtod(token.c_str(), nullptr);
    if (integral) {
      errno = 0;
      long long v = std::strtoll(token.c_str(), nullptr, 10);
      if (errno == 0) {
        out.is_integer_ = true;
        out.integer_ = v;
      }
    }
    return absl::OkStatus();
  }

  std::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<Json> Json::Parse(std::string_view text) { return JsonParser(text).ParseDocument(); }

const Json* Json::Find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  auto it = object_.find(std::string(key));
  return it == object_.end() ? nullptr : &it->second;
}

absl::StatusOr<double> Json::GetNumber(std::string_view key) const {
  const Json* v = Find(key);
  if (v == nullptr || !v->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat("json: missing number '", std::string(key), "'"));
  }
  return v->number();
}

absl::StatusOr<int64_t> Json::GetInt(std::string_view key) const {
  const Json* v = Find(key);
  if (v == nullptr || !v->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat("json: missing integer '", std::string(key), "'"));
  }
  if (v->is_integer()) return v->integer();
  if (std::floor(v->number()) == v->number()) return static_cast<int64_t>(v->number());
  return absl::InvalidArgumentError(absl::StrCat("json: '", std::string(key), "' is not an integer"));
}

absl::StatusOr<std::string> Json::GetString(std::string_view key) const {
  const Json* v = Find(key);
  if (v == nullptr || !v->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("json: missing string '", std::string(key), "'"));
  }
  return v->str();
}

absl::StatusOr<std::vector<int64_t>> Json::GetIntArray(std::string_view key) const {
  const Json* v = Find(key);
  if (v == nullptr || !v->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("json: missing array '", std::string(key), "'"));
  }
  std::vector<int64_t> out;
  for (const Json& e : v->array()) {
    if (!e.is_integer()) {
      return absl::InvalidArgumentError(absl::StrCat("json: '", std::string(key), "' holds a non-integer"));
    }
    out.push_back(e.integer());
  }
  return out;
}

double Json::NumberOr(std::string_view key, double fallback) const {
  const Json* v = Find(key);
  return v != nullptr && v->is_number() ? v->number() : fallback;
}
int64_t Json::IntOr(std::string_view key, int64_t fallback) const {
  const Json* v = Find(key);
  return v != nullptr && v->is_integer() ? v->integer() : fallback;
}
bool Json::BoolOr(std::string_view key, bool fallback) const {
  const Json* v = Find(key);
  return v != nullptr && v->is_bool() ? v->boolean() : fallback;
}
std::string Json::StringOr(std::string_view key, std::string fallback) const {
  const Json* v = Find(key);
  return v != nullptr && v->is_string() ? v->str() : fallback;
}

}  // namespace turbovid::engine
