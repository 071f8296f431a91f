// A small HTTP server on civetweb: /metrics (a metrics::Registry), /healthz (live), /readyz
// (ready flag), plus any handlers the process adds (exact path match, e.g. the /v1/videos gateway).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "common/limits.h"

struct mg_context;
struct mg_connection;

namespace turbovid::common {

namespace metrics {
class Registry;
}  // namespace metrics

struct HttpRequest {
  std::string method;        // "GET", "POST", ...
  std::string path;          // "/metrics"
  std::string query;         // after '?', undecoded; "" when absent
  std::string body;          // request body (at most HttpServer::Options::max_body_bytes)
  std::string content_type;  // request Content-Type header or ""
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  struct Options {
    std::string listen_address = "0.0.0.0";  // IPv4 address to bind
    int port = 0;                            // 0 = any free port (see port())
    int num_threads = 4;
    int64_t max_body_bytes = kMaxHttpBodyBytes;  // larger bodies get 413
  };

  // `registry` (may be null) is rendered on /metrics; it must outlive the server.
  explicit HttpServer(const metrics::Registry* registry);
  ~HttpServer();  // stops the server
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Adds or replaces the handler of an exact path; may be called before or after Start.
  void Handle(const std::string& path, HttpHandler handler);
  // /healthz answers 200 while `live` returns true (default: always), 503 otherwise.
  void SetLivenessCheck(std::function<bool()> live);
  // /readyz answers 200 once SetReady(true), 503 before and after SetReady(false).
  void SetReady(bool ready) { ready_.store(ready); }
  bool ready() const { return ready_.load(); }

  // Binds and starts serving; Unavailable when the port cannot be bound.
  absl::Status Start(const Options& options);
  void Stop();
  int port() const { return port_; }  // the bound port, after Start

 private:
  static int Dispatch(mg_connection* conn, void* self);
  HttpResponse Serve(const HttpRequest& request);

  const metrics::Registry* registry_;
  std::atomic<bool> ready_{false};
  std::mutex mu_;
  std::map<std::string, HttpHandler> handlers_;
  std::function<bool()> live_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  int64_t max_body_bytes_ = 0;
};

}  // namespace turbovid::common
