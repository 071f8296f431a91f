// CpuBackend: host allocation, dtype conversion on upload/download, op table assembly.
#include "engine/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine {

std::unique_ptr<Backend> MakeCpuBackend() { return std::make_unique<cpu::CpuBackend>(); }

namespace cpu {

CpuBackend::CpuBackend() {
  RegisterBasicOps(*this);
  RegisterAttentionOps(*this);
  RegisterSlaOps(*this);
  RegisterSageSlaOps(*this);
  RegisterQuantOps(*this);
  RegisterConvOps(*this);
  RegisterVideoOps(*this);
}

absl::StatusOr<Tensor> CpuBackend::Allocate(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative dim in ", ShapeString(shape)));
  }
  Tensor t = Tensor::Zeros(dtype, std::move(shape));
  TV_RETURN_IF_ERROR(Track(t, /*activation=*/true, "allocate"));
  return t;
}

absl::Status CpuBackend::Track(Tensor& t, bool activation, const char* what) {
  // Count the bytes while the storage lives: its owner is wrapped by one that keeps the heap
  // buffer alive and subtracts the bytes when the last reference goes.
  Storage& storage = *t.storage();
  const int64_t bytes = static_cast<int64_t>(storage.bytes);
  {
    std::lock_guard<std::mutex> lock(live_->mu);
    if (memory_limit() > 0 && live_->all_in_use + bytes > memory_limit()) {
      return OverBudget(bytes, live_->all_in_use,
                        absl::StrCat(what, " ", t.Describe()));
    }
    live_->all_in_use += bytes;
    live_->all_peak = std::max(live_->all_peak, live_->all_in_use);
    if (activation) {
      live_->in_use += bytes;
      live_->peak = std::max(live_->peak, live_->in_use);
    }
  }
  storage.owner = std::shared_ptr<void>(
      storage.data, [buffer = storage.owner, live = live_, bytes, activation](void*) {
        std::lock_guard<std::mutex> lock(live->mu);
        live->all_in_use -= bytes;
        if (activation) live->in_use -= bytes;
      });
  return absl::OkStatus();
}

MemoryStats CpuBackend::memory_stats() const {
  std::lock_guard<std::mutex> lock(live_->mu);
  MemoryStats s;
  s.activation_in_use = live_->in_use;
  s.activation_peak = live_->peak;
  s.in_use = live_->all_in_use;
  s.peak = live_->all_peak;
  return s;
}

void CpuBackend::ResetPeakMemory() {
  std::lock_guard<std::mutex> lock(live_->mu);
  live_->peak = live_->in_use;
  live_->all_peak = live_->all_in_use;
}

absl::StatusOr<Tensor> CpuBackend::Upload(const Tensor& host, DType dtype) {
  // The budget is checked before the copy is made, so an upload that cannot fit allocates nothing.
  const int64_t bytes = NumElements(host.shape()) * static_cast<int64_t>(DTypeSize(dtype));
  if (memory_limit() > 0) {
    std::lock_guard<std::mutex> lock(live_->mu);
    if (live_->all_in_use + bytes > memory_limit()) {
      return OverBudget(bytes, live_->all_in_use,
                        absl::StrCat("upload ", std::string(DTypeName(dtype)), ShapeString(host.shape())));
    }
  }
  Tensor t;
  if (host.dtype() == dtype) {
    t = host.Clone();
  } else if (dtype == DType::kF32) {
    TV_ASSIGN_OR_RETURN(t, ToF32(host));
  } else if (dtype == DType::kF64) {
    TV_ASSIGN_OR_RETURN(t, ToF64(host));
  } else {
    return absl::UnimplementedError(absl::StrCat("cpu upload ", host.Describe(), " as ", std::string(DTypeName(dtype))));
  }
  TV_RETURN_IF_ERROR(Track(t, /*activation=*/false, "upload"));
  return t;
}

absl::StatusOr<Tensor> CpuBackend::Download(const Tensor& t) {
  if (IsHalfFloat(t.dtype())) return ToF32(t);
  return t.Clone();
}

absl::Status ExpectF32(const std::string& op, const std::string& what, const Tensor* t) {
  if (t == nullptr || !t->defined()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is missing"));
  }
  if (t->dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is ", t->Describe(), ", want F32"));
  }
  return absl::OkStatus();
}

}  // namespace cpu
}  // namespace turbovid::engine
