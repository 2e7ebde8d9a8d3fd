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
