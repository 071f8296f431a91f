// umT5 tokenizer: SentencePiece unigram model plus Wan's prompt cleaning (spec/wan.md §5.4).
// Abseil-free on purpose: Debian's sentencepiece_processor.h defines its own absl::string_view,
// so this header and tokenizer.cc never see Abseil; text_encoder.h holds the absl::Status API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace turbovid::engine {

// Error of the Abseil-free text layer; codes map one to one onto absl::StatusCode.
struct TextError {
  enum class Code { kInvalidArgument, kNotFound, kDataLoss, kInternal };
  Code code = Code::kInternal;
  std::string message;
};

// Wan's "whitespace" cleaning without ftfy: curly quotes straightened (ftfy's default
// uncurl_quotes), HTML entities unescaped twice, whitespace runs (Unicode \s) collapsed to one
// space, ends stripped. Input and output are UTF-8.
std::string CleanPrompt(const std::string& text);

class Tokenizer {
 public:
  static constexpr int kPadId = 0;
  static constexpr int kEosId = 1;
  static constexpr int kMaxTokens = 512;  // including the EOS

  ~Tokenizer();
  // Loads `<dir>/spiece.model`; nullptr and `*error` set on failure.
  static std::unique_ptr<Tokenizer> Load(const std::string& dir, TextError* error);

  // CleanPrompt(text) → pieces → ids, EOS appended, truncated to `max_tokens` total with the EOS
  // kept last (HF truncation=True, add_special_tokens=True). False and `*error` on failure.
  bool Encode(const std::string& text, std::vector<int64_t>* ids, TextError* error,
              int max_tokens = kMaxTokens) const;

  int vocab_size() const;

 private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// Trains a small unigram SentencePiece model (pad 0, eos 1, unk 2, no bos) of exactly
// `vocab_size` pieces on a generated English corpus and writes `<dir>/spiece.model`, for tiny
// test checkpoints. Deterministic. False and `*error` on failure.
bool TrainTinyTokenizer(const std::string& dir, int vocab_size, TextError* error);

}  // namespace turbovid::engine
