// WeightSet: the tensors of a checkpoint under normalised (official Wan) names, with the file
// each came from, so every shape/dtype/missing/extra error names the file and the tensor.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::io {

// Official Wan key for a TurboDiffusion / diffusers / training-wrapper key (key_names.cc).
std::string NormalizeKey(const std::string& key);

class WeightSet {
 public:
  struct Entry {
    Tensor tensor;  // host tensor as stored (mmap-backed where possible)
    std::string file;
  };

  // Loads a checkpoint path: a .safetensors file, a *.safetensors.index.json (sharded), a .pth
  // (torch zip), or a directory holding exactly one of those for the DiT. Keys are normalised.
  static absl::StatusOr<WeightSet> Load(const std::string& path);

  // Adds a tensor under its normalised name; a duplicate is DataLoss naming both files.
  absl::Status Add(const std::string& raw_name, Tensor tensor, const std::string& file);

  bool Has(const std::string& name) const { return entries_.count(name) != 0; }
  const Entry* Find(const std::string& name) const;
  const std::map<std::string, Entry>& entries() const { return entries_; }

  // The tensor `name`, checked against `shape`, uploaded to `backend` as `dtype`. Missing or
  // misshapen → InvalidArgument naming the file (or the set's origin) and the tensor.
  // Marks the name as used.
  absl::StatusOr<Tensor> Take(const std::string& name, const Shape& shape, Backend& backend,
                              DType dtype);
  // Host tensor `name` (any dtype) checked against `shape`; marks it used.
  absl::StatusOr<Tensor> TakeHost(const std::string& name, const Shape& shape);
  // Marks a name used without loading it (tensors a mode ignores, e.g. proj_l in dense mode).
  void Ignore(const std::string& name) { used_.insert(name); }
  // InvalidArgument naming the first unused tensor and its file, if any.
  absl::Status CheckAllUsed() const;

  const std::string& origin() const { return origin_; }
  void set_origin(std::string origin) { origin_ = std::move(origin); }

 private:
  std::map<std::string, Entry> entries_;
  std::set<std::string> used_;
  std::string origin_;
};

}  // namespace turbovid::engine::io
