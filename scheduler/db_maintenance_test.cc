// The job store's startup check (corrupt, empty and vanished databases), recover on damaged
// files (overwritten header, overwritten page, truncation), online backups with pruning, and the
// periodic check noticing corruption under an open store.
#include "scheduler/db_maintenance.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/job_store.h"
#include "scheduler/metrics.h"

namespace turbovid::scheduler {
namespace {

namespace fs = std::filesystem;
using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

constexpr int kJobs = 300;
constexpr int kPageSize = 4096;  // SQLite's default, as the store creates its file

class DbMaintenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/tv_db_maint_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ + "/jobs.db";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A store of kJobs jobs, checkpointed into the main file and closed, with its marker.
  void Fill() {
    ASSERT_THAT(CheckDatabaseAtStart(path_, dir_ + "/backups", false), IsOk());
    auto store = JobStore::Open(path_, false);
    ASSERT_THAT(store.status(), IsOk());
    for (int i = 1; i <= kJobs; ++i) {
      StoredJob job;
      job.job_id = "job-" + std::to_string(i);
      job.request.set_model_id("tiny-t2v");
      job.request.set_prompt(std::string(200, 'a' + i % 26));
      job.job.set_model_id("tiny-t2v");
      job.request.set_tenant("tenant-" + std::to_string(i % 3));
      ASSERT_THAT((*store)->Insert(job).status(), IsOk());
      if (i % 10 == 0) {  // finished, with the GPU time quotas count
        job.state = turbovid::v1::JOB_STATE_SUCCEEDED;
        job.finished_unix_seconds = 1000.0 + i;
        job.gpu_seconds = 0.5 * i;
        ASSERT_THAT((*store)->Update(job), IsOk());
      }
    }
    ASSERT_THAT((*store)->Checkpoint(), IsOk());
    store->reset();
    ASSERT_THAT(WriteDbMarker(path_), IsOk());
  }

  void Overwrite(int64_t offset, int64_t bytes) {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offset);
    f.write(std::string(bytes, '\xA5').data(), bytes);
  }

  int64_t Pages() { return static_cast<int64_t>(fs::file_size(path_)) / kPageSize; }

  std::string dir_;
  std::string path_;
};

TEST_F(DbMaintenanceTest, NewPathStartsAndCleanStorePasses) {
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, false), IsOk());
  Fill();
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, false), IsOk());
  EXPECT_THAT(QuickCheckFile(path_), IsOk());
}

TEST_F(DbMaintenanceTest, EmptyOrVanishedDatabaseIsRefusedUnlessAllowed) {
  Fill();
  fs::resize_file(path_, 0);
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, false),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, true), IsOk());
  fs::remove(path_);
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, false),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, true), IsOk());
}

TEST_F(DbMaintenanceTest, OverwrittenHeaderIsRefusedAndFullyRecovered) {
  Fill();
  Overwrite(0, 100);
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, false), StatusIs(absl::StatusCode::kDataLoss));
  auto report = RecoverDatabase(path_, dir_ + "/new.db");
  ASSERT_THAT(report.status(), IsOk());
  EXPECT_TRUE(report->header_repaired);
  EXPECT_EQ(report->rows_copied, kJobs);
  EXPECT_EQ(report->rows_lost, 0);
  auto store = JobStore::Open(dir_ + "/new.db", false);
  ASSERT_THAT(store.status(), IsOk());
  EXPECT_THAT((*store)->Get("job-1").status(), IsOk());
  EXPECT_THAT((*store)->Get("job-300").status(), IsOk());
  // The columns later schema versions added come across too: the tenant filter and the GPU
  // seconds that per-tenant quotas sum.
  ListFilter filter;
  filter.tenant = "tenant-1";
  filter.limit = 1000;
  auto listed = (*store)->List(filter);
  ASSERT_THAT(listed.status(), IsOk());
  EXPECT_EQ(listed->size(), static_cast<size_t>(kJobs / 3));
  auto usage = (*store)->GpuUsageSince(0);
  ASSERT_THAT(usage.status(), IsOk());
  ASSERT_EQ(usage->size(), static_cast<size_t>(kJobs / 10));
  EXPECT_EQ(usage->back().tenant, "tenant-0");
  EXPECT_DOUBLE_EQ(usage->back().gpu_seconds, 150.0);
}

TEST_F(DbMaintenanceTest, OverwrittenPageIsRefusedAndPartlyRecovered) {
  Fill();
  const int64_t pages = Pages();
  ASSERT_GT(pages, 10);
  Overwrite(pages / 3 * kPageSize, kPageSize);
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, false), StatusIs(absl::StatusCode::kDataLoss));
  auto report = RecoverDatabase(path_, dir_ + "/new.db");
  ASSERT_THAT(report.status(), IsOk());
  EXPECT_GT(report->rows_copied, kJobs / 2);
  EXPECT_EQ(report->rows_copied + report->rows_lost, kJobs);
  EXPECT_THAT(QuickCheckFile(dir_ + "/new.db"), IsOk());
  EXPECT_THAT(CheckDatabaseAtStart(dir_ + "/new.db", dir_, false), IsOk());
}

TEST_F(DbMaintenanceTest, TruncatedFileIsRefusedAndPartlyRecovered) {
  Fill();
  fs::resize_file(path_, Pages() / 2 * kPageSize);
  EXPECT_THAT(CheckDatabaseAtStart(path_, dir_, false), StatusIs(absl::StatusCode::kDataLoss));
  auto report = RecoverDatabase(path_, dir_ + "/new.db");
  ASSERT_THAT(report.status(), IsOk());
  EXPECT_GT(report->rows_copied, 0);
  EXPECT_LT(report->rows_copied, kJobs);
}

TEST_F(DbMaintenanceTest, RecoverOfEmptyFileFailsAndNeverOverwrites) {
  Fill();
  fs::resize_file(path_, 0);
  EXPECT_THAT(RecoverDatabase(path_, dir_ + "/new.db").status(),
              StatusIs(absl::StatusCode::kDataLoss));
  std::ofstream(dir_ + "/taken.db") << "x";
  EXPECT_THAT(RecoverDatabase(path_, dir_ + "/taken.db").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(DbMaintenanceTest, BackupIsCheckedAndPrunedToKeep) {
  Fill();
  auto store = JobStore::Open(path_, false);  // backups run beside a live store
  ASSERT_THAT(store.status(), IsOk());
  const std::string backups = dir_ + "/backups";
  for (int i = 0; i < 4; ++i) {
    auto path = BackupDatabase(path_, backups, 2);
    ASSERT_THAT(path.status(), IsOk());
    EXPECT_THAT(QuickCheckFile(*path), IsOk());
    usleep(2000);  // distinct millisecond stamps
  }
  int files = 0;
  for (const auto& entry : fs::directory_iterator(backups)) {
    EXPECT_THAT(entry.path().filename().string(), ::testing::StartsWith("jobs-"));
    EXPECT_THAT(entry.path().filename().string(), ::testing::EndsWith("Z.db"));
    ++files;
  }
  EXPECT_EQ(files, 2);
  auto copy = JobStore::Open(
      backups + "/" + fs::directory_iterator(backups)->path().filename().string(), false);
  ASSERT_THAT(copy.status(), IsOk());
  EXPECT_THAT((*copy)->Get("job-" + std::to_string(kJobs)).status(), IsOk());
}

TEST_F(DbMaintenanceTest, PeriodicCheckFlagsCorruptionWhileRunning) {
  Fill();
  auto store = JobStore::Open(path_, false);
  ASSERT_THAT(store.status(), IsOk());
  common::metrics::Registry registry;
  SchedulerMetrics metrics(registry);
  std::mutex mu;
  std::condition_variable cv;
  int failures = 0;
  DbMaintainer maintainer({.db_path = path_,
                           .integrity_interval_seconds = 0.05,
                           .backup_dir = dir_ + "/backups",
                           .backup_interval_seconds = 0,
                           .backup_keep = 1},
                          &metrics, [&](bool ok) {
                            std::lock_guard<std::mutex> lock(mu);
                            if (!ok) ++failures;
                            cv.notify_all();
                          });
  EXPECT_EQ(metrics.db_integrity_ok.Get().Value(), 1);
  Overwrite(Pages() / 2 * kPageSize, kPageSize);  // pages the WAL does not hold
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return failures > 0; }));
  EXPECT_EQ(metrics.db_integrity_ok.Get().Value(), 0);
  EXPECT_GE(metrics.db_integrity_failures.Get().Value(), 1);
}

}  // namespace
}  // namespace turbovid::scheduler
