// spm_train child process (see spm_train.h).
#include "engine/testing/spm_train.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace turbovid::engine::spm {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The output's head and tail (spm_train prints the error first, then its usage).
std::string HeadAndTail(const std::string& path, size_t each) {
  std::ifstream in(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.size() <= 2 * each) return all;
  return absl::StrCat(all.substr(0, each), "\n[...]\n", all.substr(all.size() - each));
}

}  // namespace

absl::Status FindSpmTrain(std::string* path) {
  if (const char* env = std::getenv("TV_SPM_TRAIN"); env != nullptr && *env != '\0') {
    if (!IsExecutableFile(env)) {
      return absl::FailedPreconditionError(
          absl::StrCat("TV_SPM_TRAIN=", env, " is not an executable file"));
    }
    *path = env;
    return absl::OkStatus();
  }
  if (const char* env_path = std::getenv("PATH"); env_path != nullptr) {
    std::stringstream dirs(env_path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (dir.empty()) continue;
      const std::string candidate = dir + "/spm_train";
      if (IsExecutableFile(candidate)) {
        *path = candidate;
        return absl::OkStatus();
      }
    }
  }
  if (IsExecutableFile("/usr/bin/spm_train")) {
    *path = "/usr/bin/spm_train";
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      "spm_train not found (install Debian package `sentencepiece`, or set TV_SPM_TRAIN)");
}

absl::Status RunSpmTrain(const std::vector<std::string>& flags, const std::string& cwd) {
  std::string exe;
  if (absl::Status s = FindSpmTrain(&exe); !s.ok()) return s;

  const char* tmp = std::getenv("TMPDIR");
  std::string log =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/tv_spm_train_XXXXXX");
  const int log_fd = ::mkstemp(log.data());
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("spm_train: cannot create ", log, ": ", std::strerror(errno)));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  std::vector<std::string> args_storage;
  args_storage.push_back(exe);
  args_storage.insert(args_storage.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& a : args_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (null_fd >= 0) posix_spawn_file_actions_adddup2(&actions, null_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  pid_t pid = 0;
  const int spawn_err = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (null_fd >= 0) ::close(null_fd);
  ::close(log_fd);
  if (spawn_err != 0) {
    ::unlink(log.c_str());
    const std::string why =
        absl::StrCat("spm_train: cannot run ", exe, ": ", std::strerror(spawn_err));
    return spawn_err == ENOENT || spawn_err == EACCES ? absl::FailedPreconditionError(why)
                                                      : absl::InternalError(why);
  }
  int status = 0;
  pid_t got = 0;
  do {
    got = ::waitpid(pid, &status, 0);
  } while (got < 0 && errno == EINTR);
  const std::string output = HeadAndTail(log, 1000);
  ::unlink(log.c_str());
  if (got < 0) {
    return absl::InternalError(absl::StrCat("spm_train: waitpid: ", std::strerror(errno)));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  const std::string how = WIFEXITED(status)
                              ? absl::StrCat("exited with status ", WEXITSTATUS(status))
                              : absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::InternalError(absl::StrCat("spm_train ", how, "; output:\n", output));
}

}  // namespace turbovid::engine::spm
