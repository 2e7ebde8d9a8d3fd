#include "shutdown_machine.hpp"

#include <unitls/secure_socket.hpp>

namespace unitls::detail {

unsigned ConnectionState::flags() const noexcept {
  return (sent ? sent_shutdown : 0u) | (received ? received_shutdown : 0u);
}

namespace {

Decision act(const ConnectionState& s, Action a) { return {s, a, {}}; }
Decision answer(const ConnectionState& s, Outcome o) { return {s, Action::none, o}; }
Decision fail(const ConnectionState& s, errc e) { return answer(s, Outcome::failure(-1, e)); }

// The sticky error of a dead connection. With require_close_notify == false
// a truncation still ends reads gracefully (glib-networking's
// require-close-notify): 0, unexpected_eof.
Decision dead_answer(const ConnectionState& s, Call call) {
  if (call == Call::read && s.error == errc::unexpected_eof && !s.require_close_notify)
    return answer(s, Outcome::failure(0, errc::unexpected_eof));
  return fail(s, s.error);
}

ConnectionState latch(ConnectionState s, errc e) {
  s.dead = true;
  s.error = e;
  s.flushing = false;
  return s;
}

Decision begin_shutdown(ConnectionState s) {
  // SSL_R_SHUTDOWN_WHILE_IN_INIT; and nothing on the wire (GnuTLS and
  // wolfSSL would send a plaintext alert, T9).
  // Nothing after a fatal error: GnuTLS would send a close_notify that makes
  // the peer believe the close was clean (T10). A handshake that failed is
  // dead too, and its error says more than not_connected.
  if (s.dead) return fail(s, s.error);
  if (!s.connected) return fail(s, errc::not_connected);
  if (s.quiet) {
    s.sent = s.received = true;
    s.flushing = false;
    return answer(s, Outcome::success(1));
  }
  if (s.flushing) return act(s, Action::send_alert);
  // Idempotent: never ask the backend again (GnuTLS and mbedTLS would send
  // another close_notify, T7/T14).
  if (s.sent && s.received) return answer(s, Outcome::success(1));
  if (!s.sent) {
    // The backend holds part of a record; an alert now would interleave.
    if (s.write_pending) return fail(s, errc::write_pending);
    s.sent = true;  // OpenSSL sets SENT before the alert is flushed (T5)
    return act(s, Action::send_alert);
  }
  // SENT, not RECEIVED: wait for the peer with a read, never with the
  // backend's shutdown (OpenSSL 3 fails on data, T2; GnuTLS re-sends, T7).
  if (s.has_kept_data) return fail(s, errc::data_pending);
  return act(s, Action::await_peer);
}

Decision begin_send_close_notify(ConnectionState s) {
  if (s.dead) return fail(s, s.error);
  if (!s.connected) return fail(s, errc::not_connected);
  if (s.flushing) return act(s, Action::send_alert);
  // GSKit "close notification already sent": never a second alert.
  if (s.sent) return fail(s, errc::already_sent);
  // Quiet mode is about shutdown(); an explicit send_close_notify() sends:
  // success must mean the alert went out.
  if (s.write_pending) return fail(s, errc::write_pending);
  s.sent = true;
  return act(s, Action::send_alert);
}

Decision begin_read(ConnectionState s) {
  // Data kept by data_pending came before anything that ended the stream.
  if (s.has_kept_data) return act(s, Action::deliver_kept);
  if (s.dead) return dead_answer(s, Call::read);
  if (!s.connected) return fail(s, errc::not_connected);
  // Sticky; records after the peer's close_notify are ignored (RFC 8446 6.1).
  if (s.received) return answer(s, Outcome::failure(0, errc::zero_return));
  return act(s, Action::read);
}

Decision begin_write(ConnectionState s) {
  if (s.dead) return fail(s, s.error);
  if (!s.connected) return fail(s, errc::not_connected);
  // GSKit: write after our close_notify fails; mbedTLS and wolfSSL would
  // send the data after the alert (T14, T19).
  if (s.sent) return fail(s, errc::connection_closed);
  return act(s, Action::write);
}

}  // namespace

Decision begin(ConnectionState s, Call call) noexcept {
  switch (call) {
    case Call::handshake:
      if (s.dead) return fail(s, s.error);
      if (s.connected) return answer(s, Outcome::success(1));
      return act(s, Action::handshake);
    case Call::read: return begin_read(s);
    case Call::write: return begin_write(s);
    case Call::shutdown: return begin_shutdown(s);
    case Call::send_close_notify: return begin_send_close_notify(s);
  }
  return fail(s, errc::invalid_argument);
}

Completion complete(ConnectionState s, Call call, Action action, const Result& r) noexcept {
  auto failed = [&](ConnectionState st, errc e) { return Completion{st, Outcome::failure(-1, e)}; };

  // Outcomes shared by every action.
  switch (r.status) {
    case Status::want_read:
      if (action == Action::write) s.write_pending = true;
      if (action == Action::send_alert) s.flushing = true;
      return failed(s, errc::want_read);
    case Status::want_write:
      if (action == Action::write) s.write_pending = true;
      if (action == Action::send_alert) s.flushing = true;
      return failed(s, errc::want_write);
    case Status::failed: {
      // A fatal alert that answers our close_notify is the peer's last word:
      // docs/contract.md sets RECEIVED for it (OpenSSL does the same).
      if (action == Action::await_peer && r.kind == errc::protocol_error && r.peer_alert)
        s.received = true;
      s = latch(s, r.kind);
      return failed(s, r.kind);
    }
    case Status::eof:
      // Truncation (T13, T21): never RECEIVED, always dead.
      s = latch(s, errc::unexpected_eof);
      if (call == Call::read) return {s, dead_answer(s, Call::read).outcome};
      return failed(s, errc::unexpected_eof);
    case Status::close_notify:
    case Status::done:
      break;
  }

  switch (action) {
    case Action::handshake:
      if (r.status == Status::close_notify) {  // a close_notify cannot end a handshake
        s = latch(s, errc::protocol_error);
        return failed(s, errc::protocol_error);
      }
      s.connected = true;
      return {s, Outcome::success(1)};
    case Action::read:
      if (r.status == Status::close_notify) {
        s.received = true;
        return {s, Outcome::failure(0, errc::zero_return)};
      }
      return {s, Outcome::success(static_cast<std::ptrdiff_t>(r.bytes))};
    case Action::write:
      s.write_pending = false;
      return {s, Outcome::success(static_cast<std::ptrdiff_t>(r.bytes))};
    case Action::send_alert:
      s.flushing = false;
      if (call == Call::send_close_notify) return {s, Outcome::success(0)};
      return {s, Outcome::success(s.received ? 1 : 0)};
    case Action::await_peer:
      if (r.status == Status::close_notify) {
        s.received = true;
        return {s, Outcome::success(1)};
      }
      // Application data before the peer's close_notify: kept, not fatal
      // (OpenSSL 3 would kill the connection here, T2).
      s.has_kept_data = r.bytes > 0;
      return failed(s, s.has_kept_data ? errc::data_pending : errc::want_read);
    case Action::deliver_kept:
    case Action::none:
      break;
  }
  return {s, Outcome::success(0)};
}

ConnectionState set_flags(ConnectionState s, unsigned mode) noexcept {
  if (mode & sent_shutdown) s.sent = true;
  if (mode & received_shutdown) s.received = true;
  return s;
}

}  // namespace unitls::detail
