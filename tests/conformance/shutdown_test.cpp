// shutdown(): the OpenSSL two-step, row by row of docs/contract.md, on every
// backend, over the in-memory pair (non-blocking: waiting shows as want_read).
#include <cerrno>
#include <functional>

#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

constexpr unsigned both_flags = sent_shutdown | received_shutdown;

// The peer reads our close_notify and answers it: the second half of a close.
void answer_close(MemoryConn& conn, Side peer) {
  SecureSocket& b = conn.socket(peer);
  std::byte buf[16];
  CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
  CHECK(outcome(b, b.shutdown()) == success(1));
}

}  // namespace

TEST_CASE("shutdown before the handshake completes returns -1 not_connected and sends nothing") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);

    SUBCASE("never started") {
      for (Side side : {Side::client, Side::server}) {
        CAPTURE(side_name(side));
        SecureSocket& s = conn.socket(side);
        CHECK(outcome(s, s.shutdown()) == failure(errc::not_connected));
        CHECK(outcome(s, s.shutdown()) == failure(errc::not_connected));
        CHECK(s.get_shutdown() == 0);
        CHECK(conn.bytes_from(side) == 0);
      }
    }
    SUBCASE("in progress") {
      // The client's first flight is out, the server has answered: both are
      // mid-handshake.
      CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
      CHECK(outcome(*conn.server, conn.server->handshake()) == failure(errc::want_read));
      for (Side side : {Side::client, Side::server}) {
        CAPTURE(side_name(side));
        SecureSocket& s = conn.socket(side);
        const auto sent = conn.bytes_from(side);
        CHECK(outcome(s, s.shutdown()) == failure(errc::not_connected));
        CHECK(s.get_shutdown() == 0);
        CHECK(conn.bytes_from(side) == sent);
      }
    }
    // not_connected is not fatal: the handshake can still complete.
    REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
    exchange(conn);
  }
}

TEST_CASE("the first shutdown() sends one close_notify, returns 0 and sets SENT") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto records = conn.records_from(c.closer);
    const auto alerts = conn.alerts_from(c.closer);

    CHECK(outcome(a, a.shutdown()) == success(0));
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(conn.records_from(c.closer) == records + 1);
    // TLS 1.2 alerts have their own record type; TLS 1.3 hides them in application_data.
    CHECK(conn.alerts_from(c.closer) == alerts + (c.version == Version::tls1_2 ? 1 : 0));
    CHECK(conn.from(c.peer()).buffered() == 0);  // the peer sent nothing in return
  }
}

TEST_CASE("a second shutdown() while waiting returns want_read and sends no second alert") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    const auto records = conn.records_from(c.closer);

    CHECK(outcome(a, a.shutdown()) == success(0));
    for (int i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
      CHECK(a.get_shutdown() == sent_shutdown);
    }
    CHECK(conn.records_from(c.closer) == records + 1);
  }
}

TEST_CASE("shutdown() returns 1 when the peer's close_notify arrives, then 1 on every call without sending anything") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);

    CHECK(outcome(a, a.shutdown()) == success(0));
    CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
    answer_close(conn, c.peer());
    const auto sent = conn.bytes_from(c.closer);
    for (int i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(outcome(a, a.shutdown()) == success(1));
      CHECK(a.get_shutdown() == both_flags);
    }
    CHECK(conn.bytes_from(c.closer) == sent);
    CHECK(conn.to(c.closer).buffered() == 0);  // the peer's close_notify was consumed
  }
}

TEST_CASE("shutdown() after the peer's close_notify was read sends ours and returns 1") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    CHECK(outcome(a, a.shutdown()) == success(0));
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
    CHECK(b.get_shutdown() == received_shutdown);
    const auto records = conn.records_from(c.peer());
    const auto alerts = conn.alerts_from(c.peer());
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(b.get_shutdown() == both_flags);
    CHECK(conn.records_from(c.peer()) == records + 1);
    CHECK(conn.alerts_from(c.peer()) == alerts + (c.version == Version::tls1_2 ? 1 : 0));
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(conn.records_from(c.peer()) == records + 1);
    CHECK(outcome(a, a.shutdown()) == success(1));
  }
}

TEST_CASE("shutdown() with the peer's close_notify still unread returns 0, and the next call returns 1") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    CHECK(outcome(a, a.shutdown()) == success(0));
    // RECEIVED is set only when the close_notify is processed; the first call
    // only sends (as OpenSSL's does).
    const auto records = conn.records_from(c.peer());
    CHECK(outcome(b, b.shutdown()) == success(0));
    CHECK(b.get_shutdown() == sent_shutdown);
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(b.get_shutdown() == both_flags);
    CHECK(conn.records_from(c.peer()) == records + 1);
    CHECK(outcome(a, a.shutdown()) == success(1));
    CHECK(a.get_shutdown() == both_flags);
  }
}

TEST_CASE("shutdown() that meets application data returns data_pending and read() then returns the data") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    for (bool close_follows : {false, true}) {
      CAPTURE(close_follows);  // the peer's close_notify right behind the data, or not yet
      MemoryConn conn = connect_memory(c.version);
      SecureSocket& a = conn.socket(c.closer);
      SecureSocket& b = conn.socket(c.peer());

      CHECK(outcome(a, a.shutdown()) == success(0));
      CHECK(outcome(b, b.write("late data")) == success(9));
      if (close_follows) CHECK(outcome(b, b.shutdown()) == success(0));
      const auto sent = conn.bytes_from(c.closer);

      CHECK(outcome(a, a.shutdown()) == failure(errc::data_pending));
      CHECK(a.get_shutdown() == sent_shutdown);
      std::string got;
      CHECK(outcome(a, a.read(got)) == success(9));
      CHECK(got == "late data");
      if (!close_follows) {
        CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
        answer_close(conn, c.peer());
      }
      CHECK(outcome(a, a.shutdown()) == success(1));
      CHECK(a.get_shutdown() == both_flags);
      std::byte buf[16];
      CHECK(outcome(a, a.read(buf)) == end_of_data(errc::zero_return));
      CHECK(conn.bytes_from(c.closer) == sent);
      if (close_follows) CHECK(outcome(b, b.shutdown()) == success(1));
    }
  }
}

TEST_CASE("TLS 1.3 session tickets that arrive while shutdown() waits are not data_pending") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    // No exchange after the handshake: TLS 1.3 tickets are still in flight
    // to the client when it starts to close.
    MemoryConn conn = open_memory(v);
    REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
    if (v == Version::tls1_3) WARN_MESSAGE(conn.to(Side::client).buffered() > 0, "no post-handshake message in flight");
    SecureSocket& client = *conn.client;

    CHECK(outcome(client, client.shutdown()) == success(0));
    CHECK(outcome(client, client.shutdown()) == failure(errc::want_read));
    CHECK(conn.to(Side::client).buffered() == 0);  // consumed, silently
    CHECK(client.get_shutdown() == sent_shutdown);
    answer_close(conn, Side::server);
    CHECK(outcome(client, client.shutdown()) == success(1));
  }
}

TEST_CASE("EOF while shutdown() waits for close_notify is unexpected_eof, keeps SENT, and kills the connection") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);

    CHECK(outcome(a, a.shutdown()) == success(0));
    conn.to(c.closer).inject_eof();
    const auto sent = conn.bytes_from(c.closer);
    CHECK(outcome(a, a.shutdown()) == failure(errc::unexpected_eof));
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(outcome(a, a.shutdown()) == failure(errc::unexpected_eof));
    std::byte buf[16];
    CHECK(outcome(a, a.read(buf)) == failure(errc::unexpected_eof));
    CHECK(a.get_shutdown() == sent_shutdown);
    CHECK(conn.bytes_from(c.closer) == sent);
  }
}

TEST_CASE("a fatal alert while waiting for close_notify is protocol_error and sets RECEIVED") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    // Spoil our close_notify in flight: the peer fails on it and answers
    // with a fatal alert. A forged alert is
    // impossible once records are encrypted, so this is the real thing.
    conn.from(c.closer).hold(true);
    CHECK(outcome(a, a.shutdown()) == success(0));
    REQUIRE(conn.from(c.closer).corrupt_last_byte());
    conn.from(c.closer).hold(false);
    const auto peer_records = conn.records_from(c.peer());
    std::byte buf[16];
    CHECK(outcome(b, b.read(buf)) == failure(errc::protocol_error));
    // protocol_error means "fatal alert sent or received": every backend
    // answers a bad record with an alert (GnuTLS only when told to, T10).
    REQUIRE(conn.records_from(c.peer()) > peer_records);

    const auto sent = conn.bytes_from(c.closer);
    CHECK(outcome(a, a.shutdown()) == failure(errc::protocol_error));
    CHECK(a.get_shutdown() == both_flags);
    // Dead, not closed: the error repeats (an alert must never read as a clean close).
    CHECK(outcome(a, a.read(buf)) == failure(errc::protocol_error));
    CHECK(outcome(a, a.shutdown()) == failure(errc::protocol_error));
    CHECK(outcome(a, a.write("x")) == failure(errc::protocol_error));
    CHECK(a.send_close_notify() == errc::protocol_error);
    CHECK(a.get_shutdown() == both_flags);
    CHECK(conn.bytes_from(c.closer) == sent);
  }
}

TEST_CASE("a corrupted record while shutdown() waits for close_notify is protocol_error and kills the connection") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    MemoryConn conn = connect_memory(c.version);
    SecureSocket& a = conn.socket(c.closer);
    SecureSocket& b = conn.socket(c.peer());

    CHECK(outcome(a, a.shutdown()) == success(0));
    conn.from(c.peer()).hold(true);
    CHECK(outcome(b, b.write("data")) == success(4));
    REQUIRE(conn.from(c.peer()).corrupt_last_byte());
    conn.from(c.peer()).hold(false);

    CHECK(outcome(a, a.shutdown()) == failure(errc::protocol_error));
    CHECK((a.get_shutdown() & sent_shutdown) != 0);
    const unsigned flags = a.get_shutdown();
    // Whether a backend answers a bad record with an alert differs (T10); from here on, nothing.
    const auto sent = conn.bytes_from(c.closer);
    std::byte buf[16];
    CHECK(outcome(a, a.shutdown()) == failure(errc::protocol_error));
    CHECK(outcome(a, a.read(buf)) == failure(errc::protocol_error));
    CHECK(outcome(a, a.write("x")) == failure(errc::protocol_error));
    CHECK(a.send_close_notify() == errc::protocol_error);
    CHECK(a.get_shutdown() == flags);
    CHECK(conn.bytes_from(c.closer) == sent);
  }
}

TEST_CASE("a close_notify stuck behind a full transport returns want_write with SENT set; the next call flushes") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    for (std::ptrdiff_t budget : {0, 3}) {  // no room at all / room for part of the record
      for (bool flush_with_shutdown : {true, false}) {
        CAPTURE(budget);
        CAPTURE(flush_with_shutdown);
        MemoryConn conn = connect_memory(c.version);
        SecureSocket& a = conn.socket(c.closer);
        MemoryPipe& out = conn.from(c.closer);
        const auto records = conn.records_from(c.closer);
        const auto alerts = conn.alerts_from(c.closer);

        out.set_write_budget(budget);
        CHECK(outcome(a, a.shutdown()) == failure(errc::want_write));
        CHECK(a.get_shutdown() == sent_shutdown);
        CHECK(conn.records_from(c.closer) == records);  // at most part of it is out
        CHECK(out.buffered() <= static_cast<std::size_t>(budget));
        CHECK(outcome(a, a.shutdown()) == failure(errc::want_write));
        CHECK(a.get_shutdown() == sent_shutdown);

        out.set_write_budget(-1);  // the transport drains
        if (flush_with_shutdown) {
          CHECK(outcome(a, a.shutdown()) == success(0));
          CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
        } else {
          CHECK(a.send_close_notify() == std::error_code{});
          CHECK_FALSE(a.last_error());
          CHECK(a.send_close_notify() == errc::already_sent);
        }
        CHECK(a.get_shutdown() == sent_shutdown);
        CHECK(conn.records_from(c.closer) == records + 1);
        CHECK(conn.alerts_from(c.closer) == alerts + (c.version == Version::tls1_2 ? 1 : 0));

        answer_close(conn, c.peer());
        CHECK(outcome(a, a.shutdown()) == success(1));
        CHECK(conn.records_from(c.closer) == records + 1);
      }
    }
  }
}

TEST_CASE("shutdown while a write is unfinished returns write_pending") {
  for (const Closing& c : versions_and_closers()) SUBCASE(c.name.c_str()) {
    if (skip_unless_supported(c.version)) return;
    for (std::ptrdiff_t budget : {0, 10}) {  // nothing of the record out / part of it out
      CAPTURE(budget);
      MemoryConn conn = connect_memory(c.version);
      SecureSocket& a = conn.socket(c.closer);
      SecureSocket& b = conn.socket(c.peer());
      MemoryPipe& out = conn.from(c.closer);

      out.set_write_budget(budget);
      CHECK(outcome(a, a.write("data")) == failure(errc::want_write));
      const auto sent = conn.bytes_from(c.closer);
      CHECK(outcome(a, a.shutdown()) == failure(errc::write_pending));
      CHECK(outcome(a, a.shutdown()) == failure(errc::write_pending));
      CHECK(a.get_shutdown() == 0);
      out.set_write_budget(-1);
      CHECK(conn.bytes_from(c.closer) == sent);

      // Finishing the write (same bytes) unblocks the close.
      CHECK(outcome(a, a.write("data")) == success(4));
      CHECK(outcome(a, a.shutdown()) == success(0));
      CHECK(read_exact(b, 4) == "data");
      std::byte buf[16];
      CHECK(outcome(b, b.read(buf)) == end_of_data(errc::zero_return));
    }
  }
}

TEST_CASE("a dead connection repeats its error on read, write, shutdown and send_close_notify and sends nothing") {
  struct Cause {
    std::string_view name;
    errc code;
    // Makes side s fail, and returns the outcome of its failing call.
    std::function<Outcome(MemoryConn&, Side)> fail;
  };
  const Cause causes[] = {
      {"EOF without close_notify", errc::unexpected_eof,
       [](MemoryConn& conn, Side s) {
         conn.to(s).inject_eof();
         std::byte buf[16];
         return outcome(conn.socket(s), conn.socket(s).read(buf));
       }},
      {"connection reset while reading", errc::transport_error,
       [](MemoryConn& conn, Side s) {
         conn.to(s).inject_error(ECONNRESET);
         std::byte buf[16];
         return outcome(conn.socket(s), conn.socket(s).read(buf));
       }},
      {"broken pipe while writing", errc::transport_error,
       [](MemoryConn& conn, Side s) {
         conn.from(s).inject_error(EPIPE);
         return outcome(conn.socket(s), conn.socket(s).write("data"));
       }},
      {"corrupted record", errc::protocol_error,
       [](MemoryConn& conn, Side s) {
         conn.to(s).hold(true);
         CHECK(outcome(conn.socket(peer_of(s)), conn.socket(peer_of(s)).write("data")) == success(4));
         REQUIRE(conn.to(s).corrupt_last_byte());
         conn.to(s).hold(false);
         std::byte buf[16];
         return outcome(conn.socket(s), conn.socket(s).read(buf));
       }},
  };
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side side : {Side::client, Side::server}) {
      for (const Cause& cause : causes) {
        CAPTURE(side_name(side));
        CAPTURE(cause.name);
        MemoryConn conn = connect_memory(v);
        SecureSocket& s = conn.socket(side);

        CHECK(cause.fail(conn, side) == failure(cause.code));
        CHECK(s.get_shutdown() == 0);
        const auto sent = conn.bytes_from(side);
        std::byte buf[16];
        for (int i = 0; i < 2; ++i) {
          CAPTURE(i);
          CHECK(outcome(s, s.read(buf)) == failure(cause.code));
          CHECK(outcome(s, s.write("more")) == failure(cause.code));
          CHECK(outcome(s, s.shutdown()) == failure(cause.code));
          CHECK(s.send_close_notify() == cause.code);
          CHECK(s.last_error() == cause.code);
        }
        // Dead comes before quiet in the table.
        s.set_quiet_shutdown(true);
        CHECK(outcome(s, s.shutdown()) == failure(cause.code));
        CHECK(s.get_shutdown() == 0);
        CHECK(conn.bytes_from(side) == sent);
      }
    }
  }
}

TEST_CASE("a client session is resumed only after a proper close: SENT set and the connection not dead") {
  struct Ending {
    std::string_view name;
    bool resumable;
    std::function<void(MemoryConn&)> end;  // what the client does before it is destroyed
  };
  const Ending endings[] = {
      {"shutdown() returned 0", true,
       [](MemoryConn& conn) { CHECK(outcome(*conn.client, conn.client->shutdown()) == success(0)); }},
      {"both close_notify exchanged", true,
       [](MemoryConn& conn) {
         CHECK(outcome(*conn.client, conn.client->shutdown()) == success(0));
         answer_close(conn, Side::server);
         CHECK(outcome(*conn.client, conn.client->shutdown()) == success(1));
       }},
      {"send_close_notify()", true,
       [](MemoryConn& conn) { CHECK(conn.client->send_close_notify() == std::error_code{}); }},
      {"set_shutdown(sent_shutdown)", true, [](MemoryConn& conn) { conn.client->set_shutdown(sent_shutdown); }},
      {"quiet shutdown", true,
       [](MemoryConn& conn) {
         conn.client->set_quiet_shutdown(true);
         CHECK(outcome(*conn.client, conn.client->shutdown()) == success(1));
       }},
      {"destroyed with SENT unset", false, [](MemoryConn&) {}},
      {"dead: EOF without close_notify", false,
       [](MemoryConn& conn) {
         conn.to(Side::client).inject_eof();
         std::byte buf[16];
         CHECK(outcome(*conn.client, conn.client->read(buf)) == failure(errc::unexpected_eof));
       }},
      {"SENT set, then dead: EOF while waiting", false,
       [](MemoryConn& conn) {
         CHECK(outcome(*conn.client, conn.client->shutdown()) == success(0));
         conn.to(Side::client).inject_eof();
         CHECK(outcome(*conn.client, conn.client->shutdown()) == failure(errc::unexpected_eof));
       }},
  };
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (const Ending& ending : endings) {
      CAPTURE(ending.name);
      MemoryConn first = connect_memory(v);  // fresh contexts: an empty session cache
      ending.end(first);
      // Only the client's ending is varied; the server always closes properly.
      first.server->set_shutdown(sent_shutdown | received_shutdown);
      first.client.reset();
      first.server.reset();

      MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
      CHECK(second.client->session_reused() == ending.resumable);
      CHECK(second.server->session_reused() == ending.resumable);
    }
  }
}
