// Reference encoder for spm_parity_test: a thin wrapper over libsentencepiece. Standard types
// only, so that neither side of the test sees the other's headers (Debian's
// sentencepiece_processor.h declares its own absl::string_view, which clashes with Abseil's).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace turbovid::engine::spm_ref {

class RefProcessor {
 public:
  virtual ~RefProcessor() = default;
  // SentencePieceProcessor::Encode(text, &ids); false and `*error` on failure.
  virtual bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const = 0;
  virtual std::string IdToPiece(int id) const = 0;
  virtual int PieceSize() const = 0;
  virtual int EosId() const = 0;
};

// Loads `path` with libsentencepiece; nullptr and `*error` on failure.
std::unique_ptr<RefProcessor> LoadRef(const std::string& path, std::string* error);

}  // namespace turbovid::engine::spm_ref
