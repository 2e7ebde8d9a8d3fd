// The shutdown contract (SEMANTICS.md) over real OS sockets, through
// make_fd_transport: an AF_UNIX socketpair and a loopback TCP connection,
// each blocking (the peer runs in its own thread) and non-blocking (one
// thread, poll() between want_read and want_write). Every case runs for TLS
// 1.2 and 1.3, with the client and with the server closing first.
//
// Nothing here may hang CI: each link has a watchdog that shuts both sockets
// down when a case outlives its deadline, so a blocked call returns and the
// case fails; every non-blocking loop is bounded by a deadline too.
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
#include <memory>
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

using namespace std::chrono_literals;
using namespace unitls;
using namespace unitls::test;

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned sent = sent_shutdown;
constexpr unsigned received = received_shutdown;
constexpr unsigned both = sent | received;

// A case (handshake, a few exchanges, the close) takes milliseconds; the
// watchdog cuts its sockets after this long.
constexpr auto case_deadline = 5s;
// How long one non-blocking loop may go without finishing.
constexpr auto loop_deadline = 3s;

enum class Kind { socketpair, tcp };
enum class Mode { blocking, nonblocking };

// Two connected stream sockets: end 0 for the client, end 1 for the server.
// The transports never own the fds (make_fd_transport(fd, false)); the link
// does, so the watchdog can never shut down a descriptor number that was
// closed and handed out again.
class SocketLink {
 public:
  SocketLink(Kind kind, Mode mode) {
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
    if (!wake_.wait_for(lock, case_deadline, [this] { return stop_; })) {
      fired_ = true;
      cut_locked();
    }
  }

  void cut_locked() {
    for (const int fd : fd_) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    }
  }

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
    if (done_.wait_for(case_deadline + 1s) != std::future_status::ready) {
      FAIL_CHECK("the peer thread did not finish in time");
      link_.cut();
      wait_or_abort();
    }
    thread_.join();
    done_.get();
  }

 private:
  void wait_or_abort() {
    if (done_.wait_for(2s) != std::future_status::ready) {
      // Its sockets are shut down and it still runs: nothing left to try,
      // and blocking CI forever is worse than dying loudly.
      std::fputs("real_socket_test: peer thread hung after its sockets were shut down\n", stderr);
      std::abort();
    }
  }

  SocketLink& link_;
  std::future<void> done_;
  std::thread thread_;
};

// Runs body once per TLS version and closing side, each in its own SUBCASE
// ("TLS 1.2, client closes"); a version the backend lacks is reported as
// skipped, never passed.
template <typename Body>
void for_each_closing(Body&& body) {
  for (const Closing& c : versions_and_closers()) {
    SUBCASE(c.name.c_str()) {
      if (!skip_unless_supported(c.version)) body(c);
    }
  }
}

// Contexts, sockets and the link of one case.
class Setup {
 public:
  Setup(Kind kind, Mode mode, const Closing& c) : closing_(c), link_(kind, mode) {
    std::error_code ec;
    std::string message;
    client_ctx_ = Context::create(client_config(c.version), ec, &message);
    REQUIRE_MESSAGE(client_ctx_ != nullptr, "client context: " << describe(ec) << ": " << message);
    server_ctx_ = Context::create(server_config(c.version), ec, &message);
    REQUIRE_MESSAGE(server_ctx_ != nullptr, "server context: " << describe(ec) << ": " << message);
    client_ = client_ctx_->wrap(make_fd_transport(link_.fd(Side::client), false));
    server_ = server_ctx_->wrap(make_fd_transport(link_.fd(Side::server), false));
    REQUIRE(client_ != nullptr);
    REQUIRE(server_ != nullptr);
  }

  ~Setup() {
    CHECK_FALSE_MESSAGE(link_.watchdog_fired(), "the watchdog cut the sockets: something hung");
  }

  Setup(const Setup&) = delete;
  Setup& operator=(const Setup&) = delete;

  SocketLink& link() { return link_; }
  // The side that closes first, and its peer.
  SecureSocket& closer() { return *socket(closing_.closer); }
  SecureSocket& peer() { return *socket(closing_.peer()); }
  int closer_fd() const { return link_.fd(closing_.closer); }
  int peer_fd() const { return link_.fd(closing_.peer()); }

  // Side s vanishes without a close_notify: its socket is destroyed and its
  // fd closed (an orderly FIN).
  void drop(Side s) {
    socket(s).reset();
    link_.close_end(s);
  }

 private:
  std::unique_ptr<SecureSocket>& socket(Side s) { return s == Side::client ? client_ : server_; }

  Closing closing_;
  SocketLink link_;
  std::unique_ptr<Context> client_ctx_, server_ctx_;
  std::unique_ptr<SecureSocket> client_, server_;
};

// ---- blocking helpers (used from both threads) ------------------------------

void blocking_handshake(SecureSocket& s) {
  REQUIRE_MESSAGE(s.handshake() == 1, "handshake failed: " << describe(s.last_error()));
}

void blocking_write(SecureSocket& s, std::string_view text) {
  const std::ptrdiff_t n = s.write(text);
  REQUIRE(outcome(s, n) == success(static_cast<std::ptrdiff_t>(text.size())));
}

std::string blocking_read_exact(SecureSocket& s, std::size_t size) {
  std::string out;
  std::array<std::byte, 4096> buf;
  while (out.size() < size) {
    const std::ptrdiff_t n = s.read(std::span(buf).first(std::min(buf.size(), size - out.size())));
    REQUIRE_MESSAGE(n > 0, "read() returned " << n << ", " << describe(s.last_error()));
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
  }
  return out;
}

void expect_zero_return(SecureSocket& s) {
  std::array<std::byte, 64> buf;
  CHECK(outcome(s, s.read(buf)) == end_of_data(errc::zero_return));
}

// The connection carries data both ways before the close.
void closer_exchange(SecureSocket& s) {
  blocking_write(s, "ping");
  CHECK(blocking_read_exact(s, 4) == "pong");
}

void peer_exchange(SecureSocket& s) {
  CHECK(blocking_read_exact(s, 4) == "ping");
  blocking_write(s, "pong");
}

// The peer's half of an orderly close: our close_notify is its end of data,
// and it answers with its own.
void answer_close(SecureSocket& s) {
  expect_zero_return(s);
  CHECK(s.get_shutdown() == received);
  CHECK(outcome(s, s.shutdown()) == success(1));
  CHECK(s.get_shutdown() == both);
}

// A dead connection repeats its error on every call.
void expect_dead(SecureSocket& s, errc code) {
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
short wanted_events(const SecureSocket& s, const char* what) {
  const std::error_code e = s.last_error();
  if (e == errc::want_read) return POLLIN;
  if (e == errc::want_write) return POLLOUT;
  FAIL(what << " failed: " << describe(e));
  return 0;
}

void poll_fds(std::span<pollfd> fds) {
  int r;
  do {
    r = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), 100);
  } while (r < 0 && errno == EINTR);
  REQUIRE_MESSAGE(r >= 0, "poll: " << std::strerror(errno));
}

// Repeats op (one call on s) while it answers want_read or want_write,
// polling fd for what it wants, and returns the first other result. Only
// for calls whose peer has already done its part.
template <typename Op>
auto retry(SecureSocket& s, int fd, Op op) {
  const auto deadline = Clock::now() + loop_deadline;
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
void drive(int fd_a, const std::function<short()>& step_a, int fd_b,
           const std::function<short()>& step_b) {
  const auto deadline = Clock::now() + loop_deadline;
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

void nonblocking_handshake(Setup& s) {
  SecureSocket& a = s.closer();
  SecureSocket& b = s.peer();
  drive(
      s.closer_fd(),
      [&]() -> short { return a.handshake() == 1 ? 0 : wanted_events(a, "handshake"); },
      s.peer_fd(),
      [&]() -> short { return b.handshake() == 1 ? 0 : wanted_events(b, "handshake"); });
}

void nonblocking_write(SecureSocket& s, int fd, std::string_view text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const std::ptrdiff_t n = retry(s, fd, [&] { return s.write(text.substr(done)); });
    REQUIRE_MESSAGE(n > 0, "write() returned " << n << ", " << describe(s.last_error()));
    done += static_cast<std::size_t>(n);
  }
}

std::string nonblocking_read_exact(SecureSocket& s, int fd, std::size_t size) {
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

void nonblocking_expect_zero_return(SecureSocket& s, int fd) {
  std::array<std::byte, 64> buf;
  const std::ptrdiff_t n = retry(s, fd, [&] { return s.read(buf); });
  CHECK(outcome(s, n) == end_of_data(errc::zero_return));
}

void nonblocking_exchange(Setup& s) {
  nonblocking_write(s.closer(), s.closer_fd(), "ping");
  CHECK(nonblocking_read_exact(s.peer(), s.peer_fd(), 4) == "ping");
  nonblocking_write(s.peer(), s.peer_fd(), "pong");
  CHECK(nonblocking_read_exact(s.closer(), s.closer_fd(), 4) == "pong");
}

void nonblocking_answer_close(Setup& s) {
  SecureSocket& b = s.peer();
  nonblocking_expect_zero_return(b, s.peer_fd());
  CHECK(b.get_shutdown() == received);
  const int r = retry(b, s.peer_fd(), [&] { return b.shutdown(); });
  CHECK(outcome(b, r) == success(1));
  CHECK(b.get_shutdown() == both);
}

int nonblocking_shutdown(Setup& s) {
  return retry(s.closer(), s.closer_fd(), [&] { return s.closer().shutdown(); });
}

// ---- bulk data --------------------------------------------------------------

constexpr std::size_t bulk_size = std::size_t{1} << 20;

std::vector<std::byte> bulk_data(std::uint64_t seed) {
  std::vector<std::byte> out(bulk_size);
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

std::uint64_t checksum_of(std::span<const std::byte> data) {
  Checksum c;
  c.add(data);
  return c.value;
}

// Reads exactly bulk_size bytes from a blocking socket; their checksum.
std::uint64_t blocking_read_bulk(SecureSocket& s) {
  Checksum in;
  std::size_t got = 0;
  std::vector<std::byte> buf(65536);
  while (got < bulk_size) {
    const std::ptrdiff_t n = s.read(std::span(buf).first(std::min(buf.size(), bulk_size - got)));
    REQUIRE_MESSAGE(n > 0, "read() returned " << n << " after " << got << " bytes, "
                                              << describe(s.last_error()));
    in.add(std::span(buf).first(static_cast<std::size_t>(n)));
    got += static_cast<std::size_t>(n);
  }
  return in.value;
}

// One side of a non-blocking bulk exchange: writes its data and reads the
// other side's, in whatever pieces the sockets allow.
class BulkSide {
 public:
  BulkSide(SecureSocket& s, std::vector<std::byte> out) : s_(s), out_(std::move(out)) {}

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
    while (got_ < bulk_size) {
      const std::ptrdiff_t n =
          s_.read(std::span(buf).first(std::min(buf.size(), bulk_size - got_)));
      if (n > 0) {
        in_.add(std::span(buf).first(static_cast<std::size_t>(n)));
        got_ += static_cast<std::size_t>(n);
        continue;
      }
      REQUIRE_MESSAGE(n == -1, "read() returned " << n << ", " << describe(s_.last_error()));
      want |= wanted_events(s_, "bulk read");
      break;
    }
    return sent_ == out_.size() && got_ == bulk_size ? 0 : want;
  }

  std::size_t received_bytes() const { return got_; }
  std::uint64_t received_checksum() const { return in_.value; }
  int partial_writes() const { return partial_writes_; }

 private:
  SecureSocket& s_;
  std::vector<std::byte> out_;
  std::size_t sent_ = 0;
  std::size_t got_ = 0;
  int partial_writes_ = 0;
  Checksum in_;
};

// ---- the rules, blocking --------------------------------------------------
// The main thread is the side that closes first; the peer runs in a thread.

void blocking_two_step_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  expect_zero_return(a);
  peer.join();
}

void blocking_send_close_notify(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(a.send_close_notify() == std::error_code());
  CHECK(a.get_shutdown() == sent);
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(a.get_shutdown() == sent);
  expect_zero_return(a);
  CHECK(a.get_shutdown() == both);
  expect_zero_return(a);
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
  peer.join();
}

void blocking_half_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    expect_zero_return(b);
    CHECK(b.get_shutdown() == received);
    blocking_write(b, "still talking");  // RECEIVED without SENT: writing still works
    CHECK(outcome(b, b.shutdown()) == success(1));
    CHECK(b.get_shutdown() == both);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(blocking_read_exact(a, 13) == "still talking");
  CHECK(a.get_shutdown() == sent);
  expect_zero_return(a);
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  peer.join();
}

void blocking_write_after_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.write("too late")) == failure(errc::connection_closed));
  CHECK(outcome(a, a.write("still too late")) == failure(errc::connection_closed));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(outcome(a, a.write("after both")) == failure(errc::connection_closed));
  peer.join();
}

// Here the "closer" is the side that vanishes; the peer observes it.
void blocking_peer_vanishes(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& b = s.peer();
  PeerThread closer(s.link(), [&s, &c] {
    SecureSocket& a = s.closer();
    blocking_handshake(a);
    closer_exchange(a);  // reads all the peer sent: the close is a FIN, not a reset
    s.drop(c.closer);
  });
  blocking_handshake(b);
  peer_exchange(b);
  std::array<std::byte, 64> buf;
  CHECK(outcome(b, b.read(buf)) == failure(errc::unexpected_eof));
  CHECK(b.get_shutdown() == 0);
  expect_dead(b, errc::unexpected_eof);
  CHECK(b.get_shutdown() == 0);
  closer.join();
}

void blocking_shutdown_meets_eof(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s, &c] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    expect_zero_return(b);  // our close_notify is read: nothing is left unread
    s.drop(c.peer());
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.shutdown()) == failure(errc::unexpected_eof));
  CHECK(a.get_shutdown() == sent);
  expect_dead(a, errc::unexpected_eof);
  CHECK(a.get_shutdown() == sent);
  peer.join();
}

void blocking_data_pending(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  PeerThread peer(s.link(), [&s] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    peer_exchange(b);
    blocking_write(b, "late data");
    answer_close(b);
  });
  blocking_handshake(a);
  closer_exchange(a);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.shutdown()) == failure(errc::data_pending));
  CHECK(a.get_shutdown() == sent);
  CHECK(blocking_read_exact(a, 9) == "late data");
  CHECK(outcome(a, a.shutdown()) == success(1));
  CHECK(a.get_shutdown() == both);
  peer.join();
}

void blocking_bulk(Kind kind, const Closing& c) {
  Setup s(kind, Mode::blocking, c);
  SecureSocket& a = s.closer();
  const std::vector<std::byte> ours = bulk_data(1);
  const std::vector<std::byte> theirs = bulk_data(2);
  PeerThread peer(s.link(), [&s, &ours, &theirs] {
    SecureSocket& b = s.peer();
    blocking_handshake(b);
    CHECK(blocking_read_bulk(b) == checksum_of(ours));
    CHECK(outcome(b, b.write(theirs)) == success(static_cast<std::ptrdiff_t>(theirs.size())));
    answer_close(b);
  });
  blocking_handshake(a);
  CHECK(outcome(a, a.write(ours)) == success(static_cast<std::ptrdiff_t>(ours.size())));
  CHECK(blocking_read_bulk(a) == checksum_of(theirs));
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.shutdown()) == success(1));
  peer.join();
}

// ---- the rules, non-blocking ----------------------------------------------
// One thread drives both sides.

void nonblocking_two_step_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(a.get_shutdown() == sent);
  CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));  // the peer has not answered
  CHECK(outcome(a, a.shutdown()) == failure(errc::want_read));
  CHECK(a.get_shutdown() == sent);
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
  nonblocking_expect_zero_return(a, s.closer_fd());
}

void nonblocking_send_close_notify(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(a.send_close_notify() == std::error_code());
  CHECK(a.get_shutdown() == sent);
  CHECK(a.send_close_notify() == errc::already_sent);
  std::array<std::byte, 64> buf;
  CHECK(outcome(a, a.read(buf)) == failure(errc::want_read));  // the peer has not answered
  nonblocking_answer_close(s);
  nonblocking_expect_zero_return(a, s.closer_fd());
  CHECK(a.get_shutdown() == both);
  nonblocking_expect_zero_return(a, s.closer_fd());
  CHECK(a.send_close_notify() == errc::already_sent);
  CHECK(outcome(a, a.shutdown()) == success(1));
}

void nonblocking_half_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  SecureSocket& b = s.peer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_expect_zero_return(b, s.peer_fd());
  nonblocking_write(b, s.peer_fd(), "still talking");  // RECEIVED without SENT: writing still works
  const int r = retry(b, s.peer_fd(), [&] { return b.shutdown(); });
  CHECK(outcome(b, r) == success(1));
  CHECK(nonblocking_read_exact(a, s.closer_fd(), 13) == "still talking");
  CHECK(a.get_shutdown() == sent);
  nonblocking_expect_zero_return(a, s.closer_fd());
  CHECK(a.get_shutdown() == both);
  CHECK(outcome(a, a.shutdown()) == success(1));
}

void nonblocking_write_after_close(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  CHECK(outcome(a, a.write("too late")) == failure(errc::connection_closed));
  CHECK(outcome(a, a.write("still too late")) == failure(errc::connection_closed));
  CHECK(a.get_shutdown() == sent);
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
  CHECK(outcome(a, a.write("after both")) == failure(errc::connection_closed));
}

// Here the "closer" is the side that vanishes; the peer observes it.
void nonblocking_peer_vanishes(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& b = s.peer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);  // the closer read all the peer sent: its close is a FIN
  const int fd = s.peer_fd();
  s.drop(c.closer);
  std::array<std::byte, 64> buf;
  const std::ptrdiff_t n = retry(b, fd, [&] { return b.read(buf); });
  CHECK(outcome(b, n) == failure(errc::unexpected_eof));
  CHECK(b.get_shutdown() == 0);
  expect_dead(b, errc::unexpected_eof);
  CHECK(b.get_shutdown() == 0);
}

void nonblocking_shutdown_meets_eof(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_expect_zero_return(s.peer(), s.peer_fd());  // nothing left unread: a FIN
  s.drop(c.peer());
  CHECK(outcome(a, nonblocking_shutdown(s)) == failure(errc::unexpected_eof));
  CHECK(a.get_shutdown() == sent);
  expect_dead(a, errc::unexpected_eof);
  CHECK(a.get_shutdown() == sent);
}

void nonblocking_data_pending(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  nonblocking_exchange(s);
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_write(s.peer(), s.peer_fd(), "late data");
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == failure(errc::data_pending));
  CHECK(a.get_shutdown() == sent);
  CHECK(nonblocking_read_exact(a, s.closer_fd(), 9) == "late data");
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
  CHECK(a.get_shutdown() == both);
}

void nonblocking_bulk(Kind kind, const Closing& c) {
  Setup s(kind, Mode::nonblocking, c);
  SecureSocket& a = s.closer();
  nonblocking_handshake(s);
  const std::vector<std::byte> ours = bulk_data(1);
  const std::vector<std::byte> theirs = bulk_data(2);
  BulkSide side_a(a, ours);
  BulkSide side_b(s.peer(), theirs);
  drive(
      s.closer_fd(), [&] { return side_a.step(); }, s.peer_fd(), [&] { return side_b.step(); });
  CHECK(side_a.received_bytes() == bulk_size);
  CHECK(side_a.received_checksum() == checksum_of(theirs));
  CHECK(side_b.received_bytes() == bulk_size);
  CHECK(side_b.received_checksum() == checksum_of(ours));
  INFO("partial writes: " << side_a.partial_writes() << " and " << side_b.partial_writes());
  CHECK(outcome(a, a.shutdown()) == success(0));
  nonblocking_answer_close(s);
  CHECK(outcome(a, nonblocking_shutdown(s)) == success(1));
}

}  // namespace

// Each rule over both socket kinds, both TLS versions and both closing sides.
#define REAL_SOCKET_CASES(mode, rule, fn)                                \
  TEST_CASE(mode " socketpair: " rule) {                                 \
    for_each_closing([](const Closing& c) { fn(Kind::socketpair, c); }); \
  }                                                                      \
  TEST_CASE(mode " TCP: " rule) {                                        \
    for_each_closing([](const Closing& c) { fn(Kind::tcp, c); });        \
  }

REAL_SOCKET_CASES("blocking",
                  "the first shutdown() returns 0 with SENT, the second waits for the peer's "
                  "close_notify and returns 1",
                  blocking_two_step_close)
REAL_SOCKET_CASES("blocking",
                  "send_close_notify() goes out once, a second call is already_sent, and read() "
                  "ends with zero_return",
                  blocking_send_close_notify)
REAL_SOCKET_CASES("blocking",
                  "after our close_notify the peer still writes, and read() returns its data "
                  "before zero_return",
                  blocking_half_close)
REAL_SOCKET_CASES("blocking", "write() after our close_notify fails with connection_closed",
                  blocking_write_after_close)
REAL_SOCKET_CASES("blocking",
                  "a peer that closes the socket without close_notify makes read() fail with "
                  "unexpected_eof, and the connection stays dead",
                  blocking_peer_vanishes)
REAL_SOCKET_CASES("blocking",
                  "a shutdown() waiting for a peer that closes without close_notify fails with "
                  "unexpected_eof",
                  blocking_shutdown_meets_eof)
REAL_SOCKET_CASES("blocking",
                  "a shutdown() that meets application data returns data_pending, read() gets "
                  "the data, and shutdown() then returns 1",
                  blocking_data_pending)
REAL_SOCKET_CASES("blocking", "1 MiB each way arrives intact", blocking_bulk)

REAL_SOCKET_CASES("non-blocking",
                  "the second shutdown() wants read until the peer's close_notify arrives, then "
                  "returns 1",
                  nonblocking_two_step_close)
REAL_SOCKET_CASES("non-blocking",
                  "send_close_notify() goes out once, a second call is already_sent, and read() "
                  "ends with zero_return",
                  nonblocking_send_close_notify)
REAL_SOCKET_CASES("non-blocking",
                  "after our close_notify the peer still writes, and read() returns its data "
                  "before zero_return",
                  nonblocking_half_close)
REAL_SOCKET_CASES("non-blocking", "write() after our close_notify fails with connection_closed",
                  nonblocking_write_after_close)
REAL_SOCKET_CASES("non-blocking",
                  "a peer that closes the socket without close_notify makes read() fail with "
                  "unexpected_eof, and the connection stays dead",
                  nonblocking_peer_vanishes)
REAL_SOCKET_CASES("non-blocking",
                  "a shutdown() waiting for a peer that closes without close_notify fails with "
                  "unexpected_eof",
                  nonblocking_shutdown_meets_eof)
REAL_SOCKET_CASES("non-blocking",
                  "a shutdown() that meets application data returns data_pending, read() gets "
                  "the data, and shutdown() then returns 1",
                  nonblocking_data_pending)
REAL_SOCKET_CASES("non-blocking",
                  "1 MiB each way arrives intact, written in whatever pieces the socket takes",
                  nonblocking_bulk)
