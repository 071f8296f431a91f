// safetensors reader (mmap, zero-copy host tensors) and writer.
// Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, raw data.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::io {

// Tensors in file order of names; each wraps the read-only mapping (kept alive by the tensors).
using TensorMap = std::map<std::string, Tensor>;

// Parses a safetensors image already in memory (`owner` keeps `bytes` alive). Every structural
// problem is DataLoss naming `file` and, where known, the tensor.
absl::StatusOr<TensorMap> ParseSafetensors(std::shared_ptr<Storage> owner, const std::string& file);

// mmaps `path` and parses it.
absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path);

// Writes host tensors (any dtype) to `path`; `metadata` goes under "__metadata__" if non-empty.
absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Maps a whole file read-only into a Storage (the mapping is released with the last reference).
absl::StatusOr<std::shared_ptr<Storage>> MapFile(const std::string& path);

}  // namespace turbovid::engine::io
