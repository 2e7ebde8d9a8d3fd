#include "wire.hpp"

#include <algorithm>
#include <cerrno>

namespace unitls::detail {

namespace {
std::error_code failure_of(const std::error_code& ec, const std::error_code& native) {
  if (native) return native;
  if (ec) return ec;
  return std::make_error_code(std::errc::io_error);
}
}  // namespace

std::ptrdiff_t Wire::read_ended(std::ptrdiff_t n, const std::error_code& ec) {
  if (n == 0) {
    eof_ = true;
    return 0;
  }
  return stopped(ec, true);
}

std::ptrdiff_t Wire::read_through(std::span<std::byte> buf) {
  std::error_code ec = no_error();
  const std::ptrdiff_t n = guard_.read(buf, ec);
  if (n > 0) [[likely]] return n;
  return read_ended(n, ec);
}

std::ptrdiff_t Wire::write_through(std::span<const std::byte> buf) {
  std::error_code ec = no_error();
  const std::ptrdiff_t n = guard_.write(buf, ec);
  if (n > 0) [[likely]] return n;
  // A transport that took nothing without saying why is full for now.
  return stopped(!ec && n == 0 ? make_error_code(errc::want_write) : ec, false);
}

std::ptrdiff_t Wire::socket_read_ended(std::span<std::byte> buf, std::ptrdiff_t n) {
  // Nothing to read on a non-blocking socket, the usual way a read ends:
  // said at once, without an error_code (docs/benchmarks.md).
  if (n < 0 && socket_->would_block_now()) {
    dry_ = true;
    stop_ = Stop::would_block_read;
    return -1;
  }
  std::error_code ec;
  n = socket_->recv_ended(buf, n, ec);
  if (n > 0) return guard_.active() ? socket_read_judged(buf, n) : n;  // interrupted, then bytes
  return read_ended(n, ec);
}

std::ptrdiff_t Wire::socket_read_judged(std::span<std::byte> buf, std::ptrdiff_t n) {
  // As RecordGuard::read: the bytes before a rejected record go on; none
  // is "nothing now", and the core reports the fault.
  const std::size_t good = guard_.judged(buf.first(static_cast<std::size_t>(n)));
  if (guard_.fault() == RecordFault::none) return n;
  if (good > 0) return static_cast<std::ptrdiff_t>(good);
  return stopped(make_error_code(errc::want_read), true);
}

std::ptrdiff_t Wire::socket_write_ended(std::span<const std::byte> buf, std::ptrdiff_t n) {
  if (n < 0 && socket_->would_block_now()) {
    full_ = true;
    stop_ = Stop::would_block_write;
    return -1;
  }
  std::error_code ec;
  n = socket_->send_ended(buf, n, ec);
  if (n > 0) {  // interrupted, then bytes
    guard_.written(buf.first(static_cast<std::size_t>(n)));
    return n;
  }
  return stopped(!ec && n == 0 ? make_error_code(errc::want_write) : ec, false);
}

std::ptrdiff_t Wire::write_gather(std::span<const iovec> parts) {
  std::size_t total = 0;
  for (const iovec& part : parts) total += part.iov_len;
  if (total == 0) return 0;
  stop_ = Stop::none;
  if (eof_) return static_cast<std::ptrdiff_t>(total);  // swallowed, as write()
  if (socket_ && guard_.fault() == RecordFault::none && !guard_.sealed() && socket_->direct_gather()) {
    const std::ptrdiff_t n = socket_->send_gather_now(parts);
    if (n > 0) {
      if (guard_.active()) {
        std::size_t left = static_cast<std::size_t>(n);
        for (const iovec& part : parts) {
          const std::size_t k = std::min(left, part.iov_len);
          guard_.written(std::span<const std::byte>(static_cast<const std::byte*>(part.iov_base), k));
          left -= k;
          if (left == 0) break;
        }
      }
      return n;
    }
    if (n < 0 && errno != EINTR) {
      // Said as write() says it, from this call's errno: would-block, a
      // blocking socket's send timeout (timed_out, without a second wait),
      // or the socket's own error (a second call would find a different
      // one: ECONNRESET is reported once, then EPIPE).
      for (const iovec& part : parts) {
        if (part.iov_len == 0) continue;
        return socket_write_ended(
            std::span<const std::byte>(static_cast<const std::byte*>(part.iov_base), part.iov_len), n);
      }
    }
    // Interrupted (or nothing moved): one part at a time.
  }
  // One at a time; stops at the first not taken whole.
  std::ptrdiff_t taken = 0;
  for (const iovec& part : parts) {
    if (part.iov_len == 0) continue;
    const std::ptrdiff_t n = write(std::span<const std::byte>(static_cast<const std::byte*>(part.iov_base), part.iov_len));
    if (n <= 0) return taken > 0 ? taken : n;
    taken += n;
    if (static_cast<std::size_t>(n) < part.iov_len) break;
  }
  return taken;
}

std::ptrdiff_t Wire::stopped(const std::error_code& ec, bool reading) {
  // The library's own codes by value (comparing with an errc would make an
  // error_code for each test).
  const int mine = ec.category() == category() ? ec.value() : 0;
  if (mine == static_cast<int>(errc::timed_out)) {
    // To the stack, "nothing now" in the direction it waited for; the core
    // tells the caller timed_out.
    timed_out_ = true;
    (reading ? dry_ : full_) = true;
    stop_ = reading ? Stop::would_block_read : Stop::would_block_write;
  } else if (mine == static_cast<int>(errc::want_read)) {
    dry_ = true;
    stop_ = Stop::would_block_read;
  } else if (mine == static_cast<int>(errc::want_write)) {
    full_ = true;
    stop_ = Stop::would_block_write;
  } else {
    io_error_ = failure_of(ec, guard_.native_error());
    stop_ = Stop::failed;
  }
  return -1;
}

}  // namespace unitls::detail
