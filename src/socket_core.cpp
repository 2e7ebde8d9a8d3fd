#include "socket_core.hpp"

#include <algorithm>
#include <cstring>

namespace unitls::detail {

namespace {
// One TLS record's worth of plaintext: what a single read can yield.
constexpr std::size_t kept_capacity = 16 * 1024;
}  // namespace

SocketCore::SocketCore(std::shared_ptr<BackendContext> context,
                       std::unique_ptr<SessionLedger> sessions, std::unique_ptr<Engine> engine,
                       RecordGuard* guard, std::string_view backend, const Config& config)
    : context_(std::move(context)),
      sessions_(std::move(sessions)),
      engine_(std::move(engine)),
      guard_(guard),
      backend_(backend) {
  state_.quiet = config.quiet_shutdown;
  state_.require_close_notify = config.require_close_notify;
}

SocketCore::~SocketCore() {
  // RFC 2246 7.2.1: a session is resumable only after a proper close.
  const bool closed_properly = state_.sent && !state_.dead;
  if (sessions_) sessions_->end(closed_properly);
  engine_->finish(closed_properly);
}

std::ptrdiff_t SocketCore::finish(const Outcome& o) {
  if (o.has_error) {
    last_error_ = make_error_code(o.error);
  } else {
    last_error_.clear();
    native_error_.clear();
  }
  return o.ret;
}

Outcome SocketCore::run(Call call, Action action, Result r) {
  // A record the guard rejected during this step decides the step, whatever
  // the stack made of the records before it (record_guard.hpp).
  if (guard_ && guard_->fault() != RecordFault::none)
    r = Result::fail(errc::protocol_error, make_error_code(guard_->fault()));
  Completion c = complete(state_, call, action, r);
  state_ = c.state;
  if (r.status == Status::failed) native_error_ = r.native;
  return c.outcome;
}

int SocketCore::handshake() {
  Decision d = begin(state_, Call::handshake);
  state_ = d.state;
  if (d.action == Action::none) return static_cast<int>(finish(d.outcome));
  const Outcome o = run(Call::handshake, d.action, engine_->handshake());
  if (sessions_ && !o.has_error) sessions_->handshake_done(engine_->session_reused());
  return static_cast<int>(finish(o));
}

std::ptrdiff_t SocketCore::deliver_kept(std::span<std::byte> buf) {
  std::size_t n = std::min(buf.size(), kept_size_ - kept_offset_);
  std::memcpy(buf.data(), kept_.get() + kept_offset_, n);
  kept_offset_ += n;
  if (kept_offset_ == kept_size_) {
    kept_size_ = kept_offset_ = 0;
    state_.has_kept_data = false;
  }
  return finish(Outcome::success(static_cast<std::ptrdiff_t>(n)));
}

std::ptrdiff_t SocketCore::read(std::span<std::byte> buf) {
  if (buf.empty()) return finish(Outcome::failure(-1, errc::invalid_argument));
  Decision d = begin(state_, Call::read);
  state_ = d.state;
  switch (d.action) {
    case Action::none: return finish(d.outcome);
    case Action::deliver_kept: return deliver_kept(buf);
    default: return finish(run(Call::read, d.action, engine_->read(buf)));
  }
}

std::ptrdiff_t SocketCore::write(std::span<const std::byte> buf) {
  if (buf.empty()) return finish(Outcome::failure(-1, errc::invalid_argument));
  Decision d = begin(state_, Call::write);
  state_ = d.state;
  if (d.action == Action::none) return finish(d.outcome);

  Outcome o = run(Call::write, Action::write, engine_->write(buf));
  if (o.has_error || static_cast<std::size_t>(o.ret) == buf.size()) return finish(o);
  // The engine took part (a record at a time). Blocking callers get every
  // byte. A non-blocking caller gets the count: looping on would let an
  // engine commit a record and then answer want_write, and a caller that
  // saw a count may send other bytes next (OpenSSL would then send the
  // committed record under the new bytes' name).
  if (!guard_ || !guard_->is_blocking()) return finish(o);
  std::size_t total = static_cast<std::size_t>(o.ret);
  while (total < buf.size()) {
    o = run(Call::write, Action::write, engine_->write(buf.subspan(total)));
    if (o.has_error) {
      if (total > 0) break;  // report what was taken; the error comes next call
      return finish(o);
    }
    total += static_cast<std::size_t>(o.ret);
  }
  return finish(Outcome::success(static_cast<std::ptrdiff_t>(total)));
}

int SocketCore::shutdown() {
  Decision d = begin(state_, Call::shutdown);
  state_ = d.state;
  switch (d.action) {
    case Action::none: return static_cast<int>(finish(d.outcome));
    case Action::await_peer: {
      if (!kept_) kept_ = std::make_unique_for_overwrite<std::byte[]>(kept_capacity);
      Result r = engine_->read(std::span<std::byte>(kept_.get(), kept_capacity));
      kept_offset_ = 0;
      kept_size_ = r.status == Status::done ? r.bytes : 0;
      return static_cast<int>(finish(run(Call::shutdown, d.action, r)));
    }
    default: return static_cast<int>(finish(run(Call::shutdown, d.action, send_close_notify_step())));
  }
}

std::error_code SocketCore::send_close_notify() {
  Decision d = begin(state_, Call::send_close_notify);
  state_ = d.state;
  if (d.action == Action::none) {
    finish(d.outcome);
  } else {
    finish(run(Call::send_close_notify, d.action, send_close_notify_step()));
  }
  return last_error_;
}

Result SocketCore::send_close_notify_step() {
  Result r = engine_->send_close_notify();
  if (r.status == Status::done && guard_) guard_->seal();
  return r;
}

std::string SocketCore::protocol_version() const {
  return state_.connected ? engine_->protocol_version() : std::string();
}
std::string SocketCore::cipher() const {
  return state_.connected ? engine_->cipher() : std::string();
}
std::string SocketCore::alpn_selected() const {
  return state_.connected ? engine_->alpn_selected() : std::string();
}
bool SocketCore::session_reused() const { return state_.connected && engine_->session_reused(); }

}  // namespace unitls::detail

namespace unitls {

SecureSocket::~SecureSocket() = default;

std::ptrdiff_t SecureSocket::read(std::string& out) {
  std::byte buf[16 * 1024];
  std::ptrdiff_t n = read(std::span<std::byte>(buf));
  if (n > 0) out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
  return n;
}

}  // namespace unitls
