// OpenSSL 3 loading of the TLS material and the polling thread of TlsReloader.
#include "common/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace turbovid::common {
namespace {

std::string OpenSslError() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

absl::StatusOr<std::string> ReadPemFile(const char* field, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read '", path, "'"));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": '", path, "' is not a PEM file"));
  }
  return text.str();
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
BioPtr MemBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Certificates of a PEM text, in order; none = error.
absl::StatusOr<std::vector<X509*>> ReadCerts(const char* field, const std::string& path,
                                             const std::string& pem) {
  std::vector<X509*> certs;
  BioPtr bio = MemBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.push_back(cert);
  }
  ERR_clear_error();  // the end of the text reads as an error
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", path, "' holds no PEM certificate"));
  }
  return certs;
}

void FreeCerts(std::vector<X509*>& certs) {
  for (X509* c : certs) X509_free(c);
  certs.clear();
}

std::shared_ptr<SSL_CTX> NewServerCtx() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return std::shared_ptr<SSL_CTX>(ctx, SSL_CTX_free);
}

// Installs the chain and key on `ctx`.
absl::Status UseIdentity(SSL_CTX* ctx, const TlsFiles& files, const std::vector<X509*>& chain,
                         EVP_PKEY* key) {
  if (SSL_CTX_use_certificate(ctx, chain[0]) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.cert_file: '", files.cert_file, "': ", OpenSslError()));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, chain[i]) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls.cert_file: '", files.cert_file, "': ", OpenSslError()));
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.key_file: '", files.key_file, "' does not match the certificate of '",
        files.cert_file, "': ", OpenSslError()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(const TlsFiles& files) {
  if (files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError("tls.cert_file and tls.key_file: set both or neither");
  }
  auto material = std::make_shared<TlsMaterial>();
  TV_ASSIGN_OR_RETURN(material->cert_chain_pem, ReadPemFile("tls.cert_file", files.cert_file));
  TV_ASSIGN_OR_RETURN(material->private_key_pem, ReadPemFile("tls.key_file", files.key_file));
  if (!files.client_ca_file.empty()) {
    TV_ASSIGN_OR_RETURN(material->client_ca_pem,
                        ReadPemFile("tls.client_ca_file", files.client_ca_file));
  }
  ERR_clear_error();
  TV_ASSIGN_OR_RETURN(std::vector<X509*> chain,
                      ReadCerts("tls.cert_file", files.cert_file, material->cert_chain_pem));
  struct ChainFree {
    std::vector<X509*>* c;
    ~ChainFree() { FreeCerts(*c); }
  } chain_free{&chain};
  BioPtr key_bio = MemBio(material->private_key_pem);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.key_file: '", files.key_file, "' holds no readable private key: ", OpenSslError()));
  }
  {
    char name[256] = {};
    X509_NAME_oneline(X509_get_subject_name(chain[0]), name, sizeof(name));
    const ASN1_INTEGER* serial = X509_get0_serialNumber(chain[0]);
    BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
    char* hex = bn ? BN_bn2hex(bn) : nullptr;
    material->subject = absl::StrCat(name, " serial ", hex ? hex : "?");
    tm expiry{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(chain[0]), &expiry) == 1) {
      material->not_after = timegm(&expiry);
    }
    OPENSSL_free(hex);
    BN_free(bn);
  }
  material->server_ctx = NewServerCtx();
  if (material->server_ctx == nullptr) return absl::InternalError("tls: " + OpenSslError());
  TV_RETURN_IF_ERROR(UseIdentity(material->server_ctx.get(), files, chain, key.get()));
  if (!material->client_ca_pem.empty()) {
    TV_ASSIGN_OR_RETURN(
        std::vector<X509*> cas,
        ReadCerts("tls.client_ca_file", files.client_ca_file, material->client_ca_pem));
    ChainFree cas_free{&cas};
    material->mutual_ctx = NewServerCtx();
    if (material->mutual_ctx == nullptr) return absl::InternalError("tls: " + OpenSslError());
    SSL_CTX* ctx = material->mutual_ctx.get();
    TV_RETURN_IF_ERROR(UseIdentity(ctx, files, chain, key.get()));
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (X509* ca : cas) {
      if (X509_STORE_add_cert(store, ca) != 1 || SSL_CTX_add_client_CA(ctx, ca) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tls.client_ca_file: '", files.client_ca_file, "': ", OpenSslError()));
      }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return std::shared_ptr<const TlsMaterial>(std::move(material));
}

absl::StatusOr<std::unique_ptr<TlsReloader>> TlsReloader::Create(const TlsFiles& files,
                                                                 double poll_seconds) {
  std::unique_ptr<TlsReloader> reloader(new TlsReloader(files));
  reloader->identity_ = reloader->FileIdentity();
  TV_ASSIGN_OR_RETURN(reloader->current_, LoadTlsMaterial(files));
  TV_LOG(INFO) << "tls: certificate " << reloader->current_->subject << " from "
               << files.cert_file
               << (files.client_ca_file.empty() ? "" : ", client CA " + files.client_ca_file);
  if (poll_seconds > 0) {
    reloader->poller_ = std::thread([r = reloader.get(), poll_seconds] { r->Poll(poll_seconds); });
  }
  return reloader;
}

TlsReloader::~TlsReloader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

std::shared_ptr<const TlsMaterial> TlsReloader::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void TlsReloader::OnReload(std::function<void(const TlsMaterial&)> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.push_back(std::move(listener));
}

uint64_t TlsReloader::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

uint64_t TlsReloader::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

// stat() follows symbolic links, so a swapped link (a Kubernetes Secret's ..data) changes the
// inode even when sizes and times are equal.
std::string TlsReloader::FileIdentity() const {
  std::string identity;
  for (const std::string* path : {&files_.cert_file, &files_.key_file, &files_.client_ca_file}) {
    struct stat st {};
    if (path->empty()) continue;
    if (stat(path->c_str(), &st) != 0) {
      absl::StrAppend(&identity, "missing;");
      continue;
    }
    absl::StrAppend(&identity, st.st_dev, ":", st.st_ino, ":", st.st_size, ":",
                    st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ";");
  }
  return identity;
}

bool TlsReloader::Check(bool force) {
  std::lock_guard<std::mutex> check_lock(check_mu_);
  const std::string identity = FileIdentity();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!force && identity == identity_) return false;
    identity_ = identity;
  }
  absl::StatusOr<std::shared_ptr<const TlsMaterial>> loaded = LoadTlsMaterial(files_);
  std::vector<std::function<void(const TlsMaterial&)>> listeners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!loaded.ok()) {
      ++failures_;
      TV_LOG(ERROR) << "tls: reload refused, still serving certificate " << current_->subject
                    << ": " << loaded.status().message();
      return false;
    }
    if ((*loaded)->cert_chain_pem == current_->cert_chain_pem &&
        (*loaded)->private_key_pem == current_->private_key_pem &&
        (*loaded)->client_ca_pem == current_->client_ca_pem) {
      return false;  // touched, not changed
    }
    current_ = *loaded;
    ++reloads_;
    listeners = listeners_;
  }
  TV_LOG(INFO) << "tls: reloaded, new connections get certificate " << (*loaded)->subject;
  for (const auto& listener : listeners) listener(**loaded);
  return true;
}

void TlsReloader::Poll(double poll_seconds) {
  const auto interval = std::chrono::milliseconds(static_cast<int64_t>(poll_seconds * 1000));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    Check(false);
    lock.lock();
  }
}

}  // namespace turbovid::common
