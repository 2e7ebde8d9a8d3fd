// The mbedTLS 2.28 backend: one mbedtls_ssl_config per Config, one
// mbedtls_ssl_context per connection. TLS 1.2 only (docs/backend-notes.md).
//
// The engine only translates mbedTLS's answers into detail::Result; every
// shutdown rule lives in the core. What matters here are the places where
// mbedTLS 2.28's own answers mislead or differ from the other stacks:
//   - mbedtls_ssl_read returning 0 is a truncation, not a clean close (T13);
//   - some failures go out without an alert (a missing client certificate,
//     a malformed record header or ClientHello), and the peer would wait;
//   - a server with ALPN fails a client it shares no protocol with;
//   - the name check knows DNS names only, not IP addresses;
//   - there is no "was this session resumed" call.
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <mbedtls/asn1.h>
#include <mbedtls/cipher.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs12.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/ssl_internal.h>  // the ECDH context of a handshake: its group (note_group)
#include <mbedtls/version.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include "certificate_message.hpp"
#include "client_hello.hpp"
#include "engine.hpp"
#include "private_key.hpp"
#include "reframer.hpp"
#include "session_cache.hpp"
#include "verify.hpp"
#include "wire.hpp"

namespace unitls::detail {

namespace {

// ---- native error codes -----------------------------------------------------
//
// Values in the "unitls.mbedtls" category:
//   < 0  an mbedTLS error code (MBEDTLS_ERR_*), described by mbedtls_strerror;
//   > 0  the X.509 verification flags (MBEDTLS_X509_BADCERT_*) of a rejected
//        peer certificate, described by mbedtls_x509_crt_verify_info.
// Transport failures carry their errno in std::system_category instead.

std::string strerror_text(int code) {
  char buf[256];
  mbedtls_strerror(code, buf, sizeof buf);
  return buf;
}

std::string verify_text(std::uint32_t flags) {
  char buf[1024];
  const int n = mbedtls_x509_crt_verify_info(buf, sizeof buf, "", flags);
  std::string text = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  // One line per flag: "a\nb\n" -> "a; b".
  while (!text.empty() && text.back() == '\n') text.pop_back();
  for (std::size_t i = 0; (i = text.find('\n', i)) != std::string::npos;) text.replace(i, 1, "; ");
  return text;
}

class MbedTlsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unitls.mbedtls"; }
  std::string message(int value) const override {
    if (value < 0) return strerror_text(value);
    if (value > 0)
      return "certificate verify failed: " + verify_text(static_cast<std::uint32_t>(value));
    return "no error";
  }
};

const std::error_category& mbedtls_category() noexcept {
  static const MbedTlsCategory instance;
  return instance;
}

std::error_code mbedtls_code(int code) { return {code, mbedtls_category()}; }

// "<what> (mbedTLS: <strerror>)", for configuration messages.
std::string with_reason(std::string text, int code) {
  return text + " (mbedTLS: " + strerror_text(code) + ")";
}

// ---- plaintext handshake messages across records ---------------------------------
//
// mbedTLS 2.28 takes a handshake message only when it arrives in one record
// ("TLS handshake fragmentation not supported", ssl_msg.c), although RFC 5246
// 6.2.1 lets a peer split messages across records at will (and OpenSSL and
// GnuTLS take them so). Until the peer's records are encrypted, the engine
// therefore reads the peer's records through the core's Reframer
// (reframer.hpp), which hands them on in records of whole messages.

// ---- sessions -----------------------------------------------------------------

struct Session {
  mbedtls_ssl_session s;
  Session() { mbedtls_ssl_session_init(&s); }
  ~Session() { mbedtls_ssl_session_free(&s); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

class MbedTlsEngine;

// ---- the context --------------------------------------------------------------

// The server name of the handshake this thread is stepping (the session
// cache's callbacks get no connection: mbedtls_ssl_conf_session_cache), for
// the core's rule that a session resumes only under the name it was made
// with (docs/contract.md, "Server names"). After MbedTlsEngine.
std::string_view stepping_server_name();
// verify_leaf's report of one certificate's verdict (depth 0, the leaf,
// comes last) to the engine stepping on this thread: it keeps the chain
// of a rejected peer. After MbedTlsEngine.
void verified(const mbedtls_x509_crt* crt, int depth, std::uint32_t flags);

// A credential as mbedTLS objects: the chain (leaf first) and its key.
struct OwnCredential {
  OwnCredential() {
    mbedtls_x509_crt_init(&chain);
    mbedtls_pk_init(&key);
  }
  ~OwnCredential() {
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&chain);
  }
  OwnCredential(const OwnCredential&) = delete;
  OwnCredential& operator=(const OwnCredential&) = delete;
  mbedtls_x509_crt chain;
  mbedtls_pk_context key;
};

class MbedTlsContext final : public BackendContext,
                             public ContextFacts {
 public:
  MbedTlsContext(const Config& config, const Prepared& prepared)
      : ContextFacts(config, prepared), alpn_(config.alpn) {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    mbedtls_x509_crt_init(&ca_chain_);
    mbedtls_ssl_config_init(&conf_);
    mbedtls_ssl_config_init(&conf_no_alpn_);
  }

  ~MbedTlsContext() override {
    mbedtls_ssl_config_free(&conf_no_alpn_);
    mbedtls_ssl_config_free(&conf_);
    mbedtls_x509_crt_free(&ca_chain_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }

  MbedTlsContext(const MbedTlsContext&) = delete;
  MbedTlsContext& operator=(const MbedTlsContext&) = delete;

  EnginePtr make_engine(Wire& wire, EngineSetup& setup) override;
  std::size_t engine_size() const override;

  // Loads and checks everything; false with *message on a bad value.
  bool init(const Config& config, const Prepared& prepared, std::string& message);

 private:
  friend class MbedTlsEngine;

  bool load_credential(const PreparedCredential& prepared, OwnCredential& own, std::string& message);
  bool configure(mbedtls_ssl_config* conf, bool with_alpn, const Config& config,
                 std::string& message);
  bool load_trust(const Prepared& prepared, std::string& message);
  bool select(const Selection& selection, std::string& message);

  std::vector<int> suites_;                   // IANA code points, 0-terminated
  std::vector<mbedtls_ecp_group_id> curves_;  // MBEDTLS_ECP_DP_NONE-terminated
  std::vector<std::uint16_t> groups_;         // the same, as code points

  // f_rng for every connection of this context. The context is shared across
  // threads; MBEDTLS_THREADING_C would make the DRBG lock itself, but a
  // build without it would not, so the lock is ours.
  static int random(void* p, unsigned char* out, std::size_t len) {
    auto* self = static_cast<MbedTlsContext*>(p);
    std::lock_guard lock(self->rng_mutex_);
    return mbedtls_ctr_drbg_random(&self->drbg_, out, len);
  }

  // The session-ID cache hooks (mbedtls_ssl_conf_session_cache), in
  // mbedtls_ssl_session_save's format.
  static int store_session(void* store, const mbedtls_ssl_session* session) {
    std::size_t len = 0;
    (void)mbedtls_ssl_session_save(session, nullptr, 0, &len);
    SessionBytes bytes(len);
    if (len == 0 || mbedtls_ssl_session_save(session, bytes.data(), bytes.size(), &len) != 0) return 1;
    static_cast<ServerSessionStore*>(store)->store(std::span<const unsigned char>(session->id, session->id_len),
                                                   std::span<const unsigned char>(bytes.data(), len), nullptr,
                                                   stepping_server_name());
    return 0;
  }
  // session: the one being negotiated, with the ID the client offered;
  // filled in when the ID is known (as mbedtls_ssl_cache_get does).
  static int find_session(void* store, mbedtls_ssl_session* session) {
    const auto stored = static_cast<ServerSessionStore*>(store)->find(
        std::span<const unsigned char>(session->id, session->id_len), stepping_server_name());
    if (!stored) return 1;
    const SessionBytes* bytes = &stored->bytes;
    Session found;
    if (mbedtls_ssl_session_load(&found.s, bytes->data(), bytes->size()) != 0 ||
        found.s.id_len != session->id_len || std::memcmp(found.s.id, session->id, session->id_len) != 0)
      return 1;
    mbedtls_ssl_session_free(session);
    std::memcpy(session, &found.s, sizeof *session);  // ownership moves over
    mbedtls_ssl_session_init(&found.s);
    return 0;
  }

  // f_vrfy: the rules that are the core's (verify.hpp), on the leaf. They
  // replace mbedTLS's own name check, which takes `*.localhost` for
  // `a.localhost` and knows no IP addresses; its chain, validity and
  // extendedKeyUsage checks stay. mbedTLS checks no CA's
  // extendedKeyUsage: the core's rule does (check_peer_intermediate) on
  // every certificate above the leaf, the trust anchor included.
  static int verify_leaf(void* p, mbedtls_x509_crt* crt, int depth, std::uint32_t* flags) {
    const auto* self = static_cast<const MbedTlsContext*>(p);
    if (depth != 0) {
      if (check_peer_intermediate(std::as_bytes(std::span<const unsigned char>(crt->raw.p, crt->raw.len)),
                                  self->role_) != PeerVerdict::ok)
        *flags |= MBEDTLS_X509_BADCERT_EXT_KEY_USAGE;
      verified(crt, depth, *flags);
      return 0;
    }
    *flags &= ~static_cast<std::uint32_t>(MBEDTLS_X509_BADCERT_CN_MISMATCH);
    const auto der = std::as_bytes(std::span<const unsigned char>(crt->raw.p, crt->raw.len));
    switch (check_peer_leaf(der, self->role_, self->server_name_)) {
      case PeerVerdict::ok: break;
      case PeerVerdict::name_mismatch: *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH; break;
      case PeerVerdict::wrong_purpose: *flags |= MBEDTLS_X509_BADCERT_EXT_KEY_USAGE; break;
      case PeerVerdict::wrong_key_usage: *flags |= MBEDTLS_X509_BADCERT_KEY_USAGE; break;
      case PeerVerdict::weak_key: *flags |= MBEDTLS_X509_BADCERT_BAD_KEY; break;
      case PeerVerdict::unparsable: *flags |= MBEDTLS_X509_BADCERT_OTHER; break;
    }
    verified(crt, depth, *flags);
    return 0;
  }

  std::vector<std::string> alpn_;
  std::vector<const char*> alpn_list_;  // NULL-terminated, into alpn_

  std::mutex rng_mutex_;
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  // Prepared::credentials ([0] in the configs; a ClientHello whose SNI
  // picks another gets it through mbedtls_ssl_set_hs_own_cert).
  std::vector<std::unique_ptr<OwnCredential>> credentials_;
  mbedtls_x509_crt ca_chain_;
  bool has_ca_ = false;
  mbedtls_ssl_config conf_;
  mbedtls_ssl_config conf_no_alpn_;  // a server with ALPN, for a client without a common protocol
};

// ---- the engine -----------------------------------------------------------------

enum class Op { handshake, read, write, close_notify };

class MbedTlsEngine final : public Engine {
 public:
  MbedTlsEngine(MbedTlsContext& context, Wire& wire, SessionSink* sessions, KeyLogSink* keylog)
      : context_(&context), wire_(wire), sessions_(sessions), keylog_(keylog) {
    mbedtls_ssl_init(&ssl_);
  }

  ~MbedTlsEngine() override {
    // Before the context goes (ssl_ points into its config).
    mbedtls_ssl_free(&ssl_);
  }

  MbedTlsEngine(const MbedTlsEngine&) = delete;
  MbedTlsEngine& operator=(const MbedTlsEngine&) = delete;

  bool init(const StoredSession* offer);

  Result handshake() override;
  Result read(std::span<std::byte> buf) override;
  Result write(std::span<const std::byte> buf) override;
  Result send_close_notify() override;

  std::string protocol_version() const override {
    return handshake_done_ ? mbedtls_ssl_get_version(&ssl_) : "";
  }

  std::string cipher() const override {
    if (!handshake_done_) return "";
    // mbedTLS spells the IANA names with '-' ("TLS-ECDHE-ECDSA-WITH-...").
    std::string name = mbedtls_ssl_get_ciphersuite(&ssl_);
    std::replace(name.begin(), name.end(), '-', '_');
    return name;
  }

  std::uint16_t group() const override { return handshake_done_ ? group_ : 0; }

  std::string alpn_selected() const override {
    const char* p = handshake_done_ ? mbedtls_ssl_get_alpn_protocol(&ssl_) : nullptr;
    return p ? p : "";
  }

  bool session_reused() const override { return handshake_done_ && !full_handshake_; }
  std::size_t pending() const override { return mbedtls_ssl_get_bytes_avail(&ssl_); }

  std::span<const unsigned char> server_session_id() const override {
    const mbedtls_ssl_session* s = ssl_.session;
    if (!s) return {};
    return {s->id, s->id_len};
  }

  // The chain as parsed from the peer's Certificate message (mbedTLS keeps
  // it: MBEDTLS_SSL_KEEP_PEER_CERTIFICATE); a resumed session has the leaf.
  // After a failed handshake (a rejected certificate): the chain verified()
  // kept (mbedTLS frees a chain it rejects), else the one in the session
  // being negotiated (client_auth optional lets a rejected one in there;
  // mbedtls_ssl_get_peer_cert answers only once the handshake is over).
  // A handshake step failed while mbedTLS read the peer's Certificate
  // message (still in its input buffer): a parse error of the X.509, PK or
  // ECP modules (MBEDTLS_ERR_X509_*, combined with an ASN.1 code, and the
  // key's), not a verification verdict.
  bool failed_on_peer_certificate(int ret) const {
    if (ret >= 0 || ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED || ssl_.in_msg == nullptr || ssl_.in_msgtype != MBEDTLS_SSL_MSG_HANDSHAKE || ssl_.in_hslen < 7 ||
        ssl_.in_msg[0] != MBEDTLS_SSL_HS_CERTIFICATE)
      return false;
    const int high = -ret & 0xff80;  // the high-level module's part
    return (high >= 0x2080 && high <= 0x3000) ||  // X509
           (high >= 0x3880 && high <= 0x3f80) ||  // PK
           (high >= 0x4b00 && high <= 0x4f80);    // ECP
  }
  // The certificates of the Certificate message in ssl_.in_msg into
  // rejected_chain_, for peer_chain() and verification_error().
  void keep_chain_of_certificate_message() {
    if (!rejected_chain_.empty()) return;
    for_each_certificate(std::span<const unsigned char>(ssl_.in_msg, ssl_.in_hslen), false,
                         [this](auto, std::span<const unsigned char> der) {
                           if (der.empty()) return;
                           const auto bytes = std::as_bytes(der);
                           rejected_chain_.emplace_back(bytes.begin(), bytes.end());
                         });
  }
  std::vector<std::vector<std::byte>> peer_chain() const override {
    std::vector<std::vector<std::byte>> chain;
    if (!handshake_done_ && !rejected_chain_.empty()) return rejected_chain_;
    const mbedtls_x509_crt* first = handshake_done_ ? mbedtls_ssl_get_peer_cert(&ssl_)
                                    : ssl_.session_negotiate ? ssl_.session_negotiate->peer_cert
                                                             : nullptr;
    for (const mbedtls_x509_crt* c = first; c && c->raw.len > 0; c = c->next) {
      const auto* p = reinterpret_cast<const std::byte*>(c->raw.p);
      chain.emplace_back(p, p + c->raw.len);
    }
    return chain;
  }
  // The verification flags in the core's words (verify.hpp); verify_leaf
  // put the core's PeerVerdict there as CN_MISMATCH / EXT_KEY_USAGE.
  unsigned certificate_issues() const override {
    const std::uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_);
    if (unreadable_) return issue_unreadable;
    if (flags == 0 || flags == 0xFFFFFFFFu) return 0;
    unsigned issues = 0;
    if (flags & (MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_MISSING)) issues |= issue_untrusted;
    if (flags & MBEDTLS_X509_BADCERT_FUTURE) issues |= issue_not_yet_valid;
    if (flags & MBEDTLS_X509_BADCERT_EXPIRED) issues |= issue_expired;
    if (flags & (MBEDTLS_X509_BADCERT_EXT_KEY_USAGE | MBEDTLS_X509_BADCERT_NS_CERT_TYPE))
      issues |= issue_wrong_purpose;
    if (flags & MBEDTLS_X509_BADCERT_KEY_USAGE) issues |= issue_wrong_key_usage;
    if (flags & MBEDTLS_X509_BADCERT_BAD_KEY) issues |= issue_weak_key;  // (its profile: RSA under 2048 bits)
    if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) issues |= issue_name_mismatch;
    if (issues == 0) issues = issue_other;
    return issues;
  }
  std::string requested_server_name() const override { return requested_name_; }
  void* native_handle() const override { return const_cast<mbedtls_ssl_context*>(&ssl_); }

  void send_alert(std::uint8_t description) override;
  void end(bool) override {}

  // mbedtls_ssl_conf_export_keys_ext_cb (Config::keylog set): the master
  // secret and the randoms, whenever mbedTLS derives the keys (a full
  // handshake and a resumed one). The callback is the config's and is not
  // told the connection; mbedTLS calls it inside mbedtls_ssl_handshake_step,
  // on the thread of the handshake() that set stepping_engine.
  static int on_keys(void*, const unsigned char* master, const unsigned char*, std::size_t, std::size_t,
                     std::size_t, const unsigned char client_random[32], const unsigned char*,
                     mbedtls_tls_prf_types) {
    if (MbedTlsEngine* self = stepping_engine; self && self->keylog_)
      self->keylog_->secret(Secret::client_random, {client_random, 32}, {master, 48});
    return 0;
  }

 private:
  std::string requested_name_;  // server: this handshake's SNI host_name
  bool setup(const mbedtls_ssl_config* conf);
  void note_group();
  bool wrong_curve() const;
  void export_session();
  Result read_client_hello();
  Result check_optional_client_certificate();
  Result translate(int ret, Op op);

  Result fatal(errc kind, int ret, std::error_code native, Op op);

  // The bio: the bytes read ahead by read_client_hello first, then the
  // transport. Every byte goes through the Transport (for fd transports:
  // recv/send with MSG_NOSIGNAL, EINTR retried), as in the OpenSSL engine.
  static int bio_send(void* p, const unsigned char* buf, std::size_t len);
  static int bio_recv(void* p, unsigned char* buf, std::size_t len);
  // bio_recv before the records are encrypted, or with bytes read ahead.
  [[gnu::noinline]] int ahead_or_transport_recv(unsigned char* buf, std::size_t len);
  int transport_recv(unsigned char* buf, std::size_t len);
  int raw_recv(unsigned char* buf, std::size_t len);
  int transport_send(const unsigned char* buf, std::size_t len);
  // Off the path where bytes move (the callbacks then need a smaller frame).
  [[gnu::noinline]] int would_block_or_failed(bool sending) const;

  // The config ssl_ points to; outlives ssl_. The core holds it for as long as the
  // engine lives (engine.hpp, BackendContext).
  MbedTlsContext* context_;
  Wire& wire_;
  mbedtls_ssl_context ssl_;
  bool set_up_ = false;       // mbedtls_ssl_setup done (a server waits for the hello)
  bool sent_ = false;         // mbedTLS wrote (or tried to) during the current step
  bool handshake_done_ = false;
  bool full_handshake_ = false;       // a Certificate message was due: no resumption
  bool ticket_received_ = false;      // client: the server sent a NewSessionTicket
  Reframer reframer_{MBEDTLS_SSL_IN_CONTENT_LEN};  // plaintext handshake messages, one record each
  std::vector<unsigned char> ahead_;  // read ahead by read_client_hello, not yet given to mbedTLS
  std::size_t ahead_offset_ = 0;
  std::uint16_t group_ = 0;           // the key exchange's group (note_group)
  SessionSink* sessions_;             // client with the session cache: where new sessions go
  KeyLogSink* keylog_;                // Config::keylog set: where the master secret goes
  // The engine whose handshake step runs on this thread, for the callbacks
  // mbedTLS does not tell the connection (on_keys, the session cache's).
  static thread_local MbedTlsEngine* stepping_engine;
  friend std::string_view stepping_server_name();
  friend void verified(const mbedtls_x509_crt* crt, int depth, std::uint32_t flags);
  // A rejected peer's chain, copied before mbedTLS frees it (verified): only
  // when a flag was set, nothing on an accepted handshake's way.
  std::uint32_t chain_flags_ = 0;
  std::vector<std::vector<std::byte>> rejected_chain_;
  bool unreadable_ = false;  // mbedTLS could not parse the peer's Certificate message (translate)
};

thread_local MbedTlsEngine* MbedTlsEngine::stepping_engine = nullptr;

void verified(const mbedtls_x509_crt* crt, int depth, std::uint32_t flags) {
  MbedTlsEngine* engine = MbedTlsEngine::stepping_engine;
  if (!engine) return;
  engine->chain_flags_ |= flags;
  if (depth != 0) return;
  if (engine->chain_flags_ != 0) {
    engine->rejected_chain_.clear();
    for (const mbedtls_x509_crt* c = crt; c && c->raw.len > 0; c = c->next) {
      const auto* p = reinterpret_cast<const std::byte*>(c->raw.p);
      engine->rejected_chain_.emplace_back(p, p + c->raw.len);
    }
  }
  engine->chain_flags_ = 0;
}

std::string_view stepping_server_name() {
  const MbedTlsEngine* engine = MbedTlsEngine::stepping_engine;
  return engine ? std::string_view(engine->requested_name_) : std::string_view();
}

bool MbedTlsEngine::setup(const mbedtls_ssl_config* conf) {
  if (mbedtls_ssl_setup(&ssl_, conf) != 0) return false;
  mbedtls_ssl_set_bio(&ssl_, this, &MbedTlsEngine::bio_send, &MbedTlsEngine::bio_recv, nullptr);
  set_up_ = true;
  return true;
}

bool MbedTlsEngine::init(const StoredSession* offer) {
  MbedTlsContext& c = *context_;
  if (c.role_ == Role::server) return true;  // read_client_hello sets it up

  if (!setup(&c.conf_)) return false;
  // Without a host name mbedTLS checks no name; verify_leaf checks every name.
  if (mbedtls_ssl_set_hostname(&ssl_, c.sni_.empty() ? nullptr : c.sni_.c_str()) != 0) return false;
  // mbedtls_ssl_set_session copies the session (mbedTLS shares none); the
  // cached one is only read, by any number of connections at once.
  if (offer && offer->native)
    (void)mbedtls_ssl_set_session(&ssl_, &static_cast<const Session*>(offer->native.get())->s);
  return true;
}

// Exports this client's session to the core's cache as an mbedtls_ssl_session
// (StoredSession::native), no bytes: saving it and loading it back for each
// connection parsed the server's certificate twice per resumption
// (docs/benchmarks.md).
void MbedTlsEngine::export_session() {
  auto session = std::make_shared<Session>();
  if (mbedtls_ssl_get_session(&ssl_, &session->s) != 0) return;
  sessions_->session_made({}, std::move(session));
}

// A server gathers the ClientHello from the transport before mbedTLS sees
// it (the core's scan_client_hello), for two things mbedTLS does its own way:
// - the server name is the core's to judge (docs/contract.md, "Server
//   names"): mbedTLS takes any bytes, and could only answer a refused name
//   with unrecognized_name, never decode_error. mbedTLS is given no f_sni
//   callback, so it ignores the extension; the name comes from the scan.
// - mbedTLS 2.28 answers a client that shares no ALPN protocol with the
//   server with a fatal no_application_protocol alert (ssl_parse_alpn_ext).
//   RFC 7301 3.2 allows that, but OpenSSL and GnuTLS servers here go on
//   without ALPN, and so must we: ssl_ is set up with the configuration that
//   fits the hello, without ALPN when there is no overlap (mbedTLS ignores
//   the client's extension then).
// The bytes are given to mbedTLS unchanged (the handshake transcript covers
// them).
Result MbedTlsEngine::read_client_hello() {
  const MbedTlsContext& c = *context_;
  for (;;) {
    const ClientHelloScan scan = scan_client_hello(ahead_, MBEDTLS_SSL_IN_CONTENT_LEN);
    if (scan.state != ClientHelloScan::State::need_more) {
      if (const HelloFault fault = scan.fault; fault != HelloFault::none) {
        // Set up all the same: the core sends the alert through ssl_.
        if (!setup(&c.conf_)) return Result::fail(errc::protocol_error, mbedtls_code(MBEDTLS_ERR_SSL_ALLOC_FAILED));
        return Result::answer(errc::protocol_error, make_error_code(fault), hello_alert(fault));
      }
      requested_name_ = scan.server_name;
      // Anything malformed or without the extension: with ALPN, and mbedTLS
      // decides (it ignores a missing extension, and rejects a bad hello).
      bool with_alpn = c.alpn_.empty() || scan.state == ClientHelloScan::State::malformed || !scan.has_alpn;
      for (const auto& offered : scan.alpn)
        with_alpn = with_alpn || std::find(c.alpn_.begin(), c.alpn_.end(), offered) != c.alpn_.end();
      if (!setup(with_alpn ? &c.conf_ : &c.conf_no_alpn_))
        return Result::fail(errc::protocol_error, mbedtls_code(MBEDTLS_ERR_SSL_ALLOC_FAILED));
      // The credential for this name (docs/contract.md, "Several
      // certificates"): mbedTLS documents mbedtls_ssl_set_hs_own_cert for
      // its SNI callback; it sets the handshake's certificate, which exists
      // from mbedtls_ssl_setup on.
      if (const std::size_t i = c.credential_for(requested_name_); i > 0) {
        OwnCredential& chosen = *c.credentials_[i];
        if (mbedtls_ssl_set_hs_own_cert(&ssl_, &chosen.chain, &chosen.key) != 0)
          return Result::fail(errc::protocol_error, mbedtls_code(MBEDTLS_ERR_SSL_ALLOC_FAILED));
      }
      return Result::ok();
    }
    unsigned char buf[4096];
    const int n = transport_recv(buf, sizeof buf);
    if (n > 0) {
      ahead_.insert(ahead_.end(), buf, buf + n);
      continue;
    }
    if (n == 0) return Result::of(Status::eof);
    return translate(n, Op::handshake);
  }
}

// client_auth optional (MBEDTLS_SSL_VERIFY_OPTIONAL): a certificate the
// client sent and mbedTLS could not verify fails the handshake as it would
// under REQUIRED, with the alert mbedTLS picks then
// (ssl_parse_certificate_verify in its ssl_tls.c); no certificate is no
// failure.
Result MbedTlsEngine::check_optional_client_certificate() {
  // (mbedtls_ssl_get_peer_cert answers only once the handshake is over.)
  if (ssl_.session_negotiate == nullptr || ssl_.session_negotiate->peer_cert == nullptr) return Result::ok();
  const std::uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_);
  if (flags == 0) return Result::ok();
  unsigned char alert = MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN;
  if (flags & MBEDTLS_X509_BADCERT_OTHER)
    alert = MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED;
  else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
    alert = MBEDTLS_SSL_ALERT_MSG_BAD_CERT;
  else if (flags & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
                    MBEDTLS_X509_BADCERT_NS_CERT_TYPE | MBEDTLS_X509_BADCERT_BAD_PK |
                    MBEDTLS_X509_BADCERT_BAD_KEY))
    alert = MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT;
  else if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
    alert = MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED;
  else if (flags & MBEDTLS_X509_BADCERT_REVOKED)
    alert = MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED;
  else if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
    alert = MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA;
  return Result::answer(errc::certificate_error, mbedtls_code(static_cast<int>(flags & INT_MAX)), alert);
}

Result MbedTlsEngine::handshake() {
  sent_ = false;
  if (!set_up_) {
    Result r = read_client_hello();
    if (r.status != Status::done) return r;
  }
  // Step by step rather than mbedtls_ssl_handshake, to see the states go by:
  // mbedTLS 2.28 has no "session reused" call, and a resumed handshake (RFC
  // 5246 7.3) goes from ServerHello straight to ChangeCipherSpec, never
  // through the server's Certificate, on both sides.
  while (ssl_.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
    if (ssl_.state == MBEDTLS_SSL_SERVER_CERTIFICATE) full_handshake_ = true;
    // A client reads a NewSessionTicket only when the ServerHello announced one.
    if (ssl_.state == MBEDTLS_SSL_SERVER_NEW_SESSION_TICKET) ticket_received_ = true;
    sent_ = false;  // per step: whether this step's failure already went out as an alert
    const int state = ssl_.state;
    stepping_engine = this;
    const int ret = mbedtls_ssl_handshake_step(&ssl_);
    stepping_engine = nullptr;
    if (ssl_.state == MBEDTLS_SSL_SERVER_CERTIFICATE) full_handshake_ = true;
    note_group();
    if (ret != 0) return translate(ret, Op::handshake);
    if (state == MBEDTLS_SSL_CLIENT_CERTIFICATE && context_->client_auth_ == ClientAuth::optional &&
        ssl_.state != state) {
      Result r = check_optional_client_certificate();
      if (r.status != Status::done) return r;
    }
    // RFC 8422 5.1 for a client that does not verify (verifying, mbedTLS
    // checks it itself and fails the step: translate).
    if (state == MBEDTLS_SSL_SERVER_CERTIFICATE && context_->role_ == Role::client &&
        wrong_curve())
      return Result::answer(errc::protocol_error, mbedtls_code(MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE),
                            MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER);
  }
  handshake_done_ = true;
  // A resumption without a new ticket makes no session.
  if (sessions_ && (full_handshake_ || ticket_received_)) export_session();
  return Result::ok();
}

// mbedTLS 2.28 has no call for the group of the key exchange: it is read
// from the ECDH context of the handshake while there is one (it goes with
// the handshake), once ServerKeyExchange is written or read.
// A client's peer: its ECDSA key is on a curve the groups do not list
// (RFC 8422 5.1: the server must not use it). OpenSSL fails that as a
// protocol error; so does every backend (docs/contract.md, "Cipher suites
// and groups").
bool MbedTlsEngine::wrong_curve() const {
  const mbedtls_x509_crt* peer =
      ssl_.session_negotiate ? ssl_.session_negotiate->peer_cert : nullptr;
  if (!peer || !peer->raw.p) return false;
  const auto der = std::as_bytes(std::span<const unsigned char>(peer->raw.p, peer->raw.len));
  return !server_key_allowed(der, context_->groups_);
}

void MbedTlsEngine::note_group() {
  if (!ssl_.handshake) return;
#if defined(MBEDTLS_ECDH_LEGACY_CONTEXT)
  const mbedtls_ecp_group_id id = ssl_.handshake->ecdh_ctx.grp.id;
#else
  const mbedtls_ecp_group_id id = ssl_.handshake->ecdh_ctx.grp_id;
#endif
  if (id == MBEDTLS_ECP_DP_NONE) return;
  if (const mbedtls_ecp_curve_info* info = mbedtls_ecp_curve_info_from_grp_id(id))
    group_ = info->tls_id;
}

Result MbedTlsEngine::read(std::span<std::byte> buf) {
  sent_ = false;
  // mbedTLS 2.28.3 consumes empty records, warning alerts and refused
  // HelloRequests inside mbedtls_ssl_read and goes on (measured), but its
  // renegotiation code documents WANT_READ returns after a non-application
  // record; the core calls again then, unless the transport was dry.
  const int ret = mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(buf.data()),
                                   std::min<std::size_t>(buf.size(), INT_MAX));
  if (ret > 0) return Result::ok(static_cast<std::size_t>(ret));
  // T13: 0 is the transport's EOF without close_notify, a truncation.
  if (ret == 0) return Result::of(Status::eof);
  return translate(ret, Op::read);
}

Result MbedTlsEngine::write(std::span<const std::byte> buf) {
  sent_ = false;
  // At most one record per call; after WANT_WRITE mbedTLS only flushes the
  // record it holds and reports the same count, as long as it is called
  // with the same bytes (the core does that).
  const std::size_t len = std::min<std::size_t>(buf.size(), INT_MAX);
  const int ret = mbedtls_ssl_write(&ssl_, reinterpret_cast<const unsigned char*>(buf.data()), len);
  if (ret > 0) return Result::ok(static_cast<std::size_t>(ret));
  return translate(ret, Op::write);
}

Result MbedTlsEngine::send_close_notify() {
  sent_ = false;
  // With a record still in the output buffer mbedtls_ssl_close_notify only
  // flushes it (out_left != 0), so the call after WANT_WRITE finishes the
  // same alert. A call after success would send a new one (T14); the core
  // never makes it.
  const int ret = mbedtls_ssl_close_notify(&ssl_);
  if (ret == 0) return Result::ok();
  return translate(ret, Op::close_notify);
}

void MbedTlsEngine::send_alert(std::uint8_t description) {
  // Before a ServerHello mbedTLS has no version yet and would write the
  // alert's record version as 0.0, which peers reject as a bad record
  // rather than read as the alert.
  if (ssl_.major_ver == 0) {
    ssl_.major_ver = MBEDTLS_SSL_MAJOR_VERSION_3;
    ssl_.minor_ver = MBEDTLS_SSL_MINOR_VERSION_3;
  }
  (void)mbedtls_ssl_send_alert_message(&ssl_, MBEDTLS_SSL_ALERT_LEVEL_FATAL, description);
}

Result MbedTlsEngine::translate(int ret, Op op) {
  switch (ret) {
    case MBEDTLS_ERR_SSL_WANT_READ:
      return Result::of(Status::want_read);
    case MBEDTLS_ERR_SSL_WANT_WRITE:
      return Result::of(Status::want_write);
    default:
      break;
  }
  // (A failure of ours whose alert could not go out stays what it was:
  // mbedTLS returns INVALID_MAC and the like after a failed
  // send_alert_message, and so is it reported.)
  switch (ret) {
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
      return Result::of(Status::close_notify, mbedtls_code(ret));
    case MBEDTLS_ERR_SSL_CONN_EOF:
      return Result::of(Status::eof);
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
      return Result::fail(errc::protocol_error, mbedtls_code(ret), true);
    case MBEDTLS_ERR_NET_CONN_RESET:
    case MBEDTLS_ERR_NET_RECV_FAILED:
    case MBEDTLS_ERR_NET_SEND_FAILED:
      return Result::fail(errc::transport_error, mbedtls_code(ret));
    default:
      break;
  }
  if (op == Op::handshake) {
    // mbedTLS's own RFC 8422 5.1 check (a verifying client, after the
    // chain verified) marks the key bad and nothing else, and drops the
    // certificate: the same protocol_error as on every backend, not a
    // certificate verdict (mbedTLS already sent its alert).
    if (ret == MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE && context_->role_ == Role::client &&
        mbedtls_ssl_get_verify_result(&ssl_) == MBEDTLS_X509_BADCERT_BAD_KEY)
      return fatal(errc::protocol_error, ret, mbedtls_code(ret), op);
    // Our own check of the peer's certificate failed (not the peer's check
    // of ours: that arrives as a fatal alert, above).
    if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)
      return fatal(errc::certificate_error, ret, mbedtls_code(ret), op);
    // The peer's Certificate message holds a certificate mbedTLS cannot
    // parse (an extension it does not know marked critical, nameConstraints,
    // a point or version it refuses): OpenSSL and GnuTLS judge such a
    // certificate in verification, so it is a rejected certificate here too
    // ("certificate rejected"), with the chain the message carried.
    if (failed_on_peer_certificate(ret)) {
      keep_chain_of_certificate_message();
      unreadable_ = true;
      return fatal(errc::certificate_error, ret, mbedtls_code(ret), op);
    }
    const std::uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_);
    const bool verified = context_->verify_peer_ && flags != 0 && flags != 0xFFFFFFFFu;
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
        (verified &&
         ret == MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE)) {  // key usage: flags set, this code
      return fatal(errc::certificate_error, ret,
                   verified ? mbedtls_code(static_cast<int>(flags & INT_MAX)) : mbedtls_code(ret),
                   op);
    }
  }
  // A bad record (INVALID_MAC, ...) or any other TLS failure.
  return fatal(errc::protocol_error, ret, mbedtls_code(ret), op);
}

// A failure of ours is answered with a fatal alert, as on every backend, so
// that the peer fails too instead of waiting (the core sends it). mbedTLS
// sends one itself for most (bad_record_mac, bad_certificate, unknown_ca,
// ...), but not for:
//   - a server that requires a client certificate and gets none (it expects
//     "the client to know what's going on"; the client would wait for our
//     Finished for ever): handshake_failure, what OpenSSL sends in TLS 1.2;
//   - a malformed record header (ssl_get_next_record just returns), or a
//     malformed ClientHello (ssl_parse_client_hello returns without alert):
//     unexpected_message for an unknown record type (RFC 5246 6.2.1 MUST),
//     record_overflow for a length beyond any record, protocol_version for
//     a foreign major version, decode_error for the rest.
// None is named when mbedTLS already wrote during this step (its own alert).
Result MbedTlsEngine::fatal(errc kind, int ret, std::error_code native, Op) {
  if (sent_) return Result::fail(kind, native);
  unsigned char alert = MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR;
  const unsigned char* hdr = ssl_.in_hdr;
  const bool have_header = hdr != nullptr && ssl_.in_left >= 5;
  const std::size_t record_len = have_header ? static_cast<std::size_t>(hdr[3]) << 8 | hdr[4] : 0;
  if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE) {
    alert = MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE;
  } else if (have_header && (hdr[0] < MBEDTLS_SSL_MSG_CHANGE_CIPHER_SPEC ||
                             hdr[0] > MBEDTLS_SSL_MSG_APPLICATION_DATA)) {
    alert = MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE;
  } else if (ret == MBEDTLS_ERR_SSL_BAD_INPUT_DATA ||
             record_len > MBEDTLS_SSL_IN_CONTENT_LEN + 2048) {
    alert = MBEDTLS_SSL_ALERT_MSG_RECORD_OVERFLOW;  // RFC 5246 6.2.3: 2^14 + 2048 at most
  } else if (have_header && hdr[1] != MBEDTLS_SSL_MAJOR_VERSION_3) {
    alert = MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION;
  } else if (ret == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE) {
    alert = MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE;
  }
  return Result::answer(kind, native, alert);
}

// ---- the bio ------------------------------------------------------------------------
//
// Every byte goes through the core's Wire; mbedTLS learns its answers as
// its own return codes.

int MbedTlsEngine::transport_recv(unsigned char* buf, std::size_t len) {
  len = std::min<std::size_t>(len, INT_MAX);
  for (;;) {
    if (reframer_.has_output()) return static_cast<int>(reframer_.take(buf, len));
    if (!reframer_.active()) {  // the encrypted phase: no copy
      if (!reframer_.released()) reframer_.release();
      return raw_recv(buf, len);
    }
    const std::span<unsigned char> room = reframer_.room();
    const int n = raw_recv(room.data(), room.size());
    reframer_.filled(static_cast<std::size_t>(std::max(n, 0)));
    if (n <= 0) return n;
  }
}

int MbedTlsEngine::raw_recv(unsigned char* buf, std::size_t len) {
  const std::ptrdiff_t n = wire_.read(std::span<std::byte>(reinterpret_cast<std::byte*>(buf), len));
  return n >= 0 ? static_cast<int>(n) : would_block_or_failed(false);
}

int MbedTlsEngine::transport_send(const unsigned char* buf, std::size_t len) {
  sent_ = true;
  len = std::min<std::size_t>(len, INT_MAX);
  const std::ptrdiff_t n =
      wire_.write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(buf), len));
  return n > 0 ? static_cast<int>(n) : would_block_or_failed(true);
}

// After the Wire returned -1.
int MbedTlsEngine::would_block_or_failed(bool sending) const {
  switch (wire_.stop()) {
    case Wire::Stop::would_block_read: return MBEDTLS_ERR_SSL_WANT_READ;
    case Wire::Stop::would_block_write: return MBEDTLS_ERR_SSL_WANT_WRITE;
    default: break;
  }
  const std::error_code& io = wire_.io_error();
  if (io == std::errc::connection_reset || (sending && io == std::errc::broken_pipe))
    return MBEDTLS_ERR_NET_CONN_RESET;
  return sending ? MBEDTLS_ERR_NET_SEND_FAILED : MBEDTLS_ERR_NET_RECV_FAILED;
}

int MbedTlsEngine::bio_recv(void* p, unsigned char* buf, std::size_t len) {
  auto* self = static_cast<MbedTlsEngine*>(p);
  // The records are encrypted and nothing read ahead is left (both for
  // good): straight to the Wire, as transport_recv would go.
  if (self->reframer_.released() && self->ahead_.empty()) [[likely]]
    return self->raw_recv(buf, std::min<std::size_t>(len, INT_MAX));
  return self->ahead_or_transport_recv(buf, len);
}

int MbedTlsEngine::ahead_or_transport_recv(unsigned char* buf, std::size_t len) {
  if (ahead_offset_ < ahead_.size()) {
    const std::size_t n = std::min({len, ahead_.size() - ahead_offset_, std::size_t{INT_MAX}});
    std::memcpy(buf, ahead_.data() + ahead_offset_, n);
    ahead_offset_ += n;
    if (ahead_offset_ == ahead_.size()) {
      ahead_.clear();
      ahead_.shrink_to_fit();
      ahead_offset_ = 0;
    }
    return static_cast<int>(n);
  }
  return transport_recv(buf, len);
}

int MbedTlsEngine::bio_send(void* p, const unsigned char* buf, std::size_t len) {
  return static_cast<MbedTlsEngine*>(p)->transport_send(buf, len);
}

std::size_t MbedTlsContext::engine_size() const { return sizeof(MbedTlsEngine); }

EnginePtr MbedTlsContext::make_engine(Wire& wire, EngineSetup& setup) {
  auto engine = setup.room.make<MbedTlsEngine>(*this, wire, setup.sessions, setup.keylog);
  if (!engine->init(setup.offer.get())) return nullptr;
  return engine;
}

// ---- configuration ----------------------------------------------------------------

bool MbedTlsContext::load_trust(const Prepared& prepared, std::string& message) {
  if (prepared.trust_pem.empty()) return true;
  // The anchors the core kept (ca_file, ca_pem or the system store). PEM
  // text: mbedtls_x509_crt_parse wants the terminating NUL counted. > 0:
  // that many certificates could not be parsed; the core read them all, so
  // mbedTLS should too, except in a system bundle, whose other
  // certificates still count.
  const int ret = mbedtls_x509_crt_parse(&ca_chain_, reinterpret_cast<const unsigned char*>(prepared.trust_pem.c_str()),
                                         prepared.trust_pem.size() + 1);
  if (ret < 0 || (ret > 0 && !prepared.trust_is_system)) {
    message = ret < 0 ? with_reason(prepared.trust_source + ": not usable", ret)
                      : prepared.trust_source + ": " + std::to_string(ret) +
                            " certificate(s) in it could not be parsed by mbedTLS";
    return false;
  }
  has_ca_ = ca_chain_.version != 0;
  return true;
}

namespace {

// CBC with PKCS#7 padding, the key the cipher's length: the plaintext, or
// empty when it does not decrypt (a wrong key shows as bad padding, or as
// DER the caller cannot parse).
std::vector<unsigned char> cbc_decrypt(const mbedtls_cipher_info_t* info, const unsigned char* key,
                                       const unsigned char* iv, std::size_t iv_size,
                                       std::span<const std::byte> ciphertext) {
  if (!info) return {};
  std::vector<unsigned char> plain(ciphertext.size() + info->block_size);
  std::size_t length = 0;
  mbedtls_cipher_context_t context;
  mbedtls_cipher_init(&context);
  const bool ok = mbedtls_cipher_setup(&context, info) == 0 &&
                  mbedtls_cipher_setkey(&context, key, static_cast<int>(info->key_bitlen), MBEDTLS_DECRYPT) == 0 &&
                  mbedtls_cipher_set_padding_mode(&context, MBEDTLS_PADDING_PKCS7) == 0 &&
                  mbedtls_cipher_crypt(&context, iv, iv_size, reinterpret_cast<const unsigned char*>(ciphertext.data()),
                                       ciphertext.size(), plain.data(), &length) == 0;
  mbedtls_cipher_free(&context);
  if (!ok) {
    mbedtls_platform_zeroize(plain.data(), plain.size());
    return {};
  }
  plain.resize(length);
  return plain;
}

// PBES2 (RFC 8018 6.2) with PBKDF2 and AES-CBC or DES-EDE3-CBC, decrypted
// with mbedTLS's own primitives: its PKCS#8 reader takes PBES2 with DES
// ciphers only (MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE for AES, OpenSSL's
// default), which the other stacks decrypt. The PrivateKeyInfo DER, or
// empty when it cannot be decrypted.
std::vector<unsigned char> decrypt_pbes2(const EncryptedKey& k, const std::string& password) {
  const mbedtls_md_type_t md = k.prf == "hmacWithSHA1"     ? MBEDTLS_MD_SHA1
                               : k.prf == "hmacWithSHA224" ? MBEDTLS_MD_SHA224
                               : k.prf == "hmacWithSHA256" ? MBEDTLS_MD_SHA256
                               : k.prf == "hmacWithSHA384" ? MBEDTLS_MD_SHA384
                               : k.prf == "hmacWithSHA512" ? MBEDTLS_MD_SHA512
                                                           : MBEDTLS_MD_NONE;
  const mbedtls_cipher_type_t cipher = k.cipher == "aes-128-cbc"    ? MBEDTLS_CIPHER_AES_128_CBC
                                       : k.cipher == "aes-192-cbc"  ? MBEDTLS_CIPHER_AES_192_CBC
                                       : k.cipher == "aes-256-cbc"  ? MBEDTLS_CIPHER_AES_256_CBC
                                       : k.cipher == "des-ede3-cbc" ? MBEDTLS_CIPHER_DES_EDE3_CBC
                                                                    : MBEDTLS_CIPHER_NONE;
  const mbedtls_md_info_t* md_info = mbedtls_md_info_from_type(md);
  const mbedtls_cipher_info_t* cipher_info = mbedtls_cipher_info_from_type(cipher);
  if (!md_info || !cipher_info) return {};
  const std::size_t key_bytes = cipher_info->key_bitlen / 8;
  if ((k.key_length != 0 && k.key_length != key_bytes) || k.iv.size() != cipher_info->iv_size ||
      k.iterations == 0)
    return {};
  unsigned char key[32];
  mbedtls_md_context_t hmac;
  mbedtls_md_init(&hmac);
  bool ok = mbedtls_md_setup(&hmac, md_info, 1) == 0 &&
            mbedtls_pkcs5_pbkdf2_hmac(&hmac, reinterpret_cast<const unsigned char*>(password.data()),
                                      password.size(), reinterpret_cast<const unsigned char*>(k.salt.data()),
                                      k.salt.size(), static_cast<unsigned>(k.iterations),
                                      static_cast<std::uint32_t>(key_bytes), key) == 0;
  mbedtls_md_free(&hmac);
  std::vector<unsigned char> plain;
  if (ok)
    plain = cbc_decrypt(cipher_info, key, reinterpret_cast<const unsigned char*>(k.iv.data()), k.iv.size(), k.ciphertext);
  mbedtls_platform_zeroize(key, sizeof key);
  return plain;
}

// PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 C) with the password as
// a BMPString of its UTF-8. The PrivateKeyInfo DER, or empty.
std::vector<unsigned char> decrypt_pkcs12(const EncryptedKey& k, const std::string& password) {
  if (k.cipher != "pbeWithSHAAnd3-KeyTripleDES-CBC" || k.iterations == 0 || k.iterations > INT_MAX) return {};
  std::vector<unsigned char> bmp = pkcs12_password(password);
  unsigned char key[24], iv[8];
  const auto* salt = reinterpret_cast<const unsigned char*>(k.salt.data());
  bool ok = mbedtls_pkcs12_derivation(key, sizeof key, bmp.data(), bmp.size(), salt, k.salt.size(), MBEDTLS_MD_SHA1,
                                      MBEDTLS_PKCS12_DERIVE_KEY, static_cast<int>(k.iterations)) == 0 &&
            mbedtls_pkcs12_derivation(iv, sizeof iv, bmp.data(), bmp.size(), salt, k.salt.size(), MBEDTLS_MD_SHA1,
                                      MBEDTLS_PKCS12_DERIVE_IV, static_cast<int>(k.iterations)) == 0;
  secure_wipe(bmp);
  std::vector<unsigned char> plain;
  if (ok) plain = cbc_decrypt(mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_DES_EDE3_CBC), key, iv, sizeof iv, k.ciphertext);
  mbedtls_platform_zeroize(key, sizeof key);
  return plain;
}

// The key of a credential, decrypted with its password.
int parse_key(const PreparedCredential& prepared, mbedtls_pk_context& key) {
  const auto* pem = reinterpret_cast<const unsigned char*>(prepared.key_pem.c_str());
  if (!prepared.key_password.empty()) {
    if (auto blocks = parse_pem(prepared.key_pem); blocks && !blocks->empty()) {
      const auto encrypted = encrypted_key(blocks->front());
      const bool pbes2 = encrypted && encrypted->scheme == KeyEncryption::pbes2;
      const bool pkcs12 = encrypted && encrypted->scheme == KeyEncryption::pkcs12 &&
                          encrypted->cipher == "pbeWithSHAAnd3-KeyTripleDES-CBC";
      if (pbes2 || pkcs12) {
        std::vector<unsigned char> der = pbes2 ? decrypt_pbes2(*encrypted, prepared.key_password)
                                               : decrypt_pkcs12(*encrypted, prepared.key_password);
        if (der.empty()) return MBEDTLS_ERR_PK_PASSWORD_MISMATCH;
        const int ret = mbedtls_pk_parse_key(&key, der.data(), der.size(), nullptr, 0);
        mbedtls_platform_zeroize(der.data(), der.size());
        return ret == 0 ? 0 : MBEDTLS_ERR_PK_PASSWORD_MISMATCH;
      }
    }
  }
  return mbedtls_pk_parse_key(&key, pem, prepared.key_pem.size() + 1,
                              reinterpret_cast<const unsigned char*>(prepared.key_password.data()),
                              prepared.key_password.size());
}

}  // namespace

bool MbedTlsContext::load_credential(const PreparedCredential& prepared, OwnCredential& own,
                                     std::string& message) {
  // PEM text: mbedTLS wants the terminating NUL counted. > 0: that many
  // certificates it could not parse (the core parsed them all).
  int ret = mbedtls_x509_crt_parse(&own.chain, reinterpret_cast<const unsigned char*>(prepared.chain_pem.c_str()),
                                   prepared.chain_pem.size() + 1);
  if (ret != 0) {
    message = config_message(prepared.certificate_source, "not usable", "mbedTLS",
                             ret < 0 ? strerror_text(ret) : std::to_string(ret) + " certificate(s) it cannot parse");
    return false;
  }
  ret = parse_key(prepared, own.key);
  if (ret != 0) {
    message = key_unusable_message(prepared, "mbedTLS", strerror_text(ret));
    return false;
  }
  ret = mbedtls_pk_check_pair(&own.chain.pk, &own.key);
  if (ret != 0) {
    message = key_mismatch_message(prepared, "mbedTLS", strerror_text(ret));
    return false;
  }
  return true;
}

bool MbedTlsContext::configure(mbedtls_ssl_config* conf, bool with_alpn, const Config& config,
                               std::string& message) {
  const int endpoint = role_ == Role::server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT;
  int ret = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) {
    message = with_reason("cannot set up an mbedTLS configuration", ret);
    return false;
  }
  mbedtls_ssl_conf_rng(conf, &MbedTlsContext::random, this);
  // TLS 1.2 only: max_version = tls1_3 is served with 1.2 (create() refused
  // min_version = tls1_3).
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  // No renegotiation (the default, made explicit): a HelloRequest or a
  // second ClientHello is refused with a no_renegotiation warning and the
  // read goes on.
  mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
  // Nothing is installed without Config::keylog (docs/contract.md, "Key log").
  if (config.keylog) mbedtls_ssl_conf_export_keys_ext_cb(conf, &MbedTlsEngine::on_keys, nullptr);
  // The suites and curves of the Selection, in its order; a server picks
  // by its own order (MBEDTLS_SSL_SRV_RESPECT_CLIENT_PREFERENCE is off),
  // as every backend does (docs/contract.md, "Cipher suites and groups").
  mbedtls_ssl_conf_ciphersuites(conf, suites_.data());
  mbedtls_ssl_conf_curves(conf, curves_.data());

  if (has_ca_) mbedtls_ssl_conf_ca_chain(conf, &ca_chain_, nullptr);
  if (verify_peer_) mbedtls_ssl_conf_verify(conf, &MbedTlsContext::verify_leaf, this);
  if (!credentials_.empty()) {
    ret = mbedtls_ssl_conf_own_cert(conf, &credentials_.front()->chain, &credentials_.front()->key);
    if (ret != 0) {
      message = with_reason("certificate_file '" + config.certificate_file + "': not usable", ret);
      return false;
    }
  }

  if (role_ == Role::server) {
    // OPTIONAL lets a client without a certificate in, but also one whose
    // certificate fails verification: the engine fails that one itself
    // (MbedTlsEngine::handshake).
    mbedtls_ssl_conf_authmode(conf, client_auth_ == ClientAuth::required   ? MBEDTLS_SSL_VERIFY_REQUIRED
                                    : client_auth_ == ClientAuth::optional ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                                                           : MBEDTLS_SSL_VERIFY_NONE);
    // Session-ID resumption (RFC 5246 7.4.1.2) from the core's store.
    mbedtls_ssl_conf_session_cache(conf, server_sessions_.get(), &MbedTlsContext::find_session,
                                   &MbedTlsContext::store_session);
  } else {
    mbedtls_ssl_conf_authmode(conf,
                              verify_peer_ ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);

  }

  if (with_alpn && !alpn_list_.empty()) {
    ret = mbedtls_ssl_conf_alpn_protocols(conf, alpn_list_.data());
    if (ret != 0) {
      message = with_reason("alpn: mbedTLS refused the protocol list", ret);
      return false;
    }
  }
  return true;
}

// The Selection as mbedTLS takes it: its suites are TLS 1.2 ones (the core
// left out TLS 1.3 ones for a stack without TLS 1.3), by code point.
bool MbedTlsContext::select(const Selection& selection, std::string& message) {
  for (const SuiteInfo* suite : selection.suites) {
    if (!mbedtls_ssl_ciphersuite_from_id(suite->code)) {
      message = unsupported_suite_message(*suite, "mbedtls", "not in this build of mbedTLS");
      init_error_ = errc::unsupported;
      return false;
    }
    suites_.push_back(suite->code);
  }
  suites_.push_back(0);
  for (const GroupInfo* group : selection.groups) {
    const mbedtls_ecp_curve_info* info = mbedtls_ecp_curve_info_from_tls_id(group->code);
    if (!info) {
      message = unsupported_group_message(*group, "mbedtls", "not in this build of mbedTLS");
      init_error_ = errc::unsupported;
      return false;
    }
    curves_.push_back(info->grp_id);
    groups_.push_back(group->code);
  }
  curves_.push_back(MBEDTLS_ECP_DP_NONE);
  return true;
}

bool MbedTlsContext::init(const Config& config, const Prepared& prepared, std::string& message) {
  if (!select(prepared.selection, message)) return false;
  // The core has checked the options and read the files (Prepared); what
  // is left is what only mbedTLS can tell: whether it can use them.

  // One DRBG per context, seeded once from the platform's entropy; mbedTLS
  // reseeds it from the same source as it goes.
  static const unsigned char personalization[] = "unitls mbedtls context";
  int ret = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, personalization,
                                  sizeof personalization - 1);
  if (ret != 0) {
    message = with_reason("cannot seed the random generator", ret);
    return false;
  }

  for (const PreparedCredential& credential : prepared.credentials) {
    credentials_.push_back(std::make_unique<OwnCredential>());
    if (!load_credential(credential, *credentials_.back(), message)) return false;
  }

  if (!load_trust(prepared, message)) return false;

  for (const auto& p : alpn_) alpn_list_.push_back(p.c_str());
  if (!alpn_list_.empty()) alpn_list_.push_back(nullptr);

  if (!configure(&conf_, true, config, message)) return false;
  if (role_ == Role::server && !alpn_.empty() && !configure(&conf_no_alpn_, false, config, message))
    return false;
  return true;
}

const char* mbedtls_library_version() {
  static const std::string version = [] {
    char buf[64] = {};  // "mbed TLS x.y.z": at least 18 bytes (version.h)
    mbedtls_version_get_string_full(buf);
    return std::string(buf);
  }();
  return version.c_str();
}

// ---- keys for make_credential (src/engine.hpp, EcdsaP256) ----------------------------

// A DRBG for one key or one signature, seeded from the entropy source.
class OneTimeRandom {
 public:
  OneTimeRandom() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    static const unsigned char personalization[] = "unitls make_credential";
    ret_ = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, personalization,
                                 sizeof personalization - 1);
  }
  ~OneTimeRandom() {
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  OneTimeRandom(const OneTimeRandom&) = delete;
  OneTimeRandom& operator=(const OneTimeRandom&) = delete;
  int seeded() const { return ret_; }
  mbedtls_ctr_drbg_context* drbg() { return &drbg_; }

 private:
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  int ret_ = 0;
};

bool mbedtls_generate_p256(std::vector<std::byte>& sec1, std::vector<std::byte>& point, std::string& message) {
  OneTimeRandom random;
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  int ret = random.seeded();
  if (ret == 0) ret = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (ret == 0)
    ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random, random.drbg());
  unsigned char buf[256];
  if (ret == 0) {
    // Written at the end of the buffer; the length is returned.
    ret = mbedtls_pk_write_key_der(&pk, buf, sizeof buf);
    if (ret > 0) {
      sec1.assign(reinterpret_cast<std::byte*>(buf + sizeof buf - ret), reinterpret_cast<std::byte*>(buf + sizeof buf));
      ret = 0;
    }
  }
  if (ret == 0) {
    point.resize(65);
    std::size_t len = 0;
    const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk);
    ret = mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &len,
                                         reinterpret_cast<unsigned char*>(point.data()), point.size());
    if (ret == 0 && len != 65) ret = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
  }
  mbedtls_platform_zeroize(buf, sizeof buf);
  mbedtls_pk_free(&pk);
  if (ret != 0) message = strerror_text(ret);
  return ret == 0;
}

bool mbedtls_sign_p256(std::span<const std::byte> sec1, std::span<const std::byte> digest,
                       std::vector<std::byte>& signature, std::string& message) {
  OneTimeRandom random;
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  int ret = random.seeded();
  if (ret == 0)
    ret = mbedtls_pk_parse_key(&pk, reinterpret_cast<const unsigned char*>(sec1.data()), sec1.size(), nullptr, 0);
  if (ret == 0) {
    unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    std::size_t len = 0;
    ret = mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, reinterpret_cast<const unsigned char*>(digest.data()),
                          digest.size(), sig, &len, mbedtls_ctr_drbg_random, random.drbg());
    if (ret == 0) signature.assign(reinterpret_cast<std::byte*>(sig), reinterpret_cast<std::byte*>(sig + len));
  }
  mbedtls_pk_free(&pk);
  if (ret != 0) message = strerror_text(ret);
  return ret == 0;
}

constexpr EcdsaP256 mbedtls_ecdsa_p256{&mbedtls_generate_p256, &mbedtls_sign_p256};

}  // namespace

// TLS 1.2 only (MBEDTLS_SSL_PROTO_TLS1_3_EXPERIMENTAL is off in Debian's
// build). A client's ClientHello must fit one record of the output buffer
// (MBEDTLS_SSL_OUT_CONTENT_LEN, 16 KiB): measured, a 16256-byte ALPN list
// fails every handshake with BUFFER_TOO_SMALL; 1 KiB is kept for the rest of
// the hello (suites, SNI, groups).
extern const BackendEntry mbedtls_backend{
    "mbedtls", &make_context<MbedTlsContext>, &mbedtls_library_version,
    Capabilities{.tls1_3 = false,
                 .max_alpn_list = MBEDTLS_SSL_OUT_CONTENT_LEN - 1024,
                 // PBES2 with AES through decrypt_pbes2; no scrypt.
                 .key_encryptions = key_encryption_bit(KeyEncryption::legacy_pem) |
                                    key_encryption_bit(KeyEncryption::pkcs12) |
                                    key_encryption_bit(KeyEncryption::pbes2)},
    &mbedtls_ecdsa_p256};

}  // namespace unitls::detail
