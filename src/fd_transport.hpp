// The file-descriptor transport (make_fd_transport): a connected stream
// socket or a pipe. Declared here so that the Wire can call its common case
// directly, inline, instead of through the Transport's virtual call: on the
// data path that call and its frame were a good part of what unitls adds to
// each record (docs/benchmarks.md). Everything else is in fd_transport.cpp.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <span>
#include <system_error>
#include <typeinfo>

#include <unitls/error.hpp>
#include <unitls/transport.hpp>

namespace unitls::detail {

class FdTransport final : public Transport {
 public:
  FdTransport(int fd, bool owns_fd);
  ~FdTransport() override;

  FdTransport(const FdTransport&) = delete;
  FdTransport& operator=(const FdTransport&) = delete;

  // t itself when it is one (null otherwise). The class is final: its
  // exact type is enough, and comparing it costs a few instructions where
  // dynamic_cast walked the hierarchy (docs/benchmarks.md).
  static FdTransport* of(Transport* t) noexcept {
    return t && typeid(*t) == typeid(FdTransport) ? static_cast<FdTransport*>(t) : nullptr;
  }

  // The common case first, in few instructions (a socket, no deadline,
  // bytes moved: docs/benchmarks.md); everything else in the general one.
  std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) override {
    if (direct(buf)) [[likely]] {
      const std::ptrdiff_t n = recv_now(buf);
      if (n > 0) [[likely]] {
        if (ec.value() != 0) ec.clear();
        return n;
      }
      return recv_ended(buf, n, ec);
    }
    return read_general(buf, ec);
  }

  std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) override {
    if (direct(buf)) [[likely]] {
      const std::ptrdiff_t n = send_now(buf);
      if (n > 0) [[likely]] {
        if (ec.value() != 0) ec.clear();
        return n;
      }
      return send_ended(buf, n, ec);
    }
    return write_general(buf, ec);
  }

  // read()'s and write()'s common case in parts, for a caller that keeps its
  // error_code off the path where bytes move (the Wire): when direct(buf),
  // recv_now/send_now; when that moved nothing, what read()/write() make of
  // it, errno still as recv/send left it.
  bool direct(std::span<const std::byte> buf) const noexcept { return direct_ && !buf.empty(); }
  std::ptrdiff_t recv_now(std::span<std::byte> buf) noexcept { return ::recv(fd_, buf.data(), buf.size(), 0); }
  std::ptrdiff_t send_now(std::span<const std::byte> buf) noexcept {
    return ::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL);
  }
  // Several buffers in one call (parts not all empty), as send_now.
  bool direct_gather() const noexcept { return direct_; }
  std::ptrdiff_t send_gather_now(std::span<const iovec> parts) noexcept {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(parts.data());
    m.msg_iovlen = parts.size();
    return ::sendmsg(fd_, &m, MSG_NOSIGNAL);
  }
  // After recv_now/send_now returned -1: the socket has nothing now (or
  // cannot take more) and is non-blocking, which is want_read/want_write
  // and nothing else (on a blocking socket EAGAIN is a timeout: answer()).
  bool would_block_now() const noexcept {
    const int err = errno;
    return (err == EAGAIN || err == EWOULDBLOCK) && !is_blocking();
  }
  [[gnu::noinline]] std::ptrdiff_t recv_ended(std::span<std::byte> buf, std::ptrdiff_t n, std::error_code& ec);
  [[gnu::noinline]] std::ptrdiff_t send_ended(std::span<const std::byte> buf, std::ptrdiff_t n,
                                              std::error_code& ec);

  int native_handle() const noexcept override { return fd_; }
  bool is_blocking() const noexcept override;
  std::error_code native_error() const noexcept override { return native_error_; }
  void set_deadline(std::chrono::steady_clock::time_point deadline) noexcept override {
    deadline_ = deadline;
    direct_ = is_socket_ && !has_deadline();
  }

 private:
  bool has_deadline() const noexcept { return deadline_ != std::chrono::steady_clock::time_point::max(); }

  [[gnu::noinline]] std::ptrdiff_t read_general(std::span<std::byte> buf, std::error_code& ec);
  [[gnu::noinline]] std::ptrdiff_t write_general(std::span<const std::byte> buf, std::error_code& ec);
  // With a deadline on a blocking fd: waits until it is ready for `events`,
  // or sets ec to timed_out and returns false once the deadline has passed.
  // Without one, or non-blocking: true at once (the call itself waits, or
  // says want_*).
  bool wait_for(short events, std::error_code& ec);
  [[gnu::noinline]] std::ptrdiff_t answer(ssize_t n, errc would_block, std::error_code& ec);

  int fd_;
  bool owns_fd_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool is_socket_ = false;
  bool direct_ = false;  // is_socket_ and no deadline: the common case (one test)
  std::error_code native_error_;
};

}  // namespace unitls::detail
