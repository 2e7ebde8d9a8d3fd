// The shutdown state machine: every rule of docs/contract.md, once, for every
// backend. Pure: (state, call) -> (state, action), and (state, action,
// engine status) -> (state, outcome). No I/O, no backend; SocketCore runs the
// actions against an Engine. Tested on its own in tests/core.
#pragma once

#include <cstddef>

#include <unitls/error.hpp>

#include "engine.hpp"

namespace unitls::detail {

// The whole state of a connection as the core sees it: per-direction
// shutdown state, BoringSSL style, and the facts that change what a call
// means (connected, dead, a write to repeat, data kept).
struct ConnectionState {
  bool connected = false;  // handshake complete
  bool sent = false;       // SENT: our close_notify produced, or set by hand / quiet
  bool flushing = false;   // our close_notify is produced but stuck (want_write)
  bool received = false;   // RECEIVED: peer's close_notify processed, or set by hand / quiet
  bool quiet = false;      // quiet shutdown
  bool write_pending = false;  // an engine write answered want_write and was not finished
  bool dead = false;       // a fatal error is latched in `error`
  errc error = errc::protocol_error;  // meaningful only when dead
  bool require_close_notify = true;   // Config: EOF without close_notify is an error
  bool has_kept_data = false;         // data_pending left bytes for read()

  unsigned flags() const noexcept;  // sent_shutdown | received_shutdown
};

enum class Call { handshake, read, write, shutdown, send_close_notify };

// What SocketCore must do next.
enum class Action {
  none,             // nothing: return the outcome as it stands
  handshake,        // Engine::handshake()
  read,             // Engine::read() into the caller's buffer
  deliver_kept,     // copy from the bytes kept by data_pending
  write,            // Engine::write() of the caller's bytes
  send_alert,       // Engine::send_close_notify() (first call or flush)
  await_peer,       // Engine::read() into the kept-data buffer, looking for close_notify
};

// What a call returns: ret is the call's int result (bytes for read/write),
// error the errc for last_error() (none = success).
struct Outcome {
  std::ptrdiff_t ret = 0;
  bool has_error = false;
  errc error = errc::protocol_error;

  static Outcome success(std::ptrdiff_t r) { return {r, false, errc::protocol_error}; }
  static Outcome failure(std::ptrdiff_t r, errc e) { return {r, true, e}; }
};

struct Decision {
  ConnectionState state;
  Action action = Action::none;
  Outcome outcome;  // when action == none
};

// Where a call starts, in place: s becomes the state the call runs in, and
// the result is the action to run (Action::none: `out` is the call's
// outcome as it stands).
inline Action start(ConnectionState& s, Call call, Outcome& out) noexcept;

// What an action's engine result means for the call, in place: s becomes
// the state after it. For read/write/await_peer, r.bytes is what moved.
inline Outcome finish(ConnectionState& s, Call call, Action action, const Result& r) noexcept;

// The same as pure functions, (state, call) -> (state, action) and
// (state, action, engine result) -> (state, outcome): how tests/core reads
// the rules.
inline Decision begin(ConnectionState s, Call call) noexcept {
  Decision d;
  d.action = start(s, call, d.outcome);
  d.state = s;
  return d;
}
struct Completion {
  ConnectionState state;
  Outcome outcome;
};
inline Completion complete(ConnectionState s, Call call, Action action, const Result& r) noexcept {
  const Outcome o = finish(s, call, action, r);
  return {s, o};
}

// set_shutdown(): flags only grow (a close_notify cannot be unsent).
ConnectionState set_flags(ConnectionState s, unsigned mode) noexcept;

// ---- the rules -------------------------------------------------------------
// Inline and in place: each call's start() and finish() reduce to a few
// tests and stores of the state once the compiler knows the call, instead
// of copies of the whole state through two calls (docs/benchmarks.md).

namespace machine {

inline Action fail(Outcome& out, errc e) {
  out = Outcome::failure(-1, e);
  return Action::none;
}
inline Action succeed(Outcome& out, std::ptrdiff_t ret) {
  out = Outcome::success(ret);
  return Action::none;
}

// The sticky error of a dead connection. With require_close_notify == false
// a truncation still ends reads gracefully (glib-networking's
// require-close-notify): 0, unexpected_eof.
inline Outcome dead_answer(const ConnectionState& s, Call call) {
  if (call == Call::read && s.error == errc::unexpected_eof && !s.require_close_notify)
    return Outcome::failure(0, errc::unexpected_eof);
  return Outcome::failure(-1, s.error);
}

inline void latch(ConnectionState& s, errc e) {
  s.dead = true;
  s.error = e;
  s.flushing = false;
}

inline Action start_shutdown(ConnectionState& s, Outcome& out) {
  // SSL_R_SHUTDOWN_WHILE_IN_INIT; and nothing on the wire (GnuTLS and
  // wolfSSL would send a plaintext alert, T9).
  // Nothing after a fatal error: GnuTLS would send a close_notify that makes
  // the peer believe the close was clean (T10). A handshake that failed is
  // dead too, and its error says more than not_connected.
  if (s.dead) return fail(out, s.error);
  if (!s.connected) return fail(out, errc::not_connected);
  if (s.quiet) {
    s.sent = s.received = true;
    s.flushing = false;
    return succeed(out, 1);
  }
  if (s.flushing) return Action::send_alert;
  // Idempotent: never ask the backend again (GnuTLS and mbedTLS would send
  // another close_notify, T7/T14).
  if (s.sent && s.received) return succeed(out, 1);
  if (!s.sent) {
    // The backend holds part of a record; an alert now would interleave.
    if (s.write_pending) return fail(out, errc::write_pending);
    s.sent = true;  // OpenSSL sets SENT before the alert is flushed (T5)
    return Action::send_alert;
  }
  // SENT, not RECEIVED: wait for the peer with a read, never with the
  // backend's shutdown (OpenSSL 3 fails on data, T2; GnuTLS re-sends, T7).
  if (s.has_kept_data) return fail(out, errc::data_pending);
  return Action::await_peer;
}

inline Action start_send_close_notify(ConnectionState& s, Outcome& out) {
  if (s.dead) return fail(out, s.error);
  if (!s.connected) return fail(out, errc::not_connected);
  if (s.flushing) return Action::send_alert;
  // GSKit "close notification already sent": never a second alert.
  if (s.sent) return fail(out, errc::already_sent);
  // Quiet mode is about shutdown(); an explicit send_close_notify() sends:
  // success must mean the alert went out.
  if (s.write_pending) return fail(out, errc::write_pending);
  s.sent = true;
  return Action::send_alert;
}

inline Action start_read(const ConnectionState& s, Outcome& out) {
  // Data kept by data_pending came before anything that ended the stream.
  if (s.has_kept_data) return Action::deliver_kept;
  if (s.dead) {
    out = dead_answer(s, Call::read);
    return Action::none;
  }
  if (!s.connected) return fail(out, errc::not_connected);
  // Sticky; records after the peer's close_notify are ignored (RFC 8446 6.1).
  if (s.received) {
    out = Outcome::failure(0, errc::zero_return);
    return Action::none;
  }
  return Action::read;
}

inline Action start_write(const ConnectionState& s, Outcome& out) {
  if (s.dead) return fail(out, s.error);
  if (!s.connected) return fail(out, errc::not_connected);
  // GSKit: write after our close_notify fails; mbedTLS and wolfSSL would
  // send the data after the alert (T14, T19).
  if (s.sent) return fail(out, errc::connection_closed);
  return Action::write;
}

}  // namespace machine

inline Action start(ConnectionState& s, Call call, Outcome& out) noexcept {
  using namespace machine;
  switch (call) {
    case Call::handshake:
      if (s.dead) return fail(out, s.error);
      if (s.connected) return succeed(out, 1);
      return Action::handshake;
    case Call::read: return start_read(s, out);
    case Call::write: return start_write(s, out);
    case Call::shutdown: return start_shutdown(s, out);
    case Call::send_close_notify: return start_send_close_notify(s, out);
  }
  return fail(out, errc::invalid_argument);
}

inline Outcome finish(ConnectionState& s, Call call, Action action, const Result& r) noexcept {
  using namespace machine;
  // Outcomes shared by every action.
  switch (r.status) {
    case Status::want_read:
    case Status::want_write:
      if (action == Action::write) s.write_pending = true;
      if (action == Action::send_alert) s.flushing = true;
      return Outcome::failure(-1, r.status == Status::want_read ? errc::want_read : errc::want_write);
    case Status::failed:
      // A fatal alert that answers our close_notify is the peer's last word:
      // docs/contract.md sets RECEIVED for it (OpenSSL does the same).
      if (action == Action::await_peer && r.kind == errc::protocol_error && r.peer_alert)
        s.received = true;
      latch(s, r.kind);
      return Outcome::failure(-1, r.kind);
    case Status::eof:
      // Truncation (T13, T21): never RECEIVED, always dead.
      latch(s, errc::unexpected_eof);
      if (call == Call::read) return dead_answer(s, Call::read);
      return Outcome::failure(-1, errc::unexpected_eof);
    case Status::close_notify:
    case Status::done:
      break;
  }

  switch (action) {
    case Action::handshake:
      if (r.status == Status::close_notify) {  // a close_notify cannot end a handshake
        latch(s, errc::protocol_error);
        return Outcome::failure(-1, errc::protocol_error);
      }
      s.connected = true;
      return Outcome::success(1);
    case Action::read:
      if (r.status == Status::close_notify) {
        s.received = true;
        return Outcome::failure(0, errc::zero_return);
      }
      return Outcome::success(static_cast<std::ptrdiff_t>(r.bytes));
    case Action::write:
      s.write_pending = false;
      return Outcome::success(static_cast<std::ptrdiff_t>(r.bytes));
    case Action::send_alert:
      s.flushing = false;
      if (call == Call::send_close_notify) return Outcome::success(0);
      return Outcome::success(s.received ? 1 : 0);
    case Action::await_peer:
      if (r.status == Status::close_notify) {
        s.received = true;
        return Outcome::success(1);
      }
      // Application data before the peer's close_notify: kept, not fatal
      // (OpenSSL 3 would kill the connection here, T2).
      s.has_kept_data = r.bytes > 0;
      return Outcome::failure(-1, s.has_kept_data ? errc::data_pending : errc::want_read);
    case Action::deliver_kept:
    case Action::none:
      break;
  }
  return Outcome::success(0);
}

}  // namespace unitls::detail
