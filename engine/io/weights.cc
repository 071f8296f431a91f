// WeightSet loading and checked access.
#include "engine/io/weights.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/io/safetensors.h"

namespace turbovid::engine::io {

absl::Status WeightSet::Add(const std::string& raw_name, Tensor tensor, const std::string& file,
                            KeyStyle style) {
  std::string name = NormalizeKey(raw_name, style);
  auto [it, inserted] = entries_.emplace(name, Entry{std::move(tensor), file});
  if (!inserted) {
    return absl::DataLossError(absl::StrCat(file, ": tensor '", raw_name, "' duplicates '", name,
                                            "' from ", it->second.file));
  }
  return absl::OkStatus();
}

const WeightSet::Entry* WeightSet::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

absl::StatusOr<Tensor> WeightSet::TakeHost(const std::string& name, const Shape& shape) {
  const Entry* e = Find(name);
  if (e == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": missing tensor '", name, "'"));
  }
  if (e->tensor.shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(e->file, ": tensor '", name, "' has shape ",
                                                   ShapeString(e->tensor.shape()),
                                                   ", config wants ", ShapeString(shape)));
  }
  used_.insert(name);
  return e->tensor;
}

absl::StatusOr<Tensor> WeightSet::Take(const std::string& name, const Shape& shape,
                                       Backend& backend, DType dtype) {
  TV_ASSIGN_OR_RETURN(Tensor host, TakeHost(name, shape));
  auto up = backend.Upload(host, dtype);
  if (!up.ok()) {
    return absl::Status(up.status().code(), absl::StrCat(Find(name)->file, ": tensor '", name,
                                                         "': ", up.status().message()));
  }
  return up;
}

namespace {

absl::Status CheckRange(const std::string& name, int64_t begin, int64_t end, int64_t dim,
                        const char* what) {
  if (begin < 0 || end > dim || begin >= end) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ", what, " [", begin,
                                                   ", ", end, ") outside [0, ", dim, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> WeightSet::TakeRows(const std::string& name, const Shape& shape,
                                           int64_t begin, int64_t end, Backend& backend,
                                           DType dtype) {
  TV_ASSIGN_OR_RETURN(Tensor host, TakeHost(name, shape));
  TV_RETURN_IF_ERROR(CheckRange(name, begin, end, shape.empty() ? 0 : shape[0], "rows"));
  auto up = backend.Upload(host.Slice0(begin, end), dtype);
  if (!up.ok()) {
    return absl::Status(up.status().code(), absl::StrCat(Find(name)->file, ": tensor '", name,
                                                         "' rows: ", up.status().message()));
  }
  return up;
}

absl::StatusOr<Tensor> WeightSet::TakeColumns(const std::string& name, const Shape& shape,
                                              int64_t begin, int64_t end, Backend& backend,
                                              DType dtype) {
  TV_ASSIGN_OR_RETURN(Tensor host, TakeHost(name, shape));
  if (shape.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "': columns of ", ShapeString(shape), ", want 2-D"));
  }
  TV_RETURN_IF_ERROR(CheckRange(name, begin, end, shape[1], "columns"));
  const int64_t rows = shape[0], cols = shape[1], width = end - begin;
  const size_t es = DTypeSize(host.dtype());
  Tensor shard = Tensor::Zeros(host.dtype(), {rows, width});
  const char* src = static_cast<const char*>(host.raw());
  char* dst = static_cast<char*>(shard.raw());
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst + r * width * es, src + (r * cols + begin) * es, width * es);
  }
  auto up = backend.Upload(shard, dtype);
  if (!up.ok()) {
    return absl::Status(up.status().code(), absl::StrCat(Find(name)->file, ": tensor '", name,
                                                         "' columns: ", up.status().message()));
  }
  return up;
}

absl::Status WeightSet::CheckAllUsed() const {
  for (const auto& [name, e] : entries_) {
    if (used_.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(e.file, ": unexpected tensor '", name, "' (",
                                                     e.tensor.Describe(),
                                                     ") not used by the configured model"));
    }
  }
  return absl::OkStatus();
}

}  // namespace turbovid::engine::io
