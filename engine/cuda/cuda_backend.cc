// CudaBackend: device allocation (activations from the arena, weights and uploads from the caching
// pool: device_pool.h), uploads streamed through pinned staging buffers with dtype conversion on
// the GPU, downloads, and the factory.
#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/cuda/cuda_backend_internal.h"
#include "kernels/elementwise.h"

namespace turbovid::engine {

namespace {
absl::Status ExpectDeviceIndex(int device) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the sticky "no device" error
    return absl::UnavailableError(
        absl::StrCat("cuda backend: no CUDA device (", std::string(cudaGetErrorString(e)), ")"));
  }
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda backend: device ", device, " does not exist (", count, " visible)"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device) {
  TV_ASSIGN_OR_RETURN(const kernels::KernelOptions options, CudaKernelOptionsFromEnv());
  return MakeCudaBackend(device, options);
}

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device,
                                                         const kernels::KernelOptions& options) {
  TV_RETURN_IF_ERROR(ExpectDeviceIndex(device));
  auto backend = std::make_unique<cuda::CudaBackend>();
  TV_RETURN_IF_ERROR(backend->Init(device, options));
  return std::unique_ptr<Backend>(std::move(backend));
}

absl::StatusOr<kernels::KernelOptions> CudaKernelOptionsFromEnv() {
  kernels::KernelOptions o;
  // Reads `var` with `parse`; unset or empty keeps the default.
  const auto read = [](const char* var, const char* accepted, auto parse, auto* out) {
    const char* v = std::getenv(var);
    if (v == nullptr || *v == '\0' || parse(v, out)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(var, "=", v, " is not a kernel path this build knows (", accepted, ")"));
  };
  const auto parse_bool = [](const char* v, bool* out) {
    if (std::strcmp(v, "0") != 0 && std::strcmp(v, "1") != 0) return false;
    *out = v[0] == '1';
    return true;
  };
  // TV_KERNELS=portable first: it sets the defaults that the per-kernel switches below override.
  const auto parse_kernels = [](const char* v, bool* out) {
    if (std::strcmp(v, "auto") != 0 && std::strcmp(v, "portable") != 0) return false;
    *out = std::strcmp(v, "portable") == 0;
    return true;
  };
  TV_RETURN_IF_ERROR(read("TV_KERNELS", "auto or portable", parse_kernels, &o.portable));
  if (o.portable) {
    o.attention = kernels::AttentionPath::kFlash;
    o.sla = kernels::SlaPath::kPortable;
    o.conv3d = kernels::Conv3dPath::kHalo;  // the halo kernel where it takes the shapes, else gemm
    o.int8_gemm = kernels::Int8GemmPath::kMma;
    o.sagesla = kernels::SageSlaPath::kMma;
  }
  TV_RETURN_IF_ERROR(
      read("TV_ATTENTION", "simple, flash or sm90", kernels::ParseAttentionPath, &o.attention));
  TV_RETURN_IF_ERROR(
      read("TV_FA_SM90", "s2, s2pp, s3pp or s2ppp", kernels::ParseFaSm90Variant, &o.fa_sm90));
  TV_RETURN_IF_ERROR(read("TV_SLA_PATH", "sm90, wgmma or portable", kernels::ParseSlaPath, &o.sla));
  bool sla_portable = false;
  TV_RETURN_IF_ERROR(read("TV_SLA_PORTABLE", "0 or 1", parse_bool, &sla_portable));
  if (sla_portable) o.sla = kernels::SlaPath::kPortable;
  TV_RETURN_IF_ERROR(
      read("TV_CONV3D_PATH", "direct, gemm, halo or sm90", kernels::ParseConv3dPath, &o.conv3d));
  TV_RETURN_IF_ERROR(read("TV_CONV_SM90_DEBUG", "0 or 1", parse_bool, &o.conv_sm90_debug));
  const auto parse_sage_linear = [](const char* v, bool* out) {
    if (std::strcmp(v, "mma") != 0 && std::strcmp(v, "simple") != 0) return false;
    *out = std::strcmp(v, "simple") == 0;
    return true;
  };
  TV_RETURN_IF_ERROR(
      read("TV_SAGESLA_PATH", "wgmma or mma", kernels::ParseSageSlaPath, &o.sagesla));
  TV_RETURN_IF_ERROR(
      read("TV_SAGESLA_LINEAR", "mma or simple", parse_sage_linear, &o.sage_linear_simple));
  TV_RETURN_IF_ERROR(read("TV_INT8_GEMM", "mma or sm90", kernels::ParseInt8GemmPath, &o.int8_gemm));
  TV_RETURN_IF_ERROR(read("TV_FP8_FAST_ACCUM", "0 or 1", parse_bool, &o.fp8_fast_accum));
  const auto parse_scaling = [](const char* v, bool* out) {
    if (std::strcmp(v, "auto") != 0 && std::strcmp(v, "epilogue") != 0) return false;
    *out = std::strcmp(v, "epilogue") == 0;
    return true;
  };
  TV_RETURN_IF_ERROR(
      read("TV_FP8_SCALING", "auto or epilogue", parse_scaling, &o.fp8_epilogue_scaling));
  return o;
}

absl::StatusOr<kernels::KernelOptions> GetCudaKernelOptions(const Backend& backend) {
  const auto* cuda = dynamic_cast<const cuda::CudaBackend*>(&backend);
  if (cuda == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kernel options: backend ", std::string(backend.name()), " is not the CUDA backend"));
  }
  return cuda->kernel_options();
}

absl::StatusOr<void*> GetCudaStream(const Backend& backend) {
  const auto* cuda = dynamic_cast<const cuda::CudaBackend*>(&backend);
  if (cuda == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cuda stream: backend ", std::string(backend.name()), " is not the CUDA backend"));
  }
  return static_cast<void*>(cuda->stream());
}

absl::Status SetCudaKernelOptions(Backend& backend, const kernels::KernelOptions& options) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(&backend);
  if (cuda == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kernel options: backend ", std::string(backend.name()), " is not the CUDA backend"));
  }
  cuda->set_kernel_options(options);
  return absl::OkStatus();
}

absl::StatusOr<CudaDeviceInfo> QueryCudaDevice(int device) {
  TV_RETURN_IF_ERROR(ExpectDeviceIndex(device));
  cudaDeviceProp prop{};
  TV_RETURN_IF_ERROR(
      cuda::CudaStatus(cudaGetDeviceProperties(&prop, device), "cuda", "properties"));
  char pci_bus_id[32];
  std::snprintf(pci_bus_id, sizeof(pci_bus_id), "%04x:%02x:%02x.0", prop.pciDomainID, prop.pciBusID,
                prop.pciDeviceID);
  return CudaDeviceInfo{prop.name, static_cast<int64_t>(prop.totalGlobalMem),
                        prop.major * 10 + prop.minor, pci_bus_id};
}

namespace cuda {

absl::Status CudaStatus(cudaError_t e, const std::string& op, const std::string& detail) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(op, ": ", std::string(cudaGetErrorName(e)), " (",
                                          std::string(cudaGetErrorString(e)), ") ", detail));
}

absl::Status CudaBackend::Init(int device, const kernels::KernelOptions& options) {
  device_ = device;
  kernel_options_ = options;
  profiling_ = PhaseProfile::EnabledBy("TV_CUDA_PROFILE");
  const char* arena = std::getenv("TV_ACTIVATION_ARENA");
  arena_enabled_ = arena == nullptr || std::string(arena) != "0";
  TV_RETURN_IF_ERROR(
      CudaStatus(cudaSetDevice(device), "cuda init", absl::StrCat("cudaSetDevice(", device, ")")));
  cudaDeviceProp prop{};
  TV_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&prop, device), "cuda init", "properties"));
  sm_version_ = prop.major * 10 + prop.minor;
  if (int rc = gemm_.Init(); rc != 0) {
    return absl::InternalError(absl::StrCat("cuda init: cuBLASLt context failed with code ", rc,
                                            " ", kernels::GemmLoadError()));
  }
  RegisterCudaOps(*this);
  RegisterCudaConvOps(*this);
  RegisterCudaSlaOps(*this);
  RegisterCudaQuantOps(*this);
  RegisterCudaVideoOps(*this);
  return absl::OkStatus();
}

std::string ProfileLabel(size_t kind, const Tensor* main) {
  std::string label(OpName(kind));
  if (main != nullptr && main->defined()) label += " " + ShapeString(main->shape());
  return label;
}

void CudaBackend::AddProfile(const std::string& label, double ms) { profile_.Add(label, ms); }

CudaBackend::~CudaBackend() {
  if (profiling_ && !profile_.empty()) {
    profile_.Print(stderr, "cuda op profile (synchronised per op)",
                   PhaseProfile::Order::kSlowestFirst, 0.002);
  }
  cudaDeviceSynchronize();
  if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
  for (int i = 0; i < 2; ++i) {
    if (staging_free_[i] != nullptr) cudaEventDestroy(staging_free_[i]);
    if (staging_[i] != nullptr) cudaFreeHost(staging_[i]);
  }
  for (const auto& entry : pinned_free_) cudaFreeHost(entry.second);
}

absl::StatusOr<Tensor> CudaBackend::AllocateUninitialized(DType dtype, Shape shape) {
  return AllocateFromPool(dtype, std::move(shape), DevicePool::Use::kActivation);
}

absl::StatusOr<Tensor> CudaBackend::AllocateResident(DType dtype, Shape shape) {
  return AllocateFromPool(dtype, std::move(shape), DevicePool::Use::kResident);
}

absl::StatusOr<Tensor> CudaBackend::AllocateFromPool(DType dtype, Shape shape,
                                                     DevicePool::Use use) {
  for (int64_t d : shape) {
    if (d < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("allocate: negative dim in ", ShapeString(shape)));
  }
  Bind();
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  if (memory_limit() > 0) {
    // The memory budget counts every live block as the pool rounds it (arena blocks round to
    // 256 bytes, less than this: the check is conservative for them).
    const int64_t need = AccountedBytes(static_cast<int64_t>(bytes));
    const int64_t in_use = pool_->stats().in_use;
    if (in_use + need > memory_limit()) {
      return OverBudget(need, in_use,
                        absl::StrCat("allocate ", std::string(DTypeName(dtype)), ShapeString(shape)));
    }
  }
  void* ptr = nullptr;
  auto storage = std::make_shared<Storage>();
  TV_RETURN_IF_ERROR(
      CudaStatus(pool_->Get(bytes, use, &ptr, &storage->owner), "allocate",
                 absl::StrCat(std::string(DTypeName(dtype)), ShapeString(shape), " (", bytes >> 20,
                              " MiB; in use ", pool_->stats().in_use >> 20, " MiB)")));
  storage->data = ptr;
  storage->bytes = bytes;
  storage->device = Device::kCuda;
  return Tensor::Wrap(std::move(storage), 0, dtype, std::move(shape));
}

absl::Status CudaBackend::ReserveActivations(int64_t bytes) {
  if (bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("reserve activations: ", bytes, " bytes"));
  }
  if (!arena_enabled_) return absl::OkStatus();
  Bind();
  bool deferred = false;
  const cudaError_t e = pool_->Reserve(static_cast<size_t>(bytes), &deferred);
  if (e == cudaErrorMemoryAllocation) {
    // Best effort: the job still runs, its activations on the caching path (counted as overflow).
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    cudaGetLastError();
    TV_LOG(WARNING) << "cuda: activation arena of " << (bytes >> 20) << " MiB does not fit ("
                    << (free >> 20) << " MiB free); activations use the caching pool";
    return absl::OkStatus();
  }
  if (deferred) {
    TV_LOG(WARNING) << "cuda: activation arena kept at " << (pool_->stats().arena_bytes >> 20)
                    << " MiB (" << (bytes >> 20) << " MiB asked): activations are still live";
  }
  return CudaStatus(e, "reserve activations", absl::StrCat(bytes >> 20, " MiB"));
}

absl::StatusOr<Tensor> CudaBackend::AllocatePinned(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("allocate pinned: negative dim in ", ShapeString(shape)));
  }
  Bind();
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  void* ptr = nullptr;
  TV_RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&ptr, std::max<size_t>(bytes, 1), cudaHostAllocDefault),
                                "cudaHostAlloc", absl::StrCat(bytes >> 20, " MiB of pinned host memory")));
  std::memset(ptr, 0, bytes);
  auto storage = std::make_shared<Storage>();
  storage->data = ptr;
  storage->bytes = bytes;
  storage->device = Device::kCpu;
  storage->owner = std::shared_ptr<void>(ptr, [](void* p) { cudaFreeHost(p); });
  return Tensor::Wrap(std::move(storage), 0, dtype, std::move(shape));
}

namespace {
absl::Status SameBytes(const Tensor& host, const Tensor& dev, const char* op) {
  if (!host.defined() || !dev.defined() || host.dtype() != dev.dtype() ||
      host.nbytes() != dev.nbytes() || host.device() != Device::kCpu ||
      dev.device() != Device::kCuda) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": want a host and a CUDA tensor of one dtype and size, got ",
        host.defined() ? host.Describe() : "undefined", " and ",
        dev.defined() ? dev.Describe() : "undefined"));
  }
  return absl::OkStatus();
}

// A copy's completion event, and the tensors it reads and writes, kept until the fence goes.
struct CudaCopyFence {
  cudaEvent_t done = nullptr;
  std::vector<Tensor> keep;
  ~CudaCopyFence() {
    if (done != nullptr) cudaEventDestroy(done);  // deferred by CUDA until the event completes
  }
};
}  // namespace

absl::Status CudaBackend::CopyToHost(const Tensor& device, const Tensor& host) {
  TV_RETURN_IF_ERROR(SameBytes(host, device, "copy to host"));
  Bind();
  // On the compute stream: ordered after the ops that wrote `device`, complete on return.
  TV_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(host.raw(), device.raw(), host.nbytes(),
                                                cudaMemcpyDeviceToHost, stream()),
                                "cudaMemcpyAsync", "copy to host"));
  return CudaStatus(cudaStreamSynchronize(stream()), "cudaStreamSynchronize", "copy to host");
}

absl::StatusOr<CopyFence> CudaBackend::CopyToDeviceAsync(const std::vector<Tensor>& host,
                                                         const std::vector<Tensor>& device) {
  if (host.size() != device.size()) {
    return absl::InvalidArgumentError(absl::StrCat("copy to device: ", host.size(),
                                                   " host tensors for ", device.size(), " device tensors"));
  }
  for (size_t i = 0; i < host.size(); ++i) TV_RETURN_IF_ERROR(SameBytes(host[i], device[i], "copy to device"));
  Bind();
  if (copy_stream_ == nullptr) {
    // Non-blocking: no implicit synchronisation with the legacy default stream the ops run on,
    // so the copy overlaps the compute queued after it; the events below order the two.
    TV_RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking),
                                  "cudaStreamCreateWithFlags", "copy stream"));
  }
  // The destinations may still be read by compute queued before this call: the copy waits for it.
  cudaEvent_t after_compute = nullptr;
  TV_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&after_compute, cudaEventDisableTiming),
                                "cudaEventCreateWithFlags", "copy to device"));
  cudaError_t e = cudaEventRecord(after_compute, stream());
  if (e == cudaSuccess) e = cudaStreamWaitEvent(copy_stream_, after_compute, 0);
  cudaEventDestroy(after_compute);  // released once the wait is satisfied
  TV_RETURN_IF_ERROR(CudaStatus(e, "cudaStreamWaitEvent", "copy to device"));
  auto fence = std::make_shared<CudaCopyFence>();
  for (size_t i = 0; i < host.size(); ++i) {
    TV_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(device[i].raw(), host[i].raw(), host[i].nbytes(),
                                                  cudaMemcpyHostToDevice, copy_stream_),
                                  "cudaMemcpyAsync", absl::StrCat("copy to device ", device[i].Describe())));
    fence->keep.push_back(host[i]);
    fence->keep.push_back(device[i]);
  }
  TV_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&fence->done, cudaEventDisableTiming),
                                "cudaEventCreateWithFlags", "copy to device"));
  TV_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(fence->done, copy_stream_), "cudaEventRecord",
                                "copy to device"));
  return CopyFence(std::move(fence));
}

absl::Status CudaBackend::WaitFence(const CopyFence& fence) {
  if (fence == nullptr) return absl::OkStatus();
  Bind();
  const auto* f = static_cast<const CudaCopyFence*>(fence.get());
  return CudaStatus(cudaStreamWaitEvent(stream(), f->done, 0), "cudaStreamWaitEvent", "wait for a copy");
}

absl::StatusOr<Tensor> CudaBackend::Allocate(DType dtype, Shape shape) {
  TV_ASSIGN_OR_RETURN(Tensor t, AllocateUninitialized(dtype, std::move(shape)));
  TV_RETURN_IF_ERROR(
      CudaStatus(cudaMemsetAsync(t.raw(), 0, t.nbytes(), stream()), "allocate", "memset"));
  return t;
}

absl::Status CudaBackend::StreamToDevice(const void* host, void* dev, size_t bytes,
                                         const std::string& what) {
  if (staging_[0] == nullptr) {
    for (int i = 0; i < 2; ++i) {
      TV_RETURN_IF_ERROR(
          CudaStatus(cudaHostAlloc(&staging_[i], kStagingBytes, cudaHostAllocDefault), "upload",
                     "pinned staging buffer"));
      TV_RETURN_IF_ERROR(
          CudaStatus(cudaEventCreateWithFlags(&staging_free_[i], cudaEventDisableTiming), "upload",
                     "staging event"));
    }
  }
  const char* src = static_cast<const char*>(host);
  char* dst = static_cast<char*>(dev);
  int buf = 0;
  for (size_t done = 0; done < bytes; buf ^= 1) {
    const size_t n = std::min(kStagingBytes, bytes - done);
    // The buffer's previous copy must have left it before the CPU refills it.
    TV_RETURN_IF_ERROR(CudaStatus(cudaEventSynchronize(staging_free_[buf]), "upload", what));
    std::memcpy(staging_[buf], src + done, n);  // reads the (possibly mmap'd) source once
    TV_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpyAsync(dst + done, staging_[buf], n, cudaMemcpyHostToDevice, stream()),
                   "upload", what));
    TV_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(staging_free_[buf], stream()), "upload", what));
    done += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CudaBackend::Upload(const Tensor& host, DType dtype) {
  if (host.defined() && host.device() == Device::kCuda) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda upload: ", host.Describe(), " is already on the device"));
  }
  const bool float_pair = (host.dtype() == DType::kF32 || host.dtype() == DType::kBF16) &&
                          (dtype == DType::kF32 || dtype == DType::kBF16);
  // Uploads (weights, host inputs) never take the arena: see AllocateResident.
  if (host.dtype() == dtype) {
    TV_ASSIGN_OR_RETURN(Tensor dev, AllocateResident(dtype, host.shape()));
    TV_RETURN_IF_ERROR(StreamToDevice(host.raw(), dev.raw(), host.nbytes(), host.Describe()));
    return dev;
  }
  if (float_pair) {
    // Raw bytes go over PCIe as stored; the dtype conversion runs on the GPU.
    TV_ASSIGN_OR_RETURN(Tensor raw, AllocateResident(host.dtype(), host.shape()));
    TV_RETURN_IF_ERROR(StreamToDevice(host.raw(), raw.raw(), host.nbytes(), host.Describe()));
    TV_ASSIGN_OR_RETURN(Tensor dev, AllocateResident(dtype, host.shape()));
    kernels::ConvertArgs a;
    a.x = kernels::ConstBuf{raw.raw(), host.dtype() == DType::kF32 ? kernels::ElemType::kF32
                                                                   : kernels::ElemType::kBF16};
    a.y = kernels::MutBuf{
        dev.raw(), dtype == DType::kF32 ? kernels::ElemType::kF32 : kernels::ElemType::kBF16};
    a.n = host.numel();
    TV_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchConvert(a, stream()), "upload convert", host.Describe()));
    return dev;
  }
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    return absl::UnimplementedError(
        absl::StrCat("cuda upload ", host.Describe(), " as ", std::string(DTypeName(dtype))));
  }
  // Other source dtypes (F16, F64, integers as floats) convert on the host.
  TV_ASSIGN_OR_RETURN(Tensor f32, ToF32(host));
  if (dtype == DType::kF32) return Upload(f32, dtype);
  Tensor staged = Tensor::Zeros(DType::kBF16, host.shape());
  const float* src = f32.data<float>();
  uint16_t* dst = staged.data<uint16_t>();
  for (int64_t i = 0; i < f32.numel(); ++i) dst[i] = F32ToBf16(src[i]);
  return Upload(staged, dtype);
}

namespace {

// bf16/f16 → F32 on the host, over several threads for large tensors (a 480p video chunk is
// 4.8 M values).
void WidenToF32(const uint16_t* src, float* dst, int64_t n, bool bf16) {
  const auto run = [&](int64_t lo, int64_t hi) {
    if (bf16) {
      for (int64_t i = lo; i < hi; ++i) {
        const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
        std::memcpy(&dst[i], &bits, sizeof(float));
      }
    } else {
      for (int64_t i = lo; i < hi; ++i) dst[i] = F16ToF32(src[i]);
    }
  };
  constexpr int64_t kPerThread = int64_t{1} << 20;
  const int64_t threads = std::clamp<int64_t>(n / kPerThread, 1, 8);
  if (threads == 1) {
    run(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (n + threads - 1) / threads;
  for (int64_t k = 1; k < threads; ++k) {
    pool.emplace_back(run, std::min(n, k * per), std::min(n, (k + 1) * per));
  }
  run(0, std::min(n, per));
  for (std::thread& th : pool) th.join();
}

// A download queued on the backend's stream into a pinned buffer; Wait() waits for its event and
// builds the host tensor (half floats widened to F32, as Download does).
class CudaDownload : public PendingDownload {
 public:
  CudaDownload(CudaBackend* backend, Tensor src, void* pinned, size_t capacity, cudaEvent_t done)
      : backend_(backend),
        src_(std::move(src)),
        pinned_(pinned),
        capacity_(capacity),
        done_(done) {}
  ~CudaDownload() override { Release(); }

  absl::StatusOr<Tensor> Wait() override {
    if (pinned_ == nullptr) return absl::FailedPreconditionError("cuda download: waited twice");
    const cudaError_t e = cudaEventSynchronize(done_);
    if (e != cudaSuccess) {
      Release();
      return CudaStatus(e, "download", src_.Describe());
    }
    const DType dtype = src_.dtype();
    Tensor host = Tensor::Zeros(IsHalfFloat(dtype) ? DType::kF32 : dtype, src_.shape());
    if (IsHalfFloat(dtype)) {
      WidenToF32(static_cast<const uint16_t*>(pinned_), host.data<float>(), src_.numel(),
                 dtype == DType::kBF16);
    } else {
      std::memcpy(host.raw(), pinned_, src_.nbytes());
    }
    Release();
    return host;
  }

 private:
  void Release() {
    if (pinned_ == nullptr) return;
    cudaEventSynchronize(done_);  // an abandoned download must finish before its buffer is reused
    cudaEventDestroy(done_);
    backend_->ReleasePinned(pinned_, capacity_);
    pinned_ = nullptr;
    src_ = Tensor();
  }

  CudaBackend* backend_;
  Tensor src_;  // kept alive until the copy is done
  void* pinned_;
  size_t capacity_;
  cudaEvent_t done_;
};

}  // namespace

absl::Status CudaBackend::AcquirePinned(size_t bytes, void** ptr, size_t* capacity) {
  {
    std::lock_guard<std::mutex> lock(pinned_mu_);
    for (auto it = pinned_free_.begin(); it != pinned_free_.end(); ++it) {
      if (it->first >= bytes) {
        *capacity = it->first;
        *ptr = it->second;
        pinned_free_.erase(it);
        return absl::OkStatus();
      }
    }
  }
  const size_t cap =
      std::max<size_t>((bytes + (size_t{1} << 20) - 1) & ~((size_t{1} << 20) - 1), size_t{1} << 20);
  TV_RETURN_IF_ERROR(CudaStatus(cudaMallocHost(ptr, cap), "download", "pinned host buffer"));
  *capacity = cap;
  return absl::OkStatus();
}

void CudaBackend::ReleasePinned(void* ptr, size_t capacity) {
  {
    std::lock_guard<std::mutex> lock(pinned_mu_);
    if (pinned_free_.size() < kPinnedKept) {
      pinned_free_.emplace_back(capacity, ptr);
      return;
    }
    // Full: keep the larger buffers, free the smallest.
    auto smallest = std::min_element(pinned_free_.begin(), pinned_free_.end());
    if (smallest->first < capacity) {
      std::swap(smallest->first, capacity);
      std::swap(smallest->second, ptr);
    }
  }
  cudaFreeHost(ptr);
}

absl::StatusOr<std::unique_ptr<PendingDownload>> CudaBackend::DownloadAsync(const Tensor& t) {
  if (t.device() != Device::kCuda) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda download: ", t.Describe(), " is not on the device"));
  }
  Bind();
  void* pinned = nullptr;
  size_t capacity = 0;
  TV_RETURN_IF_ERROR(AcquirePinned(std::max<size_t>(t.nbytes(), 1), &pinned, &capacity));
  cudaEvent_t done = nullptr;
  cudaError_t e = cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(pinned, t.raw(), t.nbytes(), cudaMemcpyDeviceToHost, stream());
  if (e == cudaSuccess) e = cudaEventRecord(done, stream());
  if (e != cudaSuccess) {
    if (done != nullptr) {
      cudaEventSynchronize(done);
      cudaEventDestroy(done);
    }
    cudaStreamSynchronize(stream());
    ReleasePinned(pinned, capacity);
    return CudaStatus(e, "download", t.Describe());
  }
  return std::unique_ptr<PendingDownload>(
      std::make_unique<CudaDownload>(this, t, pinned, capacity, done));
}

absl::StatusOr<Tensor> CudaBackend::Download(const Tensor& t) {
  TV_ASSIGN_OR_RETURN(std::unique_ptr<PendingDownload> pending, DownloadAsync(t));
  return pending->Wait();
}

absl::Status CudaBackend::Synchronize() {
  Bind();
  return CudaStatus(cudaDeviceSynchronize(), "synchronize", "");
}

absl::Status ExpectDevice(const std::string& op, const std::string& what, const Tensor* t) {
  if (t == nullptr || !t->defined()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is missing"));
  }
  if (t->device() != Device::kCuda) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", what, " ", t->Describe(), " is not on the GPU"));
  }
  return absl::OkStatus();
}

namespace {
absl::StatusOr<kernels::ElemType> ElemTypeOf(const std::string& op, const std::string& what,
                                             const Tensor* t) {
  TV_RETURN_IF_ERROR(ExpectDevice(op, what, t));
  switch (t->dtype()) {
    case DType::kF32:
      return kernels::ElemType::kF32;
    case DType::kBF16:
      return kernels::ElemType::kBF16;
    case DType::kF64:
    case DType::kF16:
    case DType::kI8:
    case DType::kU8:
    case DType::kI32:
    case DType::kI64:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": ", what, " is ", t->Describe(), ", want BF16 or F32"));
}
}  // namespace

absl::StatusOr<kernels::ConstBuf> In(const std::string& op, const std::string& what,
                                     const Tensor* t) {
  TV_ASSIGN_OR_RETURN(kernels::ElemType type, ElemTypeOf(op, what, t));
  return kernels::ConstBuf{t->raw(), type};
}

absl::StatusOr<kernels::MutBuf> Out(const std::string& op, const std::string& what, Tensor* t) {
  TV_ASSIGN_OR_RETURN(kernels::ElemType type, ElemTypeOf(op, what, t));
  return kernels::MutBuf{t->raw(), type};
}

absl::Status ExpectDeviceShape(const std::string& op, const std::string& what, const Tensor* t,
                               const Shape& shape) {
  TV_RETURN_IF_ERROR(ExpectDevice(op, what, t));
  return engine::ExpectShape(op, what, t, shape);
}

}  // namespace cuda
}  // namespace turbovid::engine
