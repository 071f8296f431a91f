// API keys and worker tokens: YAML files of SHA-256 digests, constant-time comparison, reload on
// change. OpenSSL provides the digest, the comparison and the random bytes.
#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace turbovid::server {
namespace {

using common::ConfigNode;

constexpr size_t kDigestHexChars = 64;
constexpr size_t kMaxSecretBytes = 512;
constexpr auto kReloadCheckInterval = std::chrono::seconds(1);

absl::Status CheckDigest(const ConfigNode& node, const std::string& hex) {
  if (hex.size() != kDigestHexChars) {
    return node.Error(absl::StrCat("sha256: ", hex.size(), " characters, expected 64 hex digits"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return node.Error("sha256: not a hex digest");
    }
  }
  return absl::OkStatus();
}

// Digest of `secret` against a stored digest, in time independent of where they differ.
bool DigestMatches(const std::string& presented_hex, const std::string& stored_hex) {
  if (presented_hex.size() != stored_hex.size()) return false;
  return CRYPTO_memcmp(presented_hex.data(), stored_hex.data(), presented_hex.size()) == 0;
}

absl::StatusOr<std::filesystem::file_time_type> MTime(const std::string& path) {
  std::error_code error;
  auto time = std::filesystem::last_write_time(path, error);
  if (error) return absl::NotFoundError(absl::StrCat(path, ": ", error.message()));
  return time;
}

std::string YamlQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

absl::Status WriteApiKeys(const std::string& path, const std::vector<ApiKey>& keys) {
  std::ostringstream text;
  text << "# turbovid API keys: SHA-256 digests only (turbovid-scheduler keys add/revoke).\n"
       << (keys.empty() ? "keys: []\n" : "keys:\n");
  for (const ApiKey& key : keys) {
    text << "  - name: " << YamlQuote(key.name) << "\n    tenant: " << YamlQuote(key.tenant)
         << "\n    sha256: " << key.sha256_hex << "\n    admin: " << (key.admin ? "true" : "false")
         << "\n";
  }
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text.str();
    if (!out.good()) return absl::InternalError(absl::StrCat(temp, ": cannot write"));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) return absl::InternalError(absl::StrCat(path, ": ", error.message()));
  return absl::OkStatus();
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

absl::StatusOr<std::string> NewSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("no random bytes from the OS");
  }
  return absl::StrCat("tv_", absl::WebSafeBase64Escape(absl::string_view(
                                 reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

absl::StatusOr<std::vector<ApiKey>> LoadApiKeys(const std::string& path) {
  TV_ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::LoadFile(path));
  TV_RETURN_IF_ERROR(root.CheckKeys({"keys"}));
  TV_ASSIGN_OR_RETURN(ConfigNode list, root.Child("keys"));
  std::vector<ApiKey> keys;
  if (list.IsNull()) return keys;
  TV_ASSIGN_OR_RETURN(std::vector<ConfigNode> elements, list.Elements());
  std::set<std::string> names;
  for (const ConfigNode& node : elements) {
    ApiKey key;
    TV_RETURN_IF_ERROR(node.CheckKeys({"name", "tenant", "sha256", "admin"}));
    TV_RETURN_IF_ERROR(node.Require("name", &key.name));
    TV_RETURN_IF_ERROR(node.Require("tenant", &key.tenant));
    TV_RETURN_IF_ERROR(node.Require("sha256", &key.sha256_hex));
    TV_RETURN_IF_ERROR(node.Read("admin", &key.admin));
    key.sha256_hex = absl::AsciiStrToLower(key.sha256_hex);
    TV_RETURN_IF_ERROR(CheckDigest(node, key.sha256_hex));
    if (!ValidName(key.tenant)) {
      return node.Error("tenant: 1-128 characters of [A-Za-z0-9._-]");
    }
    if (!names.insert(key.name).second) {
      return node.Error(absl::StrCat("name: '", key.name, "' appears twice"));
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

absl::StatusOr<std::vector<WorkerToken>> LoadWorkerTokens(const std::string& path) {
  TV_ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::LoadFile(path));
  TV_RETURN_IF_ERROR(root.CheckKeys({"tokens"}));
  TV_ASSIGN_OR_RETURN(ConfigNode list, root.Child("tokens"));
  std::vector<WorkerToken> tokens;
  if (list.IsNull()) return tokens;
  TV_ASSIGN_OR_RETURN(std::vector<ConfigNode> elements, list.Elements());
  for (const ConfigNode& node : elements) {
    WorkerToken token;
    TV_RETURN_IF_ERROR(node.CheckKeys({"name", "sha256", "worker_ids"}));
    TV_RETURN_IF_ERROR(node.Require("name", &token.name));
    TV_RETURN_IF_ERROR(node.Require("sha256", &token.sha256_hex));
    TV_RETURN_IF_ERROR(node.Read("worker_ids", &token.worker_ids));
    token.sha256_hex = absl::AsciiStrToLower(token.sha256_hex);
    TV_RETURN_IF_ERROR(CheckDigest(node, token.sha256_hex));
    tokens.push_back(std::move(token));
  }
  return tokens;
}

absl::StatusOr<std::string> AddApiKey(const std::string& path, const std::string& name,
                                      const std::string& tenant, bool admin) {
  if (!ValidName(name)) return absl::InvalidArgumentError("--name: 1-128 characters of [A-Za-z0-9._-]");
  if (!ValidName(tenant)) {
    return absl::InvalidArgumentError("--tenant: 1-128 characters of [A-Za-z0-9._-]");
  }
  std::vector<ApiKey> keys;
  if (std::filesystem::exists(path)) {
    TV_ASSIGN_OR_RETURN(keys, LoadApiKeys(path));
  }
  for (const ApiKey& key : keys) {
    if (key.name == name) {
      return absl::AlreadyExistsError(absl::StrCat(path, ": a key named '", name, "' exists"));
    }
  }
  TV_ASSIGN_OR_RETURN(std::string secret, NewSecret());
  keys.push_back({.name = name, .tenant = tenant, .sha256_hex = Sha256Hex(secret), .admin = admin});
  TV_RETURN_IF_ERROR(WriteApiKeys(path, keys));
  return secret;
}

absl::Status RevokeApiKey(const std::string& path, const std::string& name) {
  TV_ASSIGN_OR_RETURN(std::vector<ApiKey> keys, LoadApiKeys(path));
  const size_t before = keys.size();
  std::erase_if(keys, [&](const ApiKey& key) { return key.name == name; });
  if (keys.size() == before) {
    return absl::NotFoundError(absl::StrCat(path, ": no key named '", name, "'"));
  }
  return WriteApiKeys(path, keys);
}

absl::StatusOr<std::string_view> BearerSecret(std::string_view authorization) {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "no credentials: send 'authorization: Bearer <API key>' (gRPC metadata or HTTP header)");
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kBearer.size()),
                              absl::string_view(kBearer.data(), kBearer.size()))) {
    return absl::UnauthenticatedError("authorization: expected 'Bearer <API key>'");
  }
  std::string_view secret = authorization.substr(kBearer.size());
  if (secret.size() > kMaxSecretBytes) {
    return absl::UnauthenticatedError("authorization: key too long");
  }
  return secret;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const Options& options) {
  if (!options.enabled) return Disabled();
  if (options.api_keys_file.empty()) {
    return absl::InvalidArgumentError(
        "auth.api_keys_file: required while auth.mode is 'required' (set auth.mode: off to run "
        "without authentication)");
  }
  if (options.worker_tokens_file.empty()) {
    return absl::InvalidArgumentError(
        "auth.worker_tokens_file: required while auth.mode is 'required' (set auth.mode: off to "
        "run without authentication)");
  }
  std::unique_ptr<Authenticator> auth(new Authenticator(options));
  std::lock_guard<std::mutex> lock(auth->mu_);
  TV_RETURN_IF_ERROR(auth->ReloadIfChangedLocked());
  return auth;
}

std::unique_ptr<Authenticator> Authenticator::Disabled() {
  Options off;
  off.enabled = false;
  return std::unique_ptr<Authenticator>(new Authenticator(off));
}

absl::Status Authenticator::ReloadIfChangedLocked() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return absl::OkStatus();
  next_check_ = now + kReloadCheckInterval;
  TV_ASSIGN_OR_RETURN(auto keys_mtime, MTime(options_.api_keys_file));
  if (keys_mtime != keys_mtime_) {
    TV_ASSIGN_OR_RETURN(keys_, LoadApiKeys(options_.api_keys_file));
    if (keys_mtime_ != std::filesystem::file_time_type{}) {
      TV_LOG(INFO) << "auth: reloaded " << options_.api_keys_file << " (" << keys_.size()
                   << " keys)";
    }
    keys_mtime_ = keys_mtime;
  }
  TV_ASSIGN_OR_RETURN(auto tokens_mtime, MTime(options_.worker_tokens_file));
  if (tokens_mtime != tokens_mtime_) {
    TV_ASSIGN_OR_RETURN(tokens_, LoadWorkerTokens(options_.worker_tokens_file));
    if (tokens_mtime_ != std::filesystem::file_time_type{}) {
      TV_LOG(INFO) << "auth: reloaded " << options_.worker_tokens_file << " (" << tokens_.size()
                   << " tokens)";
    }
    tokens_mtime_ = tokens_mtime;
  }
  return absl::OkStatus();
}

absl::StatusOr<Principal> Authenticator::AuthenticateClient(std::string_view authorization) {
  if (!options_.enabled) return Principal{.key_name = "", .tenant = "", .admin = true};
  TV_ASSIGN_OR_RETURN(std::string_view secret, BearerSecret(authorization));
  const std::string digest = Sha256Hex(secret);
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status status = ReloadIfChangedLocked(); !status.ok()) {
    // A broken edit keeps the keys loaded last; say so once a second at most.
    TV_LOG(WARNING) << "auth: keeping the previous keys: " << status;
  }
  const ApiKey* found = nullptr;
  for (const ApiKey& key : keys_) {  // every key is compared: no early exit
    if (DigestMatches(digest, key.sha256_hex)) found = &key;
  }
  if (found == nullptr) return absl::UnauthenticatedError("authorization: unknown API key");
  return Principal{.key_name = found->name, .tenant = found->tenant, .admin = found->admin};
}

absl::StatusOr<WorkerCredential> Authenticator::AuthenticateWorker(std::string_view authorization) {
  if (!options_.enabled) return WorkerCredential{};
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "no worker credentials: send 'authorization: Bearer <worker token>' (worker "
        "scheduler_token_file or TURBOVID_WORKER_TOKEN)");
  }
  TV_ASSIGN_OR_RETURN(std::string_view secret, BearerSecret(authorization));
  const std::string digest = Sha256Hex(secret);
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status status = ReloadIfChangedLocked(); !status.ok()) {
    TV_LOG(WARNING) << "auth: keeping the previous worker tokens: " << status;
  }
  const WorkerToken* found = nullptr;
  for (const WorkerToken& token : tokens_) {
    if (DigestMatches(digest, token.sha256_hex)) found = &token;
  }
  if (found == nullptr) return absl::UnauthenticatedError("authorization: unknown worker token");
  return WorkerCredential{.name = found->name, .worker_ids = found->worker_ids};
}

}  // namespace turbovid::server
