// Tiny SentencePiece tokenizers for test checkpoints, trained by the spm_train binary (so that no
// libsentencepiece_train is linked into our processes).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace turbovid::engine {

inline constexpr int kMinTinyVocab = 320;  // 3 specials + 256 byte pieces + characters + pieces

// Trains a small unigram SentencePiece model (pad 0, eos 1, unk 2, no bos, nmt_nfkc, byte
// fallback) of exactly `vocab_size` pieces on a generated English corpus by running `spm_train`,
// and writes `<dir>/spiece.model`. Deterministic. InvalidArgument for vocab_size < kMinTinyVocab,
// FailedPrecondition if spm_train is not installed.
absl::Status CreateTinyTokenizer(const std::string& dir, int vocab_size);

}  // namespace turbovid::engine
