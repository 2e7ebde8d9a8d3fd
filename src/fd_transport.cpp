// The file-descriptor transport: a connected stream socket or a pipe.
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <csignal>
#include <ctime>

#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unitls/error.hpp>
#include <unitls/transport.hpp>

#include "fd_transport.hpp"

namespace unitls {

// Out of line so the vtable has one home.
Transport::~Transport() = default;

namespace {

// A write to a pipe whose reader is gone raises SIGPIPE, and there is no
// MSG_NOSIGNAL for write(2). Blocking the signal for the duration of the call
// and swallowing the one we caused turns it into a plain EPIPE, as for
// sockets, without touching the process-wide disposition the application may
// rely on. Only pipes pay for the extra syscalls.
ssize_t write_without_sigpipe(int fd, const void* data, std::size_t size) {
  sigset_t sigpipe_set;
  sigemptyset(&sigpipe_set);
  sigaddset(&sigpipe_set, SIGPIPE);
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &sigpipe_set, &old_mask);

  // A SIGPIPE already pending for this thread is not ours to swallow.
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;

  ssize_t n;
  do {
    n = ::write(fd, data, size);
  } while (n < 0 && errno == EINTR);
  const int saved_errno = errno;

  if (n < 0 && saved_errno == EPIPE && !was_pending) {
    const timespec no_wait{};
    while (sigtimedwait(&sigpipe_set, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = saved_errno;
  return n;
}

bool is_would_block(int err) {
#if EAGAIN != EWOULDBLOCK  // POSIX allows them to differ; on Linux they do not
  if (err == EWOULDBLOCK) return true;
#endif
  return err == EAGAIN;
}

}  // namespace

}  // namespace unitls

namespace unitls::detail {

FdTransport::FdTransport(int fd, bool owns_fd) : fd_(fd), owns_fd_(owns_fd) {
  // TCP_NODELAY first: without it the last flight of every handshake waits
  // ~40 ms for a delayed ACK (Nagle). Best effort, and asked of any fd: its
  // answer also says whether the fd is a socket (a socket that is not TCP
  // refuses the option with EOPNOTSUPP or ENOPROTOOPT, anything else that
  // is not a socket with ENOTSOCK), so that the common case, a TCP socket,
  // costs one syscall (docs/benchmarks.md).
  const int on = 1;
  if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0) {
    is_socket_ = true;
  } else {
    const int err = errno;
    if (err == ENOTSOCK) {
      is_socket_ = false;
    } else {
      struct stat st;  // filled by fstat
      is_socket_ = ::fstat(fd_, &st) == 0 && S_ISSOCK(st.st_mode);
    }
  }
  direct_ = is_socket_;
}

FdTransport::~FdTransport() {
  // No retry on EINTR: on Linux the fd is released even then, and a retry
  // could close a descriptor another thread just received.
  if (owns_fd_) ::close(fd_);
}

std::ptrdiff_t FdTransport::recv_ended(std::span<std::byte> buf, std::ptrdiff_t n, std::error_code& ec) {
  if (n < 0 && errno == EINTR) return read_general(buf, ec);
  return answer(n, errc::want_read, ec);
}

std::ptrdiff_t FdTransport::send_ended(std::span<const std::byte> buf, std::ptrdiff_t n, std::error_code& ec) {
  if (n < 0 && errno == EINTR) return write_general(buf, ec);
  return answer(n, errc::want_write, ec);
}

std::ptrdiff_t FdTransport::read_general(std::span<std::byte> buf, std::error_code& ec) {
  // 0 must mean EOF and nothing else, so an empty read is refused.
  if (buf.empty()) {
    ec = make_error_code(errc::invalid_argument);
    return -1;
  }
  if (!wait_for(POLLIN, ec)) return -1;
  ssize_t n;
  do {
    n = is_socket_ ? ::recv(fd_, buf.data(), buf.size(), 0) : ::read(fd_, buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  return answer(n, errc::want_read, ec);
}

std::ptrdiff_t FdTransport::write_general(std::span<const std::byte> buf, std::error_code& ec) {
  if (buf.empty()) {
    ec.clear();
    return 0;
  }
  if (!wait_for(POLLOUT, ec)) return -1;
  ssize_t n;
  if (is_socket_) {
    // With a deadline, only what the socket takes now: a blocking send of
    // more than its buffer holds would wait past the deadline.
    const int flags = MSG_NOSIGNAL | (has_deadline() ? MSG_DONTWAIT : 0);
    do {
      n = ::send(fd_, buf.data(), buf.size(), flags);
    } while (n < 0 && errno == EINTR);
  } else {
    n = write_without_sigpipe(fd_, buf.data(), buf.size());
  }
  return answer(n, errc::want_write, ec);
}

bool FdTransport::is_blocking() const noexcept {
  const int flags = ::fcntl(fd_, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) == 0;
}

bool FdTransport::wait_for(short events, std::error_code& ec) {
  if (!has_deadline() || !is_blocking()) return true;
  pollfd p{fd_, events, 0};
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
    const int ms = left.count() <= 0 ? 0 : static_cast<int>(std::min<std::int64_t>(left.count(), INT_MAX));
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return true;  // ready, or an error/hangup the call itself reports
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return true;  // let the call report the fd's trouble
    ec = make_error_code(errc::timed_out);
    return false;
  }
}

std::ptrdiff_t FdTransport::answer(ssize_t n, errc would_block, std::error_code& ec) {
  if (n >= 0) {
    // Already clear, as the core's always is: no out-of-line clear().
    if (ec.value() != 0) ec.clear();
    return n;
  }
  const int err = errno;
  if (is_would_block(err)) {
    // A blocking fd says EAGAIN only when SO_RCVTIMEO / SO_SNDTIMEO expired
    // (or with MSG_DONTWAIT under a deadline): a blocking transport never
    // says want_*, it timed out.
    ec = make_error_code(is_blocking() ? errc::timed_out : would_block);
  } else {
    native_error_ = std::error_code(err, std::system_category());
    ec = make_error_code(errc::transport_error);
  }
  return -1;
}

}  // namespace unitls::detail

namespace unitls {

std::unique_ptr<Transport> make_fd_transport(int fd, bool owns_fd) {
  if (fd < 0) return nullptr;
  return std::make_unique<detail::FdTransport>(fd, owns_fd);
}

}  // namespace unitls
