// The non-blocking connection driver behind client, server and demo.
#include "endpoint.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <array>

#include "common.hpp"

namespace tool {

using unitls::errc;

namespace {

constexpr std::array<std::pair<std::string_view, CloseStyle>, 4> style_names = {{
    {"bidi", CloseStyle::bidi},
    {"once", CloseStyle::once},
    {"quiet", CloseStyle::quiet},
    {"drop", CloseStyle::drop},
}};

bool is(std::error_code ec, errc e) { return ec == unitls::make_error_code(e); }

// What a want_* asks poll() for; 0 for anything else.
short events_for(std::error_code ec) {
  if (is(ec, errc::want_read)) return POLLIN;
  if (is(ec, errc::want_write)) return POLLOUT;
  return 0;
}

}  // namespace

std::optional<CloseStyle> parse_close_style(std::string_view name) {
  for (auto [n, style] : style_names) {
    if (n == name) return style;
  }
  return std::nullopt;
}

std::string_view name_of(CloseStyle style) {
  for (auto [n, s] : style_names) {
    if (s == style) return n;
  }
  return "?";
}

std::string trace_line(const Step& step) {
  if (step.call == "drop") return "drop: socket closed without close_notify  flags=" + flag_names(step.flags);
  if (step.result.empty()) return step.call + "(true)  flags=" + flag_names(step.flags);
  return step.call + "() = " + step.result + "  last_error=" + error_name(step.error) +
         "  flags=" + flag_names(step.flags);
}

std::string compact(const Step& step) {
  if (step.result.empty()) return step.call;
  std::string s = step.call + "=" + step.result;
  // send_close_notify() returns its error: "=already_sent", not "=already_sent/already_sent".
  if (step.error && step.result != error_name(step.error)) s += "/" + error_name(step.error);
  return s + "[" + flag_letters(step.flags) + "]";
}

Endpoint::Endpoint(std::unique_ptr<unitls::SecureSocket> tls, int fd, CloseStyle style,
                   Events events)
    : tls_(std::move(tls)), fd_(fd), style_(style), events_(std::move(events)) {}

Endpoint::~Endpoint() = default;

void Endpoint::send(std::span<const std::byte> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

void Endpoint::end_input() { input_ended_ = true; }

bool Endpoint::wants_input() const {
  return (phase_ == Phase::handshake || phase_ == Phase::open) && !input_ended_ &&
         out_pos_ == out_.size();
}

void Endpoint::record(std::string_view call, std::string result, bool got_data) {
  const std::error_code error = tls_->last_error();
  const bool routine = got_data || events_for(error) != 0;
  if (events_.step) events_.step({str(call), std::move(result), error, tls_->get_shutdown(), routine});
}

void Endpoint::record_action(std::string_view call) {
  if (events_.step) events_.step({str(call), "", {}, tls_->get_shutdown(), false});
}

short Endpoint::finish(Outcome outcome, std::string why) {
  outcome_ = outcome;
  failure_ = std::move(why);
  phase_ = Phase::over;
  tls_.reset();  // closes the fd with its transport
  return 0;
}

short Endpoint::fail_with_last_error(const char* during) {
  const bool truncated = is(tls_->last_error(), errc::unexpected_eof);
  verification_error_ = tls_->verification_error();
  return finish(truncated ? Outcome::truncated : Outcome::failed,
                std::string(during) + ": " + describe_failure(*tls_));
}

// The peer's data, until the transport has no more. Returns the events to
// wait for, or 0 when the phase changed or the connection ended.
short Endpoint::pump_reads() {
  std::array<std::byte, 16384> buf;
  for (;;) {
    const auto n = tls_->read(buf);
    const bool closing = phase_ != Phase::open;
    if (n > 0) {
      if (closing) record("read", std::to_string(n), true);
      if (events_.data) events_.data(std::span(buf).first(static_cast<std::size_t>(n)));
      continue;
    }
    if (const short wait = events_for(tls_->last_error())) {
      if (closing) record("read", std::to_string(n));
      return wait;
    }
    record("read", std::to_string(n));
    if (n == 0 && is(tls_->last_error(), errc::zero_return)) {
      // The peer closed first: answer in our style (open), or our
      // send_close_notify() is answered and the close is complete (draining).
      if (phase_ == Phase::draining) return finish(Outcome::clean);
      phase_ = Phase::answering;
      return 0;
    }
    if (n == 0 && accept_eof_ && is(tls_->last_error(), errc::unexpected_eof))
      return finish(Outcome::ended);
    return fail_with_last_error("read");
  }
}

// Our queued bytes; 0 when all are out.
short Endpoint::pump_writes() {
  while (out_pos_ < out_.size()) {
    const auto n = tls_->write(std::span(out_).subspan(out_pos_));
    if (n > 0) {
      out_pos_ += static_cast<std::size_t>(n);
      continue;
    }
    if (const short wait = events_for(tls_->last_error())) return wait;
    record("write", std::to_string(n));
    fail_with_last_error("write");
    return 0;
  }
  out_.clear();
  out_pos_ = 0;
  return 0;
}

void Endpoint::drop() {
  // Nothing may leave after this: FIN (and, with unread data, RST) only.
  ::shutdown(fd_, SHUT_RDWR);
  record_action("drop");
}

// One move of our close in style_, from the closing (we start) or answering
// (the peer started) phase. Returns the events to wait for, or 0 when the
// phase changed or the connection ended.
short Endpoint::close_step() {
  switch (style_) {
    case CloseStyle::drop:
      drop();
      return finish(Outcome::clean);

    case CloseStyle::quiet: {
      tls_->set_quiet_shutdown(true);
      record_action("set_quiet_shutdown");
      const int r = tls_->shutdown();
      record("shutdown", std::to_string(r));
      return r == 1 ? finish(Outcome::clean) : fail_with_last_error("shutdown");
    }

    case CloseStyle::once: {
      const std::error_code ec = tls_->send_close_notify();
      record("send_close_notify", error_name(ec));
      if (const short wait = events_for(ec)) return wait;
      if (ec) return fail_with_last_error("send_close_notify");
      // Answering: both close_notify are out. Closing: read to zero_return.
      if (phase_ == Phase::answering) return finish(Outcome::clean);
      phase_ = Phase::draining;
      return 0;
    }

    case CloseStyle::bidi:
      for (;;) {
        const int r = tls_->shutdown();
        record("shutdown", std::to_string(r));
        if (r == 1) return finish(Outcome::clean);
        if (r == 0 && !shutdown_sent_) {  // our close_notify is out; now wait for theirs
          shutdown_sent_ = true;
          continue;
        }
        // A second 0 breaks the contract (the demo shows it); wait instead of spinning.
        if (r == 0) return POLLIN;
        if (const short wait = events_for(tls_->last_error())) return wait;
        if (!is(tls_->last_error(), errc::data_pending)) return fail_with_last_error("shutdown");
        // The peer is still talking (half-close): take its data, then ask again.
        for (;;) {
          std::array<std::byte, 16384> buf;
          const auto n = tls_->read(buf);
          record("read", std::to_string(n), n > 0);
          if (n > 0) {
            if (events_.data) events_.data(std::span(buf).first(static_cast<std::size_t>(n)));
            continue;
          }
          if (events_for(tls_->last_error()) != 0 || is(tls_->last_error(), errc::zero_return))
            break;
          return fail_with_last_error("read");
        }
      }
  }
  return finish(Outcome::failed, "unknown close style");
}

short Endpoint::advance() {
  for (;;) {
    switch (phase_) {
      case Phase::over:
        return 0;

      case Phase::handshake: {
        if (tls_->handshake() == 1) {
          facts_ = {str(tls_->backend()), tls_->protocol_version(), tls_->cipher(),
                    tls_->alpn_selected(), tls_->group()};
          phase_ = Phase::open;
          if (events_.connected) events_.connected(facts_);
          continue;
        }
        if (const short wait = events_for(tls_->last_error())) return wait;
        return fail_with_last_error("handshake");
      }

      case Phase::open: {
        short wait = pump_reads();
        if (phase_ != Phase::open) continue;
        wait |= pump_writes();
        if (phase_ != Phase::open) continue;
        if (out_.empty() && input_ended_) {
          phase_ = Phase::closing;
          continue;
        }
        return static_cast<short>(wait | POLLIN);  // the peer may speak at any time
      }

      case Phase::answering: {
        // Write what was queued before the peer's close_notify (RECEIVED
        // without SENT still writes: the peer reads until it closes).
        if (const short wait = pump_writes()) return wait;
        if (phase_ != Phase::answering) continue;
        [[fallthrough]];
      }
      case Phase::closing: {
        // close_step() returns 0 only after moving on (to draining, or over).
        if (const short wait = close_step()) return wait;
        continue;
      }

      case Phase::draining: {
        if (const short wait = pump_reads()) return wait;
        continue;
      }
    }
  }
}

}  // namespace tool
