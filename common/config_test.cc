// ConfigNode: typed reads, defaults, and messages that name the key (no exception escapes).
#include "common/config.h"

#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turbovid::common {
namespace {

using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;

constexpr char kYaml[] = R"(
listen: "0.0.0.0:50051"
lease_seconds: 30
ratio: 0.5
enabled: yes
admission:
  max_prompt_bytes: 4096
  bad_int: twelve
models: [a, b]
)";

TEST(ConfigTest, ReadsTypedValues) {
  auto root = ConfigNode::LoadString(kYaml, "test.yaml");
  ASSERT_TRUE(root.ok()) << root.status();
  std::string listen;
  int lease = 0;
  double ratio = 0;
  bool enabled = false;
  std::vector<std::string> models;
  EXPECT_TRUE(root->Require("listen", &listen).ok());
  EXPECT_TRUE(root->Require("lease_seconds", &lease).ok());
  EXPECT_TRUE(root->Require("ratio", &ratio).ok());
  EXPECT_TRUE(root->Require("enabled", &enabled).ok());
  EXPECT_TRUE(root->Require("models", &models).ok());
  EXPECT_EQ(listen, "0.0.0.0:50051");
  EXPECT_EQ(lease, 30);
  EXPECT_EQ(ratio, 0.5);
  EXPECT_TRUE(enabled);
  EXPECT_EQ(models, (std::vector<std::string>{"a", "b"}));
  auto admission = root->Child("admission");
  ASSERT_TRUE(admission.ok());
  int64_t max_prompt = 0;
  EXPECT_TRUE(admission->Require("max_prompt_bytes", &max_prompt).ok());
  EXPECT_EQ(max_prompt, 4096);
}

TEST(ConfigTest, OptionalKeepsDefault) {
  auto root = ConfigNode::LoadString(kYaml, "test.yaml");
  ASSERT_TRUE(root.ok());
  int missing = 7;
  EXPECT_TRUE(root->Read("missing", &missing).ok());
  EXPECT_EQ(missing, 7);
}

TEST(ConfigTest, ErrorsNameTheKey) {
  auto root = ConfigNode::LoadString(kYaml, "test.yaml");
  ASSERT_TRUE(root.ok());
  auto admission = root->Child("admission");
  ASSERT_TRUE(admission.ok());
  int value = 0;
  absl::Status status = admission->Require("bad_int", &value);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()), HasSubstr("admission.bad_int"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("test.yaml"));
  status = root->Require("nope", &value);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()), HasSubstr("nope"));
  std::string text;
  EXPECT_THAT(root->Require("admission", &text), StatusIs(absl::StatusCode::kInvalidArgument));
  bool flag = false;
  EXPECT_THAT(root->Require("listen", &flag), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConfigTest, UnknownKeysAreRejected) {
  auto root = ConfigNode::LoadString("a: 1\nb: 2\n", "k.yaml");
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->CheckKeys({"a", "b"}).ok());
  absl::Status status = root->CheckKeys({"a"});
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()), HasSubstr("b"));
}

TEST(ConfigTest, SyntaxErrorAndMissingFileAreStatuses) {
  EXPECT_THAT(ConfigNode::LoadString("a: [1, 2\n", "bad.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ConfigNode::LoadFile("/nonexistent/turbovid.yaml"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ConfigTest, SequenceOfMaps) {
  auto root = ConfigNode::LoadString("items:\n  - name: x\n    n: 1\n  - name: y\n    n: 2\n");
  ASSERT_TRUE(root.ok());
  auto items = root->Child("items");
  ASSERT_TRUE(items.ok());
  auto elements = items->Elements();
  ASSERT_TRUE(elements.ok());
  ASSERT_EQ(elements->size(), 2u);
  std::string name;
  EXPECT_TRUE((*elements)[1].Require("name", &name).ok());
  EXPECT_EQ(name, "y");
  int n = 0;
  EXPECT_THAT((*elements)[0].Require("name", &n), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace turbovid::common
