// Json parser: values, escapes, and rejection of malformed text.
#include "engine/core/json.h"

#include <gtest/gtest.h>

namespace turbovid::engine {
namespace {

TEST(JsonTest, ParsesNestedDocument) {
  auto j = Json::Parse(R"({"a": [1, 2.5, -3e2], "b": {"c": "x\u00e9\n"}, "d": true, "e": null})");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->Find("a")->array().size(), 3u);
  EXPECT_TRUE(j->Find("a")->array()[0].is_integer());
  EXPECT_EQ(j->Find("a")->array()[0].integer(), 1);
  EXPECT_DOUBLE_EQ(j->Find("a")->array()[2].number(), -300);
  EXPECT_EQ(j->Find("b")->Find("c")->str(), "x\xc3\xa9\n");
  EXPECT_TRUE(j->BoolOr("d", false));
  EXPECT_TRUE(j->Find("e")->is_null());
}

TEST(JsonTest, RejectsMalformed) {
  for (const char* bad : {"{", "[1,]", "{\"a\" 1}", "\"abc", "{\"a\":1}x", "[01x]", "{\"a\":1,\"a\":2}"}) {
    EXPECT_FALSE(Json::Parse(bad).ok()) << bad;
  }
}

TEST(JsonTest, RejectsDeepNesting) {
  std::string deep(1000, '[');
  EXPECT_FALSE(Json::Parse(deep).ok());
}

}  // namespace
}  // namespace turbovid::engine
