// SecureSocket: one TLS connection, identical on every backend.
//
// The full contract is docs/contract.md (shipped as the README's table). In
// short: every call that fails returns -1 (read() may return 0) and leaves
// the reason in last_error(); a successful call clears it. Whether a call
// can answer want_read / want_write is decided by the transport: a blocking
// transport never does. After want_* repeat the same call (for write(), with
// the same remaining bytes).
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <optional>
#include <vector>

#include <unitls/certificate.hpp>

#include <unitls/error.hpp>

namespace unitls {

inline constexpr unsigned sent_shutdown = 1;      // SSL_SENT_SHUTDOWN
inline constexpr unsigned received_shutdown = 2;  // SSL_RECEIVED_SHUTDOWN

class UNITLS_API SecureSocket {
 public:
  virtual ~SecureSocket();

  // Runs (or continues) the handshake. 1 when complete (again 1 if called
  // after that); -1 with want_read / want_write, certificate_error (the
  // peer's certificate or name was rejected: the connection is dead),
  // protocol_error, transport_error or unexpected_eof.
  virtual int handshake() = 0;

  // Application data. > 0 bytes read; 0 at the end of data: zero_return
  // (the peer's close_notify; sticky) or, only with
  // Config::require_close_notify == false, unexpected_eof. -1 with
  // want_read, not_connected, or the sticky error of a dead connection
  // (unexpected_eof, transport_error, protocol_error, certificate_error).
  // Post-handshake messages (TLS 1.3 tickets, KeyUpdate) never surface.
  virtual std::ptrdiff_t read(std::span<std::byte> buf) = 0;

  // Blocking transport: returns buf.size() once all bytes are accepted.
  // Non-blocking: a positive count (possibly fewer than asked) or -1 with
  // want_write; then repeat with the remaining bytes. -1 with
  // connection_closed after SENT is set, not_connected, or the sticky error.
  virtual std::ptrdiff_t write(std::span<const std::byte> buf) = 0;

  // OpenSSL's SSL_shutdown: 0 (our close_notify sent, the peer's not yet
  // received), 1 (both; or quiet shutdown), -1 with want_read, want_write,
  // data_pending (application data arrived first; read() it, then call
  // again), write_pending, not_connected or the sticky error.
  virtual int shutdown() = 0;

  // GSKit's one-step close: sends our close_notify once, never waits. Empty
  // on success; already_sent, want_write, write_pending, not_connected or
  // the sticky error otherwise. Never puts a second alert on the wire.
  virtual std::error_code send_close_notify() = 0;

  // sent_shutdown | received_shutdown as they stand.
  virtual unsigned get_shutdown() const = 0;
  // Adds flags without sending anything. Flags only grow.
  virtual void set_shutdown(unsigned mode) = 0;
  // Quiet: shutdown() returns 1 at once, sends nothing, sets both flags.
  virtual void set_quiet_shutdown(bool on) = 0;
  virtual bool get_quiet_shutdown() const = 0;

  // The error of the last call that failed; empty after a call that succeeded.
  virtual std::error_code last_error() const = 0;
  // The backend library's own error behind last_error() (category
  // "unitls.<backend>" or std::system_category), for diagnostics.
  virtual std::error_code native_error() const = 0;

  // Facts about the established connection ("" before the handshake).
  virtual std::string_view backend() const = 0;          // "openssl", "mbedtls", "gnutls"
  virtual std::string protocol_version() const = 0;      // "TLSv1.2" / "TLSv1.3"
  virtual std::string cipher() const = 0;                // IANA name, e.g. "TLS_AES_128_GCM_SHA256"
  // The group of this handshake's key exchange, by its IANA name ("x25519",
  // "secp256r1", ...); "" when there was none (a resumed TLS 1.2 handshake).
  virtual std::string group() const = 0;
  virtual std::string alpn_selected() const = 0;         // "" when none
  virtual bool session_reused() const = 0;

  // ---- who is on the other end (docs/contract.md, "Who is on the other end") ----
  // After a completed handshake: the certificates the peer sent, in the
  // order sent, leaf first, described by unitls itself (the same strings on
  // every backend). A resumed handshake sends none: its peer_chain() is the
  // leaf of the handshake that made the session, alone. After a handshake
  // that failed with certificate_error (this side rejected the peer's
  // certificate): the certificates that peer sent, for diagnostics only,
  // not trusted. Empty (nullopt) otherwise before the handshake completes,
  // and when the peer sent no certificate (a client that was not asked for
  // one).
  virtual std::optional<Certificate> peer_certificate() const = 0;
  virtual std::vector<Certificate> peer_chain() const = 0;
  // Why this side rejected the peer's certificate, after a handshake that
  // failed with certificate_error; "" when the certificate was accepted or
  // not verified. The same words on every backend for the same certificate
  // (docs/contract.md, "Verification"), e.g. "certificate names
  // DNS:localhost, IP:127.0.0.1, not example.com".
  virtual std::string verification_error() const = 0;
  // Server, after a completed handshake: the host name the client asked for
  // with SNI in this handshake's ClientHello ("" none).
  virtual std::string requested_server_name() const = 0;
  // The stack's own object for this connection, for what unitls does not
  // offer: SSL* (OpenSSL), gnutls_session_t (GnuTLS), mbedtls_ssl_context*
  // (mbedTLS). docs/backend-notes.md, "native_handle()", says what a caller
  // may touch without breaking the contract (reading facts: yes; reading,
  // writing, shutting down or changing its I/O: never).
  virtual void* native_handle() const = 0;

  // ---- time and event loops (docs/contract.md, "Time") ----
  // This socket's limit for each blocking call, from the call's start: a
  // handshake(), read(), write() or shutdown() that cannot finish in time
  // returns -1 with timed_out, leaving the connection as a want_read /
  // want_write would (repeat the call, or give up and close). 0: no limit.
  // Non-blocking transports never time out: the event loop owns time.
  virtual void set_timeout(std::chrono::milliseconds timeout) = 0;
  // Plaintext bytes read() returns without touching the transport (already
  // decrypted, or kept by a shutdown() that met data); 0 when none. An event
  // loop reads these before it waits for readability.
  virtual std::size_t pending() const = 0;

  // How close() ended.
  enum class CloseResult {
    clean,        // both close_notify exchanged (SENT|RECEIVED)
    peer_silent,  // ours went out; the peer's did not come within the limit (SENT)
    truncated,    // the peer's transport ended without close_notify
    failed,       // anything else: last_error() says what
  };
  // The common close in one call, blocking or not: sends our close_notify
  // and waits up to `limit` for the peer's (data that arrives first is
  // discarded), like curl's blocking shutdown. On a non-blocking fd it waits
  // with poll(); a transport without an fd cannot be waited on, so it gets
  // what is there now. SENT is set in every case but failed before it was
  // sent, so a socket destroyed after close() has closed properly.
  virtual CloseResult close(std::chrono::milliseconds limit = std::chrono::seconds(2)) = 0;

  // ---- conveniences, built on the calls above ----
  std::ptrdiff_t write(std::string_view text) {
    return write(std::as_bytes(std::span<const char>(text.data(), text.size())));
  }
  // Appends what one read() returned to *out; same return value as read().
  std::ptrdiff_t read(std::string& out);
};

}  // namespace unitls
