// The GnuTLS 3.7 backend: one set of credentials, priorities and ticket key
// per Config, one gnutls_session_t per connection.
//
// The engine only translates GnuTLS's answers into detail::Result; every
// shutdown rule lives in the core. What matters here are the places where
// GnuTLS's own answers mislead (docs/backend-notes.md T7-T12): gnutls_bye sends a
// new close_notify on every completed call, E_AGAIN after a consumed TLS 1.3
// session ticket although data is queued, no alert after a bad record, and
// sessions that stay resumable whatever the close was.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <memory>
#include <string>
#include <vector>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

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
// Values in the "unitls.gnutls" category:
//   < 0                 a GNUTLS_E_* code;
//   1 .. 2^24-1         a failed certificate verification: the
//                       gnutls_certificate_status_t bits;
//   alert_base + n      fatal alert n received from the peer.
// Transport failures become std::system_category errnos.
constexpr int alert_base = 1 << 28;

class GnuTlsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unitls.gnutls"; }
  std::string message(int value) const override {
    if (value < 0) return gnutls_strerror(value);
    if (value >= alert_base) {
      const char* alert =
          gnutls_alert_get_name(static_cast<gnutls_alert_description_t>(value - alert_base));
      return std::string("fatal alert received: ") + (alert ? alert : "unknown alert");
    }
    if (value == 0) return "success";
    std::string text = "certificate verify failed";
    gnutls_datum_t out{};
    if (gnutls_certificate_verification_status_print(static_cast<unsigned>(value), GNUTLS_CRT_X509,
                                                     &out, 0) == 0) {
      text += ": ";
      text.append(reinterpret_cast<const char*>(out.data), out.size);
      gnutls_free(out.data);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
    }
    return text;
  }
};

const std::error_category& gnutls_category() noexcept {
  static const GnuTlsCategory instance;
  return instance;
}

std::error_code gnutls_code(int value) { return {value, gnutls_category()}; }

bool would_block(int ret) { return ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED; }

// GnuTLS could not read a certificate (X.509, ASN.1, its key).
bool is_certificate_parse_error(int ret) {
  switch (ret) {
    case GNUTLS_E_ASN1_DER_ERROR:
    case GNUTLS_E_ASN1_VALUE_NOT_FOUND:
    case GNUTLS_E_ASN1_GENERIC_ERROR:
    case GNUTLS_E_ASN1_VALUE_NOT_VALID:
    case GNUTLS_E_ASN1_TAG_ERROR:
    case GNUTLS_E_ASN1_TAG_IMPLICIT:
    case GNUTLS_E_ASN1_TYPE_ANY_ERROR:
    case GNUTLS_E_ASN1_SYNTAX_ERROR:
    case GNUTLS_E_ASN1_DER_OVERFLOW:
    case GNUTLS_E_X509_UNKNOWN_SAN:
    case GNUTLS_E_X509_DUPLICATE_EXTENSION:
    case GNUTLS_E_X509_UNSUPPORTED_EXTENSION:
    case GNUTLS_E_X509_UNSUPPORTED_CRITICAL_EXTENSION:
    case GNUTLS_E_X509_UNSUPPORTED_ATTRIBUTE:
    case GNUTLS_E_X509_UNSUPPORTED_OID:
    case GNUTLS_E_X509_CERTIFICATE_ERROR:
    case GNUTLS_E_CERTIFICATE_TIME_ERROR:
    case GNUTLS_E_PARSING_ERROR:
    case GNUTLS_E_ECC_UNSUPPORTED_CURVE:
    case GNUTLS_E_UNKNOWN_PK_ALGORITHM:
    case GNUTLS_E_PK_INVALID_PUBKEY:
    case GNUTLS_E_PK_INVALID_PUBKEY_PARAMS:
      return true;
    default:
      return false;
  }
}

// The handshake failed because of the peer's certificate (or its absence)
// as judged by our own side.
bool is_certificate_failure(int ret) {
  switch (ret) {
    case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
    case GNUTLS_E_CERTIFICATE_ERROR:
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
    case GNUTLS_E_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

// Frees a gnutls-allocated datum however the scope is left.
struct DatumGuard {
  gnutls_datum_t datum{};
  DatumGuard() = default;
  DatumGuard(const DatumGuard&) = delete;
  DatumGuard& operator=(const DatumGuard&) = delete;
  ~DatumGuard() { gnutls_free(datum.data); }
};

class GnuTlsEngine;

// ---- groups ---------------------------------------------------------------------

// IANA NamedGroup code points and GnuTLS's groups for them (GnuTLS 3.7 has
// no brainpool curves for TLS).
struct GroupOf {
  std::uint16_t code;
  gnutls_group_t group;
};
constexpr GroupOf group_map[] = {
    {29, GNUTLS_GROUP_X25519},    {30, GNUTLS_GROUP_X448},      {23, GNUTLS_GROUP_SECP256R1},
    {24, GNUTLS_GROUP_SECP384R1}, {25, GNUTLS_GROUP_SECP521R1},
};

// ---- the context --------------------------------------------------------------

class GnuTlsContext final : public BackendContext,
                            public ContextFacts {
 public:
  GnuTlsContext(const Config& config, const Prepared& prepared)
      : ContextFacts(config, prepared), alpn_names_(config.alpn) {}

  ~GnuTlsContext() override {
    for (auto* credentials : credentials_) gnutls_certificate_free_credentials(credentials);
    for (auto& [name, key] : ticket_keys_) secure_wipe(key);
    if (priority_) gnutls_priority_deinit(priority_);
    if (ticket_key_.data) {
      gnutls_memset(ticket_key_.data, 0, ticket_key_.size);
      gnutls_free(ticket_key_.data);
    }
  }

  GnuTlsContext(const GnuTlsContext&) = delete;
  GnuTlsContext& operator=(const GnuTlsContext&) = delete;

  EnginePtr make_engine(Wire& wire, EngineSetup& setup) override;
  std::size_t engine_size() const override;

  // Loads the credentials and parses the priorities; false with *message
  // on a bad value. Everything it builds is read-only afterwards, so
  // sessions on several threads can share it.
  bool init(const Config& config, const Prepared& prepared, std::string& message);

 private:
  friend class GnuTlsEngine;

  std::vector<std::string> alpn_names_;   // preference order
  std::vector<gnutls_datum_t> alpn_;      // points into alpn_names_

  // [0]: the main credential (and nothing, on a client without one); then
  // a server's additional_credentials, each with the same trust anchors: a
  // ClientHello whose SNI picks one gets it (on_client_hello).
  std::vector<gnutls_certificate_credentials_t> credentials_;
  gnutls_priority_t priority_ = nullptr;
  gnutls_datum_t ticket_key_{};  // server: encrypts the session tickets
  // Server with an ECDSA certificate: the IANA code point of its curve
  // (0: another key). See GnuTlsEngine::on_client_hello.
  std::vector<std::uint16_t> ecdsa_curves_;  // server: per credential, its ECDSA key's curve (0: not ECDSA)
  // The trust anchors (their DER, and read once) for check_chain_purposes.
  AnchorSet anchors_;  // for check_chain_purposes
  // The session ticket key for this server name: the context's, keyed by
  // the name (HMAC-SHA512), kept for the names seen so far.
  std::array<unsigned char, 64> ticket_key_for(const std::string& name) const {
    std::lock_guard lock(ticket_keys_mutex_);
    for (const auto& [seen, key] : ticket_keys_)
      if (seen == name) return key;
    std::array<unsigned char, 64> key{};
    (void)gnutls_hmac_fast(GNUTLS_MAC_SHA512, ticket_key_.data, ticket_key_.size, name.data(), name.size(),
                           key.data());
    if (ticket_keys_.size() < max_ticket_keys) ticket_keys_.emplace_back(name, key);
    return key;
  }
  static constexpr std::size_t max_ticket_keys = 64;  // names a client sends are many; these stay few
  mutable std::mutex ticket_keys_mutex_;
  mutable std::vector<std::pair<std::string, std::array<unsigned char, 64>>> ticket_keys_;
  bool tls1_3_ = false;                // the server negotiates TLS 1.3 with a client that offers it
  bool tls1_2_ = false;                // TLS 1.2 may be negotiated
  std::vector<std::uint16_t> groups_;  // code points, preference order
};

// ---- the engine -----------------------------------------------------------------

enum class Op { handshake, read, write, close_notify };

class GnuTlsEngine final : public Engine {
 public:
  GnuTlsEngine(GnuTlsContext& context, Wire& wire, SessionSink* sessions, KeyLogSink* keylog)
      : context_(&context), wire_(wire), sessions_(sessions), keylog_(keylog) {}

  ~GnuTlsEngine() override {
    if (session_) gnutls_deinit(session_);
  }

  GnuTlsEngine(const GnuTlsEngine&) = delete;
  GnuTlsEngine& operator=(const GnuTlsEngine&) = delete;

  // Creates the session, wires it to the transport and applies the
  // per-connection settings.
  bool init(const SessionBytes* offer);

  // E_AGAIN, and the non-fatal codes after which GnuTLS goes on when called
  // again (GNUTLS_E_WARNING_ALERT_RECEIVED, ...), are "call again": the core
  // tells from the Wire whether the transport had nothing, or GnuTLS stopped
  // on its own after progress (a partial flush, a consumed TLS 1.3 ticket,
  // T11), and calls again in that case.
  Result handshake() override {
    const int ret = gnutls_handshake(session_);
    if (ret == GNUTLS_E_SUCCESS) {
      handshake_done_ = true;
      if (sessions_) {
        // TLS 1.3: a session exists only once a NewSessionTicket arrived
        // (read()). TLS 1.2: complete now; a resumption makes a new one
        // only when the server sent a new ticket.
        if (gnutls_protocol_get_version(session_) == GNUTLS_TLS1_3)
          ticket_pending_ = true;
        else if (!gnutls_session_is_resumed(session_) || ticket_received_)
          export_session();
      }
      if (keylog_) log_resumed_master_secret();
      return Result::ok();
    }
    if (would_block(ret) || !gnutls_error_is_fatal(ret)) return by_direction();
    return translate(ret, Op::handshake);
  }

  Result read(std::span<std::byte> buf) override {
    Result r = read_record(buf);
    if (ticket_pending_ && (gnutls_session_get_flags(session_) & GNUTLS_SFLAGS_SESSION_TICKET)) {
      ticket_pending_ = false;
      export_session();
    }
    return r;
  }

  Result read_record(std::span<std::byte> buf) {
    for (;;) {
      // A refusal GnuTLS could not send at once goes out first (E_AGAIN:
      // gnutls_alert_send wants the same call again); until it is out
      // nothing more is read, so that a peer that asks and asks without
      // reading cannot make the refusals pile up.
      if (refusal_pending_) {
        const int sent = gnutls_alert_send(session_, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
        if (would_block(sent)) return Result::of(Status::want_write);
        refusal_pending_ = false;
      }
      const ssize_t ret = gnutls_record_recv(session_, buf.data(), buf.size());
      if (ret > 0) return Result::ok(static_cast<std::size_t>(ret));
      if (ret == 0) return Result::of(Status::close_notify);
      const int err = static_cast<int>(ret);
      // The refused ClientHello, dropped (below).
      if (hello_kept_ && err == GNUTLS_E_UNEXPECTED_PACKET) {
        hello_kept_ = false;
        continue;
      }
      // GNUTLS_E_REHANDSHAKE: a TLS 1.2 renegotiation request (a
      // HelloRequest to a client, a second ClientHello to a server). It is
      // refused on every backend with a no_renegotiation warning (RFC 5246
      // 7.2.2), which GnuTLS leaves to the application, and the connection
      // goes on: the read with it. A server's GnuTLS keeps the ClientHello
      // for a gnutls_handshake() that does not come: the next
      // gnutls_record_recv() drops it and answers GNUTLS_E_UNEXPECTED_PACKET
      // for it, which would end the connection a peer may carry on.
      if (err == GNUTLS_E_REHANDSHAKE) {
        refusal_pending_ = true;
        hello_kept_ = context_->role_ == Role::server;
        continue;
      }
      if (would_block(err) || !gnutls_error_is_fatal(err)) return by_direction();
      return translate(err, Op::read);
    }
  }

  Result write(std::span<const std::byte> buf) override {
    // After E_AGAIN GnuTLS keeps the encrypted record and, on the next call
    // (the core repeats it with the same bytes), flushes it and returns its
    // length: the bytes go out exactly once.
    const ssize_t ret = gnutls_record_send(session_, buf.data(), buf.size());
    if (ret > 0) return Result::ok(static_cast<std::size_t>(ret));
    const int err = static_cast<int>(ret);
    if (would_block(err)) return by_direction();
    return translate(err, Op::write);
  }

  Result send_close_notify() override {
    // SHUT_WR only: SHUT_RDWR would wait with gnutls_bye, which swallows
    // application data (T12); the core waits with read(). After E_AGAIN
    // the next call only flushes the same alert; the core never calls
    // again after success, which would send another one (T7).
    const int ret = gnutls_bye(session_, GNUTLS_SHUT_WR);
    if (ret == GNUTLS_E_SUCCESS) return Result::ok();
    if (would_block(ret)) return Result::of(Status::want_write);
    return translate(ret, Op::close_notify);
  }

  void send_alert(std::uint8_t description) override {
    (void)gnutls_alert_send(session_, GNUTLS_AL_FATAL, static_cast<gnutls_alert_description_t>(description));
  }

  std::string protocol_version() const override {
    if (!handshake_done_) return "";
    const gnutls_protocol_t version = gnutls_protocol_get_version(session_);
    switch (version) {
      case GNUTLS_TLS1_2: return "TLSv1.2";
      case GNUTLS_TLS1_3: return "TLSv1.3";
      default: {
        const char* name = gnutls_protocol_get_name(version);
        return name ? name : "";
      }
    }
  }

  std::string cipher() const override {
    if (!handshake_done_) return "";
    // The IANA name ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"), since 3.7.3;
    // gnutls_cipher_suite_get_name would give GnuTLS's own spelling.
    const char* name = gnutls_ciphersuite_get(session_);
    return name ? name : "";
  }

  std::uint16_t group() const override {
    if (!handshake_done_) return 0;
    const gnutls_group_t g = gnutls_group_get(session_);
    for (const auto& m : group_map)
      if (m.group == g) return m.code;
    return 0;
  }

  std::string alpn_selected() const override {
    gnutls_datum_t p{};
    if (gnutls_alpn_get_selected_protocol(session_, &p) != GNUTLS_E_SUCCESS || !p.data) return "";
    return std::string(reinterpret_cast<const char*>(p.data), p.size);
  }

  std::span<const unsigned char> server_session_id() const override {
    gnutls_datum_t id{};  // the session's own bytes
    if (gnutls_session_get_id2(session_, &id) != GNUTLS_E_SUCCESS || !id.data) return {};
    return {id.data, id.size};
  }

  // The session-ID cache (gnutls_db_set_*, with the engine as its pointer):
  // the core's ServerSessionStore.
  static gnutls_datum_t db_find(void* engine, gnutls_datum_t key) {
    const auto* self = static_cast<GnuTlsEngine*>(engine);
    const auto found = self->context_->server_sessions_->find(std::span<const unsigned char>(key.data, key.size),
                                                              self->requested_name_);
    gnutls_datum_t out{};
    if (!found || found->bytes.empty()) return out;
    const SessionBytes* bytes = &found->bytes;
    out.data = static_cast<unsigned char*>(gnutls_malloc(bytes->size()));  // GnuTLS frees it
    if (!out.data) return out;
    std::memcpy(out.data, bytes->data(), bytes->size());
    out.size = static_cast<unsigned>(bytes->size());
    return out;
  }
  static int db_store(void* engine, gnutls_datum_t key, gnutls_datum_t data) {
    const auto* self = static_cast<GnuTlsEngine*>(engine);
    self->context_->server_sessions_->store(std::span<const unsigned char>(key.data, key.size),
                                            std::span<const unsigned char>(data.data, data.size), nullptr,
                                            self->requested_name_);
    return 0;
  }
  static int db_remove(void* engine, gnutls_datum_t key) {
    static_cast<GnuTlsEngine*>(engine)->context_->server_sessions_->remove(
        std::span<const unsigned char>(key.data, key.size));
    return 0;
  }

  std::size_t pending() const override { return gnutls_record_check_pending(session_); }

  bool session_reused() const override {
    return handshake_done_ && gnutls_session_is_resumed(session_) != 0;
  }

  std::vector<std::vector<std::byte>> peer_chain() const override {
    std::vector<std::vector<std::byte>> chain;
    unsigned count = 0;
    const gnutls_datum_t* certs = gnutls_certificate_get_peers(session_, &count);
    for (unsigned i = 0; certs && i < count; ++i) {
      const auto* p = reinterpret_cast<const std::byte*>(certs[i].data);
      chain.emplace_back(p, p + certs[i].size);
    }
    return chain;
  }
  // verify_peer's status in the core's words (verify.hpp); it put the
  // core's PeerVerdict there as UNEXPECTED_OWNER / PURPOSE_MISMATCH.
  unsigned certificate_issues() const override {
    const unsigned status = verify_status_;
    unsigned issues = 0;
    if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA | GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE))
      issues |= issue_untrusted;
    if (status & GNUTLS_CERT_NOT_ACTIVATED) issues |= issue_not_yet_valid;
    if (status & GNUTLS_CERT_EXPIRED) issues |= issue_expired;
    if (status & GNUTLS_CERT_PURPOSE_MISMATCH) issues |= issue_wrong_purpose;
    if (status & GNUTLS_CERT_UNEXPECTED_OWNER) issues |= issue_name_mismatch;
    issues |= core_issues_;
    if (issues == 0 && status != 0) issues = issue_other;
    return issues;
  }
  std::string requested_server_name() const override { return requested_name_; }
  void* native_handle() const override { return session_; }

  void end(bool) override {}

  // gnutls_session_set_verify_function: the peer's chain, then the core's
  // rules on its leaf.
  static int verify_peer(gnutls_session_t session);
  static int check_server(gnutls_session_t session);

  // ---- transport callbacks ----
  static ssize_t pull(gnutls_transport_ptr_t ptr, void* data, size_t size);
  static ssize_t push(gnutls_transport_ptr_t ptr, const void* data, size_t size);
  static ssize_t vec_push(gnutls_transport_ptr_t ptr, const giovec_t* iov, int count);
  [[gnu::noinline]] static ssize_t push_each(gnutls_transport_ptr_t ptr, const giovec_t* iov, int count);
  static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms);

 private:
  Result by_direction() const {
    return Result::of(gnutls_record_get_direction(session_) == 1 ? Status::want_write
                                                                 : Status::want_read);
  }
  Result translate(int ret, Op op);
  int alert_for(int ret, bool certificate) const;
  void export_session();
  // gnutls_handshake_set_hook_function: a TLS 1.2 NewSessionTicket arrived.
  static int on_ticket(gnutls_session_t session, unsigned, unsigned, unsigned incoming,
                       const gnutls_datum_t*) {
    if (incoming) static_cast<GnuTlsEngine*>(gnutls_session_get_ptr(session))->ticket_received_ = true;
    return 0;
  }
  // gnutls_handshake_set_hook_function (server): each ClientHello, before
  // GnuTLS reads it.
  // - The server name and ALPN are the core's to judge (docs/contract.md,
  //   "Server names"): GnuTLS refuses fewer names than the rule (longer than
  //   255 bytes, a first entry that is not a host_name) and would answer
  //   them with its own alerts.
  // - The SNI picks the credential (docs/contract.md, "Several certificates").
  // - A TLS 1.2 client whose supported_groups leave out the curve of the
  //   chosen ECDSA key is refused, as OpenSSL and mbedTLS refuse it (RFC 8422
  //   5.1: the extension names the curves the client takes for ECDHE and
  //   ECDSA); GnuTLS 3.7 would serve it (docs/backend-notes.md, "Cipher
  //   suites and groups").
  static int on_client_hello(gnutls_session_t session, unsigned, unsigned, unsigned incoming,
                             const gnutls_datum_t* msg) {
    if (!incoming || !msg) return 0;
    auto* self = static_cast<GnuTlsEngine*>(gnutls_session_get_ptr(session));
    // (The core reads the hello in one pass: cheaper than gnutls_ext_raw_parse's callbacks.)
    const ClientHelloBody seen = read_client_hello_body(std::span<const unsigned char>(msg->data, msg->size));
    const bool parsed = seen.parses;
    self->requested_name_ = seen.judged.server_name();
    self->hello_fault_ = seen.judged.fault();
    if (self->hello_fault_ != HelloFault::none) return GNUTLS_E_RECEIVED_DISALLOWED_NAME;
    const GnuTlsContext& c = *self->context_;
    const std::size_t chosen = c.credential_for(self->requested_name_);
    // (With one credential it is the session's already; with more, set on
    // every hello: a second one, after a HelloRetryRequest, may name another.)
    int ret = c.credentials_.size() > 1
                  ? gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, c.credentials_[chosen])
                  : 0;
    if (ret < 0 || !parsed) return ret;  // a hello that does not parse: GnuTLS judges it
    // TLS 1.3 tickets under this name's own key: a ticket made under another
    // name does not decrypt, and the client gets a full handshake
    // (docs/contract.md, "Server names"; GnuTLS 3.7 resumes a TLS 1.3 ticket
    // under any name). Once per connection: a second hello (after a
    // HelloRetryRequest) names the same server.
    if (seen.offers_tls1_3 && c.tls1_3_ && !self->ticket_key_named_) {
      std::array<unsigned char, 64> key = c.ticket_key_for(self->requested_name_);
      const gnutls_datum_t datum{key.data(), static_cast<unsigned>(key.size())};
      ret = gnutls_session_ticket_enable_server(session, &datum);
      secure_wipe(key);
      if (ret < 0) return ret;
      self->ticket_key_named_ = true;
    }
    const std::uint16_t curve = chosen < c.ecdsa_curves_.size() ? c.ecdsa_curves_[chosen] : 0;
    if (curve && seen.has_groups && !(seen.offers_tls1_3 && c.tls1_3_)) {
      bool listed = false;
      for (std::size_t i = 0; i + 1 < seen.groups.size(); i += 2)
        listed = listed || (seen.groups[i] << 8 | seen.groups[i + 1]) == curve;
      if (!listed) return GNUTLS_E_NO_CIPHER_SUITES;
    }
    return 0;
  }
  // gnutls_session_set_keylog_function (Config::keylog set): GnuTLS gives
  // the NSS label and the secret; the client random is this session's.
  // Labels the core does not log (early-data secrets) are dropped there.
  static int on_keylog(gnutls_session_t session, const char* label, const gnutls_datum_t* secret) {
    auto* self = static_cast<GnuTlsEngine*>(gnutls_session_get_ptr(session));
    const auto which = secret_of_label(label);
    if (!self || !self->keylog_ || !which || !secret) return 0;
    gnutls_datum_t client{}, server{};
    gnutls_session_get_random(session, &client, &server);
    self->keylog_->secret(*which, {client.data, client.size}, {secret->data, secret->size});
    return 0;
  }
  // GnuTLS 3.7 calls the keylog function for CLIENT_RANDOM only when it
  // computes a master secret, never on a TLS 1.2 resumption (measured); the
  // other stacks log the session's master secret under the new client
  // random, which is what decrypts the resumed connection.
  void log_resumed_master_secret() {
    if (gnutls_protocol_get_version(session_) == GNUTLS_TLS1_3 || !gnutls_session_is_resumed(session_)) return;
    gnutls_datum_t client{}, server{}, master{};
    gnutls_session_get_random(session_, &client, &server);
    gnutls_session_get_master_secret(session_, &master);
    keylog_->secret(Secret::client_random, {client.data, client.size}, {master.data, master.size});
  }
  // Without Config::keylog: GnuTLS's own default writes every secret to
  // $SSLKEYLOGFILE when that is set (measured with 3.7.9), which no other
  // stack does; this one logs nothing (docs/backend-notes.md, "Key log").
  static int no_keylog(gnutls_session_t, const char*, const gnutls_datum_t*) { return 0; }
  // Off the path where bytes move (the callbacks then need a smaller frame).
  [[gnu::noinline]] int would_block_or_failed();

  // Credentials and ticket key; outlive session_. The core holds it for as long as the
  // engine lives (engine.hpp, BackendContext).
  GnuTlsContext* context_;
  Wire& wire_;
  gnutls_session_t session_ = nullptr;
  bool handshake_done_ = false;
  bool ticket_pending_ = false;  // TLS 1.3 client: no NewSessionTicket seen yet
  bool refusal_pending_ = false;  // read: a no_renegotiation warning to send (read_record)
  bool hello_kept_ = false;       // server, read: GnuTLS holds a refused ClientHello (read_record)
  bool ticket_received_ = false; // TLS 1.2 client: the server sent a NewSessionTicket
  std::string requested_name_;   // server: this handshake's SNI host_name
  bool ticket_key_named_ = false;  // server: the TLS 1.3 ticket key is this SNI's (on_client_hello)
  HelloFault hello_fault_ = HelloFault::none;  // server: the core refused the ClientHello's server_name
  unsigned verify_status_ = 0;   // gnutls_certificate_status_t of a rejected peer certificate
  unsigned core_issues_ = 0;     // CertificateIssue bits of a core verdict GnuTLS has no status bit for
  bool wrong_curve_ = false;     // TLS 1.2 client: the server's key is on a curve we did not list
  SessionSink* sessions_;        // client with the session cache: where new sessions go
  KeyLogSink* keylog_;           // Config::keylog set: where secrets go
};

// Exports this connection's session to the core's cache. TLS 1.3 only after
// a ticket arrived: without one gnutls_session_get_data2 would wait on the
// transport for it, and return data that cannot resume.
void GnuTlsEngine::export_session() {
  DatumGuard data;
  if (gnutls_session_get_data2(session_, &data.datum) != GNUTLS_E_SUCCESS || data.datum.size == 0)
    return;
  sessions_->session_made(std::span<const unsigned char>(data.datum.data, data.datum.size), nullptr);
}

// Maps a fatal result.
Result GnuTlsEngine::translate(int ret, Op op) {
  if (hello_fault_ != HelloFault::none) [[unlikely]]
    return Result::answer(errc::protocol_error, make_error_code(hello_fault_), hello_alert(hello_fault_));
  switch (ret) {
    case GNUTLS_E_PUSH_ERROR:
    case GNUTLS_E_PULL_ERROR:
      return Result::fail(errc::transport_error, gnutls_code(ret));
    case GNUTLS_E_FATAL_ALERT_RECEIVED:
      return Result::fail(errc::protocol_error,
                          gnutls_code(alert_base + static_cast<int>(gnutls_alert_get(session_))), true);
    case GNUTLS_E_SESSION_EOF:
      // A close_notify where a handshake message was due.
      return Result::of(Status::close_notify, gnutls_code(ret));
    case GNUTLS_E_PREMATURE_TERMINATION:
      // GnuTLS says this for ECONNRESET from the pull function too: only an
      // EOF is the end of the peer's data.
      if (wire_.io_error()) return Result::fail(errc::transport_error, gnutls_code(ret));
      return Result::of(Status::eof, gnutls_code(ret));
    default:
      break;
  }
  std::error_code native = gnutls_code(ret);
  // check_server refused the server's key: a protocol failure of the
  // server's, answered as OpenSSL answers it (SSL_R_WRONG_CURVE).
  if (op == Op::handshake && wrong_curve_)
    return Result::answer(errc::protocol_error, native, GNUTLS_A_ILLEGAL_PARAMETER);
  errc kind = errc::protocol_error;
  // GnuTLS checks the leaf's keyUsage as it verifies the handshake's
  // signature, before its verify function runs (TLS 1.3): the core's rule
  // (key_usage_allows_signing), reported as the other stacks report it.
  // The chain is judged all the same, so that an untrusted or expired one
  // says so first, as it would on the other stacks.
  if (op == Op::handshake && ret == GNUTLS_E_KEY_USAGE_VIOLATION) {
    unsigned status = 0;
    if (gnutls_certificate_verify_peers(session_, nullptr, 0, &status) == 0) verify_status_ = status;
    unsigned count = 0;
    const gnutls_datum_t* chain = gnutls_certificate_get_peers(session_, &count);
    const auto leaf = chain && count > 0
                          ? parse_certificate(std::as_bytes(std::span<const unsigned char>(chain[0].data, chain[0].size)))
                          : std::nullopt;
    core_issues_ |= leaf && !key_usage_allows_signing(*leaf) ? issue_wrong_key_usage : issue_other;
    return Result::answer(errc::certificate_error, native, alert_for(GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR, true));
  }
  // A peer certificate GnuTLS cannot parse (a compressed point, an
  // extension twice, a SAN it does not know): a rejected certificate, as
  // the other stacks reject the certificates they cannot read, not a
  // protocol failure.
  if (op == Op::handshake && is_certificate_parse_error(ret)) {
    core_issues_ |= issue_unreadable;
    return Result::answer(errc::certificate_error, native, GNUTLS_A_BAD_CERTIFICATE);
  }
  if (op == Op::handshake && is_certificate_failure(ret)) {
    kind = errc::certificate_error;
    if (const unsigned status = verify_status_; status != 0 && status < (1u << 24))
      native = gnutls_code(static_cast<int>(status));
  }
  // T10: GnuTLS answers nothing on its own; the core sends the alert named
  // here, as every other stack would have.
  return Result::answer(kind, native, alert_for(ret, kind == errc::certificate_error));
}

// The fatal alert for a failure of ours (-1: none).
int GnuTlsEngine::alert_for(int ret, bool certificate) const {
  if (ret == GNUTLS_E_INVALID_SESSION || ret == GNUTLS_E_INVALID_REQUEST) return -1;
  // The KeyUpdate flood limit (KeyUpdateLimit in engine.hpp): GnuTLS would
  // say internal_error; every backend says unexpected_message.
  if (ret == GNUTLS_E_TOO_MANY_HANDSHAKE_PACKETS) return GNUTLS_A_UNEXPECTED_MESSAGE;
  if (!certificate) {
    int level = 0;
    const int alert = gnutls_error_to_alert(ret, &level);
    return alert >= 0 && level == GNUTLS_AL_FATAL ? alert : -1;
  }
  // gnutls_error_to_alert says decode_error for a missing certificate and
  // bad_certificate for every verification failure; send what OpenSSL
  // sends (RFC 8446 6.2, RFC 5246 7.4.6).
  const unsigned status = verify_status_;
  if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND || ret == GNUTLS_E_CERTIFICATE_REQUIRED)
    return gnutls_protocol_get_version(session_) == GNUTLS_TLS1_3 ? GNUTLS_A_CERTIFICATE_REQUIRED
                                                                  : GNUTLS_A_HANDSHAKE_FAILURE;
  if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA)) return GNUTLS_A_UNKNOWN_CA;
  if (status & GNUTLS_CERT_REVOKED) return GNUTLS_A_CERTIFICATE_REVOKED;
  if (status & GNUTLS_CERT_EXPIRED) return GNUTLS_A_CERTIFICATE_EXPIRED;
  return GNUTLS_A_BAD_CERTIFICATE;
}

// ---- verification --------------------------------------------------------------------
//
// GnuTLS checks the chain, the signatures and the validity period. It is
// given no host name and no key purpose: names and purposes are the core's
// rules (verify.hpp), the same on every backend, checked here on the leaf
// and the intermediates the peer sent (GnuTLS alone would accept a client
// certificate as a server's and the other way round).
// A client's verify function, set whether it verifies or not: TLS 1.2
// first holds the server to RFC 8422 5.1 (its ECDSA key on a curve our
// groups list), which GnuTLS 3.7 does not check and OpenSSL and mbedTLS do
// (docs/contract.md, "Cipher suites and groups"); then verify_peer, when
// the client verifies.
int GnuTlsEngine::check_server(gnutls_session_t session) {
  auto* self = static_cast<GnuTlsEngine*>(gnutls_transport_get_ptr(session));
  if (gnutls_protocol_get_version(session) == GNUTLS_TLS1_2) {
    unsigned count = 0;
    const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &count);
    if (chain && count > 0 &&
        !server_key_allowed(
            std::as_bytes(std::span<const unsigned char>(chain[0].data, chain[0].size)),
            self->context_->groups_)) {
      self->wrong_curve_ = true;
      return GNUTLS_E_CERTIFICATE_ERROR;
    }
  }
  return self->context_->verify_peer_ ? verify_peer(session) : 0;
}

int GnuTlsEngine::verify_peer(gnutls_session_t session) {
  auto* self = static_cast<GnuTlsEngine*>(gnutls_transport_get_ptr(session));
  const Role role = self->context_->role_;
  unsigned status = 0;
  // The chain, signatures and validity by GnuTLS; the purposes (leaf and
  // intermediates) and the name by the core, as on every backend. (Asked
  // for a key purpose, GnuTLS reads the extendedKeyUsage of every
  // certificate of the chain through libtasn1's named lookups: about 27 000
  // instructions a handshake, docs/benchmarks.md.)
  const int ret = gnutls_certificate_verify_peers(session, nullptr, 0, &status);
  // client_auth optional: a client without a certificate is let in.
  if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND && self->context_->client_auth_ == ClientAuth::optional) return 0;
  if (ret < 0 && is_certificate_parse_error(ret)) {  // (see translate)
    self->core_issues_ |= issue_unreadable;
    return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
  }
  if (ret < 0) return ret;
  if (status == 0) {
    unsigned count = 0;
    const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &count);
    if (!chain || count == 0) return GNUTLS_E_NO_CERTIFICATE_FOUND;
    const auto der = std::as_bytes(std::span<const unsigned char>(chain[0].data, chain[0].size));
    PeerVerdict verdict = check_peer_leaf(der, role, self->context_->server_name_);
    // (A leaf alone under anchors that restrict nothing: nothing to judge.)
    if (verdict == PeerVerdict::ok && (count > 1 || self->context_->anchors_.restricts())) {
      std::vector<std::span<const std::byte>> sent;
      for (unsigned i = 0; i < count; ++i)
        sent.push_back(std::as_bytes(std::span<const unsigned char>(chain[i].data, chain[i].size)));
      verdict = check_chain_purposes(sent, role, self->context_->anchors_.lookup());
    }
    switch (verdict) {
      case PeerVerdict::ok: return 0;
      case PeerVerdict::name_mismatch: status = GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER; break;
      case PeerVerdict::wrong_purpose: status = GNUTLS_CERT_INVALID | GNUTLS_CERT_PURPOSE_MISMATCH; break;
      case PeerVerdict::wrong_key_usage:  // (GnuTLS has no status bit for these)
      case PeerVerdict::weak_key:
        status = GNUTLS_CERT_INVALID;
        self->core_issues_ = issue_of(verdict);
        break;
      case PeerVerdict::unparsable: status = GNUTLS_CERT_INVALID; break;
    }
  }
  self->verify_status_ = status;
  return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
}

// ---- transport callbacks ------------------------------------------------------------
//
// Every byte goes through the core's Wire; GnuTLS learns its answers as
// errnos.

// After the Wire returned -1: EAGAIN for "nothing now" / "full" (GnuTLS's
// E_AGAIN), else the transport's errno (EIO when it has none).
int GnuTlsEngine::would_block_or_failed() {
  int err = EIO;
  if (wire_.stop() == Wire::Stop::would_block_read || wire_.stop() == Wire::Stop::would_block_write) {
    err = EAGAIN;
  } else if (const std::error_code& io = wire_.io_error();
             io.category() == std::system_category() || io.category() == std::generic_category()) {
    err = io.value();
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == 0) err = EIO;
  }
  gnutls_transport_set_errno(session_, err);
  return -1;
}

ssize_t GnuTlsEngine::pull(gnutls_transport_ptr_t ptr, void* data, size_t size) {
  auto* self = static_cast<GnuTlsEngine*>(ptr);
  if (size == 0) return 0;
  const std::ptrdiff_t n = self->wire_.read(std::span<std::byte>(static_cast<std::byte*>(data), size));
  return n >= 0 ? n : self->would_block_or_failed();
}

ssize_t GnuTlsEngine::push(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
  auto* self = static_cast<GnuTlsEngine*>(ptr);
  if (size == 0) return 0;
  const std::ptrdiff_t n =
      self->wire_.write(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
  return n > 0 ? n : self->would_block_or_failed();
}

ssize_t GnuTlsEngine::vec_push(gnutls_transport_ptr_t ptr, const giovec_t* iov, int count) {
  // Usually one buffer (one record): push's few instructions, not the loop's frame.
  if (count == 1) [[likely]] return push(ptr, iov[0].iov_base, iov[0].iov_len);
  return push_each(ptr, iov, count);
}

// A flight of records: the Wire writes them in one go when it can.
ssize_t GnuTlsEngine::push_each(gnutls_transport_ptr_t ptr, const giovec_t* iov, int count) {
  auto* self = static_cast<GnuTlsEngine*>(ptr);
  const std::ptrdiff_t n = self->wire_.write_gather(std::span<const iovec>(iov, static_cast<std::size_t>(count)));
  return n >= 0 ? n : self->would_block_or_failed();
}

// GnuTLS asks this only for timed waits: handshake and record timeouts (both
// off here) and gnutls_session_get_data2 on TLS 1.3 before a ticket came
// (export_session never calls it then). A replaced pull function without a
// timeout function makes such a wait fail with PULL_ERROR, so there is one.
// A non-blocking transport never waits: "maybe", and the pull says EAGAIN.
int GnuTlsEngine::pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms) {
  auto* self = static_cast<GnuTlsEngine*>(ptr);
  const int fd = self->wire_.native_handle();
  if (fd < 0 || !self->wire_.is_blocking()) return 1;
  pollfd p{fd, POLLIN, 0};
  const int timeout = ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : static_cast<int>(ms);
  int r;
  do {
    r = ::poll(&p, 1, timeout);
  } while (r < 0 && errno == EINTR);
  if (r < 0) gnutls_transport_set_errno(self->session_, errno);
  return r;
}

bool GnuTlsEngine::init(const SessionBytes* offer) {
  const GnuTlsContext& c = *context_;
  // A client sends its certificate even when the server's CertificateRequest
  // does not name its issuer (GNUTLS_FORCE_CLIENT_CERT), as OpenSSL and
  // mbedTLS do: the server then judges the certificate itself
  // (certificate_error, not "no certificate"). A server issues no TLS 1.2
  // tickets: its sessions are in the core's session-ID cache, where the
  // RFC 2246 rule can take them away.
  // A client sends one TLS 1.3 key share, for its first group
  // (GNUTLS_KEY_SHARE_TOP; GnuTLS's default sends two: docs/contract.md,
  // "Cipher suites and groups").
  const unsigned flags =
      (c.role_ == Role::server ? GNUTLS_SERVER | GNUTLS_NO_TICKETS_TLS12
                               : GNUTLS_CLIENT | GNUTLS_FORCE_CLIENT_CERT | GNUTLS_KEY_SHARE_TOP) |
      GNUTLS_NO_SIGNAL;
  if (gnutls_init(&session_, flags) != GNUTLS_E_SUCCESS) {
    session_ = nullptr;
    return false;
  }

  // Every byte goes through the Transport (fd transports: recv/send with
  // MSG_NOSIGNAL, no copy).
  gnutls_transport_set_ptr(session_, this);
  gnutls_session_set_ptr(session_, this);
  gnutls_transport_set_pull_function(session_, &GnuTlsEngine::pull);
  // The vectored push only (it replaces a plain push function): given only
  // push, GnuTLS flushes each record through its own writev emulation, a
  // layer more per write, and a flight goes out in one call (docs/benchmarks.md).
  gnutls_transport_set_vec_push_function(session_, &GnuTlsEngine::vec_push);
  gnutls_transport_set_pull_timeout_function(session_, &GnuTlsEngine::pull_timeout);
  // Deadlines are the core's business (and a non-blocking caller's):
  // GnuTLS's default 40 s handshake timeout would make it wait in
  // pull_timeout on its own.
  gnutls_handshake_set_timeout(session_, 0);
  gnutls_session_set_keylog_function(session_, keylog_ ? &GnuTlsEngine::on_keylog : &GnuTlsEngine::no_keylog);

  if (gnutls_priority_set(session_, c.priority_) != GNUTLS_E_SUCCESS ||
      gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, c.credentials_.front()) != GNUTLS_E_SUCCESS)
    return false;
  if (!c.alpn_.empty()) {
    // Server: its own preference order among the client's offers (RFC 7301
    // 3.2 leaves it to the server). No overlap: no ALPN, not an alert, the
    // same on every backend (GnuTLS fails only with GNUTLS_ALPN_MANDATORY).
    const unsigned alpn_flags = c.role_ == Role::server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0;
    if (gnutls_alpn_set_protocols(session_, c.alpn_.data(), static_cast<unsigned>(c.alpn_.size()),
                                  alpn_flags) != GNUTLS_E_SUCCESS)
      return false;
  }

  if (c.role_ == Role::server) {
    // TLS 1.3: stateless tickets (GnuTLS has no other kind).
    if (gnutls_session_ticket_enable_server(session_, &c.ticket_key_) != GNUTLS_E_SUCCESS) return false;
    gnutls_db_set_ptr(session_, this);
    gnutls_db_set_retrieve_function(session_, &GnuTlsEngine::db_find);
    gnutls_db_set_store_function(session_, &GnuTlsEngine::db_store);
    gnutls_db_set_remove_function(session_, &GnuTlsEngine::db_remove);
    gnutls_handshake_set_hook_function(session_, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
                                       &GnuTlsEngine::on_client_hello);
    if (c.verify_peer_) {
      gnutls_certificate_server_set_request(
          session_, c.client_auth_ == ClientAuth::required ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST);
      gnutls_session_set_verify_function(session_, &GnuTlsEngine::verify_peer);
    }
    return true;
  }

  if (!c.sni_.empty() &&
      gnutls_server_name_set(session_, GNUTLS_NAME_DNS, c.sni_.data(), c.sni_.size()) != GNUTLS_E_SUCCESS)
    return false;
  if (c.verify_peer_ || c.tls1_2_)
    gnutls_session_set_verify_function(session_, &GnuTlsEngine::check_server);
  if (sessions_)
    gnutls_handshake_set_hook_function(session_, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_POST,
                                       &GnuTlsEngine::on_ticket);
  // A session GnuTLS cannot read is not offered: a full handshake.
  if (offer && !offer->empty())
    (void)gnutls_session_set_data(session_, offer->data(), offer->size());
  return true;
}

std::size_t GnuTlsContext::engine_size() const { return sizeof(GnuTlsEngine); }

EnginePtr GnuTlsContext::make_engine(Wire& wire, EngineSetup& setup) {
  auto engine = setup.room.make<GnuTlsEngine>(*this, wire, setup.sessions, setup.keylog);
  if (!engine->init(setup.offer ? &setup.offer->bytes : nullptr)) return nullptr;
  return engine;
}

// ---- configuration ----------------------------------------------------------------

std::string with_reason(std::string text, int ret) {
  return text + " (GnuTLS: " + gnutls_strerror(ret) + ")";
}

// A PEM text the core prepared, as GnuTLS takes it.
gnutls_datum_t datum_of(const std::string& pem) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(pem.data())), static_cast<unsigned>(pem.size())};
}

// A suite as GnuTLS knows it (gnutls_cipher_suite_info).
struct NativeSuite {
  std::uint16_t code;
  gnutls_kx_algorithm_t kx;
  gnutls_cipher_algorithm_t cipher;
  gnutls_mac_algorithm_t mac;
  bool tls13;
};

std::vector<NativeSuite> native_suites() {
  std::vector<NativeSuite> all;
  unsigned char id[2];
  gnutls_kx_algorithm_t kx;
  gnutls_cipher_algorithm_t cipher;
  gnutls_mac_algorithm_t mac;
  gnutls_protocol_t min;
  for (std::size_t i = 0; gnutls_cipher_suite_info(i, id, &kx, &cipher, &mac, &min); ++i)
    all.push_back(
        {static_cast<std::uint16_t>(id[0] << 8 | id[1]), kx, cipher, mac, min == GNUTLS_TLS1_3});
  return all;
}

template <class T>
void add_once(std::vector<T>& list, T value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

// The priority string for the Selection, or "" with *message (and
// unsupported) when GnuTLS cannot offer it as it is.
//
// GnuTLS has no list of suites: it offers every suite of the key
// exchanges x ciphers x MACs it is given, the TLS 1.3 ones first in cipher
// order, then the TLS 1.2 ones key exchange by key exchange, each in cipher
// then MAC order (set_ciphersuite_list, lib/priority.c). A list it would
// offer otherwise (more suites, another order) is refused, never quietly
// changed: the same peer must negotiate the same suite on every backend.
std::string priority_string(const Selection& selection, std::string& message) {
  const std::vector<NativeSuite> known = native_suites();
  std::vector<gnutls_kx_algorithm_t> kxs;
  std::vector<gnutls_cipher_algorithm_t> ciphers;
  std::vector<gnutls_mac_algorithm_t> macs;
  for (const SuiteInfo* suite : selection.suites) {
    auto it = std::find_if(known.begin(), known.end(),
                           [&](const NativeSuite& n) { return n.code == suite->code; });
    if (it == known.end()) {
      message = unsupported_suite_message(*suite, "gnutls", "GnuTLS has no such suite");
      return {};
    }
    if (!it->tls13) add_once(kxs, it->kx);
    add_once(ciphers, it->cipher);
    add_once(macs, it->mac);
  }
  const bool tls12 = selection.min_version == Version::tls1_2;
  const bool tls13 = selection.max_version == Version::tls1_3;
  std::vector<std::uint16_t> offered;
  auto offer = [&](bool want13, gnutls_kx_algorithm_t kx, gnutls_cipher_algorithm_t c,
                   gnutls_mac_algorithm_t m) {
    for (const NativeSuite& n : known) {
      if (n.tls13 != want13 || n.cipher != c || n.mac != m || (!want13 && n.kx != kx)) continue;
      offered.push_back(n.code);
      return;  // GnuTLS takes the first match (cipher_suite_get)
    }
  };
  if (tls13)
    for (auto c : ciphers)
      for (auto m : macs) offer(true, GNUTLS_KX_UNKNOWN, c, m);
  if (tls12)
    for (auto k : kxs)
      for (auto c : ciphers)
        for (auto m : macs) offer(false, k, c, m);
  std::vector<std::uint16_t> wanted;
  for (const SuiteInfo* suite : selection.suites) wanted.push_back(suite->code);
  if (offered != wanted) {
    message =
        "cipher_suites: the gnutls backend (" + std::string(gnutls_check_version(nullptr)) +
        ") cannot offer this list as it is: GnuTLS offers every pairing of the key exchanges, "
        "ciphers and MACs it is given, in one order, and would offer";
    for (std::size_t i = 0; i < offered.size(); ++i) {
      const SuiteInfo* info = find_suite(offered[i]);
      message += (i ? ", " : " ");
      message += info ? std::string(info->name) : "suite " + std::to_string(offered[i]);
    }
    return {};
  }

  // Server precedence: the server's order decides the suite and the group,
  // as on every backend (docs/contract.md, "Cipher suites and groups").
  std::string p = "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL";
  if (tls13) p += ":+VERS-TLS1.3";
  if (tls12) p += ":+VERS-TLS1.2";
  p += ":-CIPHER-ALL";
  for (auto c : ciphers) p += std::string(":+") + gnutls_cipher_get_name(c);
  p += ":-MAC-ALL";
  for (auto m : macs) p += std::string(":+") + gnutls_mac_get_name(m);
  p += ":-KX-ALL";
  for (auto k : kxs) p += std::string(":+") + gnutls_kx_get_name(k);
  p += ":-GROUP-ALL";
  const gnutls_group_t* available = gnutls_group_list();
  for (const GroupInfo* group : selection.groups) {
    const auto* m = std::find_if(std::begin(group_map), std::end(group_map),
                                 [&](const GroupOf& g) { return g.code == group->code; });
    bool usable = false;
    for (const gnutls_group_t* a = available; m != std::end(group_map) && a && *a; ++a)
      usable = usable || *a == m->group;
    if (!usable) {
      message = unsupported_group_message(*group, "gnutls", "GnuTLS has no such group for TLS");
      return {};
    }
    p += std::string(":+GROUP-") + gnutls_group_get_name(m->group);
  }
  return p;
}

// One credential's chain and key (decrypted with its password) into
// credentials; GnuTLS checks that the key belongs to the first certificate.
bool load_credential(gnutls_certificate_credentials_t credentials, const PreparedCredential& prepared,
                     std::string& message) {
  const gnutls_datum_t chain = datum_of(prepared.chain_pem);
  const gnutls_datum_t key = datum_of(prepared.key_pem);
  const int ret = gnutls_certificate_set_x509_key_mem2(
      credentials, &chain, &key, GNUTLS_X509_FMT_PEM,
      prepared.key_password.empty() ? nullptr : prepared.key_password.c_str(), 0);
  if (ret >= 0) return true;
  if (ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
    message = key_mismatch_message(prepared, "GnuTLS", gnutls_strerror(ret));
  else if (!prepared.key_password.empty() || ret == GNUTLS_E_DECRYPTION_FAILED)
    message = key_unusable_message(prepared, "GnuTLS", gnutls_strerror(ret));
  else
    message = config_message(prepared.certificate_source, "not usable with " + prepared.key_source, "GnuTLS",
                             gnutls_strerror(ret));
  return false;
}

// The curve of the leaf's key when it is an ECDSA one (its IANA code
// point), else 0.
std::uint16_t ecdsa_curve(const std::string& chain_pem) {
  gnutls_x509_crt_t crt = nullptr;
  if (gnutls_x509_crt_init(&crt) < 0) return 0;
  std::uint16_t code = 0;
  const gnutls_datum_t pem = datum_of(chain_pem);
  gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
  gnutls_datum_t x{}, y{};
  if (gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) >= 0 &&
      gnutls_x509_crt_get_pk_algorithm(crt, nullptr) == GNUTLS_PK_ECDSA &&
      gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) >= 0) {
    for (const auto& m : group_map)
      if (static_cast<int>(m.group) == static_cast<int>(curve)) code = m.code;
  }
  gnutls_free(x.data);
  gnutls_free(y.data);
  gnutls_x509_crt_deinit(crt);
  return code;
}

bool GnuTlsContext::init(const Config&, const Prepared& prepared, std::string& message) {
  // The core has checked the options, the names and the limits
  // (gnutls_capabilities) and read the files (Prepared); what is left is
  // what only GnuTLS can tell: whether it can use them.
  for (auto& p : alpn_names_)
    alpn_.push_back({reinterpret_cast<unsigned char*>(p.data()), static_cast<unsigned>(p.size())});

  const std::string priorities = priority_string(prepared.selection, message);
  if (priorities.empty()) {
    init_error_ = errc::unsupported;
    return false;
  }
  const char* error_at = nullptr;
  int ret = gnutls_priority_init(&priority_, priorities.c_str(), &error_at);
  if (ret < 0) {
    priority_ = nullptr;
    message = with_reason("cipher_suites/groups/versions: GnuTLS refused the priority string '" +
                              priorities + "'" +
                              (error_at ? std::string(" at '") + error_at + "'" : std::string()),
                          ret);
    return false;
  }

  const std::size_t count = std::max<std::size_t>(1, prepared.credentials.size());
  for (std::size_t i = 0; i < count; ++i) {
    gnutls_certificate_credentials_t credentials = nullptr;
    ret = gnutls_certificate_allocate_credentials(&credentials);
    if (ret < 0) {
      message = with_reason("cannot create GnuTLS certificate credentials", ret);
      return false;
    }
    credentials_.push_back(credentials);
    if (i < prepared.credentials.size() && !load_credential(credentials, prepared.credentials[i], message))
      return false;
    if (role_ == Role::server && i < prepared.credentials.size())
      ecdsa_curves_.push_back(ecdsa_curve(prepared.credentials[i].chain_pem));
    // The anchors the core kept (a leaf in ca_file is none: GnuTLS would
    // trust it).
    if (!prepared.trust_pem.empty()) {
      if (anchors_.empty()) {
        if (const auto blocks = parse_pem(prepared.trust_pem))
          for (const auto& block : *blocks) anchors_.add(block.der);
        anchors_.finish(role_ == Role::client ? Role::server : Role::client);
      }
      const gnutls_datum_t pem = datum_of(prepared.trust_pem);
      ret = gnutls_certificate_set_x509_trust_mem(credentials, &pem, GNUTLS_X509_FMT_PEM);
      if (ret <= 0 && !prepared.trust_is_system) {
        message = with_reason(prepared.trust_source + ": not usable", ret < 0 ? ret : GNUTLS_E_NO_CERTIFICATE_FOUND);
        return false;
      }
    }
  }

  tls1_3_ = prepared.selection.max_version == Version::tls1_3;
  tls1_2_ = prepared.selection.min_version == Version::tls1_2;
  for (const GroupInfo* g : prepared.selection.groups) groups_.push_back(g->code);

  if (role_ == Role::server) {
    // Stateless tickets on TLS 1.2 and 1.3; read-only once made, shared by
    // every session of this context.
    ret = gnutls_session_ticket_key_generate(&ticket_key_);
    if (ret < 0) {
      ticket_key_ = {};
      message = with_reason("cannot make a session ticket key", ret);
      return false;
    }
  }
  return true;
}

const char* gnutls_library_version() { return gnutls_check_version(nullptr); }

// ---- keys for make_credential (src/engine.hpp, EcdsaP256) ----------------------------

// A coordinate as exactly 32 bytes (GnuTLS may add a leading zero, or
// leave one out).
bool append_coordinate(const gnutls_datum_t& c, std::vector<std::byte>& out) {
  std::span<const unsigned char> v(c.data, c.size);
  while (v.size() > 32 && v.front() == 0) v = v.subspan(1);
  if (v.size() > 32) return false;
  out.insert(out.end(), 32 - v.size(), std::byte{0});
  for (unsigned char b : v) out.push_back(static_cast<std::byte>(b));
  return true;
}

bool gnutls_generate_p256(std::vector<std::byte>& sec1, std::vector<std::byte>& point, std::string& message) {
  gnutls_x509_privkey_t key = nullptr;
  int ret = gnutls_x509_privkey_init(&key);
  if (ret == 0)
    ret = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
  DatumGuard der, x, y, k;
  if (ret == 0) ret = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_DER, &der.datum);  // EC: SEC1
  gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
  if (ret == 0) ret = gnutls_x509_privkey_export_ecc_raw(key, &curve, &x.datum, &y.datum, &k.datum);
  if (k.datum.data) gnutls_memset(k.datum.data, 0, k.datum.size);
  if (key) gnutls_x509_privkey_deinit(key);
  if (ret != 0) {
    message = gnutls_strerror(ret);
    return false;
  }
  point.assign(1, std::byte{0x04});
  if (curve != GNUTLS_ECC_CURVE_SECP256R1 || !append_coordinate(x.datum, point) || !append_coordinate(y.datum, point)) {
    message = "unexpected public key";
    return false;
  }
  sec1.assign(reinterpret_cast<std::byte*>(der.datum.data), reinterpret_cast<std::byte*>(der.datum.data) + der.datum.size);
  gnutls_memset(der.datum.data, 0, der.datum.size);
  return true;
}

bool gnutls_sign_p256(std::span<const std::byte> sec1, std::span<const std::byte> digest,
                      std::vector<std::byte>& signature, std::string& message) {
  gnutls_privkey_t key = nullptr;
  int ret = gnutls_privkey_init(&key);
  const gnutls_datum_t der{reinterpret_cast<unsigned char*>(const_cast<std::byte*>(sec1.data())),
                           static_cast<unsigned>(sec1.size())};
  if (ret == 0) ret = gnutls_privkey_import_x509_raw(key, &der, GNUTLS_X509_FMT_DER, nullptr, 0);
  const gnutls_datum_t hash{reinterpret_cast<unsigned char*>(const_cast<std::byte*>(digest.data())),
                            static_cast<unsigned>(digest.size())};
  DatumGuard sig;
  if (ret == 0) ret = gnutls_privkey_sign_hash(key, GNUTLS_DIG_SHA256, 0, &hash, &sig.datum);
  if (key) gnutls_privkey_deinit(key);
  if (ret != 0) {
    message = gnutls_strerror(ret);
    return false;
  }
  signature.assign(reinterpret_cast<std::byte*>(sig.datum.data), reinterpret_cast<std::byte*>(sig.datum.data) + sig.datum.size);
  return true;
}

constexpr EcdsaP256 gnutls_ecdsa_p256{&gnutls_generate_p256, &gnutls_sign_p256};

}  // namespace

// GnuTLS 3.7 keeps ALPN names in fixed arrays (lib/ext/alpn.h:
// MAX_ALPN_PROTOCOLS 8, MAX_ALPN_PROTOCOL_NAME 32 with the name shorter
// than that): gnutls_alpn_set_protocols fails on a longer name and drops
// the protocols past the eighth.
extern const BackendEntry gnutls_backend{
    "gnutls", &make_context<GnuTlsContext>, &gnutls_library_version,
    Capabilities{.tls1_3 = true,
                 .max_alpn_name = 31,
                 .max_alpn_protocols = 8,
                 // No scrypt (measured with certtool 3.7.9); PKCS#5 v1 is obsolete.
                 .key_encryptions = key_encryption_bit(KeyEncryption::legacy_pem) |
                                    key_encryption_bit(KeyEncryption::pkcs12) |
                                    key_encryption_bit(KeyEncryption::pbes2)},
    &gnutls_ecdsa_p256};

}  // namespace unitls::detail
