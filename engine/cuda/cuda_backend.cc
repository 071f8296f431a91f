// CudaBackend: device allocation (cudaMalloc, zero-filled), upload/download with host-side dtype
// conversion, and the factory.
#include "engine/cuda/cuda_backend.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/op_checks.h"
#include "engine/cuda/cuda_backend_internal.h"

namespace turbovid::engine {

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the sticky "no device" error
    return absl::UnavailableError(absl::StrCat("cuda backend: no CUDA device (",
                                               std::string(cudaGetErrorString(e)), ")"));
  }
  auto backend = std::make_unique<cuda::CudaBackend>();
  TV_RETURN_IF_ERROR(backend->Init());
  return std::unique_ptr<Backend>(std::move(backend));
}

namespace cuda {

absl::Status CudaStatus(cudaError_t e, const std::string& op, const std::string& detail) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(op, ": ", std::string(cudaGetErrorName(e)), " (",
                                          std::string(cudaGetErrorString(e)), ") ", detail));
}

absl::Status CudaBackend::Init() {
  TV_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(0), "cuda init", "cudaSetDevice(0)"));
  cudaDeviceProp prop{};
  TV_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&prop, 0), "cuda init", "properties"));
  sm_version_ = prop.major * 10 + prop.minor;
  if (int rc = gemm_.Init(); rc != 0) {
    return absl::InternalError(absl::StrCat("cuda init: cuBLASLt context failed with code ", rc));
  }
  RegisterCudaOps(*this);
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CudaBackend::Allocate(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("allocate: negative dim in ", ShapeString(shape)));
  }
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  void* ptr = nullptr;
  TV_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&ptr, bytes == 0 ? 1 : bytes), "allocate",
                                absl::StrCat(std::string(DTypeName(dtype)), ShapeString(shape))));
  auto storage = std::make_shared<Storage>();
  storage->data = ptr;
  storage->bytes = bytes;
  storage->device = Device::kCuda;
  storage->owner = std::shared_ptr<void>(ptr, [](void* p) { cudaFree(p); });
  TV_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(ptr, 0, bytes, stream()), "allocate", "memset"));
  return Tensor::Wrap(std::move(storage), 0, dtype, std::move(shape));
}

absl::StatusOr<Tensor> CudaBackend::Upload(const Tensor& host, DType dtype) {
  if (host.defined() && host.device() == Device::kCuda) {
    return absl::InvalidArgumentError(absl::StrCat("cuda upload: ", host.Describe(), " is already on the device"));
  }
  Tensor staged;
  if (host.dtype() == dtype) {
    staged = host;
  } else if (dtype == DType::kF32 || dtype == DType::kBF16) {
    TV_ASSIGN_OR_RETURN(Tensor f32, ToF32(host));
    if (dtype == DType::kF32) {
      staged = std::move(f32);
    } else {
      staged = Tensor::Zeros(DType::kBF16, host.shape());
      const float* src = f32.data<float>();
      uint16_t* dst = staged.data<uint16_t>();
      for (int64_t i = 0; i < f32.numel(); ++i) dst[i] = F32ToBf16(src[i]);
    }
  } else {
    return absl::UnimplementedError(absl::StrCat("cuda upload ", host.Describe(), " as ",
                                                 std::string(DTypeName(dtype))));
  }
  TV_ASSIGN_OR_RETURN(Tensor dev, Allocate(dtype, host.shape()));
  TV_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(dev.raw(), staged.raw(), staged.nbytes(), cudaMemcpyHostToDevice),
                                "upload", host.Describe()));
  return dev;
}

absl::StatusOr<Tensor> CudaBackend::Download(const Tensor& t) {
  if (t.device() != Device::kCuda) {
    return absl::InvalidArgumentError(absl::StrCat("cuda download: ", t.Describe(), " is not on the device"));
  }
  Tensor host = Tensor::Zeros(t.dtype(), t.shape());
  TV_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(host.raw(), t.raw(), t.nbytes(), cudaMemcpyDeviceToHost),
                                "download", t.Describe()));
  if (IsHalfFloat(t.dtype())) return ToF32(host);
  return host;
}

absl::Status CudaBackend::Synchronize() {
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
