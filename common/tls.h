// Server TLS material (certificate chain, private key, optional client CA) read from PEM files,
// checked with OpenSSL, and reloaded without a restart: a TlsReloader polls the files (and
// re-reads on demand, e.g. on SIGHUP); a changed set that loads and whose key matches the
// certificate replaces the current one, anything else is logged as an ERROR and the previous
// set stays in use. Listeners take the current OpenSSL context per connection (HTTP) or are
// told of each new set (gRPC, server/grpc_server.cc).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace turbovid::common {

struct TlsFiles {
  std::string cert_file;       // PEM chain, leaf first
  std::string key_file;        // PEM private key of the leaf
  std::string client_ca_file;  // "" = no client certificates; set = mutual TLS where asked
};

// One loaded, checked set.
struct TlsMaterial {
  std::string cert_chain_pem;
  std::string private_key_pem;
  std::string client_ca_pem;  // "" without a client CA
  std::string subject;        // the leaf's subject and serial, for log lines
  int64_t not_after = 0;      // the leaf's expiry, unix seconds
  // Server contexts (TLS 1.2+): without client certificates, and requiring one signed by the
  // client CA (null without a client CA).
  std::shared_ptr<SSL_CTX> server_ctx;
  std::shared_ptr<SSL_CTX> mutual_ctx;
};

// Reads and checks `files`: every file PEM, the key matching the leaf certificate, the CA
// parseable. InvalidArgument naming the field (tls.cert_file, ...) otherwise.
absl::StatusOr<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(const TlsFiles& files);

class TlsReloader {
 public:
  // Loads `files` (an error fails here: a bad configuration stops the start) and polls them
  // every `poll_seconds` (0 = no polling; Check() only).
  static absl::StatusOr<std::unique_ptr<TlsReloader>> Create(const TlsFiles& files,
                                                             double poll_seconds = 1.0);
  ~TlsReloader();
  TlsReloader(const TlsReloader&) = delete;
  TlsReloader& operator=(const TlsReloader&) = delete;

  std::shared_ptr<const TlsMaterial> current() const;
  const TlsFiles& files() const { return files_; }
  // Re-reads the files when their identity (device, inode, size, modification time) changed
  // since the last attempt, or always with `force`. True when a new set took effect.
  bool Check(bool force = false);
  // Called (on the polling or the calling thread) with every set that takes effect after this.
  void OnReload(std::function<void(const TlsMaterial&)> listener);
  uint64_t reloads() const;  // sets that took effect after the first
  uint64_t failures() const;  // changed sets refused

 private:
  explicit TlsReloader(TlsFiles files) : files_(std::move(files)) {}
  std::string FileIdentity() const;
  void Poll(double poll_seconds);

  const TlsFiles files_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::shared_ptr<const TlsMaterial> current_;
  std::string identity_;  // FileIdentity() of the last attempt
  std::vector<std::function<void(const TlsMaterial&)>> listeners_;
  uint64_t reloads_ = 0;
  uint64_t failures_ = 0;
  std::mutex check_mu_;  // one Check at a time
  std::thread poller_;
};

}  // namespace turbovid::common
