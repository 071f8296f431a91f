// `turbovid-scheduler recover`: salvages the jobs SQLite can still read from a damaged database
// into a new one. Debian's libsqlite3 (3.40) has no sqlite3_recover API (that is an extension of
// the CLI's source tree), so this reads through the ordinary library: on a copy of the damaged
// file, with its 100-byte header rewritten when it was overwritten, rows copied in bulk or, past
// unreadable pages, by ranges of seq.
#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "scheduler/db_maintenance.h"
#include "scheduler/job_store.h"
#include "turbovid/v1/video_service.pb.h"
#include "turbovid/v1/worker_hub.pb.h"

namespace turbovid::scheduler {
namespace {

namespace fs = std::filesystem;

// The columns every store has, then those later versions added (job_store.cc's schema).
constexpr char kBaseCols[] =
    "seq, job_id, client_request_id, model_id, state, request, image, attempts, losses, "
    "worker_id, error, seed, width_pixels, height_pixels, video_bytes, created, started, "
    "finished, resolved";
struct AddedColumn {
  const char* name;
  const char* absent;  // what a row of a store without the column reads instead
};
constexpr AddedColumn kAddedCols[] = {{"deleted", "0"}, {"tenant", "''"}, {"gpu_seconds", "0"}};
constexpr int kNumCols = 19 + 3;
constexpr int kRequestCol = 5;
constexpr int kResolvedCol = 18;
// After an unreadable row: this many single-step retries, then doubling jumps.
constexpr int64_t kLinearSkips = 64;

void PutBe32(unsigned char* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

// Rewrites the file header of `path` (page size `page_size`), keeping what the b-trees need:
// page 1's schema table starts after the header and is left as it is.
absl::Status WriteHeader(const std::string& path, uint32_t page_size, bool wal) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return absl::InternalError(absl::StrCat(path, ": ", ec.message()));
  unsigned char h[100] = {};
  std::memcpy(h, "SQLite format 3", 16);
  h[16] = page_size == 65536 ? 0 : page_size >> 8;
  h[17] = page_size == 65536 ? 1 : page_size & 0xff;
  h[18] = h[19] = wal ? 2 : 1;
  h[21] = 64;
  h[22] = 32;
  h[23] = 32;
  PutBe32(h + 24, 1);                                        // change counter
  PutBe32(h + 28, static_cast<uint32_t>(size / page_size));  // pages, valid: see byte 92
  PutBe32(h + 40, 1);                                        // schema cookie
  PutBe32(h + 44, 4);                                        // schema format
  PutBe32(h + 56, 1);                                        // UTF-8
  PutBe32(h + 92, 1);                                        // version-valid-for = counter
  PutBe32(h + 96, SQLITE_VERSION_NUMBER);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.write(reinterpret_cast<const char*>(h), sizeof(h));
  if (!f) return absl::InternalError(absl::StrCat("cannot rewrite the header of ", path));
  return absl::OkStatus();
}

// Whether `path` opens and its schema lists the jobs table.
bool Readable(const std::string& path) {
  sqlite3* db = nullptr;
  bool ok = false;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    ok = sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'jobs'", -1, &stmt,
                            nullptr) == SQLITE_OK &&
         sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) == 1;
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return ok;
}

// Copies `broken` (and its WAL) to `copy`; repairs the copy's header if SQLite cannot read it.
absl::Status PrepareCopy(const std::string& broken, const std::string& copy,
                         RecoverReport* report) {
  std::error_code ec;
  fs::copy_file(broken, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(absl::StrCat("copy ", broken, ": ", ec.message()));
  const bool wal = fs::exists(broken + "-wal", ec) && fs::file_size(broken + "-wal", ec) > 0;
  if (wal) fs::copy_file(broken + "-wal", copy + "-wal", fs::copy_options::overwrite_existing, ec);
  if (fs::file_size(copy, ec) < 512) {
    return absl::DataLossError(absl::StrCat(broken, ": too short to hold a database"));
  }
  if (Readable(copy)) return absl::OkStatus();
  for (const uint32_t page_size : {4096u, 1024u, 2048u, 8192u, 16384u, 32768u, 65536u, 512u}) {
    for (const bool as_wal : {wal, false}) {
      TV_RETURN_IF_ERROR(WriteHeader(copy, page_size, as_wal));
      if (Readable(copy)) {
        report->header_repaired = true;
        report->notes.push_back(absl::StrCat("file header rewritten (page size ", page_size, ")"));
        return absl::OkStatus();
      }
    }
  }
  return absl::DataLossError(
      absl::StrCat(broken, ": no readable schema (header or first page destroyed)"));
}

bool RowParses(sqlite3_stmt* select) {
  auto blob = [&](int col) {
    const void* data = sqlite3_column_blob(select, col);
    return std::string(static_cast<const char*>(data ? data : ""),
                       sqlite3_column_bytes(select, col));
  };
  turbovid::v1::SubmitVideoRequest request;
  turbovid::v1::ResolvedJob resolved;
  return sqlite3_column_type(select, kRequestCol) == SQLITE_BLOB &&
         request.ParseFromString(blob(kRequestCol)) &&
         (sqlite3_column_type(select, kResolvedCol) == SQLITE_NULL ||
          resolved.ParseFromString(blob(kResolvedCol)));
}

int64_t QueryInt(sqlite3* db, const char* sql, int64_t fallback) {
  sqlite3_stmt* stmt = nullptr;
  int64_t value = fallback;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  return value;
}

// The column list: with `db` (the source attached as `src`), as the source store can read it —
// every added column it lacks replaced by its default — else the current schema's names.
std::string Columns(sqlite3* db) {
  std::string cols = kBaseCols;
  for (const AddedColumn& c : kAddedCols) {
    const bool has =
        db == nullptr ||
        QueryInt(db,
                 absl::StrCat("SELECT COUNT(*) FROM pragma_table_info('jobs', 'src') WHERE name = '",
                              c.name, "'")
                     .c_str(),
                 0) == 1;
    absl::StrAppend(&cols, ", ", has ? c.name : c.absent);
  }
  return cols;
}

// Row by row from seq 1 up to `upper`, jumping over what cannot be read. Reads on `src`, its own
// connection, so that a read error never touches the transaction writing `db`.
void CopyByRanges(sqlite3* src, sqlite3* db, const std::string& src_cols, int64_t upper,
                  RecoverReport* report) {
  sqlite3_stmt* select = nullptr;
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(
      src, absl::StrCat("SELECT ", src_cols, " FROM jobs WHERE seq >= ?1 ORDER BY seq").c_str(), -1,
      &select, nullptr);
  std::string placeholders = "?";
  for (int i = 1; i < kNumCols; ++i) absl::StrAppend(&placeholders, ", ?");
  sqlite3_prepare_v2(
      db,
      absl::StrCat("INSERT INTO main.jobs (", Columns(nullptr), ") VALUES (", placeholders, ")")
          .c_str(),
      -1, &insert, nullptr);
  if (select == nullptr || insert == nullptr) {
    report->notes.push_back(absl::StrCat("cannot read jobs: ", sqlite3_errmsg(src)));
  }
  int64_t next = 1;
  int64_t misses = 0;
  while (select != nullptr && insert != nullptr && next <= upper) {
    sqlite3_reset(select);
    sqlite3_bind_int64(select, 1, next);
    int rc = 0;
    while ((rc = sqlite3_step(select)) == SQLITE_ROW) {
      const int64_t seq = sqlite3_column_int64(select, 0);
      next = seq + 1;
      misses = 0;
      if (!RowParses(select)) {
        report->notes.push_back(absl::StrCat("seq ", seq, ": request unreadable, skipped"));
        continue;
      }
      sqlite3_reset(insert);
      for (int i = 0; i < kNumCols; ++i) {
        sqlite3_bind_value(insert, i + 1, sqlite3_column_value(select, i));
      }
      if (sqlite3_step(insert) == SQLITE_DONE) {
        ++report->rows_copied;
      } else {
        report->notes.push_back(absl::StrCat("seq ", seq, ": ", sqlite3_errmsg(db)));
      }
    }
    if (rc == SQLITE_DONE) break;
    const int64_t jump =
        misses < kLinearSkips ? 1 : int64_t{1} << std::min<int64_t>(misses - kLinearSkips + 1, 40);
    if (misses == 0) {
      report->notes.push_back(absl::StrCat("unreadable from seq ", next, ": ", sqlite3_errstr(rc)));
    }
    ++misses;
    next += jump;
  }
  sqlite3_finalize(select);
  sqlite3_finalize(insert);
}

}  // namespace

absl::StatusOr<RecoverReport> RecoverDatabase(const std::string& broken, const std::string& out) {
  std::error_code ec;
  if (!fs::exists(broken, ec)) return absl::NotFoundError(absl::StrCat("--db: no file ", broken));
  if (fs::exists(out, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("--out: ", out, " exists; name a new file"));
  }
  RecoverReport report;
  const std::string copy = out + ".recover-src";
  struct Cleanup {
    std::string copy;
    ~Cleanup() {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(copy + suffix, ec);
    }
  } cleanup{copy};
  TV_RETURN_IF_ERROR(PrepareCopy(broken, copy, &report));
  {
    // Creates `out` with the current schema (and WAL mode), then closes it.
    TV_ASSIGN_OR_RETURN(std::unique_ptr<JobStore> created,
                        JobStore::Open(out, /*synchronous_full=*/true));
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(out.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db);
    sqlite3_close(db);
    return absl::InternalError(absl::StrCat("--out: ", out, ": ", message));
  }
  struct Closer {
    sqlite3* db;
    ~Closer() { sqlite3_close(db); }
  } closer{db};
  sqlite3_stmt* attach = nullptr;
  sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS src", -1, &attach, nullptr);
  sqlite3_bind_text(attach, 1, copy.c_str(), -1, SQLITE_TRANSIENT);
  const int attached = sqlite3_step(attach);
  sqlite3_finalize(attach);
  if (attached != SQLITE_DONE) {
    return absl::DataLossError(absl::StrCat(broken, ": cannot attach: ", sqlite3_errmsg(db)));
  }
  const int64_t sequence =
      QueryInt(db, "SELECT seq FROM src.sqlite_sequence WHERE name = 'jobs'", -1);
  const std::string src_cols = Columns(db);
  // Bulk first: the whole table in one statement (its own transaction) when every page reads.
  const std::string bulk = absl::StrCat("INSERT INTO main.jobs (", Columns(nullptr), ") SELECT ", src_cols,
                                        " FROM src.jobs ORDER BY seq");
  const bool bulk_ok = sqlite3_exec(db, bulk.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
  if (bulk_ok) report.rows_copied = sqlite3_changes(db);
  if (!bulk_ok) {
    report.notes.push_back(
        absl::StrCat("bulk copy failed (", sqlite3_errmsg(db), "); copying row by row"));
  }
  sqlite3_exec(db, "DETACH DATABASE src", nullptr, nullptr, nullptr);
  if (!bulk_ok) {
    sqlite3* src = nullptr;
    sqlite3_open_v2(copy.c_str(), &src, SQLITE_OPEN_READWRITE, nullptr);
    Closer src_closer{src};
    const int64_t max_seq = QueryInt(src, "SELECT MAX(seq) FROM jobs", -1);
    const int64_t known = std::max(sequence, max_seq);
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    CopyByRanges(src, db, src_cols, known > 0 ? known : int64_t{1} << 40, &report);
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return absl::InternalError(absl::StrCat("--out: commit: ", sqlite3_errmsg(db)));
    }
  }
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  report.rows_lost = sequence >= 0 ? std::max<int64_t>(0, sequence - report.rows_copied) : -1;
  if (report.rows_copied == 0) {
    return absl::DataLossError(
        absl::StrCat(broken, ": no job could be read (", out, " holds an empty job store)"));
  }
  return report;
}

}  // namespace turbovid::scheduler
