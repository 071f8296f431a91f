// Durable job store on embedded SQLite (WAL): a job is committed before Submit returns, the
// client request id is UNIQUE (a retried Submit finds the same job), and jobs survive restarts.
// Three connections: the writer (inserts, group-committed, and updates), the reader (point reads
// and lists, never queued behind a commit) and the checkpointer (folds the WAL into the main file
// on its own thread, so no commit waits for a checkpoint's fsyncs).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "turbovid/v1/video_service.pb.h"
#include "turbovid/v1/worker_hub.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace turbovid::scheduler {

// The persisted part of a job (live progress is kept in memory only).
struct StoredJob {
  int64_t seq = 0;  // submit order, assigned by Insert (FIFO tie-break, list paging)
  std::string job_id;
  std::string client_request_id;             // "" = none
  turbovid::v1::SubmitVideoRequest request;  // as accepted, without image bytes
  // What every attempt renders, as resolved at admission. Empty in rows stored before jobs
  // carried one (the scheduler rebuilds it from `request` on recovery).
  turbovid::v1::ResolvedJob job;
  std::string image;  // encoded I2V image, "" for T2V
  turbovid::v1::JobState state = turbovid::v1::JOB_STATE_QUEUED;
  int attempts = 0;  // assignments so far (numbers each attempt)
  int losses = 0;    // attempts lost with their worker
  std::string worker_id;
  std::string error;
  uint64_t seed = 0;
  int width_pixels = 0;
  int height_pixels = 0;
  int64_t video_bytes = 0;
  double created_unix_seconds = 0;
  double started_unix_seconds = 0;
  double finished_unix_seconds = 0;
  double deleted_unix_seconds = 0;  // DeleteJob; 0 = not deleted (deleted jobs are NotFound)
  double gpu_seconds = 0;  // the finishing attempt's run time x its worker's GPUs (quotas)
};

struct ListFilter {
  turbovid::v1::JobState state = turbovid::v1::JOB_STATE_UNSPECIFIED;  // any
  std::string model_id;                                                // "" = any
  int limit = 50;
  int64_t before_seq = 0;  // > 0: only jobs with seq < before_seq (newest first paging)
  int64_t after_seq = 0;   // > 0: only jobs with seq > after_seq
  bool ascending = false;  // oldest first instead of newest first
  std::string tenant;      // "" = any
};

class JobStore {
 public:
  // Opens or creates the database (WAL, busy timeout, schema). `synchronous_full` fsyncs every
  // commit; otherwise commits survive a process crash but not a power loss.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path,
                                                        bool synchronous_full);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  struct InsertResult {
    StoredJob job;
    bool created = false;  // false: an existing job had the same client_request_id
  };
  using InsertDone = std::function<void(absl::StatusOr<InsertResult>)>;
  // Inserts a new job (seq assigned in queue order); a job whose client id is taken gets the job
  // already stored for it. Group commit: when no commit is running, the calling thread commits
  // its job and then, in one transaction per round, every job queued meanwhile, until the queue
  // is empty; otherwise the job is queued and the call returns at once. Each `done` runs after
  // the transaction holding its job committed, on the committing thread, in queue order; it must
  // not wait for another insert. After StopInserts, `done` gets Unavailable at once.
  void InsertAsync(StoredJob job, InsertDone done);
  // InsertAsync, waiting for the commit.
  absl::StatusOr<InsertResult> Insert(const StoredJob& job);
  // Refuses new inserts, waits for a running commit (its queue included), stops the checkpointer
  // thread. Reads, updates and Checkpoint still work. Idempotent; the destructor calls it.
  void StopInserts();
  // Writes the mutable columns (state, attempts, losses, worker, error, times, video bytes);
  // the request and resolved job are written once, by Insert.
  absl::Status Update(const StoredJob& job);
  // Marks the job deleted (its row stays until retention removes it).
  absl::Status MarkDeleted(const std::string& job_id, double unix_seconds);
  // Deleted jobs too (deleted_unix_seconds > 0): the caller decides.
  absl::StatusOr<StoredJob> Get(const std::string& job_id);
  absl::StatusOr<std::optional<StoredJob>> FindByClientRequestId(const std::string& id);
  // The encoded I2V image of a job ("" for T2V); kept out of memory while the job waits.
  absl::StatusOr<std::string> GetImage(const std::string& job_id);
  // Newest first (or oldest first), deleted jobs left out.
  absl::StatusOr<std::vector<StoredJob>> List(const ListFilter& filter);
  // Jobs not in a final state, in submit order (without image bytes).
  absl::StatusOr<std::vector<StoredJob>> LoadUnfinished();
  // After a restart: ASSIGNED/RUNNING -> QUEUED (attempts kept, worker cleared). Returns count.
  absl::StatusOr<int> RequeueInterrupted();
  // Retention: final jobs (succeeded, failed, cancelled; deleted ones too) that finished before
  // `finished_before_unix`, oldest first, at most `limit` ids.
  absl::StatusOr<std::vector<std::string>> ListFinishedBefore(double finished_before_unix,
                                                              int limit);
  // Removes the row of a final job; NotFound when there is no final row of that id (a job not
  // final is never removed).
  absl::Status RemoveFinished(const std::string& job_id);
  struct GpuUsage {
    std::string tenant;
    double finished_unix_seconds = 0;
    double gpu_seconds = 0;
  };
  // GPU-seconds of the jobs finished at or after `since_unix` (those with any), oldest first.
  absl::StatusOr<std::vector<GpuUsage>> GpuUsageSince(double since_unix);
  // Folds the WAL into the main file (graceful shutdown).
  absl::Status Checkpoint();
  // Tests only: the next `n` Updates fail with RESOURCE_EXHAUSTED as a full disk would
  // (SQLITE_FULL) and write nothing. One relaxed atomic load per Update when unused.
  void FailNextWritesForTesting(int n) { fail_next_writes_.store(n); }

  // WAL pages after a commit that wake the checkpointer thread (SQLite's own default threshold).
  static constexpr int kCheckpointPages = 1000;
  // Most inserts in one group commit.
  static constexpr size_t kMaxBatch = 256;

 private:
  struct PendingInsert {
    StoredJob job;
    InsertDone done;
  };

  explicit JobStore(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);
  // Databases created before a column existed get it (`resolved`: NULL in old rows; `deleted`: 0).
  absl::Status AddColumnIfMissing(const std::string& name, const std::string& type);
  absl::Status AddTenantColumn();  // and its index
  // Commits rounds of queued inserts until the queue is empty, then clears committing_.
  void CommitQueued();
  // Inserts `batch` in one transaction (its jobs move into the results); one result per job.
  std::vector<absl::StatusOr<InsertResult>> CommitBatch(std::vector<PendingInsert>& batch);
  void CheckpointLoop();
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int pages);

  std::atomic<int> fail_next_writes_{0};
  std::mutex mu_;  // the writer connection
  sqlite3* db_;
  sqlite3_stmt* insert_stmt_ = nullptr;  // prepared once, on db_
  std::mutex read_mu_;
  sqlite3* read_db_ = nullptr;
  sqlite3* checkpoint_db_ = nullptr;  // used by the checkpointer thread only

  std::mutex queue_mu_;
  std::deque<PendingInsert> queue_;
  bool committing_ = false;           // a thread is in CommitQueued
  std::condition_variable queue_cv_;  // committing_ cleared
  bool stop_ = false;
  bool checkpoint_wanted_ = false;
  std::condition_variable checkpoint_cv_;  // with queue_mu_
  std::thread checkpointer_;
};

}  // namespace turbovid::scheduler
