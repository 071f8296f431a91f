// LocalArtifactStore: POSIX file I/O; fsync before rename so a committed MP4 is whole.
#include "scheduler/artifact_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace turbovid::scheduler {
namespace {

absl::Status Errno(const std::string& what) {
  const int err = errno;
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

bool SafeId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

class FileWriter final : public ArtifactWriter {
 public:
  FileWriter(int fd, std::string temp_path, std::string final_path,
             std::shared_ptr<LocalArtifactStore::Counters> counters)
      : fd_(fd),
        temp_path_(std::move(temp_path)),
        final_path_(std::move(final_path)),
        counters_(std::move(counters)) {}
  ~FileWriter() override {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(temp_path_.c_str());
  }

  absl::Status Append(int64_t offset, const std::string& data) override {
    if (offset != written_) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk.offset: ", offset, " != bytes received ", written_));
    }
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = write(fd_, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno(absl::StrCat("artifact write ", temp_path_));
      done += static_cast<size_t>(n);
    }
    written_ += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Commit() override {
    if (fsync(fd_) != 0) return Errno(absl::StrCat("artifact fsync ", temp_path_));
    close(fd_);
    fd_ = -1;
    struct stat old;
    const bool replaces = stat(final_path_.c_str(), &old) == 0;
    if (rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      return Errno(absl::StrCat("artifact rename ", final_path_));
    }
    committed_ = true;
    counters_->bytes += written_ - (replaces ? static_cast<int64_t>(old.st_size) : 0);
    if (!replaces) ++counters_->files;
    return written_;
  }

  int64_t bytes_written() const override { return written_; }

  absl::StatusOr<std::string> ReadBack() override {
    const int fd = open(temp_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno(absl::StrCat("artifact read ", temp_path_));
    std::string out(static_cast<size_t>(written_), '\0');
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const absl::Status status = n < 0 ? Errno(absl::StrCat("artifact read ", temp_path_))
                                          : absl::DataLossError(absl::StrCat(
                                                "artifact read ", temp_path_, ": short file"));
        close(fd);
        return status;
      }
      done += static_cast<size_t>(n);
    }
    close(fd);
    return out;
  }

 private:
  int fd_;
  std::string temp_path_;
  std::string final_path_;
  int64_t written_ = 0;
  bool committed_ = false;
  std::shared_ptr<LocalArtifactStore::Counters> counters_;
};

class FileSource final : public server::ByteSource {
 public:
  FileSource(int fd, int64_t size) : fd_(fd), size_(size) {}
  ~FileSource() override { close(fd_); }
  int64_t size() const override { return size_; }
  absl::StatusOr<std::string> Read(size_t max_bytes) override {
    std::string out(max_bytes, '\0');
    ssize_t n = 0;
    do {
      n = read(fd_, out.data(), max_bytes);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Errno("artifact read");
    out.resize(static_cast<size_t>(n));
    return out;
  }
  absl::Status Seek(int64_t offset) override {
    if (offset < 0 || offset > size_) {
      return absl::OutOfRangeError(absl::StrCat("offset ", offset, " outside [0, ", size_, "]"));
    }
    if (lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) return Errno("artifact seek");
    return absl::OkStatus();
  }

 private:
  int fd_;
  int64_t size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LocalArtifactStore>> LocalArtifactStore::Create(
    const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("artifact_dir: cannot create ", dir, ": ", ec.message()));
  }
  std::unique_ptr<LocalArtifactStore> store(new LocalArtifactStore(dir));
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".tmp")) {
      std::filesystem::remove(entry.path(), ec);
    } else if (absl::EndsWith(name, ".mp4") && entry.is_regular_file(ec)) {
      const uintmax_t size = entry.file_size(ec);
      if (!ec) {
        store->counters_->bytes += static_cast<int64_t>(size);
        ++store->counters_->files;
      }
    }
  }
  return store;
}

std::string LocalArtifactStore::PathOf(const std::string& job_id) const {
  return absl::StrCat(dir_, "/", job_id, ".mp4");
}

absl::StatusOr<std::unique_ptr<ArtifactWriter>> LocalArtifactStore::BeginWrite(
    const std::string& job_id) {
  if (!SafeId(job_id)) return absl::InvalidArgumentError(absl::StrCat("job_id: ", job_id));
  const std::string final_path = PathOf(job_id);
  // A unique temp name per upload: a lost attempt's leftovers never collide with the next one.
  static std::atomic<uint64_t> counter{0};
  const std::string temp_path = absl::StrCat(final_path, ".", getpid(), ".", counter++, ".tmp");
  const int fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("artifact open ", temp_path));
  return std::unique_ptr<ArtifactWriter>(new FileWriter(fd, temp_path, final_path, counters_));
}

absl::StatusOr<std::unique_ptr<server::ByteSource>> LocalArtifactStore::Open(
    const std::string& job_id) {
  if (!SafeId(job_id)) return absl::InvalidArgumentError(absl::StrCat("job_id: ", job_id));
  const std::string path = PathOf(job_id);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::DataLossError(absl::StrCat("video of ", job_id, " missing"));
    return Errno(absl::StrCat("artifact open ", path));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return Errno(absl::StrCat("artifact stat ", path));
  }
  return std::unique_ptr<server::ByteSource>(new FileSource(fd, st.st_size));
}

absl::StatusOr<std::optional<int64_t>> LocalArtifactStore::CommittedSize(
    const std::string& job_id) {
  // Commit renames a complete temp file, so a file under the final name is whole.
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(PathOf(job_id), ec);
  if (ec == std::errc::no_such_file_or_directory) return std::optional<int64_t>();
  if (ec) {
    return absl::InternalError(absl::StrCat("artifact ", PathOf(job_id), ": ", ec.message()));
  }
  return std::optional<int64_t>(static_cast<int64_t>(size));
}

absl::Status LocalArtifactStore::Remove(const std::string& job_id) {
  if (!SafeId(job_id)) return absl::InvalidArgumentError(absl::StrCat("job_id: ", job_id));
  const std::string path = PathOf(job_id);
  struct stat st;
  const bool exists = stat(path.c_str(), &st) == 0;
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno(absl::StrCat("artifact remove ", path));
  }
  if (exists) {
    counters_->bytes -= static_cast<int64_t>(st.st_size);
    --counters_->files;
  }
  return absl::OkStatus();
}

ArtifactUsage LocalArtifactStore::Usage() const {
  return ArtifactUsage{std::max<int64_t>(0, counters_->bytes.load()),
                       std::max<int64_t>(0, counters_->files.load())};
}

}  // namespace turbovid::scheduler
