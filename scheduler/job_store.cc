// SQLite access: writer, reader and checkpointer connections, each behind its own mutex or
// thread; prepared statements with bound parameters only.
#include "scheduler/job_store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace turbovid::scheduler {
namespace {

namespace v1 = ::turbovid::v1;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL UNIQUE,
  client_request_id TEXT UNIQUE,           -- NULL when the client sent none
  model_id TEXT NOT NULL,
  state INTEGER NOT NULL,                  -- turbovid.v1.JobState
  request BLOB NOT NULL,                   -- SubmitVideoRequest as accepted, no image
  image BLOB,
  attempts INTEGER NOT NULL DEFAULT 0,
  losses INTEGER NOT NULL DEFAULT 0,
  worker_id TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  seed INTEGER NOT NULL DEFAULT 0,         -- uint64 stored as its int64 bit pattern
  width_pixels INTEGER NOT NULL DEFAULT 0,
  height_pixels INTEGER NOT NULL DEFAULT 0,
  video_bytes INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL DEFAULT 0,
  started REAL NOT NULL DEFAULT 0,
  finished REAL NOT NULL DEFAULT 0,
  resolved BLOB,                           -- ResolvedJob; NULL in rows from before it existed
  deleted REAL NOT NULL DEFAULT 0,         -- unix seconds of DeleteJob; 0 = not deleted
  tenant TEXT NOT NULL DEFAULT '',         -- owner (request.tenant); added by AddTenantColumn
  gpu_seconds REAL NOT NULL DEFAULT 0      -- run time x GPUs of the attempt that finished it
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_model ON jobs(model_id, seq);
CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs(finished);
)sql";

constexpr char kTenantIndex[] = "CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs(tenant, seq)";

constexpr char kInsertSql[] =
    "INSERT INTO jobs (job_id, client_request_id, model_id, state, request, image, seed, "
    "width_pixels, height_pixels, created, resolved, tenant) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(client_request_id) DO NOTHING";

constexpr char kColumns[] =
    "seq, job_id, client_request_id, state, request, image, attempts, losses, worker_id, error, "
    "seed, width_pixels, height_pixels, video_bytes, created, started, finished, resolved, deleted, gpu_seconds";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  // A statement prepared once and kept by its owner: reset and unbound, never finalized here.
  Stmt(sqlite3* db, sqlite3_stmt* kept) : db_(db), stmt_(kept), rc_(SQLITE_OK), kept_(true) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ~Stmt() {
    if (kept_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    } else {
      sqlite3_finalize(stmt_);
    }
  }
  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_)));
  }
  sqlite3_stmt* get() { return stmt_; }
  // For the next row: clears the previous step and bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Blob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Real(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  void Null(int i) { sqlite3_bind_null(stmt_, i); }
  int Step() { return sqlite3_step(stmt_); }
  absl::Status Error(const char* what) const {
    const int code = sqlite3_errcode(db_);
    const std::string message = absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db_));
    if (code == SQLITE_FULL || code == SQLITE_NOMEM) return absl::ResourceExhaustedError(message);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(message);
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return absl::DataLossError(message);
    return absl::InternalError(message);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
  bool kept_ = false;
};

std::string ColumnBytes(sqlite3_stmt* s, int i) {
  const void* data = sqlite3_column_blob(s, i);
  const int n = sqlite3_column_bytes(s, i);
  return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), n);
}

absl::StatusOr<StoredJob> ReadRow(sqlite3_stmt* s, bool with_image) {
  StoredJob job;
  job.seq = sqlite3_column_int64(s, 0);
  job.job_id = ColumnBytes(s, 1);
  job.client_request_id = ColumnBytes(s, 2);
  job.state = static_cast<v1::JobState>(sqlite3_column_int(s, 3));
  if (!job.request.ParseFromString(ColumnBytes(s, 4))) {
    return absl::DataLossError(absl::StrCat("job store: request of ", job.job_id, " unreadable"));
  }
  if (with_image) job.image = ColumnBytes(s, 5);
  job.attempts = sqlite3_column_int(s, 6);
  job.losses = sqlite3_column_int(s, 7);
  job.worker_id = ColumnBytes(s, 8);
  job.error = ColumnBytes(s, 9);
  job.seed = static_cast<uint64_t>(sqlite3_column_int64(s, 10));
  job.width_pixels = sqlite3_column_int(s, 11);
  job.height_pixels = sqlite3_column_int(s, 12);
  job.video_bytes = sqlite3_column_int64(s, 13);
  job.created_unix_seconds = sqlite3_column_double(s, 14);
  job.started_unix_seconds = sqlite3_column_double(s, 15);
  job.finished_unix_seconds = sqlite3_column_double(s, 16);
  if (!job.job.ParseFromString(ColumnBytes(s, 17))) {
    return absl::DataLossError(
        absl::StrCat("job store: resolved job of ", job.job_id, " unreadable"));
  }
  job.deleted_unix_seconds = sqlite3_column_double(s, 18);
  job.gpu_seconds = sqlite3_column_double(s, 19);
  return job;
}

absl::StatusOr<std::vector<StoredJob>> ReadAll(Stmt& stmt, bool with_image) {
  std::vector<StoredJob> jobs;
  int rc = 0;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    TV_ASSIGN_OR_RETURN(StoredJob job, ReadRow(stmt.get(), with_image));
    jobs.push_back(std::move(job));
  }
  if (rc != SQLITE_DONE) return stmt.Error("read");
  return jobs;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path,
                                                         bool synchronous_full) {
  auto connect = [&](sqlite3** out) -> absl::Status {
    const int rc =
        sqlite3_open_v2(path.c_str(), out,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = *out ? sqlite3_errmsg(*out) : "out of memory";
      sqlite3_close(*out);
      *out = nullptr;
      return absl::UnavailableError(absl::StrCat("db_path: cannot open ", path, ": ", message));
    }
    sqlite3_busy_timeout(*out, 5000);
    const char* sync = synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    if (sqlite3_exec(*out, sync, nullptr, nullptr, nullptr) != SQLITE_OK) {
      const std::string message = sqlite3_errmsg(*out);
      sqlite3_close(*out);
      *out = nullptr;
      return absl::InternalError(absl::StrCat("sqlite: ", message));
    }
    return absl::OkStatus();
  };
  sqlite3* db = nullptr;
  TV_RETURN_IF_ERROR(connect(&db));
  std::unique_ptr<JobStore> store(new JobStore(db));
  TV_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  TV_RETURN_IF_ERROR(store->Exec(kSchema));
  TV_RETURN_IF_ERROR(store->AddColumnIfMissing("resolved", "BLOB"));
  TV_RETURN_IF_ERROR(store->AddColumnIfMissing("deleted", "REAL NOT NULL DEFAULT 0"));
  TV_RETURN_IF_ERROR(store->AddTenantColumn());
  TV_RETURN_IF_ERROR(store->AddColumnIfMissing("gpu_seconds", "REAL NOT NULL DEFAULT 0"));
  if (sqlite3_prepare_v3(db, kInsertSql, -1, SQLITE_PREPARE_PERSISTENT, &store->insert_stmt_,
                         nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db)));
  }
  TV_RETURN_IF_ERROR(connect(&store->read_db_));
  TV_RETURN_IF_ERROR(connect(&store->checkpoint_db_));
  // Replaces SQLite's automatic checkpoint, which would run inside the commit that crosses the
  // threshold (fsyncs included) while every other submit waits for that commit.
  sqlite3_wal_hook(db, &JobStore::OnWalCommit, store.get());
  store->checkpointer_ = std::thread([s = store.get()] { s->CheckpointLoop(); });
  return store;
}

JobStore::~JobStore() {
  StopInserts();
  sqlite3_close(checkpoint_db_);
  sqlite3_close(read_db_);
  sqlite3_finalize(insert_stmt_);
  sqlite3_close(db_);
}

void JobStore::StopInserts() {
  {
    std::unique_lock<std::mutex> lock(queue_mu_);
    stop_ = true;
    queue_cv_.wait(lock, [this] { return !committing_; });
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
}

int JobStore::OnWalCommit(void* self, sqlite3*, const char*, int pages) {
  if (pages >= kCheckpointPages) {
    auto* store = static_cast<JobStore*>(self);
    {
      std::lock_guard<std::mutex> lock(store->queue_mu_);
      store->checkpoint_wanted_ = true;
    }
    store->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

void JobStore::CheckpointLoop() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    checkpoint_cv_.wait(lock, [this] { return stop_ || checkpoint_wanted_; });
    if (stop_) return;
    checkpoint_wanted_ = false;
    lock.unlock();
    // PASSIVE: copies what no reader still needs, never blocks the writer or readers. The WAL
    // starts over at the first commit after a checkpoint that copied everything.
    const int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      TV_LOG(WARNING) << "job store: checkpoint: " << sqlite3_errmsg(checkpoint_db_);
    }
    lock.lock();
  }
}

void JobStore::InsertAsync(StoredJob job, InsertDone done) {
  bool refused = false;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (stop_) {
      refused = true;
    } else {
      queue_.push_back(PendingInsert{std::move(job), std::move(done)});
      if (committing_) return;  // the committing thread takes it into its next transaction
      committing_ = true;
    }
  }
  if (refused) {
    done(absl::UnavailableError("job store: closing, insert refused"));
    return;
  }
  CommitQueued();
}

void JobStore::CommitQueued() {
  std::vector<PendingInsert> batch;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (queue_.empty()) {
        committing_ = false;
        queue_cv_.notify_all();
        return;
      }
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<absl::StatusOr<InsertResult>> results = CommitBatch(batch);
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
    batch.clear();
  }
}

absl::StatusOr<JobStore::InsertResult> JobStore::Insert(const StoredJob& job) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::StatusOr<InsertResult>> result;
  InsertAsync(job, [&](absl::StatusOr<InsertResult> r) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(r);
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  return std::move(*result);
}

absl::Status JobStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    return absl::InternalError(absl::StrCat("sqlite: ", message));
  }
  return absl::OkStatus();
}

absl::Status JobStore::AddColumnIfMissing(const std::string& name, const std::string& type) {
  Stmt stmt(db_, "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = ?");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Text(1, name);
  if (stmt.Step() != SQLITE_ROW) return stmt.Error("schema check");
  if (sqlite3_column_int(stmt.get(), 0) == 1) return absl::OkStatus();
  return Exec(absl::StrCat("ALTER TABLE jobs ADD COLUMN ", name, " ", type).c_str());
}

absl::Status JobStore::AddTenantColumn() {
  TV_RETURN_IF_ERROR(AddColumnIfMissing("tenant", "TEXT NOT NULL DEFAULT ''"));
  return Exec(kTenantIndex);
}

std::vector<absl::StatusOr<JobStore::InsertResult>> JobStore::CommitBatch(
    std::vector<PendingInsert>& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  auto all = [&](const absl::Status& status) {
    return std::vector<absl::StatusOr<InsertResult>>(batch.size(), status);
  };
  if (absl::Status begun = Exec("BEGIN IMMEDIATE"); !begun.ok()) return all(begun);
  std::vector<absl::StatusOr<InsertResult>> results;
  results.reserve(batch.size());
  Stmt stmt(db_, insert_stmt_);
  for (PendingInsert& pending : batch) {
    StoredJob& job = pending.job;
    stmt.Reset();
    stmt.Text(1, job.job_id);
    if (job.client_request_id.empty()) {
      stmt.Null(2);
    } else {
      stmt.Text(2, job.client_request_id);
    }
    stmt.Text(3, job.request.model_id());
    stmt.Int(4, job.state);
    stmt.Blob(5, job.request.SerializeAsString());
    if (job.image.empty()) {
      stmt.Null(6);
    } else {
      stmt.Blob(6, job.image);
    }
    stmt.Int(7, static_cast<int64_t>(job.seed));
    stmt.Int(8, job.width_pixels);
    stmt.Int(9, job.height_pixels);
    stmt.Real(10, job.created_unix_seconds);
    stmt.Blob(11, job.job.SerializeAsString());
    stmt.Text(12, job.request.tenant());
    if (stmt.Step() != SQLITE_DONE) {
      const absl::Status status = stmt.Error("insert");
      // A failed statement undoes itself; some errors (disk full, I/O) undo the transaction.
      if (sqlite3_get_autocommit(db_)) return all(status);
      results.push_back(status);
      continue;
    }
    InsertResult result;
    if (sqlite3_changes(db_) == 1) {
      result.job = std::move(job);
      result.job.seq = sqlite3_last_insert_rowid(db_);
      result.created = true;
      results.push_back(std::move(result));
      continue;
    }
    // The client request id is taken (maybe by an earlier job of this batch): return that job.
    absl::StatusOr<StoredJob> existing = [&]() -> absl::StatusOr<StoredJob> {
      Stmt find(db_, absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE client_request_id = ?"));
      TV_RETURN_IF_ERROR(find.status());
      find.Text(1, job.client_request_id);
      if (find.Step() != SQLITE_ROW) return find.Error("insert conflict lookup");
      return ReadRow(find.get(), /*with_image=*/false);
    }();
    if (!existing.ok()) {
      results.push_back(existing.status());
      continue;
    }
    result.job = std::move(*existing);
    results.push_back(std::move(result));
  }
  if (absl::Status committed = Exec("COMMIT"); !committed.ok()) {
    if (!sqlite3_get_autocommit(db_)) (void)Exec("ROLLBACK");  // reported through `committed`
    return all(committed);
  }
  return results;
}

absl::Status JobStore::Update(const StoredJob& job) {
  if (fail_next_writes_.load(std::memory_order_relaxed) > 0 && fail_next_writes_.fetch_sub(1) > 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("job store: update ", job.job_id, ": database or disk is full (injected)"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  Stmt stmt(db_,
            "UPDATE jobs SET state = ?, attempts = ?, losses = ?, worker_id = ?, error = ?, "
            "video_bytes = ?, started = ?, finished = ?, gpu_seconds = ? WHERE job_id = ?");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Int(1, job.state);
  stmt.Int(2, job.attempts);
  stmt.Int(3, job.losses);
  stmt.Text(4, job.worker_id);
  stmt.Text(5, job.error);
  stmt.Int(6, job.video_bytes);
  stmt.Real(7, job.started_unix_seconds);
  stmt.Real(8, job.finished_unix_seconds);
  stmt.Real(9, job.gpu_seconds);
  stmt.Text(10, job.job_id);
  if (stmt.Step() != SQLITE_DONE) return stmt.Error("update");
  if (sqlite3_changes(db_) != 1) {
    return absl::NotFoundError(absl::StrCat("job store: no job ", job.job_id));
  }
  return absl::OkStatus();
}

absl::Status JobStore::MarkDeleted(const std::string& job_id, double unix_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt stmt(db_, "UPDATE jobs SET deleted = ? WHERE job_id = ?");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Real(1, unix_seconds);
  stmt.Text(2, job_id);
  if (stmt.Step() != SQLITE_DONE) return stmt.Error("delete");
  if (sqlite3_changes(db_) != 1) {
    return absl::NotFoundError(absl::StrCat("job store: no job ", job_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<StoredJob> JobStore::Get(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt stmt(read_db_, absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE job_id = ?"));
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Text(1, job_id);
  const int rc = stmt.Step();
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("job_id: no job ", job_id));
  if (rc != SQLITE_ROW) return stmt.Error("get");
  return ReadRow(stmt.get(), /*with_image=*/false);
}

absl::StatusOr<std::optional<StoredJob>> JobStore::FindByClientRequestId(const std::string& id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt stmt(read_db_, absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE client_request_id = ?"));
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Text(1, id);
  const int rc = stmt.Step();
  if (rc == SQLITE_DONE) return std::optional<StoredJob>();
  if (rc != SQLITE_ROW) return stmt.Error("find");
  TV_ASSIGN_OR_RETURN(StoredJob job, ReadRow(stmt.get(), /*with_image=*/false));
  return std::optional<StoredJob>(std::move(job));
}

absl::StatusOr<std::string> JobStore::GetImage(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt stmt(read_db_, "SELECT image FROM jobs WHERE job_id = ?");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Text(1, job_id);
  const int rc = stmt.Step();
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("job_id: no job ", job_id));
  if (rc != SQLITE_ROW) return stmt.Error("get image");
  return ColumnBytes(stmt.get(), 0);
}

absl::StatusOr<std::vector<StoredJob>> JobStore::List(const ListFilter& filter) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt stmt(read_db_,
            absl::StrCat("SELECT ", kColumns,
                         " FROM jobs WHERE (?1 = 0 OR state = ?1) AND (?2 = '' OR model_id = "
                         "?2) AND (?3 = 0 OR seq < ?3) AND (?5 = 0 OR seq > ?5) AND deleted = 0 "
                         "AND (?6 = '' OR tenant = ?6) ORDER BY seq ",
                         filter.ascending ? "ASC" : "DESC", " LIMIT ?4"));
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Int(1, filter.state);
  stmt.Text(2, filter.model_id);
  stmt.Int(3, filter.before_seq);
  stmt.Int(4, filter.limit);
  stmt.Int(5, filter.after_seq);
  stmt.Text(6, filter.tenant);
  return ReadAll(stmt, /*with_image=*/false);
}

absl::StatusOr<std::vector<StoredJob>> JobStore::LoadUnfinished() {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt stmt(read_db_,
            absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE state IN (?, ?, ?) ORDER BY seq"));
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Int(1, v1::JOB_STATE_QUEUED);
  stmt.Int(2, v1::JOB_STATE_ASSIGNED);
  stmt.Int(3, v1::JOB_STATE_RUNNING);
  return ReadAll(stmt, /*with_image=*/false);
}

absl::StatusOr<int> JobStore::RequeueInterrupted() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt stmt(db_, "UPDATE jobs SET state = ?, worker_id = '' WHERE state IN (?, ?)");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Int(1, v1::JOB_STATE_QUEUED);
  stmt.Int(2, v1::JOB_STATE_ASSIGNED);
  stmt.Int(3, v1::JOB_STATE_RUNNING);
  if (stmt.Step() != SQLITE_DONE) return stmt.Error("requeue");
  return sqlite3_changes(db_);
}

absl::StatusOr<std::vector<std::string>> JobStore::ListFinishedBefore(double finished_before_unix,
                                                                     int limit) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt stmt(read_db_,
            "SELECT job_id FROM jobs WHERE finished > 0 AND finished < ? AND state IN (?, ?, ?) "
            "ORDER BY finished LIMIT ?");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Real(1, finished_before_unix);
  stmt.Int(2, v1::JOB_STATE_SUCCEEDED);
  stmt.Int(3, v1::JOB_STATE_FAILED);
  stmt.Int(4, v1::JOB_STATE_CANCELLED);
  stmt.Int(5, limit);
  std::vector<std::string> ids;
  int rc = 0;
  while ((rc = stmt.Step()) == SQLITE_ROW) ids.push_back(ColumnBytes(stmt.get(), 0));
  if (rc != SQLITE_DONE) return stmt.Error("list finished");
  return ids;
}

absl::Status JobStore::RemoveFinished(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt stmt(db_, "DELETE FROM jobs WHERE job_id = ? AND state IN (?, ?, ?)");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Text(1, job_id);
  stmt.Int(2, v1::JOB_STATE_SUCCEEDED);
  stmt.Int(3, v1::JOB_STATE_FAILED);
  stmt.Int(4, v1::JOB_STATE_CANCELLED);
  if (stmt.Step() != SQLITE_DONE) return stmt.Error("remove");
  if (sqlite3_changes(db_) != 1) {
    return absl::NotFoundError(absl::StrCat("job store: no finished job ", job_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JobStore::GpuUsage>> JobStore::GpuUsageSince(double since_unix) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt stmt(read_db_,
            "SELECT tenant, finished, gpu_seconds FROM jobs WHERE finished >= ? AND "
            "gpu_seconds > 0 ORDER BY finished");
  TV_RETURN_IF_ERROR(stmt.status());
  stmt.Real(1, since_unix);
  std::vector<GpuUsage> usage;
  int rc = 0;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    usage.push_back(GpuUsage{ColumnBytes(stmt.get(), 0), sqlite3_column_double(stmt.get(), 1),
                             sqlite3_column_double(stmt.get(), 2)});
  }
  if (rc != SQLITE_DONE) return stmt.Error("gpu usage");
  return usage;
}

absl::Status JobStore::Checkpoint() {
  std::lock_guard<std::mutex> lock(mu_);
  return Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

}  // namespace turbovid::scheduler
