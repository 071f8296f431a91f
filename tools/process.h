// Child processes, free loopback ports and a tiny HTTP GET for the demo, the e2e tests and the
// load bench: everything the CLI needs to run the service locally without linking it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace turbovid::tools {

class ChildProcess {
 public:
  // Starts argv (argv[0] is a path) in its own process group, stdout and stderr appended to
  // log_path ("" = inherit). The child gets SIGKILL if this process dies first.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  ~ChildProcess();  // Stop(5 s) if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // True while the child has not exited (reaps it when it has).
  bool Running();
  // Exit code (128 + signal when killed) once it has exited, within timeout; DeadlineExceeded.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGTERM, then SIGKILL after grace. Returns the exit code.
  int Stop(absl::Duration grace);
  void Kill();  // SIGKILL and reap

 private:
  ChildProcess(pid_t pid, std::string name) : pid_(pid), name_(std::move(name)) {}
  pid_t pid_;
  std::string name_;
  bool exited_ = false;
  int exit_code_ = 0;
};

// Runs argv to completion (killing it after timeout). Returns its exit code.
absl::StatusOr<int> RunProcess(const std::vector<std::string>& argv, const std::string& log_path,
                               absl::Duration timeout);

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeTcpPort();

struct HttpResponse {
  int status = 0;
  std::string body;
};
// HTTP/1.0 GET http://host:port/path (plain HTTP, loopback use).
absl::StatusOr<HttpResponse> HttpGet(const std::string& host, int port, const std::string& path,
                                     absl::Duration timeout);

// Folder of the running executable (/proc/self/exe).
std::string SelfExeDir();
// `flag_value` when set, else `name` next to this executable or in the build tree's sibling
// folders (../scheduler, ../worker, ../engine, ../tools). NotFound lists where it looked.
absl::StatusOr<std::string> FindBinary(const std::string& name, const std::string& flag_value);

}  // namespace turbovid::tools
