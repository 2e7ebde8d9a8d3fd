// Every backend against every other (issue 5, part 1): for each client
// backend x server backend in available_backends(), over loopback TCP, in
// blocking mode (the second side runs in its own thread) and non-blocking
// mode (one thread, poll()), each connection does the handshake on the
// highest version both stacks have, moves 1 MiB each way with a checksum,
// and closes in one of the styles of docs/contract.md, with the client and with
// the server closing first. Both sides' return values, last_error() and
// get_shutdown() flags are checked against the contract, so a pair of stacks
// that disagreed on the wire would show here.
//
// A single-backend build runs the 1 x 1 matrix. mbedTLS 2.28 has no TLS 1.3:
// a pair with it negotiates TLS 1.2, and the test asserts exactly that.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"
#include "sockets.hpp"

using namespace std::chrono_literals;
using namespace unitls;
using namespace unitls::test;

namespace {

constexpr unsigned sent = sent_shutdown;
constexpr unsigned received = received_shutdown;
constexpr unsigned both = sent | received;

// A case (handshake, 2 MiB, the close) takes tens of milliseconds, a few
// hundred under ASan on a busy machine; past these something hangs.
constexpr auto case_deadline = 10s;
constexpr auto loop_deadline = 8s;

// What the peer writes after the closer's close_notify (half-close), and
// what a side writes before it drops the connection.
constexpr std::size_t tail_size = 64 * 1024;

// ---- the matrix -------------------------------------------------------------

// A config for `backend` that accepts TLS 1.2 and 1.3: the handshake
// settles on the highest version both ends have.
Config config_for(Role role, std::string_view backend) {
  Config c = role == Role::client ? client_config(Version::tls1_2) : server_config(Version::tls1_2);
  c.backend = std::string(backend);
  c.min_version = Version::tls1_2;
  c.max_version = Version::tls1_3;
  return c;
}

// Whether backend can make TLS 1.3-only contexts: false exactly when
// Context::create answers unsupported (mbedTLS 2.28). Main thread only.
bool has_tls1_3(std::string_view backend) {
  static std::map<std::string, bool, std::less<>> cache;
  if (const auto it = cache.find(backend); it != cache.end()) return it->second;
  bool ok = true;
  for (const Role role : {Role::client, Role::server}) {
    Config c = config_for(role, backend);
    c.min_version = Version::tls1_3;
    std::error_code ec;
    std::string message;
    if (Context::create(c, ec, &message)) continue;
    REQUIRE_MESSAGE(ec == errc::unsupported, "Context::create(" << backend
                                                                << ", TLS 1.3 only) failed with "
                                                                << describe(ec) << ": " << message);
    ok = false;
  }
  cache.emplace(std::string(backend), ok);
  return ok;
}

// One cell of the matrix: who talks to whom, how, and who closes first (in
// the drop case: who vanishes).
struct Pair {
  std::string client_backend, server_backend;
  Mode mode;
  Side closer;
  std::string version;  // what both sides must report after the handshake

  Side peer() const { return peer_of(closer); }
  const std::string& backend_of(Side s) const {
    return s == Side::client ? client_backend : server_backend;
  }
};

// Runs body once per client backend, server backend, mode and closing side,
// each in its own SUBCASE: "openssl client × gnutls server, blocking, client
// closes" (verb: "closes", "drops").
template <typename Body>
void for_each_pair(const char* verb, Body&& body) {
  for (const std::string_view cb : available_backends()) {
    for (const std::string_view sb : available_backends()) {
      for (const Mode mode : {Mode::blocking, Mode::nonblocking}) {
        for (const Side closer : {Side::client, Side::server}) {
          const std::string name = std::string(cb) + " client × " + std::string(sb) + " server, " +
                                   mode_name(mode) + ", " + side_name(closer) + " " + verb;
          SUBCASE(name.c_str()) {
            const bool tls1_3 = has_tls1_3(cb) && has_tls1_3(sb);
            body(Pair{std::string(cb), std::string(sb), mode, closer,
                      tls1_3 ? "TLSv1.3" : "TLSv1.2"});
          }
        }
      }
    }
  }
}

// Contexts, sockets and the TCP link of one case.
class Connection : public SocketConn {
 public:
  explicit Connection(const Pair& p)
      : SocketConn(Kind::tcp, p.mode, config_for(Role::client, p.client_backend),
                   config_for(Role::server, p.server_backend), p.closer, case_deadline) {}
};

// ---- data -------------------------------------------------------------------

const std::vector<std::byte>& closer_bulk() {
  static const std::vector<std::byte> data = bulk_data(1);
  return data;
}
const std::vector<std::byte>& peer_bulk() {
  static const std::vector<std::byte> data = bulk_data(2);
  return data;
}
const std::vector<std::byte>& tail() {
  static const std::vector<std::byte> data = bulk_data(3, tail_size);
  return data;
}
std::span<const std::byte> tail_first_half() { return std::span(tail()).first(tail_size / 2); }
std::span<const std::byte> tail_second_half() { return std::span(tail()).subspan(tail_size / 2); }

std::uint64_t closer_bulk_sum() {
  static const std::uint64_t sum = checksum_of(closer_bulk());
  return sum;
}
std::uint64_t peer_bulk_sum() {
  static const std::uint64_t sum = checksum_of(peer_bulk());
  return sum;
}

// ---- the opening: handshake, version, 1 MiB each way ----------------------

void check_established(const SecureSocket& s, const Pair& p, Side side) {
  CHECK(s.backend() == p.backend_of(side));
  CHECK_MESSAGE(s.protocol_version() == p.version, side_name(side)
                                                       << " (" << p.backend_of(side)
                                                       << ") negotiated " << s.protocol_version());
}

// One half per thread. The closer's megabyte goes first, then the peer's:
// two blocking writers of 1 MiB would fill both socket buffers and stall.
void blocking_open_closer(SecureSocket& a, const Pair& p) {
  blocking_handshake(a);
  check_established(a, p, p.closer);
  CHECK(outcome(a, a.write(closer_bulk())) == success(bulk_size));
  CHECK(blocking_read_bulk(a) == peer_bulk_sum());
}

void blocking_open_peer(SecureSocket& b, const Pair& p) {
  blocking_handshake(b);
  check_established(b, p, p.peer());
  CHECK(blocking_read_bulk(b) == closer_bulk_sum());
  CHECK(outcome(b, b.write(peer_bulk())) == success(bulk_size));
}

// Both sides from one thread: both megabytes move at once.
void nonblocking_open(Connection& c, const Pair& p) {
  nonblocking_handshake(c.closer(), c.closer_fd(), c.peer(), c.peer_fd(), loop_deadline);
  check_established(c.closer(), p, p.closer);
  check_established(c.peer(), p, p.peer());
  BulkSide a(c.closer(), closer_bulk());
  BulkSide b(c.peer(), peer_bulk());
  drive(
      c.closer_fd(), [&] { return a.step(); }, c.peer_fd(), [&] { return b.step(); },
      loop_deadline);
  CHECK(a.received_checksum() == peer_bulk_sum());
  CHECK(b.received_checksum() == closer_bulk_sum());
}

// Moves what `writer` writes to `reader` (in_size bytes) from one thread;
// then_writer runs once the writer has handed over its last byte.
std::uint64_t nonblocking_transfer(SecureSocket& writer, int writer_fd,
                                   std::span<const std::byte> data, SecureSocket& reader,
                                   int reader_fd, const std::function<void()>& then_writer = {}) {
  BulkSide w(writer, std::vector<std::byte>(data.begin(), data.end()), 0);
  BulkSide r(reader, {}, data.size());
  bool written = false;
  drive(
      writer_fd,
      [&]() -> short {
        const short want = w.step();
        if (want == 0 && !written) {
          written = true;
          if (then_writer) then_writer();
        }
        return want;
      },
      reader_fd, [&] { return r.step(); }, loop_deadline);
  return r.received_checksum();
}

// One call, repeated while it wants to read or write (the other side has
// already done its part).
int nonblocking_shutdown(SecureSocket& s, int fd) {
  const auto call = [&] { return s.shutdown(); };
  return retry(s, fd, call, loop_deadline);
}

std::ptrdiff_t nonblocking_read(SecureSocket& s, int fd, std::span<std::byte> buf) {
  const auto call = [&] { return s.read(buf); };
  return retry(s, fd, call, loop_deadline);
}

// ---- bidirectional shutdown() -------------------------------------------------

void blocking_bidirectional(const Pair& p) {
  Connection c(p);
  SecureSocket& a = c.closer();
  PeerThread peer(c.link(), [&c, &p] {
    SecureSocket& b = c.peer();
    blocking_open_peer(b, p);
    expect_zero_return(b);
    CHECK(b.get_shutdown() == received);
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(b.get_shutdown() == both);
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(b.get_shutdown() == both);
  });
  blocking_open_closer(a, p);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == success(1));  // waits for the peer's close_notify
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
  peer.join();
}

void nonblocking_bidirectional(const Pair& p) {
  Connection c(p);
  SecureSocket& a = c.closer();
  SecureSocket& b = c.peer();
  nonblocking_open(c, p);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));  // the peer has not answered
  CHECK(a.get_shutdown() == sent);
  nonblocking_expect_zero_return(b, c.peer_fd());
  CHECK(b.get_shutdown() == received);
  CHECK(outcome(b, nonblocking_shutdown(b, c.peer_fd())) == success(1));
  CHECK(b.get_shutdown() == both);
  CHECK(outcome(a, nonblocking_shutdown(a, c.closer_fd())) == success(1));
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(outcome(b, b.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
  CHECK(b.get_shutdown() == both);
}

// ---- GSKit one-step send_close_notify() ----------------------------------------

void blocking_one_step(const Pair& p) {
  Connection c(p);
  SecureSocket& a = c.closer();
  PeerThread peer(c.link(), [&c, &p] {
    SecureSocket& b = c.peer();
    blocking_open_peer(b, p);
    expect_zero_return(b);
    CHECK(b.get_shutdown() == received);
    CHECK(b.send_close_notify() == std::error_code());
    CHECK(b.get_shutdown() == both);
  });
  blocking_open_closer(a, p);
  CHECK(a.send_close_notify() == std::error_code());
  CHECK(a.get_shutdown() == sent);
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(a.get_shutdown() == sent);
  expect_zero_return(a);  // waits for the peer's close_notify
  CHECK(a.get_shutdown() == both);
  expect_zero_return(a);
  peer.join();
}

void nonblocking_one_step(const Pair& p) {
  Connection c(p);
  SecureSocket& a = c.closer();
  SecureSocket& b = c.peer();
  nonblocking_open(c, p);
  CHECK(a.send_close_notify() == std::error_code());
  CHECK(a.get_shutdown() == sent);
  CHECK(a.send_close_notify() == errc::already_sent);
  std::array<std::byte, 64> buf;
  CHECK(outcome(a, a.read(buf)) == failure(errc::want_read));  // the peer has not answered
  CHECK(a.get_shutdown() == sent);
  nonblocking_expect_zero_return(b, c.peer_fd());
  CHECK(b.get_shutdown() == received);
  CHECK(b.send_close_notify() == std::error_code());
  CHECK(b.get_shutdown() == both);
  nonblocking_expect_zero_return(a, c.closer_fd());
  CHECK(a.get_shutdown() == both);
  nonblocking_expect_zero_return(a, c.closer_fd());
}

// ---- half-close ----------------------------------------------------------------
// After the closer's shutdown() returned 0, the peer writes half of the tail,
// reads the close_notify (zero_return), writes the other half (RECEIVED
// without SENT: writing still works) and closes. The closer reads it all,
// then zero_return.

void blocking_half_close(const Pair& p) {
  Connection c(p);
  SecureSocket& a = c.closer();
  PeerThread peer(c.link(), [&c, &p] {
    SecureSocket& b = c.peer();
    blocking_open_peer(b, p);
    CHECK(outcome(b, b.write(tail_first_half())) == success(tail_size / 2));
    expect_zero_return(b);
    CHECK(b.get_shutdown() == received);
    CHECK(outcome(b, b.write(tail_second_half())) == success(tail_size / 2));
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(b.get_shutdown() == both);
  });
  blocking_open_closer(a, p);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.write("too late")) == failure(errc::connection_closed));
  CHECK(blocking_read_bulk(a, tail_size) == checksum_of(tail()));
  CHECK(a.get_shutdown() == sent);
  expect_zero_return(a);
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(outcome(a, a.write("still too late")) == failure(errc::connection_closed));
  peer.join();
}

void nonblocking_half_close(const Pair& p) {
  Connection c(p);
  SecureSocket& a = c.closer();
  SecureSocket& b = c.peer();
  nonblocking_open(c, p);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.write("too late")) == failure(errc::connection_closed));
  CHECK(nonblocking_transfer(b, c.peer_fd(), tail_first_half(), a, c.closer_fd()) ==
        checksum_of(tail_first_half()));
  nonblocking_expect_zero_return(b, c.peer_fd());
  CHECK(b.get_shutdown() == received);
  CHECK(nonblocking_transfer(b, c.peer_fd(), tail_second_half(), a, c.closer_fd()) ==
        checksum_of(tail_second_half()));
  CHECK(outcome(b, nonblocking_shutdown(b, c.peer_fd())) == success(1));
  CHECK(b.get_shutdown() == both);
  CHECK(a.get_shutdown() == sent);
  nonblocking_expect_zero_return(a, c.closer_fd());
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(outcome(a, a.write("still too late")) == failure(errc::connection_closed));
}

// ---- quiet shutdown ----------------------------------------------------------------
// The closer's quiet shutdown() returns 1 with both flags and sends nothing;
// then it closes its socket. The peer finds only the FIN on its socket: a
// truncation, and its connection is dead.

void quiet_close(SecureSocket& a) {
  a.set_quiet_shutdown(true);
  CHECK(a.get_quiet_shutdown());
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(outcome(a, a.write("after quiet")) == failure(errc::connection_closed));
  std::array<std::byte, 64> buf;
  CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
}

void expect_truncated(SecureSocket& b, std::ptrdiff_t first_read) {
  CHECK(outcome(b, first_read) == failure(errc::unexpected_eof));
  CHECK(b.get_shutdown() == 0);
  expect_dead(b, errc::unexpected_eof);
  CHECK(b.get_shutdown() == 0);
}

void blocking_quiet(const Pair& p) {
  Connection c(p);
  SecureSocket& b = c.peer();
  const int peer_fd = c.peer_fd();
  PeerThread closer(c.link(), [&c, &p] {
    SecureSocket& a = c.closer();
    blocking_open_closer(a, p);
    quiet_close(a);
    c.drop(p.closer);
  });
  blocking_open_peer(b, p);
  closer.join();
  CHECK_MESSAGE(peek_before_eof(peer_fd) == 0,
                "the peer's socket should hold the FIN and nothing else");
  std::array<std::byte, 64> buf;
  expect_truncated(b, b.read(buf));
}

void nonblocking_quiet(const Pair& p) {
  Connection c(p);
  SecureSocket& b = c.peer();
  const int peer_fd = c.peer_fd();
  nonblocking_open(c, p);
  quiet_close(c.closer());
  c.drop(p.closer);
  CHECK_MESSAGE(peek_before_eof(peer_fd) == 0,
                "the peer's socket should hold the FIN and nothing else");
  std::array<std::byte, 64> buf;
  expect_truncated(b, nonblocking_read(b, peer_fd, buf));
}

// ---- a side drops the connection ----------------------------------------------------
// Here the "closer" is the side that writes the tail and vanishes without a
// close_notify; the peer reads the tail, then the truncation.

void blocking_drop(const Pair& p) {
  Connection c(p);
  SecureSocket& b = c.peer();
  PeerThread dropper(c.link(), [&c, &p] {
    SecureSocket& a = c.closer();
    blocking_open_closer(a, p);
    CHECK(outcome(a, a.write(tail())) == success(tail_size));
    CHECK(a.get_shutdown() == 0);
    c.drop(p.closer);
  });
  blocking_open_peer(b, p);
  CHECK(blocking_read_bulk(b, tail_size) == checksum_of(tail()));
  std::array<std::byte, 64> buf;
  expect_truncated(b, b.read(buf));
  dropper.join();
}

void nonblocking_drop(const Pair& p) {
  Connection c(p);
  SecureSocket& b = c.peer();
  const int peer_fd = c.peer_fd();
  nonblocking_open(c, p);
  // The drop comes right after the last byte is written, usually before the
  // peer has read it all.
  CHECK(nonblocking_transfer(c.closer(), c.closer_fd(), tail(), b, peer_fd, [&] {
          CHECK(c.closer().get_shutdown() == 0);
          c.drop(p.closer);
        }) == checksum_of(tail()));
  std::array<std::byte, 64> buf;
  expect_truncated(b, nonblocking_read(b, peer_fd, buf));
}

template <auto Blocking, auto NonBlocking>
void by_mode(const Pair& p) {
  if (p.mode == Mode::blocking) {
    Blocking(p);
  } else {
    NonBlocking(p);
  }
}

}  // namespace

TEST_CASE(
    "after a 1 MiB exchange each way, a bidirectional shutdown() gives the closer 0 then 1, the "
    "peer zero_return then 1, and both SENT|RECEIVED") {
  for_each_pair("closes", by_mode<blocking_bidirectional, nonblocking_bidirectional>);
}

TEST_CASE(
    "after a 1 MiB exchange each way, send_close_notify() goes out once, a second call is "
    "already_sent, and each side reads zero_return after the other's close_notify") {
  for_each_pair("closes", by_mode<blocking_one_step, nonblocking_one_step>);
}

TEST_CASE(
    "after a 1 MiB exchange each way and the closer's shutdown(), the peer still writes, the "
    "closer "
    "reads it all and then zero_return, and its own write() fails with connection_closed") {
  for_each_pair("closes", by_mode<blocking_half_close, nonblocking_half_close>);
}

TEST_CASE(
    "after a 1 MiB exchange each way, a quiet shutdown() returns 1 and sends nothing, and the peer "
    "sees the closed socket as unexpected_eof and stays dead") {
  for_each_pair("closes", by_mode<blocking_quiet, nonblocking_quiet>);
}

TEST_CASE(
    "after a 1 MiB exchange each way, a side that sends data and closes its socket without "
    "close_notify is read to the end, then unexpected_eof, and the reader stays dead") {
  for_each_pair("drops", by_mode<blocking_drop, nonblocking_drop>);
}
