// Tensor storage, dtype tables and host dtype conversion.
#include "engine/core/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace turbovid::engine {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kI8: return 1;
    case DType::kU8: return 1;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
  }
  return 0;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF64: return "F64";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
  }
  return "?";
}

std::optional<DType> DTypeFromName(std::string_view name) {
  for (DType d : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16, DType::kI8, DType::kU8,
                  DType::kI32, DType::kI64}) {
    if (DTypeName(d) == name) return d;
  }
  return std::nullopt;
}

std::string ShapeString(const Shape& shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  auto storage = std::make_shared<Storage>();
  // 64-byte alignment keeps vectorised loops and later device copies happy.
  size_t padded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, padded == 0 ? 64 : padded);
  std::memset(p, 0, padded == 0 ? 64 : padded);
  storage->data = p;
  storage->bytes = bytes;
  storage->owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  return Wrap(std::move(storage), 0, dtype, std::move(shape));
}

Tensor Tensor::Wrap(std::shared_ptr<Storage> storage, size_t byte_offset, DType dtype,
                    Shape shape) {
  Tensor t;
  t.storage_ = std::move(storage);
  t.byte_offset_ = byte_offset;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  return t;
}

absl::StatusOr<Tensor> Tensor::Reshape(Shape shape) const {
  if (NumElements(shape) != numel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reshape ", Describe(), " to ", ShapeString(shape), ": element count differs"));
  }
  return Wrap(storage_, byte_offset_, dtype_, std::move(shape));
}

Tensor Tensor::Slice0(int64_t begin, int64_t end) const {
  Shape s = shape_;
  int64_t row = s.empty() ? 1 : NumElements(Shape(s.begin() + 1, s.end()));
  s[0] = end - begin;
  return Wrap(storage_, byte_offset_ + static_cast<size_t>(begin * row) * DTypeSize(dtype_), dtype_,
              std::move(s));
}

Tensor Tensor::Clone() const {
  Tensor t = Zeros(dtype_, shape_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

std::string Tensor::Describe() const { return absl::StrCat(std::string(DTypeName(dtype_)), ShapeString(shape_)); }

float Bf16ToF32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t F32ToBf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if (std::isnan(v)) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float RoundToBf16(float v) { return Bf16ToF32(F32ToBf16(v)); }

float F16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3FF) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {
template <typename Out>
absl::StatusOr<Tensor> Convert(const Tensor& t, DType out_dtype) {
  if (t.device() != Device::kCpu) {
    return absl::InvalidArgumentError(absl::StrCat("dtype conversion needs a host tensor, got ", t.Describe()));
  }
  Tensor out = Tensor::Zeros(out_dtype, t.shape());
  Out* o = out.data<Out>();
  int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::kF32: for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(t.data<float>()[i]); break;
    case DType::kF64: for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(t.data<double>()[i]); break;
    case DType::kBF16: for (int64_t i = 0; i < n; ++i) o[i] = Bf16ToF32(t.data<uint16_t>()[i]); break;
    case DType::kF16: for (int64_t i = 0; i < n; ++i) o[i] = F16ToF32(t.data<uint16_t>()[i]); break;
    case DType::kI8: for (int64_t i = 0; i < n; ++i) o[i] = t.data<int8_t>()[i]; break;
    case DType::kU8: for (int64_t i = 0; i < n; ++i) o[i] = t.data<uint8_t>()[i]; break;
    case DType::kI32: for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(t.data<int32_t>()[i]); break;
    case DType::kI64: for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(t.data<int64_t>()[i]); break;
  }
  return out;
}
}  // namespace

absl::StatusOr<Tensor> ToF32(const Tensor& t) { return Convert<float>(t, DType::kF32); }
absl::StatusOr<Tensor> ToF64(const Tensor& t) { return Convert<double>(t, DType::kF64); }

}  // namespace turbovid::engine
