// The Wire: the transport as every engine sees it, owned by the core (one
// per connection, living as long as the engine).
//
// It keeps, once, the facts each engine used to keep for itself and that the
// core needs to judge an engine's answer (socket_core.cpp): whether the
// transport has said EOF, how it failed during the current call, whether it
// had nothing to read or could take nothing more during the call. And it
// keeps the wire quiet when it must be: nothing is written after the
// transport's EOF (the connection is dead for the core), after our
// close_notify (RFC 5246 7.2.1), or once the connection is dead.
//
// Engines translate its three answers into their stack's words (a BIO
// retry flag, an errno for GnuTLS, MBEDTLS_ERR_SSL_WANT_READ, ...).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <system_error>

#include <unitls/context.hpp>
#include <unitls/error.hpp>
#include <unitls/transport.hpp>

#include "engine.hpp"  // no_error()
#include "fd_transport.hpp"
#include "record_guard.hpp"

namespace unitls::detail {

class Wire {
 public:
  Wire(std::unique_ptr<Transport> transport, Role role)
      : socket_(FdTransport::of(transport.get())), guard_(std::move(transport), role) {}
  // Around the connection's own socket transport (Context::wrap_fd(fd)),
  // which outlives the Wire.
  Wire(FdTransport& socket, Role role) : socket_(&socket), guard_(socket, role) {}

  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  // What a read or write that returned -1 met.
  enum class Stop { none, would_block_read, would_block_write, failed };

  // > 0: bytes read. 0: the transport's EOF (sticky). -1: see stop().
  // Inline to the transport's own call when bytes move (docs/benchmarks.md).
  std::ptrdiff_t read(std::span<std::byte> buf) {
    stop_ = Stop::none;
    // The library's own socket transport: its recv straight away, no
    // virtual call, no error_code unless it moved nothing; in the plaintext
    // phase the guard looks at what came (out of line).
    if (socket_ && guard_.fault() == RecordFault::none && socket_->direct(buf)) [[likely]] {
      const std::ptrdiff_t n = socket_->recv_now(buf);
      if (n > 0) [[likely]] {
        if (!guard_.active()) [[likely]] return n;
        return socket_read_judged(buf, n);
      }
      return socket_read_ended(buf, n);
    }
    return read_through(buf);
  }
  // > 0: bytes taken (all of them, unwritten, once the wire is quiet).
  // -1: see stop(). Never 0.
  std::ptrdiff_t write(std::span<const std::byte> buf) {
    stop_ = Stop::none;
    // After the transport's EOF the connection is dead for the core: what a
    // stack still writes (OpenSSL answers a truncation with a decode_error
    // alert, GnuTLS and mbedTLS send nothing) is swallowed, the same for all.
    if (eof_ || buf.empty()) return static_cast<std::ptrdiff_t>(buf.size());
    if (socket_ && guard_.fault() == RecordFault::none && !guard_.sealed() && socket_->direct(buf)) [[likely]] {
      const std::ptrdiff_t n = socket_->send_now(buf);
      if (n > 0) [[likely]] {
        if (guard_.active()) guard_.written(buf.first(static_cast<std::size_t>(n)));
        return n;
      }
      return socket_write_ended(buf, n);
    }
    return write_through(buf);
  }
  // Several buffers in order, as write() would take them one by one (a
  // flight of records: one syscall for all on the library's own socket
  // transport, docs/benchmarks.md). > 0: bytes taken from the front, possibly
  // fewer than all; -1: see stop(); 0: nothing to write.
  std::ptrdiff_t write_gather(std::span<const iovec> parts);

  // Why the last read or write returned -1.
  Stop stop() const noexcept { return stop_; }

  // The core, before each engine call: the per-call facts start afresh.
  void begin_call() noexcept {
    dry_ = full_ = timed_out_ = false;
    // Cleared only when set: clear() is an out-of-line call, on every read
    // and write (docs/benchmarks.md).
    if (io_error_.value() != 0) io_error_ = std::error_code();
  }
  // The core, at the start of each blocking call with a time limit (max():
  // none): the transport's waits end then (docs/contract.md, "Time").
  void set_deadline(std::chrono::steady_clock::time_point deadline) noexcept {
    guard_.set_deadline(deadline);
  }
  bool dry() const noexcept { return dry_; }    // this call: "nothing to read now"
  bool full() const noexcept { return full_; }  // this call: "cannot take more now"
  // This call: the transport's deadline passed (also dry or full: to the
  // engine a timeout is "nothing now").
  bool timed_out() const noexcept { return timed_out_; }
  // This call: how the transport failed (its native error when it has one).
  const std::error_code& io_error() const noexcept { return io_error_; }
  bool eof() const noexcept { return eof_; }  // the transport has said EOF

  // Our close_notify is out, or the connection is dead: nothing more is
  // written.
  void seal() noexcept { guard_.seal(); }

  int native_handle() const noexcept { return guard_.native_handle(); }
  bool is_blocking() const noexcept { return guard_.is_blocking(); }
  const RecordGuard& guard() const noexcept { return guard_; }

 private:
  // read() and write() through the guard and the transport's virtual
  // calls, out of line: the fast path above then needs no frame of its own.
  std::ptrdiff_t read_through(std::span<std::byte> buf);
  std::ptrdiff_t write_through(std::span<const std::byte> buf);
  // A read that moved nothing: EOF (n == 0) or stopped.
  std::ptrdiff_t read_ended(std::ptrdiff_t n, const std::error_code& ec);
  // The same after socket_'s recv_now / send_now moved nothing.
  std::ptrdiff_t socket_read_ended(std::span<std::byte> buf, std::ptrdiff_t n);
  // n > 0 bytes read from socket_ in the plaintext phase: what the guard
  // hands on of them, or "nothing now" when it rejected the first record.
  std::ptrdiff_t socket_read_judged(std::span<std::byte> buf, std::ptrdiff_t n);
  std::ptrdiff_t socket_write_ended(std::span<const std::byte> buf, std::ptrdiff_t n);
  // Records why a read or write moved nothing (ec: the transport's answer).
  std::ptrdiff_t stopped(const std::error_code& ec, bool reading);

  // The transport when it is the library's own fd transport: called
  // directly, without the virtual call, once the guard passes everything
  // (FdTransport is final). Set before guard_ takes the transport.
  FdTransport* socket_;
  RecordGuard guard_;
  Stop stop_ = Stop::none;
  bool eof_ = false;
  bool dry_ = false;
  bool full_ = false;
  bool timed_out_ = false;
  std::error_code io_error_ = no_error();
};

}  // namespace unitls::detail
