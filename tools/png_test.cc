// The PNG writer's bytes: signature, chunk layout, CRCs, and zlib stored blocks over 64 KiB.
#include "tools/png.h"

#include "gtest/gtest.h"

namespace turbovid::tools {
namespace {

uint32_t U32(const std::string& s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

TEST(PngTest, OnePixelHasKnownLayout) {
  auto png = EncodePng(1, 1, std::string("\xff\x00\x00", 3));
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n"));
  EXPECT_EQ(U32(*png, 8), 13u);
  EXPECT_EQ(png->substr(12, 4), "IHDR");
  EXPECT_EQ(U32(*png, 16), 1u);
  EXPECT_EQ(U32(*png, 20), 1u);
  // CRC of IHDR for 1x1 RGB8 is a fixed, well-known value.
  EXPECT_EQ(U32(*png, 29), 0x907753DEu);
  EXPECT_EQ(png->substr(png->size() - 12), std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12));
}

TEST(PngTest, LargeImageSplitsIntoStoredBlocks) {
  auto png = MakeTestPatternPng(200, 120);  // 72,120 raw bytes → two stored blocks
  ASSERT_TRUE(png.ok());
  size_t idat = png->find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  uint32_t len = U32(*png, idat - 4);
  EXPECT_EQ(len, 2 + (5 + 65535) + (5 + (200 * 3 + 1) * 120 - 65535) + 4);
}

TEST(PngTest, RejectsWrongSizes) {
  EXPECT_FALSE(EncodePng(2, 2, "abc").ok());
  EXPECT_FALSE(EncodePng(0, 2, "").ok());
}

}  // namespace
}  // namespace turbovid::tools
