// umT5 tokenizer: SentencePiece unigram model (our own reader, spm_model.h; no libsentencepiece)
// plus Wan's prompt cleaning (docs/model-math.md §4.4).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/text/spm_model.h"

namespace turbovid::engine {

// Wan's "whitespace" cleaning without ftfy: curly quotes straightened (ftfy's default
// uncurl_quotes), HTML entities unescaped twice, whitespace runs (Unicode \s) collapsed to one
// space, ends stripped. Input and output are UTF-8.
std::string CleanPrompt(const std::string& text);

class Tokenizer {
 public:
  static constexpr int kPadId = 0;
  static constexpr int kEosId = 1;
  static constexpr int kMaxTokens = 512;  // including the EOS

  // Loads `<dir>/spiece.model`: NotFound if missing, DataLoss if malformed or its EOS id is not 1,
  // Unimplemented for non-unigram models.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& dir);

  // CleanPrompt(text) → pieces → ids, EOS appended, truncated to `max_tokens` total with the EOS
  // kept last (HF truncation=True, add_special_tokens=True). InvalidArgument for malformed UTF-8.
  absl::StatusOr<std::vector<int64_t>> Encode(const std::string& text,
                                              int max_tokens = kMaxTokens) const;

  int vocab_size() const { return model_->piece_size(); }
  const spm::Model& model() const { return *model_; }

 private:
  explicit Tokenizer(std::unique_ptr<spm::Model> model) : model_(std::move(model)) {}
  std::unique_ptr<spm::Model> model_;
};

}  // namespace turbovid::engine
