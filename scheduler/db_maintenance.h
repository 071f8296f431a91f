// Job-store safety around SQLite: the startup check (integrity, empty or vanished database), the
// periodic integrity check and online backups (own thread and connections, off the request path),
// and `recover`, which salvages what SQLite can still read into a new database file.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace turbovid::scheduler {

struct SchedulerMetrics;

// `<db_path>.initialized`: written once the schema exists, so a database that later vanishes or
// shrinks to 0 bytes is told apart from a path used for the first time.
std::string DbMarkerPath(const std::string& db_path);

// Before JobStore::Open. A missing file starts fresh unless the marker says it held jobs; an
// existing file must pass PRAGMA quick_check and, when the marker exists, hold the jobs table; a
// 0-byte file is refused. `allow_empty` (--allow-empty-db) accepts an empty or vanished database.
// Refusals are FailedPrecondition (empty) or DataLoss (corrupt) naming the file and the way out.
absl::Status CheckDatabaseAtStart(const std::string& db_path, const std::string& backup_dir,
                                  bool allow_empty);
// After JobStore::Open: writes the marker if it is missing (fsynced).
absl::Status WriteDbMarker(const std::string& db_path);

// PRAGMA quick_check on a fresh connection (no page cache from earlier reads). Ok or DataLoss
// with the first problems SQLite reported.
absl::Status QuickCheckFile(const std::string& db_path);

// An online backup of `db_path` (SQLite backup API, one read snapshot, copied in chunks) into
// `dir` as `<stem>-YYYYMMDDTHHMMSS.mmmZ.db`: written under a temporary name, quick-checked,
// fsynced, renamed; then all but the newest `keep` backups of this stem are removed. Returns its
// path.
absl::StatusOr<std::string> BackupDatabase(const std::string& db_path, const std::string& dir,
                                           int keep);

struct RecoverReport {
  int64_t rows_copied = 0;
  int64_t rows_lost = 0;  // estimated from sqlite_sequence (jobs are never deleted); -1 unknown
  bool header_repaired = false;
  std::vector<std::string> notes;  // skipped ranges and errors, for the operator
};
// Salvages the jobs of a damaged database `broken` into a new file `out` (which must not exist).
// Works on a copy (with its WAL); repairs an overwritten file header; copies rows in bulk, or by
// seq ranges that skip what cannot be read. DataLoss when not a single row could be read.
absl::StatusOr<RecoverReport> RecoverDatabase(const std::string& broken, const std::string& out);

struct DbMaintainerOptions {
  std::string db_path;
  double integrity_interval_seconds = 3600;  // 0 = off
  std::string backup_dir;
  double backup_interval_seconds = 3600;  // 0 = off
  int backup_keep = 24;
};

// Runs the periodic integrity check and backups on its own thread. `on_integrity(false)` is
// called after every failed check (the process marks itself not ready).
class DbMaintainer {
 public:
  DbMaintainer(DbMaintainerOptions options, SchedulerMetrics* metrics,
               std::function<void(bool ok)> on_integrity);
  ~DbMaintainer();  // stops and joins the thread
  DbMaintainer(const DbMaintainer&) = delete;
  DbMaintainer& operator=(const DbMaintainer&) = delete;

 private:
  void Loop();
  void RunIntegrityCheck();
  void RunBackup();

  const DbMaintainerOptions options_;
  SchedulerMetrics* metrics_;  // may be null (tests)
  std::function<void(bool)> on_integrity_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace turbovid::scheduler
