// flock(LOCK_EX | LOCK_NB) on <dir>/.turbovid-scheduler.lock; the holder writes its pid there.
// The lock belongs to the open file description, so it goes with the process (crash included)
// and is never inherited by children (O_CLOEXEC). The file itself is never deleted: unlinking a
// lock file lets a third process lock a fresh inode while the first still holds the old one.
#include "scheduler/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::scheduler {
namespace {

absl::StatusOr<std::string> CanonicalDirectory(const std::string& directory) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", directory, ": cannot create: ", error.message()));
  }
  std::filesystem::path canonical = std::filesystem::canonical(directory, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", directory, ": ", error.message()));
  }
  return canonical.string();
}

std::string ReadHolder(int fd) {
  char buffer[64] = {};
  const ssize_t n = pread(fd, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return "";
  return std::string(absl::StripAsciiWhitespace(std::string(buffer, n)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& db_path,
                                                                  const std::string& artifact_dir) {
  std::filesystem::path db_dir = std::filesystem::path(db_path).parent_path();
  if (db_dir.empty()) db_dir = ".";
  TV_ASSIGN_OR_RETURN(std::string db_canonical, CanonicalDirectory(db_dir.string()));
  TV_ASSIGN_OR_RETURN(std::string artifacts_canonical, CanonicalDirectory(artifact_dir));
  std::unique_ptr<DataDirLock> lock(new DataDirLock());
  TV_RETURN_IF_ERROR(lock->LockDirectory(db_canonical));
  if (artifacts_canonical != db_canonical) {
    TV_RETURN_IF_ERROR(lock->LockDirectory(artifacts_canonical));
  }
  return lock;
}

absl::Status DataDirLock::LockDirectory(const std::string& directory) {
  const std::string path = (std::filesystem::path(directory) / kLockFileName).string();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", directory, ": cannot open ", path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = ReadHolder(fd);
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory ", directory, " is in use by another turbovid-scheduler (pid ",
          holder.empty() ? "unknown" : holder, ", lock file ", path,
          "): two schedulers must not share a job store or artifact directory"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", directory, ": flock ", path, ": ", std::strerror(error)));
  }
  fds_.push_back(fd);
  directories_.push_back(directory);
  // Informational only (the flock is the lock): who holds it, for the error above.
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", directory, ": writing ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

DataDirLock::~DataDirLock() {
  for (int fd : fds_) close(fd);
}

}  // namespace turbovid::scheduler
