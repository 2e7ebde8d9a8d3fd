#include "wire.hpp"

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
  std::error_code ec;
  n = socket_->recv_ended(buf, n, ec);
  if (n > 0) return n;  // interrupted, then bytes
  return read_ended(n, ec);
}

std::ptrdiff_t Wire::socket_write_ended(std::span<const std::byte> buf, std::ptrdiff_t n) {
  std::error_code ec;
  n = socket_->send_ended(buf, n, ec);
  if (n > 0) return n;
  return stopped(!ec && n == 0 ? make_error_code(errc::want_write) : ec, false);
}

std::ptrdiff_t Wire::stopped(const std::error_code& ec, bool reading) {
  if (ec == errc::timed_out) {
    // To the stack, "nothing now" in the direction it waited for; the core
    // tells the caller timed_out.
    timed_out_ = true;
    (reading ? dry_ : full_) = true;
    stop_ = reading ? Stop::would_block_read : Stop::would_block_write;
  } else if (ec == errc::want_read) {
    dry_ = true;
    stop_ = Stop::would_block_read;
  } else if (ec == errc::want_write) {
    full_ = true;
    stop_ = Stop::would_block_write;
  } else {
    io_error_ = failure_of(ec, guard_.native_error());
    stop_ = Stop::failed;
  }
  return -1;
}

}  // namespace unitls::detail
