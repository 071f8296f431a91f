// DataDirLock: an exclusive flock on a lock file in each data directory (the job store's and the
// artifact store's), held for the scheduler's lifetime so a second scheduler cannot share them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace turbovid::scheduler {

class DataDirLock {
 public:
  static constexpr char kLockFileName[] = ".turbovid-scheduler.lock";

  // Locks the directory holding `db_path` and `artifact_dir` (once if they are the same),
  // creating them when missing. A directory already locked by a live process gives
  // FailedPrecondition naming the directory and the holder's pid.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& db_path,
                                                              const std::string& artifact_dir);
  ~DataDirLock();  // closing the descriptors releases the locks
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  const std::vector<std::string>& directories() const { return directories_; }

 private:
  DataDirLock() = default;
  absl::Status LockDirectory(const std::string& directory);

  std::vector<std::string> directories_;
  std::vector<int> fds_;
};

}  // namespace turbovid::scheduler
