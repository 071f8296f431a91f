// libsentencepiece side of spm_parity_test. Must include no Abseil header (see spm_parity_ref.h).
#include "engine/testing/spm_parity_ref.h"

#include <sentencepiece_processor.h>

namespace turbovid::engine::spm_ref {
namespace {

class Impl : public RefProcessor {
 public:
  bool Load(const std::string& path, std::string* error) {
    const auto s = sp_.Load(path);
    if (!s.ok()) *error = s.ToString();
    return s.ok();
  }
  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const override {
    const auto s = sp_.Encode(text, ids);
    if (!s.ok()) *error = s.ToString();
    return s.ok();
  }
  std::string IdToPiece(int id) const override { return sp_.IdToPiece(id); }
  int PieceSize() const override { return sp_.GetPieceSize(); }
  int EosId() const override { return sp_.eos_id(); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::unique_ptr<RefProcessor> LoadRef(const std::string& path, std::string* error) {
  auto impl = std::make_unique<Impl>();
  if (!impl->Load(path, error)) return nullptr;
  return impl;
}

}  // namespace turbovid::engine::spm_ref
