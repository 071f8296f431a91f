// HttpServer on a loopback port: /metrics, /healthz, /readyz, exact and prefix handlers, request
// headers, extra response headers and streamed bodies.
#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "common/metrics.h"
#include "gtest/gtest.h"

namespace turbovid::common {
namespace {

// Minimal HTTP/1.1 client: returns the raw response ("" on a socket error).
std::string Fetch(int port, const std::string& method, const std::string& path,
                  const std::string& body = "") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n" +
                              "Content-Length: " + std::to_string(body.size()) +
                              "\r\nConnection: close\r\n\r\n" + body;
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "";
  }
  std::string response;
  char buf[4096];
  ssize_t got = 0;
  while ((got = read(fd, buf, sizeof(buf))) > 0) response.append(buf, got);
  close(fd);
  return response;
}

TEST(HttpServerTest, ServesHealthReadinessMetricsAndHandlers) {
  metrics::Registry registry;
  registry.AddCounter("turbovid_test_total", "Test counter.").Get().Increment(5);
  HttpServer server(&registry);
  server.Handle("/echo", [](const HttpRequest& request) {
    return HttpResponse{201, "text/plain", request.method + ":" + request.body};
  });
  HttpServer::Options options;
  options.listen_address = "127.0.0.1";
  options.port = 0;
  ASSERT_TRUE(server.Start(options).ok());
  ASSERT_GT(server.port(), 0);

  EXPECT_NE(Fetch(server.port(), "GET", "/healthz").find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(Fetch(server.port(), "GET", "/readyz").find("HTTP/1.1 503"), std::string::npos);
  server.SetReady(true);
  EXPECT_NE(Fetch(server.port(), "GET", "/readyz").find("HTTP/1.1 200"), std::string::npos);

  const std::string metrics = Fetch(server.port(), "GET", "/metrics");
  EXPECT_NE(metrics.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.find("turbovid_test_total 5\n"), std::string::npos);

  const std::string echo = Fetch(server.port(), "POST", "/echo", "hello");
  EXPECT_NE(echo.find("HTTP/1.1 201"), std::string::npos);
  EXPECT_NE(echo.find("POST:hello"), std::string::npos);
  EXPECT_NE(Fetch(server.port(), "GET", "/nope").find("HTTP/1.1 404"), std::string::npos);

  server.SetLivenessCheck([] { return false; });
  EXPECT_NE(Fetch(server.port(), "GET", "/healthz").find("HTTP/1.1 503"), std::string::npos);
  server.Stop();
}

TEST(HttpServerTest, PrefixHandlersHeadersAndStreams) {
  HttpServer server(nullptr);
  server.HandlePrefix("/", [](const HttpRequest& request) {
    return HttpResponse{200, "text/plain", "root " + request.path};
  });
  server.HandlePrefix("/v1/things/", [](const HttpRequest& request) {
    HttpResponse response{200, "text/plain",
                          "thing " + request.path.substr(11) + " host " + request.Header("host")};
    response.headers.emplace_back("X-Test", "yes");
    return response;
  });
  server.Handle("/stream", [](const HttpRequest&) {
    HttpResponse response;
    response.content_type = "text/event-stream";
    response.stream = [](HttpBodyWriter& writer) {
      for (int i = 0; i < 3; ++i) writer.Write("data: " + std::to_string(i) + "\n\n");
    };
    return response;
  });
  HttpServer::Options options;
  options.listen_address = "127.0.0.1";
  ASSERT_TRUE(server.Start(options).ok());
  const std::string thing = Fetch(server.port(), "GET", "/v1/things/abc");
  EXPECT_NE(thing.find("thing abc host localhost"), std::string::npos) << thing;
  EXPECT_NE(thing.find("X-Test: yes\r\n"), std::string::npos);
  EXPECT_NE(Fetch(server.port(), "GET", "/index.html").find("root /index.html"), std::string::npos);
  // The probes are not shadowed by a prefix handler at "/".
  EXPECT_NE(Fetch(server.port(), "GET", "/healthz").find("ok\n"), std::string::npos);
  const std::string stream = Fetch(server.port(), "GET", "/stream");
  EXPECT_NE(stream.find("data: 0\n\ndata: 1\n\ndata: 2\n\n"), std::string::npos) << stream;
  EXPECT_EQ(stream.find("Content-Length"), std::string::npos);
  server.Stop();
}

// Handlers see the peer's address (a worker's POST /drain answers this host only).
TEST(HttpServerTest, RemoteAddressAndLoopback) {
  HttpServer server(nullptr);
  server.Handle("/peer", [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", r.remote_address + (IsLoopbackAddress(r.remote_address)
                                                                   ? " loopback"
                                                                   : " remote")};
  });
  ASSERT_TRUE(server.Start({.listen_address = "127.0.0.1", .port = 0}).ok());
  EXPECT_NE(Fetch(server.port(), "GET", "/peer").find("127.0.0.1 loopback"), std::string::npos);
  server.Stop();
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackAddress("127.3.2.1"));
  EXPECT_TRUE(IsLoopbackAddress("::1"));
  EXPECT_TRUE(IsLoopbackAddress("::ffff:127.0.0.1"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.7"));
  EXPECT_FALSE(IsLoopbackAddress("::ffff:10.0.0.7"));
  EXPECT_FALSE(IsLoopbackAddress("1270.0.0.1"));
  EXPECT_FALSE(IsLoopbackAddress(""));
}

}  // namespace
}  // namespace turbovid::common
