// safetensors: header validation (offsets, sizes, dtypes, overlaps) and mmap-backed tensors.
#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/json.h"

namespace turbovid::engine::io {

absl::StatusOr<std::shared_ptr<Storage>> MapFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(path, ": cannot stat"));
  }
  auto storage = std::make_shared<Storage>();
  storage->bytes = static_cast<size_t>(st.st_size);
  if (st.st_size == 0) {
    ::close(fd);
    storage->data = nullptr;
    return storage;
  }
  void* p = ::mmap(nullptr, storage->bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return absl::DataLossError(absl::StrCat(path, ": mmap failed"));
  size_t bytes = storage->bytes;
  storage->data = p;
  storage->owner = std::shared_ptr<void>(p, [bytes](void* q) { ::munmap(q, bytes); });
  return storage;
}

absl::StatusOr<TensorMap> ParseSafetensors(std::shared_ptr<Storage> owner, const std::string& file) {
  const size_t size = owner->bytes;
  const char* base = static_cast<const char*>(owner->data);
  if (size < 8) return absl::DataLossError(absl::StrCat(file, ": truncated (", size, " bytes, no header length)"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);  // little-endian hosts only (x86-64, aarch64)
  if (header_len > size - 8 || header_len > (100u << 20)) {
    return absl::DataLossError(absl::StrCat(file, ": header length ", header_len, " exceeds file size ", size));
  }
  auto json = Json::Parse(std::string_view(base + 8, header_len));
  if (!json.ok()) return absl::DataLossError(absl::StrCat(file, ": bad header: ", std::string(json.status().message())));
  if (!json->is_object()) return absl::DataLossError(absl::StrCat(file, ": header is not a JSON object"));
  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;
  TensorMap out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, entry] : json->object()) {
    if (name == "__metadata__") continue;
    auto fail = [&, &name = name](const std::string& why) {  // clang 14: no binding captures
      return absl::DataLossError(absl::StrCat(file, ": tensor '", name, "': ", why));
    };
    if (!entry.is_object()) return fail("entry is not an object");
    auto dtype_name = entry.GetString("dtype");
    if (!dtype_name.ok()) return fail("missing dtype");
    std::optional<DType> dtype = DTypeFromName(*dtype_name);
    if (!dtype) return fail(absl::StrCat("unsupported dtype ", *dtype_name));
    auto shape = entry.GetIntArray("shape");
    if (!shape.ok()) return fail("missing or bad shape");
    auto offsets = entry.GetIntArray("data_offsets");
    if (!offsets.ok() || offsets->size() != 2) return fail("missing or bad data_offsets");
    uint64_t elems = 1;
    for (int64_t d : *shape) {
      if (d < 0 || (d > 0 && elems > (uint64_t{1} << 48) / static_cast<uint64_t>(d))) return fail("bad shape");
      elems *= static_cast<uint64_t>(d);
    }
    const int64_t begin = (*offsets)[0], end = (*offsets)[1];
    if (begin < 0 || end < begin) return fail("data_offsets out of order");
    if (static_cast<uint64_t>(end) > data_size) {
      return fail(absl::StrCat("data ends at ", end, " but the file holds ", data_size,
                               " data bytes (truncated?)"));
    }
    if (static_cast<uint64_t>(end - begin) != elems * DTypeSize(*dtype)) {
      return fail(absl::StrCat("byte size ", end - begin, " != ", elems, " x ", DTypeSize(*dtype)));
    }
    ranges.emplace_back(begin, end);
    out.emplace(name, Tensor::Wrap(owner, data_start + static_cast<size_t>(begin), *dtype, *shape));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return absl::DataLossError(absl::StrCat(file, ": tensor data ranges overlap"));
    }
  }
  return out;
}

absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path) {
  TV_ASSIGN_OR_RETURN(std::shared_ptr<Storage> storage, MapFile(path));
  return ParseSafetensors(std::move(storage), path);
}

namespace {
std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      absl::StrAppend(&header, first ? "" : ",", "\"", JsonEscape(k), "\":\"", JsonEscape(v), "\"");
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  bool first = metadata.empty();
  for (const auto& [name, t] : tensors) {
    std::string shape;
    for (size_t i = 0; i < t.shape().size(); ++i) absl::StrAppend(&shape, i ? "," : "", t.shape()[i]);
    absl::StrAppend(&header, first ? "" : ",", "\"", JsonEscape(name), "\":{\"dtype\":\"",
                    std::string(DTypeName(t.dtype())), "\",\"shape\":[", shape, "],\"data_offsets\":[", offset, ",",
                    offset + t.nbytes(), "]}");
    offset += t.nbytes();
    first = false;
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create"));
  uint64_t n = header.size();
  bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(header.data(), 1, n, f) == n;
  for (const auto& [name, t] : tensors) {
    if (t.nbytes() > 0) ok = ok && std::fwrite(t.raw(), 1, t.nbytes(), f) == t.nbytes();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace turbovid::engine::io
