// One thread per connection (256 KiB stack): a non-blocking handshake under a deadline, then a
// poll() relay between the TLS socket and the backend socket with at most 64 KiB buffered each
// way.
#include "common/tls_terminator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/tls.h"

namespace turbovid::common {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;
constexpr size_t kThreadStackBytes = 256 * 1024;

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

// After an SSL_read/SSL_write that returned `r` <= 0: true when TLS only waits for the socket
// (the poll events it needs are added to `events`), false when the connection ended or failed.
bool WaitForTls(SSL* ssl, int r, short* events) {
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
      *events |= POLLIN;
      return true;
    case SSL_ERROR_WANT_WRITE:
      *events |= POLLOUT;
      return true;
    default:
      return false;
  }
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct ServeArgs {
  TlsTerminator* self;
  int fd;
  std::string peer;
};

}  // namespace

TlsTerminator::~TlsTerminator() { Stop(); }

absl::Status TlsTerminator::Start(const Options& options) {
  if (listen_fd_ >= 0) return absl::FailedPreconditionError("tls terminator: already started");
  options_ = options;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options.port));
  if (inet_pton(AF_INET, options.listen_address.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, ": '", options.listen_address, "' is not an IPv4 address"));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 1024) != 0) {
    const std::string error = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(absl::StrCat(options.name, ": cannot listen on ",
                                               options.listen_address, ":", options.port, ": ",
                                               error));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (pipe2(wake_fds_, O_CLOEXEC) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat(options.name, ": pipe: ", std::strerror(errno)));
  }
  SetNonBlocking(fd);
  listen_fd_ = fd;
  stopping_ = false;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void TlsTerminator::Stop() {
  if (listen_fd_ < 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  const char byte = 0;
  (void)!write(wake_fds_[1], &byte, 1);
  acceptor_.join();
  std::unique_lock<std::mutex> lock(mu_);
  for (int fd : fds_) shutdown(fd, SHUT_RDWR);  // wakes every relay's poll
  idle_cv_.wait(lock, [this] { return active_ == 0; });
  lock.unlock();
  close(listen_fd_);
  close(wake_fds_[0]);
  close(wake_fds_[1]);
  listen_fd_ = -1;
}

std::string TlsTerminator::ClientAddress(int backend_local_port) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = client_by_port_.find(backend_local_port);
  return it == client_by_port_.end() ? "" : it->second;
}

void TlsTerminator::AcceptLoop() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kThreadStackBytes);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) break;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len,
                           SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) usleep(10000);  // out of descriptors: back off
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || active_ >= options_.max_connections) {
        close(fd);
        continue;
      }
      ++active_;
      fds_.insert(fd);
    }
    auto* args = new ServeArgs{this, fd, text};
    pthread_t thread;
    if (pthread_create(&thread, &attr, &TlsTerminator::ServeThread, args) != 0) {
      delete args;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.erase(fd);
      close(fd);
      if (--active_ == 0) idle_cv_.notify_all();
    }
  }
  pthread_attr_destroy(&attr);
}

void* TlsTerminator::ServeThread(void* arg) {
  std::unique_ptr<ServeArgs> args(static_cast<ServeArgs*>(arg));
  TlsTerminator* self = args->self;
  const int fd = args->fd;
  self->Serve(fd, args->peer);
  std::lock_guard<std::mutex> lock(self->mu_);
  self->fds_.erase(fd);
  close(fd);
  if (--self->active_ == 0) self->idle_cv_.notify_all();
  return nullptr;
}

void TlsTerminator::Serve(int fd, const std::string& peer) {
  const std::shared_ptr<const TlsMaterial> material = tls_->current();
  const std::shared_ptr<SSL_CTX>& ctx =
      options_.require_client_certificate ? material->mutual_ctx : material->server_ctx;
  if (ctx == nullptr) return;
  std::unique_ptr<SSL, void (*)(SSL*)> ssl(SSL_new(ctx.get()), SSL_free);
  if (ssl == nullptr) return;
  SSL_set_fd(ssl.get(), fd);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  // The handshake, under its deadline.
  const int64_t deadline = NowMs() + options_.handshake_timeout_ms;
  while (true) {
    ERR_clear_error();
    const int r = SSL_accept(ssl.get());
    if (r == 1) break;
    const int error = SSL_get_error(ssl.get(), r);
    const int64_t left = deadline - NowMs();
    if ((error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) || left <= 0) {
      // Plaintext on the TLS port, a client without a certificate, a scanner: one line a few.
      const uint64_t n = ++refused_handshakes_;
      if (n <= 10 || n % 1000 == 0) {
        char reason[256] = "handshake timed out";
        if (left > 0) {
          const unsigned long code = ERR_peek_error();
          if (code != 0) {
            ERR_error_string_n(code, reason, sizeof(reason));
          } else {
            std::snprintf(reason, sizeof(reason), "connection closed");
          }
        }
        TV_LOG(INFO) << options_.name << ": TLS handshake with " << peer << " failed ("
                     << reason << "); " << n << " so far";
      }
      ERR_clear_error();
      return;
    }
    pollfd p{fd, static_cast<short>(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    if (poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
  }

  // The backend connection.
  const int backend = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (backend < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options_.backend_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(backend, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    TV_LOG(WARNING) << options_.name << ": cannot reach the HTTP server on port "
                    << options_.backend_port << ": " << std::strerror(errno);
    close(backend);
    return;
  }
  setsockopt(backend, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(backend, reinterpret_cast<sockaddr*>(&local), &len);
  const int local_port = ntohs(local.sin_port);
  SetNonBlocking(backend);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fds_.insert(backend);
    client_by_port_[local_port] = peer;
    if (stopping_) shutdown(backend, SHUT_RDWR);
  }

  std::string up;    // client -> backend, not yet sent
  std::string down;  // backend -> client, not yet sent
  bool client_eof = false;
  bool backend_eof = false;
  bool backend_write_shut = false;
  char buf[16384];
  while (true) {
    bool progress = false;
    short client_events = 0;
    short backend_events = 0;
    bool broken = false;
    // Client -> buffer.
    if (!client_eof && up.size() < kBufferBytes) {
      ERR_clear_error();
      const int r = SSL_read(ssl.get(), buf, sizeof(buf));
      if (r > 0) {
        up.append(buf, static_cast<size_t>(r));
        progress = true;
      } else {
        if (!WaitForTls(ssl.get(), r, &client_events)) {
          client_eof = true;  // close_notify, reset or a protocol error
          progress = true;
        }
      }
    }
    // Buffer -> backend.
    if (!up.empty()) {
      const ssize_t n = send(backend, up.data(), up.size(), MSG_NOSIGNAL);
      if (n > 0) {
        up.erase(0, static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        backend_events |= POLLOUT;
      } else {
        broken = true;
      }
    } else if (client_eof && !backend_write_shut) {
      shutdown(backend, SHUT_WR);
      backend_write_shut = true;
    }
    // Backend -> buffer.
    if (!backend_eof && down.size() < kBufferBytes) {
      const ssize_t n = recv(backend, buf, sizeof(buf), 0);
      if (n > 0) {
        down.append(buf, static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        backend_events |= POLLIN;
      } else {
        backend_eof = true;
        progress = true;
      }
    }
    // Buffer -> client.
    if (!down.empty()) {
      ERR_clear_error();
      const int r = SSL_write(ssl.get(), down.data(), static_cast<int>(down.size()));
      if (r > 0) {
        down.erase(0, static_cast<size_t>(r));
        progress = true;
      } else {
        if (!WaitForTls(ssl.get(), r, &client_events)) {
          broken = true;
        }
      }
    }
    if (broken || (backend_eof && down.empty()) || (client_eof && backend_eof)) break;
    if (progress) continue;
    // Only the sockets something waits on: a hung-up one not waited on would wake poll() in a
    // loop. The next pass's read or write sees an error or end of stream.
    pollfd fds[2] = {{client_events ? fd : -1, client_events, 0},
                     {backend_events ? backend : -1, backend_events, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
  }
  if (backend_eof && down.empty()) {
    ERR_clear_error();
    SSL_shutdown(ssl.get());  // close_notify, best effort (non-blocking)
  }
  std::lock_guard<std::mutex> lock(mu_);
  client_by_port_.erase(local_port);
  fds_.erase(backend);
  close(backend);
}

}  // namespace turbovid::common
