// CudaBackend class and helpers shared by the CUDA backend's .cc files (not for model code).
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "kernels/gemm.h"
#include "kernels/kernel_types.h"

namespace turbovid::engine::cuda {

class CudaBackend : public Backend {
 public:
  CudaBackend() = default;
  // Creates the cuBLASLt context and registers the ops; call once before use.
  absl::Status Init();

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::kCuda; }
  DType compute_dtype() const override { return DType::kBF16; }
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override;
  absl::StatusOr<Tensor> Upload(const Tensor& host, DType dtype) override;
  absl::StatusOr<Tensor> Download(const Tensor& t) override;
  absl::Status Synchronize() override;

  const kernels::GemmContext& gemm() const { return gemm_; }
  cudaStream_t stream() const { return nullptr; }  // the legacy default stream, for now
  int sm_version() const { return sm_version_; }     // e.g. 90, read once in Init()

  using Backend::RegisterFn;

 private:
  kernels::GemmContext gemm_;
  int sm_version_ = 0;
};

void RegisterCudaOps(CudaBackend& backend);  // cuda_ops.cc

// Argument checks and conversions; errors name the op and the tensor.
absl::Status ExpectDevice(const std::string& op, const std::string& what, const Tensor* t);
absl::StatusOr<kernels::ConstBuf> In(const std::string& op, const std::string& what, const Tensor* t);
absl::StatusOr<kernels::MutBuf> Out(const std::string& op, const std::string& what, Tensor* t);
absl::Status ExpectDeviceShape(const std::string& op, const std::string& what, const Tensor* t,
                         const Shape& shape);
absl::Status CudaStatus(cudaError_t e, const std::string& op, const std::string& detail);

}  // namespace turbovid::engine::cuda
