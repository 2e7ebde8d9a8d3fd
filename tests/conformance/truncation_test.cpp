// Transport EOF without the peer's close_notify: a truncation, fatal unless the
// context opted out with require_close_notify = false.
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {
constexpr unsigned both_flags = sent_shutdown | received_shutdown;

void no_close_notify_required(Config& client, Config& server) {
  client.require_close_notify = false;
  server.require_close_notify = false;
}
}  // namespace

TEST_CASE("EOF without close_notify is unexpected_eof and kills the connection") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side side : {Side::client, Side::server}) {  // the side that reads the EOF
      CAPTURE(side_name(side));
      MemoryConn conn = connect_memory(v);
      SecureSocket& s = conn.socket(side);
      SecureSocket& peer = conn.socket(peer_of(side));

      CHECK(outcome(peer, peer.write("tail")) == success(4));
      conn.to(side).inject_eof();
      std::string got;
      CHECK(outcome(s, s.read(got)) == success(4));  // what came before the EOF still counts
      CHECK(got == "tail");
      std::byte buf[16];
      // Nothing goes out at a truncation, not even an alert (as in the
      // "EOF while waiting" row): the peer is gone.
      const auto sent = conn.bytes_from(side);
      CHECK(outcome(s, s.read(buf)) == failure(errc::unexpected_eof));
      CHECK(s.get_shutdown() == 0);  // EOF is not a close_notify
      CHECK(outcome(s, s.read(buf)) == failure(errc::unexpected_eof));
      CHECK(outcome(s, s.write("x")) == failure(errc::unexpected_eof));
      CHECK(outcome(s, s.shutdown()) == failure(errc::unexpected_eof));
      CHECK(s.send_close_notify() == errc::unexpected_eof);
      CHECK(s.get_shutdown() == 0);
      CHECK(conn.bytes_from(side) == sent);
    }
  }
}

TEST_CASE("with require_close_notify=false EOF reads as 0 unexpected_eof and RECEIVED stays unset") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      MemoryConn conn = connect_memory(v, no_close_notify_required);
      SecureSocket& s = conn.socket(side);
      SecureSocket& peer = conn.socket(peer_of(side));

      CHECK(outcome(peer, peer.write("tail")) == success(4));
      conn.to(side).inject_eof();
      std::string got;
      CHECK(outcome(s, s.read(got)) == success(4));
      CHECK(got == "tail");
      std::byte buf[16];
      // Nothing goes out at a truncation, not even an alert: the end of data is
      // graceful here, and the peer is gone anyway.
      const auto sent = conn.bytes_from(side);
      for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(outcome(s, s.read(buf)) == end_of_data(errc::unexpected_eof));
        CHECK(s.get_shutdown() == 0);
      }
      // The end of data is graceful for reads only: the connection is dead.
      CHECK(outcome(s, s.write("x")) == failure(errc::unexpected_eof));
      CHECK(conn.bytes_from(side) == sent);
      CHECK(outcome(s, s.shutdown()) == failure(errc::unexpected_eof));
      CHECK(conn.bytes_from(side) == sent);
      CHECK(s.send_close_notify() == errc::unexpected_eof);
      CHECK(conn.bytes_from(side) == sent);
      CHECK(outcome(s, s.read(buf)) == end_of_data(errc::unexpected_eof));
      CHECK(s.get_shutdown() == 0);
    }
  }
}

TEST_CASE("a close_notify followed by the transport closing reads as zero_return, not as a truncation") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    for (bool required : {true, false}) {
      CAPTURE(required);  // require_close_notify
      MemoryConn conn = connect_memory(c.version, [&](Config& client, Config& server) {
        if (!required) no_close_notify_required(client, server);
      });
      SecureSocket& a = conn.socket(c.closer);
      SecureSocket& b = conn.socket(c.peer());

      // A shutdown() that returned 0 lets the caller close the transport.
      CHECK(outcome(a, a.shutdown()) == success(0));
      conn.from(c.closer).inject_eof();
      std::byte buf[16];
      CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
      CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
      CHECK(b.get_shutdown() == received_shutdown);
      CHECK(outcome(b, b.shutdown()) == success(1));
      CHECK(b.get_shutdown() == both_flags);
    }
  }
}

TEST_CASE("EOF before a complete record is a truncation, not a partial read") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      MemoryConn conn = connect_memory(v);
      SecureSocket& s = conn.socket(side);
      // A record header announcing 32 bytes, and only 3 of them.
      const std::byte cut[] = {std::byte{0x17}, std::byte{0x03}, std::byte{0x03}, std::byte{0x00},
                               std::byte{0x20}, std::byte{0x01}, std::byte{0x02}, std::byte{0x03}};
      conn.to(side).inject_bytes(cut);
      std::byte buf[16];
      CHECK(outcome(s, s.read(buf)) == failure(errc::want_read));
      conn.to(side).inject_eof();
      CHECK(outcome(s, s.read(buf)) == failure(errc::unexpected_eof));
      CHECK(s.get_shutdown() == 0);
    }
  }
}
