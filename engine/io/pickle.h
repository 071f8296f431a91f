// Pickle subset for torch.save state dicts: a bounded, non-recursive VM that turns data.pkl into
// named tensors (storages resolved through a caller-supplied loader), and the matching writer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace turbovid::engine::io {

// A persistent id ('storage', torch.<T>Storage, key, location, numel) from data.pkl.
struct PickleStorageRef {
  DType dtype = DType::kU8;
  std::string key;       // archive entry data/<key>
  std::string location;  // "cpu", "cuda:0", ... (informational; everything loads to host)
  int64_t numel = 0;
};

// Returns the storage as a host tensor [numel] of `ref.dtype`. Called once per distinct key.
using PickleStorageLoader = std::function<absl::StatusOr<Tensor>(const PickleStorageRef& ref)>;

// Runs `pkl` (protocol 2..5 subset) and returns its top-level dict of str → tensor. Every
// problem, including opcodes or globals outside the subset, is DataLoss naming `file` and, where
// known, the tensor. Memory is bounded by the input size plus the tensors the loader returns.
absl::StatusOr<TensorMap> UnpickleStateDict(std::string_view pkl, const std::string& file,
                                            const PickleStorageLoader& loader);

// torch.save's data.pkl (protocol 2) for `tensors` in map order: an OrderedDict of
// _rebuild_tensor_v2 calls whose storage keys are "0", "1", ... in the same order, plus an
// empty `_metadata` attribute. Host tensors only (InvalidArgument otherwise).
absl::StatusOr<std::string> PickleStateDict(const TensorMap& tensors);

// torch storage class name ("BFloat16Storage") for a dtype.
std::string_view TorchStorageName(DType dtype);

}  // namespace turbovid::engine::io
