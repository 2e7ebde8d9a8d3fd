// A non-blocking TLS echo server on epoll, serving many clients at once: each
// want_read / want_write becomes the fd event the connection waits for, and
// pending() is read out before waiting again (epoll cannot see plaintext the
// TLS stack already holds).
//
//   epoll_echo_server CERT KEY [COUNT [BACKEND]]
//       listens on 127.0.0.1, a free port (printed); exits after COUNT clients
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include <unitls/unitls.hpp>

namespace {

using unitls::errc;

struct Client {
  std::unique_ptr<unitls::SecureSocket> tls;
  std::string out;  // received, not yet echoed
  bool closing = false;
};

// The fd events a call that returned -1 waits for; 0: it failed for good.
unsigned wait_for(const unitls::SecureSocket& tls) {
  if (tls.last_error() == errc::want_read) return EPOLLIN;
  if (tls.last_error() == errc::want_write) return EPOLLOUT;
  return 0;
}

// Moves the connection on as far as it goes without blocking. Returns the
// events to wait for, or 0 when the connection is over.
unsigned advance(Client& c) {
  unitls::SecureSocket& tls = *c.tls;
  if (c.closing) {  // answering the client's close_notify
    if (tls.shutdown() == 1) return 0;
    return wait_for(tls);
  }
  if (tls.handshake() != 1) return wait_for(tls);  // 1 at once when done already
  for (;;) {
    // Echo what is waiting first.
    while (!c.out.empty()) {
      const auto n = tls.write(c.out);
      if (n < 0) return wait_for(tls);  // want_write: the same bytes again later
      c.out.erase(0, static_cast<std::size_t>(n));
    }
    // A small buffer on purpose: a record is often larger, and its rest is
    // pending() — read now, since epoll will not report it.
    std::byte buf[512];
    const auto n = tls.read(buf);
    if (n > 0) {
      c.out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 && tls.last_error() == errc::zero_return) {  // the client closed
      c.closing = true;
      return advance(c);
    }
    return wait_for(tls);  // want_read (nothing pending), or the end
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: epoll_echo_server CERT KEY [COUNT [BACKEND]]\n");
    return 2;
  }
  const long count = argc > 3 ? std::strtol(argv[3], nullptr, 10) : -1;
  unitls::Config config;
  config.role = unitls::Role::server;
  config.certificate_file = argv[1];
  config.private_key_file = argv[2];
  if (argc > 4) config.backend = argv[4];
  std::error_code ec;
  std::string why;
  auto context = unitls::Context::create(config, ec, &why);
  if (!context) {
    std::fprintf(stderr, "epoll_echo_server: %s\n", why.c_str());
    return 1;
  }

  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 128) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("epoll_echo_server: listen");
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);

  std::map<int, Client> clients;
  long served = 0;
  int failures = 0;
  while (count < 0 || served < count) {
    epoll_event events[64];
    const int n = epoll_wait(ep, events, 64, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        int cfd;
        while ((cfd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          Client& c = clients[cfd];
          c.tls = context->wrap_fd(cfd);  // owns cfd from here
          ev.events = EPOLLIN;
          ev.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
        }
        continue;
      }
      Client& c = clients[fd];
      const unsigned wanted = advance(c);
      if (wanted != 0) {
        ev.events = wanted;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        continue;
      }
      if (!c.closing || c.tls->get_shutdown() != (unitls::sent_shutdown | unitls::received_shutdown)) {
        std::fprintf(stderr, "epoll_echo_server: a client ended badly: %s\n",
                     c.tls->last_error().message().c_str());
        ++failures;
      }
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      clients.erase(fd);  // closes the fd with its transport
      ++served;
    }
  }
  std::printf("served %ld clients, %d failed\n", served, failures);
  close(ep);
  close(listener);
  return failures == 0 ? 0 : 1;
}
