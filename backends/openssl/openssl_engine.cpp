// The OpenSSL 3 backend: one SSL_CTX per Config, one SSL per connection.
//
// The engine only translates OpenSSL's answers into detail::Result; every
// shutdown rule lives in the core. What matters here are the places where
// OpenSSL 3.0's own answers mislead (docs/backend-notes.md T1-T6): SSL_get_error
// after a 0 from SSL_shutdown, a received fatal alert that returns 0, the
// unexpected-EOF reason, and SSL_free's session invalidation.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "certificate_message.hpp"
#include "client_hello.hpp"
#include "engine.hpp"
#include "private_key.hpp"
#include "session_cache.hpp"
#include "verify.hpp"
#include "wire.hpp"

namespace unitls::detail {

namespace {

// ---- native error codes -----------------------------------------------------
//
// Values in the "unitls.openssl" category:
//   > 0      an OpenSSL error-queue code (ERR_PACK'd library and reason);
//   -1..-99  an SSL_ERROR_* value that came with no queue entry;
//   <= -1000 an X509_V_ERR_* verification result, as -(1000 + result).
// Error-queue entries from the system library become std::system_category.
constexpr int verify_base = 1000;

// A TLS 1.3 record OpenSSL must refuse (RFC 8446 5: after the handshake
// only application_data records are allowed): a handshake-typed one.
constexpr char poison_record[] = {0x16, 0x03, 0x03, 0x00, 0x01, 0x00};

class OpenSslCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unitls.openssl"; }
  std::string message(int value) const override {
    if (value > 0) {
      char buf[256];
      ERR_error_string_n(static_cast<unsigned long>(value), buf, sizeof buf);
      return buf;
    }
    if (value <= -verify_base) {
      return std::string("certificate verify failed: ") +
             X509_verify_cert_error_string(-value - verify_base);
    }
    switch (-value) {
      case SSL_ERROR_SSL: return "SSL_ERROR_SSL: TLS failure without detail";
      case SSL_ERROR_WANT_READ: return "SSL_ERROR_WANT_READ";
      case SSL_ERROR_WANT_WRITE: return "SSL_ERROR_WANT_WRITE";
      case SSL_ERROR_SYSCALL: return "SSL_ERROR_SYSCALL: the transport failed without an OS error";
      case SSL_ERROR_ZERO_RETURN: return "SSL_ERROR_ZERO_RETURN: the peer sent close_notify";
      default: return "SSL_get_error() = " + std::to_string(-value);
    }
  }
};

const std::error_category& openssl_category() noexcept {
  static const OpenSslCategory instance;
  return instance;
}

std::error_code ssl_error_code(int ssl_error) { return {-ssl_error, openssl_category()}; }


std::error_code queue_error_code(unsigned long e) {
  if (ERR_SYSTEM_ERROR(e)) return {ERR_GET_REASON(e), std::system_category()};
  return {static_cast<int>(e), openssl_category()};
}

// What the error queue said about a failed call. Drains the queue, so the
// next call starts clean (OpenSSL reads a stale entry as this call's error).
struct QueueInfo {
  unsigned long primary = 0;    // the last SSL-library entry, else the last entry
  bool from_ssl = false;        // an entry of the SSL library is there
  bool unexpected_eof = false;  // SSL_R_UNEXPECTED_EOF_WHILE_READING (T4)
  bool no_peer_certificate = false;
  bool peer_alert = false;      // a fatal alert the peer sent (reason 1000 + alert)
};

QueueInfo drain_error_queue() {
  QueueInfo q;
  unsigned long last = 0, last_ssl = 0;
  while (unsigned long e = ERR_get_error()) {
    last = e;
    if (ERR_SYSTEM_ERROR(e) || ERR_GET_LIB(e) != ERR_LIB_SSL) continue;
    last_ssl = e;
    const int reason = ERR_GET_REASON(e);
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) q.unexpected_eof = true;
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) q.no_peer_certificate = true;
    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) q.peer_alert = true;
  }
  q.primary = last_ssl ? last_ssl : last;
  q.from_ssl = last_ssl != 0;
  return q;
}

// The reason text of the oldest queue entry (the root cause: "no start
// line", not the "PEM lib" stacked on it), for configuration messages.
std::string queue_reason() {
  unsigned long e = ERR_peek_error();
  std::string text;
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    if (r) {
      text = r;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      text = buf;
    }
  }
  ERR_clear_error();
  return text;
}

// Never prompt on a terminal for a passphrase: a PEM reader gets the
// credential's password (private_key_password), or none.
int no_password(char*, int, int, void*) { return 0; }
int give_password(char* buf, int size, int, void* password) {
  const auto* text = static_cast<const std::string*>(password);
  if (text->empty() || text->size() > static_cast<std::size_t>(size)) return 0;
  std::memcpy(buf, text->data(), text->size());
  return static_cast<int>(text->size());
}

// A credential as OpenSSL objects: the leaf, its issuers, its key.
struct OwnCredential {
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;
  EVP_PKEY* key = nullptr;
  OwnCredential() = default;
  OwnCredential(OwnCredential&& o) noexcept
      : leaf(std::exchange(o.leaf, nullptr)), chain(std::exchange(o.chain, nullptr)), key(std::exchange(o.key, nullptr)) {}
  OwnCredential(const OwnCredential&) = delete;
  OwnCredential& operator=(const OwnCredential&) = delete;
  OwnCredential& operator=(OwnCredential&&) = delete;
  ~OwnCredential() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

class OpenSslEngine;

// An X509_V_ERR_* result in the core's words (verify.hpp); verify_callback
// sets the name and purpose results from the core's PeerVerdict.
unsigned issues_of(long result) {
  switch (result) {
    case X509_V_OK: return 0;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_INVALID_NON_CA:
      return issue_untrusted;
    case X509_V_ERR_CERT_NOT_YET_VALID: return issue_not_yet_valid;
    case X509_V_ERR_CERT_HAS_EXPIRED: return issue_expired;
    case X509_V_ERR_INVALID_PURPOSE: return issue_wrong_purpose;
    case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE: return issue_wrong_key_usage;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
      return issue_weak_key;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return issue_name_mismatch;
    default: return issue_other;
  }
}

// ---- groups ---------------------------------------------------------------------

// IANA NamedGroup code points and OpenSSL's NIDs for them.
struct GroupNid {
  std::uint16_t code;
  int nid;
};
constexpr GroupNid group_nids[] = {
    {29, NID_X25519},           {30, NID_X448},
    {23, NID_X9_62_prime256v1}, {24, NID_secp384r1},
    {25, NID_secp521r1},        {26, NID_brainpoolP256r1},
    {27, NID_brainpoolP384r1},  {28, NID_brainpoolP512r1},
};
int nid_of_group(std::uint16_t code) {
  for (const auto& g : group_nids)
    if (g.code == code) return g.nid;
  return NID_undef;
}
std::uint16_t group_of_nid(int nid) {
  for (const auto& g : group_nids)
    if (g.nid == nid) return g.code;
  return 0;
}

// ---- the context --------------------------------------------------------------

class OpenSslContext final : public BackendContext,
                             public ContextFacts {
 public:
  OpenSslContext(const Config& config, const Prepared& prepared)
      : ContextFacts(config, prepared), session_cache_(config.role == Role::client && config.session_cache) {}

  ~OpenSslContext() override { SSL_CTX_free(ctx_); }

  OpenSslContext(const OpenSslContext&) = delete;
  OpenSslContext& operator=(const OpenSslContext&) = delete;

  EnginePtr make_engine(Wire& wire, EngineSetup& setup) override;
  std::size_t engine_size() const override;

  // Builds ctx_ from the config; false with *message on a bad value.
  bool init(const Config& config, const Prepared& prepared, std::string& message);

  const std::vector<unsigned char>& alpn_wire() const { return alpn_wire_; }
  Role role() const { return role_; }
  const std::string& server_name() const { return server_name_; }
  bool server_name_is_ip() const { return server_name_is_ip_; }
  const OwnCredential& credential(std::size_t i) const { return credentials_[i]; }
  bool has_choice() const { return credentials_.size() > 1; }
  // Groups in preference order: IANA code points and their NIDs.
  const std::vector<std::uint16_t>& group_codes() const { return group_codes_; }
  const std::vector<int>& group_nids() const { return group_nids_; }

 private:
  friend class OpenSslEngine;
  bool set_suites(const Selection& selection, std::string& message);
  bool set_groups(const Selection& selection, std::string& message);

  std::vector<std::uint16_t> group_codes_;
  std::vector<int> group_nids_;

  SSL_CTX* ctx_ = nullptr;
  // Prepared::credentials as OpenSSL objects ([0] is also in ctx_; a
  // ClientHello whose SNI picks another gets it on its SSL).
  std::vector<OwnCredential> credentials_;
  bool session_cache_;
  std::vector<unsigned char> alpn_wire_;  // RFC 7301 3.1 wire format, preference order
};

// ---- the engine -----------------------------------------------------------------

enum class Op { handshake, read, write, close_notify };

// The DER of a certificate.
std::vector<std::byte> der_of(X509* cert) {
  std::vector<std::byte> der;
  const int len = i2d_X509(cert, nullptr);
  if (len <= 0) return der;
  der.resize(static_cast<std::size_t>(len));
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_X509(cert, &out) != len) der.clear();
  return der;
}

class OpenSslEngine final : public Engine {
 public:
  OpenSslEngine(OpenSslContext& context, Wire& wire, SSL* ssl, SessionSink* sessions, KeyLogSink* keylog)
      : context_(&context), wire_(wire), ssl_(ssl), sessions_(sessions), keylog_(keylog) {}

  ~OpenSslEngine() override { SSL_free(ssl_); }

  OpenSslEngine(const OpenSslEngine&) = delete;
  OpenSslEngine& operator=(const OpenSslEngine&) = delete;

  // Wires the SSL to the transport and applies the per-connection settings.
  bool init(const std::shared_ptr<const StoredSession>& offer);

  Result handshake() override {
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) {
      handshake_done_ = true;
      // Once per connection: nothing the handshake left behind (a
      // verification step that failed and was overruled) outlives it.
      if (ERR_peek_error() != 0) ERR_clear_error();
      return Result::ok();
    }
    return translate(ret, Op::handshake);
  }

  Result read(std::span<std::byte> buf) override {
    std::size_t n = 0;
    // SSL_MODE_AUTO_RETRY (the default) makes SSL_read consume TLS 1.3
    // tickets and KeyUpdates and go on reading, so want_read only means the
    // transport itself is dry.
    const int ret = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
    if (key_update_flood_) return key_update_failure();
    if (ret == 1) return Result::ok(n);
    return translate(ret, Op::read);
  }

  Result write(std::span<const std::byte> buf) override {
    std::size_t n = 0;
    // One record per call, as on the other stacks (docs/contract.md,
    // "Confirmed rules" 5): given more, OpenSSL finishes a record left
    // pending by want_write and then goes on to the next one in the same
    // call. The retry after want_write passes the same length again, so
    // OpenSSL's check that it is not shorter than the pending write holds.
    const std::size_t len = std::min<std::size_t>(buf.size(), SSL3_RT_MAX_PLAIN_LENGTH);
    const int ret = SSL_write_ex(ssl_, buf.data(), len, &n);
    if (ret == 1) return Result::ok(n);
    return translate(ret, Op::write);
  }

  Result send_close_notify() override {
    // The first call sets SENT and queues the alert; after want_write the
    // next call only dispatches it (ssl3_shutdown). The core never calls
    // again after done, so this never reaches OpenSSL's waiting branch,
    // which would fail on application data (T2).
    const int ret = SSL_shutdown(ssl_);
    // T1: 0 is "sent, the peer's not yet received"; SSL_get_error would call
    // it SYSCALL. 1 is "sent, and the peer's was already received".
    if (ret >= 0) return Result::ok();
    return translate(ret, Op::close_notify);
  }

  std::string protocol_version() const override {
    return handshake_done_ ? SSL_get_version(ssl_) : "";
  }

  std::string cipher() const override {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    const char* name = c ? SSL_CIPHER_standard_name(c) : nullptr;
    return name ? name : "";
  }

  std::uint16_t group() const override {
    // The group of this handshake's key exchange, TLS 1.2 (ECDHE) and 1.3.
    return handshake_done_ ? group_of_nid(static_cast<int>(SSL_get_negotiated_group(ssl_))) : 0;
  }

  std::string alpn_selected() const override {
    const unsigned char* data = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &data, &len);
    return data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
  }

  bool session_reused() const override { return SSL_session_reused(ssl_) == 1; }

  // The certificates as the peer's Certificate message carried them
  // (on_message kept them): OpenSSL's X509 objects give back a re-encoding
  // (i2d keeps only the tbsCertificate's bytes), and none at all after a
  // failed verification. A resumed handshake has no Certificate message: the
  // leaf of the original session, as OpenSSL keeps it (the core keeps only
  // the leaf: docs/contract.md, "Who is on the other end").
  std::vector<std::vector<std::byte>> peer_chain() const override {
    std::vector<std::vector<std::byte>> chain;
    if (SSL_session_reused(ssl_) == 1) {
      if (X509* leaf = SSL_get0_peer_certificate(ssl_)) chain.push_back(der_of(leaf));
      return chain;
    }
    // peer_certs_: each certificate as a 3-byte length and its DER.
    std::span<const std::byte> rest(peer_certs_);
    while (rest.size() >= 3) {
      const std::size_t len = std::size_t(rest[0]) << 16 | std::size_t(rest[1]) << 8 | std::size_t(rest[2]);
      if (len > rest.size() - 3) break;
      chain.emplace_back(rest.begin() + 3, rest.begin() + 3 + static_cast<std::ptrdiff_t>(len));
      rest = rest.subspan(3 + len);
    }
    return chain;
  }
  unsigned certificate_issues() const override { return issues_of(SSL_get_verify_result(ssl_)); }
  std::string requested_server_name() const override { return requested_name_; }
  void* native_handle() const override { return ssl_; }
  // Server: the ClientHello as the core judged it (on_message): its fault
  // and the name it asked for (SSL_get_servername would give nothing, or
  // the original session's name, on a resumption). False without an engine.
  static bool hello_verdict(const SSL* ssl, HelloFault& fault, std::string_view& name) {
    const OpenSslEngine* engine = of(ssl);
    if (!engine) return false;
    fault = engine->hello_fault_;
    name = engine->requested_name_;
    return true;
  }
  std::size_t pending() const override {
    const int n = SSL_pending(ssl_);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  // OpenSSL sends the alert a failure of its own calls for itself.
  void send_alert(std::uint8_t) override {}

  void end(bool closed_properly) override {
    // T6: SSL_free without SENT in OpenSSL's own flags takes the session out
    // of a server's session-ID cache (the RFC 2246 rule on the server side).
    // SENT may be ours only (set_shutdown, quiet shutdown), so tell OpenSSL.
    if (closed_properly) SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_SENT_SHUTDOWN);
  }

  std::span<const unsigned char> server_session_id() const override {
    unsigned len = 0;
    const SSL_SESSION* session = SSL_get_session(ssl_);
    const unsigned char* id = session ? SSL_SESSION_get_id(session, &len) : nullptr;
    if (!id) return {};
    return {id, len};
  }

  // SSL_CTX_sess_set_new_cb. A client: OpenSSL made a session, at the end of
  // a full TLS 1.2 handshake (never on a resumption) or from a TLS 1.3
  // NewSessionTicket; exported to the core's cache. A server: a session for
  // its session-ID cache (TLS 1.2, or a stateful TLS 1.3 ticket). OpenSSL
  // keeps its own reference either way.
  //
  // The core's caches keep a reference to the SSL_SESSION itself
  // (StoredSession::native), no bytes: shared by the connections it is
  // offered to, as OpenSSL's own cache shares its sessions. Serialising it
  // (i2d) and parsing it back (d2i: its certificate too) for each
  // connection cost more than a resumed handshake (docs/benchmarks.md).
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = of(ssl);
    if (!self || !SSL_SESSION_is_resumable(session)) return 0;
    if (self->sessions_) self->sessions_->session_made({}, shared(session));
    if (ServerSessionStore* store = self->context_->server_sessions_.get()) {
      unsigned id_len = 0;
      const unsigned char* id = SSL_SESSION_get_id(session, &id_len);
      store->store(std::span<const unsigned char>(id, id_len), {}, shared(session), self->requested_name_);
    }
    return 0;
  }

  // SSL_CTX_set_session_ticket_cb (server; TLS 1.3, where the tickets are):
  // a ticket carries the server name of the handshake that made it, and a
  // ClientHello under another name gets a full handshake (docs/contract.md,
  // "Server names": OpenSSL 3.0 resumes a TLS 1.3 ticket under any name).
  static int on_ticket_made(SSL* ssl, void*) {
    const OpenSslEngine* self = of(ssl);
    SSL_SESSION* session = SSL_get0_session(ssl);
    if (!self || !session) return 1;
    const std::string& name = self->requested_name_;
    // "" is stored as one NUL byte: appdata cannot be empty.
    return SSL_SESSION_set1_ticket_appdata(session, name.empty() ? "" : name.data(), name.empty() ? 1 : name.size());
  }
  static SSL_TICKET_RETURN on_ticket_offered(SSL* ssl, SSL_SESSION* session, const unsigned char*, std::size_t,
                                             SSL_TICKET_STATUS status, void*) {
    switch (status) {
      case SSL_TICKET_SUCCESS:
      case SSL_TICKET_SUCCESS_RENEW: {
        const OpenSslEngine* self = of(ssl);
        void* data = nullptr;
        std::size_t size = 0;
        if (!self || SSL_SESSION_get0_ticket_appdata(session, &data, &size) != 1) return SSL_TICKET_RETURN_IGNORE_RENEW;
        const std::string_view made(static_cast<const char*>(data), size);
        const std::string& now = self->requested_name_;
        if (now.empty() ? made != std::string_view("", 1) : made != now) return SSL_TICKET_RETURN_IGNORE_RENEW;
        return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
      }
      case SSL_TICKET_EMPTY:
      case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
      case SSL_TICKET_NONE:
        return SSL_TICKET_RETURN_IGNORE;
      default:
        return SSL_TICKET_RETURN_ABORT;
    }
  }

  // A new reference to session, released with the cache entry that holds it.
  static std::shared_ptr<void> shared(SSL_SESSION* session) {
    SSL_SESSION_up_ref(session);
    return std::shared_ptr<void>(session, [](void* s) { SSL_SESSION_free(static_cast<SSL_SESSION*>(s)); });
  }
  // The SSL_SESSION a cache entry holds, as a new reference (null: none).
  static SSL_SESSION* session_of(const StoredSession& stored) {
    auto* session = static_cast<SSL_SESSION*>(stored.native.get());
    if (session) SSL_SESSION_up_ref(session);
    return session;
  }

  // SSL_CTX_sess_set_get_cb (server): a session ID the client offered.
  static SSL_SESSION* find_session(SSL* ssl, const unsigned char* id, int len, int* copy) {
    *copy = 0;  // the reference returned is OpenSSL's
    const OpenSslEngine* self = of(ssl);
    if (!self || len <= 0) return nullptr;
    const auto found = self->context_->server_sessions_->find(
        std::span<const unsigned char>(id, static_cast<std::size_t>(len)), self->requested_name_);
    // Shared between the connections that resume it, as in OpenSSL's own
    // cache; OpenSSL gets a reference of its own.
    return found ? session_of(*found) : nullptr;
  }

  // SSL_CTX_sess_set_remove_cb (server): OpenSSL dropped a session (expired,
  // used up, or on SSL_free of an improperly closed connection).
  static void forget_session(SSL_CTX* ctx, SSL_SESSION* session) {
    const auto* context = static_cast<const OpenSslContext*>(SSL_CTX_get_app_data(ctx));
    unsigned len = 0;
    const unsigned char* id = SSL_SESSION_get_id(session, &len);
    if (context && context->server_sessions_) context->server_sessions_->remove(std::span<const unsigned char>(id, len));
  }

  // SSL_CTX_set_msg_callback: counts the KeyUpdates the peer sends
  // (KeyUpdateLimit, the limit GnuTLS enforces). Past the limit, the next
  // bytes OpenSSL reads are a record it must reject (a handshake-typed
  // record where TLS 1.3 allows only application_data, RFC 8446 5): OpenSSL
  // then sends its own fatal unexpected_message alert, encrypted as it
  // should be, and reads nothing more from the peer.
  //
  // It also keeps the certificates of the peer's Certificate message, as
  // sent (peer_chain). OpenSSL gives a handshake message whole, with its
  // 4-byte header, TLS 1.3 ones decrypted (tls_get_message_body).
  static void on_message(int write_p, int version, int content_type, const void* buf, std::size_t len,
                         SSL* ssl, void*) {
    if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1) return;
    const auto* message = static_cast<const unsigned char*>(buf);
    if (message[0] == SSL3_MT_CLIENT_HELLO && len >= 4) {
      // The whole hello, before OpenSSL parses it: the core judges every
      // extension (docs/contract.md, "Server names"), also those OpenSSL
      // does not know and would let through twice. A hello whose framing
      // fails is not judged: OpenSSL answers it with decode_error.
      if (auto* self = of(ssl)) {
        const ClientHelloBody hello = read_client_hello_body({message + 4, len - 4});
        self->requested_name_ = hello.judged.server_name();
        self->hello_fault_ = hello.parses ? hello.judged.fault() : HelloFault::none;
      }
      return;
    }
    if (message[0] == SSL3_MT_CERTIFICATE) {
      if (auto* self = of(ssl)) self->keep_certificates({message, len}, version == TLS1_3_VERSION);
      return;
    }
    if (message[0] != SSL3_MT_KEY_UPDATE) return;
    auto* self = of(ssl);
    if (self && !self->key_updates_.received(std::chrono::steady_clock::now()))
      self->key_update_flood_ = true;
  }

  // A Certificate message (RFC 5246 7.4.2; RFC 8446 4.4.2: a request
  // context first, and extensions after each certificate) into
  // peer_certs_: each certificate as a 3-byte length and its DER, the
  // extensions left out. One allocation; a message that does not parse
  // leaves what parsed (OpenSSL fails the handshake on it anyway).
  void keep_certificates(std::span<const unsigned char> message, bool tls13) {
    peer_certs_.clear();
    peer_certs_.reserve(message.size());
    for_each_certificate(message, tls13, [this](std::span<const unsigned char> entry, auto) {
      const auto bytes = std::as_bytes(entry);
      peer_certs_.insert(peer_certs_.end(), bytes.begin(), bytes.end());
    });
  }

  // SSL_CTX_set_keylog_callback (Config::keylog set): OpenSSL hands over
  // whole NSS lines, "<label> <client random hex> <secret hex>"; the core
  // wants the pieces (keylog.hpp). Labels it does not log (OpenSSL's "RSA"
  // line, early-data secrets) are dropped there.
  static void on_keylog(const SSL* ssl, const char* line) {
    auto* self = of(ssl);
    if (!self || !self->keylog_) return;
    const std::string_view text(line);
    const std::size_t a = text.find(' ');
    const std::size_t b = a == std::string_view::npos ? a : text.find(' ', a + 1);
    if (b == std::string_view::npos) return;
    const auto which = secret_of_label(text.substr(0, a));
    if (!which) return;
    unsigned char random[32], secret[64];
    const std::size_t random_size = unhex(text.substr(a + 1, b - a - 1), random);
    const std::size_t secret_size = unhex(text.substr(b + 1), secret);
    if (random_size && secret_size)
      self->keylog_->secret(*which, {random, random_size}, {secret, secret_size});
    OPENSSL_cleanse(secret, sizeof secret);
  }
  // Hex digits into out; their count of bytes, 0 when they do not fit or
  // are not hex.
  template <std::size_t N>
  static std::size_t unhex(std::string_view hex, unsigned char (&out)[N]) {
    if (hex.empty() || hex.size() % 2 != 0 || hex.size() / 2 > N) return 0;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      const int hi = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[i]));
      const int lo = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[i + 1]));
      if (hi < 0 || lo < 0) return 0;
      out[i / 2] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return hex.size() / 2;
  }

  // ---- BIO callbacks ----
  static int bio_transport_read(BIO* bio, char* data, int size);
  static int bio_transport_write(BIO* bio, const char* data, int size);
  static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);
  static void set_retry(BIO* bio, Wire::Stop stop);

 private:
  // OpenSSL's error queue is not touched on the way in or on success:
  // looking at it costs about 215 instructions and clearing it 840, more
  // than all the rest unitls adds to a 1 KiB record (docs/benchmarks.md).
  // translate reads it only for a call that failed, and drains it.
  Result translate(int ret, Op op);
  Result key_update_failure() {
    ERR_clear_error();
    return Result::fail(errc::protocol_error, make_error_code(RecordFault::key_update_flood));
  }

  static OpenSslEngine* from(BIO* bio) { return static_cast<OpenSslEngine*>(BIO_get_data(bio)); }
  // The engine of an SSL in OpenSSL's callbacks: its BIO's data (no ex_data
  // slot, which would cost an allocation per connection).
  static OpenSslEngine* of(const SSL* ssl) {
    BIO* bio = SSL_get_rbio(ssl);
    return bio ? from(bio) : nullptr;
  }

  // The SSL_CTX; outlives ssl_. The core holds it for as long as the
  // engine lives (engine.hpp, BackendContext).
  OpenSslContext* context_;
  Wire& wire_;
  SSL* ssl_;
  bool handshake_done_ = false;
  KeyUpdateLimit key_updates_;
  bool key_update_flood_ = false;     // the peer passed KeyUpdateLimit
  std::size_t poison_offset_ = 0;     // of poison_record, once the flood is seen
  SessionSink* sessions_;             // client with the session cache: where new sessions go
  std::string requested_name_;        // server: this handshake's SNI host_name
  HelloFault hello_fault_ = HelloFault::none;  // server: the core refused the ClientHello's server_name
  KeyLogSink* keylog_;                // Config::keylog set: where secrets go
  std::vector<std::byte> peer_certs_; // the peer's Certificate message's certificates (keep_certificates)
};


// Maps a failed call. Always by SSL_get_error, never by the return value: a
// received fatal alert returns 0 (T3), so does a truncated stream.
Result OpenSslEngine::translate(int ret, Op op) {
  // The Wire answered "nothing to read now" in this call and OpenSSL waits
  // to read: want_read, whatever the queue holds. OpenSSL returns at once
  // when its BIO says so, so no error of this call can follow it; an entry
  // in the queue is someone else's (the application's), left as it is.
  if (wire_.dry() && SSL_want_read(ssl_)) return Result::of(Status::want_read);
  // Not so for "could take nothing more": a fatal error whose alert found
  // the transport full leaves OpenSSL waiting to write too, with its entry
  // on the queue; that case goes the general way below.
  // SSL_get_error answers SSL or SYSCALL whenever the queue holds an entry:
  // for the other answers it is empty, with nothing to drain.
  int err = SSL_get_error(ssl_, ret);
  QueueInfo q;
  if (err == SSL_ERROR_SSL || err == SSL_ERROR_SYSCALL) {
    q = drain_error_queue();
    // A failure of libssl's own always leaves an entry of its library
    // (SSLfatal), and on an established connection it also puts the
    // connection back "in init" (ossl_statem_fatal: MSG_FLOW_ERROR). Without
    // both, the entries were there before the call (the application's, even
    // libssl's own from the application's calls) and made the answer SSL or
    // SYSCALL by themselves: asked again, with the queue now empty,
    // SSL_get_error answers for this call (a want, a close_notify, a
    // transport failure, an EOF). During the handshake "in init" says
    // nothing: there only the entry's library tells.
    const bool failed_here = q.from_ssl && (op == Op::handshake || SSL_in_init(ssl_) != 0);
    if (failed_here) {
      err = SSL_ERROR_SSL;
    } else {
      q = QueueInfo();
      err = SSL_get_error(ssl_, ret);
    }
  }
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Result::of(Status::want_read);
    case SSL_ERROR_WANT_WRITE:
      return Result::of(Status::want_write);
    case SSL_ERROR_ZERO_RETURN:
      // SSL_get_error answers ZERO_RETURN for *any* failure without a queue
      // entry once RECEIVED is set, e.g. EPIPE on a write after the peer's
      // close_notify (half-close).
      if (wire_.io_error()) return Result::fail(errc::transport_error, ssl_error_code(err));
      if (op == Op::read || op == Op::handshake) return Result::of(Status::close_notify, ssl_error_code(err));
      return Result::fail(errc::transport_error, ssl_error_code(err));
    case SSL_ERROR_SYSCALL:
      // Nothing in the queue (our BIO pushes no system errors): the Wire
      // knows whether the transport failed.
      if (wire_.io_error()) return Result::fail(errc::transport_error, ssl_error_code(err));
      // No OS error: the transport ended (also the second call after T4).
      return Result::of(Status::eof, ssl_error_code(err));
    case SSL_ERROR_SSL: {
      if (q.unexpected_eof) return Result::of(Status::eof);
      // The ClientHello callback refused the server name (OpenSSL sent the
      // alert the callback named).
      if (hello_fault_ != HelloFault::none) return Result::fail(errc::protocol_error, make_error_code(hello_fault_));
      if (op == Op::handshake) {
        const long verify = SSL_get_verify_result(ssl_);
        if ((SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) && verify != X509_V_OK)
          return Result::fail(errc::certificate_error,
                              {-(verify_base + static_cast<int>(verify)), openssl_category()});
        if (q.no_peer_certificate)
          return Result::fail(errc::certificate_error, queue_error_code(q.primary));
      }
      std::error_code native = q.primary ? queue_error_code(q.primary) : ssl_error_code(err);
      return Result::fail(errc::protocol_error, native, q.peer_alert);
    }
    default:
      drain_error_queue();
      return Result::fail(errc::protocol_error, ssl_error_code(err));
  }
}

// ---- BIOs -------------------------------------------------------------------------
//
// One source/sink BIO with the engine as its data, reading and writing
// through the core's Wire (which swallows what OpenSSL writes once the
// connection is over: its decode_error alert after a truncation, T4).

int OpenSslEngine::bio_transport_read(BIO* bio, char* data, int size) {
  OpenSslEngine* self = from(bio);
  BIO_clear_retry_flags(bio);
  if (size <= 0) return 0;
  if (self->key_update_flood_) {
    // See on_message. Once given, the poison is all there is to read.
    const std::size_t left = sizeof poison_record - self->poison_offset_;
    if (left == 0) return 0;
    const std::size_t n = std::min(left, static_cast<std::size_t>(size));
    std::memcpy(data, poison_record + self->poison_offset_, n);
    self->poison_offset_ += n;
    return static_cast<int>(n);
  }
  const std::ptrdiff_t n =
      self->wire_.read(std::span<std::byte>(reinterpret_cast<std::byte*>(data), static_cast<std::size_t>(size)));
  if (n >= 0) return static_cast<int>(n);
  set_retry(bio, self->wire_.stop());
  return -1;
}

int OpenSslEngine::bio_transport_write(BIO* bio, const char* data, int size) {
  OpenSslEngine* self = from(bio);
  BIO_clear_retry_flags(bio);
  if (size <= 0) return 0;
  const std::ptrdiff_t n = self->wire_.write(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), static_cast<std::size_t>(size)));
  if (n > 0) return static_cast<int>(n);
  set_retry(bio, self->wire_.stop());
  return -1;
}

void OpenSslEngine::set_retry(BIO* bio, Wire::Stop stop) {
  if (stop == Wire::Stop::would_block_read) BIO_set_retry_read(bio);
  if (stop == Wire::Stop::would_block_write) BIO_set_retry_write(bio);
}

long OpenSslEngine::bio_ctrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  // every write goes straight to the transport
    // ssl3_read_n asks this to tell a truncation (SSL_R_UNEXPECTED_EOF_WHILE_READING)
    // from a plain I/O failure.
    case BIO_CTRL_EOF: return from(bio)->wire_.eof() ? 1 : 0;
    default: return 0;  // PUSH, POP, PENDING, WPENDING, ... : nothing to do or report
  }
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy(BIO*) { return 1; }  // the engine owns what the BIO points to

BIO_METHOD* make_method(const char* name, int (*rd)(BIO*, char*, int),
                        int (*wr)(BIO*, const char*, int)) {
  BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
  if (!m) return nullptr;
  BIO_meth_set_read(m, rd);
  BIO_meth_set_write(m, wr);
  BIO_meth_set_ctrl(m, &OpenSslEngine::bio_ctrl);
  BIO_meth_set_create(m, bio_create);
  BIO_meth_set_destroy(m, bio_destroy);
  return m;
}

// Created once, never freed (like OpenSSL's own static methods).
const BIO_METHOD* transport_method() {
  static BIO_METHOD* const m = make_method("unitls transport", &OpenSslEngine::bio_transport_read,
                                           &OpenSslEngine::bio_transport_write);
  return m;
}

bool OpenSslEngine::init(const std::shared_ptr<const StoredSession>& offer) {
  // Every byte goes through the core's Wire (for fd transports: recv/send
  // with MSG_NOSIGNAL, no copy); OpenSSL's own socket BIO would raise
  // SIGPIPE on a reset peer and turn EINTR into a spurious want_read.
  const BIO_METHOD* method = transport_method();
  if (!method) return false;
  BIO* bio = BIO_new(method);
  if (!bio) return false;
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_ from here

  const OpenSslContext& c = *context_;
  if (c.role_ == Role::server) {
    SSL_set_accept_state(ssl_);
    return true;
  }
  SSL_set_connect_state(ssl_);
  // The name is checked by verify_callback (the core's rule), not by OpenSSL.
  if (!c.sni_.empty() && !SSL_set_tlsext_host_name(ssl_, c.sni_.c_str()))
    return false;
  if (offer) {
    // A session that no longer resumes is not offered:
    // a full handshake. TLS 1.3: a copy of its own (sharing the peer's
    // certificate), since OpenSSL marks a TLS 1.3 session used once it has
    // resumed with it; TLS 1.2: the shared session itself.
    SSL_SESSION* session = session_of(*offer);
    if (session && SSL_SESSION_get_protocol_version(session) >= TLS1_3_VERSION) {
      SSL_SESSION* own = SSL_SESSION_dup(session);
      SSL_SESSION_free(session);
      session = own;
    }
    if (session && SSL_SESSION_is_resumable(session)) SSL_set_session(ssl_, session);
    SSL_SESSION_free(session);
  }
  return true;
}

std::size_t OpenSslContext::engine_size() const { return sizeof(OpenSslEngine); }

EnginePtr OpenSslContext::make_engine(Wire& wire, EngineSetup& setup) {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  auto engine = setup.room.make<OpenSslEngine>(*this, wire, ssl, setup.sessions, setup.keylog);
  const bool ok = engine->init(setup.offer);
  ERR_clear_error();
  if (!ok) return nullptr;
  return engine;
}

// ---- verification ---------------------------------------------------------------
//
// OpenSSL checks the chain, the signatures, the validity period and the
// purpose (ssl_server / ssl_client). Names are the core's rule (verify.hpp),
// the same on every backend: checked here on the leaf, after OpenSSL has
// accepted it (the depth-0 call comes last, internal_verify).
int verify_callback(int ok, X509_STORE_CTX* store) {
  // OpenSSL's ssl_client purpose also wants digitalSignature (or
  // keyAgreement) in a leaf's keyUsage, and says "unsuitable purpose" for
  // it: the core's rule decides which of the two it is (a keyUsage without
  // digitalSignature is wrong_key_usage on every backend).
  if (!ok && X509_STORE_CTX_get_error(store) == X509_V_ERR_INVALID_PURPOSE &&
      X509_STORE_CTX_get_error_depth(store) == 0) {
    unsigned char* der = nullptr;
    X509* cert = X509_STORE_CTX_get_current_cert(store);
    const int len = cert ? i2d_X509(cert, &der) : 0;
    if (len > 0) {
      const auto facts = parse_certificate(std::as_bytes(std::span<const unsigned char>(der, static_cast<std::size_t>(len))));
      auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
      const auto* context = ssl ? static_cast<const OpenSslContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl))) : nullptr;
      const Role peer = context && context->role() == Role::client ? Role::server : Role::client;
      if (facts && purpose_allows(*facts, peer) && !key_usage_allows_signing(*facts))
        X509_STORE_CTX_set_error(store, X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE);
      OPENSSL_free(der);
    }
    return 0;
  }
  if (!ok || X509_STORE_CTX_get_error_depth(store) != 0) return ok;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  X509* leaf = X509_STORE_CTX_get_current_cert(store);
  if (!ssl || !leaf) return ok;
  const auto* context = static_cast<const OpenSslContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  unsigned char* der = nullptr;
  const int len = i2d_X509(leaf, &der);
  if (len <= 0) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  const PeerVerdict verdict =
      check_peer_leaf(std::as_bytes(std::span<const unsigned char>(der, static_cast<std::size_t>(len))),
                      context->role(), context->server_name());
  OPENSSL_free(der);
  switch (verdict) {
    case PeerVerdict::ok: return 1;
    case PeerVerdict::name_mismatch:
      X509_STORE_CTX_set_error(store, context->server_name_is_ip() ? X509_V_ERR_IP_ADDRESS_MISMATCH
                                                                   : X509_V_ERR_HOSTNAME_MISMATCH);
      return 0;
    case PeerVerdict::wrong_purpose: X509_STORE_CTX_set_error(store, X509_V_ERR_INVALID_PURPOSE); return 0;
    case PeerVerdict::wrong_key_usage:
      X509_STORE_CTX_set_error(store, X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE);
      return 0;
    case PeerVerdict::weak_key: X509_STORE_CTX_set_error(store, X509_V_ERR_EE_KEY_TOO_SMALL); return 0;
    case PeerVerdict::unparsable: X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED); return 0;
  }
  return 0;
}

// Adds the anchors the core kept from ca_file to the context's store (and,
// for a server, to the CA names its CertificateRequest lists). Partial
// chains: an intermediate CA in ca_file is an anchor, as on the other stacks.
bool load_trust(SSL_CTX* ctx, const std::string& pem, bool list_client_cas) {
  BIO* in = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!in) return false;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_NAME)* names = list_client_cas ? sk_X509_NAME_new_null() : nullptr;
  int count = 0;
  bool ok = true;
  while (X509* cert = PEM_read_bio_X509(in, nullptr, no_password, nullptr)) {
    ok = ok && X509_STORE_add_cert(store, cert) == 1;
    if (names) {
      if (X509_NAME* name = X509_NAME_dup(X509_get_subject_name(cert))) sk_X509_NAME_push(names, name);
    }
    X509_free(cert);
    ++count;
  }
  BIO_free(in);
  ERR_clear_error();  // the PEM reader's "no start line" at the end
  if (names) SSL_CTX_set_client_CA_list(ctx, names);
  X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
  return ok && count > 0;
}

// ---- configuration ----------------------------------------------------------------

// Server-side ALPN: the core's choice (prefer_alpn), the same on every
// backend.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto& ours = static_cast<OpenSslContext*>(arg)->alpn_wire();
  const std::span<const unsigned char> chosen = prefer_alpn(ours, {in, inlen});
  if (chosen.empty()) return SSL_TLSEXT_ERR_NOACK;
  *out = chosen.data();
  *outlen = static_cast<unsigned char>(chosen.size());
  return SSL_TLSEXT_ERR_OK;
}

// TLS 1.3: the server's preference wins for the group as it does for the
// suite (docs/contract.md, "Cipher suites and groups"), as on GnuTLS and
// mbedTLS. OpenSSL 3.0 takes the client's first key share it can use
// (tls_parse_ctos_key_share), whatever its own order: so this connection's
// groups become the one it prefers among the client's supported_groups, and
// OpenSSL takes that share or asks for it with a HelloRetryRequest (groups
// TLS 1.3 has no code point for are passed over).
void prefer_own_group(SSL* ssl) {
  const auto* context =
      static_cast<const OpenSslContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const unsigned char* ext = nullptr;
  std::size_t len = 0;
  if (!context || SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_groups, &ext, &len) != 1 ||
      len < 2)
    return;
  const std::size_t end = std::min<std::size_t>(len, 2u + (std::size_t{ext[0]} << 8 | ext[1]));
  const auto& codes = context->group_codes();
  const std::uint16_t chosen = prefer_group(codes, {ext + 2, end - 2}, true);
  for (std::size_t k = 0; k < codes.size(); ++k) {
    if (codes[k] != chosen) continue;
    int nid = context->group_nids()[k];
    SSL_set1_groups(ssl, &nid, 1);
    return;
  }
}

// SSL_CTX_set_client_hello_cb (server): the server name judged; a connection that will be TLS 1.2
// gets no session ticket (SSL_OP_NO_TICKET on it alone: on the context it
// would also make TLS 1.3 tickets stateful). TLS 1.3 is what it will be when
// this server allows it and the client offers it (supported_versions).
int on_client_hello(SSL* ssl, int* alert, void*) {
  bool tls13 = false;
  const unsigned char* ext = nullptr;
  std::size_t len = 0;
  if (SSL_get_max_proto_version(ssl) >= TLS1_3_VERSION &&
      SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ext, &len) == 1 && len >= 1) {
    const std::size_t end = std::min<std::size_t>(len, 1u + ext[0]);
    for (std::size_t i = 1; i + 1 < end; i += 2)
      tls13 = tls13 || (ext[i] == 0x03 && ext[i + 1] == 0x04);
  }
  if (!tls13) SSL_set_options(ssl, SSL_OP_NO_TICKET);
  // The hello as the core judged it (on_message), before OpenSSL's own
  // rules (it refuses fewer names). A repeated extension it knows OpenSSL
  // has refused itself (illegal_parameter, as the rule).
  HelloFault fault = HelloFault::none;
  std::string_view name;
  (void)OpenSslEngine::hello_verdict(ssl, fault, name);
  if (fault != HelloFault::none) {
    *alert = hello_alert(fault);
    return SSL_CLIENT_HELLO_ERROR;
  }
  // The credential for this name (docs/contract.md, "Several certificates"),
  // set on every hello: a second one (after a HelloRetryRequest) may name
  // another.
  const auto* context = static_cast<const OpenSslContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (context && context->has_choice()) {
    const OwnCredential& chosen = context->credential(context->credential_for(name));
    SSL_certs_clear(ssl);
    if (SSL_use_cert_and_key(ssl, chosen.leaf, chosen.key, chosen.chain, 1) != 1) {
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_CLIENT_HELLO_ERROR;
    }
  }
  if (tls13) prefer_own_group(ssl);
  return SSL_CLIENT_HELLO_SUCCESS;
}

std::string with_reason(std::string text) {
  const std::string reason = queue_reason();
  if (!reason.empty()) text += " (OpenSSL: " + reason + ")";
  return text;
}

// A credential's chain (PEM, leaf first) and key, read and checked;
// false with *message naming what failed.
bool read_credential(const PreparedCredential& prepared, OwnCredential& out, std::string& message) {
  BIO* in = BIO_new_mem_buf(prepared.chain_pem.data(), static_cast<int>(prepared.chain_pem.size()));
  if (!in) return false;
  out.leaf = PEM_read_bio_X509(in, nullptr, no_password, nullptr);
  out.chain = sk_X509_new_null();
  bool ok = out.leaf && out.chain;
  while (ok) {
    X509* next = PEM_read_bio_X509(in, nullptr, no_password, nullptr);
    if (!next) break;
    ok = sk_X509_push(out.chain, next) > 0;
    if (!ok) X509_free(next);
  }
  BIO_free(in);
  if (!ok) {
    message = config_message(prepared.certificate_source, "not usable", "OpenSSL", queue_reason());
    return false;
  }
  ERR_clear_error();  // the reader's "no start line" at the end
  if (BIO* key = BIO_new_mem_buf(prepared.key_pem.data(), static_cast<int>(prepared.key_pem.size()))) {
    out.key = PEM_read_bio_PrivateKey(key, nullptr, give_password, const_cast<std::string*>(&prepared.key_password));
    BIO_free(key);
  }
  if (!out.key) {
    message = key_unusable_message(prepared, "OpenSSL", queue_reason());
    return false;
  }
  if (X509_check_private_key(out.leaf, out.key) != 1) {
    message = key_mismatch_message(prepared, "OpenSSL", queue_reason());
    return false;
  }
  return true;
}

int to_native(Version v) { return v == Version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }

// The suites in the Selection's order: TLS 1.3 ones by their IANA names,
// TLS 1.2 ones by OpenSSL's (OPENSSL_cipher_name). OpenSSL drops a name it
// cannot do without a word, so what it kept is checked suite by suite.
bool OpenSslContext::set_suites(const Selection& selection, std::string& message) {
  std::string tls13, tls12;
  for (const SuiteInfo* suite : selection.suites) {
    std::string& list = suite->version == Version::tls1_3 ? tls13 : tls12;
    const std::string name(suite->name);
    const char* native =
        suite->version == Version::tls1_3 ? name.c_str() : OPENSSL_cipher_name(name.c_str());
    if (!native || std::strcmp(native, "(NONE)") == 0) {
      message = unsupported_suite_message(*suite, "openssl", "OpenSSL has no name for it");
      init_error_ = errc::unsupported;
      return false;
    }
    if (!list.empty()) list += ':';
    list += native;
  }
  // An empty TLS 1.3 list turns TLS 1.3 off; the versions are narrowed so
  // already. The TLS 1.2 list is left as it is when there is none (TLS 1.3 only).
  if (SSL_CTX_set_ciphersuites(ctx_, tls13.c_str()) != 1 ||
      (!tls12.empty() && SSL_CTX_set_cipher_list(ctx_, tls12.c_str()) != 1)) {
    message = with_reason("cipher_suites: OpenSSL refused '" + tls13 + (tls13.empty() ? "" : ":") +
                          tls12 + "'");
    init_error_ = errc::unsupported;
    return false;
  }
  STACK_OF(SSL_CIPHER)* kept = SSL_CTX_get_ciphers(ctx_);
  for (const SuiteInfo* suite : selection.suites) {
    bool found = false;
    for (int i = 0; !found && i < sk_SSL_CIPHER_num(kept); ++i)
      found = (SSL_CIPHER_get_protocol_id(sk_SSL_CIPHER_value(kept, i)) & 0xffff) == suite->code;
    if (!found) {
      message =
          unsupported_suite_message(*suite, "openssl", "OpenSSL left it out of its cipher list");
      init_error_ = errc::unsupported;
      return false;
    }
  }
  return true;
}

// The groups in the Selection's order; a TLS 1.3 client sends a key share
// for the first only (OpenSSL 3.0 does that by itself, measured:
// docs/backend-notes.md, "Cipher suites and groups").
bool OpenSslContext::set_groups(const Selection& selection, std::string& message) {
  for (const GroupInfo* group : selection.groups) {
    int nid = nid_of_group(group->code);
    if (nid == NID_undef || SSL_CTX_set1_groups(ctx_, &nid, 1) != 1) {
      ERR_clear_error();
      message = unsupported_group_message(*group, "openssl", "OpenSSL refused it");
      init_error_ = errc::unsupported;
      return false;
    }
    group_codes_.push_back(group->code);
    group_nids_.push_back(nid);
  }
  if (SSL_CTX_set1_groups(ctx_, group_nids_.data(), group_nids_.size()) != 1) {
    message = with_reason("groups: OpenSSL refused the list");
    init_error_ = errc::unsupported;
    return false;
  }
  return true;
}

bool OpenSslContext::init(const Config& config, const Prepared& prepared, std::string& message) {
  // The core has checked the options and read the files (Prepared); what
  // is left is what only OpenSSL can tell: whether it can use them.
  // OpenSSL's error queue is per thread: nothing stale in (every failure
  // below takes its reason out of the queue, success clears it at the end).
  ERR_clear_error();
  for (const auto& p : config.alpn) {
    alpn_wire_.push_back(static_cast<unsigned char>(p.size()));
    alpn_wire_.insert(alpn_wire_.end(), p.begin(), p.end());
  }

  ctx_ = SSL_CTX_new(role_ == Role::server ? TLS_server_method() : TLS_client_method());
  if (!ctx_) {
    message = with_reason("cannot create an OpenSSL context");
    return false;
  }
  SSL_CTX_set_app_data(ctx_, this);
  SSL_CTX_set_default_passwd_cb(ctx_, no_password);
  // 112-bit security whatever the system's openssl.cnf says (Debian's sets
  // level 2, OpenSSL's own default is 1): RSA keys of 2048 bits and more in
  // a peer's chain, as the core's rule (key_strong_enough) and mbedTLS's
  // default profile.
  SSL_CTX_set_security_level(ctx_, 2);
  if (!SSL_CTX_set_min_proto_version(ctx_, to_native(prepared.selection.min_version)) ||
      !SSL_CTX_set_max_proto_version(ctx_, to_native(prepared.selection.max_version))) {
    message = with_reason("min_version/max_version not supported by this OpenSSL");
    return false;
  }
  if (!set_suites(prepared.selection, message) || !set_groups(prepared.selection, message))
    return false;
  // Partial writes: the core loops for blocking callers and reports counts
  // to non-blocking ones. Moving buffer: a retried write may come from a
  // different address. AUTO_RETRY (default) stays on: tickets never surface.
  // Never SSL_OP_IGNORE_UNEXPECTED_EOF: it turns truncation into close_notify (T4).
  // No auto chain: OpenSSL would complete our chain from the trust store
  // (ca_file) and send certificates certificate_file does not hold; the
  // other stacks send what it holds (docs/contract.md, "Who is on the other
  // end").
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_NO_AUTO_CHAIN);
  // Renegotiation is refused on every backend with a no_renegotiation
  // warning (a HelloRequest to a client, a second ClientHello to a server),
  // and the connection goes on if the peer accepts that.
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION);
  // The server's order decides the suite (TLS 1.2 and 1.3) and the TLS 1.2
  // group, as on every backend (docs/contract.md, "Cipher suites and groups").
  if (role_ == Role::server) SSL_CTX_set_options(ctx_, SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_msg_callback(ctx_, &OpenSslEngine::on_message);
  // Nothing is installed without Config::keylog (docs/contract.md, "Key log").
  if (config.keylog) SSL_CTX_set_keylog_callback(ctx_, &OpenSslEngine::on_keylog);

  for (const PreparedCredential& credential : prepared.credentials) {
    OwnCredential own;
    if (!read_credential(credential, own, message)) return false;
    credentials_.push_back(std::move(own));
  }
  if (!credentials_.empty()) {
    const OwnCredential& main = credentials_.front();
    if (SSL_CTX_use_cert_and_key(ctx_, main.leaf, main.key, main.chain, 1) != 1) {
      message = key_mismatch_message(prepared.credentials.front(), "OpenSSL", queue_reason());
      return false;
    }
  }

  // The trust anchors the core kept (ca_file, ca_pem or the system store).
  if (!prepared.trust_pem.empty() &&
      !load_trust(ctx_, prepared.trust_pem, role_ == Role::server && verify_peer_) && !prepared.trust_is_system) {
    message = with_reason(prepared.trust_source + ": not usable");
    return false;
  }

  if (role_ == Role::server) {
    const int mode = client_auth_ == ClientAuth::required   ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                     : client_auth_ == ClientAuth::optional ? SSL_VERIFY_PEER
                                                            : SSL_VERIFY_NONE;
    SSL_CTX_set_verify(ctx_, mode, verify_peer_ ? verify_callback : nullptr);
    // Without a session id context a server that verifies clients fails
    // every resumption attempt (SSL_R_SESSION_ID_CONTEXT_UNINITIALIZED).
    static const unsigned char sid_ctx[] = "unitls";
    SSL_CTX_set_session_id_context(ctx_, sid_ctx, sizeof sid_ctx - 1);
    // The session-ID cache is the core's (ServerSessionStore), and TLS 1.2
    // tickets are off (on_client_hello): a session the RFC 2246 rule takes
    // away is gone. TLS 1.3 tickets stay stateless, as GnuTLS's are.
    SSL_CTX_set_client_hello_cb(ctx_, on_client_hello, nullptr);
    SSL_CTX_set_session_ticket_cb(ctx_, &OpenSslEngine::on_ticket_made, &OpenSslEngine::on_ticket_offered, nullptr);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx_, &OpenSslEngine::on_new_session);
    SSL_CTX_sess_set_get_cb(ctx_, &OpenSslEngine::find_session);
    SSL_CTX_sess_set_remove_cb(ctx_, &OpenSslEngine::forget_session);
    if (!alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx_, select_alpn, this);
  } else {
    SSL_CTX_set_verify(ctx_, verify_peer_ ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       verify_peer_ ? verify_callback : nullptr);
    // Returns 0 on success (sic).
    if (!alpn_wire_.empty() &&
        SSL_CTX_set_alpn_protos(ctx_, alpn_wire_.data(), static_cast<unsigned>(alpn_wire_.size())) != 0) {
      message = with_reason("alpn: OpenSSL refused the protocol list");
      return false;
    }
    if (session_cache_) {
      SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(ctx_, &OpenSslEngine::on_new_session);
    } else {
      SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    }
  }
  ERR_clear_error();
  return true;
}

const char* openssl_library_version() { return OpenSSL_version(OPENSSL_VERSION); }

// ---- keys for make_credential (src/engine.hpp, EcdsaP256) ----------------------------

std::string openssl_reason() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return e ? buf : "unknown error";
}

bool openssl_generate_p256(std::vector<std::byte>& sec1, std::vector<std::byte>& point, std::string& message) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  if (!key) {
    message = openssl_reason();
    return false;
  }
  unsigned char* der = nullptr;
  const int len = i2d_PrivateKey(key.get(), &der);  // EC: the SEC1 ECPrivateKey
  if (len <= 0) {
    message = openssl_reason();
    return false;
  }
  sec1.assign(reinterpret_cast<std::byte*>(der), reinterpret_cast<std::byte*>(der) + len);
  OPENSSL_clear_free(der, static_cast<std::size_t>(len));
  point.resize(65);
  std::size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                      reinterpret_cast<unsigned char*>(point.data()), point.size(),
                                      &point_len) != 1 ||
      point_len != 65) {
    message = openssl_reason();
    return false;
  }
  return true;
}

bool openssl_sign_p256(std::span<const std::byte> sec1, std::span<const std::byte> digest,
                       std::vector<std::byte>& signature, std::string& message) {
  const auto* p = reinterpret_cast<const unsigned char*>(sec1.data());
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, static_cast<long>(sec1.size())), &EVP_PKEY_free);
  if (!key) {
    message = openssl_reason();
    return false;
  }
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(key.get(), nullptr),
                                                                 &EVP_PKEY_CTX_free);
  std::size_t len = 0;
  const auto* d = reinterpret_cast<const unsigned char*>(digest.data());
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_sign(ctx.get(), nullptr, &len, d, digest.size()) != 1) {
    message = openssl_reason();
    return false;
  }
  signature.resize(len);
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len, d, digest.size()) != 1) {
    message = openssl_reason();
    return false;
  }
  signature.resize(len);
  return true;
}

constexpr EcdsaP256 openssl_ecdsa_p256{&openssl_generate_p256, &openssl_sign_p256};

}  // namespace

// TLS 1.2 and 1.3; ALPN names as the RFC allows.
extern const BackendEntry openssl_backend{"openssl", &make_context<OpenSslContext>, &openssl_library_version,
                                          // No PKCS#5 v1 (its DES and RC2 are in OpenSSL 3's legacy
                                          // provider only); scrypt and the rest as OpenSSL reads them.
                                          Capabilities{.key_encryptions = ~key_encryption_bit(KeyEncryption::pkcs5_pbes1)},
                                          &openssl_ecdsa_p256};

}  // namespace unitls::detail
