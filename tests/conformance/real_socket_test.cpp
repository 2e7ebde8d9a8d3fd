// The shutdown contract (docs/contract.md) over real OS sockets, through
// make_fd_transport: an AF_UNIX socketpair and a loopback TCP connection,
// each blocking (the peer runs in its own thread) and non-blocking (one
// thread, poll() between want_read and want_write). Every case runs for TLS
// 1.2 and 1.3, with the client and with the server closing first.
//
// Nothing here may hang CI: each link has a watchdog that shuts both sockets
// down when a case outlives its deadline, so a blocked call returns and the
// case fails; every non-blocking loop is bounded by a deadline too.
//
// The sockets, the peer thread, the poll loops and the bulk helpers are
// shared with the interop suite: support/sockets.hpp.
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"
#include "sockets.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

constexpr unsigned sent = sent_shutdown;
constexpr unsigned received = received_shutdown;
constexpr unsigned both = sent | received;

// Runs body once per TLS version and closing side, each in its own SUBCASE
// ("TLS 1.2, client closes"); a version the backend lacks is reported as
// skipped, never passed.
template <typename Body>
void for_each_closing(Body&& body) {
  for (const Closing& c : versions_and_closers()) {
    SUBCASE(c.name.c_str()) {
      if (!skip_unless_supported(c.version)) body(c);
    }
  }
}

// Contexts, sockets and the link of one case.
class Setup : public SocketConn {
 public:
  Setup(Kind kind, Mode mode, const Closing& c)
      : SocketConn(kind, mode, client_config(c.version), server_config(c.version), c.closer) {}
};

// The connection carries data both ways before the close.
void closer_exchange(SecureSocket& s) {
  blocking_write(s, "ping");
  CHECK(blocking_read_exact(s, 4) == "pong");
}

void peer_exchange(SecureSocket& s) {
  CHECK(blocking_read_exact(s, 4) == "ping");
  blocking_write(s, "pong");
}

// The peer's half of an orderly close: our close_notify is its end of data,
// and it answers with its own.
void answer_close(SecureSocket& s) {
  expect_zero_return(s);
  CHECK(s.get_shutdown() == received);
  CHECK(outcome(s, s.shutdown()) == success(1));
  CHECK(s.get_shutdown() == both);
}

void nonblocking_handshake(Setup& s) {
  unitls::test::nonblocking_handshake(s.closer(), s.closer_fd(), s.peer(), s.peer_fd());
}

void nonblocking_exchange(Setup& s) {
  nonblocking_write(s.closer(), s.closer_fd(), "ping");
  CHECK(nonblocking_read_exact(s.peer(), s.peer_fd(), 4) == "ping");
  nonblocking_write(s.peer(), s.peer_fd(), "pong");
  CHECK(nonblocking_read_exact(s.closer(), s.closer_fd(), 4) == "pong");
}

void nonblocking_answer_close(Setup& s) {
  SecureSocket& b = s.peer();
  nonblocking_expect_zero_return(b, s.peer_fd());
  CHECK(b.get_shutdown() == received);
  const int r = retry(b, s.peer_fd(), [&] { return b.shutdown(); });
  CHECK(outcome(b, r) == success(1));
  CHECK(b.get_shutdown() == both);
}

int nonblocking_shutdown(Setup& s) {
  return retry(s.closer(), s.closer_fd(), [&] { return s.closer().shutdown(); });
}

// ---- the rules, blocking --------------------------------------------------
// The main thread is the side that closes first; the peer runs in a thread.

void blocking_two_step_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  expect_zero_return(a);
  peer.join();
}

void blocking_send_close_notify(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(a.send_close_notify() == std::error_code());
  CHECK(a.get_shutdown() == sent);
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(a.get_shutdown() == sent);
  expect_zero_return(a);
  CHECK(a.get_shutdown() == both);
  expect_zero_return(a);
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
  peer.join();
}

void blocking_half_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    expect_zero_return(b);
    CHECK(b.get_shutdown() == received);
    blocking_write(b, "still talking");  // RECEIVED without SENT: writing still works
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(b.get_shutdown() == both);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(blocking_read_exact(a, 13) == "still talking");
  CHECK(a.get_shutdown() == sent);
  expect_zero_return(a);
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  peer.join();
}

void blocking_write_after_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.write("too late")) == failure(errc::connection_closed));
  CHECK(outcome(a, a.write("still too late")) == failure(errc::connection_closed));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(outcome(a, a.write("after both")) == failure(errc::connection_closed));
  peer.join();
}

// Here the "closer" is the side that vanishes; the peer observes it.
void blocking_peer_vanishes(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& b = s.peer();
  PeerThread closer(s.link(), [&s, &c] {
    SecureSocket& a = s.closer();
    blocking_handshake(a);
    closer_exchange(a);  // reads all the peer sent: the close is a FIN, not a reset
    s.drop(c.closer);
  });
  blocking_handshake(b);
  peer_exchange(b);
  std::array<std::byte, 64> buf;
  CHECK(outcome(b, b.read(buf)) == failure(errc::unexpected_eof));
  CHECK(b.get_shutdown() == 0);
  expect_dead(b, errc::unexpected_eof);
  CHECK(b.get_shutdown() == 0);
  closer.join();
}

void blocking_shutdown_meets_eof(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s, &c] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    expect_zero_return(b);  // our close_notify is read: nothing is left unread
    s.drop(c.peer());
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.shutdown()) == failure(errc::unexpected_eof));
  CHECK(a.get_shutdown() == sent);
  expect_dead(a, errc::unexpected_eof);
  CHECK(a.get_shutdown() == sent);
  peer.join();
}

void blocking_data_pending(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    blocking_write(b, "late data");
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.shutdown()) == failure(errc::data_pending));
  CHECK(a.get_shutdown() == sent);
  CHECK(blocking_read_exact(a, 9) == "late data");
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
  peer.join();
}

void blocking_bulk(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  const std::vector<std::byte> ours = bulk_data(1);
  const std::vector<std::byte> theirs = bulk_data(2);
  PeerThread peer(s.link(), [&s, &ours, &theirs] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    CHECK(blocking_read_bulk(b) == checksum_of(ours));
    CHECK(outcome(b, b.write(theirs)) == success(static_cast<std::ptrdiff_t>(theirs.size())));
    answer_close(b);
  });
  blocking_handshake(a);
  CHECK(outcome(a, a.write(ours)) == success(static_cast<std::ptrdiff_t>(ours.size())));
  CHECK(blocking_read_bulk(a) == checksum_of(theirs));
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.shutdown()) == success(1));
  peer.join();
}

// ---- the rules, non-blocking ----------------------------------------------
// One thread drives both sides.

void nonblocking_two_step_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));  // the peer has not answered
  CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
  CHECK(a.get_shutdown() == sent);
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  nonblocking_expect_zero_return(a, s.closer_fd());
}

void nonblocking_send_close_notify(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(a.send_close_notify() == std::error_code());
  CHECK(a.get_shutdown() == sent);
  CHECK(a.send_close_notify() == errc::already_sent);
  std::array<std::byte, 64> buf;
  CHECK(outcome(a, a.read(buf)) == failure(errc::want_read));  // the peer has not answered
  nonblocking_answer_close(s);
  nonblocking_expect_zero_return(a, s.closer_fd());
  CHECK(a.get_shutdown() == both);
  nonblocking_expect_zero_return(a, s.closer_fd());
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
}

void nonblocking_half_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  SecureSocket& b = s.peer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_expect_zero_return(b, s.peer_fd());
  nonblocking_write(b, s.peer_fd(), "still talking");  // RECEIVED without SENT: writing still works
  const int r = retry(b, s.peer_fd(), [&] { return b.shutdown(); });
  CHECK(outcome(b, r) == success(1));
  CHECK(nonblocking_read_exact(a, s.closer_fd(), 13) == "still talking");
  CHECK(a.get_shutdown() == sent);
  nonblocking_expect_zero_return(a, s.closer_fd());
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
}

void nonblocking_write_after_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.write("too late")) == failure(errc::connection_closed));
  CHECK(outcome(a, a.write("still too late")) == failure(errc::connection_closed));
  CHECK(a.get_shutdown() == sent);
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
  CHECK(outcome(a, a.write("after both")) == failure(errc::connection_closed));
}

// Here the "closer" is the side that vanishes; the peer observes it.
void nonblocking_peer_vanishes(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& b = s.peer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);  // the closer read all the peer sent: its close is a FIN
  const int fd = s.peer_fd();
  s.drop(c.closer);
  std::array<std::byte, 64> buf;
  const std::ptrdiff_t n = retry(b, fd, [&] { return b.read(buf); });
  CHECK(outcome(b, n) == failure(errc::unexpected_eof));
  CHECK(b.get_shutdown() == 0);
  expect_dead(b, errc::unexpected_eof);
  CHECK(b.get_shutdown() == 0);
}

void nonblocking_shutdown_meets_eof(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_expect_zero_return(s.peer(), s.peer_fd());  // nothing left unread: a FIN
  s.drop(c.peer());
  CHECK(outcome(a, nonblocking_shutdown(s)) == failure(errc::unexpected_eof));
  CHECK(a.get_shutdown() == sent);
  expect_dead(a, errc::unexpected_eof);
  CHECK(a.get_shutdown() == sent);
}

void nonblocking_data_pending(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_write(s.peer(), s.peer_fd(), "late data");
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == failure(errc::data_pending));
  CHECK(a.get_shutdown() == sent);
  CHECK(nonblocking_read_exact(a, s.closer_fd(), 9) == "late data");
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
  CHECK(a.get_shutdown() == both);
}

void nonblocking_bulk(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  const std::vector<std::byte> ours = bulk_data(1);
  const std::vector<std::byte> theirs = bulk_data(2);
  BulkSide side_a(a, ours);
  BulkSide side_b(s.peer(), theirs);
  drive(
      s.closer_fd(), [&] { return side_a.step(); }, s.peer_fd(), [&] { return side_b.step(); });
  CHECK(side_a.received_bytes() == bulk_size);
  CHECK(side_a.received_checksum() == checksum_of(theirs));
  CHECK(side_b.received_bytes() == bulk_size);
  CHECK(side_b.received_checksum() == checksum_of(ours));
  INFO("partial writes: " << side_a.partial_writes() << " and " << side_b.partial_writes());
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
}

}  // namespace

// Each rule over both socket kinds, both TLS versions and both closing sides.
#define REAL_SOCKET_CASES(mode, rule, fn)                                \
  TEST_CASE(mode " socketpair: " rule) {                                 \
    for_each_closing([](const Closing& c) { fn(Kind::socketpair, c); }); \
  }                                                                      \
  TEST_CASE(mode " TCP: " rule) {                                        \
    for_each_closing([](const Closing& c) { fn(Kind::tcp, c); });        \
  }

REAL_SOCKET_CASES("blocking",
                  "the first shutdown() returns 0 with SENT, the second waits for the peer's "
                  "close_notify and returns 1",
                  blocking_two_step_close)
REAL_SOCKET_CASES("blocking",
                  "send_close_notify() goes out once, a second call is already_sent, and read() "
                  "ends with zero_return",
                  blocking_send_close_notify)
REAL_SOCKET_CASES("blocking",
                  "after our close_notify the peer still writes, and read() returns its data "
                  "before zero_return",
                  blocking_half_close)
REAL_SOCKET_CASES("blocking", "write() after our close_notify fails with connection_closed",
                  blocking_write_after_close)
REAL_SOCKET_CASES("blocking",
                  "a peer that closes the socket without close_notify makes read() fail with "
                  "unexpected_eof, and the connection stays dead",
                  blocking_peer_vanishes)
REAL_SOCKET_CASES("blocking",
                  "a shutdown() waiting for a peer that closes without close_notify fails with "
                  "unexpected_eof",
                  blocking_shutdown_meets_eof)
REAL_SOCKET_CASES("blocking",
                  "a shutdown() that meets application data returns data_pending, read() gets "
                  "the data, and shutdown() then returns 1",
                  blocking_data_pending)
REAL_SOCKET_CASES("blocking", "1 MiB each way arrives intact", blocking_bulk)

REAL_SOCKET_CASES("non-blocking",
                  "the second shutdown() wants read until the peer's close_notify arrives, then "
                  "returns 1",
                  nonblocking_two_step_close)
REAL_SOCKET_CASES("non-blocking",
                  "send_close_notify() goes out once, a second call is already_sent, and read() "
                  "ends with zero_return",
                  nonblocking_send_close_notify)
REAL_SOCKET_CASES("non-blocking",
                  "after our close_notify the peer still writes, and read() returns its data "
                  "before zero_return",
                  nonblocking_half_close)
REAL_SOCKET_CASES("non-blocking", "write() after our close_notify fails with connection_closed",
                  nonblocking_write_after_close)
REAL_SOCKET_CASES("non-blocking",
                  "a peer that closes the socket without close_notify makes read() fail with "
                  "unexpected_eof, and the connection stays dead",
                  nonblocking_peer_vanishes)
REAL_SOCKET_CASES("non-blocking",
                  "a shutdown() waiting for a peer that closes without close_notify fails with "
                  "unexpected_eof",
                  nonblocking_shutdown_meets_eof)
REAL_SOCKET_CASES("non-blocking",
                  "a shutdown() that meets application data returns data_pending, read() gets "
                  "the data, and shutdown() then returns 1",
                  nonblocking_data_pending)
REAL_SOCKET_CASES("non-blocking",
                  "1 MiB each way arrives intact, written in whatever pieces the socket takes",
                  nonblocking_bulk)

// A client that sent its ClientHello and then reset the connection (SO_LINGER
// 0): the server's handshake fails on the transport, and native_error() is
// the socket's own error, ECONNRESET, on every backend. (Linux reports the
// reset once; a second send would say EPIPE. GnuTLS writes its flight of
// several records in one call, which must not be retried to find out why it
// failed.)
TEST_CASE("TCP: a client that resets after its ClientHello fails the server's handshake with transport_error, native ECONNRESET") {
  for (const Version v : all_versions) {
    SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      SocketConn conn(Kind::tcp, Mode::nonblocking, client_config(v), server_config(v), Side::client);
      SecureSocket& client = conn.closer();
      SecureSocket& server = conn.peer();
      REQUIRE(outcome(client, client.handshake()) == failure(errc::want_read));  // the ClientHello is out

      const int client_fd = conn.closer_fd();
      const linger reset{1, 0};
      REQUIRE(::setsockopt(client_fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
      conn.drop(Side::client);
      // The RST has arrived once the server's socket reports it (POLLHUP or
      // POLLERR beside the ClientHello's POLLIN).
      pollfd p{conn.peer_fd(), POLLIN, 0};
      const auto deadline = Clock::now() + std::chrono::seconds(2);
      while ((p.revents & (POLLERR | POLLHUP)) == 0 && Clock::now() < deadline) {
        p.revents = 0;
        ::poll(&p, 1, 10);
      }
      REQUIRE((p.revents & (POLLERR | POLLHUP)) != 0);

      CHECK(outcome(server, server.handshake()) == failure(errc::transport_error));
      CHECK(server.native_error() == std::error_code(ECONNRESET, std::system_category()));
    }
  }
}
