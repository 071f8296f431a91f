// civetweb glue: one catch-all request handler dispatching to the handler map under a mutex.
#include "common/http_server.h"

#include <civetweb.h>

#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/tls_terminator.h"

namespace turbovid::common {
namespace {

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

class ConnectionWriter final : public HttpBodyWriter {
 public:
  explicit ConnectionWriter(mg_connection* conn) : conn_(conn) {}
  bool Write(std::string_view data) override {
    if (gone_) return false;
    if (!data.empty() && mg_write(conn_, data.data(), data.size()) <= 0) gone_ = true;
    return !gone_;
  }

 private:
  mg_connection* conn_;
  bool gone_ = false;
};

void Send(mg_connection* conn, const HttpResponse& response) {
  std::string head = absl::StrCat("HTTP/1.1 ", response.status, " ", StatusText(response.status),
                                  "\r\n", "Content-Type: ", response.content_type, "\r\n");
  if (!response.stream) {
    absl::StrAppend(&head, "Content-Length: ", response.body.size(), "\r\n");
  } else if (response.stream_bytes >= 0) {
    absl::StrAppend(&head, "Content-Length: ", response.stream_bytes, "\r\n");
  }
  for (const auto& [name, value] : response.headers)
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  absl::StrAppend(&head, "Cache-Control: no-store\r\n", "Connection: close\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  if (response.stream) {
    ConnectionWriter writer(conn);
    response.stream(writer);
    return;
  }
  if (!response.body.empty()) mg_write(conn, response.body.data(), response.body.size());
}

std::once_flag g_init_once;

// A guard's refusal as {"code", "message"} JSON.
HttpResponse Refusal(const absl::Status& status) {
  int code = 400;
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      code = 401;
      break;
    case absl::StatusCode::kPermissionDenied:
      code = 403;
      break;
    case absl::StatusCode::kResourceExhausted:
      code = 429;
      break;
    default:
      break;
  }
  std::string message;
  for (char c : status.message().substr(0, 1024)) {
    if (c == '"' || c == '\\') message += '\\';
    message += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  HttpResponse response{code, "application/json",
                        absl::StrCat("{\"code\": \"", absl::StatusCodeToString(status.code()),
                                     "\", \"message\": \"", message, "\"}\n")};
  if (code == 429) response.headers.emplace_back("Retry-After", "1");
  return response;
}

}  // namespace

HttpServer::HttpServer(const metrics::Registry* registry) : registry_(registry) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& path, HttpHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handlers_[path] = std::move(handler);
}

void HttpServer::HandlePrefix(const std::string& prefix, HttpHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  prefix_handlers_[prefix] = std::move(handler);
}

std::string HttpRequest::Header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? "" : it->second;
}

void HttpServer::SetGuard(HttpGuard guard) {
  std::lock_guard<std::mutex> lock(mu_);
  guard_ = std::move(guard);
}

void HttpServer::SetLivenessCheck(std::function<bool()> live) {
  std::lock_guard<std::mutex> lock(mu_);
  live_ = std::move(live);
}

absl::Status HttpServer::Start(const Options& options) {
  if (ctx_ != nullptr) return absl::FailedPreconditionError("http server: already started");
  std::call_once(g_init_once, [] { mg_init_library(0); });
  max_body_bytes_ = options.max_body_bytes;
  // With TLS civetweb listens on a loopback port of its own; the terminator takes the public one.
  const std::string ports = options.tls == nullptr
                                ? absl::StrCat(options.listen_address, ":", options.port)
                                : std::string("127.0.0.1:0");
  const std::string threads = absl::StrCat(options.num_threads);
  const std::string timeout = absl::StrCat(options.request_timeout_ms);
  std::vector<const char*> mg_options = {"listening_ports",    ports.c_str(),
                                         "num_threads",        threads.c_str(),
                                         "request_timeout_ms", timeout.c_str(),
                                         // The accept queue: connections past the busy threads
                                         // wait here, not in the kernel's backlog.
                                         "connection_queue",   threads.c_str()};
  mg_options.push_back(nullptr);
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = mg_options.data();
  char error_text[256] = {};
  unsigned error_code = 0;
  mg_error_data error;
  std::memset(&error, 0, sizeof(error));
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  // Made before civetweb's threads start: Dispatch reads terminator_ without a lock.
  if (options.tls != nullptr) terminator_ = std::make_unique<TlsTerminator>(options.tls);
  ctx_ = mg_start2(&init, &error);
  if (ctx_ == nullptr) {
    terminator_.reset();
    return absl::UnavailableError(absl::StrCat("http server: cannot listen on ", ports, ": ",
                                               std::string(error_text), " (civetweb error ", error_code, ")"));
  }
  mg_set_request_handler(ctx_, "/", &HttpServer::Dispatch, this);
  mg_server_port bound[4];
  const int n = mg_get_server_ports(ctx_, 4, bound);
  port_ = n > 0 ? bound[0].port : options.port;
  if (terminator_ != nullptr) {
    const absl::Status started = terminator_->Start(
        {.listen_address = options.listen_address,
         .port = options.port,
         .backend_port = port_,
         .require_client_certificate = options.require_client_certificate,
         .handshake_timeout_ms = options.request_timeout_ms,
         // Connections in their handshake hold no civetweb thread; past the handshake they do.
         .max_connections = 2 * options.num_threads,
         .name = options.name});
    if (!started.ok()) {
      mg_stop(ctx_);
      ctx_ = nullptr;
      terminator_.reset();
      return started;
    }
    port_ = terminator_->port();
  }
  TV_LOG(INFO) << options.name << ": serving "
               << (options.tls == nullptr                   ? "HTTP"
                   : options.require_client_certificate ? "HTTPS (mutual TLS)"
                                                        : "HTTPS")
               << " on " << options.listen_address << ":" << port_ << ", "
               << options.num_threads << " threads";
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (terminator_ != nullptr) terminator_->Stop();  // first: it relays to civetweb
  if (ctx_ == nullptr) return;
  mg_stop(ctx_);
  ctx_ = nullptr;
}

bool IsLoopbackAddress(const std::string& address) {
  return absl::StartsWith(address, "127.") || address == "::1" ||
         absl::StartsWith(address, "::ffff:127.");
}

int HttpServer::Dispatch(mg_connection* conn, void* self) {
  auto* server = static_cast<HttpServer*>(self);
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "";
  request.query = info->query_string ? info->query_string : "";
  const char* content_type = mg_get_header(conn, "Content-Type");
  request.content_type = content_type ? content_type : "";
  request.remote_address = info->remote_addr;
  if (server->terminator_ != nullptr && IsLoopbackAddress(request.remote_address)) {
    // Relayed by the TLS terminator: the client is whoever it accepted.
    std::string client = server->terminator_->ClientAddress(info->remote_port);
    if (!client.empty()) request.remote_address = std::move(client);
  }
  for (int i = 0; i < info->num_headers; ++i) {
    if (info->http_headers[i].name == nullptr || info->http_headers[i].value == nullptr) continue;
    std::string name = info->http_headers[i].name;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    request.headers[name] = info->http_headers[i].value;
  }
  if (info->content_length > server->max_body_bytes_) {
    Send(conn, {413, "text/plain; charset=utf-8", "request body too large\n"});
    return 413;
  }
  char buf[8192];
  int got = 0;
  while ((got = mg_read(conn, buf, sizeof(buf))) > 0) {
    request.body.append(buf, got);
    if (static_cast<int64_t>(request.body.size()) > server->max_body_bytes_) {
      Send(conn, {413, "text/plain; charset=utf-8", "request body too large\n"});
      return 413;
    }
  }
  HttpGuard guard;
  bool guarded = false;
  {
    std::lock_guard<std::mutex> lock(server->mu_);
    guard = server->guard_;
    const bool builtin =
        request.path == "/metrics" || request.path == "/healthz" || request.path == "/readyz";
    guarded = !builtin || server->handlers_.count(request.path) > 0;
  }
  std::shared_ptr<void> context;  // kept until the response is sent
  if (guard && guarded) {
    absl::StatusOr<std::shared_ptr<void>> allowed = guard(request);
    if (!allowed.ok()) {
      const HttpResponse refusal = Refusal(allowed.status());
      Send(conn, refusal);
      return refusal.status;
    }
    context = *std::move(allowed);
  }
  const HttpResponse response = server->Serve(request);
  Send(conn, response);
  return response.status;
}

HttpResponse HttpServer::Serve(const HttpRequest& request) {
  HttpHandler exact;
  HttpHandler by_prefix;
  std::function<bool()> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = handlers_.find(request.path);
    if (it != handlers_.end()) exact = it->second;
    size_t best = 0;
    for (const auto& [prefix, handler] : prefix_handlers_) {
      if (prefix.size() >= best && request.path.compare(0, prefix.size(), prefix) == 0) {
        best = prefix.size();
        by_prefix = handler;
      }
    }
    live = live_;
  }
  if (exact) return exact(request);
  // The probes and /metrics stay reachable under any prefix handler (a web page at "/").
  if (request.path == "/metrics") {
    if (registry_ == nullptr) return {404, "text/plain; charset=utf-8", "no metrics\n"};
    return {200, "text/plain; version=0.0.4; charset=utf-8", registry_->Render()};
  }
  if (request.path == "/healthz") {
    if (live && !live()) return {503, "text/plain; charset=utf-8", "not live\n"};
    return {200, "text/plain; charset=utf-8", "ok\n"};
  }
  if (request.path == "/readyz") {
    if (!ready()) return {503, "text/plain; charset=utf-8", "not ready\n"};
    return {200, "text/plain; charset=utf-8", "ready\n"};
  }
  if (by_prefix) return by_prefix(request);
  return {404, "text/plain; charset=utf-8", absl::StrCat("no handler for ", request.path, "\n")};
}

}  // namespace turbovid::common
