// PyTorch .pth / .pt checkpoints (torch.save zip archives: <top>/data.pkl, <top>/data/<key>,
// <top>/version, optional <top>/byteorder and <top>/.data/serialization_id) holding a flat
// state dict. Stored entries become zero-copy views of the file mapping.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace turbovid::engine::io {

// Parses a torch.save archive already in memory (`image` keeps the bytes alive; tensors of stored
// entries alias it). Corruption is DataLoss naming `file` and, where known, the entry or tensor;
// a big-endian archive or the pre-1.6 non-zip format is Unimplemented.
absl::StatusOr<TensorMap> ParsePth(std::shared_ptr<Storage> image, const std::string& file);

// mmaps `path` and parses it (NotFound if it cannot be opened).
absl::StatusOr<TensorMap> ReadPth(const std::string& path);

// Writes host tensors in torch.save's layout: stored zip entries (data 64-byte aligned, as torch
// does) `<archive>/data.pkl`, `<archive>/byteorder` = "little", `<archive>/data/<i>` and
// `<archive>/version` = "3\n". Archives of 4 GiB or more (zip64) are not written: Unimplemented.
absl::Status WritePth(const std::string& path, const TensorMap& tensors,
                      const std::string& archive = "archive");

}  // namespace turbovid::engine::io
