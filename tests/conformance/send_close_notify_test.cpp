// send_close_notify(): the GSKit one-step close. Sends our close_notify once,
// never waits, never sends a second one.
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {
constexpr unsigned both_flags = sent_shutdown | received_shutdown;
}

TEST_CASE("send_close_notify sends one close_notify, succeeds, sets SENT and does not wait") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto records = conn.records_from(c.closer);
    const auto alerts = conn.alerts_from(c.closer);

    std::byte buf[16];
    CHECK(outcome(a, a.read(buf)) == failure(errc::want_read));  // leave an error behind
    CHECK(a.send_close_notify() == std::error_code{});
    CHECK_FALSE(a.last_error());
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(conn.records_from(c.closer) == records + 1);
    CHECK(conn.alerts_from(c.closer) == alerts + (c.version == Version::tls1_2 ? 1 : 0));
  }
}

TEST_CASE("send_close_notify after shutdown returns already_sent and never sends a second alert") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());
    const auto records = conn.records_from(c.closer);

    CHECK(outcome(a, a.shutdown()) == success(0));
    CHECK(a.send_close_notify() == errc::already_sent);
    CHECK(a.last_error() == errc::already_sent);
    CHECK(a.send_close_notify() == errc::already_sent);
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(conn.records_from(c.closer) == records + 1);

    // ... and after the close has completed on both sides.
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(a.send_close_notify() == errc::already_sent);
    CHECK(b.send_close_notify() == errc::already_sent);
    CHECK(conn.records_from(c.closer) == records + 1);
    CHECK(a.get_shutdown() == both_flags);
  }
}

TEST_CASE("a second send_close_notify returns already_sent and sends nothing") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto records = conn.records_from(c.closer);

    CHECK(a.send_close_notify() == std::error_code{});
    for (int i = 0; i < 3; ++i) CHECK(a.send_close_notify() == errc::already_sent);
    CHECK(conn.records_from(c.closer) == records + 1);
    CHECK(a.get_shutdown() == sent_shutdown);
  }
}

TEST_CASE("shutdown after send_close_notify waits for the peer: want_read, then 1, with no second alert") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());
    const auto records = conn.records_from(c.closer);

    CHECK(a.send_close_notify() == std::error_code{});
    CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(a.get_shutdown() == both_flags);
    CHECK(conn.records_from(c.closer) == records + 1);
  }
}

TEST_CASE("send_close_notify after the peer's close_notify sends ours and succeeds") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    CHECK(a.send_close_notify() == std::error_code{});
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
    const auto records = conn.records_from(c.peer());
    CHECK(b.send_close_notify() == std::error_code{});
    CHECK(b.get_shutdown() == both_flags);
    CHECK(conn.records_from(c.peer()) == records + 1);
    // The GSKit two-step finishes with a read that ends in zero_return.
    CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
    CHECK(a.get_shutdown() == both_flags);
  }
}

TEST_CASE("after send_close_notify, read() delivers the peer's data, then 0 zero_return (the GSKit two-step close)") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    CHECK(a.send_close_notify() == std::error_code{});
    CHECK(outcome(b, b.write("last words")) == success(10));
    CHECK(b.send_close_notify() == std::error_code{});
    std::string got;
    CHECK(outcome(a, a.read(got)) == success(10));
    CHECK(got == "last words");
    std::byte buf[16];
    CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
    CHECK(a.get_shutdown() == both_flags);
  }
}

TEST_CASE("send_close_notify after set_shutdown(sent) or a quiet shutdown returns already_sent and sends nothing") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    for (bool quiet : {false, true}) {
      CAPTURE(quiet);
      MemoryConn conn = connect_memory(c.version);
      SecureSocket& a = conn.socket(c.closer);
      const auto sent = conn.bytes_from(c.closer);
      if (quiet) {
        a.set_quiet_shutdown(true);
        CHECK(outcome(a, a.shutdown()) == success(1));
      } else {
        a.set_shutdown(sent_shutdown);
      }
      CHECK(a.send_close_notify() == errc::already_sent);
      CHECK(conn.bytes_from(c.closer) == sent);
    }
  }
}

TEST_CASE("send_close_notify before the handshake completes returns not_connected and sends nothing") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      SecureSocket& s = conn.socket(side);
      CHECK(s.send_close_notify() == errc::not_connected);
      CHECK(s.last_error() == errc::not_connected);
      CHECK(s.get_shutdown() == 0);
      CHECK(conn.bytes_from(side) == 0);
    }
    CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
    const auto sent = conn.bytes_from(Side::client);
    CHECK(conn.client->send_close_notify() == errc::not_connected);
    CHECK(conn.bytes_from(Side::client) == sent);
    REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
    exchange(conn);
  }
}

TEST_CASE("send_close_notify while a write is unfinished returns write_pending") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    conn.from(c.closer).set_write_budget(0);
    CHECK(outcome(a, a.write("data")) == failure(errc::want_write));
    CHECK(a.send_close_notify() == errc::write_pending);
    CHECK(a.last_error() == errc::write_pending);
    CHECK(a.get_shutdown() == 0);
    CHECK(conn.from(c.closer).buffered() == 0);
    conn.from(c.closer).set_write_budget(-1);
    CHECK(outcome(a, a.write("data")) == success(4));
    CHECK(a.send_close_notify() == std::error_code{});
    CHECK(read_exact(b, 4) == "data");
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
  }
}

TEST_CASE("a stuck send_close_notify returns want_write with SENT set; the next call completes it and succeeds") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto records = conn.records_from(c.closer);

    conn.from(c.closer).set_write_budget(0);
    CHECK(a.send_close_notify() == errc::want_write);
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(a.send_close_notify() == errc::want_write);
    CHECK(outcome(a, a.write("x")) == failure(errc::connection_closed));
    conn.from(c.closer).set_write_budget(-1);
    SUBCASE("finished by send_close_notify") {
      CHECK(a.send_close_notify() == std::error_code{});
      CHECK(a.send_close_notify() == errc::already_sent);
    }
    SUBCASE("finished by shutdown") {
      CHECK(outcome(a, a.shutdown()) == success(0));
      CHECK(a.send_close_notify() == errc::already_sent);
    }
    CHECK(conn.records_from(c.closer) == records + 1);
    CHECK(a.get_shutdown() == sent_shutdown);
  }
}
