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

// Where a call starts: returns the action to run (or the outcome directly).
Decision begin(ConnectionState s, Call call) noexcept;

// What an action's engine result means for the call. For read/write/
// await_peer, r.bytes is what moved.
struct Completion {
  ConnectionState state;
  Outcome outcome;
};
Completion complete(ConnectionState s, Call call, Action action, const Result& r) noexcept;

// set_shutdown(): flags only grow (a close_notify cannot be unsent).
ConnectionState set_flags(ConnectionState s, unsigned mode) noexcept;

}  // namespace unitls::detail
