// Backend dispatch through the per-backend op table.
#include "engine/core/backend.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine {

std::string_view OpName(size_t kind) {
  static constexpr std::array<std::string_view, kNumOpKinds> kNames = {
      "linear",    "int8_linear", "layer_norm", "rms_norm", "rope",
      "attention", "sla",         "sage_sla",   "unary",    "binary",
      "gated_add", "embedding",   "copy",       "conv3d",   "channel_rms_norm",
      "upsample2x", "row_sum_squares"};
  return kind < kNames.size() ? kNames[kind] : "?";
}

namespace {
class ReadyDownload : public PendingDownload {
 public:
  explicit ReadyDownload(Tensor t) : t_(std::move(t)) {}
  absl::StatusOr<Tensor> Wait() override { return std::move(t_); }

 private:
  Tensor t_;
};
}  // namespace

absl::StatusOr<std::unique_ptr<PendingDownload>> Backend::DownloadAsync(const Tensor& t) {
  TV_ASSIGN_OR_RETURN(Tensor host, Download(t));
  return std::unique_ptr<PendingDownload>(std::make_unique<ReadyDownload>(std::move(host)));
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
