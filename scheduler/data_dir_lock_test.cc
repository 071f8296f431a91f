// DataDirLock: a second holder of the same directory is refused while the first lives.
#include "scheduler/data_dir_lock.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turbovid::scheduler {
namespace {

using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;

class DataDirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            absl::StrCat("tv_data_dir_lock_test_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string Path(const std::string& name) const { return (root_ / name).string(); }

  std::filesystem::path root_;
};

TEST_F(DataDirLockTest, SecondHolderIsRefusedUntilTheFirstReleases) {
  auto first = DataDirLock::Acquire(Path("data/jobs.db"), Path("data/artifacts"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->directories().size(), 2u);

  auto second = DataDirLock::Acquire(Path("data/jobs.db"), Path("other"));
  EXPECT_THAT(second.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(absl::StrCat("(pid ", getpid())));

  // The artifacts directory alone is enough to conflict.
  auto third = DataDirLock::Acquire(Path("elsewhere/jobs.db"), Path("data/artifacts"));
  EXPECT_THAT(third.status(), StatusIs(absl::StatusCode::kFailedPrecondition));

  first->reset();
  auto again = DataDirLock::Acquire(Path("data/jobs.db"), Path("data/artifacts"));
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(DataDirLockTest, SameDirectoryForDbAndArtifactsIsLockedOnce) {
  auto lock = DataDirLock::Acquire(Path("d/jobs.db"), Path("d"));
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ((*lock)->directories().size(), 1u);
}

}  // namespace
}  // namespace turbovid::scheduler
