// SentencePiece unigram model reader, normalizer and encoder (see spm_model.h).
#include "engine/text/spm_model.h"

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::spm {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581
constexpr float kUnkPenalty = 10.0f;
constexpr int kMaxCharsmapResults = 32;  // the normalizer looks at this many trie matches
constexpr uint64_t kMaxModelBytes = uint64_t{1} << 30;

absl::Status Corrupt(const std::string& what) {
  return absl::DataLossError(absl::StrCat("sentencepiece model: ", what));
}

// Protobuf wire-format cursor. Every read is bounds checked; false on malformed data.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }

  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int i = 0; i < 10; ++i) {
      if (pos_ >= data_.size()) return false;
      const uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      r |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return false;  // more than 10 bytes
  }
  bool Fixed32(uint32_t* v) {
    if (data_.size() - pos_ < 4) return false;
    uint32_t r = 0;
    for (int i = 3; i >= 0; --i) r = (r << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += 4;
    *v = r;
    return true;
  }
  bool Bytes(std::string_view* v) {
    uint64_t n = 0;
    if (!Varint(&n) || n > data_.size() - pos_) return false;
    *v = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Tag(uint32_t* field, uint32_t* wire_type) {
    uint64_t t = 0;
    if (!Varint(&t) || t > 0xFFFFFFFFu) return false;
    *field = static_cast<uint32_t>(t >> 3);
    *wire_type = static_cast<uint32_t>(t & 7);
    return *field != 0;
  }
  bool Skip(uint32_t wire_type) {
    uint64_t v = 0;
    std::string_view s;
    switch (wire_type) {
      case 0:
        return Varint(&v);
      case 1:
        if (data_.size() - pos_ < 8) return false;
        pos_ += 8;
        return true;
      case 2:
        return Bytes(&s);
      case 5:
        if (data_.size() - pos_ < 4) return false;
        pos_ += 4;
        return true;
      default:
        return false;  // groups (3, 4) never occur in model files; 6, 7 are invalid
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

constexpr uint32_t kVarint = 0, kLen = 2, kFixed32 = 5;

// Walks the fields of one message: on_field(field, wire_type, reader) returns 1 when it consumed
// the value, 0 to skip it as unknown, -1 on a malformed value.
template <typename F>
absl::Status ForEachField(std::string_view data, const char* what, F&& on_field) {
  WireReader r(data);
  while (!r.done()) {
    uint32_t field = 0, wt = 0;
    if (!r.Tag(&field, &wt)) return Corrupt(absl::StrCat(what, ": bad field tag"));
    const int got = on_field(field, wt, r);
    if (got < 0) return Corrupt(absl::StrCat(what, ": bad value of field ", field));
    if (got == 0 && !r.Skip(wt)) {
      return Corrupt(absl::StrCat(what, ": cannot skip field ", field, " (wire type ", wt, ")"));
    }
  }
  return absl::OkStatus();
}

int ReadInt32(WireReader& r, int* out) {
  uint64_t v = 0;
  if (!r.Varint(&v)) return -1;
  *out = static_cast<int32_t>(static_cast<uint32_t>(v));  // protobuf truncates int32 varints
  return 1;
}
int ReadBool(WireReader& r, bool* out) {
  uint64_t v = 0;
  if (!r.Varint(&v)) return -1;
  *out = v != 0;
  return 1;
}
int ReadString(WireReader& r, std::string* out) {
  std::string_view s;
  if (!r.Bytes(&s)) return -1;
  out->assign(s.data(), s.size());
  return 1;
}
// proto2 closed enum: values outside [lo, hi] leave the field unchanged.
int ReadEnum(WireReader& r, int lo, int hi, int* out) {
  int v = 0;
  if (ReadInt32(r, &v) < 0) return -1;
  if (v >= lo && v <= hi) *out = v;
  return 1;
}

absl::Status ParsePiece(std::string_view data, Piece* p) {
  return ForEachField(data, "piece", [&](uint32_t field, uint32_t wt, WireReader& r) -> int {
    if (field == 1 && wt == kLen) return ReadString(r, &p->text);
    if (field == 2 && wt == kFixed32) {
      uint32_t bits = 0;
      if (!r.Fixed32(&bits)) return -1;
      float f = 0.f;
      static_assert(sizeof(f) == sizeof(bits));
      std::memcpy(&f, &bits, sizeof(f));
      p->score = f;
      return 1;
    }
    if (field == 3 && wt == kVarint) {
      int t = static_cast<int>(p->type);
      const int got = ReadEnum(r, 1, 6, &t);
      p->type = static_cast<PieceType>(t);
      return got;
    }
    return 0;
  });
}

absl::Status ParseTrainerSpec(std::string_view data, TrainerSpec* t) {
  return ForEachField(data, "trainer_spec", [&](uint32_t field, uint32_t wt, WireReader& r) -> int {
    if (wt == kVarint) {
      switch (field) {
        case 3:
          return ReadEnum(r, 1, 4, &t->model_type);
        case 4:
          return ReadInt32(r, &t->vocab_size);
        case 24:
          return ReadBool(r, &t->treat_whitespace_as_suffix);
        case 35:
          return ReadBool(r, &t->byte_fallback);
        case 40:
          return ReadInt32(r, &t->unk_id);
        case 41:
          return ReadInt32(r, &t->bos_id);
        case 42:
          return ReadInt32(r, &t->eos_id);
        case 43:
          return ReadInt32(r, &t->pad_id);
        default:
          return 0;
      }
    }
    if (wt == kLen) {
      switch (field) {
        case 44:
          return ReadString(r, &t->unk_surface);
        case 45:
          return ReadString(r, &t->unk_piece);
        case 46:
          return ReadString(r, &t->bos_piece);
        case 47:
          return ReadString(r, &t->eos_piece);
        case 48:
          return ReadString(r, &t->pad_piece);
        default:
          return 0;
      }
    }
    return 0;
  });
}

absl::Status ParseNormalizerSpec(std::string_view data, NormalizerSpec* n) {
  return ForEachField(data, "normalizer_spec",
                      [&](uint32_t field, uint32_t wt, WireReader& r) -> int {
                        if (field == 1 && wt == kLen) return ReadString(r, &n->name);
                        if (field == 2 && wt == kLen)
                          return ReadString(r, &n->precompiled_charsmap);
                        if (field == 3 && wt == kVarint) return ReadBool(r, &n->add_dummy_prefix);
                        if (field == 4 && wt == kVarint) {
                          return ReadBool(r, &n->remove_extra_whitespaces);
                        }
                        if (field == 5 && wt == kVarint) return ReadBool(r, &n->escape_whitespaces);
                        return 0;
                      });
}

// Byte length of the UTF-8 character starting with `lead`, from its high nibble (SentencePiece's
// rule: continuation and invalid lead bytes count as one byte).
int OneCharLen(char lead) {
  static constexpr int kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<unsigned char>(lead) >> 4];
}

// Length of a valid UTF-8 character at the start of `s` (strict: no overlongs, surrogates or
// values past U+10FFFF), or 0 when it is malformed.
size_t ValidCharLen(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto trail = [&](size_t i) { return (b(i) & 0xC0) == 0x80; };
  const auto valid_cp = [](uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); };
  if (b(0) < 0x80) return 1;
  if (s.size() >= 2 && (b(0) & 0xE0) == 0xC0) {
    const uint32_t cp = ((b(0) & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    return trail(1) && cp >= 0x80 && valid_cp(cp) ? 2 : 0;
  }
  if (s.size() >= 3 && (b(0) & 0xF0) == 0xE0) {
    const uint32_t cp = ((b(0) & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    return trail(1) && trail(2) && cp >= 0x800 && valid_cp(cp) ? 3 : 0;
  }
  if (s.size() >= 4 && (b(0) & 0xF8) == 0xF0) {
    const uint32_t cp =
        ((b(0) & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    return trail(1) && trail(2) && trail(3) && cp >= 0x10000 && valid_cp(cp) ? 4 : 0;
  }
  return 0;
}

// darts-clone double-array unit fields.
bool UnitHasLeaf(uint32_t u) { return ((u >> 8) & 1) == 1; }
uint32_t UnitValue(uint32_t u) { return u & 0x7FFFFFFFu; }
uint32_t UnitLabel(uint32_t u) { return u & ((1u << 31) | 0xFFu); }
uint32_t UnitOffset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

std::string BytePiece(int b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
  return buf;
}

}  // namespace

absl::StatusOr<ModelProto> ParseModelProto(std::string_view bytes) {
  ModelProto m;
  TV_RETURN_IF_ERROR(
      ForEachField(bytes, "model", [&](uint32_t field, uint32_t wt, WireReader& r) -> int {
        if (wt != kLen || field < 1 || field > 3) return 0;
        std::string_view sub;
        if (!r.Bytes(&sub)) return -1;
        absl::Status s;
        if (field == 1) {
          m.pieces.emplace_back();
          s = ParsePiece(sub, &m.pieces.back());
        } else if (field == 2) {
          s = ParseTrainerSpec(sub, &m.trainer_spec);
        } else {
          s = ParseNormalizerSpec(sub, &m.normalizer_spec);
        }
        return s.ok() ? 1 : -1;
      }));
  return m;
}

// ---------------------------------------------------------------------------------------------
// PrefixIndex

int PrefixIndex::Build(const std::vector<std::string>* storage, std::vector<int> ids) {
  storage_ = storage;
  ids_ = std::move(ids);
  std::sort(ids_.begin(), ids_.end(),
            [&](int a, int b) { return (*storage_)[a] < (*storage_)[b]; });
  for (size_t i = 1; i < ids_.size(); ++i) {
    if (key(i - 1) == key(i)) return ids_[i];
  }
  return -1;
}

int PrefixIndex::Find(std::string_view s) const {
  size_t a = 0, b = ids_.size();
  while (a < b) {
    const size_t m = a + (b - a) / 2;
    if (std::string_view(key(m)) < s)
      a = m + 1;
    else
      b = m;
  }
  return a < ids_.size() && key(a) == s ? ids_[a] : -1;
}

// ---------------------------------------------------------------------------------------------
// Normalizer

absl::StatusOr<Normalizer> Normalizer::Create(const NormalizerSpec& spec,
                                              bool treat_whitespace_as_suffix,
                                              const std::vector<std::string>* storage,
                                              std::vector<int> user_defined) {
  Normalizer n;
  n.spec_ = spec;
  n.spec_.precompiled_charsmap.clear();
  n.treat_whitespace_as_suffix_ = treat_whitespace_as_suffix;
  const std::string& blob = spec.precompiled_charsmap;
  if (!blob.empty()) {
    if (blob.size() <= 4) return Corrupt("precompiled_charsmap shorter than its header");
    uint32_t trie_bytes = 0;
    for (int i = 3; i >= 0; --i) trie_bytes = (trie_bytes << 8) | static_cast<uint8_t>(blob[i]);
    if (trie_bytes >= blob.size() || trie_bytes > blob.size() - 4) {
      return Corrupt(absl::StrCat("precompiled_charsmap trie of ", trie_bytes,
                                  " bytes exceeds the blob of ", blob.size()));
    }
    const size_t units = trie_bytes / 4;
    if (units == 0) return Corrupt("precompiled_charsmap has an empty trie");
    n.units_.resize(units);
    for (size_t u = 0; u < units; ++u) {
      uint32_t v = 0;
      for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(blob[4 + 4 * u + i]);
      n.units_[u] = v;
    }
    n.replacements_ = blob.substr(4 + static_cast<size_t>(trie_bytes));
  }
  if (storage != nullptr && !user_defined.empty()) {
    n.user_defined_.Build(storage, std::move(user_defined));
  }
  return n;
}

absl::Status Normalizer::NormalizePrefix(std::string_view input, std::string_view* out,
                                         size_t* consumed) const {
  // User-defined symbols pass through untouched, longest first.
  if (!user_defined_.empty()) {
    size_t longest = 0;
    user_defined_.ForEachPrefix(input, 0, [&](size_t len, int) { longest = len; });
    if (longest > 0) {
      *out = input.substr(0, longest);
      *consumed = longest;
      return absl::OkStatus();
    }
  }
  // Longest charsmap rule (among the first kMaxCharsmapResults matches along the path).
  size_t longest = 0;
  uint32_t value = 0;
  if (!units_.empty()) {
    size_t pos = UnitOffset(units_[0]);
    int matches = 0;
    for (size_t i = 0; i < input.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(input[i]);
      pos ^= c;
      if (pos >= units_.size()) break;
      const uint32_t unit = units_[pos];
      if (UnitLabel(unit) != c) break;
      pos ^= UnitOffset(unit);
      if (UnitHasLeaf(unit)) {
        if (pos >= units_.size()) return Corrupt("precompiled_charsmap leaf out of range");
        if (matches < kMaxCharsmapResults) {
          longest = i + 1;
          value = UnitValue(units_[pos]);
        }
        ++matches;
      }
    }
  }
  if (longest == 0) {
    const size_t len = ValidCharLen(input);
    if (len == 0) {
      *out = "\xEF\xBF\xBD";  // U+FFFD for each malformed byte
      *consumed = 1;
    } else {
      *out = input.substr(0, len);
      *consumed = len;
    }
    return absl::OkStatus();
  }
  if (value >= replacements_.size()) {
    return Corrupt(absl::StrCat("precompiled_charsmap replacement offset ", value,
                                " past the table of ", replacements_.size(), " bytes"));
  }
  const size_t end = replacements_.find('\0', value);
  if (end == std::string::npos) return Corrupt("precompiled_charsmap replacement not terminated");
  *out = std::string_view(replacements_).substr(value, end - value);
  *consumed = longest;
  return absl::OkStatus();
}

absl::Status Normalizer::Normalize(std::string_view input, std::string* normalized) const {
  normalized->clear();
  std::string_view piece;
  size_t used = 0;
  if (spec_.remove_extra_whitespaces) {  // leading whitespace
    while (!input.empty()) {
      TV_RETURN_IF_ERROR(NormalizePrefix(input, &piece, &used));
      if (piece != " ") break;
      input.remove_prefix(used);
    }
  }
  if (input.empty()) return absl::OkStatus();
  normalized->reserve(input.size() * 3);
  const auto add_space = [&] {
    if (spec_.escape_whitespaces) {
      normalized->append(kSpaceSymbol);
    } else {
      normalized->push_back(' ');
    }
  };
  if (!treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) add_space();
  bool prev_space = spec_.remove_extra_whitespaces;
  while (!input.empty()) {
    TV_RETURN_IF_ERROR(NormalizePrefix(input, &piece, &used));
    while (prev_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    if (!piece.empty()) {
      for (char c : piece) {
        if (spec_.escape_whitespaces && c == ' ') {
          normalized->append(kSpaceSymbol);
        } else {
          normalized->push_back(c);
        }
      }
      prev_space = piece.back() == ' ';
    }
    input.remove_prefix(used);
    if (!spec_.remove_extra_whitespaces) prev_space = false;
  }
  if (spec_.remove_extra_whitespaces) {  // trailing whitespace
    const std::string_view space = spec_.escape_whitespaces ? kSpaceSymbol : " ";
    while (normalized->size() >= space.size() &&
           std::string_view(*normalized).substr(normalized->size() - space.size()) == space) {
      normalized->resize(normalized->size() - space.size());
    }
  }
  if (treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) add_space();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Model

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": sentencepiece model not found"));
  }
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxModelBytes) {
    return absl::DataLossError(absl::StrCat(path, ": unreadable or oversized model"));
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  auto model = FromSerialized(bytes);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat(path, ": ", std::string(model.status().message())));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromSerialized(std::string_view bytes) {
  TV_ASSIGN_OR_RETURN(ModelProto proto, ParseModelProto(bytes));
  return FromProto(std::move(proto));
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromProto(ModelProto proto) {
  if (proto.trainer_spec.model_type != 1) {
    static constexpr const char* kNames[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    return absl::UnimplementedError(absl::StrCat(
        "sentencepiece model type ", kNames[proto.trainer_spec.model_type], " (only UNIGRAM)"));
  }
  if (proto.pieces.empty()) return Corrupt("no pieces");
  std::unique_ptr<Model> m(new Model());
  const size_t n = proto.pieces.size();
  if (n > static_cast<size_t>(INT32_MAX)) return Corrupt("too many pieces");
  m->pieces_.reserve(n);
  m->scores_.reserve(n);
  m->types_.reserve(n);
  std::vector<int> normal, all_normal, reserved, user_defined;
  std::array<std::string, 256> byte_names;
  for (int b = 0; b < 256; ++b) byte_names[b] = BytePiece(b);
  std::array<bool, 256> byte_found{};
  m->min_score_ = FLT_MAX;
  m->max_score_ = FLT_MIN;  // sic: SentencePiece starts from the smallest positive float
  for (size_t i = 0; i < n; ++i) {
    Piece& p = proto.pieces[i];
    const int id = static_cast<int>(i);
    if (p.text.empty()) return Corrupt(absl::StrCat("piece ", id, " is empty"));
    switch (p.type) {
      case PieceType::kNormal:
        m->min_score_ = std::min(m->min_score_, p.score);
        m->max_score_ = std::max(m->max_score_, p.score);
        normal.push_back(id);
        all_normal.push_back(id);
        break;
      case PieceType::kUserDefined:
        normal.push_back(id);
        all_normal.push_back(id);
        user_defined.push_back(id);
        break;
      case PieceType::kUnused:
        all_normal.push_back(id);
        break;
      case PieceType::kUnknown:
        if (m->unk_id_ >= 0) return Corrupt("more than one unknown piece");
        m->unk_id_ = id;
        reserved.push_back(id);
        break;
      case PieceType::kControl:
        reserved.push_back(id);
        break;
      case PieceType::kByte: {
        if (!proto.trainer_spec.byte_fallback) {
          return Corrupt(absl::StrCat("byte piece ", p.text, " but byte_fallback is off"));
        }
        const auto it = std::find(byte_names.begin(), byte_names.end(), p.text);
        if (it == byte_names.end()) return Corrupt(absl::StrCat("bad byte piece ", p.text));
        byte_found[it - byte_names.begin()] = true;
        reserved.push_back(id);
        break;
      }
    }
    m->pieces_.push_back(std::move(p.text));
    m->scores_.push_back(p.score);
    m->types_.push_back(p.type);
  }
  proto.pieces.clear();
  if (m->unk_id_ < 0) return Corrupt("no unknown piece");
  if (proto.trainer_spec.byte_fallback &&
      std::find(byte_found.begin(), byte_found.end(), false) != byte_found.end()) {
    return Corrupt("byte_fallback is on but not all 256 byte pieces exist");
  }
  if (all_normal.empty()) return Corrupt("no normal pieces");
  int dup = m->all_normal_.Build(&m->pieces_, all_normal);
  if (dup < 0) dup = m->reserved_.Build(&m->pieces_, reserved);
  if (dup >= 0) return Corrupt(absl::StrCat("piece \"", m->pieces_[dup], "\" defined twice"));
  m->normal_.Build(&m->pieces_, std::move(normal));
  for (int b = 0; b < 256; ++b) m->byte_ids_[b] = m->PieceToId(byte_names[b]);
  TV_ASSIGN_OR_RETURN(
      Normalizer normalizer,
      Normalizer::Create(proto.normalizer_spec, proto.trainer_spec.treat_whitespace_as_suffix,
                         &m->pieces_, std::move(user_defined)));
  m->normalizer_ = std::make_unique<Normalizer>(std::move(normalizer));
  m->proto_ = std::move(proto);
  return m;
}

int Model::PieceToId(std::string_view piece) const {
  int id = reserved_.Find(piece);
  if (id < 0) id = all_normal_.Find(piece);
  return id < 0 ? unk_id_ : id;
}

int Model::ControlId(const std::string& piece) const {
  const int id = PieceToId(piece);
  return types_[id] == PieceType::kControl ? id : -1;
}
int Model::eos_id() const { return ControlId(proto_.trainer_spec.eos_piece); }
int Model::pad_id() const { return ControlId(proto_.trainer_spec.pad_piece); }
int Model::bos_id() const { return ControlId(proto_.trainer_spec.bos_piece); }

absl::Status Model::Normalize(std::string_view text, std::string* normalized) const {
  return normalizer_->Normalize(text, normalized);
}

absl::Status Model::Encode(std::string_view text, std::vector<int>* ids) const {
  ids->clear();
  std::string normalized;
  TV_RETURN_IF_ERROR(normalizer_->Normalize(text, &normalized));
  Viterbi(normalized, ids);
  return absl::OkStatus();
}

void Model::Viterbi(std::string_view text, std::vector<int>* ids) const {
  if (text.empty()) return;
  // Best path ending at each byte position; positions are in bytes of `text`. The arithmetic
  // types follow SentencePiece's (piece candidates in double, stored as float) so that ties and
  // near-ties resolve identically.
  struct Best {
    int id = -1;
    float score = 0.f;
    int start = -1;
  };
  const int size = static_cast<int>(text.size());
  const float unk_score = min_score_ - kUnkPenalty;
  std::vector<Best> best(static_cast<size_t>(size) + 1);
  for (int start = 0; start < size;) {
    const float till_here = best[start].score;
    const int mblen = std::min(OneCharLen(text[start]), size - start);
    bool has_single = false;
    normal_.ForEachPrefix(text, static_cast<size_t>(start), [&](size_t length, int id) {
      Best& target = best[start + length];
      const double score = types_[id] == PieceType::kUserDefined
                               ? static_cast<double>(static_cast<float>(length) * max_score_) - 0.1
                               : static_cast<double>(scores_[id]);
      const double candidate = score + static_cast<double>(till_here);
      if (target.start == -1 || candidate > static_cast<double>(target.score)) {
        target.score = static_cast<float>(candidate);
        target.start = start;
        target.id = id;
      }
      if (length == static_cast<size_t>(mblen)) has_single = true;
    });
    if (!has_single) {
      Best& target = best[start + mblen];
      const float candidate = unk_score + till_here;
      if (target.start == -1 || candidate > target.score) {
        target.score = candidate;
        target.start = start;
        target.id = unk_id_;
      }
    }
    start += mblen;
  }
  struct Span {
    int start, end, id;
  };
  std::vector<Span> path;
  for (int end = size; end > 0;) {
    const Best& node = best[end];
    if (node.start < 0 || node.start >= end) break;  // unreachable for valid tries
    path.push_back({node.start, end, node.id});
    end = node.start;
  }
  std::reverse(path.begin(), path.end());
  const bool byte_fallback = proto_.trainer_spec.byte_fallback;
  bool prev_unk = false;
  for (const Span& s : path) {
    const bool unk = types_[s.id] == PieceType::kUnknown;
    if (unk && byte_fallback) {
      for (int i = s.start; i < s.end; ++i) {
        ids->push_back(byte_ids_[static_cast<unsigned char>(text[i])]);
      }
    } else if (!(unk && prev_unk)) {  // runs of unknown pieces merge into one
      ids->push_back(s.id);
    }
    prev_unk = unk;
  }
}

}  // namespace turbovid::engine::spm
