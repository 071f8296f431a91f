// Tensor: dtype, shape, device and shared storage. Contiguous row-major (C order) only;
// views share storage with an element offset. Layout conventions are in the shape comments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace turbovid::engine {

enum class DType : uint8_t { kF32, kF64, kBF16, kF16, kI8, kU8, kI32, kI64 };
enum class Device : uint8_t { kCpu, kCuda };

size_t DTypeSize(DType dtype);
std::string_view DTypeName(DType dtype);  // safetensors spelling: "F32", "BF16", ...
std::optional<DType> DTypeFromName(std::string_view name);

using Shape = std::vector<int64_t>;
std::string ShapeString(const Shape& shape);  // "[16, 3, 8, 12]"
int64_t NumElements(const Shape& shape);

// Raw bytes plus whoever owns them (heap buffer, mmap region, device allocation).
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::kCpu;
  std::shared_ptr<void> owner;  // releases `data` when the last reference goes
};

class Tensor {
 public:
  Tensor() = default;

  // Zero-filled host tensor.
  static Tensor Zeros(DType dtype, Shape shape);
  // Wraps existing memory kept alive by `storage`; `byte_offset` is where element 0 starts.
  static Tensor Wrap(std::shared_ptr<Storage> storage, size_t byte_offset, DType dtype,
                     Shape shape);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::kCpu; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int64_t numel() const { return NumElements(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }

  void* raw() const { return static_cast<char*>(storage_->data) + byte_offset_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Same storage, new shape (element counts must agree).
  absl::StatusOr<Tensor> Reshape(Shape shape) const;
  // Rows [begin, end) of the leading dimension, sharing storage.
  Tensor Slice0(int64_t begin, int64_t end) const;
  // Deep host copy (host tensors only).
  Tensor Clone() const;

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return byte_offset_; }
  std::string Describe() const;  // "BF16[16, 3, 8, 12]"

 private:
  std::shared_ptr<Storage> storage_;
  size_t byte_offset_ = 0;
  DType dtype_ = DType::kF32;
  Shape shape_;
};

// bf16 helpers (bf16 = upper 16 bits of an IEEE fp32; conversion rounds to nearest even).
float Bf16ToF32(uint16_t v);
uint16_t F32ToBf16(float v);
float RoundToBf16(float v);
float F16ToF32(uint16_t v);

// BF16 / F16: what every backend's Download widens to F32 (other dtypes keep theirs).
inline bool IsHalfFloat(DType d) { return d == DType::kBF16 || d == DType::kF16; }

// Host conversion of any numeric tensor to F32 (F64 narrows; integers convert by value).
absl::StatusOr<Tensor> ToF32(const Tensor& t);
// Host conversion to F64.
absl::StatusOr<Tensor> ToF64(const Tensor& t);

}  // namespace turbovid::engine
