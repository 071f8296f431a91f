// Args: value and boolean flags, `--k=v`, positionals, and errors naming the flag.
#include "tools/args.h"

#include "gtest/gtest.h"

namespace turbovid::tools {
namespace {

TEST(ArgsTest, ParsesFlagsAndPositionals) {
  auto a = Args::Parse({"JOB", "--frames", "5", "--json", "--model=m", "--", "--x"},
                       {"frames", "model"}, {"json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->positional(), (std::vector<std::string>{"JOB", "--x"}));
  EXPECT_EQ(*a->GetInt("frames", 0), 5);
  EXPECT_EQ(a->Get("model"), "m");
  EXPECT_TRUE(a->Has("json"));
  EXPECT_EQ(*a->GetInt("steps", 3), 3);
}

TEST(ArgsTest, ErrorsNameTheFlag) {
  auto unknown = Args::Parse({"--bogus"}, {}, {});
  EXPECT_NE(unknown.status().message().find("--bogus"), std::string::npos);
  auto missing = Args::Parse({"--frames"}, {"frames"}, {});
  EXPECT_FALSE(missing.ok());
  auto a = Args::Parse({"--frames", "x"}, {"frames"}, {});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->GetInt("frames", 0).ok());
}

}  // namespace
}  // namespace turbovid::tools
