// CudaBackend: device allocation from the caching pool (device_pool.h), uploads streamed through
// pinned staging buffers with dtype conversion on the GPU, downloads, and the factory.
#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
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
    return absl::UnavailableError(absl::StrCat("cuda backend: no CUDA device (",
                                               std::string(cudaGetErrorString(e)), ")"));
  }
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(absl::StrCat("cuda backend: device ", device, " does not exist (",
                                                   count, " visible)"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device) {
  TV_RETURN_IF_ERROR(ExpectDeviceIndex(device));
  auto backend = std::make_unique<cuda::CudaBackend>();
  TV_RETURN_IF_ERROR(backend->Init(device));
  return std::unique_ptr<Backend>(std::move(backend));
}

absl::StatusOr<CudaDeviceInfo> QueryCudaDevice(int device) {
  TV_RETURN_IF_ERROR(ExpectDeviceIndex(device));
  cudaDeviceProp prop{};
  TV_RETURN_IF_ERROR(cuda::CudaStatus(cudaGetDeviceProperties(&prop, device), "cuda", "properties"));
  return CudaDeviceInfo{prop.name, static_cast<int64_t>(prop.totalGlobalMem), prop.major * 10 + prop.minor};
}

namespace cuda {

absl::Status CudaStatus(cudaError_t e, const std::string& op, const std::string& detail) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(op, ": ", std::string(cudaGetErrorName(e)), " (",
                                          std::string(cudaGetErrorString(e)), ") ", detail));
}

absl::Status CudaBackend::Init(int device) {
  device_ = device;
  const char* prof = std::getenv("TV_CUDA_PROFILE");
  profiling_ = prof != nullptr && std::string(prof) == "1";
  TV_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "cuda init", absl::StrCat("cudaSetDevice(", device, ")")));
  cudaDeviceProp prop{};
  TV_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&prop, device), "cuda init", "properties"));
  sm_version_ = prop.major * 10 + prop.minor;
  if (int rc = gemm_.Init(); rc != 0) {
    return absl::InternalError(absl::StrCat("cuda init: cuBLASLt context failed with code ", rc, " ",
                                            kernels::GemmLoadError()));
  }
  RegisterCudaOps(*this);
  RegisterCudaConvOps(*this);
  RegisterCudaSlaOps(*this);
  RegisterCudaQuantOps(*this);
  return absl::OkStatus();
}

std::string ProfileLabel(size_t kind, const Tensor* main) {
  std::string label(OpName(kind));
  if (main != nullptr && main->defined()) label += " " + ShapeString(main->shape());
  return label;
}

void CudaBackend::AddProfile(const std::string& label, double ms) {
  std::lock_guard<std::mutex> lock(profile_mu_);
  auto& [total, calls] = profile_[label];
  total += ms;
  ++calls;
}

CudaBackend::~CudaBackend() {
  if (profiling_ && !profile_.empty()) {
    std::vector<std::pair<double, std::string>> rows;
    double sum = 0;
    for (const auto& [label, v] : profile_) {
      rows.emplace_back(v.first, label);
      sum += v.first;
    }
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "cuda op profile (synchronised per op): %.1f ms total\n", sum);
    for (const auto& [ms, label] : rows) {
      if (ms < sum * 0.002) break;
      std::fprintf(stderr, "  %10.2f ms %7lld calls  %s\n", ms, static_cast<long long>(profile_[label].second),
                   label.c_str());
    }
  }
  cudaDeviceSynchronize();
  for (int i = 0; i < 2; ++i) {
    if (staging_free_[i] != nullptr) cudaEventDestroy(staging_free_[i]);
    if (staging_[i] != nullptr) cudaFreeHost(staging_[i]);
  }
}

absl::StatusOr<Tensor> CudaBackend::AllocateUninitialized(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative dim in ", ShapeString(shape)));
  }
  Bind();
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  void* ptr = nullptr;
  auto storage = std::make_shared<Storage>();
  TV_RETURN_IF_ERROR(CudaStatus(pool_->Get(bytes, &ptr, &storage->owner), "allocate",
                                absl::StrCat(std::string(DTypeName(dtype)), ShapeString(shape), " (",
                                             bytes >> 20, " MiB; in use ", pool_->stats().in_use >> 20,
                                             " MiB)")));
  storage->data = ptr;
  storage->bytes = bytes;
  storage->device = Device::kCuda;
  return Tensor::Wrap(std::move(storage), 0, dtype, std::move(shape));
}

absl::StatusOr<Tensor> CudaBackend::Allocate(DType dtype, Shape shape) {
  TV_ASSIGN_OR_RETURN(Tensor t, AllocateUninitialized(dtype, std::move(shape)));
  TV_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(t.raw(), 0, t.nbytes(), stream()), "allocate", "memset"));
  return t;
}

absl::Status CudaBackend::StreamToDevice(const void* host, void* dev, size_t bytes, const std::string& what) {
  if (staging_[0] == nullptr) {
    for (int i = 0; i < 2; ++i) {
      TV_RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&staging_[i], kStagingBytes, cudaHostAllocDefault),
                                    "upload", "pinned staging buffer"));
      TV_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&staging_free_[i], cudaEventDisableTiming),
                                    "upload", "staging event"));
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
    TV_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(dst + done, staging_[buf], n, cudaMemcpyHostToDevice, stream()),
                                  "upload", what));
    TV_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(staging_free_[buf], stream()), "upload", what));
    done += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CudaBackend::Upload(const Tensor& host, DType dtype) {
  if (host.defined() && host.device() == Device::kCuda) {
    return absl::InvalidArgumentError(absl::StrCat("cuda upload: ", host.Describe(), " is already on the device"));
  }
  const bool float_pair = (host.dtype() == DType::kF32 || host.dtype() == DType::kBF16) &&
                          (dtype == DType::kF32 || dtype == DType::kBF16);
  if (host.dtype() == dtype) {
    TV_ASSIGN_OR_RETURN(Tensor dev, AllocateUninitialized(dtype, host.shape()));
    TV_RETURN_IF_ERROR(StreamToDevice(host.raw(), dev.raw(), host.nbytes(), host.Describe()));
    return dev;
  }
  if (float_pair) {
    // Raw bytes go over PCIe as stored; the dtype conversion runs on the GPU.
    TV_ASSIGN_OR_RETURN(Tensor raw, AllocateUninitialized(host.dtype(), host.shape()));
    TV_RETURN_IF_ERROR(StreamToDevice(host.raw(), raw.raw(), host.nbytes(), host.Describe()));
    TV_ASSIGN_OR_RETURN(Tensor dev, AllocateUninitialized(dtype, host.shape()));
    kernels::ConvertArgs a;
    a.x = kernels::ConstBuf{raw.raw(), host.dtype() == DType::kF32 ? kernels::ElemType::kF32 : kernels::ElemType::kBF16};
    a.y = kernels::MutBuf{dev.raw(), dtype == DType::kF32 ? kernels::ElemType::kF32 : kernels::ElemType::kBF16};
    a.n = host.numel();
    TV_RETURN_IF_ERROR(CudaStatus(kernels::LaunchConvert(a, stream()), "upload convert", host.Describe()));
    return dev;
  }
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    return absl::UnimplementedError(absl::StrCat("cuda upload ", host.Describe(), " as ",
                                                 std::string(DTypeName(dtype))));
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

absl::StatusOr<Tensor> CudaBackend::Download(const Tensor& t) {
  if (t.device() != Device::kCuda) {
    return absl::InvalidArgumentError(absl::StrCat("cuda download: ", t.Describe(), " is not on the device"));
  }
  Bind();
  Tensor host = Tensor::Zeros(t.dtype(), t.shape());
  TV_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(host.raw(), t.raw(), t.nbytes(), cudaMemcpyDeviceToHost),
                                "download", t.Describe()));
  if (IsHalfFloat(t.dtype())) return ToF32(host);
  return host;
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
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " ", t->Describe(), " is not on the GPU"));
  }
  return absl::OkStatus();
}

namespace {
absl::StatusOr<kernels::ElemType> ElemTypeOf(const std::string& op, const std::string& what, const Tensor* t) {
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
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is ", t->Describe(), ", want BF16 or F32"));
}
}  // namespace

absl::StatusOr<kernels::ConstBuf> In(const std::string& op, const std::string& what, const Tensor* t) {
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
