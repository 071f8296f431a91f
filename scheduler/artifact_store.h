// Where finished MP4s live. ArtifactStore is the interface (an object store can implement it);
// LocalArtifactStore keeps `<dir>/<job_id>.mp4`, written to a temp file and renamed on commit.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/backend.h"

namespace turbovid::scheduler {

// One upload in progress: chunks must arrive in order.
class ArtifactWriter {
 public:
  virtual ~ArtifactWriter() = default;  // aborts when not committed
  // InvalidArgument when `offset` is not the number of bytes written so far.
  virtual absl::Status Append(int64_t offset, const std::string& data) = 0;
  // Makes the artifact visible; returns its size.
  virtual absl::StatusOr<int64_t> Commit() = 0;
  virtual int64_t bytes_written() const = 0;
  // The bytes written so far (the result check reads an upload before it commits).
  virtual absl::StatusOr<std::string> ReadBack() = 0;
};

// What the store holds: committed artifacts only (uploads in progress are not counted).
struct ArtifactUsage {
  int64_t bytes = 0;
  int64_t files = 0;
};

class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;
  virtual absl::StatusOr<std::unique_ptr<ArtifactWriter>> BeginWrite(const std::string& job_id) = 0;
  virtual absl::StatusOr<std::unique_ptr<server::ByteSource>> Open(const std::string& job_id) = 0;
  // The size of the committed artifact of `job_id`; nullopt when none was committed.
  virtual absl::StatusOr<std::optional<int64_t>> CommittedSize(const std::string& job_id) = 0;
  // Deletes a committed artifact; OK when there is none.
  virtual absl::Status Remove(const std::string& job_id) = 0;
  // Kept up to date by commits and removals (cheap: read on every submit).
  virtual ArtifactUsage Usage() const = 0;
};

class LocalArtifactStore final : public ArtifactStore {
 public:
  // Creates `dir` if needed and removes temp files left by a crash.
  static absl::StatusOr<std::unique_ptr<LocalArtifactStore>> Create(const std::string& dir);

  absl::StatusOr<std::unique_ptr<ArtifactWriter>> BeginWrite(const std::string& job_id) override;
  absl::StatusOr<std::unique_ptr<server::ByteSource>> Open(const std::string& job_id) override;
  absl::StatusOr<std::optional<int64_t>> CommittedSize(const std::string& job_id) override;
  absl::Status Remove(const std::string& job_id) override;
  ArtifactUsage Usage() const override;
  std::string PathOf(const std::string& job_id) const;

  // Shared with the writers, which add what they commit.
  struct Counters {
    std::atomic<int64_t> bytes{0};
    std::atomic<int64_t> files{0};
  };

 private:
  explicit LocalArtifactStore(std::string dir)
      : dir_(std::move(dir)), counters_(std::make_shared<Counters>()) {}
  std::string dir_;
  std::shared_ptr<Counters> counters_;  // the committed `<job_id>.mp4` files, counted at Create
};

}  // namespace turbovid::scheduler
