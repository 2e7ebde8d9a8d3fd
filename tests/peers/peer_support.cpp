#include "peer_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace unitls::test::peers {

namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return addr;
}

bool backend_supports(const std::string& backend, Version v) {
  Config config = client_config(v);
  config.backend = backend;
  std::error_code ec;
  std::string message;
  if (Context::create(config, ec, &message)) return true;
  REQUIRE_MESSAGE(ec == errc::unsupported,
                  "Context::create(" << backend << ", " << version_name(v) << ") failed with "
                                     << describe(ec) << ": " << message);
  return false;
}

std::unique_ptr<Context> make_context(const Config& config) {
  std::error_code ec;
  std::string message;
  auto ctx = Context::create(config, ec, &message);
  REQUIRE_MESSAGE(ctx != nullptr, config.backend << " context: " << describe(ec) << ": " << message);
  return ctx;
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = [] {
    std::vector<Target> out;
    for (const std::string_view b : available_backends()) {
      for (const Version v : all_versions) {
        if (backend_supports(std::string(b), v)) {
          out.push_back({std::string(b), v, std::string(b) + ", " + version_name(v)});
        }
      }
    }
    return out;
  }();
  return all;
}

std::unique_ptr<Context> client_context(const Target& t) {
  Config c = client_config(t.version);
  c.backend = t.backend;
  return make_context(c);
}

std::unique_ptr<Context> server_context(const Target& t, ClientAuth client_auth) {
  Config c = server_config(t.version);
  c.backend = t.backend;
  c.client_auth = client_auth;
  return make_context(c);
}

std::string version_number(Version v) { return v == Version::tls1_2 ? "1.2" : "1.3"; }
std::string protocol_name(Version v) { return "TLSv" + version_number(v); }

std::string peer_program(const char* variable) {
  const char* path = std::getenv(variable);
  return path ? path : "";
}

bool skip_unless_installed(const std::string& path, const std::string& name) {
  if (!path.empty()) return false;
  skip(name + " is not installed");
  return true;
}

void expect_exit_0(ChildProcess& p) {
  const auto status = p.wait(peer_patience);
  REQUIRE_MESSAGE(status.has_value(), "the peer did not exit:\n" << p.report());
  CHECK_MESSAGE(*status == 0, p.report());
}

std::string read_to_end(SecureSocket& s, Outcome* end) {
  std::string data;
  std::array<std::byte, 4096> buf;
  for (;;) {
    const std::ptrdiff_t n = s.read(buf);
    if (n <= 0) {
      *end = outcome(s, n);
      return data;
    }
    data.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
  }
}

std::string certs_dir() {
  const char* dir = std::getenv("UNITLS_TEST_CERTS");
  REQUIRE_MESSAGE(dir != nullptr, "UNITLS_TEST_CERTS is not set (run the tests through meson test)");
  return dir;
}

const std::string& payload() {
  static const std::string text = [] {
    static constexpr char digits[] = "0123456789abcdef";
    const std::string noise = pattern(64 * 58);
    std::string out;
    for (std::size_t line = 0; line < 64; ++line) {
      char number[8];
      std::snprintf(number, sizeof number, "%04zu ", line);
      out += number;  // 5 characters
      for (std::size_t i = 0; i < 58; ++i) {
        out += digits[static_cast<unsigned char>(noise[line * 58 + i]) & 0xf];
      }
      out += '\n';
    }
    return out;
  }();
  return text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Listener listen_loopback() {
  Listener l;
  l.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(l.fd.get() >= 0);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  const bool listening = ::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                         ::listen(l.fd.get(), 4) == 0 &&
                         ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  REQUIRE_MESSAGE(listening, "listening on 127.0.0.1: " << std::strerror(errno));
  l.port = ntohs(addr.sin_port);
  return l;
}

int free_port() {
  Listener l = listen_loopback();
  return l.port;  // released when l goes
}

Fd connect_when_listening(ChildProcess& peer, int port) {
  const auto deadline = Clock::now() + peer_patience;
  const sockaddr_in addr = loopback(port);
  while (Clock::now() < deadline) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.get() >= 0);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
    REQUIRE_MESSAGE(errno == ECONNREFUSED, "connect to 127.0.0.1:" << port << ": " << std::strerror(errno));
    if (peer.exited()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Fd();
}

Fd accept_from(const Listener& listener, ChildProcess& peer) {
  const auto deadline = Clock::now() + peer_patience;
  while (Clock::now() < deadline) {
    pollfd p{listener.fd.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, 20);
    if (r < 0 && errno != EINTR) FAIL("poll: " << std::strerror(errno));
    if (r > 0) {
      Fd fd(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
      REQUIRE_MESSAGE(fd.get() >= 0, "accept: " << std::strerror(errno));
      return fd;
    }
    if (peer.exited()) break;
  }
  return Fd();
}

bool lost_port_race(const ChildProcess& peer) {
  const std::string text = peer.out() + peer.err();
  return text.find("in use") != std::string::npos || text.find("IN USE") != std::string::npos;
}

Watchdog::Watchdog() : thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Watchdog::watch(int fd) {
  std::lock_guard lock(mutex_);
  fds_.push_back(fd);
  if (fired_) ::shutdown(fd, SHUT_RDWR);
}

bool Watchdog::fired() const {
  std::lock_guard lock(mutex_);
  return fired_;
}

void Watchdog::run() {
  std::unique_lock lock(mutex_);
  if (wake_.wait_for(lock, scenario_deadline, [this] { return stop_; })) return;
  fired_ = true;
  for (const int fd : fds_) ::shutdown(fd, SHUT_RDWR);
}

}  // namespace unitls::test::peers
