// A blocking HTTPS/1.0 client: the README's example, built and run by CI.
//
//   https_get HOST PORT [CA_FILE]     prints the response; exit 0 after a clean close
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <unitls/unitls.hpp>

// A blocking TCP connection to HOST:PORT, or -1.
int connect_to(const char* host, const char* port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (getaddrinfo(host, port, &hints, &list) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = list; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(list);
  return fd;
}

int fail(const char* what, const std::string& why) {
  std::fprintf(stderr, "https_get: %s: %s\n", what, why.c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) return fail("usage", "https_get HOST PORT [CA_FILE]");
  unitls::Config config;                      // role = client, backend = the default one
  config.server_name = argv[1];               // SNI and hostname verification
  if (argc > 3) config.ca_file = argv[3];     // default: the system trust store
  config.timeout = std::chrono::seconds(10);  // no blocking call waits longer (timed_out)
  std::error_code ec;
  std::string why;
  auto context = unitls::Context::create(config, ec, &why);  // nullptr + why on bad input
  if (!context) return fail("configuration", why);

  const int fd = connect_to(argv[1], argv[2]);
  if (fd < 0) return fail("connect", argv[1]);
  auto tls = context->wrap_fd(fd);  // owns fd; blocking fd: never want_*
  if (tls->handshake() != 1) return fail("handshake", tls->last_error().message());

  const std::string request = "GET / HTTP/1.0\r\nHost: " + std::string(argv[1]) + "\r\n\r\n";
  if (tls->write(request) != static_cast<std::ptrdiff_t>(request.size()))
    return fail("write", tls->last_error().message());
  std::string response;
  while (tls->read(response) > 0) {  // to the end: the server's close_notify
  }
  if (tls->last_error() != unitls::errc::zero_return)  // e.g. unexpected_eof: truncated
    return fail("read", tls->last_error().message());
  std::fwrite(response.data(), 1, response.size(), stdout);

  // Answer the server's close_notify: both sent, SENT|RECEIVED.
  if (tls->close() != unitls::SecureSocket::CloseResult::clean)
    return fail("close", tls->last_error().message());
  return 0;
}
