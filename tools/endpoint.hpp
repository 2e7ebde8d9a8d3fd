// One TLS connection driven without blocking: handshake, relay, and the close
// in one of four styles. `unitls client`/`server` drive an Endpoint from a
// poll() loop over the socket and stdin; `unitls demo` drives two of them
// (client and server) from one loop, so the steps come in a fixed order.
#pragma once

#include <unitls/unitls.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tool {

// How an endpoint closes, when its input ends or the peer closes first.
enum class CloseStyle {
  bidi,   // shutdown() until it returns 1 (OpenSSL's two-step)
  once,   // send_close_notify(), then read() to zero_return (GSKit's one-step)
  quiet,  // set_quiet_shutdown(true) + shutdown(): nothing on the wire
  drop,   // close the socket without close_notify (a truncation, on purpose)
};
std::optional<CloseStyle> parse_close_style(std::string_view name);
std::string_view name_of(CloseStyle style);

// One call of the close sequence, as the socket reported it right after.
struct Step {
  std::string call;    // "shutdown", "read", "send_close_notify", "set_quiet_shutdown", "drop"
  std::string result;  // "0", "-1", "ok", "already_sent"; "" for set_quiet_shutdown and drop
  std::error_code error;
  unsigned flags = 0;
  // A want_read/want_write retry or a read that returned data: printed by
  // --trace, left out of the compact sequence (how many there are depends
  // on timing).
  bool routine = false;
};
// "shutdown() = 0  last_error=ok  flags=SENT"
std::string trace_line(const Step& step);
// "shutdown=0[S]", "read=0/zero_return[R]", "send_close_notify=ok[S]", "drop"
std::string compact(const Step& step);

// What the handshake settled, kept after the socket is gone.
struct Facts {
  std::string backend, version, cipher, alpn, group;
};

class Endpoint {
 public:
  enum class Outcome {
    running,
    clean,      // the close went as the style says (for quiet/drop: as we chose)
    truncated,  // the peer's transport ended without close_notify (unexpected_eof)
    ended,      // the same, accepted as the end of its data (accept_eof)
    failed,     // any other error; failure() says which
  };

  struct Events {
    std::function<void(const Facts&)> connected;
    std::function<void(std::span<const std::byte>)> data;  // the peer's plaintext
    std::function<void(const Step&)> step;
  };

  // fd is the descriptor under tls's transport (non-blocking), for poll().
  Endpoint(std::unique_ptr<unitls::SecureSocket> tls, int fd, CloseStyle style, Events events);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // A peer's EOF without close_notify ends its data (require_close_notify =
  // false): Outcome::ended instead of truncated.
  void accept_eof(bool on) { accept_eof_ = on; }
  // Queues bytes for the peer (sent once the handshake is done).
  void send(std::span<const std::byte> bytes);
  // No more input: once the queue is sent, close in our style.
  void end_input();
  // True while more input would be sent: connected (or connecting), queue
  // empty, input not ended, the peer has not closed.
  bool wants_input() const;

  // Does everything possible without blocking. Returns the poll() events to
  // wait for on fd(), or 0 when the connection is over (see outcome()).
  short advance();

  int fd() const { return fd_; }
  Outcome outcome() const { return outcome_; }
  const Facts& facts() const { return facts_; }
  // Outcome::failed / truncated: what happened, for a person.
  const std::string& failure() const { return failure_; }
  // Outcome::failed: why our side rejected the peer's certificate
  // (SecureSocket::verification_error(), kept when the socket is closed);
  // "" otherwise.
  const std::string& verification_error() const { return verification_error_; }

 private:
  enum class Phase { handshake, open, closing, draining, answering, over };

  short pump_reads();
  short pump_writes();
  short close_step();
  short finish(Outcome outcome, std::string why = {});
  short fail_with_last_error(const char* during);
  void drop();
  // Reports a call to events_.step with what the socket says right after.
  void record(std::string_view call, std::string result, bool got_data = false);
  void record_action(std::string_view call);  // set_quiet_shutdown, drop

  std::unique_ptr<unitls::SecureSocket> tls_;
  int fd_;
  bool accept_eof_ = false;
  CloseStyle style_;
  Events events_;
  Phase phase_ = Phase::handshake;
  bool input_ended_ = false;
  bool shutdown_sent_ = false;  // bidi: shutdown() returned 0 once
  std::vector<std::byte> out_;
  std::size_t out_pos_ = 0;
  Outcome outcome_ = Outcome::running;
  Facts facts_;
  std::string failure_;
  std::string verification_error_;
};

}  // namespace tool
