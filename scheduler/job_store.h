// Durable job store on embedded SQLite (WAL): a job is committed before Submit returns, the
// client request id is UNIQUE (a retried Submit finds the same job), and jobs survive restarts.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "turbovid/v1/video_service.pb.h"
#include "turbovid/v1/worker_hub.pb.h"

struct sqlite3;

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
  std::string image;                         // encoded I2V image, "" for T2V
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
};

struct ListFilter {
  turbovid::v1::JobState state = turbovid::v1::JOB_STATE_UNSPECIFIED;  // any
  std::string model_id;                                                // "" = any
  int limit = 50;
  int64_t before_seq = 0;  // > 0: only jobs with seq < before_seq (newest first paging)
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
  // Commits a new job (seq assigned), or returns the job already stored for its client id.
  absl::StatusOr<InsertResult> Insert(const StoredJob& job);
  // Writes the mutable columns (state, attempts, losses, worker, error, times, video bytes);
  // the request and resolved job are written once, by Insert.
  absl::Status Update(const StoredJob& job);
  absl::StatusOr<StoredJob> Get(const std::string& job_id);
  absl::StatusOr<std::optional<StoredJob>> FindByClientRequestId(const std::string& id);
  // The encoded I2V image of a job ("" for T2V); kept out of memory while the job waits.
  absl::StatusOr<std::string> GetImage(const std::string& job_id);
  // Newest first.
  absl::StatusOr<std::vector<StoredJob>> List(const ListFilter& filter);
  // Jobs not in a final state, in submit order (without image bytes).
  absl::StatusOr<std::vector<StoredJob>> LoadUnfinished();
  // After a restart: ASSIGNED/RUNNING -> QUEUED (attempts kept, worker cleared). Returns count.
  absl::StatusOr<int> RequeueInterrupted();
  // Folds the WAL into the main file (graceful shutdown).
  absl::Status Checkpoint();

 private:
  explicit JobStore(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);
  // Databases created before jobs stored a ResolvedJob get the column (NULL in old rows).
  absl::Status AddResolvedColumn();

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace turbovid::scheduler
