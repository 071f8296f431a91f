// Credentials of clients (API keys -> tenants) and workers (tokens), checked by the gRPC front end
// and the HTTP job gateway. Only SHA-256 digests of keys and tokens are stored (docs/security.md);
// a presented secret is hashed and compared in constant time. Files are re-read when they change
// (checked at most once a second), so a key revoked with `turbovid-scheduler keys revoke` stops
// working without a restart. No gRPC header here.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace turbovid::server {

// Who called: the tenant owns the jobs it submits; an admin sees every tenant's jobs.
struct Principal {
  std::string key_name;  // the key's name in the keys file ("" when auth is off)
  std::string tenant;    // "" when auth is off (jobs of no tenant)
  bool admin = false;
};

// One line of the API keys file.
struct ApiKey {
  std::string name;
  std::string tenant;
  std::string sha256_hex;  // SHA-256 of the key, lowercase hex
  bool admin = false;
};

// One worker credential: a shared pool token or a per-worker token.
struct WorkerToken {
  std::string name;
  std::string sha256_hex;
  std::vector<std::string> worker_ids;  // ids it may register; empty = any
};

// What a worker authenticated as (server/backend.h hands it to the control plane).
struct WorkerCredential {
  std::string name;                     // token name; "" when worker auth is off
  std::vector<std::string> worker_ids;  // allowed ids; empty = any
};

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// A new random secret: "tv_" + 43 base64url characters (256 bits from the OS).
absl::StatusOr<std::string> NewSecret();

// YAML files (docs/security.md):
//   keys:   [{name: alice-ci, tenant: alice, sha256: <64 hex>, admin: false}, ...]
//   tokens: [{name: pool-a, sha256: <64 hex>, worker_ids: [w0, w1]}, ...]
absl::StatusOr<std::vector<ApiKey>> LoadApiKeys(const std::string& path);
absl::StatusOr<std::vector<WorkerToken>> LoadWorkerTokens(const std::string& path);

// `keys add` / `keys revoke` of the scheduler binary: edit the keys file in place (written to a
// temporary file and renamed). Add returns the new key, which is never stored.
absl::StatusOr<std::string> AddApiKey(const std::string& path, const std::string& name,
                                      const std::string& tenant, bool admin);
absl::Status RevokeApiKey(const std::string& path, const std::string& name);

// "Bearer <secret>" -> <secret>; Unauthenticated with a message naming the header otherwise.
absl::StatusOr<std::string_view> BearerSecret(std::string_view authorization);

class Authenticator {
 public:
  struct Options {
    bool enabled = true;              // false: everyone is the empty tenant (auth.mode: off)
    std::string api_keys_file;        // required when enabled
    std::string worker_tokens_file;   // required when enabled
  };
  // Loads both files; errors name the file and field.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const Options& options);
  // Auth off: every client is the empty tenant with admin rights, every worker is accepted.
  static std::unique_ptr<Authenticator> Disabled();

  bool enabled() const { return options_.enabled; }
  // `authorization`: the request's authorization header/metadata value ("" when absent).
  absl::StatusOr<Principal> AuthenticateClient(std::string_view authorization);
  absl::StatusOr<WorkerCredential> AuthenticateWorker(std::string_view authorization);

 private:
  explicit Authenticator(Options options) : options_(std::move(options)) {}
  absl::Status ReloadIfChangedLocked();

  const Options options_;
  std::mutex mu_;
  std::vector<ApiKey> keys_;          // guarded by mu_
  std::vector<WorkerToken> tokens_;   // guarded by mu_
  std::filesystem::file_time_type keys_mtime_{};
  std::filesystem::file_time_type tokens_mtime_{};
  std::chrono::steady_clock::time_point next_check_{};
};

}  // namespace turbovid::server
