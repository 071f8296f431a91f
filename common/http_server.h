// A small HTTP server on civetweb: /metrics (a metrics::Registry), /healthz (live), /readyz
// (ready flag), plus any handlers the process adds (exact paths, or the longest matching path
// prefix: the /v1/videos gateways, the web page). A response is a body in memory or a stream
// written on the connection's thread (large videos, server-sent events).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/limits.h"

struct mg_context;
struct mg_connection;

namespace turbovid::common {

namespace metrics {
class Registry;
}  // namespace metrics
class TlsReloader;
class TlsTerminator;

struct HttpRequest {
  std::string method;        // "GET", "POST", ...
  std::string path;          // "/metrics"
  std::string query;         // after '?', undecoded; "" when absent
  std::string body;          // request body (at most HttpServer::Options::max_body_bytes)
  std::string content_type;  // request Content-Type header or ""
  std::string remote_address;                  // the client's IP address
  std::map<std::string, std::string> headers;  // every request header, names in lower case

  // The header `lower_case_name`, or "".
  std::string Header(const std::string& lower_case_name) const;
};

// The body of a streamed response.
class HttpBodyWriter {
 public:
  virtual ~HttpBodyWriter() = default;
  // Sends `data` now; false once the client is gone (stop writing then).
  virtual bool Write(std::string_view data) = 0;
};

// True for 127.0.0.0/8 and ::1 (and ::ffff:127.x): a request from this host.
bool IsLoopbackAddress(const std::string& address);

struct HttpResponse {
  HttpResponse(int status_code = 200, std::string type = "text/plain; charset=utf-8",
               std::string content = "")
      : status(status_code), content_type(std::move(type)), body(std::move(content)) {}

  int status;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (name, value)
  // When set, the body is what this writes (`body` is ignored), called after the head is sent on
  // the connection's thread, which it holds until it returns.
  std::function<void(HttpBodyWriter&)> stream;
  int64_t stream_bytes = -1;  // Content-Length of the stream; -1 = unknown (ends at close)
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Runs before every request but the built-in /metrics, /healthz and /readyz (unknown paths
// included, so that their 404 tells nothing to an unauthenticated caller). An error is answered instead (Unauthenticated 401, PermissionDenied 403,
// ResourceExhausted 429, others 400) as {"code", "message"} JSON; on success the returned object
// is kept alive while the handler runs and its response is sent, on the connection's thread (a
// guard may set per-request context there, e.g. the caller's credentials).
using HttpGuard = std::function<absl::StatusOr<std::shared_ptr<void>>(const HttpRequest&)>;

class HttpServer {
 public:
  struct Options {
    std::string listen_address = "0.0.0.0";  // IPv4 address to bind
    int port = 0;                            // 0 = any free port (see port())
    // Each connection holds a thread until its request has arrived (or request_timeout_ms
    // passed): the number of slow or idle connections served before probes wait.
    int num_threads = 4;
    int request_timeout_ms = 30000;
    int64_t max_body_bytes = kMaxHttpBodyBytes;  // larger bodies get 413
    std::string name = "http";  // in log lines
    // HTTPS with the current set of `tls` (must outlive the server); null = plaintext. civetweb's
    // own TLS is not used (Debian 12's civetweb 1.15 crashes with OpenSSL 3, docs/security.md):
    // a TlsTerminator takes the public port and relays to civetweb on a loopback port.
    const TlsReloader* tls = nullptr;
    bool require_client_certificate = false;  // mutual TLS (the set's client CA)
  };

  // `registry` (may be null) is rendered on /metrics; it must outlive the server.
  explicit HttpServer(const metrics::Registry* registry);
  ~HttpServer();  // stops the server
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Adds or replaces the handler of an exact path; may be called before or after Start.
  void Handle(const std::string& path, HttpHandler handler);
  // The handler of every path that starts with `prefix` and has no exact handler (the longest
  // matching prefix wins).
  void HandlePrefix(const std::string& prefix, HttpHandler handler);
  // /healthz answers 200 while `live` returns true (default: always), 503 otherwise.
  void SetLivenessCheck(std::function<bool()> live);
  // Installs the guard of the added handlers (see HttpGuard); call before Start.
  void SetGuard(HttpGuard guard);
  // /readyz answers 200 once SetReady(true), 503 before and after SetReady(false).
  void SetReady(bool ready) { ready_.store(ready); }
  bool ready() const { return ready_.load(); }

  // Binds and starts serving; Unavailable when the port cannot be bound.
  absl::Status Start(const Options& options);
  void Stop();
  int port() const { return port_; }  // the bound (public) port, after Start

 private:
  static int Dispatch(mg_connection* conn, void* self);
  HttpResponse Serve(const HttpRequest& request);

  const metrics::Registry* registry_;
  std::atomic<bool> ready_{false};
  std::mutex mu_;
  std::map<std::string, HttpHandler> handlers_;
  std::map<std::string, HttpHandler> prefix_handlers_;
  std::function<bool()> live_;
  HttpGuard guard_;
  mg_context* ctx_ = nullptr;
  std::unique_ptr<TlsTerminator> terminator_;  // with Options::tls
  int port_ = 0;
  int64_t max_body_bytes_ = 0;
};

}  // namespace turbovid::common
