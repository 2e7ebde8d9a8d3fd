// Transports: the byte pipes a SecureSocket runs over.
//
// A Transport moves raw bytes, nothing more. Whether the SecureSocket on top
// of it can return want_read / want_write is decided here: a blocking
// transport never reports them; a non-blocking one (and the in-memory pair)
// does.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include <unitls/export.hpp>

namespace unitls {

class UNITLS_API Transport {
 public:
  virtual ~Transport();

  // Moves bytes. Returns > 0 for the bytes moved; 0 for an orderly EOF (read
  // only; never returned for an empty buf); -1 with ec set to
  // errc::want_read / errc::want_write (nothing can move now) or
  // errc::transport_error (reset, broken pipe: the errno is kept in
  // native_error()). ec is cleared on success.
  virtual std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) = 0;
  virtual std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) = 0;

  // The OS file descriptor behind this transport, or -1. Every byte still
  // goes through read()/write(); the descriptor is only waited on (poll) by
  // a stack that asks for a timed wait.
  virtual int native_handle() const noexcept { return -1; }

  // Whether a call can block (then it never reports want_read/want_write).
  // SecureSocket::write() asks this only when a write spans several records:
  // a blocking transport gets every byte written, a non-blocking one the
  // count taken so far. The default, false, is always safe.
  virtual bool is_blocking() const noexcept { return false; }

  // The OS error of the last failed call (an errno in std::system_category),
  // empty when none.
  virtual std::error_code native_error() const noexcept { return {}; }

  // The moment the current blocking call must end by (time_point::max(): no
  // limit); the SecureSocket sets it before each call. A blocking transport
  // that can wait with a limit honours it: a read or write that would wait
  // past it returns -1 with errc::timed_out, having moved nothing. The
  // default ignores it: the transport then waits as long as it does (a
  // blocking transport may also report timed_out on its own, e.g. from
  // SO_RCVTIMEO). The fd transport polls with the time left.
  virtual void set_deadline(std::chrono::steady_clock::time_point deadline) noexcept { (void)deadline; }
};

// A transport over a connected stream socket or pipe. It is blocking iff the
// fd is (O_NONBLOCK decides, at each call). TCP_NODELAY is set on TCP sockets
// (without it every TLS handshake stalls ~40 ms on delayed ACKs). With
// owns_fd the fd is closed with the transport. Returns nullptr for fd < 0.
UNITLS_API std::unique_ptr<Transport> make_fd_transport(int fd, bool owns_fd = true);

// ---- the in-memory pair -------------------------------------------------
//
// Two transports joined back to back inside one process. They never block:
// a read with nothing buffered reports want_read. The MemoryLink behind them
// lets a test shape each direction deterministically.

// One direction of a memory pair (what one end writes and the other reads).
class UNITLS_API MemoryPipe {
 public:
  virtual ~MemoryPipe();

  // Hold: while on, bytes written are buffered but the reader sees none
  // (want_read) — the network "in flight". Off releases them.
  virtual void hold(bool on) = 0;
  // Writes beyond `bytes` more bytes report want_write (a full socket buffer).
  // A negative value (the default) means unlimited. Each accepted byte lowers
  // the budget; set it again to "drain".
  virtual void set_write_budget(std::ptrdiff_t bytes) = 0;
  // After the bytes already buffered are read, the reader gets EOF (0).
  // Writes after EOF fail with transport_error (EPIPE).
  virtual void inject_eof() = 0;
  // The next read (after buffered bytes) and every write fail with
  // transport_error carrying this errno (ECONNRESET, EPIPE, ...).
  virtual void inject_error(int errno_value) = 0;
  // Adds raw bytes to the buffer, as if the writer had sent them.
  virtual void inject_bytes(std::span<const std::byte> bytes) = 0;
  // Flips one bit in the last byte currently buffered (spoils a record's MAC).
  // Returns false when nothing is buffered.
  virtual bool corrupt_last_byte() = 0;
  // Drops everything buffered and not yet read; returns how many bytes.
  virtual std::size_t discard() = 0;

  // Counters since the pair was made.
  virtual std::uint64_t bytes_written() const = 0;
  // Complete TLS records written (the 5-byte record headers are parsed).
  virtual std::uint64_t records_written() const = 0;
  // TLS alert records (content type 21) written, plaintext or encrypted in
  // TLS 1.2. In TLS 1.3 alerts travel as application_data (type 23) and are
  // counted in records_written() only.
  virtual std::uint64_t alert_records_written() const = 0;
  // Bytes buffered and not yet read (held bytes included).
  virtual std::size_t buffered() const = 0;
};

class UNITLS_API MemoryLink {
 public:
  virtual ~MemoryLink();
  virtual MemoryPipe& client_to_server() = 0;
  virtual MemoryPipe& server_to_client() = 0;
};

struct MemoryPair {
  std::unique_ptr<Transport> client, server;
  std::shared_ptr<MemoryLink> link;  // fault injection and counters; may be ignored
};

// An in-process duplex pipe; never blocks (want_read when empty).
UNITLS_API MemoryPair make_memory_pair();

}  // namespace unitls
