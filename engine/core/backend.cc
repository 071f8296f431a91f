// Backend dispatch through the per-backend op table.
#include "engine/core/backend.h"

#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace turbovid::engine {

std::string_view OpName(size_t kind) {
  static constexpr std::array<std::string_view, kNumOpKinds> kNames = {
      "linear",    "int8_linear", "layer_norm", "rms_norm", "rope",
      "attention", "sla",         "sage_sla",   "unary",    "binary",
      "gated_add", "embedding",   "copy",       "conv3d",   "channel_rms_norm",
      "upsample2x", "row_sum_squares", "fp8_linear", "fp8_quantize", "video_to_i420",
      "channel_rms_stats"};
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

absl::Status Backend::OverBudget(int64_t bytes, int64_t in_use, const std::string& what) const {
  const double mib = 1024.0 * 1024.0;
  return absl::ResourceExhaustedError(absl::StrFormat(
      "memory budget: %s needs %.1f MiB with %.1f MiB in use, over the budget of %.1f MiB "
      "(memory_limit_gib %.2f)",
      what, bytes / mib, in_use / mib, memory_limit_ / mib, memory_limit_ / (mib * 1024.0)));
}

namespace {
absl::Status SameLayout(const Tensor& a, const Tensor& b, const char* op) {
  if (!a.defined() || !b.defined() || a.dtype() != b.dtype() || a.nbytes() != b.nbytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": tensors differ (", a.defined() ? a.Describe() : "undefined", " vs ",
        b.defined() ? b.Describe() : "undefined", ")"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<Tensor> Backend::AllocatePinned(DType dtype, Shape shape) {
  return Tensor::Zeros(dtype, std::move(shape));
}

absl::Status Backend::CopyToHost(const Tensor& device, const Tensor& host) {
  TV_RETURN_IF_ERROR(SameLayout(device, host, "copy to host"));
  std::memcpy(host.raw(), device.raw(), host.nbytes());
  return absl::OkStatus();
}

absl::StatusOr<CopyFence> Backend::CopyToDeviceAsync(const std::vector<Tensor>& host,
                                                     const std::vector<Tensor>& device) {
  if (host.size() != device.size()) {
    return absl::InvalidArgumentError(absl::StrCat("copy to device: ", host.size(),
                                                   " host tensors for ", device.size(), " device tensors"));
  }
  for (size_t i = 0; i < host.size(); ++i) {
    TV_RETURN_IF_ERROR(SameLayout(host[i], device[i], "copy to device"));
    std::memcpy(device[i].raw(), host[i].raw(), host[i].nbytes());
  }
  return CopyFence();
}

absl::StatusOr<Tensor> Backend::AllocateWeight(DType dtype, Shape shape) {
  return Upload(Tensor::Zeros(dtype, std::move(shape)), dtype);
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
