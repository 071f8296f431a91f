// Backend dispatch through the per-backend op table.
#include "engine/core/backend.h"

#include "absl/strings/str_cat.h"

namespace turbovid::engine {

std::string_view OpName(size_t kind) {
  static constexpr std::array<std::string_view, kNumOpKinds> kNames = {
      "linear",    "int8_linear", "layer_norm", "rms_norm",  "rope",
      "attention", "sla",         "unary",      "binary",    "gated_add",
      "embedding", "copy",        "conv3d",     "channel_rms_norm", "upsample2x"};
  return kind < kNames.size() ? kNames[kind] : "?";
}

absl::Status Backend::Run(const Op& op) const {
  const auto& fn = table_[op.index()];
  if (fn == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("backend ", std::string(name()), " has no op ", std::string(OpName(op.index()))));
  }
  return fn(op);
}

}  // namespace turbovid::engine
