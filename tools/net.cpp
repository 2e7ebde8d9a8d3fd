// TCP sockets for the commands: getaddrinfo, connect, listen.
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "common.hpp"

namespace tool {

namespace {

std::string errno_text(std::string_view what) {
  return str(what) + ": " + std::system_category().message(errno);
}

struct AddrInfo {
  addrinfo* list = nullptr;
  ~AddrInfo() {
    if (list != nullptr) ::freeaddrinfo(list);
  }
};

}  // namespace

std::optional<unsigned short> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    return std::nullopt;
  }
  return static_cast<unsigned short>(value);
}

std::string split_host_port(std::string_view text, std::string& host, std::string& port) {
  std::string_view h, p;
  if (text.starts_with("[")) {  // [::1]:443
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return "'" + str(text) + "' is not [ADDRESS]:PORT";
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {  // host:443, 127.0.0.1:443, ::1:443 (the port follows the last colon)
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return "'" + str(text) + "' is not HOST:PORT";
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (h.empty()) return "'" + str(text) + "' has no host";
  if (!parse_port(p) || *parse_port(p) == 0) {
    return "'" + str(text) + "': the port must be a number from 1 to 65535";
  }
  host = str(h);
  port = str(p);
  return {};
}

int connect_tcp(const std::string& host, const std::string& port, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  AddrInfo found;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found.list); rc != 0) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return -1;
  }
  std::string last_problem = "no address";
  for (const addrinfo* a = found.list; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) == 0) return fd;
    last_problem = errno_text(fd < 0 ? "socket" : "connect");
    if (fd >= 0) ::close(fd);
  }
  error = "cannot connect to " + host + " port " + port + " (" + last_problem + ")";
  return -1;
}

int listen_tcp(const std::string& address, unsigned short port, unsigned short* bound,
               std::string& error, std::string* shown) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  AddrInfo found;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(address.c_str(), service.c_str(), &hints, &found.list);
      rc != 0) {
    error = "--bind " + address + ": " + ::gai_strerror(rc);
    return -1;
  }
  // A name may give several addresses (localhost: ::1 and 127.0.0.1); one
  // listening socket is enough, on the first that can be bound, as
  // s_server does.
  std::string last_problem = "no address";
  for (const addrinfo* a = found.list; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_problem = errno_text("socket");
      continue;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // restart on a port in TIME_WAIT
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      last_problem = errno_text("cannot listen on " + address + " port " + service);
      ::close(fd);
      continue;
    }
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, serv,
                      sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      *bound = parse_port(serv).value_or(port);
      const bool v6 = addr.ss_family == AF_INET6;
      if (shown) *shown = (v6 ? "[" : "") + std::string(host) + (v6 ? "]:" : ":") + serv;
    }
    return fd;
  }
  error = last_problem;
  return -1;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_io_timeouts(int fd, int seconds) {
  const timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace tool
