// CpuBackend: host allocation, dtype conversion on upload/download, op table assembly.
#include "engine/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

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
}

absl::StatusOr<Tensor> CpuBackend::Allocate(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative dim in ", ShapeString(shape)));
  }
  Tensor t = Tensor::Zeros(dtype, std::move(shape));
  // Count the bytes while the storage lives: its owner is wrapped by one that keeps the heap
  // buffer alive and subtracts the bytes when the last reference goes.
  Storage& storage = *t.storage();
  const int64_t bytes = static_cast<int64_t>(storage.bytes);
  {
    std::lock_guard<std::mutex> lock(live_->mu);
    live_->in_use += bytes;
    live_->peak = std::max(live_->peak, live_->in_use);
  }
  storage.owner =
      std::shared_ptr<void>(storage.data, [buffer = storage.owner, live = live_, bytes](void*) {
        std::lock_guard<std::mutex> lock(live->mu);
        live->in_use -= bytes;
      });
  return t;
}

MemoryStats CpuBackend::memory_stats() const {
  std::lock_guard<std::mutex> lock(live_->mu);
  MemoryStats s;
  s.activation_in_use = live_->in_use;
  s.activation_peak = live_->peak;
  return s;
}

void CpuBackend::ResetPeakMemory() {
  std::lock_guard<std::mutex> lock(live_->mu);
  live_->peak = live_->in_use;
}

absl::StatusOr<Tensor> CpuBackend::Upload(const Tensor& host, DType dtype) {
  if (host.dtype() == dtype) return host.Clone();
  if (dtype == DType::kF32) return ToF32(host);
  if (dtype == DType::kF64) return ToF64(host);
  return absl::UnimplementedError(absl::StrCat("cpu upload ", host.Describe(), " as ", std::string(DTypeName(dtype))));
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
