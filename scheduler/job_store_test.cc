// JobStore on a real SQLite file: durability across reopen, idempotency on the client request
// id, requeue of interrupted jobs on restart, listing with paging, the stored ResolvedJob and the
// migration of a database from before it.
#include "scheduler/job_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turbovid::scheduler {
namespace {

namespace v1 = ::turbovid::v1;
using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/tv_job_store_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ + "/jobs.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static StoredJob MakeJob(const std::string& id, const std::string& client_id = "") {
    StoredJob job;
    job.job_id = id;
    job.client_request_id = client_id;
    job.request.set_model_id("tiny-t2v");
    job.request.set_prompt("prompt of " + id);
    job.image = id == "j-img" ? std::string("\x89PNG\0\x01", 6) : "";
    job.seed = 0xFFFFFFFFFFFFFFF0ull;  // survives the int64 column
    job.width_pixels = 64;
    job.height_pixels = 48;
    job.created_unix_seconds = 1700000000.5;
    job.job.set_model_id("tiny-t2v");
    job.job.set_variant("turbo");
    job.job.set_sampler(v1::SAMPLER_RCM);
    job.job.set_seed(job.seed);
    job.job.set_attention(v1::ATTENTION_MODE_SLA);
    job.job.set_sla_topk(0.1f);
    job.job.set_prompt(job.request.prompt());
    return job;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(JobStoreTest, CommittedJobsSurviveReopen) {
  {
    auto store = JobStore::Open(path_, false);
    ASSERT_THAT(store, IsOk());
    auto a = (*store)->Insert(MakeJob("j-a"));
    ASSERT_THAT(a, IsOk());
    EXPECT_TRUE(a->created);
    EXPECT_GT(a->job.seq, 0);
    ASSERT_THAT((*store)->Insert(MakeJob("j-img")), IsOk());
    StoredJob done = a->job;
    done.state = v1::JOB_STATE_SUCCEEDED;
    done.video_bytes = 1234;
    done.attempts = 1;
    done.worker_id = "w1";
    EXPECT_THAT((*store)->Update(done), IsOk());
  }  // closed without a checkpoint: the WAL holds the commits
  auto store = JobStore::Open(path_, false);
  ASSERT_THAT(store, IsOk());
  auto a = (*store)->Get("j-a");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(a->video_bytes, 1234);
  EXPECT_EQ(a->request.prompt(), "prompt of j-a");
  EXPECT_EQ(a->seed, 0xFFFFFFFFFFFFFFF0ull);
  EXPECT_EQ(a->job.SerializeAsString(), MakeJob("j-a").job.SerializeAsString());
  auto unfinished = (*store)->LoadUnfinished();
  ASSERT_THAT(unfinished, IsOk());
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].job_id, "j-img");
  EXPECT_EQ((*unfinished)[0].image, "");  // images stay on disk until assignment
  auto image = (*store)->GetImage("j-img");
  ASSERT_THAT(image, IsOk());
  EXPECT_EQ(*image, std::string("\x89PNG\0\x01", 6));
  EXPECT_EQ(*(*store)->GetImage("j-a"), "");
  EXPECT_THAT((*store)->Get("j-none"), StatusIs(absl::StatusCode::kNotFound));
}

// A database written before jobs stored their ResolvedJob gets the column on open; its rows
// read back with an empty job (the scheduler rebuilds those on recovery).
TEST_F(JobStoreTest, OpensADatabaseFromBeforeTheResolvedJobColumn) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const char* old_schema =
        "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE, "
        "client_request_id TEXT UNIQUE, model_id TEXT NOT NULL, state INTEGER NOT NULL, "
        "request BLOB NOT NULL, image BLOB, attempts INTEGER NOT NULL DEFAULT 0, "
        "losses INTEGER NOT NULL DEFAULT 0, worker_id TEXT NOT NULL DEFAULT '', "
        "error TEXT NOT NULL DEFAULT '', seed INTEGER NOT NULL DEFAULT 0, "
        "width_pixels INTEGER NOT NULL DEFAULT 0, height_pixels INTEGER NOT NULL DEFAULT 0, "
        "video_bytes INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL DEFAULT 0, "
        "started REAL NOT NULL DEFAULT 0, finished REAL NOT NULL DEFAULT 0);"
        "INSERT INTO jobs (job_id, model_id, state, request) VALUES ('j-old', 'tiny-t2v', 1, '');";
    ASSERT_EQ(sqlite3_exec(db, old_schema, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  for (int open = 0; open < 2; ++open) {  // the second open finds the column in place
    auto store = JobStore::Open(path_, false);
    ASSERT_THAT(store, IsOk());
    auto old = (*store)->Get("j-old");
    ASSERT_THAT(old, IsOk());
    EXPECT_TRUE(old->job.model_id().empty());
    ASSERT_THAT((*store)->Insert(MakeJob(open == 0 ? "j-new" : "j-newer")), IsOk());
    auto fresh = (*store)->Get("j-new");
    ASSERT_THAT(fresh, IsOk());
    EXPECT_EQ(fresh->job.sampler(), v1::SAMPLER_RCM);
  }
}

TEST_F(JobStoreTest, ClientRequestIdIsIdempotent) {
  auto store = JobStore::Open(path_, true);
  ASSERT_THAT(store, IsOk());
  auto first = (*store)->Insert(MakeJob("j-1", "req-42"));
  ASSERT_THAT(first, IsOk());
  auto retry = (*store)->Insert(MakeJob("j-2", "req-42"));
  ASSERT_THAT(retry, IsOk());
  EXPECT_FALSE(retry->created);
  EXPECT_EQ(retry->job.job_id, "j-1");
  EXPECT_THAT((*store)->Get("j-2"), StatusIs(absl::StatusCode::kNotFound));
  auto found = (*store)->FindByClientRequestId("req-42");
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->job_id, "j-1");
  // Jobs without a client id never collide.
  EXPECT_TRUE((*store)->Insert(MakeJob("j-3"))->created);
  EXPECT_TRUE((*store)->Insert(MakeJob("j-4"))->created);
}

TEST_F(JobStoreTest, RestartRequeuesInterruptedJobsKeepingAttempts) {
  {
    auto store = JobStore::Open(path_, false);
    ASSERT_THAT(store, IsOk());
    auto running = (*store)->Insert(MakeJob("j-run"));
    auto assigned = (*store)->Insert(MakeJob("j-asg"));
    ASSERT_THAT(running, IsOk());
    ASSERT_THAT(assigned, IsOk());
    running->job.state = v1::JOB_STATE_RUNNING;
    running->job.attempts = 2;
    running->job.worker_id = "w";
    assigned->job.state = v1::JOB_STATE_ASSIGNED;
    assigned->job.attempts = 1;
    ASSERT_THAT((*store)->Update(running->job), IsOk());
    ASSERT_THAT((*store)->Update(assigned->job), IsOk());
  }
  auto store = JobStore::Open(path_, false);
  ASSERT_THAT(store, IsOk());
  auto requeued = (*store)->RequeueInterrupted();
  ASSERT_THAT(requeued, IsOk());
  EXPECT_EQ(*requeued, 2);
  auto run = (*store)->Get("j-run");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->state, v1::JOB_STATE_QUEUED);
  EXPECT_EQ(run->attempts, 2);
  EXPECT_EQ(run->worker_id, "");
  EXPECT_THAT((*store)->Checkpoint(), IsOk());
}

TEST_F(JobStoreTest, ListsNewestFirstWithFiltersAndPaging) {
  auto store = JobStore::Open(path_, false);
  ASSERT_THAT(store, IsOk());
  for (int i = 0; i < 5; ++i)
    ASSERT_THAT((*store)->Insert(MakeJob("j" + std::to_string(i))), IsOk());
  ListFilter filter;
  filter.limit = 2;
  auto page = (*store)->List(filter);
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].job_id, "j4");
  filter.before_seq = (*page)[1].seq;
  page = (*store)->List(filter);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].job_id, "j2");
  filter = ListFilter();
  filter.state = v1::JOB_STATE_FAILED;
  EXPECT_TRUE((*store)->List(filter)->empty());
  filter = ListFilter();
  filter.model_id = "other";
  EXPECT_TRUE((*store)->List(filter)->empty());
}

// Inserts queued together commit together, in queue order; each caller hears of its own job only
// after that commit; a client id taken earlier in the same batch names the earlier job.
TEST_F(JobStoreTest, GroupCommitsQueuedInsertsInOrder) {
  constexpr int kJobs = 300;
  {
    auto store = JobStore::Open(path_, false);
    ASSERT_THAT(store, IsOk());
    std::mutex mu;
    std::condition_variable cv;
    std::vector<absl::StatusOr<JobStore::InsertResult>> results(kJobs,
                                                                absl::UnknownError("not called"));
    int called = 0;
    for (int i = 0; i < kJobs; ++i) {
      // Every tenth job retries the client id of the job before it.
      const std::string client_id = "req-" + std::to_string(i % 10 == 9 ? i - 1 : i);
      (*store)->InsertAsync(MakeJob("j" + std::to_string(i), client_id),
                            [&, i](absl::StatusOr<JobStore::InsertResult> r) {
                              std::lock_guard<std::mutex> lock(mu);
                              results[i] = std::move(r);
                              ++called;
                              cv.notify_one();
                            });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return called == kJobs; });
    int64_t last_seq = 0;
    for (int i = 0; i < kJobs; ++i) {
      ASSERT_THAT(results[i], IsOk()) << i;
      if (i % 10 == 9) {
        EXPECT_FALSE(results[i]->created) << i;
        EXPECT_EQ(results[i]->job.job_id, "j" + std::to_string(i - 1));
      } else {
        EXPECT_TRUE(results[i]->created) << i;
        EXPECT_GT(results[i]->job.seq, last_seq) << i;
        last_seq = results[i]->job.seq;
      }
    }
    lock.unlock();
    (*store)->StopInserts();
    EXPECT_THAT((*store)->Insert(MakeJob("j-late")), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT((*store)->Get("j0"), IsOk());  // reads still work
  }
  auto store = JobStore::Open(path_, false);
  ASSERT_THAT(store, IsOk());
  auto unfinished = (*store)->LoadUnfinished();
  ASSERT_THAT(unfinished, IsOk());
  EXPECT_EQ(unfinished->size(), size_t{kJobs - kJobs / 10});
  EXPECT_THAT((*store)->Get("j9"), StatusIs(absl::StatusCode::kNotFound));
}

// SQLite's automatic checkpoint is off (it would run inside a commit); the checkpointer thread
// folds the WAL into the main file instead, so the WAL starts over rather than growing.
TEST_F(JobStoreTest, CheckpointerBoundsTheWal) {
  auto store = JobStore::Open(path_, false);
  ASSERT_THAT(store, IsOk());
  auto job = (*store)->Insert(MakeJob("j-big"));
  ASSERT_THAT(job, IsOk());
  constexpr int kRounds = 5;
  uintmax_t round_bytes = 0;
  for (int round = 0; round < kRounds; ++round) {
    // Each autocommitted update appends a few pages: a round is past kCheckpointPages.
    for (int i = 0; i < JobStore::kCheckpointPages; ++i) {
      job->job.attempts = round * JobStore::kCheckpointPages + i;
      job->job.error = std::string(2000, 'x');
      ASSERT_THAT((*store)->Update(job->job), IsOk());
    }
    if (round == 0) round_bytes = std::filesystem::file_size(path_ + "-wal");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the checkpointer's turn
  }
  // Without checkpoints the WAL would hold all kRounds rounds.
  EXPECT_LT(std::filesystem::file_size(path_ + "-wal"), 3 * round_bytes);
  EXPECT_EQ((*store)->Get("j-big")->attempts, kRounds * JobStore::kCheckpointPages - 1);
}

}  // namespace
}  // namespace turbovid::scheduler
