// TlsReloader and HttpServer over TLS (TlsTerminator) with certificates made by the `openssl`
// command in a temporary directory: loading and refusing sets, reloading, HTTPS requests with and
// without client certificates, plaintext and silent connections on the TLS port.
#include "common/tls.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/http_server.h"
#include "gtest/gtest.h"

namespace turbovid::common {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "tv-tls-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ASSERT_TRUE(Make("a", "/CN=first"));
    ASSERT_TRUE(Make("b", "/CN=second"));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A self-signed certificate for 127.0.0.1: <dir>/<name>.pem and <name>.key.
  bool Make(const std::string& name, const std::string& subject) {
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj '" + subject + "' -addext subjectAltName=IP:127.0.0.1 -keyout '" + Path(name) +
        ".key' -out '" + Path(name) + ".pem' >/dev/null 2>&1";
    return std::system(command.c_str()) == 0;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void Copy(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(Path(from), Path(to),
                               std::filesystem::copy_options::overwrite_existing);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(Path(name), std::ios::trunc) << text;
  }

  std::string dir_;
};

TEST_F(TlsTest, LoadsAGoodSetAndNamesTheFieldOfABadOne) {
  auto good = LoadTlsMaterial({Path("a.pem"), Path("a.key"), ""});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_NE((*good)->subject.find("CN=first"), std::string::npos);
  EXPECT_NE((*good)->server_ctx, nullptr);
  EXPECT_EQ((*good)->mutual_ctx, nullptr);
  auto mutual = LoadTlsMaterial({Path("a.pem"), Path("a.key"), Path("b.pem")});
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  EXPECT_NE((*mutual)->mutual_ctx, nullptr);

  auto mismatch = LoadTlsMaterial({Path("a.pem"), Path("b.key"), ""});
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("tls.key_file"), std::string::npos);
  EXPECT_NE(mismatch.status().message().find("does not match"), std::string::npos);

  Write("junk.pem", "not a certificate\n");
  auto junk = LoadTlsMaterial({Path("junk.pem"), Path("a.key"), ""});
  EXPECT_NE(junk.status().message().find("tls.cert_file"), std::string::npos);
  Write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  auto bad = LoadTlsMaterial({Path("bad.pem"), Path("a.key"), ""});
  EXPECT_NE(bad.status().message().find("no PEM certificate"), std::string::npos);
  auto bad_ca = LoadTlsMaterial({Path("a.pem"), Path("a.key"), Path("bad.pem")});
  EXPECT_NE(bad_ca.status().message().find("tls.client_ca_file"), std::string::npos);
  auto missing = LoadTlsMaterial({Path("a.pem"), Path("none.key"), ""});
  EXPECT_NE(missing.status().message().find("tls.key_file: cannot read"), std::string::npos);
  EXPECT_FALSE(LoadTlsMaterial({Path("a.pem"), "", ""}).ok());
}

TEST_F(TlsTest, ReloaderKeepsTheLastGoodSet) {
  Copy("a.pem", "live.pem");
  Copy("a.key", "live.key");
  auto reloader = TlsReloader::Create({Path("live.pem"), Path("live.key"), ""}, 0);
  ASSERT_TRUE(reloader.ok()) << reloader.status();
  TlsReloader& r = **reloader;
  int notified = 0;
  r.OnReload([&notified](const TlsMaterial&) { ++notified; });
  EXPECT_FALSE(r.Check());  // nothing changed

  Copy("b.pem", "live.pem");  // the certificate first: the old key does not match it
  EXPECT_FALSE(r.Check());
  EXPECT_EQ(r.failures(), 1u);
  EXPECT_NE(r.current()->subject.find("CN=first"), std::string::npos);
  Copy("b.key", "live.key");
  EXPECT_TRUE(r.Check());
  EXPECT_NE(r.current()->subject.find("CN=second"), std::string::npos);
  EXPECT_EQ(r.reloads(), 1u);
  EXPECT_EQ(notified, 1);

  Write("live.pem", "garbage\n");
  EXPECT_FALSE(r.Check());
  EXPECT_FALSE(r.Check(/*force=*/true));
  EXPECT_EQ(r.failures(), 3u);
  EXPECT_NE(r.current()->subject.find("CN=second"), std::string::npos);
  EXPECT_EQ(notified, 1);
}

// One HTTPS GET with OpenSSL; "" when the handshake or the connection fails. `peer_subject`
// gets the server certificate's subject.
std::string HttpsGet(int port, const std::string& ca_file, const std::string& path,
                     const std::string& cert = "", const std::string& key = "",
                     std::string* peer_subject = nullptr, const char* host = "127.0.0.1") {
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()),
                                                   SSL_CTX_free);
  SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!cert.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM);
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host, &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    SSL* ssl = SSL_new(ctx.get());
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      if (peer_subject != nullptr) {
        X509* peer = SSL_get1_peer_certificate(ssl);
        char name[256] = {};
        if (peer != nullptr) X509_NAME_oneline(X509_get_subject_name(peer), name, sizeof(name));
        *peer_subject = name;
        X509_free(peer);
      }
      const std::string request =
          "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, request.data(), static_cast<int>(request.size()));
      char buf[4096];
      int got = 0;
      while ((got = SSL_read(ssl, buf, sizeof(buf))) > 0) response.append(buf, got);
    }
    SSL_free(ssl);
  }
  ERR_clear_error();
  close(fd);
  return response;
}

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

TEST_F(TlsTest, HttpsWithReloadClientCertificatesAndHandshakeTimeout) {
  Copy("a.pem", "live.pem");
  Copy("a.key", "live.key");
  auto reloader = TlsReloader::Create({Path("live.pem"), Path("live.key"), Path("b.pem")}, 0);
  ASSERT_TRUE(reloader.ok()) << reloader.status();
  HttpServer server(nullptr);
  server.Handle("/who", [](const HttpRequest& request) {
    return HttpResponse{200, "text/plain", "client=" + request.remote_address};
  });
  ASSERT_TRUE(server
                  .Start({.listen_address = "127.0.0.1",
                          .port = 0,
                          .num_threads = 4,
                          .request_timeout_ms = 500,
                          .tls = reloader->get()})
                  .ok());
  std::string subject;
  std::string response = HttpsGet(server.port(), Path("a.pem"), "/who", "", "", &subject);
  EXPECT_NE(response.find("HTTP/1.1 200"), std::string::npos) << response;
  EXPECT_NE(response.find("client=127.0.0.1"), std::string::npos) << response;
  EXPECT_EQ(subject, "/CN=first");
  EXPECT_NE(HttpsGet(server.port(), Path("a.pem"), "/healthz").find("ok"), std::string::npos);
  EXPECT_EQ(HttpsGet(server.port(), Path("b.pem"), "/healthz"), "");  // untrusted server

  // Plaintext HTTP on the TLS port: no HTTP answer.
  {
    const int fd = Connect(server.port());
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    char buf[256];
    const ssize_t got = read(fd, buf, sizeof(buf));
    EXPECT_TRUE(got <= 0 || std::string(buf, got).rfind("HTTP/", 0) != 0);
    close(fd);
  }
  // A silent connection is cut after the handshake timeout and delays no one meanwhile.
  {
    const int fd = Connect(server.port());
    const auto start = std::chrono::steady_clock::now();
    EXPECT_NE(HttpsGet(server.port(), Path("a.pem"), "/healthz").find("ok"), std::string::npos);
    char buf[16];
    EXPECT_LE(read(fd, buf, sizeof(buf)), 0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_GT(seconds, 0.3);
    EXPECT_LT(seconds, 5.0);
    close(fd);
  }

  // A new certificate: new handshakes get it.
  Copy("b.pem", "live.pem");
  Copy("b.key", "live.key");
  ASSERT_TRUE((*reloader)->Check());
  EXPECT_NE(HttpsGet(server.port(), Path("b.pem"), "/healthz", "", "", &subject).find("ok"),
            std::string::npos);
  EXPECT_EQ(subject, "/CN=second");
  server.Stop();

  // Mutual TLS: the client CA is b.pem; b's certificate is accepted, none refused.
  HttpServer mutual(nullptr);
  ASSERT_TRUE(mutual
                  .Start({.listen_address = "127.0.0.1",
                          .port = 0,
                          .tls = reloader->get(),
                          .require_client_certificate = true})
                  .ok());
  EXPECT_EQ(HttpsGet(mutual.port(), Path("b.pem"), "/healthz"), "");
  EXPECT_NE(HttpsGet(mutual.port(), Path("b.pem"), "/healthz", Path("b.pem"), Path("b.key"))
                .find("ok"),
            std::string::npos);
}

// This host's first IPv4 address that is not loopback; "" when it has none.
std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text,
              sizeof(text));
    if (!IsLoopbackAddress(text)) found = text;
  }
  freeifaddrs(list);
  return found;
}

TEST_F(TlsTest, HandlersSeeTheClientAddressNotTheRelay) {
  const std::string address = NonLoopbackAddress();
  if (address.empty()) GTEST_SKIP() << "no non-loopback IPv4 address on this host";
  auto reloader = TlsReloader::Create({Path("a.pem"), Path("a.key"), ""}, 0);
  ASSERT_TRUE(reloader.ok()) << reloader.status();
  HttpServer server(nullptr);
  server.Handle("/who", [](const HttpRequest& request) {
    return HttpResponse{200, "text/plain", "client=" + request.remote_address + ";"};
  });
  ASSERT_TRUE(
      server.Start({.listen_address = "0.0.0.0", .port = 0, .tls = reloader->get()}).ok());
  const std::string response =
      HttpsGet(server.port(), Path("a.pem"), "/who", "", "", nullptr, address.c_str());
  EXPECT_NE(response.find("client=" + address + ";"), std::string::npos) << response;
}

}  // namespace
}  // namespace turbovid::common
