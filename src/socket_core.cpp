#include "socket_core.hpp"

#include "certificate.hpp"
#include "verify.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

namespace unitls::detail {

namespace {
// One TLS record's worth of plaintext: what a single read can yield.
constexpr std::size_t kept_capacity = 16 * 1024;

// How often an engine operation is repeated when it asked to be called again
// (want_read/want_write) although the transport neither ran dry nor filled
// during the call: the stack stopped after progress of its own (a consumed
// TLS 1.3 ticket or KeyUpdate, a warning alert, a partial flush;
// docs/backend-notes.md T11). Each round consumes input or output, so this
// only bounds a stack that would make no progress at all.
constexpr int max_silent_rounds = 1000;

// The calls whose engine operation reads from the peer.
bool reads(Call call) { return call != Call::write && call != Call::send_close_notify; }
}  // namespace

SocketCore::SocketCore(const std::shared_ptr<BackendContext>& context, std::unique_ptr<Transport> transport,
                       const std::shared_ptr<ClientSessionCache>& client_sessions,
                       const std::shared_ptr<ServerSessionStore>& server_sessions, std::string_view backend,
                       const Config& config, std::size_t room_bytes)
    : context_(context),
      wire_(std::move(transport), config.role),
      room_bytes_(room_bytes),
      backend_(backend) {
  init(client_sessions, server_sessions, config);
}

SocketCore::SocketCore(const std::shared_ptr<BackendContext>& context, OwnSocket socket,
                       const std::shared_ptr<ClientSessionCache>& client_sessions,
                       const std::shared_ptr<ServerSessionStore>& server_sessions, std::string_view backend,
                       const Config& config, std::size_t room_bytes)
    : context_(context),
      own_socket_(std::in_place, socket.fd, socket.owns_fd),
      wire_(*own_socket_, config.role),
      room_bytes_(room_bytes),
      backend_(backend) {
  init(client_sessions, server_sessions, config);
}

void SocketCore::init(const std::shared_ptr<ClientSessionCache>& client_sessions,
                      const std::shared_ptr<ServerSessionStore>& server_sessions, const Config& config) {
  if (client_sessions) {
    sessions_.emplace(client_sessions);
  } else if (server_sessions) {
    sessions_.emplace(server_sessions);
  }
  state_.quiet = config.quiet_shutdown;
  timeout_ = config.timeout;
  state_.require_close_notify = config.require_close_notify;
  role_ = config.role;
  if (config.role == Role::client && config.verify_peer) server_name_ = config.server_name;
  refresh();
}

SocketCore::~SocketCore() {
  // RFC 2246 7.2.1: a session is resumable only after a proper close.
  const bool closed_properly = state_.sent && !state_.dead;
  if (sessions_) sessions_->end(closed_properly);
  if (engine_) engine_->end(closed_properly);
}

std::ptrdiff_t SocketCore::report(const Outcome& o) {
  refresh();
  if (o.has_error) {
    last_ = o.error;
    return o.ret;
  }
  return succeeded(static_cast<std::size_t>(o.ret));
}

void SocketCore::start_call() {
  if (timeout_.count() > 0) {
    wire_.set_deadline(std::chrono::steady_clock::now() + timeout_);
    deadline_set_ = true;
  } else if (deadline_set_) {
    wire_.set_deadline(std::chrono::steady_clock::time_point::max());
    deadline_set_ = false;
  }
}

SecureSocket::CloseResult SocketCore::close(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const auto saved = timeout_;
  const auto left = [&] {
    return std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  };
  CloseResult result = CloseResult::failed;
  std::byte discard[4096];
  for (;;) {
    // Each blocking call gets what is left of the limit (at least 1 ms, so
    // that 0 never means "no limit").
    timeout_ = std::max(left(), std::chrono::milliseconds(1));
    const int r = shutdown();
    if (r == 1) {
      result = CloseResult::clean;
      break;
    }
    if (r == 0) continue;  // ours is out: now wait for theirs
    const std::error_code e = last_error();
    if (e == errc::data_pending) {
      while (read(discard) > 0) {
      }
      continue;
    }
    if (e == errc::unexpected_eof) {
      result = CloseResult::truncated;
    } else if (e == errc::timed_out) {
      result = CloseResult::peer_silent;
    } else if (e == errc::want_read || e == errc::want_write) {
      // Non-blocking: wait on the fd for what is left, if there is one.
      const int fd = wire_.native_handle();
      const auto ms = left().count();
      if (fd >= 0 && ms > 0) {
        pollfd p{fd, static_cast<short>(e == errc::want_read ? POLLIN : POLLOUT), 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(ms, INT_MAX)));
        if (ready > 0 || (ready < 0 && errno == EINTR)) continue;
      }
      result = state_.sent ? CloseResult::peer_silent : CloseResult::failed;
    }
    break;
  }
  timeout_ = saved;
  refresh();
  return result;
}

std::size_t SocketCore::pending() const {
  std::size_t n = state_.has_kept_data ? kept_size_ - kept_offset_ : 0;
  if (engine_ && state_.connected && !state_.dead && !state_.received) n += engine_->pending();
  return n;
}

template <class Operation>
Outcome SocketCore::run(Call call, Action action, Operation operation) {
  wire_.begin_call();
  Result r = operation();
  return settle(call, action, std::move(r), operation);
}

template <class Operation>
Outcome SocketCore::settle(Call call, Action action, Result r, Operation operation) {
  for (int round = 0;; ++round) {
    if (r.status != Status::want_read && r.status != Status::want_write) break;
    if (wire_.full()) {
      r = Result::of(Status::want_write);
      break;
    }
    if (wire_.dry()) {
      r = Result::of(Status::want_read);
      break;
    }
    if (round >= max_silent_rounds) break;
    wire_.begin_call();
    r = operation();
  }
  // judge() changes nothing unless a record was rejected or the step
  // failed or met EOF: not called then.
  if (r.status == Status::failed || r.status == Status::eof || wire_.guard().fault() != RecordFault::none)
    r = judge(call, std::move(r));
  Outcome outcome = finish(state_, call, action, r);
  // The deadline passed (docs/contract.md, "Time"): the connection is as
  // after a want_read / want_write, the caller is told timed_out.
  if ((r.status == Status::want_read || r.status == Status::want_write) && wire_.timed_out())
    outcome.error = errc::timed_out;
  if (outcome.has_error && outcome.error == errc::certificate_error) rejected_ = true;
  if (outcome.has_error && r.native) {
    native_error_ = r.native;
    has_native_ = true;
  }
  // Nothing goes on the wire after a fatal error (docs/contract.md).
  if (state_.dead) wire_.seal();
  return outcome;
}

// What an engine's answer means, decided here for every backend
// (docs/contract.md, "The same answers outside shutdown"): the engine
// translated its stack's result; the wire tells what the transport did.
Result SocketCore::judge(Call call, Result r) {
  // A record the guard rejected during this step decides the step, whatever
  // the stack made of the records before it (record_guard.hpp).
  if (const RecordFault f = wire_.guard().fault(); f != RecordFault::none)
    return Result::fail(errc::protocol_error, make_error_code(f));
  if (r.status == Status::eof && !reads(call)) {
    // Only a read can meet the end of the peer's data; anything else that
    // finds the transport closed failed on it.
    return Result::fail(errc::transport_error,
                        r.native ? r.native : std::make_error_code(std::errc::broken_pipe));
  }
  if (r.status != Status::failed || r.peer_alert) return r;
  if (r.kind == errc::transport_error) {
    // The stack says its transport failed: the wire knows how.
    if (wire_.io_error()) r.native = wire_.io_error();
    return r;
  }
  if (r.kind == errc::protocol_error && wire_.eof()) {
    // The transport ended inside a record or a handshake message (the
    // stack may call that a bad length): a truncation when reading, and
    // nothing goes on the wire after it.
    if (reads(call)) return Result::of(Status::eof);
    return Result::fail(errc::transport_error, r.native);
  }
  // A failure of ours while reading is answered with the fatal alert the
  // stack names, when it did not send one itself, so that the peer fails
  // too instead of waiting.
  if (r.alert >= 0 && reads(call)) engine_->send_alert(static_cast<std::uint8_t>(r.alert));
  return r;
}

int SocketCore::handshake() {
  // As read(): a handshake step that completes, or that waits for the
  // transport it found empty (or full), needs nothing of the general path.
  if (!state_.connected && !state_.dead && !timed()) {
    wire_.begin_call();
    Result r = engine_->handshake();
    if (plainly_done(r)) {
      state_.connected = true;
      if (sessions_) sessions_->handshake_done(*engine_);
      return handshake_answer(report(Outcome::success(1)));
    }
    if (wire_.guard().fault() == RecordFault::none && !wire_.timed_out() &&
        (r.status == Status::want_read || r.status == Status::want_write) && (wire_.full() || wire_.dry())) {
      // As settle() decides: a full transport first.
      return handshake_answer(report(Outcome::failure(-1, wire_.full() ? errc::want_write : errc::want_read)));
    }
    const Outcome o = settle(Call::handshake, Action::handshake, std::move(r), [&] { return engine_->handshake(); });
    if (sessions_ && !o.has_error) sessions_->handshake_done(*engine_);
    return handshake_answer(report(o));
  }
  start_call();
  Outcome answer;
  const Action action = start(state_, Call::handshake, answer);
  if (action == Action::none) return handshake_answer(report(answer));
  const Outcome o = run(Call::handshake, action, [&] { return engine_->handshake(); });
  if (sessions_ && !o.has_error) sessions_->handshake_done(*engine_);
  return handshake_answer(report(o));
}

std::ptrdiff_t SocketCore::deliver_kept(std::span<std::byte> buf) {
  std::size_t n = std::min(buf.size(), kept_size_ - kept_offset_);
  std::memcpy(buf.data(), kept_.get() + kept_offset_, n);
  kept_offset_ += n;
  if (kept_offset_ == kept_size_) {
    kept_size_ = kept_offset_ = 0;
    state_.has_kept_data = false;
  }
  return report(Outcome::success(static_cast<std::ptrdiff_t>(n)));
}

// read() and write() decide the common case in a few instructions
// (docs/benchmarks.md): an open connection without a time limit whose
// engine step moves bytes. Anything else goes the general way (out of line,
// so that the common case pays for no large stack frame), from the step
// already made when there was one.
std::ptrdiff_t SocketCore::read(std::span<std::byte> buf) {
  if (fast_read_ && !buf.empty()) [[likely]] {
    wire_.begin_call();
    Result r = engine_->read(buf);
    if (plainly_done(r)) [[likely]] return succeeded(r.bytes);
    return read_on(buf, std::move(r));
  }
  return read_general(buf);
}

std::ptrdiff_t SocketCore::read_on(std::span<std::byte> buf, Result first) {
  return report(settle(Call::read, Action::read, std::move(first), [&] { return engine_->read(buf); }));
}

std::ptrdiff_t SocketCore::read_general(std::span<std::byte> buf) {
  if (buf.empty()) return report(Outcome::failure(-1, errc::invalid_argument));
  start_call();
  Outcome answer;
  const Action action = start(state_, Call::read, answer);
  switch (action) {
    case Action::none: return report(answer);
    case Action::deliver_kept: return deliver_kept(buf);
    default: return report(run(Call::read, action, [&] { return engine_->read(buf); }));
  }
}

std::ptrdiff_t SocketCore::write(std::span<const std::byte> buf) {
  if (fast_write_ && !buf.empty()) [[likely]] {
    wire_.begin_call();
    Result r = engine_->write(buf);
    if (plainly_done(r) && r.bytes == buf.size()) [[likely]] {
      state_.write_pending = false;
      return succeeded(r.bytes);
    }
    return write_on(buf, std::move(r));
  }
  return write_general(buf);
}

std::ptrdiff_t SocketCore::write_on(std::span<const std::byte> buf, Result first) {
  Outcome o;
  if (plainly_done(first)) {
    state_.write_pending = false;
    o = Outcome::success(static_cast<std::ptrdiff_t>(first.bytes));
  } else {
    o = settle(Call::write, Action::write, std::move(first), [&] { return engine_->write(buf); });
  }
  return write_rest(buf, o);
}

std::ptrdiff_t SocketCore::write_general(std::span<const std::byte> buf) {
  if (buf.empty()) return report(Outcome::failure(-1, errc::invalid_argument));
  start_call();
  Outcome answer;
  const Action action = start(state_, Call::write, answer);
  if (action == Action::none) return report(answer);
  return write_rest(buf, run(Call::write, Action::write, [&] { return engine_->write(buf); }));
}

std::ptrdiff_t SocketCore::write_rest(std::span<const std::byte> buf, Outcome o) {
  if (o.has_error || static_cast<std::size_t>(o.ret) == buf.size()) return report(o);
  // The engine took part (a record at a time). Blocking callers get every
  // byte. A non-blocking caller gets the count: looping on would let an
  // engine commit a record and then answer want_write, and a caller that
  // saw a count may send other bytes next (OpenSSL would then send the
  // committed record under the new bytes' name).
  if (!wire_.is_blocking()) return report(o);
  std::size_t total = static_cast<std::size_t>(o.ret);
  while (total < buf.size()) {
    const auto rest = buf.subspan(total);
    o = run(Call::write, Action::write, [&] { return engine_->write(rest); });
    if (o.has_error) {
      if (total > 0) break;  // report what was taken; the error comes next call
      return report(o);
    }
    total += static_cast<std::size_t>(o.ret);
  }
  return report(Outcome::success(static_cast<std::ptrdiff_t>(total)));
}

int SocketCore::shutdown() {
  start_call();
  Outcome answer;
  const Action action = start(state_, Call::shutdown, answer);
  switch (action) {
    case Action::none: return static_cast<int>(report(answer));
    case Action::await_peer: {
      // Read on the stack: most peers send their close_notify and nothing
      // else, and a heap buffer per connection would cost an allocation
      // (and 16 KiB while it lives). Data that came first is kept.
      // The buffer is made before the state says data is kept (complete()),
      // so that a failed allocation leaves a consistent connection.
      std::byte stack[kept_capacity];
      kept_offset_ = kept_size_ = 0;
      Result got;
      const Outcome o = run(Call::shutdown, action, [&] {
        got = engine_->read(stack);
        if (got.status == Status::done && got.bytes > 0 && !kept_)
          kept_ = std::make_unique_for_overwrite<std::byte[]>(kept_capacity);
        return got;
      });
      if (got.status == Status::done && got.bytes > 0) {
        std::memcpy(kept_.get(), stack, got.bytes);
        kept_size_ = got.bytes;
      }
      return static_cast<int>(report(o));
    }
    default:
      return static_cast<int>(report(run(Call::shutdown, action, [&] { return send_close_notify_step(); })));
  }
}

std::error_code SocketCore::send_close_notify() {
  start_call();
  Outcome answer;
  const Action action = start(state_, Call::send_close_notify, answer);
  if (action == Action::none) {
    report(answer);
  } else {
    report(run(Call::send_close_notify, action, [&] { return send_close_notify_step(); }));
  }
  return last_error();
}

Result SocketCore::send_close_notify_step() {
  Result r = engine_->send_close_notify();
  if (r.status == Status::done) wire_.seal();
  return r;
}

std::string SocketCore::protocol_version() const {
  return state_.connected ? engine_->protocol_version() : std::string();
}
std::string SocketCore::cipher() const {
  return state_.connected ? engine_->cipher() : std::string();
}
// A resumed TLS 1.2 handshake agrees on no key (RFC 5246 7.3): whatever a
// stack remembers of the original one is not this handshake's group.
std::string SocketCore::group() const {
  if (!state_.connected || (engine_->session_reused() && engine_->protocol_version() == "TLSv1.2"))
    return {};
  const GroupInfo* g = find_group(engine_->group());
  return g ? std::string(g->name) : std::string();
}
std::string SocketCore::alpn_selected() const {
  return state_.connected ? engine_->alpn_selected() : std::string();
}
bool SocketCore::session_reused() const { return state_.connected && engine_->session_reused(); }

namespace {
// A certificate the reader cannot describe (a stack accepted it unverified)
// is still reported: its bytes and fingerprint, the facts left empty.
Certificate described(std::vector<std::byte> der) {
  if (auto c = describe_certificate(der)) return std::move(*c);
  Certificate c;
  c.sha256_fingerprint = sha256_fingerprint(der);
  c.der = std::move(der);
  return c;
}
}  // namespace

// docs/contract.md, "Who is on the other end": the stacks keep different
// parts of the original chain across a resumption (mbedTLS and OpenSSL's
// TLS 1.3 server: the leaf only), so a resumed connection reports the leaf
// alone on every backend.
std::vector<Certificate> SocketCore::peer_chain() const {
  std::vector<Certificate> chain;
  if (!state_.connected && !rejected_) return chain;
  std::vector<std::vector<std::byte>> ders = engine_->peer_chain();
  if (engine_->session_reused() && ders.size() > 1) ders.resize(1);
  chain.reserve(ders.size());
  for (auto& der : ders) chain.push_back(described(std::move(der)));
  return chain;
}

std::optional<Certificate> SocketCore::peer_certificate() const {
  if (!state_.connected && !rejected_) return std::nullopt;
  std::vector<std::vector<std::byte>> ders = engine_->peer_chain();
  if (ders.empty()) return std::nullopt;
  return described(std::move(ders.front()));
}

// docs/contract.md, "Verification": the engine says what its stack found,
// in the core's bits; the words are the core's.
std::string SocketCore::verification_error() const {
  if (!rejected_) return {};
  return detail::verification_error(engine_->certificate_issues(), engine_->peer_chain(), role_, server_name_);
}

std::string SocketCore::requested_server_name() const {
  return state_.connected ? engine_->requested_server_name() : std::string();
}

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
