// The backend interface: what a TLS stack must provide to the core.
//
// An Engine moves records for one connection and reports what happened in a
// small vocabulary. It holds no policy: it never decides what a second
// shutdown means, never latches errors, never tracks SENT/RECEIVED. The
// SocketCore (socket_core.cpp) does all of that once, for every backend.
//
// Each backend lives in backends/<name>/ and exposes exactly one constant,
// <name>_backend (a BackendEntry), listed in the registry Meson generates
// (docs/adding-a-backend.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <unitls/context.hpp>
#include <unitls/error.hpp>
#include <unitls/transport.hpp>

#include "wipe.hpp"

#include "keylog.hpp"
#include "suites.hpp"

namespace unitls::detail {

class Wire;                // wire.hpp
class ServerSessionStore;  // session_cache.hpp

// A session as its stack serialises it, or a session ID (opaque to the core).
using SessionBytes = std::vector<unsigned char>;

// A session as the caches keep it: the stack's bytes, or the stack's own
// object for it (native), or both; what is there is the business of the
// backend that made it (OpenSSL keeps its SSL_SESSION and no bytes:
// serialising and parsing one, certificate included, cost more than a
// resumed handshake, docs/benchmarks.md). Opaque to the core; immutable once
// stored.
struct StoredSession {
  SessionBytes bytes;
  std::shared_ptr<void> native;
};

// An empty error_code without the out-of-line std::system_category() call
// of its default constructor (once per process, then a load): Result::ok()
// and the Wire make one on every read and write.
inline std::error_code no_error() noexcept {
  static const std::error_category& system = std::system_category();
  return std::error_code(0, system);
}

// What one engine step came to.
enum class Status {
  done,          // the step completed (bytes moved for read/write)
  want_read,     // the stack wants to be called again (the core tells "the transport has
                 // nothing now" from "the stack stopped on its own" by the Wire)
  want_write,    // likewise, for the other direction (the stack's own idea of which)
  close_notify,  // the peer's close_notify was processed (what it means is the core's rule:
                 // the end of the data for a read, a failure for a handshake)
  eof,           // the transport ended without close_notify (a truncation when reading)
  failed,        // fatal: Result::kind says which errc, Result::native why
};

struct Result {
  Status status = Status::done;
  std::size_t bytes = 0;  // read/write with Status::done: > 0
  // Status::failed: transport_error (the stack says its transport failed;
  // the core takes the cause from the Wire), protocol_error or
  // certificate_error.
  errc kind = errc::protocol_error;
  std::error_code native = no_error();  // the library's own code (its category) or an errno
  // Status::failed with protocol_error: true when the cause is a fatal alert
  // the peer sent (as opposed to a bad record we rejected ourselves).
  bool peer_alert = false;
  // Status::failed: the fatal alert that answers this failure when the
  // stack did not send one itself (-1: none needed). The core decides
  // whether it goes out (Engine::send_alert).
  int alert = -1;

  static Result ok(std::size_t n = 0) { return {Status::done, n, errc::protocol_error, no_error(), false, -1}; }
  static Result of(Status s) { return {s, 0, errc::protocol_error, no_error(), false, -1}; }
  static Result of(Status s, std::error_code native) {
    return {s, 0, errc::protocol_error, native, false, -1};
  }
  static Result fail(errc kind, std::error_code native, bool peer_alert = false) {
    return {Status::failed, 0, kind, native, peer_alert, -1};
  }
  static Result answer(errc kind, std::error_code native, int alert) {
    return {Status::failed, 0, kind, native, false, alert};
  }
};

// The KeyUpdate flood limit (RFC 8446 4.6.3 sets none): GnuTLS 3.7 fails a
// connection whose peer sends more than 8 KeyUpdates within 1000 ms of the
// first (lib/tls13/key_update.c), and cannot be told otherwise. Every other
// backend enforces the same limit with this counter, and answers the flood
// with an unexpected_message alert (docs/contract.md, "Hostile peers").
class KeyUpdateLimit {
 public:
  static constexpr int per_window = 8;
  static constexpr std::chrono::milliseconds window{1000};

  // One KeyUpdate received at `now`; false once the limit is passed.
  bool received(std::chrono::steady_clock::time_point now) {
    if (count_ == 0 || now - window_start_ > window) {
      window_start_ = now;
      count_ = 0;
    }
    return ++count_ <= per_window;
  }

 private:
  std::chrono::steady_clock::time_point window_start_{};
  int count_ = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // One handshake step: done when the handshake is complete.
  virtual Result handshake() = 0;
  // Reads application data into buf (never empty). Post-handshake messages
  // (tickets, KeyUpdate) are consumed here and never reported; a stack that
  // answers "nothing yet" after one (GnuTLS trap T11) is called again by the
  // core until the transport itself has nothing more.
  virtual Result read(std::span<std::byte> buf) = 0;
  // Writes some or all of buf (never empty). After want_write the core calls
  // again with the same bytes.
  virtual Result write(std::span<const std::byte> buf) = 0;
  // Produces and flushes our close_notify. The core calls it once, and again
  // only after want_write (to finish the flush): done means the alert is
  // fully on the transport. It must never produce a second alert.
  virtual Result send_close_notify() = 0;
  // Sends a fatal alert with this description (RFC 5246 7.2), best effort:
  // the core calls it after a failure whose Result named one.
  virtual void send_alert(std::uint8_t description) = 0;

  // Facts about the established connection.
  virtual std::string protocol_version() const = 0;
  virtual std::string cipher() const = 0;
  // The IANA code point of the group this handshake's key exchange used
  // (0: none, or before the handshake). The core names it (group()).
  virtual std::uint16_t group() const = 0;
  virtual std::string alpn_selected() const = 0;
  virtual bool session_reused() const = 0;
  // Application data already decrypted and held by the stack: what read()
  // can return without touching the transport.
  virtual std::size_t pending() const = 0;
  // Server, after the handshake: the session ID under which the stack put
  // (or found) this connection's session in the ServerSessionStore; empty
  // when none (a TLS 1.3 stateless ticket). A view into the stack's own
  // session (no copy: read at once, before the next call on the engine).
  virtual std::span<const unsigned char> server_session_id() const = 0;

  // After the handshake: the DER of each certificate the peer sent in its
  // Certificate message, in the order sent, leaf first (empty: none). On a
  // resumed handshake, what the stack kept of the original one (the core
  // keeps only the leaf of it: docs/contract.md, "Who is on the other end").
  // Also after a handshake that failed with certificate_error: the
  // certificates of the rejected peer, for diagnostics (the engine keeps
  // them). Never called before the handshake completed or failed so.
  virtual std::vector<std::vector<std::byte>> peer_chain() const = 0;
  // After a handshake that failed with certificate_error: why, as
  // CertificateIssue bits (verify.hpp) mapped from the stack's own
  // verification result and the PeerVerdict it reported; 0 when the stack
  // says nothing (no certificate came). Asked only then, so the stack's
  // result is read only then: nothing on a handshake's way.
  virtual unsigned certificate_issues() const = 0;
  // Server, after the handshake: the SNI host_name of this handshake's
  // ClientHello ("" none).
  virtual std::string requested_server_name() const = 0;
  // The stack's own object for the connection (docs/backend-notes.md,
  // "native_handle()").
  virtual void* native_handle() const = 0;

  // Called once when the socket is destroyed. closed_properly is the RFC 2246
  // rule: SENT was set and the connection is not dead (a stack that keeps a
  // server session-ID cache of its own drops the session when it is false).
  virtual void end(bool closed_properly) = 0;
};

// Where a client engine reports each session its stack makes: the end of a
// full TLS 1.2 handshake, a NewSessionTicket (TLS 1.3, or a new TLS 1.2
// ticket on a resumption). Never a session it was given: a resumption
// without a new ticket makes none. What becomes of it is the core's rule
// (session_cache.hpp).
class SessionSink {
 public:
  // native: the stack's object for the same session (StoredSession), or null.
  virtual void session_made(std::span<const unsigned char> session,
                            std::shared_ptr<void> native) = 0;

 protected:
  ~SessionSink() = default;
};

// An engine as the core holds it: in the room the core keeps for it inside
// the connection's own object (EngineRoom), or on the heap.
struct EngineDeleter {
  bool in_room = false;
  void operator()(Engine* e) const noexcept {
    if (in_room) {
      e->~Engine();
    } else {
      delete e;
    }
  }
};
using EnginePtr = std::unique_ptr<Engine, EngineDeleter>;

// Room for the engine inside the connection's own allocation: one
// allocation per connection, not two (docs/benchmarks.md). Its size is what
// the backend's engine_size() said; make() falls back to the heap when the
// engine does not fit (a backend that declares nothing).
class EngineRoom {
 public:
  EngineRoom() = default;
  EngineRoom(void* data, std::size_t size) : data_(data), size_(size) {}

  template <class T, class... Args>
  std::unique_ptr<T, EngineDeleter> make(Args&&... args) {
    if (sizeof(T) <= size_ && alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      T* engine = ::new (data_) T(std::forward<Args>(args)...);
      size_ = 0;  // taken
      return std::unique_ptr<T, EngineDeleter>(engine, EngineDeleter{true});
    }
    return std::unique_ptr<T, EngineDeleter>(new T(std::forward<Args>(args)...), EngineDeleter{false});
  }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

// What the core gives an engine for one connection besides its transport.
struct EngineSetup {
  // Client with the session cache on: the session to offer (null: none),
  // imported before the first handshake step, and where new ones go (null:
  // no cache; the engine exports nothing).
  std::shared_ptr<const StoredSession> offer;
  SessionSink* sessions = nullptr;
  // Config::keylog is set: where the engine reports each secret its stack
  // derives (null: the engine installs nothing in its stack).
  KeyLogSink* keylog = nullptr;
  // Where the engine is made (room.make<T>(...)).
  EngineRoom room;
};

// A backend's per-Config state (SSL_CTX, credentials, server session keys).
class BackendContext {
 public:
  virtual ~BackendContext() = default;
  // wire: the connection's transport, owned by the core; it outlives the
  // engine.
  // The engine is made with setup.room.make<T>(...). The core keeps this
  // context alive for as long as the engine lives (SocketCore holds it),
  // so an engine may keep a plain pointer to it.
  virtual EnginePtr make_engine(Wire& wire, EngineSetup& setup) = 0;
  // sizeof the engine make_engine makes: the core keeps that much room for
  // it in the connection's own object (0: none, the engine goes on the heap).
  virtual std::size_t engine_size() const { return 0; }
};

// What a stack can take, declared by its backend and checked by the core in
// Context::create: a Config beyond it is errc::unsupported with a message
// naming the limit, never a failure later (docs/contract.md, "Limits").
struct Capabilities {
  bool tls1_3 = true;
  std::size_t max_alpn_name = 255;             // bytes in one ALPN protocol name
  std::size_t max_alpn_protocols = 0xffff;     // names in the ALPN list
  std::size_t max_alpn_list = 0xffff;          // client: the list's bytes on the wire (RFC 7301 3.1)
  // Bytes a protocol name cannot hold (RFC 7301 allows any but NUL, which
  // the core refuses on every backend): the stack takes a comma-separated
  // list.
  std::string_view alpn_name_excludes{};
  // Encrypted private keys it can decrypt (KeyEncryption, private_key.hpp):
  // one bit per scheme.
  unsigned key_encryptions = ~0u;
  // Config::keylog on a connection that may negotiate TLS 1.3: the stack
  // hands over the TLS 1.3 secrets (a wolfSSL built without
  // HAVE_SECRET_CALLBACK cannot).
  bool keylog_tls1_3 = true;
  // Certificates in BER, not DER (a length longer than it needs): the stack
  // reads them, its own and its peer's (wolfSSL's parser does not).
  bool ber_certificates = true;
};

// What the core made of the Config before the backend sees it: the rules
// that are not a stack's business are applied here, once. Backends load
// what is here, never the files again.
// One certificate chain and its key, as the core read them from the files or
// the PEM text of the Config (or of one of its additional_credentials).
struct PreparedCredential {
  PreparedCredential() = default;
  PreparedCredential(PreparedCredential&&) = default;
  PreparedCredential& operator=(PreparedCredential&&) = default;
  ~PreparedCredential() {
    secure_wipe(key_pem);
    secure_wipe(key_password);
  }

  // The CERTIFICATE blocks (PEM text): the leaf and its issuers, in
  // issuance order.
  std::string chain_pem;
  // The private key block as found: encrypted when key_password is set
  // (the stack decrypts it), plain otherwise.
  std::string key_pem;
  std::string key_password;
  // What messages call them: "certificate_file 'c.pem'", "certificate_pem",
  // "additional_credentials[0].private_key_file 'k.pem'", ...
  std::string certificate_source;
  std::string key_source;
};

// A server's choice among its credentials by the client's SNI
// (docs/contract.md, "Several certificates"): the first whose leaf names
// the host (the RFC 6125 rule of verification), the main one otherwise.
class CredentialChooser {
 public:
  explicit CredentialChooser(const std::vector<PreparedCredential>& credentials);
  ~CredentialChooser();
  CredentialChooser(const CredentialChooser&) = delete;
  CredentialChooser& operator=(const CredentialChooser&) = delete;
  // An index into Prepared::credentials; 0 for no SNI.
  std::size_t choose(std::string_view server_name) const;

 private:
  struct Leaf;
  std::vector<std::unique_ptr<Leaf>> leaves_;
};

struct Prepared {
  // [0]: certificate_file/_pem and private_key_file/_pem; then a server's
  // additional_credentials, in order. Empty without a certificate.
  std::vector<PreparedCredential> credentials;
  // A server with additional_credentials: which one a ClientHello gets.
  std::shared_ptr<const CredentialChooser> chooser;
  // The trust anchors (PEM text): only the self-signed and CA certificates
  // of ca_file or ca_pem, or, when neither is given and the peer is
  // verified, of the system trust store (found by the core, the same way
  // for every backend: docs/contract.md, "Verification"). Empty: nothing is
  // verified.
  std::string trust_pem;
  std::string trust_source;     // "ca_file 'a.pem'", "ca_pem", "the system trust store (path)"
  bool trust_is_system = false;  // a system bundle may hold certificates a stack cannot parse
  // Client: the name to send in SNI (RFC 6066 3: host names only, never an
  // IP literal); empty for none. The peer's name is checked by the core
  // (check_peer_leaf), never by the stack.
  std::string sni;
  bool server_name_is_ip = false;
  // Server: the session-ID cache the stack's cache hooks store into and
  // look up (the core removes what the RFC 2246 rule takes away).
  std::shared_ptr<ServerSessionStore> server_sessions;
  // cipher_suites and groups, checked and in preference order (the uniform
  // default when empty), and the versions to negotiate: the Config's,
  // narrowed to those the suites leave. Backends take the versions from
  // here, never from the Config, and answer a suite or group their stack
  // cannot do with errc::unsupported (unsupported_suite_message).
  Selection selection;
};

// "<source>: <what> (<stack>: <why>)": the words every backend uses for
// what only its stack can tell about the configuration (docs/contract.md,
// "Configuration files"); source is a PreparedCredential's or the trust's.
std::string config_message(std::string_view source, std::string_view what, std::string_view stack = {},
                           std::string_view why = {});
// The key does not belong to the certificate.
std::string key_mismatch_message(const PreparedCredential& credential, std::string_view stack = {},
                                 std::string_view why = {});
// The stack could not read the key: with a password, it could not decrypt
// it (a wrong password, most likely).
std::string key_unusable_message(const PreparedCredential& credential, std::string_view stack = {},
                                 std::string_view why = {});

// Whether this side verifies the peer's certificate: a client with
// verify_peer, a server that asks for client certificates (client_auth).
inline bool verifies_peer(const Config& config) {
  return config.role == Role::client ? config.verify_peer : config.client_auth != ClientAuth::none;
}

// What every backend's context keeps of the Config and of the Prepared, in
// one base (the names end in _ as members do).
struct ContextFacts {
  ContextFacts(const Config& config, const Prepared& prepared)
      : role_(config.role),
        verify_peer_(verifies_peer(config)),
        client_auth_(config.role == Role::server ? config.client_auth : ClientAuth::none),
        server_name_(config.server_name),
        sni_(prepared.sni),
        server_name_is_ip_(prepared.server_name_is_ip),
        server_sessions_(prepared.server_sessions),
        chooser_(prepared.chooser) {}

  Role role_;
  bool verify_peer_;         // verifies_peer(): a certificate the peer sends is verified
  ClientAuth client_auth_;   // server: none, optional or required
  std::string server_name_;  // checked on the peer's certificate (check_peer_leaf)
  std::string sni_;          // client: sent in SNI (Prepared::sni)
  bool server_name_is_ip_;
  std::shared_ptr<ServerSessionStore> server_sessions_;  // server: the session-ID cache
  std::shared_ptr<const CredentialChooser> chooser_;    // server with additional_credentials

  // Server: the index in Prepared::credentials for this SNI host name.
  std::size_t credential_for(std::string_view server_name) const {
    return chooser_ ? chooser_->choose(server_name) : 0;
  }
  // What a failed init() means: invalid_argument, or unsupported for what
  // the stack cannot do (a suite or group it lacks).
  errc init_error_ = errc::invalid_argument;
};

// The one factory each backend provides. The core has checked the Config
// (files readable and PEM, names, limits); on what only the stack can tell
// (a key that does not match its certificate, ...) it returns nullptr, sets
// ec (invalid_argument) and *message naming the culprit.
using ContextFactory = std::shared_ptr<BackendContext> (*)(const Config& config,
                                                          const Prepared& prepared,
                                                          std::error_code& ec,
                                                          std::string& message);

// The factory's common shape: a backend context built from the Config and
// the Prepared and initialised by its init(config, prepared, message); a
// failed init is its init_error_ (invalid_argument unless it said
// otherwise), with init's message.
template <class BackendT>
std::shared_ptr<BackendContext> make_context(const Config& config, const Prepared& prepared,
                                             std::error_code& ec, std::string& message) {
  auto context = std::make_shared<BackendT>(config, prepared);
  if (!context->init(config, prepared, message)) {
    ec = make_error_code(context->init_error_);
    return nullptr;
  }
  ec.clear();
  message.clear();
  return context;
}

// What a backend publishes, in one constant each backend defines as
// `extern const BackendEntry <name>_backend` (the registry Meson generates
// lists them). Constant-initialised: no order of static initialisation.
// ECDSA P-256 with a stack's own crypto, for certificates made in-process
// (make_credential, src/make_credential.cpp: the core writes the
// certificate, the stack makes the key and signs). A backend may leave it
// out; make_credential then uses another compiled-in backend.
struct EcdsaP256 {
  // A new key: its SEC1 ECPrivateKey DER (RFC 5915) and its public point,
  // uncompressed (0x04, X, Y: 65 bytes). False with a message on failure.
  bool (*generate)(std::vector<std::byte>& sec1, std::vector<std::byte>& point, std::string& message);
  // The ECDSA-Sig-Value DER (RFC 3279 2.2.3) of a SHA-256 digest, signed
  // with a key in SEC1 DER.
  bool (*sign)(std::span<const std::byte> sec1, std::span<const std::byte> digest,
               std::vector<std::byte>& signature, std::string& message);
};

struct BackendEntry {
  std::string_view name;
  ContextFactory create;  // usually &make_context<ItsContext>
  const char* (*library_version)();
  Capabilities capabilities;
  const EcdsaP256* ecdsa_p256 = nullptr;  // null: this backend makes no keys
};

// The compiled-in backends (registry.cpp, generated by Meson).
std::span<const BackendEntry* const> backend_registry() noexcept;
std::string_view registry_default_backend() noexcept;

}  // namespace unitls::detail
