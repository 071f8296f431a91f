// CudaBackend class and helpers shared by the CUDA backend's .cc files (not for model code).
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/phase_profile.h"
#include "engine/cuda/device_pool.h"
#include "kernels/gemm.h"
#include "kernels/kernel_options.h"
#include "kernels/kernel_types.h"

namespace turbovid::engine::cuda {

class CudaBackend : public Backend {
 public:
  CudaBackend() = default;
  ~CudaBackend() override;
  // Creates the cuBLASLt context and registers the ops; call once before use.
  absl::Status Init(int device, const kernels::KernelOptions& options);

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::kCuda; }
  DType compute_dtype() const override { return DType::kBF16; }
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override;
  absl::StatusOr<Tensor> Upload(const Tensor& host, DType dtype) override;
  absl::StatusOr<Tensor> Download(const Tensor& t) override;
  absl::StatusOr<std::unique_ptr<PendingDownload>> DownloadAsync(const Tensor& t) override;
  // Pinned host buffers for downloads, kept for reuse (cudaHostAlloc is slow).
  absl::Status AcquirePinned(size_t bytes, void** ptr, size_t* capacity);
  void ReleasePinned(void* ptr, size_t capacity);
  absl::Status Synchronize() override;
  SageSlaVariant native_sagesla() const override {
    return sm_version_ == 90 && !kernel_options_.portable ? SageSlaVariant::kSm90
                                                          : SageSlaVariant::kSm89;
  }
  MemoryStats memory_stats() const override { return pool_->stats(); }
  void ResetPeakMemory() override { pool_->ResetPeak(); }
  absl::Status ReserveActivations(int64_t bytes) override;
  int64_t AccountedBytes(int64_t bytes) const override {
    return static_cast<int64_t>(DevicePool::RoundUp(static_cast<size_t>(bytes)));
  }
  // Weight streaming (docs/memory.md §4): cudaHostAlloc'd host tensors, and copies on a second,
  // non-blocking stream ordered after the compute stream by an event; WaitFence makes the compute
  // stream wait for the copy's completion event.
  absl::StatusOr<Tensor> AllocatePinned(DType dtype, Shape shape) override;
  absl::Status CopyToHost(const Tensor& device, const Tensor& host) override;
  absl::StatusOr<CopyFence> CopyToDeviceAsync(const std::vector<Tensor>& host,
                                              const std::vector<Tensor>& device) override;
  absl::Status WaitFence(const CopyFence& fence) override;

  // Device tensor whose contents are undefined (callers overwrite every element): an activation,
  // from the arena when it has room.
  absl::StatusOr<Tensor> AllocateUninitialized(DType dtype, Shape shape) override;
  absl::StatusOr<Tensor> AllocateWeight(DType dtype, Shape shape) override {
    return AllocateResident(dtype, std::move(shape));
  }
  // Same, for tensors that outlive the job (weights, caches derived from weights): never in the
  // arena, which must hold only the job's activations to be regrown between jobs.
  absl::StatusOr<Tensor> AllocateResident(DType dtype, Shape shape);

  const kernels::GemmContext& gemm() const { return gemm_; }

  // Per-op profile (TV_CUDA_PROFILE=1): every op is synchronised and timed on the host clock,
  // summed per label (op name, plus shapes for the heavy ops); the table goes to stderr when
  // the backend is destroyed. Off by default: it serialises the GPU.
  bool profiling() const { return profiling_; }
  void AddProfile(const std::string& label, double ms);
  cudaStream_t stream() const { return nullptr; }  // the legacy default stream, for now
  int sm_version() const { return sm_version_; }   // e.g. 90, read once in Init()
  // Kernel-path choices (kernels/kernel_options.h), read from the environment once when the
  // backend is made; tests and benchmarks replace them between ops (SetCudaKernelOptions).
  const kernels::KernelOptions& kernel_options() const { return kernel_options_; }
  void set_kernel_options(const kernels::KernelOptions& options) { kernel_options_ = options; }

  using Backend::RegisterFn;

 private:
  // Copies `bytes` from host memory to device memory through the pinned staging buffers: the CPU
  // fills one buffer while the DMA engine drains the other.
  absl::Status StreamToDevice(const void* host, void* dev, size_t bytes, const std::string& what);

  // Makes this backend's device current on the calling thread (the CUDA current device is
  // per thread; a worker loads on one thread and runs jobs on another).
  void Bind() const { cudaSetDevice(device_); }
  absl::StatusOr<Tensor> AllocateFromPool(DType dtype, Shape shape, DevicePool::Use use);

  kernels::GemmContext gemm_;
  bool profiling_ = false;
  bool arena_enabled_ = true;  // TV_ACTIVATION_ARENA=0: ReserveActivations does nothing
  kernels::KernelOptions kernel_options_;
  PhaseProfile profile_;       // label → ms, calls (TV_CUDA_PROFILE=1)
  int device_ = 0;
  int sm_version_ = 0;
  std::shared_ptr<DevicePool> pool_ = std::make_shared<DevicePool>();
  static constexpr size_t kStagingBytes = size_t{32} << 20;
  std::array<void*, 2> staging_{nullptr, nullptr};  // pinned, allocated on first upload
  std::array<cudaEvent_t, 2> staging_free_{nullptr, nullptr};
  cudaStream_t copy_stream_ = nullptr;  // weight streaming; created on first use
  std::mutex pinned_mu_;
  std::vector<std::pair<size_t, void*>> pinned_free_;  // (capacity, buffer), at most kPinnedKept
  static constexpr size_t kPinnedKept = 4;
};

void RegisterCudaOps(
    CudaBackend& backend);  // cuda_ops.cc: linear, norms, rope, attention, elementwise
void RegisterCudaConvOps(CudaBackend& backend);  // cuda_conv_ops.cc: conv3d, channel norm, upsample
void RegisterCudaSlaOps(CudaBackend& backend);   // cuda_sla_ops.cc: SLA, SageSLA
void RegisterCudaQuantOps(CudaBackend& backend);  // cuda_quant_ops.cc: int8 W8A8 linear
void RegisterCudaVideoOps(CudaBackend& backend);  // cuda_video_ops.cc: decoded video → I420

// Profile label of an op: its name, with the main operand's shape for the heavy ops.
std::string ProfileLabel(size_t kind, const Tensor* main);
template <typename OpT>
const Tensor* ProfileOperand(const OpT& op) {
  if constexpr (requires { op.q; }) {
    return op.q;
  } else if constexpr (requires { op.x; }) {
    return op.x;
  } else {
    return nullptr;
  }
}

// Registers `fn(CudaBackend&, const OpT&)` for OpT on `b` (each family's .cc uses it); wraps it
// in the per-op profile when that is on.
template <typename OpT, typename Fn>
void RegisterOpFn(CudaBackend& b, Fn fn) {
  CudaBackend* self = &b;
  b.RegisterFn<OpT>([self, fn](const OpT& op) -> absl::Status {
    if (!self->profiling()) return fn(*self, op);
    cudaDeviceSynchronize();
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status s = fn(*self, op);
    cudaDeviceSynchronize();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    self->AddProfile(ProfileLabel(OpKindOf<OpT>(), ProfileOperand(op)), ms);
    return s;
  });
}
template <typename OpT>
void RegisterOp(CudaBackend& b, absl::Status (*fn)(CudaBackend&, const OpT&)) {
  RegisterOpFn<OpT>(b, fn);
}

// Argument checks and conversions; errors name the op and the tensor.
absl::Status ExpectDevice(const std::string& op, const std::string& what, const Tensor* t);
absl::StatusOr<kernels::ConstBuf> In(const std::string& op, const std::string& what,
                                     const Tensor* t);
absl::StatusOr<kernels::MutBuf> Out(const std::string& op, const std::string& what, Tensor* t);
absl::Status ExpectDeviceShape(const std::string& op, const std::string& what, const Tensor* t,
                               const Shape& shape);
absl::Status CudaStatus(cudaError_t e, const std::string& op, const std::string& detail);

}  // namespace turbovid::engine::cuda
