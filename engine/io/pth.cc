// torch.save zip archives: libzip validates and lists the archive and reads small or compressed
// entries; stored storage entries are located through the central directory (libzip does not
// expose data offsets) and wrapped in place. The writer emits torch's layout itself.
#include "engine/io/pth.h"

#include <zip.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/io/pickle.h"

namespace turbovid::engine::io {
namespace {

constexpr size_t kMaxPickleEntry = size_t{64} << 20;
constexpr uint64_t kMaxEntries = 1u << 20;

uint64_t LoadLE(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int k = 0; k < bytes; ++k) v |= uint64_t{p[k]} << (8 * k);
  return v;
}

// Data offsets of the stored (method 0) entries, from the end-of-central-directory record (zip64
// aware) and each local header. Any inconsistency returns an empty map: the caller then reads
// through libzip instead, which has already validated the archive.
std::unordered_map<std::string, uint64_t> StoredDataOffsets(const unsigned char* base,
                                                            size_t size) {
  std::unordered_map<std::string, uint64_t> out;
  if (size < 64) return out;  // too small to matter: read through libzip
  size_t eocd = size - 22;
  const size_t stop = size > 22 + 65535 ? size - 22 - 65535 : 0;
  while (LoadLE(base + eocd, 4) != 0x06054b50) {
    if (eocd == stop) return out;
    --eocd;
  }
  uint64_t count = LoadLE(base + eocd + 10, 2), cd = LoadLE(base + eocd + 16, 4);
  if ((count == 0xffff || cd == 0xffffffff) && eocd >= 20 &&
      LoadLE(base + eocd - 20, 4) == 0x07064b50) {
    const uint64_t z64 = LoadLE(base + eocd - 20 + 8, 8);
    if (z64 > size - 56 || LoadLE(base + z64, 4) != 0x06064b50) return {};
    count = LoadLE(base + z64 + 32, 8);
    cd = LoadLE(base + z64 + 48, 8);
  }
  for (uint64_t e = 0; e < count && e < kMaxEntries; ++e) {
    if (cd > size - 46 || LoadLE(base + cd, 4) != 0x02014b50) return {};
    const uint64_t method = LoadLE(base + cd + 10, 2), name_len = LoadLE(base + cd + 28, 2);
    const uint64_t extra_len = LoadLE(base + cd + 30, 2), comment_len = LoadLE(base + cd + 32, 2);
    uint64_t comp = LoadLE(base + cd + 20, 4), raw = LoadLE(base + cd + 24, 4);
    uint64_t local = LoadLE(base + cd + 42, 4);
    const uint64_t next = cd + 46 + name_len + extra_len + comment_len;
    if (next > size) return {};
    // zip64 extended information: only the fields that are 0xffffffff above, in this order.
    for (uint64_t x = cd + 46 + name_len; x + 4 <= cd + 46 + name_len + extra_len;) {
      const uint64_t id = LoadLE(base + x, 2), len = LoadLE(base + x + 2, 2);
      uint64_t f = x + 4;
      if (f + len > next) return {};
      if (id == 1) {
        for (uint64_t* v : {&raw, &comp, &local}) {
          if (*v != 0xffffffff) continue;
          if (f + 8 > x + 4 + len) return {};
          *v = LoadLE(base + f, 8);
          f += 8;
        }
      }
      x += 4 + len;
    }
    if (method == 0 && local <= size - 30 && LoadLE(base + local, 4) == 0x04034b50) {
      const uint64_t data =
          local + 30 + LoadLE(base + local + 26, 2) + LoadLE(base + local + 28, 2);
      if (comp == raw && data <= size && comp <= size - data) {
        out.emplace(std::string(reinterpret_cast<const char*>(base + cd + 46), name_len), data);
      }
    }
    cd = next;
  }
  return out;
}

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;

class PthArchive {
 public:
  PthArchive(std::shared_ptr<Storage> image, const std::string& file)
      : image_(std::move(image)), file_(file) {}

  absl::StatusOr<TensorMap> Parse();

 private:
  absl::Status Fail(const std::string& why) const {
    return absl::DataLossError(absl::StrCat(file_, ": ", why));
  }
  absl::Status Open();
  absl::Status FindRecords();
  absl::Status CheckByteOrder();
  absl::Status ReadInto(uint64_t index, const std::string& name, void* dst, uint64_t bytes);
  absl::StatusOr<std::string> ReadSmall(uint64_t index, const std::string& name, size_t limit);
  absl::StatusOr<Tensor> LoadStorage(const PickleStorageRef& ref);

  std::shared_ptr<Storage> image_;
  const std::string& file_;
  ZipPtr zip_;
  std::map<std::string, uint64_t> entries_;  // name → libzip index
  std::unordered_map<std::string, uint64_t> offsets_;
  std::string prefix_;  // "<top>/"
};

absl::Status PthArchive::Open() {
  const auto* bytes = static_cast<const unsigned char*>(image_->data);
  if (image_->bytes < 4) return Fail(absl::StrCat("too short (", image_->bytes, " bytes)"));
  if (std::memcmp(bytes, "PK\x03\x04", 4) != 0) {
    if (bytes[0] == 0x80 || bytes[0] == 0x8a) {
      return absl::UnimplementedError(absl::StrCat(
          file_, ": legacy (pre-1.6, non-zip) torch.save format; re-save it with a newer torch"));
    }
    return Fail("not a zip archive (bad magic)");
  }
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(image_->data, image_->bytes, 0, &err);
  zip_t* z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err) : nullptr;
  if (z == nullptr) {
    if (src) zip_source_free(src);
    std::string why = zip_error_strerror(&err);
    zip_error_fini(&err);
    return Fail(absl::StrCat("bad zip archive: ", why));
  }
  zip_error_fini(&err);
  zip_.reset(z);
  return absl::OkStatus();
}

absl::Status PthArchive::FindRecords() {
  const zip_int64_t n = zip_get_num_entries(zip_.get(), 0);
  if (n < 0 || static_cast<uint64_t>(n) > kMaxEntries) return Fail("bad entry count");
  std::vector<std::string> pickles;
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(zip_.get(), i, ZIP_FL_ENC_RAW);
    if (name == nullptr) return Fail(absl::StrCat("entry ", i, " has no name"));
    std::string s(name);
    const size_t slash = s.find('/');
    if (slash != std::string::npos && s.substr(slash + 1) == "data.pkl") pickles.push_back(s);
    entries_.emplace(std::move(s), i);
  }
  if (pickles.size() != 1) {
    return Fail(pickles.empty() ? "no <top>/data.pkl entry (not a torch.save archive)"
                                : "several <top>/data.pkl entries");
  }
  prefix_ = pickles[0].substr(0, pickles[0].size() - 8);
  return absl::OkStatus();
}

absl::Status PthArchive::ReadInto(uint64_t index, const std::string& name, void* dst,
                                  uint64_t bytes) {
  zip_file_t* f = zip_fopen_index(zip_.get(), index, 0);
  if (f == nullptr) {
    return Fail(absl::StrCat("entry '", name, "': ", zip_strerror(zip_.get())));
  }
  uint64_t done = 0;
  while (done < bytes) {
    zip_int64_t got = zip_fread(f, static_cast<char*>(dst) + done, bytes - done);
    if (got <= 0) {
      std::string why = got < 0 ? zip_file_strerror(f) : "unexpected end of data";
      zip_fclose(f);
      return Fail(absl::StrCat("entry '", name, "': ", why));
    }
    done += static_cast<uint64_t>(got);
  }
  char probe;  // a longer stream than its recorded size is corrupt too (CRC is checked at EOF)
  zip_int64_t extra = zip_fread(f, &probe, 1);
  std::string why = extra < 0 ? zip_file_strerror(f) : "";
  zip_fclose(f);
  if (extra != 0) return Fail(absl::StrCat("entry '", name, "': ", extra < 0 ? why : "too long"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> PthArchive::ReadSmall(uint64_t index, const std::string& name,
                                                  size_t limit) {
  zip_stat_t st;
  if (zip_stat_index(zip_.get(), index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
    return Fail(absl::StrCat("entry '", name, "': cannot stat"));
  }
  if (st.size > limit) return Fail(absl::StrCat("entry '", name, "': ", st.size, " bytes"));
  std::string out(st.size, '\0');
  TV_RETURN_IF_ERROR(ReadInto(index, name, out.data(), st.size));
  return out;
}

absl::Status PthArchive::CheckByteOrder() {
  auto it = entries_.find(prefix_ + "byteorder");
  if (it == entries_.end()) return absl::OkStatus();  // older torch: always little-endian
  TV_ASSIGN_OR_RETURN(std::string order, ReadSmall(it->second, it->first, 64));
  absl::string_view v = absl::StripAsciiWhitespace(order);
  if (v == "little") return absl::OkStatus();
  if (v == "big") {
    return absl::UnimplementedError(absl::StrCat(file_, ": big-endian archive"));
  }
  return Fail(absl::StrCat("entry '", it->first, "': unknown byte order"));
}

absl::StatusOr<Tensor> PthArchive::LoadStorage(const PickleStorageRef& ref) {
  const std::string name = absl::StrCat(prefix_, "data/", ref.key);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return Fail(absl::StrCat("missing entry '", name, "' for storage '", ref.key, "'"));
  }
  zip_stat_t st;
  if (zip_stat_index(zip_.get(), it->second, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
      !(st.valid & ZIP_STAT_COMP_SIZE) || !(st.valid & ZIP_STAT_COMP_METHOD)) {
    return Fail(absl::StrCat("entry '", name, "': cannot stat"));
  }
  const size_t esize = DTypeSize(ref.dtype);
  const uint64_t want = static_cast<uint64_t>(ref.numel) * esize;
  if (st.size != want) {
    return Fail(absl::StrCat("entry '", name, "' holds ", st.size, " bytes, storage needs ",
                             ref.numel, " x ", esize, " = ", want));
  }
  auto off = offsets_.find(name);
  if (st.comp_method == ZIP_CM_STORE && off != offsets_.end() &&
      (reinterpret_cast<uintptr_t>(image_->data) + off->second) % esize == 0) {
    auto view = std::make_shared<Storage>();
    view->data = static_cast<char*>(image_->data) + off->second;
    view->bytes = want;
    view->owner = std::shared_ptr<void>(image_, image_->data);  // keeps the mapping alive
    return Tensor::Wrap(std::move(view), 0, ref.dtype, {ref.numel});
  }
  // Compressed or unaligned: copy out. Deflate expands at most ~1032x; a larger claimed size is
  // corrupt and must not drive the allocation.
  if (st.size > st.comp_size * 1100 + 4096) {
    return Fail(absl::StrCat("entry '", name, "': implausible size ", st.size, " for ",
                             st.comp_size, " compressed bytes"));
  }
  Tensor t = Tensor::Zeros(ref.dtype, {ref.numel});
  TV_RETURN_IF_ERROR(ReadInto(it->second, name, t.raw(), want));
  return t;
}

absl::StatusOr<TensorMap> PthArchive::Parse() {
  TV_RETURN_IF_ERROR(Open());
  TV_RETURN_IF_ERROR(FindRecords());
  TV_RETURN_IF_ERROR(CheckByteOrder());
  const std::string pkl_name = prefix_ + "data.pkl";
  TV_ASSIGN_OR_RETURN(std::string pkl, ReadSmall(entries_.at(pkl_name), pkl_name, kMaxPickleEntry));
  offsets_ = StoredDataOffsets(static_cast<const unsigned char*>(image_->data), image_->bytes);
  return UnpickleStateDict(pkl, file_,
                           [this](const PickleStorageRef& ref) { return LoadStorage(ref); });
}

// ---- writer ----

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[n] = c;
  }
  return t;
}

uint32_t Crc32(const void* data, size_t n) {
  static constexpr std::array<uint32_t, 256> kTable = MakeCrcTable();
  uint32_t c = 0xffffffffu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t k = 0; k < n; ++k) c = kTable[(c ^ p[k]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

void PutLE(std::string& out, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
}

struct ZipEntry {
  std::string name;
  const void* data;
  uint64_t size;
  uint32_t crc = 0;
  uint64_t local = 0;
};

// Local header (+ 'FB' padding extra field so the data starts 64-byte aligned, like torch).
std::string LocalHeader(const ZipEntry& e, uint64_t offset) {
  std::string h;
  PutLE(h, 0x04034b50, 4);
  PutLE(h, 20, 2);  // version needed
  PutLE(h, 0, 2);   // flags
  PutLE(h, 0, 2);   // stored
  PutLE(h, 0, 4);   // time, date (torch writes zeros)
  PutLE(h, e.crc, 4);
  PutLE(h, e.size, 4);
  PutLE(h, e.size, 4);
  const uint64_t pad = (64 - (offset + 30 + e.name.size() + 4) % 64) % 64;
  PutLE(h, e.name.size(), 2);
  PutLE(h, 4 + pad, 2);
  h += e.name;
  PutLE(h, 0x4246, 2);  // "FB"
  PutLE(h, pad, 2);
  h.append(pad, 'Z');
  return h;
}

std::string CentralDirectory(const std::vector<ZipEntry>& entries, uint64_t cd_offset) {
  std::string cd;
  for (const ZipEntry& e : entries) {
    PutLE(cd, 0x02014b50, 4);
    PutLE(cd, 20, 2);  // made by
    PutLE(cd, 20, 2);  // needed
    PutLE(cd, 0, 2);
    PutLE(cd, 0, 2);
    PutLE(cd, 0, 4);
    PutLE(cd, e.crc, 4);
    PutLE(cd, e.size, 4);
    PutLE(cd, e.size, 4);
    PutLE(cd, e.name.size(), 2);
    PutLE(cd, 0, 2);  // extra
    PutLE(cd, 0, 2);  // comment
    PutLE(cd, 0, 2);  // disk
    PutLE(cd, 0, 2);  // internal attributes
    PutLE(cd, 0, 4);  // external attributes
    PutLE(cd, e.local, 4);
    cd += e.name;
  }
  const uint64_t cd_size = cd.size();
  PutLE(cd, 0x06054b50, 4);
  PutLE(cd, 0, 4);  // disk numbers
  PutLE(cd, entries.size(), 2);
  PutLE(cd, entries.size(), 2);
  PutLE(cd, cd_size, 4);
  PutLE(cd, cd_offset, 4);
  PutLE(cd, 0, 2);
  return cd;
}

}  // namespace

absl::StatusOr<TensorMap> ParsePth(std::shared_ptr<Storage> image, const std::string& file) {
  PthArchive archive(std::move(image), file);
  return archive.Parse();
}

absl::StatusOr<TensorMap> ReadPth(const std::string& path) {
  TV_ASSIGN_OR_RETURN(std::shared_ptr<Storage> image, MapFile(path));
  return ParsePth(std::move(image), path);
}

absl::Status WritePth(const std::string& path, const TensorMap& tensors,
                      const std::string& archive) {
  for (const auto& [name, t] : tensors) {
    if (!t.defined() || t.device() != Device::kCpu) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", name, "' is not on the host"));
    }
  }
  TV_ASSIGN_OR_RETURN(std::string pkl, PickleStateDict(tensors));
  static constexpr char kOrder[] = "little", kVersion[] = "3\n";
  std::vector<ZipEntry> entries;
  entries.push_back({archive + "/data.pkl", pkl.data(), pkl.size()});
  entries.push_back({archive + "/byteorder", kOrder, 6});
  size_t key = 0;
  for (const auto& [name, t] : tensors) {
    entries.push_back({absl::StrCat(archive, "/data/", key++), t.raw(), t.nbytes()});
  }
  entries.push_back({archive + "/version", kVersion, 2});
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create"));
  uint64_t offset = 0;
  bool ok = true;
  for (ZipEntry& e : entries) {
    e.crc = Crc32(e.data, e.size);
    e.local = offset;
    std::string h = LocalHeader(e, offset);
    ok = ok && std::fwrite(h.data(), 1, h.size(), f) == h.size();
    ok = ok && (e.size == 0 || std::fwrite(e.data, 1, e.size, f) == e.size);
    offset += h.size() + e.size;
  }
  if (offset >= 0xffffffffu || entries.size() >= 0xffff) {
    std::fclose(f);
    std::remove(path.c_str());
    return absl::UnimplementedError(
        absl::StrCat(path, ": archive would need zip64 (>= 4 GiB); write safetensors instead"));
  }
  std::string cd = CentralDirectory(entries, offset);
  ok = ok && std::fwrite(cd.data(), 1, cd.size(), f) == cd.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace turbovid::engine::io
