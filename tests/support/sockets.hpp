// Real OS sockets for the test suites (conformance's real_socket_test and
// the interop matrix): connected socket pairs with a watchdog, a bounded
// peer thread for blocking cases, poll() loops for non-blocking ones, and
// the bulk-data helpers (1 MiB with a checksum).
//
// Nothing here may hang CI: a SocketLink's watchdog shuts both sockets down
// when a case outlives its deadline, so a blocked call returns and the case
// fails; every non-blocking loop is bounded by a deadline too.
//
// Header-only so that each suite takes it by #include alone.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"

namespace unitls::test {

using Clock = std::chrono::steady_clock;

// A case (handshake, a few exchanges, the close) takes milliseconds; the
// watchdog cuts its sockets after this long unless the link says otherwise.
inline constexpr Clock::duration default_case_deadline = std::chrono::seconds(5);
// How long one non-blocking loop may go without finishing.
inline constexpr Clock::duration default_loop_deadline = std::chrono::seconds(3);

enum class Kind { socketpair, tcp };
enum class Mode { blocking, nonblocking };

inline std::string mode_name(Mode m) { return m == Mode::blocking ? "blocking" : "non-blocking"; }

// Two connected stream sockets: end 0 for the client, end 1 for the server.
// The transports never own the fds (wrap_fd(fd, false), make_fd_transport(fd,
// false)); the link does, so the watchdog can never shut down a descriptor
// number that was closed and handed out again.
class SocketLink {
 public:
  SocketLink(Kind kind, Mode mode, Clock::duration deadline = default_case_deadline)
      : deadline_(deadline) {
    if (kind == Kind::socketpair) {
      int fds[2];
      REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
      fd_ = {fds[0], fds[1]};
    } else {
      fd_ = tcp_pair();
    }
    if (mode == Mode::nonblocking) {
      for (const int fd : fd_) {
        const int flags = ::fcntl(fd, F_GETFL);
        REQUIRE(::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
      }
    }
    watchdog_ = std::thread([this] { watch(); });
  }

  ~SocketLink() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
    for (const int fd : fd_) {
      if (fd >= 0) ::close(fd);
    }
  }

  SocketLink(const SocketLink&) = delete;
  SocketLink& operator=(const SocketLink&) = delete;

  int fd(Side side) const {
    std::lock_guard lock(mutex_);
    return fd_[index(side)];
  }

  Clock::duration deadline() const { return deadline_; }

  // Closes one end with close(2) alone: an orderly FIN (the caller makes sure
  // nothing is left unread, or the OS would send a reset instead).
  void close_end(Side side) {
    std::lock_guard lock(mutex_);
    int& fd = fd_[index(side)];
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  // Shuts both sockets down now, so that every blocked call returns.
  void cut() {
    std::lock_guard lock(mutex_);
    cut_locked();
  }

  bool watchdog_fired() const {
    std::lock_guard lock(mutex_);
    return fired_;
  }

 private:
  static std::size_t index(Side side) { return side == Side::client ? 0 : 1; }

  static std::array<int, 2> tcp_pair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const bool listening = ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                           ::listen(listener, 1) == 0 &&
                           ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    const int client = listening ? ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    // A loopback connect completes from the listen backlog, before accept().
    const bool connected =
        client >= 0 && ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    const int server = connected ? ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC) : -1;
    const int saved_errno = errno;
    ::close(listener);
    if (server < 0 && client >= 0) ::close(client);
    REQUIRE_MESSAGE(server >= 0, "loopback TCP setup failed: " << std::strerror(saved_errno));
    return {client, server};
  }

  void watch() {
    std::unique_lock lock(mutex_);
    if (!wake_.wait_for(lock, deadline_, [this] { return stop_; })) {
      fired_ = true;
      cut_locked();
    }
  }

  void cut_locked() {
    for (const int fd : fd_) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    }
  }

  const Clock::duration deadline_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::array<int, 2> fd_{-1, -1};
  bool stop_ = false;
  bool fired_ = false;
  std::thread watchdog_;
};

// The peer of a blocking case, in its own thread. join() waits a bounded
// time and rethrows the peer's failure; a peer that fails cuts the link so
// the main thread does not wait for it until the watchdog fires.
class PeerThread {
 public:
  PeerThread(SocketLink& link, std::function<void()> body) : link_(link) {
    std::packaged_task<void()> task([&link, body = std::move(body)] {
      try {
        body();
      } catch (...) {
        link.cut();
        throw;
      }
    });
    done_ = task.get_future();
    thread_ = std::thread(std::move(task));
  }

  ~PeerThread() {
    if (thread_.joinable()) {
      link_.cut();
      wait_or_abort();
      thread_.join();
    }
  }

  PeerThread(const PeerThread&) = delete;
  PeerThread& operator=(const PeerThread&) = delete;

  void join() {
    if (done_.wait_for(link_.deadline() + std::chrono::seconds(1)) != std::future_status::ready) {
      FAIL_CHECK("the peer thread did not finish in time");
      link_.cut();
      wait_or_abort();
    }
    thread_.join();
    done_.get();
  }

 private:
  void wait_or_abort() {
    if (done_.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      // Its sockets are shut down and it still runs: nothing left to try,
      // and blocking CI forever is worse than dying loudly.
      std::fputs("unitls tests: peer thread hung after its sockets were shut down\n", stderr);
      std::abort();
    }
  }

  SocketLink& link_;
  std::future<void> done_;
  std::thread thread_;
};

// ---- blocking helpers (used from both threads) ------------------------------

inline void blocking_handshake(SecureSocket& s) {
  REQUIRE_MESSAGE(s.handshake() == 1, "handshake failed: " << describe(s.last_error())
                                                           << " (native "
                                                           << describe(s.native_error()) << ")");
}

inline void blocking_write(SecureSocket& s, std::string_view text) {
  const std::ptrdiff_t n = s.write(text);
  REQUIRE(outcome(s, n) == success(static_cast<std::ptrdiff_t>(text.size())));
}

inline std::string blocking_read_exact(SecureSocket& s, std::size_t size) {
  std::string out;
  std::array<std::byte, 4096> buf;
  while (out.size() < size) {
    const std::ptrdiff_t n = s.read(std::span(buf).first(std::min(buf.size(), size - out.size())));
    REQUIRE_MESSAGE(n > 0, "read() returned " << n << ", " << describe(s.last_error()));
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
  }
  return out;
}

inline void expect_zero_return(SecureSocket& s) {
  std::array<std::byte, 64> buf;
  CHECK(outcome(s, s.read(buf)) == end_of_data(errc::zero_return));
}

// A dead connection repeats its error on every call.
inline void expect_dead(SecureSocket& s, errc code) {
  std::array<std::byte, 64> buf;
  CHECK(outcome(s, s.read(buf)) == failure(code));
  CHECK(outcome(s, s.write("more")) == failure(code));
  CHECK(outcome(s, s.shutdown()) == failure(code));
  CHECK(s.send_close_notify() == code);
  CHECK(outcome(s, s.read(buf)) == failure(code));
}

// ---- non-blocking helpers -------------------------------------------------

// The poll events a non-blocking call that returned -1 waits for; any
// other error fails the case.
inline short wanted_events(const SecureSocket& s, const char* what) {
  const std::error_code e = s.last_error();
  if (e == errc::want_read) return POLLIN;
  if (e == errc::want_write) return POLLOUT;
  FAIL(what << " failed: " << describe(e));
  return 0;
}

inline void poll_fds(std::span<pollfd> fds, int timeout_ms = 100) {
  int r;
  do {
    r = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), timeout_ms);
  } while (r < 0 && errno == EINTR);
  REQUIRE_MESSAGE(r >= 0, "poll: " << std::strerror(errno));
}

// What waits on fd once the other end has closed its socket: polls (at most
// timeout_ms) until fd is readable, then peeks at one byte without taking
// it. 0 when the EOF came with nothing before it, 1 when bytes are queued,
// -1 when nothing arrived at all. Tells whether anything was put on the wire
// before the close.
inline std::ptrdiff_t peek_before_eof(int fd, int timeout_ms = 1000) {
  pollfd p{fd, POLLIN, 0};
  poll_fds(std::span(&p, 1), timeout_ms);
  std::byte b;
  std::ptrdiff_t n;
  do {
    n = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : n;
}

// Repeats op (one call on s) while it answers want_read or want_write,
// polling fd for what it wants, and returns the first other result. Only
// for calls whose peer has already done its part.
template <typename Op>
auto retry(SecureSocket& s, int fd, Op op, Clock::duration limit = default_loop_deadline) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    const auto r = op();
    if (r != -1) return r;
    const std::error_code e = s.last_error();
    if (e != errc::want_read && e != errc::want_write) return r;
    REQUIRE_MESSAGE(Clock::now() < deadline, "still " << describe(e) << " at the deadline");
    pollfd p{fd, static_cast<short>(e == errc::want_read ? POLLIN : POLLOUT), 0};
    poll_fds(std::span(&p, 1));
  }
}

// Runs one step function per side until both return 0 (finished). A step
// returns the poll events it waits for otherwise.
inline void drive(int fd_a, const std::function<short()>& step_a, int fd_b,
                  const std::function<short()>& step_b,
                  Clock::duration limit = default_loop_deadline) {
  const auto deadline = Clock::now() + limit;
  bool done_a = false, done_b = false;
  for (;;) {
    short want_a = 0, want_b = 0;
    if (!done_a) done_a = (want_a = step_a()) == 0;
    if (!done_b) done_b = (want_b = step_b()) == 0;
    if (done_a && done_b) return;
    REQUIRE_MESSAGE(Clock::now() < deadline, "not finished at the deadline");
    std::array<pollfd, 2> fds{pollfd{done_a ? -1 : fd_a, want_a, 0},
                              pollfd{done_b ? -1 : fd_b, want_b, 0}};
    poll_fds(fds);
  }
}

// Both handshakes, driven from one thread.
inline void nonblocking_handshake(SecureSocket& a, int fd_a, SecureSocket& b, int fd_b,
                                  Clock::duration limit = default_loop_deadline) {
  drive(
      fd_a, [&]() -> short { return a.handshake() == 1 ? 0 : wanted_events(a, "handshake"); }, fd_b,
      [&]() -> short { return b.handshake() == 1 ? 0 : wanted_events(b, "handshake"); }, limit);
}

inline void nonblocking_write(SecureSocket& s, int fd, std::string_view text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const std::ptrdiff_t n = retry(s, fd, [&] { return s.write(text.substr(done)); });
    REQUIRE_MESSAGE(n > 0, "write() returned " << n << ", " << describe(s.last_error()));
    done += static_cast<std::size_t>(n);
  }
}

inline std::string nonblocking_read_exact(SecureSocket& s, int fd, std::size_t size) {
  std::string out;
  std::array<std::byte, 4096> buf;
  while (out.size() < size) {
    const auto room = std::span(buf).first(std::min(buf.size(), size - out.size()));
    const std::ptrdiff_t n = retry(s, fd, [&] { return s.read(room); });
    REQUIRE_MESSAGE(n > 0, "read() returned " << n << ", " << describe(s.last_error()));
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
  }
  return out;
}

inline void nonblocking_expect_zero_return(SecureSocket& s, int fd) {
  std::array<std::byte, 64> buf;
  const std::ptrdiff_t n = retry(s, fd, [&] { return s.read(buf); });
  CHECK(outcome(s, n) == end_of_data(errc::zero_return));
}

// ---- bulk data --------------------------------------------------------------

inline constexpr std::size_t bulk_size = std::size_t{1} << 20;

// size deterministic bytes, different for every seed.
inline std::vector<std::byte> bulk_data(std::uint64_t seed, std::size_t size = bulk_size) {
  std::vector<std::byte> out(size);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x >> 56);
  }
  return out;
}

// FNV-1a, fed piecewise as the data arrives.
struct Checksum {
  std::uint64_t value = 14695981039346656037ull;
  void add(std::span<const std::byte> data) {
    for (const std::byte b : data) {
      value ^= std::to_integer<std::uint64_t>(b);
      value *= 1099511628211ull;
    }
  }
};

inline std::uint64_t checksum_of(std::span<const std::byte> data) {
  Checksum c;
  c.add(data);
  return c.value;
}

// Reads exactly size bytes from a blocking socket; their checksum.
inline std::uint64_t blocking_read_bulk(SecureSocket& s, std::size_t size = bulk_size) {
  Checksum in;
  std::size_t got = 0;
  std::vector<std::byte> buf(65536);
  while (got < size) {
    const std::ptrdiff_t n = s.read(std::span(buf).first(std::min(buf.size(), size - got)));
    REQUIRE_MESSAGE(n > 0, "read() returned " << n << " after " << got << " bytes, "
                                              << describe(s.last_error()));
    in.add(std::span(buf).first(static_cast<std::size_t>(n)));
    got += static_cast<std::size_t>(n);
  }
  return in.value;
}

// One side of a non-blocking bulk exchange: writes its data and reads
// in_size bytes of the other side's, in whatever pieces the sockets allow.
class BulkSide {
 public:
  BulkSide(SecureSocket& s, std::vector<std::byte> out, std::size_t in_size = bulk_size)
      : s_(s), out_(std::move(out)), in_size_(in_size) {}

  short step() {
    short want = 0;
    while (sent_ < out_.size()) {
      // After want_write the same bytes are offered again: sent_ did not move.
      const auto chunk =
          std::span(out_).subspan(sent_, std::min<std::size_t>(65536, out_.size() - sent_));
      const std::ptrdiff_t n = s_.write(chunk);
      if (n > 0) {
        REQUIRE(static_cast<std::size_t>(n) <= chunk.size());
        sent_ += static_cast<std::size_t>(n);
        if (static_cast<std::size_t>(n) < chunk.size()) ++partial_writes_;
        continue;
      }
      REQUIRE_MESSAGE(n == -1, "write() returned " << n);
      want |= wanted_events(s_, "bulk write");
      break;
    }
    std::array<std::byte, 16384> buf;
    while (got_ < in_size_) {
      const std::ptrdiff_t n = s_.read(std::span(buf).first(std::min(buf.size(), in_size_ - got_)));
      if (n > 0) {
        in_.add(std::span(buf).first(static_cast<std::size_t>(n)));
        got_ += static_cast<std::size_t>(n);
        continue;
      }
      REQUIRE_MESSAGE(n == -1, "read() returned " << n << ", " << describe(s_.last_error()));
      want |= wanted_events(s_, "bulk read");
      break;
    }
    return sent_ == out_.size() && got_ == in_size_ ? 0 : want;
  }

  std::size_t received_bytes() const { return got_; }
  std::uint64_t received_checksum() const { return in_.value; }
  int partial_writes() const { return partial_writes_; }

 private:
  SecureSocket& s_;
  std::vector<std::byte> out_;
  std::size_t in_size_;
  std::size_t sent_ = 0;
  std::size_t got_ = 0;
  int partial_writes_ = 0;
  Checksum in_;
};

// Two contexts and two SecureSockets over a SocketLink, and which side
// closes first: where every real-socket case starts.
class SocketConn {
 public:
  SocketConn(Kind kind, Mode mode, const Config& client, const Config& server, Side closer,
             Clock::duration deadline = default_case_deadline)
      : closer_(closer), link_(kind, mode, deadline) {
    std::error_code ec;
    std::string message;
    client_ctx_ = Context::create(client, ec, &message);
    REQUIRE_MESSAGE(client_ctx_ != nullptr, "client context: " << describe(ec) << ": " << message);
    server_ctx_ = Context::create(server, ec, &message);
    REQUIRE_MESSAGE(server_ctx_ != nullptr, "server context: " << describe(ec) << ": " << message);
    // Both ways to wrap a socket, so that every case runs through each: the
    // client's transport in the socket's own allocation (wrap_fd(fd)), the
    // server's made first (make_fd_transport).
    client_ = client_ctx_->wrap_fd(link_.fd(Side::client), false);
    server_ = server_ctx_->wrap(make_fd_transport(link_.fd(Side::server), false));
    REQUIRE(client_ != nullptr);
    REQUIRE(server_ != nullptr);
  }

  ~SocketConn() {
    CHECK_FALSE_MESSAGE(link_.watchdog_fired(), "the watchdog cut the sockets: something hung");
  }

  SocketConn(const SocketConn&) = delete;
  SocketConn& operator=(const SocketConn&) = delete;

  SocketLink& link() { return link_; }
  // The side that closes first, and its peer.
  SecureSocket& closer() { return *socket(closer_); }
  SecureSocket& peer() { return *socket(peer_of(closer_)); }
  int closer_fd() const { return link_.fd(closer_); }
  int peer_fd() const { return link_.fd(peer_of(closer_)); }

  // Side s goes away without a close_notify: its SecureSocket is destroyed
  // (nothing is sent) and its fd closed (an orderly FIN).
  void drop(Side s) {
    socket(s).reset();
    link_.close_end(s);
  }

 private:
  std::unique_ptr<SecureSocket>& socket(Side s) { return s == Side::client ? client_ : server_; }

  Side closer_;
  SocketLink link_;
  std::unique_ptr<Context> client_ctx_, server_ctx_;
  std::unique_ptr<SecureSocket> client_, server_;
};

}  // namespace unitls::test
