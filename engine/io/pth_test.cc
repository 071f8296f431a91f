// .pth reader/writer: golden archive equals its safetensors twin, round trips, torch layout
// variants (no byteorder, serialization_id, compressed entries), strided views, and the named
// errors for truncated, corrupt and hostile archives and pickles.
#include "engine/io/pth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zip.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "engine/io/pickle.h"

namespace turbovid::engine::io {
namespace {

using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;

std::string TempPath(const std::string& name) { return testing::TempDir() + "/pth_" + name; }
std::string Golden(const std::string& rel) {
  return std::string(TV_SOURCE_DIR) + "/tests/data/golden/" + rel;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

bool SameTensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// A zip built with libzip (not our writer): entries in order, stored or deflated.
void MakeZip(const std::string& path,
             const std::vector<std::pair<std::string, std::string>>& entries, bool deflate) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  for (const auto& [name, bytes] : entries) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    ASSERT_NE(src, nullptr);
    zip_int64_t i = zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE);
    ASSERT_GE(i, 0);
    zip_set_file_compression(z, i, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

TensorMap SampleTensors() {
  TensorMap m;
  Tensor a = Tensor::Zeros(DType::kF32, {3, 5});
  for (int i = 0; i < 15; ++i) a.data<float>()[i] = 0.25f * i - 1;
  Tensor b = Tensor::Zeros(DType::kBF16, {4});
  for (int i = 0; i < 4; ++i) b.data<uint16_t>()[i] = F32ToBf16(1.5f * i);
  Tensor c = Tensor::Zeros(DType::kI8, {2, 2, 2});
  for (int i = 0; i < 8; ++i) c.data<int8_t>()[i] = static_cast<int8_t>(-3 * i);
  Tensor d = Tensor::Zeros(DType::kI64, {});
  d.data<int64_t>()[0] = int64_t{1} << 40;
  m["blocks.0.self_attn.q.weight"] = a;
  m["blocks.0.self_attn.q.bias"] = b;
  m["blocks.0.ffn.0.int8_weight"] = c;
  m["step"] = d;
  m["empty"] = Tensor::Zeros(DType::kF16, {0, 3});
  m["u8"] = Tensor::Zeros(DType::kU8, {300});
  m["f64"] = Tensor::Zeros(DType::kF64, {2});
  m["i32"] = Tensor::Zeros(DType::kI32, {70000});
  m["i32"].data<int32_t>()[69999] = -5;
  return m;
}

TEST(PthTest, GoldenArchiveEqualsSafetensors) {
  auto pth = ReadPth(Golden("rcm_t2v/weights.pth"));
  ASSERT_TRUE(pth.ok()) << pth.status();
  auto st = ReadSafetensors(Golden("rcm_t2v/weights.safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(pth->size(), st->size());
  // Stored entries are views of the one file mapping (owner = the mapping), not copies.
  const void* mapping = pth->begin()->second.storage()->owner.get();
  for (const auto& [name, t] : *pth) {
    EXPECT_EQ(t.storage()->owner.get(), mapping) << name;
    EXPECT_NE(t.raw(), mapping) << name;
  }
  for (const auto& [name, t] : *st) {
    auto it = pth->find(name);
    ASSERT_NE(it, pth->end()) << name;
    EXPECT_TRUE(SameTensor(it->second, t))
        << name << " " << it->second.Describe() << " vs " << t.Describe();
  }
}

TEST(PthTest, RoundTripIsZeroCopyAndAligned) {
  const TensorMap m = SampleTensors();
  const std::string path = TempPath("rt.pth");
  ASSERT_TRUE(WritePth(path, m, "tiny").ok());
  auto r = ReadPth(path);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), m.size());
  for (const auto& [name, t] : m) {
    ASSERT_TRUE(r->count(name)) << name;
    EXPECT_TRUE(SameTensor(r->at(name), t)) << name;
    if (t.numel() > 0) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(r->at(name).raw()) % 64, 0u) << name;
    }
  }
  // Written like torch: every storage entry stored, under "<archive>/".
  const std::string bytes = ReadAll(path);
  EXPECT_NE(bytes.find("tiny/data.pkl"), std::string::npos);
  EXPECT_NE(bytes.find("tiny/version"), std::string::npos);
  EXPECT_NE(bytes.find("tiny/byteorder"), std::string::npos);
}

// Archive entries in torch's layout, with a pickle made by our writer.
std::vector<std::pair<std::string, std::string>> TorchEntries(const TensorMap& m,
                                                              const std::string& top) {
  std::vector<std::pair<std::string, std::string>> e;
  e.emplace_back(top + "/data.pkl", *PickleStateDict(m));
  size_t k = 0;
  for (const auto& [name, t] : m) {
    e.emplace_back(top + "/data/" + std::to_string(k++),
                   std::string(static_cast<const char*>(t.raw()), t.nbytes()));
  }
  e.emplace_back(top + "/version", "3\n");
  return e;
}

TEST(PthTest, AcceptsLayoutVariants) {
  const TensorMap m = SampleTensors();
  auto entries = TorchEntries(m, "weights");  // old torch: no byteorder, no serialization_id
  for (bool deflate : {false, true}) {
    const std::string path = TempPath(deflate ? "deflate.pth" : "stored.pth");
    MakeZip(path, entries, deflate);
    auto r = ReadPth(path);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& [name, t] : m) EXPECT_TRUE(SameTensor(r->at(name), t)) << name;
  }
  entries.emplace_back("archive_new/.data/serialization_id", "0123456789");
  entries[0].first = "archive_new/data.pkl";
  for (size_t k = 1; k + 1 < entries.size(); ++k) {
    entries[k].first = "archive_new" + entries[k].first.substr(7);
  }
  entries.emplace_back("archive_new/byteorder", "little");
  MakeZip(TempPath("new.pth"), entries, false);
  auto r = ReadPth(TempPath("new.pth"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size(), m.size());
}

TEST(PthTest, ByteOrder) {
  const TensorMap m = SampleTensors();
  auto entries = TorchEntries(m, "archive");
  entries.emplace_back("archive/byteorder", "big");
  MakeZip(TempPath("big.pth"), entries, false);
  EXPECT_THAT(ReadPth(TempPath("big.pth")), StatusIs(absl::StatusCode::kUnimplemented));
  entries.back().second = "middle";
  MakeZip(TempPath("middle.pth"), entries, false);
  EXPECT_THAT(ReadPth(TempPath("middle.pth")), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(PthTest, MissingOrMisSizedStorageNamesEntryAndTensor) {
  TensorMap m;
  m["a.weight"] = Tensor::Zeros(DType::kF32, {4});
  m["b.weight"] = Tensor::Zeros(DType::kBF16, {8});
  auto entries = TorchEntries(m, "archive");
  auto missing = entries;
  missing.erase(missing.begin() + 2);  // archive/data/1 = b.weight's storage
  const std::string path = TempPath("missing.pth");
  MakeZip(path, missing, false);
  auto r = ReadPth(path);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("archive/data/1"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("b.weight"));

  auto short_data = entries;
  short_data[1].second.resize(10);  // a.weight: 10 of 16 bytes
  MakeZip(TempPath("short.pth"), short_data, false);
  r = ReadPth(TempPath("short.pth"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("a.weight"));
}

TEST(PthTest, TruncatedAndCorruptFiles) {
  const std::string good = TempPath("good.pth");
  ASSERT_TRUE(WritePth(good, SampleTensors()).ok());
  const std::string bytes = ReadAll(good);
  for (size_t cut : {size_t{0}, size_t{3}, size_t{10}, size_t{100}, bytes.size() / 3,
                     bytes.size() / 2, bytes.size() - 40, bytes.size() - 1}) {
    const std::string path = TempPath("cut" + std::to_string(cut) + ".pth");
    WriteAll(path, bytes.substr(0, cut));
    auto r = ReadPth(path);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss)) << "cut at " << cut;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(path));
  }
  // Flipped bytes inside a stored data entry: CRC is not checked on the zero-copy path, so
  // flip inside data.pkl (read through libzip) instead, and in the central directory.
  for (size_t at : {size_t{100}, bytes.size() - 30}) {
    std::string bad = bytes;
    bad[at] ^= 0x5a;
    const std::string path = TempPath("flip" + std::to_string(at) + ".pth");
    WriteAll(path, bad);
    EXPECT_THAT(ReadPth(path), StatusIs(absl::StatusCode::kDataLoss)) << "flip at " << at;
  }
  WriteAll(TempPath("magic.pth"), "GARBAGE-NOT-A-ZIP");
  EXPECT_THAT(ReadPth(TempPath("magic.pth")), StatusIs(absl::StatusCode::kDataLoss));
  WriteAll(TempPath("legacy.pth"), std::string("\x80\x02\x8a\x0a", 4) + "legacy");
  EXPECT_THAT(ReadPth(TempPath("legacy.pth")), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(ReadPth(TempPath("does_not_exist.pth")), StatusIs(absl::StatusCode::kNotFound));
  MakeZip(TempPath("nopkl.pth"), {{"archive/version", "3\n"}}, false);
  EXPECT_THAT(ReadPth(TempPath("nopkl.pth")), StatusIs(absl::StatusCode::kDataLoss));
}

// ---- pickle VM on hand-written pickles ----

struct PickleBuilder {
  std::string s = std::string("\x80\x02", 2);
  PickleBuilder& Op(char c) { return s += c, *this; }
  PickleBuilder& Str(const std::string& v) {
    uint32_t n = v.size();
    s += 'X';
    s.append(reinterpret_cast<const char*>(&n), 4);
    s += v;
    return *this;
  }
  PickleBuilder& Int(uint8_t v) { return s += 'K', s += static_cast<char>(v), *this; }
  PickleBuilder& Global(const std::string& m, const std::string& n) {
    return s += "c" + m + "\n" + n + "\n", *this;
  }
  PickleBuilder& Ints(const std::vector<uint8_t>& v) {
    Op('(');
    for (uint8_t x : v) Int(x);
    return Op('t');
  }
  // name → _rebuild_tensor_v2(storage "0" [numel] F32, offset, size, stride, False, OrderedDict())
  PickleBuilder& Tensor(const std::string& name, uint8_t numel, uint8_t offset,
                        const std::vector<uint8_t>& size, const std::vector<uint8_t>& stride) {
    Str(name).Global("torch._utils", "_rebuild_tensor_v2").Op('(').Op('(');
    Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(numel).Op('t').Op('Q');
    Int(offset).Ints(size).Ints(stride).Op('\x89');
    return Global("collections", "OrderedDict").Op(')').Op('R').Op('t').Op('R');
  }
  std::string Dict(const std::function<void(PickleBuilder&)>& items) {
    Global("collections", "OrderedDict").Op(')').Op('R').Op('(');
    items(*this);
    return Op('u').Op('.').s;
  }
};

absl::StatusOr<Tensor> IotaStorage(const PickleStorageRef& ref) {
  Tensor t = Tensor::Zeros(ref.dtype, {ref.numel});
  for (int64_t i = 0; i < ref.numel && ref.dtype == DType::kF32; ++i) t.data<float>()[i] = i;
  return t;
}

TEST(PickleTest, StridedViewsAndOffsets) {
  std::string pkl = PickleBuilder().Dict([](PickleBuilder& p) {
    p.Tensor("transposed", 6, 0, {2, 3}, {1, 2});
    p.Tensor("offset", 6, 3, {2}, {1});
  });
  auto r = UnpickleStateDict(pkl, "mem.pth", IotaStorage);
  ASSERT_TRUE(r.ok()) << r.status();
  const float* t = r->at("transposed").data<float>();
  EXPECT_EQ(std::vector<float>(t, t + 6), (std::vector<float>{0, 2, 4, 1, 3, 5}));
  EXPECT_EQ(r->at("offset").data<float>()[0], 3.0f);
  EXPECT_EQ(r->at("offset").data<float>()[1], 4.0f);
}

TEST(PickleTest, BadViewsNameTheTensor) {
  for (const auto& view : {std::pair<uint8_t, uint8_t>{7, 1}, {10, 0}, {3, 3}}) {
    // Plain locals: Clang 14 cannot capture structured bindings in a lambda.
    const uint8_t size = view.first, stride = view.second;
    std::string pkl = PickleBuilder().Dict(
        [&](PickleBuilder& p) { p.Tensor("w.weight", 6, 0, {size}, {stride}); });
    auto r = UnpickleStateDict(pkl, "mem.pth", IotaStorage);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss)) << int{size} << "/" << int{stride};
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("w.weight"));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("mem.pth"));
  }
}

TEST(PickleTest, RejectsGarbage) {
  const std::string good =
      PickleBuilder().Dict([](PickleBuilder& p) { p.Tensor("a", 6, 0, {6}, {1}); });
  ASSERT_TRUE(UnpickleStateDict(good, "f", IotaStorage).ok());
  for (size_t cut = 0; cut < good.size(); ++cut) {  // every truncation
    EXPECT_THAT(UnpickleStateDict(good.substr(0, cut), "f", IotaStorage),
                StatusIs(absl::StatusCode::kDataLoss))
        << cut;
  }
  std::mt19937 rng(1234);
  for (int n = 0; n < 300; ++n) {
    std::string junk(1 + rng() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (n % 2) junk = good.substr(0, rng() % good.size()) + junk;
    EXPECT_THAT(UnpickleStateDict(junk, "f", IotaStorage), StatusIs(absl::StatusCode::kDataLoss));
  }
  const std::string evil[] = {
      PickleBuilder().Global("os", "system").Str("rm").Op('\x85').Op('R').Op('.').s,
      PickleBuilder().Op('}').Str("a").Int(3).Op('s').Op('.').s,  // not a tensor
      PickleBuilder().Op(']').Op('.').s,                          // not a dict
      PickleBuilder().Op('h').Op('\x07').Op('.').s,               // unset memo
      PickleBuilder().Op('(').Op('.').s,                          // dangling MARK
      std::string(100000, ')') + ".",                             // huge stack, then junk
      PickleBuilder().Op('}').Op('q').Op('\0').Op('h').Op('\0').Op('s').Op('.').s,  // odd SETITEM
  };
  for (const std::string& e : evil) {
    EXPECT_THAT(UnpickleStateDict(e, "f", IotaStorage), StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST(PickleTest, SharedStorageLoadsOnce) {
  int loads = 0;
  std::string pkl = PickleBuilder().Dict([](PickleBuilder& p) {
    p.Tensor("a", 6, 0, {3}, {1});
    p.Tensor("b", 6, 3, {3}, {1});
  });
  auto r = UnpickleStateDict(pkl, "f", [&](const PickleStorageRef& ref) {
    ++loads;
    return IotaStorage(ref);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(r->at("b").data<float>()[0], 3.0f);
}

}  // namespace
}  // namespace turbovid::engine::io
