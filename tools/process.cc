// POSIX implementation of the child-process and loopback helpers.
#include "tools/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace turbovid::tools {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

absl::Status ErrnoError(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("argv is empty");
  int log_fd = -1;
  if (!log_path.empty()) {
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return ErrnoError(absl::StrCat("open ", log_path));
  }
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    if (log_fd >= 0) close(log_fd);
    return ErrnoError("fork");
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
    }
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execv(cargv[0], cargv.data());
    const char msg[] = "exec failed\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  std::string name = std::filesystem::path(argv[0]).filename().string();
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, name));
}

ChildProcess::~ChildProcess() {
  if (!exited_) Stop(absl::Seconds(5));
}

bool ChildProcess::Running() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_code_ = DecodeWaitStatus(status);
    return false;
  }
  if (r < 0 && errno == ECHILD) {
    exited_ = true;
    exit_code_ = -1;
    return false;
  }
  return true;
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(name_, " (pid ", pid_, ") still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return exit_code_;
}

int ChildProcess::Stop(absl::Duration grace) {
  if (!Running()) return exit_code_;
  kill(pid_, SIGTERM);
  if (Wait(grace).ok()) return exit_code_;
  Kill();
  return exit_code_;
}

void ChildProcess::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) {
    exit_code_ = DecodeWaitStatus(status);
  } else {
    exit_code_ = 128 + SIGKILL;
  }
  exited_ = true;
}

absl::StatusOr<int> RunProcess(const std::vector<std::string>& argv, const std::string& log_path,
                               absl::Duration timeout) {
  auto child = ChildProcess::Start(argv, log_path);
  if (!child.ok()) return child.status();
  auto code = (*child)->Wait(timeout);
  if (!code.ok()) {
    (*child)->Kill();
    return code.status();
  }
  return *code;
}

absl::StatusOr<int> FreeTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status s = ErrnoError("bind 127.0.0.1:0");
    close(fd);
    return s;
  }
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<HttpResponse> HttpGet(const std::string& host, int port, const std::string& path,
                                     absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoError("socket");
  auto fail = [&](absl::Status s) {
    close(fd);
    return s;
  };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string ip = host == "localhost" ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return fail(absl::InvalidArgumentError(absl::StrCat("host: '", host, "' is not an IPv4 address")));
  }
  auto wait_for = [&](short events) -> absl::Status {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return absl::DeadlineExceededError(absl::StrCat("GET ", path, " timed out"));
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, ms);
    if (r == 0) return absl::DeadlineExceededError(absl::StrCat("GET ", path, " timed out"));
    if (r < 0) return ErrnoError("poll");
    return absl::OkStatus();
  };
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) return fail(absl::UnavailableError(absl::StrCat("connect ", host, ":", port, ": ", std::strerror(errno))));
    if (absl::Status s = wait_for(POLLOUT); !s.ok()) return fail(s);
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return fail(absl::UnavailableError(absl::StrCat("connect ", host, ":", port, ": ", std::strerror(err))));
    }
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\n\r\n");
  size_t sent = 0;
  while (sent < req.size()) {
    if (absl::Status s = wait_for(POLLOUT); !s.ok()) return fail(s);
    ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return fail(ErrnoError("send"));
    if (n > 0) sent += n;
  }
  std::string resp;
  char buf[4096];
  while (true) {
    if (absl::Status s = wait_for(POLLIN); !s.ok()) return fail(s);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN) continue;
      return fail(ErrnoError("recv"));
    }
    resp.append(buf, n);
  }
  close(fd);
  HttpResponse out;
  size_t sp = resp.find(' ');
  if (resp.rfind("HTTP/", 0) != 0 || sp == std::string::npos) {
    return absl::DataLossError(absl::StrCat("GET ", path, ": malformed HTTP response"));
  }
  out.status = std::atoi(resp.c_str() + sp + 1);
  size_t body = resp.find("\r\n\r\n");
  if (body != std::string::npos) out.body = resp.substr(body + 4);
  return out;
}

std::string SelfExeDir() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return exe.parent_path().string();
}

absl::StatusOr<std::string> FindBinary(const std::string& name, const std::string& flag_value) {
  if (!flag_value.empty()) {
    if (access(flag_value.c_str(), X_OK) == 0) return flag_value;
    return absl::NotFoundError(absl::StrCat(flag_value, " is not an executable file"));
  }
  const std::filesystem::path dir = SelfExeDir();
  std::vector<std::string> tried;
  for (const char* sub : {".", "../scheduler", "../worker", "../engine", "../tools", "../bin"}) {
    std::filesystem::path p = (dir / sub / name).lexically_normal();
    tried.push_back(p.string());
    if (access(p.c_str(), X_OK) == 0) return p.string();
  }
  return absl::NotFoundError(
      absl::StrCat(name, " not found (tried ", absl::StrJoin(tried, ", "), "); pass its path by flag"));
}

}  // namespace turbovid::tools
