// WeightSet: the tensors of a checkpoint under normalised (official Wan) names, with the file
// each came from, so every shape/dtype/missing/extra error names the file and the tensor.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/json.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::io {

// How a checkpoint names its tensors. Diffusers names are mostly recognisable one key at a time,
// but `blocks.i.norm2` (diffusers' affine cross-attn norm = official norm3) is also a valid umT5
// name, so the norm2 <-> norm3 swap needs the whole set: kDiffusers.
enum class KeyStyle { kAuto, kDiffusers };

// Official Wan key for a TurboDiffusion / diffusers / training-wrapper key (key_names.cc,
// docs/model-math.md §2.2, §2.3): strips `net.`, `model.` (before a Wan name) and
// `_checkpoint_wrapped_module.`, maps diffusers names; TurboDiffusion names pass through.
std::string NormalizeKey(const std::string& key, KeyStyle style = KeyStyle::kAuto);
// True when `key` is unmistakably a diffusers WanTransformer3DModel name.
bool IsDiffusersKey(const std::string& key);
// kDiffusers when any key of the set is a diffusers name.
KeyStyle DetectKeyStyle(const std::vector<std::string>& keys);

// Reads and parses a JSON file (config.json, index files). NotFound if it cannot be read,
// DataLoss naming the file if it is not valid JSON.
absl::StatusOr<Json> ReadJsonFile(const std::string& path);

class WeightSet {
 public:
  struct Entry {
    Tensor tensor;  // host tensor as stored (mmap-backed where possible)
    std::string file;
  };

  // Loads a checkpoint path: a .safetensors file, a *.safetensors.index.json (sharded: every shard
  // once, index and shards must agree), a .pth/.pt (torch zip), or a directory (DiT dir:
  // diffusion_pytorch_model.safetensors.index.json, else diffusion_pytorch_model.safetensors, else
  // its only *.safetensors.index.json, else its only *.safetensors/*.pth/*.pt; several →
  // InvalidArgument listing them). Keys are normalised; corrupt files are DataLoss naming them.
  static absl::StatusOr<WeightSet> Load(const std::string& path);

  // Adds a tensor under its normalised name; a duplicate is DataLoss naming both files.
  absl::Status Add(const std::string& raw_name, Tensor tensor, const std::string& file,
                   KeyStyle style = KeyStyle::kAuto);

  bool Has(const std::string& name) const { return entries_.count(name) != 0; }
  const Entry* Find(const std::string& name) const;
  const std::map<std::string, Entry>& entries() const { return entries_; }

  // The tensor `name`, checked against `shape`, uploaded to `backend` as `dtype`. Missing or
  // misshapen → InvalidArgument naming the file (or the set's origin) and the tensor.
  // Marks the name as used.
  absl::StatusOr<Tensor> Take(const std::string& name, const Shape& shape, Backend& backend,
                              DType dtype);
  // Tensor-parallel shards (docs/parallelism.md §2): tensor `name`, checked against its whole
  // `shape`, cut to rows [begin, end) of dim 0 (TakeRows: a view of the stored, usually mmap'd
  // tensor, so only the shard's bytes are read and uploaded) or to columns [begin, end) of a 2-D
  // tensor (TakeColumns: gathered row by row into a host buffer of the shard's size, then
  // uploaded). No rank ever copies a whole tensor. Marks the name as used.
  absl::StatusOr<Tensor> TakeRows(const std::string& name, const Shape& shape, int64_t begin,
                                  int64_t end, Backend& backend, DType dtype);
  absl::StatusOr<Tensor> TakeColumns(const std::string& name, const Shape& shape, int64_t begin,
                                     int64_t end, Backend& backend, DType dtype);
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
