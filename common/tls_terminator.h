// TLS in front of a plaintext TCP server of this process (HttpServer's civetweb): accepts on the
// public address, runs the TLS handshake with OpenSSL 3 (the current TlsReloader set, optionally
// requiring a client certificate), then relays bytes to the backend on loopback. Each connection
// has its own small thread, and a handshake not done within handshake_timeout_ms is cut, so slow
// or silent connections never delay another's. The backend sees 127.0.0.1; ClientAddress() maps
// the backend connection's local port back to the real client.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace turbovid::common {

class TlsReloader;

class TlsTerminator {
 public:
  struct Options {
    std::string listen_address = "0.0.0.0";  // IPv4
    int port = 0;                            // 0 = any free port (see port())
    int backend_port = 0;                    // plaintext server on 127.0.0.1
    bool require_client_certificate = false;  // mutual TLS (needs the set's client CA)
    int handshake_timeout_ms = 10000;
    int max_connections = 2048;  // more are closed at once
    std::string name = "https";  // in log lines
  };

  explicit TlsTerminator(const TlsReloader* tls) : tls_(tls) {}
  ~TlsTerminator();  // Stop()
  TlsTerminator(const TlsTerminator&) = delete;
  TlsTerminator& operator=(const TlsTerminator&) = delete;

  // Binds and starts accepting; Unavailable when the port cannot be bound.
  absl::Status Start(const Options& options);
  // Stops accepting, cuts every connection and waits for their threads.
  void Stop();
  int port() const { return port_; }
  // The client address ("203.0.113.7") of the relayed connection whose backend socket has the
  // local port `backend_local_port`; "" when none.
  std::string ClientAddress(int backend_local_port) const;

 private:
  void AcceptLoop();
  void Serve(int fd, const std::string& peer);
  static void* ServeThread(void* arg);

  const TlsReloader* tls_;
  Options options_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // Stop writes to [1] to end the accept loop
  int port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  int active_ = 0;
  bool stopping_ = false;
  std::set<int> fds_;                            // open sockets of live connections
  std::map<int, std::string> client_by_port_;    // backend local port -> client address
  std::atomic<uint64_t> refused_handshakes_{0};  // for the rate-limited log line
};

}  // namespace turbovid::common
