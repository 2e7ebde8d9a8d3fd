// The file-descriptor transport over socketpairs, pipes and loopback TCP.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <unitls/error.hpp>
#include <unitls/transport.hpp>

#include "doctest.hpp"

using unitls::errc;

namespace {

std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

void set_nonblocking(int fd) {
  REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

// Two connected AF_UNIX stream sockets, closed on scope exit unless released.
struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0); }
  ~SocketPair() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  int release(int i) {
    const int f = fd[i];
    fd[i] = -1;
    return f;
  }
  void close(int i) {
    ::close(fd[i]);
    fd[i] = -1;
  }
};

std::string read_text(unitls::Transport& t) {
  std::vector<std::byte> buf(4096);
  std::error_code ec;
  const std::ptrdiff_t n = t.read(buf, ec);
  REQUIRE_FALSE(ec);
  REQUIRE(n > 0);
  return std::string(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
}

// With the default disposition a stray SIGPIPE kills the test run, which is
// exactly the failure these tests must catch.
struct DefaultSigpipe {
  void (*previous)(int) = std::signal(SIGPIPE, SIG_DFL);
  ~DefaultSigpipe() { std::signal(SIGPIPE, previous); }
};

bool sigpipe_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

std::atomic<int> sigusr1_count{0};
extern "C" void count_sigusr1(int) { ++sigusr1_count; }

}  // namespace

TEST_CASE("an fd transport for fd -1 is nullptr") {
  CHECK(unitls::make_fd_transport(-1) == nullptr);
  CHECK(unitls::make_fd_transport(-5, false) == nullptr);
}

TEST_CASE("an fd transport over a blocking socketpair moves bytes both ways") {
  SocketPair sp;
  auto a = unitls::make_fd_transport(sp.release(0));
  auto b = unitls::make_fd_transport(sp.release(1));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->native_handle() >= 0);
  std::error_code ec = make_error_code(errc::want_write);
  CHECK(a->write(as_bytes("ping"), ec) == 4);
  CHECK_FALSE(ec);
  CHECK(read_text(*b) == "ping");
  CHECK(b->write(as_bytes("pong!"), ec) == 5);
  CHECK(read_text(*a) == "pong!");
  CHECK_FALSE(a->native_error());
}

TEST_CASE("an fd transport's native_handle is the fd it was given") {
  SocketPair sp;
  auto t = unitls::make_fd_transport(sp.fd[0], false);
  CHECK(t->native_handle() == sp.fd[0]);
}

TEST_CASE("a blocking fd transport read waits for data and survives a signal (EINTR)") {
  SocketPair sp;
  auto reader = unitls::make_fd_transport(sp.fd[0], false);

  struct sigaction action {};
  action.sa_handler = count_sigusr1;
  action.sa_flags = 0;  // no SA_RESTART: the read really sees EINTR
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  REQUIRE(sigaction(SIGUSR1, &action, &previous) == 0);
  sigusr1_count = 0;

  const pthread_t main_thread = pthread_self();
  const int writer_fd = sp.fd[1];
  std::thread helper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pthread_kill(main_thread, SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (void)!::write(writer_fd, "z", 1);
  });
  std::byte buf[8];
  std::error_code ec;
  const std::ptrdiff_t n = reader->read(buf, ec);
  helper.join();
  sigaction(SIGUSR1, &previous, nullptr);

  CHECK(n == 1);
  CHECK_FALSE(ec);
  CHECK(sigusr1_count == 1);
}

TEST_CASE("a non-blocking fd transport reports want_read when nothing is there") {
  SocketPair sp;
  set_nonblocking(sp.fd[0]);
  auto t = unitls::make_fd_transport(sp.fd[0], false);
  std::byte buf[16];
  std::error_code ec;
  CHECK(t->read(buf, ec) == -1);
  CHECK(ec == errc::want_read);
  CHECK_FALSE(t->native_error());
}

TEST_CASE("a non-blocking fd transport reports want_write when the socket buffer is full") {
  SocketPair sp;
  set_nonblocking(sp.fd[0]);
  const int small = 4096;
  ::setsockopt(sp.fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  auto t = unitls::make_fd_transport(sp.fd[0], false);
  const std::vector<std::byte> chunk(16384, std::byte{0x5a});
  std::error_code ec;
  std::size_t total = 0;
  for (int rounds = 0; rounds < 10000; ++rounds) {
    const std::ptrdiff_t n = t->write(chunk, ec);
    if (n < 0) break;
    total += static_cast<std::size_t>(n);
  }
  CHECK(ec == errc::want_write);
  CHECK(total > 0);
  CHECK_FALSE(t->native_error());

  // Once the peer drains, writing works again.
  std::vector<char> sink(1 << 16);
  while (::recv(sp.fd[1], sink.data(), sink.size(), MSG_DONTWAIT) > 0) {
  }
  CHECK(t->write(as_bytes("again"), ec) == 5);
  CHECK_FALSE(ec);
}

TEST_CASE("an fd transport read returns the remaining bytes then 0 after the peer closes") {
  SocketPair sp;
  set_nonblocking(sp.fd[0]);
  auto t = unitls::make_fd_transport(sp.fd[0], false);
  REQUIRE(::write(sp.fd[1], "bye", 3) == 3);
  sp.close(1);
  CHECK(read_text(*t) == "bye");
  std::byte buf[16];
  std::error_code ec = make_error_code(errc::want_read);
  CHECK(t->read(buf, ec) == 0);
  CHECK_FALSE(ec);
}

TEST_CASE("an fd transport write after the peer closed is transport_error EPIPE, not SIGPIPE") {
  DefaultSigpipe sigpipe;
  SocketPair sp;
  auto t = unitls::make_fd_transport(sp.fd[0], false);
  sp.close(1);
  std::error_code ec;
  CHECK(t->write(as_bytes("anyone there?"), ec) == -1);
  CHECK(ec == errc::transport_error);
  CHECK(t->native_error() == std::error_code(EPIPE, std::system_category()));
  CHECK_FALSE(sigpipe_pending());
}

TEST_CASE("an fd transport over a pipe uses read and write") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  auto reader = unitls::make_fd_transport(p[0]);
  auto writer = unitls::make_fd_transport(p[1]);
  std::error_code ec;
  CHECK(writer->write(as_bytes("through a pipe"), ec) == 14);
  CHECK_FALSE(ec);
  CHECK(read_text(*reader) == "through a pipe");
  writer.reset();  // owns the write end: closing it is EOF for the reader
  std::byte buf[4];
  CHECK(reader->read(buf, ec) == 0);
  CHECK_FALSE(ec);
}

TEST_CASE("an fd transport write to a pipe with no reader is transport_error EPIPE, not SIGPIPE") {
  DefaultSigpipe sigpipe;
  int p[2];
  REQUIRE(::pipe(p) == 0);
  ::close(p[0]);
  auto writer = unitls::make_fd_transport(p[1]);
  std::error_code ec;
  CHECK(writer->write(as_bytes("lost"), ec) == -1);
  CHECK(ec == errc::transport_error);
  CHECK(writer->native_error() == std::error_code(EPIPE, std::system_category()));
  CHECK_FALSE(sigpipe_pending());
}

TEST_CASE("a non-blocking fd transport over an empty pipe reports want_read") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  set_nonblocking(p[0]);
  auto reader = unitls::make_fd_transport(p[0]);
  auto writer = unitls::make_fd_transport(p[1]);
  std::byte buf[4];
  std::error_code ec;
  CHECK(reader->read(buf, ec) == -1);
  CHECK(ec == errc::want_read);
}

TEST_CASE("an fd transport on a closed descriptor reports transport_error with EBADF") {
  SocketPair sp;
  const int stale = sp.fd[0];
  sp.close(0);
  auto t = unitls::make_fd_transport(stale, false);
  REQUIRE(t);
  std::byte buf[4];
  std::error_code ec;
  CHECK(t->read(buf, ec) == -1);
  CHECK(ec == errc::transport_error);
  CHECK(t->native_error() == std::error_code(EBADF, std::system_category()));
}

TEST_CASE("an empty fd transport read is refused so that 0 always means EOF") {
  SocketPair sp;
  auto t = unitls::make_fd_transport(sp.fd[0], false);
  std::error_code ec;
  CHECK(t->read(std::span<std::byte>{}, ec) == -1);
  CHECK(ec == errc::invalid_argument);
  CHECK(t->write(std::span<const std::byte>{}, ec) == 0);
  CHECK_FALSE(ec);
}

TEST_CASE("an fd transport sets TCP_NODELAY on a loopback TCP socket") {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);

  const int client_fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(client_fd >= 0);
  REQUIRE(::connect(client_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const int server_fd = ::accept(listener, nullptr, nullptr);
  REQUIRE(server_fd >= 0);
  ::close(listener);

  auto nodelay = [](int fd) {
    int value = 0;
    socklen_t value_len = sizeof value;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &value_len) == 0);
    return value != 0;
  };
  CHECK_FALSE(nodelay(client_fd));
  auto client = unitls::make_fd_transport(client_fd);
  auto server = unitls::make_fd_transport(server_fd);
  CHECK(nodelay(client_fd));
  CHECK(nodelay(server_fd));

  std::error_code ec;
  CHECK(client->write(as_bytes("tcp"), ec) == 3);
  CHECK(read_text(*server) == "tcp");
}

TEST_CASE("an fd transport with owns_fd=false leaves the fd open") {
  SocketPair sp;
  { auto t = unitls::make_fd_transport(sp.fd[0], false); }
  CHECK(fd_is_open(sp.fd[0]));
}

TEST_CASE("an fd transport with owns_fd closes the fd with itself") {
  SocketPair sp;
  const int fd = sp.release(0);
  { auto t = unitls::make_fd_transport(fd, true); }
  CHECK_FALSE(fd_is_open(fd));
}
