// SocketCore: the one SecureSocket implementation. It runs the shutdown
// state machine (shutdown_machine.hpp) against a backend Engine; backends
// never see a SecureSocket call directly.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include <unitls/context.hpp>
#include <unitls/secure_socket.hpp>

#include "engine.hpp"
#include "keylog.hpp"
#include "session_cache.hpp"
#include "shutdown_machine.hpp"
#include "wire.hpp"

namespace unitls::detail {

class SocketCore final : public SecureSocket {
 public:
  // Holds, in one object, the connection's Wire (around transport) and its
  // account with the Context's sessions (a client cache, or a server
  // store; both null: none). The engine, made next on wire() and with
  // ledger(), is given with attach() before any call.
  SocketCore(const std::shared_ptr<BackendContext>& context, std::unique_ptr<Transport> transport,
             const std::shared_ptr<ClientSessionCache>& client_sessions,
             const std::shared_ptr<ServerSessionStore>& server_sessions, std::string_view backend,
             const Config& config, std::size_t room_bytes = 0);
  // The same over a socket whose transport lives inside this object
  // (Context::wrap_fd(fd): one allocation less per connection).
  struct OwnSocket {
    int fd;
    bool owns_fd;
  };
  SocketCore(const std::shared_ptr<BackendContext>& context, OwnSocket socket,
             const std::shared_ptr<ClientSessionCache>& client_sessions,
             const std::shared_ptr<ServerSessionStore>& server_sessions, std::string_view backend,
             const Config& config, std::size_t room_bytes = 0);

  // The connection in one allocation with room for its engine behind it
  // (docs/benchmarks.md): `new (SocketCore::Room{n}) SocketCore(..., n)`,
  // then engine_room() is where the engine may be made. A plain `new` (or
  // make_unique) keeps no room (room_bytes 0).
  struct Room {
    std::size_t bytes;
  };
  static void* operator new(std::size_t size) { return ::operator new(size); }
  static void* operator new(std::size_t size, Room room) { return ::operator new(room_offset(size) + room.bytes); }
  static void operator delete(void* p) noexcept { ::operator delete(p); }
  static void operator delete(void* p, Room) noexcept { ::operator delete(p); }  // the constructor threw
  EngineRoom engine_room() noexcept {
    return {reinterpret_cast<std::byte*>(this) + room_offset(sizeof(SocketCore)), room_bytes_};
  }

  Wire& wire() noexcept { return wire_; }
  SessionLedger* ledger() noexcept { return sessions_ ? &*sessions_ : nullptr; }
  // Config::keylog is set: this connection logs its secrets through it
  // (keylog.hpp); the engine is made with the sink returned.
  KeyLogSink* log_keys(std::shared_ptr<const KeyLogFunction> callback) {
    keylog_ = std::make_unique<KeyLogger>(std::move(callback));
    return keylog_.get();
  }
  void attach(EnginePtr engine) noexcept { engine_ = std::move(engine); }
  void attach(std::unique_ptr<Engine> engine) noexcept { engine_ = EnginePtr(engine.release()); }
  ~SocketCore() override;

  int handshake() override;
  std::ptrdiff_t read(std::span<std::byte> buf) override;
  std::ptrdiff_t write(std::span<const std::byte> buf) override;
  int shutdown() override;
  std::error_code send_close_notify() override;
  unsigned get_shutdown() const override { return state_.flags(); }
  void set_shutdown(unsigned mode) override {
    state_ = set_flags(state_, mode);
    refresh();
  }
  void set_quiet_shutdown(bool on) override { state_.quiet = on; }
  bool get_quiet_shutdown() const override { return state_.quiet; }
  std::error_code last_error() const override {
    return last_ != errc{} ? make_error_code(last_) : std::error_code();
  }
  std::error_code native_error() const override { return has_native_ ? native_error_ : std::error_code(); }
  std::string_view backend() const override { return backend_; }
  std::string protocol_version() const override;
  std::string cipher() const override;
  std::string group() const override;
  std::string alpn_selected() const override;
  bool session_reused() const override;
  std::optional<Certificate> peer_certificate() const override;
  std::vector<Certificate> peer_chain() const override;
  std::string verification_error() const override;
  std::string requested_server_name() const override;
  void* native_handle() const override { return engine_ ? engine_->native_handle() : nullptr; }
  void set_timeout(std::chrono::milliseconds timeout) override {
    timeout_ = timeout;
    refresh();
  }
  std::size_t pending() const override;
  CloseResult close(std::chrono::milliseconds limit) override;

  using SecureSocket::read;
  using SecureSocket::write;

 private:
  // Where the engine's room starts behind an object of `size` bytes.
  static constexpr std::size_t room_offset(std::size_t size) noexcept {
    constexpr std::size_t a = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
    return (size + a - 1) / a * a;
  }

  // Applies a call's final outcome: the last error cleared or set.
  std::ptrdiff_t report(const Outcome& o);
  // report() of a success, inline: the fast path's whole bookkeeping.
  std::ptrdiff_t succeeded(std::size_t n) noexcept {
    last_ = errc{};
    has_native_ = false;
    return static_cast<std::ptrdiff_t>(n);
  }
  // Whether read()/write() would go straight to the engine (what begin()
  // decides for an open connection).
  bool readable() const noexcept {
    return state_.connected && !state_.dead && !state_.received && !state_.has_kept_data;
  }
  bool writable() const noexcept { return state_.connected && !state_.dead && !state_.sent; }
  // A time limit is set, or a deadline from an earlier call must be lifted:
  // start_call() has work to do.
  bool timed() const noexcept { return timeout_.count() > 0 || deadline_set_; }
  // fast_read_/fast_write_ made anew from the above: after anything that
  // changes state_, timeout_ or deadline_set_ (every call's report(), and
  // the setters).
  void refresh() noexcept {
    fast_read_ = readable() && !timed();
    fast_write_ = writable() && !timed();
  }
  // An engine step that moved bytes, with no record rejected: nothing left
  // to judge (judge() and complete() would change nothing).
  bool plainly_done(const Result& r) const noexcept {
    return r.status == Status::done && wire_.guard().fault() == RecordFault::none;
  }
  // A public call starts: the transport learns its deadline (timeout_).
  void start_call();
  // One engine operation for `call`: run (repeated while the stack stops
  // without the transport having said "nothing now"), judged by what the
  // wire saw (judge), then applied to the state.
  template <class Operation>
  Outcome run(Call call, Action action, Operation operation);
  // The rest of run() once the first step gave r (the fast paths make that
  // step themselves).
  template <class Operation>
  Outcome settle(Call call, Action action, Result r, Operation operation);
  Result judge(Call call, Result r);
  // The engine's send_close_notify; seals the wire once the alert is out.
  Result send_close_notify_step();
  std::ptrdiff_t deliver_kept(std::span<std::byte> buf);
  // read()/write() beyond the common case: after a first engine step that
  // did not simply move bytes (_on), or from the start (_general).
  [[gnu::noinline]] std::ptrdiff_t read_on(std::span<std::byte> buf, Result first);
  [[gnu::noinline]] std::ptrdiff_t read_general(std::span<std::byte> buf);
  [[gnu::noinline]] std::ptrdiff_t write_on(std::span<const std::byte> buf, Result first);
  [[gnu::noinline]] std::ptrdiff_t write_general(std::span<const std::byte> buf);
  // A write that moved part of buf, or failed: the blocking caller's loop.
  std::ptrdiff_t write_rest(std::span<const std::byte> buf, Outcome o);

  // A handshake() call's answer; the key log's lines go out once the
  // handshake has completed (keylog.hpp).
  int handshake_answer(std::ptrdiff_t ret) noexcept {
    if (keylog_ && (state_.connected || state_.dead)) keylog_->handshake_ended(state_.connected);
    return static_cast<int>(ret);
  }

  // Shared by both constructors: the sessions and the Config's settings.
  void init(const std::shared_ptr<ClientSessionCache>& client_sessions,
            const std::shared_ptr<ServerSessionStore>& server_sessions, const Config& config);

  std::shared_ptr<BackendContext> context_;  // outlives engine_ (declared first)
  std::optional<FdTransport> own_socket_;    // the transport when made here (OwnSocket); outlives wire_
  Wire wire_;                                // outlives engine_ too
  std::optional<SessionLedger> sessions_;    // and this
  std::size_t room_bytes_;  // behind this object (operator new(Room))
  EnginePtr engine_;        // in that room when it fits
  std::string_view backend_;
  ConnectionState state_;
  std::chrono::milliseconds timeout_{0};
  bool deadline_set_ = false;  // the transport holds a deadline from an earlier call
  // readable() / writable(), and no time limit: read() and write() take the
  // common case on one test (refresh()).
  bool fast_read_ = false;
  bool fast_write_ = false;
  // The last call's error (errc{}: none) and the native error behind the
  // last failure, kept as plain values: a success clears them with two
  // stores (an error_code's clear() is an out-of-line call).
  errc last_{};
  bool has_native_ = false;
  std::error_code native_error_ = no_error();
  // Application data that shutdown() met while waiting (data_pending).
  // Allocated on the first wait; one record's worth.
  std::unique_ptr<std::byte[]> kept_;
  std::size_t kept_size_ = 0;
  std::size_t kept_offset_ = 0;
  // Config::keylog set: this connection's key log (null: none).
  std::unique_ptr<KeyLogger> keylog_;
  // The handshake failed with certificate_error: this side rejected the
  // peer's certificate (peer_chain() and verification_error() tell more).
  bool rejected_ = false;
  Role role_ = Role::client;
  // Client: the name its verification checks (verification_error()).
  std::string server_name_;
};

}  // namespace unitls::detail
