// Our own reader and encoder for SentencePiece *unigram* models (spiece.model), so that no process
// links Debian's libsentencepiece (it bundles and exports protobuf-lite 3.14, which breaks any
// process that also links gRPC's libprotobuf). Written from the model format facts:
//  * ModelProto protobuf wire format, parsed by hand (no protobuf library);
//  * NormalizerSpec.precompiled_charsmap: uint32 LE trie size, a darts-clone double-array trie,
//    then the NUL-separated replacement strings;
//  * unigram Viterbi over NORMAL/USER_DEFINED pieces with the UNK penalty, merged unknown runs, or
//    <0xXX> byte pieces when TrainerSpec.byte_fallback is set.
// The ids equal libsentencepiece 0.1.97's SentencePieceProcessor::Encode (see spm_parity_test.cc).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace turbovid::engine::spm {

// ModelProto.SentencePiece.Type.
enum class PieceType : int {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct Piece {
  std::string text;
  float score = 0.f;
  PieceType type = PieceType::kNormal;
};

// The TrainerSpec fields the encoder needs (proto defaults).
struct TrainerSpec {
  int model_type = 1;  // UNIGRAM=1, BPE=2, WORD=3, CHAR=4
  int vocab_size = 8000;
  bool treat_whitespace_as_suffix = false;
  bool byte_fallback = false;
  int unk_id = 0;
  int bos_id = 1;
  int eos_id = 2;
  int pad_id = -1;
  std::string unk_piece = "<unk>";
  std::string bos_piece = "<s>";
  std::string eos_piece = "</s>";
  std::string pad_piece = "<pad>";
  std::string unk_surface = " \xE2\x81\x87 ";
};

struct NormalizerSpec {
  std::string name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct ModelProto {
  std::vector<Piece> pieces;
  TrainerSpec trainer_spec;
  NormalizerSpec normalizer_spec;
};

// Parses a serialized ModelProto. Malformed wire data → DataLoss. Unknown fields are skipped, and
// an unknown enum value leaves the field at its previous value, as protobuf's proto2 parser does.
absl::StatusOr<ModelProto> ParseModelProto(std::string_view bytes);

// Sorted index of byte strings answering "which keys are prefixes of text[start:]" in increasing
// length order (the order a trie walk yields them).
class PrefixIndex {
 public:
  // Indexes the strings (*storage)[id] for id in `ids`, which must be distinct strings. `storage`
  // must outlive the index and stay unchanged.
  // Returns the id of a duplicated string, or -1.
  int Build(const std::vector<std::string>* storage, std::vector<int> ids);
  bool empty() const { return ids_.empty(); }

  // The id of the key equal to `s`, or -1.
  int Find(std::string_view s) const;

  // Calls f(length, id) for every key equal to text.substr(start, length), shortest first.
  template <typename F>
  void ForEachPrefix(std::string_view text, size_t start, F&& f) const;

 private:
  const std::string& key(size_t i) const { return (*storage_)[ids_[i]]; }
  const std::vector<std::string>* storage_ = nullptr;
  std::vector<int> ids_;  // indices into *storage_, sorted by key bytes
};

// NormalizerSpec applied as SentencePiece's normalizer does (charsmap rewrite, whitespace handling,
// user-defined symbols passed through untouched).
class Normalizer {
 public:
  // `user_defined` (may be null or empty) are matched on the raw input before the charsmap.
  static absl::StatusOr<Normalizer> Create(const NormalizerSpec& spec,
                                           bool treat_whitespace_as_suffix,
                                           const std::vector<std::string>* storage,
                                           std::vector<int> user_defined);

  // Normalizes `input` (any bytes; malformed UTF-8 becomes U+FFFD byte by byte).
  absl::Status Normalize(std::string_view input, std::string* normalized) const;

 private:
  Normalizer() = default;
  // The normalized form of the longest rule matching a prefix of `input`, and the bytes consumed.
  absl::Status NormalizePrefix(std::string_view input, std::string_view* out,
                               size_t* consumed) const;

  NormalizerSpec spec_;
  bool treat_whitespace_as_suffix_ = false;
  std::vector<uint32_t> units_;  // darts-clone double array; empty = no charsmap
  std::string replacements_;     // NUL-terminated replacement strings
  PrefixIndex user_defined_;
};

class Model {
 public:
  // Reads `path` (a serialized ModelProto). NotFound if missing, DataLoss if malformed or
  // inconsistent, Unimplemented for non-unigram models.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Model>> FromProto(ModelProto proto);
  static absl::StatusOr<std::unique_ptr<Model>> FromSerialized(std::string_view bytes);

  // Normalized text, as SentencePieceProcessor::Normalize.
  absl::Status Normalize(std::string_view text, std::string* normalized) const;
  // Normalization + Viterbi segmentation → ids, as SentencePieceProcessor::Encode(text, &ids).
  absl::Status Encode(std::string_view text, std::vector<int>* ids) const;

  int piece_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& IdToPiece(int id) const { return pieces_[id]; }
  PieceType type(int id) const { return types_[id]; }
  // Id of `piece`; unk_id() when it is not a piece, like SentencePieceProcessor::PieceToId.
  int PieceToId(std::string_view piece) const;
  int unk_id() const { return unk_id_; }
  // Id of the trainer's eos/pad/bos piece when it is a CONTROL piece, else -1.
  int eos_id() const;
  int pad_id() const;
  int bos_id() const;
  // Trainer and normalizer specs as read; `pieces` is empty (see IdToPiece/type).
  const ModelProto& proto() const { return proto_; }

 private:
  Model() = default;
  int ControlId(const std::string& piece) const;
  // Best segmentation of `normalized` → ids (unknown runs merged or byte-expanded).
  void Viterbi(std::string_view normalized, std::vector<int>* ids) const;

  ModelProto proto_;                 // pieces' texts moved out into pieces_
  std::vector<std::string> pieces_;  // by id
  std::vector<float> scores_;
  std::vector<PieceType> types_;
  PrefixIndex normal_;      // NORMAL + USER_DEFINED pieces (the Viterbi vocabulary)
  PrefixIndex reserved_;    // CONTROL, UNKNOWN, BYTE pieces (PieceToId only)
  PrefixIndex all_normal_;  // NORMAL + USER_DEFINED + UNUSED (PieceToId)
  std::unique_ptr<Normalizer> normalizer_;
  int unk_id_ = -1;
  float min_score_ = 0.f;
  float max_score_ = 0.f;
  std::array<int, 256> byte_ids_{};
};

template <typename F>
void PrefixIndex::ForEachPrefix(std::string_view text, size_t start, F&& f) const {
  size_t lo = 0;
  size_t hi = ids_.size();
  // Invariant: every key in [lo, hi) starts with text[start, start + depth).
  for (size_t depth = 0; start + depth < text.size() && lo < hi; ++depth) {
    if (key(lo).size() == depth) ++lo;  // the key equal to the prefix sorts first; reported
    const unsigned char c = static_cast<unsigned char>(text[start + depth]);
    auto byte_at = [&](size_t i) { return static_cast<unsigned char>(key(i)[depth]); };
    size_t a = lo, b = hi;
    while (a < b) {  // first key with byte >= c
      const size_t m = a + (b - a) / 2;
      if (byte_at(m) < c)
        a = m + 1;
      else
        b = m;
    }
    size_t e = a;
    b = hi;
    while (e < b) {  // first key with byte > c
      const size_t m = e + (b - e) / 2;
      if (byte_at(m) <= c)
        e = m + 1;
      else
        b = m;
    }
    lo = a;
    hi = e;
    if (lo < hi && key(lo).size() == depth + 1) f(depth + 1, ids_[lo]);
  }
}

}  // namespace turbovid::engine::spm
