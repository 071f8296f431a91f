// safetensors round trip and the named errors for truncated or corrupt files.
#include "engine/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace turbovid::engine::io {
namespace {

std::string TempPath(const std::string& name) {
  return testing::TempDir() + "/" + name;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string Header(const std::string& json) {
  std::string h = json;
  uint64_t n = h.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + h;
}

TEST(SafetensorsTest, RoundTrip) {
  TensorMap m;
  Tensor a = Tensor::Zeros(DType::kF32, {2, 3});
  for (int i = 0; i < 6; ++i) a.data<float>()[i] = i * 0.5f;
  Tensor b = Tensor::Zeros(DType::kI8, {5});
  b.data<int8_t>()[4] = -7;
  m["a"] = a;
  m["b.weight"] = b;
  std::string path = TempPath("rt.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, m, {{"format", "pt"}}).ok());
  auto r = ReadSafetensors(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->at("a").shape(), (Shape{2, 3}));
  EXPECT_EQ(r->at("a").data<float>()[5], 2.5f);
  EXPECT_EQ(r->at("b.weight").data<int8_t>()[4], -7);
}

TEST(SafetensorsTest, TruncatedDataNamesTensor) {
  std::string path = TempPath("trunc.safetensors");
  WriteBytes(path, Header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})") + std::string(8, '\0'));
  auto r = ReadSafetensors(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("'w'"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find(path), std::string::npos);
}

TEST(SafetensorsTest, RejectsCorruptHeaders) {
  const std::string cases[] = {
      std::string("\x05\x00", 2),                                                      // short
      Header("{not json"),                                                             // bad json
      Header(R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})") + "x",         // dtype
      Header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})") + "xxxx",     // size
      Header(R"({"w":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},"v":{"dtype":"I8","shape":[2],"data_offsets":[1,3]}})") + "xxx",
      std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8),                               // huge length
  };
  int i = 0;
  for (const auto& bytes : cases) {
    std::string path = TempPath("bad" + std::to_string(i++) + ".safetensors");
    WriteBytes(path, bytes);
    auto r = ReadSafetensors(path);
    EXPECT_FALSE(r.ok()) << "case " << i;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    }
  }
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadSafetensors(TempPath("nope.safetensors")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace turbovid::engine::io
