// set_shutdown(): flags set by hand, never anything sent; they steer shutdown(),
// read() and write() exactly as the real events would.
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {
constexpr unsigned both_flags = sent_shutdown | received_shutdown;
}

TEST_CASE("set_shutdown only adds flags: a bit once set is never cleared, and nothing is sent") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto sent = conn.bytes_from(c.closer);
    const auto received = conn.bytes_from(c.peer());

    SUBCASE("sent, then received") {
      a.set_shutdown(sent_shutdown);
      CHECK(a.get_shutdown() == sent_shutdown);
      a.set_shutdown(0);
      CHECK(a.get_shutdown() == sent_shutdown);
      a.set_shutdown(received_shutdown);
      CHECK(a.get_shutdown() == both_flags);
    }
    SUBCASE("received, then sent") {
      a.set_shutdown(received_shutdown);
      CHECK(a.get_shutdown() == received_shutdown);
      a.set_shutdown(0);
      CHECK(a.get_shutdown() == received_shutdown);
      a.set_shutdown(sent_shutdown);
      CHECK(a.get_shutdown() == both_flags);
    }
    SUBCASE("both at once") {
      a.set_shutdown(both_flags);
      CHECK(a.get_shutdown() == both_flags);
    }
    a.set_shutdown(0);
    a.set_shutdown(sent_shutdown);
    a.set_shutdown(received_shutdown);
    CHECK(a.get_shutdown() == both_flags);
    CHECK(conn.bytes_from(c.closer) == sent);
    CHECK(conn.bytes_from(c.peer()) == received);
  }
}

TEST_CASE("set_shutdown never clears a flag set by a real close_notify") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    CHECK(outcome(a, a.shutdown()) == success(0));
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
    a.set_shutdown(0);
    b.set_shutdown(0);
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(b.get_shutdown() == received_shutdown);
    a.set_shutdown(received_shutdown);
    CHECK(a.get_shutdown() == both_flags);
    CHECK(outcome(a, a.write("x")) == failure(errc::connection_closed));
  }
}

TEST_CASE("set_shutdown(sent) then shutdown() waits for the peer as after a sent close_notify, sending nothing") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());
    const auto sent = conn.bytes_from(c.closer);

    a.set_shutdown(sent_shutdown);
    CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
    CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(outcome(a, a.write("x")) == failure(errc::connection_closed));
    CHECK(a.send_close_notify() == errc::already_sent);
    CHECK(conn.bytes_from(c.closer) == sent);

    // The peer never gets a close_notify from us; it closes on its own.
    CHECK(outcome(b, b.shutdown()) == success(0));
    CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(a.get_shutdown() == both_flags);
    CHECK(conn.bytes_from(c.closer) == sent);
    CHECK(outcome(b, b.shutdown()) == failure(errc::want_read));
  }
}

TEST_CASE("set_shutdown(received) then shutdown() sends our close_notify and returns 1") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());
    const auto records = conn.records_from(c.closer);
    const auto alerts = conn.alerts_from(c.closer);

    a.set_shutdown(received_shutdown);
    CHECK(conn.records_from(c.closer) == records);
    // RECEIVED without SENT is a half-closed connection: we may still write.
    CHECK(outcome(a, a.write("still open")) == success(10));
    CHECK(read_exact(b, 10) == "still open");

    CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(a.get_shutdown() == both_flags);
    CHECK(conn.records_from(c.closer) == records + 2);  // the data record and the close_notify
    CHECK(conn.alerts_from(c.closer) == alerts + (c.version == Version::tls1_2 ? 1 : 0));
    CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(conn.records_from(c.closer) == records + 2);
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
  }
}

TEST_CASE("set_shutdown(sent|received) then shutdown() returns 1 and sends nothing") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto sent = conn.bytes_from(c.closer);

    a.set_shutdown(both_flags);
    for (int i = 0; i < 3; ++i) CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(a.get_shutdown() == both_flags);
    CHECK(a.send_close_notify() == errc::already_sent);
    CHECK(outcome(a, a.write("x")) == failure(errc::connection_closed));
    std::byte buf[16];
    CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
    CHECK(conn.bytes_from(c.closer) == sent);
  }
}

TEST_CASE("after set_shutdown(received), read() returns 0 zero_return, after any data kept by data_pending") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());
    std::byte buf[16];

    SUBCASE("data in flight is not delivered") {
      CHECK(outcome(b, b.write("unread")) == success(6));
      a.set_shutdown(received_shutdown);
      CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
      CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
    }
    SUBCASE("nothing in flight") {
      a.set_shutdown(received_shutdown);
      CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
      CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
    }
    SUBCASE("data already kept by data_pending comes first") {
      CHECK(outcome(a, a.shutdown()) == success(0));
      CHECK(outcome(b, b.write("kept")) == success(4));
      CHECK(outcome(a, a.shutdown()) == failure(errc::data_pending));
      const auto sent = conn.bytes_from(c.closer);
      a.set_shutdown(received_shutdown);
      std::string got;
      CHECK(outcome(a, a.read(got)) == success(4));
      CHECK(got == "kept");
      CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
      CHECK(outcome(a, a.shutdown()) == success(1));
      CHECK(conn.bytes_from(c.closer) == sent);
    }
  }
}
