// The pieces of the HTTP front ends that take client bytes: multipart/form-data, query strings,
// and the OpenAI seconds <-> frames mapping. The whole API runs against the official SDK in
// tests/e2e/test_openai_sdk.py.
#include "server/openai_gateway.h"

#include <string>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http_util.h"
#include "server/multipart.h"

namespace turbovid::server {
namespace {

using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(MultipartTest, SplitsFieldsAndFiles) {
  auto boundary = MultipartBoundary("multipart/form-data; boundary=\"--xyz\"");
  ASSERT_THAT(boundary, IsOk());
  EXPECT_EQ(*boundary, "--xyz");
  const std::string image("\x89PNG\r\n\x00\x01", 8);
  const std::string body =
      "preamble\r\n----xyz\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na fox\r\n"
      "----xyz\r\nContent-Disposition: form-data; name=\"input_reference\"; "
      "filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n" +
      image + "\r\n----xyz--\r\nepilogue";
  auto parts = ParseMultipart(body, *boundary);
  ASSERT_THAT(parts, IsOk());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "prompt");
  EXPECT_EQ((*parts)[0].data, "a fox");
  EXPECT_FALSE((*parts)[0].has_filename);
  EXPECT_EQ((*parts)[1].filename, "a.png");
  EXPECT_EQ((*parts)[1].content_type, "image/png");
  EXPECT_EQ((*parts)[1].data, image);
}

TEST(MultipartTest, RejectsMalformedBodies) {
  EXPECT_THAT(MultipartBoundary("application/x-www-form-urlencoded"), StatusIs(kInvalid));
  EXPECT_THAT(MultipartBoundary("multipart/form-data"), StatusIs(kInvalid));
  const std::string head = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n";
  for (const std::string& body :
       {std::string("no boundary here"), head + "value without end",
        std::string("--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--"),
        std::string("--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--"),
        std::string("--b\r\nno colon\r\n\r\nv\r\n--b--"), std::string("--b"),
        std::string("--bX")}) {
    EXPECT_THAT(ParseMultipart(body, "b"), StatusIs(kInvalid)) << body;
  }
  EXPECT_THAT(ParseMultipart(head + "v\r\n--b--", "b"), IsOk());
}

TEST(OpenAiMappingTest, SecondsAndFrames) {
  EXPECT_EQ(*SecondsToFrames("4"), 65);
  EXPECT_EQ(*SecondsToFrames("0.25"), 5);
  EXPECT_EQ(*SecondsToFrames("5"), 81);
  EXPECT_EQ(*SecondsToFrames("12"), 193);  // the frame limit is admission's to enforce
  for (const char* bad : {"0", "-4", "0.3", "abc", "", "nan", "inf", "1e300"}) {
    EXPECT_THAT(SecondsToFrames(bad), StatusIs(kInvalid)) << bad;
  }
  EXPECT_EQ(FramesToSeconds(81), "5");
  EXPECT_EQ(FramesToSeconds(65), "4");
  EXPECT_EQ(FramesToSeconds(5), "0.25");
  EXPECT_EQ(FramesToSeconds(17), "1");
  EXPECT_EQ(FramesToSeconds(13), "0.75");
}

TEST(HttpUtilTest, QueryStringsDecode) {
  auto query = ParseQuery("after=j1&model_id=a%3Ab&q=x+y&empty");
  ASSERT_THAT(query, IsOk());
  EXPECT_EQ(query->at("after"), "j1");
  EXPECT_EQ(query->at("model_id"), "a:b");
  EXPECT_EQ(query->at("q"), "x y");
  EXPECT_EQ(query->at("empty"), "");
  EXPECT_THAT(ParseQuery("a=%zz"), StatusIs(kInvalid));
  EXPECT_THAT(ParseQuery("a=%4"), StatusIs(kInvalid));
  EXPECT_EQ(JsonQuote("a\"b\\\n\x01"), "\"a\\\"b\\\\\\n\\u0001\"");
}

}  // namespace
}  // namespace turbovid::server
