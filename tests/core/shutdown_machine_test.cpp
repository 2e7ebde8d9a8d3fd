// The shutdown state machine on its own: no backend, no transport. Each case
// is one row of docs/contract.md, stated as (state, call) -> (action | outcome)
// and (state, action, engine status) -> (state, outcome).
#include <unitls/secure_socket.hpp>

#include "doctest.hpp"
#include "shutdown_machine.hpp"

using namespace unitls;
using namespace unitls::detail;

namespace {

ConnectionState connected() {
  ConnectionState s;
  s.connected = true;
  return s;
}

ConnectionState dead(errc e) {
  ConnectionState s = connected();
  s.dead = true;
  s.error = e;
  return s;
}

void check_fails(const Decision& d, std::ptrdiff_t ret, errc e) {
  CHECK(d.action == Action::none);
  CHECK(d.outcome.ret == ret);
  REQUIRE(d.outcome.has_error);
  CHECK(d.outcome.error == e);
}

void check_succeeds(const Decision& d, std::ptrdiff_t ret) {
  CHECK(d.action == Action::none);
  CHECK_FALSE(d.outcome.has_error);
  CHECK(d.outcome.ret == ret);
}

Result failed(errc e, bool peer_alert = false) { return Result::fail(e, {}, peer_alert); }

}  // namespace

TEST_SUITE("shutdown machine") {

TEST_CASE("every call before the handshake completes is not_connected and leaves the flags alone") {
  ConnectionState s;
  for (Call c : {Call::read, Call::write, Call::shutdown, Call::send_close_notify}) {
    Decision d = begin(s, c);
    check_fails(d, -1, errc::not_connected);
    CHECK(d.state.flags() == 0);
  }
}

TEST_CASE("a handshake call runs the engine until it is done, then answers 1 without it") {
  ConnectionState s;
  Decision d = begin(s, Call::handshake);
  CHECK(d.action == Action::handshake);
  Completion c = complete(d.state, Call::handshake, d.action, Result::of(Status::want_read));
  CHECK(c.outcome.error == errc::want_read);
  CHECK_FALSE(c.state.connected);
  c = complete(c.state, Call::handshake, Action::handshake, Result::ok());
  CHECK(c.state.connected);
  check_succeeds(begin(c.state, Call::handshake), 1);
}

TEST_CASE("a failed handshake latches its error: certificate_error stays") {
  Completion c = complete(ConnectionState{}, Call::handshake, Action::handshake,
                          failed(errc::certificate_error));
  CHECK(c.state.dead);
  for (Call call : {Call::handshake, Call::shutdown, Call::send_close_notify})
    check_fails(begin(c.state, call), -1, errc::certificate_error);
}

TEST_CASE("the first shutdown sets SENT and sends the alert; done answers 0") {
  Decision d = begin(connected(), Call::shutdown);
  CHECK(d.action == Action::send_alert);
  CHECK(d.state.flags() == sent_shutdown);
  Completion c = complete(d.state, Call::shutdown, d.action, Result::ok());
  CHECK_FALSE(c.outcome.has_error);
  CHECK(c.outcome.ret == 0);
  CHECK(c.state.flags() == sent_shutdown);
}

TEST_CASE("shutdown after the peer closed first sends the alert and answers 1") {
  ConnectionState s = connected();
  s.received = true;
  Decision d = begin(s, Call::shutdown);
  CHECK(d.action == Action::send_alert);
  Completion c = complete(d.state, Call::shutdown, d.action, Result::ok());
  CHECK(c.outcome.ret == 1);
  CHECK(c.state.flags() == (sent_shutdown | received_shutdown));
}

TEST_CASE("a second shutdown waits for the peer with a read, never a second alert") {
  ConnectionState s = connected();
  s.sent = true;
  Decision d = begin(s, Call::shutdown);
  CHECK(d.action == Action::await_peer);
  SUBCASE("nothing arrived: want_read, SENT only") {
    Completion c = complete(d.state, Call::shutdown, d.action, Result::of(Status::want_read));
    CHECK(c.outcome.ret == -1);
    CHECK(c.outcome.error == errc::want_read);
    CHECK(c.state.flags() == sent_shutdown);
    CHECK(begin(c.state, Call::shutdown).action == Action::await_peer);
  }
  SUBCASE("the peer's close_notify: 1, SENT|RECEIVED") {
    Completion c = complete(d.state, Call::shutdown, d.action, Result::of(Status::close_notify));
    CHECK(c.outcome.ret == 1);
    CHECK_FALSE(c.outcome.has_error);
    CHECK(c.state.flags() == (sent_shutdown | received_shutdown));
  }
  SUBCASE("application data: data_pending, kept for read, not fatal") {
    Completion c = complete(d.state, Call::shutdown, d.action, Result::ok(10));
    CHECK(c.outcome.error == errc::data_pending);
    CHECK(c.state.has_kept_data);
    CHECK_FALSE(c.state.dead);
    CHECK(begin(c.state, Call::read).action == Action::deliver_kept);
    check_fails(begin(c.state, Call::shutdown), -1, errc::data_pending);
  }
  SUBCASE("EOF: unexpected_eof, dead, RECEIVED stays unset") {
    Completion c = complete(d.state, Call::shutdown, d.action, Result::of(Status::eof));
    CHECK(c.outcome.error == errc::unexpected_eof);
    CHECK(c.state.dead);
    CHECK(c.state.flags() == sent_shutdown);
  }
  SUBCASE("a fatal alert from the peer: protocol_error, SENT|RECEIVED, dead") {
    Completion c = complete(d.state, Call::shutdown, d.action, failed(errc::protocol_error, true));
    CHECK(c.outcome.error == errc::protocol_error);
    CHECK(c.state.dead);
    CHECK(c.state.flags() == (sent_shutdown | received_shutdown));
  }
  SUBCASE("a bad record we rejected ourselves: protocol_error, RECEIVED stays unset") {
    Completion c = complete(d.state, Call::shutdown, d.action, failed(errc::protocol_error, false));
    CHECK(c.state.dead);
    CHECK(c.state.flags() == sent_shutdown);
  }
}

TEST_CASE("shutdown with SENT and RECEIVED answers 1 any number of times, touching nothing") {
  ConnectionState s = connected();
  s.sent = s.received = true;
  for (int i = 0; i < 3; ++i) {
    Decision d = begin(s, Call::shutdown);
    check_succeeds(d, 1);
    s = d.state;
  }
}

TEST_CASE("quiet shutdown answers 1 at once, sends nothing and sets both flags") {
  ConnectionState s = connected();
  s.quiet = true;
  Decision d = begin(s, Call::shutdown);
  check_succeeds(d, 1);
  CHECK(d.state.flags() == (sent_shutdown | received_shutdown));
  check_fails(begin(d.state, Call::write), -1, errc::connection_closed);
  check_fails(begin(d.state, Call::read), 0, errc::zero_return);
  check_fails(begin(d.state, Call::send_close_notify), -1, errc::already_sent);
}

TEST_CASE("a close_notify stuck behind the transport: want_write with SENT, the next call flushes") {
  Decision d = begin(connected(), Call::shutdown);
  Completion c = complete(d.state, Call::shutdown, d.action, Result::of(Status::want_write));
  CHECK(c.outcome.error == errc::want_write);
  CHECK(c.state.flags() == sent_shutdown);
  CHECK(c.state.flushing);
  SUBCASE("shutdown continues the flush and answers 0") {
    Decision d2 = begin(c.state, Call::shutdown);
    CHECK(d2.action == Action::send_alert);
    Completion c2 = complete(d2.state, Call::shutdown, d2.action, Result::ok());
    CHECK(c2.outcome.ret == 0);
    CHECK_FALSE(c2.state.flushing);
  }
  SUBCASE("send_close_notify continues the flush and succeeds") {
    Decision d2 = begin(c.state, Call::send_close_notify);
    CHECK(d2.action == Action::send_alert);
    Completion c2 = complete(d2.state, Call::send_close_notify, d2.action, Result::ok());
    CHECK_FALSE(c2.outcome.has_error);
    check_fails(begin(c2.state, Call::send_close_notify), -1, errc::already_sent);
  }
  SUBCASE("write is refused meanwhile") {
    check_fails(begin(c.state, Call::write), -1, errc::connection_closed);
  }
}

TEST_CASE("shutdown and send_close_notify while a write is unfinished answer write_pending") {
  Decision d = begin(connected(), Call::write);
  Completion c = complete(d.state, Call::write, d.action, Result::of(Status::want_write));
  CHECK(c.state.write_pending);
  Decision s1 = begin(c.state, Call::shutdown);
  check_fails(s1, -1, errc::write_pending);
  CHECK(s1.state.flags() == 0);
  check_fails(begin(c.state, Call::send_close_notify), -1, errc::write_pending);
  Completion done = complete(c.state, Call::write, Action::write, Result::ok(5));
  CHECK_FALSE(done.state.write_pending);
  CHECK(begin(done.state, Call::shutdown).action == Action::send_alert);
}

TEST_CASE("send_close_notify sends once; every later call is already_sent") {
  Decision d = begin(connected(), Call::send_close_notify);
  CHECK(d.action == Action::send_alert);
  Completion c = complete(d.state, Call::send_close_notify, d.action, Result::ok());
  CHECK_FALSE(c.outcome.has_error);
  CHECK(c.state.flags() == sent_shutdown);
  check_fails(begin(c.state, Call::send_close_notify), -1, errc::already_sent);
  // shutdown() then waits, as after its own 0
  CHECK(begin(c.state, Call::shutdown).action == Action::await_peer);
}

TEST_CASE("send_close_notify after SENT was set by hand is already_sent") {
  ConnectionState s = set_flags(connected(), sent_shutdown);
  check_fails(begin(s, Call::send_close_notify), -1, errc::already_sent);
}

TEST_CASE("write after SENT is connection_closed; write after RECEIVED alone still works") {
  check_fails(begin(set_flags(connected(), sent_shutdown), Call::write), -1, errc::connection_closed);
  CHECK(begin(set_flags(connected(), received_shutdown), Call::write).action == Action::write);
}

TEST_CASE("read after RECEIVED is 0 zero_return every time, without the engine") {
  ConnectionState s = connected();
  Completion c = complete(s, Call::read, Action::read, Result::of(Status::close_notify));
  CHECK(c.outcome.ret == 0);
  CHECK(c.outcome.error == errc::zero_return);
  for (int i = 0; i < 3; ++i) check_fails(begin(c.state, Call::read), 0, errc::zero_return);
  check_fails(begin(set_flags(connected(), received_shutdown), Call::read), 0, errc::zero_return);
}

TEST_CASE("read after our own close_notify still reads the peer's data (half-close)") {
  ConnectionState s = set_flags(connected(), sent_shutdown);
  CHECK(begin(s, Call::read).action == Action::read);
}

TEST_CASE("EOF on read is unexpected_eof and kills the connection") {
  Completion c = complete(connected(), Call::read, Action::read, Result::of(Status::eof));
  CHECK(c.outcome.ret == -1);
  CHECK(c.outcome.error == errc::unexpected_eof);
  CHECK(c.state.dead);
  CHECK(c.state.flags() == 0);
  check_fails(begin(c.state, Call::read), -1, errc::unexpected_eof);
  check_fails(begin(c.state, Call::write), -1, errc::unexpected_eof);
  check_fails(begin(c.state, Call::shutdown), -1, errc::unexpected_eof);
  check_fails(begin(c.state, Call::send_close_notify), -1, errc::unexpected_eof);
}

TEST_CASE("with require_close_notify off, EOF reads as 0 unexpected_eof, RECEIVED unset, every time") {
  ConnectionState s = connected();
  s.require_close_notify = false;
  Completion c = complete(s, Call::read, Action::read, Result::of(Status::eof));
  CHECK(c.outcome.ret == 0);
  CHECK(c.outcome.error == errc::unexpected_eof);
  CHECK(c.state.flags() == 0);
  check_fails(begin(c.state, Call::read), 0, errc::unexpected_eof);
  check_fails(begin(c.state, Call::shutdown), -1, errc::unexpected_eof);
}

TEST_CASE("a dead connection repeats its error on every call: transport_error, protocol_error") {
  for (errc e : {errc::transport_error, errc::protocol_error, errc::certificate_error}) {
    ConnectionState s = dead(e);
    for (Call c : {Call::read, Call::write, Call::shutdown, Call::send_close_notify})
      check_fails(begin(s, c), -1, e);
  }
}

TEST_CASE("a dead connection answers its error even with quiet shutdown on") {
  ConnectionState s = dead(errc::protocol_error);
  s.quiet = true;
  check_fails(begin(s, Call::shutdown), -1, errc::protocol_error);
}

TEST_CASE("set_shutdown only adds flags") {
  ConnectionState s = set_flags(connected(), received_shutdown);
  s = set_flags(s, 0);
  CHECK(s.flags() == received_shutdown);
  s = set_flags(s, sent_shutdown);
  CHECK(s.flags() == (sent_shutdown | received_shutdown));
  s = set_flags(s, 0);
  CHECK(s.flags() == (sent_shutdown | received_shutdown));
}

TEST_CASE("set_shutdown(SENT|RECEIVED) then shutdown answers 1 and sends nothing") {
  check_succeeds(begin(set_flags(connected(), sent_shutdown | received_shutdown), Call::shutdown), 1);
}

TEST_CASE("a transport failure while sending the alert latches transport_error") {
  Decision d = begin(connected(), Call::shutdown);
  Completion c = complete(d.state, Call::shutdown, d.action, failed(errc::transport_error));
  CHECK(c.outcome.error == errc::transport_error);
  CHECK(c.state.dead);
  CHECK(c.state.flags() == sent_shutdown);
}

}  // TEST_SUITE

TEST_SUITE("shutdown machine") {

TEST_CASE("set_shutdown(SENT) while a write is unfinished: shutdown waits for the peer, no write_pending") {
  Decision w = begin(connected(), Call::write);
  Completion c = complete(w.state, Call::write, w.action, Result::of(Status::want_write));
  ConnectionState s = set_flags(c.state, sent_shutdown);
  CHECK(begin(s, Call::shutdown).action == Action::await_peer);
}

TEST_CASE("send_close_notify with quiet mode on still sends the alert: success means it went out") {
  ConnectionState s = connected();
  s.quiet = true;
  Decision d = begin(s, Call::send_close_notify);
  CHECK(d.action == Action::send_alert);
  CHECK(d.state.flags() == sent_shutdown);
}

}  // TEST_SUITE
