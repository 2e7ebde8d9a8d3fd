// Shared helpers for the conformance tests (every backend, same sources).
//
// What is here, in short:
//   cert_path(), backend_under_test(), client_config(), server_config(),
//   supports(), skip(), skip_unless_supported()
//                                         — configuration and (counted) skipping;
//   all_versions, versions_and_closers()  — the {TLS 1.2, TLS 1.3} x {client, server closes} loop;
//   MemoryConn, open_memory(), complete_handshake(), handshake_state(), exchange(),
//   connect_memory()                      — a connected pair over the in-memory transport;
//   Outcome, outcome(), success(), failure(), end_of_data()
//                                         — "return value + last_error()" in one comparable value;
//   pump(), write_all(), read_exact(), read_available()
//                                         — driving calls over a non-blocking transport;
//   to_bytes(), to_string(), pattern()    — byte helpers.
//
// Everything goes through the public API (unitls/unitls.hpp): the conformance
// suite must be able to run unchanged against every backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"

namespace unitls::test {

// ---- configuration ----------------------------------------------------------

// $UNITLS_TEST_CERTS/<name> (the test PKI made by tests/certs/make_certs.sh).
// Fails the current test (REQUIRE) when the variable is not set.
std::string cert_path(std::string_view name);
// The whole of a file of the test PKI (a REQUIRE fails when it cannot be read).
std::string cert_text(std::string_view name);

// The backend this run tests: $UNITLS_TEST_BACKEND ("openssl", "mbedtls",
// "gnutls"; Meson sets it per registered test), else the library's default.
std::string backend_under_test();

// A client that trusts ca.pem and verifies "localhost" (SNI and name check),
// min_version = max_version = v, backend = backend_under_test().
Config client_config(Version v);
// A server with server.pem/server.key, no client certificate required,
// min_version = max_version = v, backend = backend_under_test().
Config server_config(Version v);

// True iff the backend under test can make contexts for exactly version v;
// false when Context::create answers errc::unsupported (mbedTLS 2.28 has no
// TLS 1.3). Any other failure fails the current test. Cached per version.
bool supports(Version v);

// "TLS 1.2" / "TLS 1.3".
std::string version_name(Version v);
// Both versions, for `for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {...}`.
inline constexpr Version all_versions[] = {Version::tls1_2, Version::tls1_3};

// Reports a skipped test or subcase: a doctest MESSAGE "skipped: <reason>",
// and a count (with the reasons) printed to stderr when the program ends.
// doctest has no run-time skip, so the caller returns right after.
void skip(const std::string& reason);
// If v is not supported: skip("<backend> has no TLS 1.x") and return true.
// Use as `if (skip_unless_supported(v)) return;`.
bool skip_unless_supported(Version v);
// How many skips were reported so far.
int skip_count();

// ---- the in-memory connection ---------------------------------------------

enum class Side { client, server };
inline Side peer_of(Side s) { return s == Side::client ? Side::server : Side::client; }
std::string side_name(Side s);  // "client" / "server"

// One run of a rule that concerns the side that closes first: the version and
// which side closes, named "TLS 1.2, client closes" for SUBCASE.
struct Closing {
  Version version;
  Side closer;
  std::string name;
  Side peer() const { return peer_of(closer); }
};
// {TLS 1.2, TLS 1.3} x {client closes, server closes}, for
// `for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {...}`.
std::vector<Closing> versions_and_closers();

// Called with the client and the server config before the contexts are made.
using ConfigTweak = std::function<void(Config& client, Config& server)>;

// A client and a server socket joined by a make_memory_pair() link.
// The contexts are shared_ptr so that a second connection can reuse them
// (session resumption): connect_memory(conn.client_ctx, conn.server_ctx).
struct MemoryConn {
  std::shared_ptr<Context> client_ctx, server_ctx;
  std::unique_ptr<SecureSocket> client, server;
  std::shared_ptr<MemoryLink> link;

  SecureSocket& socket(Side s) const { return s == Side::client ? *client : *server; }
  // The pipe side s writes into (what its peer reads).
  MemoryPipe& from(Side s) const {
    return s == Side::client ? link->client_to_server() : link->server_to_client();
  }
  // The pipe side s reads from (what its peer writes).
  MemoryPipe& to(Side s) const { return from(peer_of(s)); }

  // Counters of what side s has put on the wire so far.
  std::uint64_t records_from(Side s) const { return from(s).records_written(); }
  std::uint64_t alerts_from(Side s) const { return from(s).alert_records_written(); }
  std::uint64_t bytes_from(Side s) const { return from(s).bytes_written(); }
};

// Contexts (client_config/server_config(v), then tweak) and two sockets over a
// fresh memory pair; no handshake yet. REQUIREs that everything was created.
MemoryConn open_memory(Version v, const ConfigTweak& tweak = {});
// Two sockets from existing contexts over a fresh memory pair; no handshake.
MemoryConn open_memory(std::shared_ptr<Context> client_ctx, std::shared_ptr<Context> server_ctx);
// The same over a given pair, whose transports a test may have wrapped.
MemoryConn open_memory(std::shared_ptr<Context> client_ctx, std::shared_ptr<Context> server_ctx,
                       MemoryPair pair);

// Calls client.handshake() and server.handshake() alternately until both
// return 1 (at most max_rounds rounds). False as soon as either fails with
// anything but want_read/want_write, or when the rounds run out.
bool complete_handshake(MemoryConn& conn, int max_rounds = 32);
// "client: <last_error>, server: <last_error>" with the native errors, for
// REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn)).
std::string handshake_state(const MemoryConn& conn);

// The server writes "ping", the client reads it, the client writes "pong",
// the server reads it; then both pipes are empty (TLS 1.3 tickets consumed).
// REQUIREs each step.
void exchange(MemoryConn& conn);

// open_memory + REQUIRE(complete_handshake) + exchange: a quiet, established
// connection with nothing in flight, the usual starting point of a test.
MemoryConn connect_memory(Version v, const ConfigTweak& tweak = {});
MemoryConn connect_memory(std::shared_ptr<Context> client_ctx, std::shared_ptr<Context> server_ctx);
// Context::create that must succeed (a REQUIRE with the message otherwise).
std::shared_ptr<Context> must_create(const Config& config);

// The client closes properly (its shutdown() sends close_notify: SENT, so
// its session may be resumed), the server is marked closed too, and both
// sockets are destroyed.
void end_properly(MemoryConn& conn);

// ---- outcomes -----------------------------------------------------------------

// A call's return value together with last_error() read right after it, so
// that one CHECK states the whole result and prints both on failure:
//   CHECK(outcome(s, s.shutdown()) == failure(errc::want_read));
struct Outcome {
  std::ptrdiff_t ret = 0;
  std::error_code error;
  friend bool operator==(const Outcome&, const Outcome&) = default;
};
// Arguments are evaluated before the body, so last_error() is read after the call.
inline Outcome outcome(const SecureSocket& s, std::ptrdiff_t ret) { return {ret, s.last_error()}; }
// ret with an empty last_error().
inline Outcome success(std::ptrdiff_t ret) { return {ret, {}}; }
// -1 with e.
inline Outcome failure(errc e) { return {-1, make_error_code(e)}; }
// read()'s end of data: 0 with e (zero_return, or unexpected_eof when
// require_close_notify is false).
inline Outcome end_of_data(errc e) { return {0, make_error_code(e)}; }

std::ostream& operator<<(std::ostream& os, const Outcome& o);
// "want_read", "unitls.openssl:123 (...)", "ok". (doctest prints error codes
// by their errc name too: see doctest.hpp.)
std::string describe(const std::error_code& ec);

// Where each side's handshake ended: 1, or -1 with the error that stopped it.
struct HandshakeEnd {
  Outcome client, server;
  const Outcome& of(Side s) const { return s == Side::client ? client : server; }
};
// Runs both handshakes alternately until each has returned 1 or failed with
// something other than want_read/want_write, or until neither can move
// (nothing in flight). Unlike complete_handshake() it goes on after one side
// fails, so that the other side's reaction to the alert is seen too.
HandshakeEnd run_handshake(MemoryConn& conn);

// ---- driving calls --------------------------------------------------------------

// Calls step() (returning int or ptrdiff_t) until it no longer fails with
// want_read, at most max_calls times; returns the last result. For helpers
// and set-up only: a contract check should make the single call it promises.
template <class Step>
auto pump(const SecureSocket& s, Step&& step, int max_calls = 16) -> decltype(step()) {
  auto r = step();
  for (int i = 1; i < max_calls && r < 0 && s.last_error() == errc::want_read; ++i) r = step();
  return r;
}

// Writes all of data (retrying partial writes and want_write at most
// max_calls times in all). True when every byte was accepted.
bool write_all(SecureSocket& s, std::string_view data, int max_calls = 64);

// Reads until n bytes arrived or a read() returns 0 or fails with anything
// but want_read (want_read is retried at most max_calls times in all).
// Returns the bytes read; last_error() tells why it stopped short.
std::string read_exact(SecureSocket& s, std::size_t n, int max_calls = 64);

// Reads until read() returns 0 or -1; returns everything read.
std::string read_available(SecureSocket& s, int max_calls = 1024);

// ---- bytes -------------------------------------------------------------------

std::vector<std::byte> to_bytes(std::string_view text);
std::string to_string(std::span<const std::byte> bytes);
// n deterministic, non-repeating-looking bytes (for large writes).
std::string pattern(std::size_t n);

}  // namespace unitls::test
