// WeightSet::Load: picks the reader by path (safetensors file, sharded index, .pth, directory),
// cross-checks sharded indexes against their shards, and reads JSON config files.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "engine/io/pth.h"
#include "engine/io/safetensors.h"
#include "engine/io/weights.h"

namespace turbovid::engine::io {
namespace {

namespace fs = std::filesystem;

struct Source {
  std::string file;
  TensorMap tensors;
};

bool IsIndex(const std::string& path) { return absl::EndsWith(path, ".safetensors.index.json"); }
bool IsPth(const std::string& path) {
  return absl::EndsWith(path, ".pth") || absl::EndsWith(path, ".pt");
}

absl::StatusOr<TensorMap> ReadTensorFile(const std::string& path) {
  if (absl::EndsWith(path, ".safetensors")) return ReadSafetensors(path);
  if (IsPth(path)) return ReadPth(path);
  return absl::InvalidArgumentError(
      absl::StrCat(path,
                   ": unknown checkpoint kind (want .safetensors, .pth, .pt, "
                   "*.safetensors.index.json or a directory)"));
}

// weight_map: tensor → shard file (relative to the index).
absl::StatusOr<std::map<std::string, std::string>> ReadWeightMap(const std::string& index) {
  TV_ASSIGN_OR_RETURN(Json json, ReadJsonFile(index));
  const Json* map = json.is_object() ? json.Find("weight_map") : nullptr;
  if (map == nullptr || !map->is_object()) {
    return absl::DataLossError(absl::StrCat(index, ": no \"weight_map\" object"));
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, file] : map->object()) {
    if (!file.is_string() || file.str().empty()) {
      return absl::DataLossError(
          absl::StrCat(index, ": weight_map entry '", key, "' is not a file name"));
    }
    out.emplace(key, file.str());
  }
  if (out.empty()) return absl::DataLossError(absl::StrCat(index, ": empty weight_map"));
  return out;
}

absl::StatusOr<std::vector<Source>> ReadSharded(const std::string& index) {
  TV_ASSIGN_OR_RETURN(auto weight_map, ReadWeightMap(index));
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [key, shard] : weight_map) by_shard[shard].push_back(key);
  const fs::path dir = fs::path(index).parent_path();
  std::vector<Source> out;
  for (const auto& [shard, keys] : by_shard) {
    const std::string path = (dir / shard).string();
    auto tensors = ReadTensorFile(path);
    if (!tensors.ok()) {
      return absl::Status(tensors.status().code(), absl::StrCat(index, ": shard '", shard,
                                                                "': ", tensors.status().message()));
    }
    for (const std::string& key : keys) {
      if (tensors->count(key) == 0) {
        return absl::DataLossError(absl::StrCat(index, ": tensor '", key, "' is listed in shard ",
                                                path, " but absent from it"));
      }
    }
    for (const auto& [key, t] : *tensors) {
      auto it = weight_map.find(key);
      if (it == weight_map.end() || it->second != shard) {
        return absl::DataLossError(absl::StrCat(
            path, ": tensor '", key, "' is ",
            it == weight_map.end() ? "not in the weight_map of " : "mapped to another shard by ",
            index));
      }
    }
    out.push_back({path, *std::move(tensors)});
  }
  return out;
}

// The checkpoint file of a DiT directory (see WeightSet::Load).
absl::StatusOr<std::string> ResolveDirectory(const std::string& dir) {
  for (const char* name :
       {"diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors"}) {
    std::error_code ec;
    fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  std::vector<std::string> indexes, files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code fec;
    if (!e.is_regular_file(fec)) continue;
    const std::string p = e.path().string();
    if (IsIndex(p)) indexes.push_back(p);
    if (absl::EndsWith(p, ".safetensors") || IsPth(p)) files.push_back(p);
  }
  if (ec) return absl::NotFoundError(absl::StrCat(dir, ": cannot list: ", ec.message()));
  std::sort(indexes.begin(), indexes.end());
  std::sort(files.begin(), files.end());
  if (indexes.size() == 1) return indexes[0];
  const std::vector<std::string>& ambiguous = indexes.empty() ? files : indexes;
  if (ambiguous.size() == 1) return ambiguous[0];
  if (ambiguous.empty()) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no *.safetensors, *.safetensors.index.json, *.pth or *.pt file"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(dir, ": ambiguous checkpoint, candidates: ", absl::StrJoin(ambiguous, ", ")));
}

}  // namespace

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  auto json = Json::Parse(text.str());
  if (!json.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": bad JSON: ", json.status().message()));
  }
  return json;
}

absl::StatusOr<WeightSet> WeightSet::Load(const std::string& path) {
  WeightSet set;
  set.set_origin(path);
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    TV_ASSIGN_OR_RETURN(file, ResolveDirectory(path));
  }
  std::vector<Source> sources;
  if (IsIndex(file)) {
    TV_ASSIGN_OR_RETURN(sources, ReadSharded(file));
  } else {
    TV_ASSIGN_OR_RETURN(TensorMap tensors, ReadTensorFile(file));
    sources.push_back({file, std::move(tensors)});
  }
  std::vector<std::string> keys;
  for (const Source& s : sources) {
    for (const auto& [name, t] : s.tensors) keys.push_back(name);
  }
  const KeyStyle style = DetectKeyStyle(keys);
  for (const Source& s : sources) {
    for (const auto& [name, t] : s.tensors) TV_RETURN_IF_ERROR(set.Add(name, t, s.file, style));
  }
  return set;
}

}  // namespace turbovid::engine::io
