// Startup check, periodic quick_check and online backups of the job store. Every check and
// backup opens its own connection: WAL readers never block the writer, and a fresh connection
// has no cached pages that would hide corruption written to the file since.
#include "scheduler/db_maintenance.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "scheduler/metrics.h"

namespace turbovid::scheduler {
namespace {

namespace fs = std::filesystem;

// Pages per backup step, and the pause between steps: the copy yields the disk to commits.
constexpr int kBackupStepPages = 256;
constexpr auto kBackupPause = std::chrono::milliseconds(2);

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", message));
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

struct Closer {
  sqlite3* db;
  ~Closer() { sqlite3_close(db); }
};

absl::Status QuickCheck(sqlite3* db, const std::string& path) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check(5)", -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::DataLossError(absl::StrCat(path, ": ", sqlite3_errmsg(db)));
  }
  std::string problems;
  int rc = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const std::string line = text ? text : "";
    if (line != "ok") absl::StrAppend(&problems, problems.empty() ? "" : "; ", line);
  }
  if (rc != SQLITE_DONE)
    absl::StrAppend(&problems, problems.empty() ? "" : "; ", sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  if (problems.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(path, ": integrity check failed: ", problems));
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  const int fd = open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, " for fsync failed"));
  const int rc = fsync(fd);
  close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path, " failed"));
  return absl::OkStatus();
}

// YYYYMMDDTHHMMSS.mmmZ: sorts by time as text; milliseconds keep close backups apart.
std::string UtcStamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%dT%H%M%S", &tm);
  char stamp[48];
  std::snprintf(stamp, sizeof(stamp), "%s.%03dZ", buffer, static_cast<int>(millis));
  return stamp;
}

std::string RecoverHint(const std::string& db_path, const std::string& backup_dir) {
  return absl::StrCat("salvage it with `turbovid-scheduler recover --db ", db_path,
                      " --out NEW.db` and point db_path at NEW.db, or restore a backup from ",
                      backup_dir);
}

}  // namespace

std::string DbMarkerPath(const std::string& db_path) { return db_path + ".initialized"; }

absl::Status QuickCheckFile(const std::string& db_path) {
  TV_ASSIGN_OR_RETURN(sqlite3 * db, OpenConnection(db_path, SQLITE_OPEN_READONLY));
  Closer closer{db};
  return QuickCheck(db, db_path);
}

absl::Status CheckDatabaseAtStart(const std::string& db_path, const std::string& backup_dir,
                                  bool allow_empty) {
  std::error_code ec;
  const bool marked = fs::exists(DbMarkerPath(db_path), ec);
  if (!fs::exists(db_path, ec)) {
    if (marked && !allow_empty) {
      return absl::FailedPreconditionError(
          absl::StrCat("db_path: ", db_path, " is missing but ", DbMarkerPath(db_path),
                       " says it held jobs; restore a backup from ", backup_dir,
                       ", or pass --allow-empty-db to start with no jobs"));
    }
    return absl::OkStatus();  // a new database
  }
  const uintmax_t size = fs::file_size(db_path, ec);
  if (!ec && size == 0) {
    if (allow_empty) {
      TV_LOG(WARNING) << "db_path: " << db_path << " is empty (0 bytes); starting with no jobs "
                      << "(--allow-empty-db)";
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "db_path: ", db_path, " exists but is empty (0 bytes): its jobs are gone; restore a ",
        "backup from ", backup_dir, ", or pass --allow-empty-db to start with no jobs"));
  }
  // Read-write: a WAL left by a crash is replayed, as JobStore::Open would.
  absl::StatusOr<sqlite3*> db = OpenConnection(db_path, SQLITE_OPEN_READWRITE);
  if (!db.ok()) {
    return absl::DataLossError(
        absl::StrCat("db_path: ", db.status().message(), "; ", RecoverHint(db_path, backup_dir)));
  }
  Closer closer{*db};
  if (absl::Status ok = QuickCheck(*db, db_path); !ok.ok()) {
    return absl::DataLossError(
        absl::StrCat("db_path: ", ok.message(), "; ", RecoverHint(db_path, backup_dir)));
  }
  sqlite3_stmt* stmt = nullptr;
  int tables = 0;
  if (sqlite3_prepare_v2(*db, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'jobs'", -1, &stmt,
                         nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    tables = sqlite3_column_int(stmt, 0);
  }
  sqlite3_finalize(stmt);
  if (tables == 0 && marked && !allow_empty) {
    return absl::FailedPreconditionError(
        absl::StrCat("db_path: ", db_path, " has no jobs table but ", DbMarkerPath(db_path),
                     " says it held jobs; restore a backup from ", backup_dir,
                     ", or pass --allow-empty-db to start with no jobs"));
  }
  TV_LOG(INFO) << "db_path: " << db_path << " passed quick_check";
  return absl::OkStatus();
}

absl::Status WriteDbMarker(const std::string& db_path) {
  const std::string marker = DbMarkerPath(db_path);
  std::error_code ec;
  if (fs::exists(marker, ec)) return absl::OkStatus();
  {
    std::ofstream out(marker);
    out << "turbovid job store initialized; do not delete while " << db_path << " holds jobs\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", marker));
  }
  TV_RETURN_IF_ERROR(FsyncPath(marker, /*directory=*/false));
  const fs::path parent = fs::absolute(db_path).parent_path();
  return FsyncPath(parent.string(), /*directory=*/true);
}

absl::StatusOr<std::string> BackupDatabase(const std::string& db_path, const std::string& dir,
                                           int keep) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("db_backup_dir: ", dir, ": ", ec.message()));
  const std::string stem = fs::path(db_path).stem().string();
  const std::string final_path = (fs::path(dir) / absl::StrCat(stem, "-", UtcStamp(), ".db"));
  const std::string temp_path = final_path + ".tmp";
  fs::remove(temp_path, ec);
  {
    TV_ASSIGN_OR_RETURN(sqlite3 * src, OpenConnection(db_path, SQLITE_OPEN_READONLY));
    Closer src_closer{src};
    TV_ASSIGN_OR_RETURN(sqlite3 * dst,
                        OpenConnection(temp_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    Closer dst_closer{dst};
    // One read snapshot for the whole copy: commits go on (WAL), and the backup never restarts
    // because the source changed under it.
    if (sqlite3_exec(src, "BEGIN; SELECT COUNT(*) FROM sqlite_schema;", nullptr, nullptr,
                     nullptr) != SQLITE_OK) {
      return absl::DataLossError(absl::StrCat("backup: read ", db_path, ": ", sqlite3_errmsg(src)));
    }
    sqlite3_backup* backup = sqlite3_backup_init(dst, "main", src, "main");
    if (backup == nullptr) {
      return absl::InternalError(absl::StrCat("backup: init: ", sqlite3_errmsg(dst)));
    }
    int rc = SQLITE_OK;
    while ((rc = sqlite3_backup_step(backup, kBackupStepPages)) == SQLITE_OK || rc == SQLITE_BUSY ||
           rc == SQLITE_LOCKED) {
      std::this_thread::sleep_for(kBackupPause);
    }
    sqlite3_backup_finish(backup);
    sqlite3_exec(src, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_DONE) {
      fs::remove(temp_path, ec);
      return absl::InternalError(absl::StrCat("backup of ", db_path, ": ", sqlite3_errstr(rc)));
    }
    // A standalone file: no -wal/-shm beside the backup.
    sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
  }
  if (absl::Status ok = QuickCheckFile(temp_path); !ok.ok()) {
    fs::remove(temp_path, ec);
    return ok;
  }
  TV_RETURN_IF_ERROR(FsyncPath(temp_path, /*directory=*/false));
  fs::rename(temp_path, final_path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", temp_path, ": ", ec.message()));
  TV_RETURN_IF_ERROR(FsyncPath(dir, /*directory=*/true));
  // Prune: the names sort by time.
  std::vector<std::string> backups;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(stem + "-") && name.ends_with("Z.db")) backups.push_back(entry.path());
  }
  std::sort(backups.begin(), backups.end());
  for (size_t i = 0; i + keep < backups.size(); ++i) fs::remove(backups[i], ec);
  return final_path;
}

DbMaintainer::DbMaintainer(DbMaintainerOptions options, SchedulerMetrics* metrics,
                           std::function<void(bool ok)> on_integrity)
    : options_(std::move(options)), metrics_(metrics), on_integrity_(std::move(on_integrity)) {
  if (metrics_ != nullptr) {
    metrics_->db_integrity_ok.Get().Set(1);  // checked at start
    metrics_->db_integrity_failures.Get();   // exported at 0 from the start
    metrics_->db_backup_failures.Get();
  }
  if (options_.integrity_interval_seconds > 0 || options_.backup_interval_seconds > 0) {
    thread_ = std::thread([this] { Loop(); });
  }
}

DbMaintainer::~DbMaintainer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DbMaintainer::Loop() {
  using Clock = std::chrono::steady_clock;
  auto after = [](double seconds) {
    return Clock::now() +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  };
  const Clock::time_point never = Clock::time_point::max();
  Clock::time_point next_check =
      options_.integrity_interval_seconds > 0 ? after(options_.integrity_interval_seconds) : never;
  Clock::time_point next_backup =
      options_.backup_interval_seconds > 0 ? after(options_.backup_interval_seconds) : never;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_until(lock, std::min(next_check, next_backup), [this] { return stop_; });
    if (stop_) return;
    lock.unlock();
    if (Clock::now() >= next_check) {
      RunIntegrityCheck();
      next_check = after(options_.integrity_interval_seconds);
    }
    if (Clock::now() >= next_backup) {
      RunBackup();
      next_backup = after(options_.backup_interval_seconds);
    }
    lock.lock();
  }
}

void DbMaintainer::RunIntegrityCheck() {
  const absl::Status status = QuickCheckFile(options_.db_path);
  if (!status.ok()) {
    TV_LOG(ERROR) << "job store integrity check failed, marking not ready: " << status.message()
                  << "; stop the scheduler and run `turbovid-scheduler recover --db "
                  << options_.db_path << " --out NEW.db`, or restore a backup from "
                  << options_.backup_dir;
    if (metrics_ != nullptr) metrics_->db_integrity_failures.Get().Increment();
  }
  if (metrics_ != nullptr) metrics_->db_integrity_ok.Get().Set(status.ok() ? 1 : 0);
  if (on_integrity_) on_integrity_(status.ok());
}

void DbMaintainer::RunBackup() {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> path =
      BackupDatabase(options_.db_path, options_.backup_dir, options_.backup_keep);
  if (!path.ok()) {
    TV_LOG(ERROR) << "job store backup failed: " << path.status();
    if (metrics_ != nullptr) metrics_->db_backup_failures.Get().Increment();
    return;
  }
  std::error_code ec;
  const uintmax_t size = fs::file_size(*path, ec);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TV_LOG(INFO) << "job store backup: " << *path << " (" << size << " bytes, " << seconds << " s)";
  if (metrics_ != nullptr) {
    metrics_->db_backup_last_success.Get().Set(static_cast<double>(std::time(nullptr)));
    metrics_->db_backup_last_size.Get().Set(static_cast<double>(size));
    metrics_->db_backup_duration.Get().Observe(seconds);
  }
}

}  // namespace turbovid::scheduler
