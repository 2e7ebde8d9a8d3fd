// Quiet shutdown: shutdown() returns 1 at once, sends nothing, sets both flags.
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {
constexpr unsigned both_flags = sent_shutdown | received_shutdown;
}

TEST_CASE("quiet shutdown returns 1 at once, sends nothing and sets both flags") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    for (bool from_config : {false, true}) {
      CAPTURE(from_config);  // Config::quiet_shutdown, or set_quiet_shutdown(true)
      MemoryConn conn = connect_memory(c.version, [&](Config& client, Config& server) {
        if (from_config) (c.closer == Side::client ? client : server).quiet_shutdown = true;
      });
      SecureSocket& a = conn.socket(c.closer);
      if (from_config) {
        CHECK(a.get_quiet_shutdown());
        CHECK_FALSE(conn.socket(c.peer()).get_quiet_shutdown());
      } else {
        CHECK_FALSE(a.get_quiet_shutdown());
        a.set_quiet_shutdown(true);
        CHECK(a.get_quiet_shutdown());
      }
      const auto sent = conn.bytes_from(c.closer);
      for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(outcome(a, a.shutdown()) == success(1));
        CHECK(a.get_shutdown() == both_flags);
      }
      CHECK(conn.bytes_from(c.closer) == sent);
    }
  }
}

TEST_CASE("after a quiet shutdown read returns 0 zero_return, write connection_closed, send_close_notify already_sent, and nothing is sent") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    CHECK(outcome(b, b.write("in flight")) == success(9));  // never delivered: RECEIVED is set
    const auto sent = conn.bytes_from(c.closer);
    a.set_quiet_shutdown(true);
    CHECK(outcome(a, a.shutdown()) == success(1));
    std::byte buf[16];
    for (int i = 0; i < 2; ++i) {
      CAPTURE(i);
      CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
      CHECK(outcome(a, a.write("x")) == failure(errc::connection_closed));
      CHECK(a.send_close_notify() == errc::already_sent);
      CHECK(outcome(a, a.shutdown()) == success(1));
    }
    CHECK(a.get_shutdown() == both_flags);
    CHECK(conn.bytes_from(c.closer) == sent);
  }
}

TEST_CASE("the peer of a quiet shutdown sees a truncation when the transport closes") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    a.set_quiet_shutdown(true);
    CHECK(outcome(a, a.shutdown()) == success(1));
    conn.from(c.closer).inject_eof();  // the closer drops the transport
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == failure(errc::unexpected_eof));
    CHECK(b.get_shutdown() == 0);
  }
}

TEST_CASE("quiet shutdown while waiting for the peer's close_notify returns 1 at once") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto records = conn.records_from(c.closer);

    CHECK(outcome(a, a.shutdown()) == success(0));
    CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
    a.set_quiet_shutdown(true);
    CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(a.get_shutdown() == both_flags);
    CHECK(conn.records_from(c.closer) == records + 1);
  }
}

TEST_CASE("set_quiet_shutdown(false) turns quiet shutdown off again") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version, [](Config& client, Config& server) {
      client.quiet_shutdown = true;
      server.quiet_shutdown = true;
    });
    SecureSocket& a = conn.socket(c.closer);
    const auto records = conn.records_from(c.closer);

    a.set_quiet_shutdown(false);
    CHECK_FALSE(a.get_quiet_shutdown());
    CHECK(outcome(a, a.shutdown()) == success(0));
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(conn.records_from(c.closer) == records + 1);
  }
}

TEST_CASE("quiet shutdown before the handshake completes is still not_connected") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      SecureSocket& s = conn.socket(side);
      s.set_quiet_shutdown(true);
      CHECK(outcome(s, s.shutdown()) == failure(errc::not_connected));
      CHECK(s.get_shutdown() == 0);
      CHECK(conn.bytes_from(side) == 0);
    }
  }
}
