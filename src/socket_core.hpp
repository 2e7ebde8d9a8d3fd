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
  SocketCore(std::shared_ptr<BackendContext> context, std::unique_ptr<Transport> transport,
             std::shared_ptr<ClientSessionCache> client_sessions,
             std::shared_ptr<ServerSessionStore> server_sessions, std::string_view backend,
             const Config& config);

  Wire& wire() noexcept { return wire_; }
  SessionLedger* ledger() noexcept { return sessions_ ? &*sessions_ : nullptr; }
  void attach(std::unique_ptr<Engine> engine) noexcept { engine_ = std::move(engine); }
  ~SocketCore() override;

  int handshake() override;
  std::ptrdiff_t read(std::span<std::byte> buf) override;
  std::ptrdiff_t write(std::span<const std::byte> buf) override;
  int shutdown() override;
  std::error_code send_close_notify() override;
  unsigned get_shutdown() const override { return state_.flags(); }
  void set_shutdown(unsigned mode) override { state_ = set_flags(state_, mode); }
  void set_quiet_shutdown(bool on) override { state_.quiet = on; }
  bool get_quiet_shutdown() const override { return state_.quiet; }
  std::error_code last_error() const override { return last_error_; }
  std::error_code native_error() const override { return native_error_; }
  std::string_view backend() const override { return backend_; }
  std::string protocol_version() const override;
  std::string cipher() const override;
  std::string alpn_selected() const override;
  bool session_reused() const override;
  void set_timeout(std::chrono::milliseconds timeout) override { timeout_ = timeout; }
  std::size_t pending() const override;
  CloseResult close(std::chrono::milliseconds limit) override;

  using SecureSocket::read;
  using SecureSocket::write;

 private:
  // Applies a call's final outcome: last_error_ cleared or set.
  std::ptrdiff_t report(const Outcome& o);
  // A public call starts: the transport learns its deadline (timeout_).
  void start_call();
  // One engine operation for `call`: run (repeated while the stack stops
  // without the transport having said "nothing now"), judged by what the
  // wire saw (judge), then applied to the state.
  template <class Operation>
  Outcome run(Call call, Action action, Operation operation);
  Result judge(Call call, Result r);
  // The engine's send_close_notify; seals the wire once the alert is out.
  Result send_close_notify_step();
  std::ptrdiff_t deliver_kept(std::span<std::byte> buf);

  std::shared_ptr<BackendContext> context_;  // outlives engine_ (declared first)
  Wire wire_;                                // outlives engine_ too
  std::optional<SessionLedger> sessions_;    // and this
  std::unique_ptr<Engine> engine_;
  std::string_view backend_;
  ConnectionState state_;
  std::chrono::milliseconds timeout_{0};
  bool deadline_set_ = false;  // the transport holds a deadline from an earlier call
  std::error_code last_error_;
  std::error_code native_error_;
  // Application data that shutdown() met while waiting (data_pending).
  // Allocated on the first wait; one record's worth.
  std::unique_ptr<std::byte[]> kept_;
  std::size_t kept_size_ = 0;
  std::size_t kept_offset_ = 0;
};

}  // namespace unitls::detail
