// The CPU reference backend: fp32, plain loops over ParallelFor, written to be read.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "engine/core/backend.h"
#include "engine/core/op_checks.h"

namespace turbovid::engine {

std::unique_ptr<Backend> MakeCpuBackend();

namespace cpu {
// Op families, one file each; each registers its ops into the backend table.
class CpuBackend;
void RegisterBasicOps(CpuBackend& backend);      // basic_ops.cc
void RegisterAttentionOps(CpuBackend& backend);  // attention_ops.cc (dense attention)
void RegisterSlaOps(CpuBackend& backend);        // sla_ops.cc
void RegisterSageSlaOps(CpuBackend& backend);    // sagesla_ops.cc
void RegisterQuantOps(CpuBackend& backend);      // quant_ops.cc
void RegisterConvOps(CpuBackend& backend);       // conv_ops.cc
void RegisterVideoOps(CpuBackend& backend);      // video_ops.cc (decoded video → I420)

class CpuBackend : public Backend {
 public:
  CpuBackend();
  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }
  DType compute_dtype() const override { return DType::kF32; }
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override;
  absl::StatusOr<Tensor> Upload(const Tensor& host, DType dtype) override;
  absl::StatusOr<Tensor> Download(const Tensor& t) override;
  // Live and peak bytes of Allocate'd tensors (activation_*: the activations a device arena would
  // hold, which engine/pipeline/activation_plan_test.cc holds the activation estimate against),
  // and of those plus uploads (in_use, peak: what a device would hold, checked against the
  // memory budget, Backend::SetMemoryLimit).
  MemoryStats memory_stats() const override;
  void ResetPeakMemory() override;

  using Backend::Register;
  using Backend::RegisterFn;

 private:
  // Shared with the release hook of every allocated tensor, which may outlive the backend.
  struct LiveBytes {
    std::mutex mu;
    int64_t in_use = 0;  // activations (Allocate)
    int64_t peak = 0;
    int64_t all_in_use = 0;  // activations and uploads
    int64_t all_peak = 0;
  };
  // Counts `t`'s bytes (activation or upload) while its storage lives; fails, counting nothing,
  // when they would pass the memory budget.
  absl::Status Track(Tensor& t, bool activation, const char* what);
  std::shared_ptr<LiveBytes> live_ = std::make_shared<LiveBytes>();
};

// Shared argument checks for CPU op implementations; errors name the op and the tensor.
absl::Status ExpectF32(const std::string& op, const std::string& what, const Tensor* t);
using ::turbovid::engine::ExpectShape;  // engine/core/op_checks.h
}  // namespace cpu
}  // namespace turbovid::engine
