// A TLS 1.2 peer on GnuTLS that asks for renegotiations and, refused,
// carries on: the peer the contract's "the connection carries on if the
// peer accepts that" needs (docs/contract.md, "Hostile peers"). The GnuTLS
// programs cannot be it: gnutls-cli, refused, calls gnutls_handshake again
// and waits for a ServerHello for ever, and gnutls-serv asks only once.
// GnuTLS itself takes the refusal: a client's gnutls_handshake returns
// GNUTLS_E_WARNING_ALERT_RECEIVED with no_renegotiation, a server's
// gnutls_record_recv likewise, and the session goes on.
//
//   gnutls_renegotiator client PORT CAFILE PRIORITY
//   gnutls_renegotiator server PORT CERTFILE KEYFILE PRIORITY [BURST]
//
// The client connects to 127.0.0.1:PORT (server name localhost, verified
// against CAFILE); the server listens there for one connection. Each
// prints one line per step and exits 0 only if every step went as the
// contract says:
//   "handshake: <cipher> <mac> etm=<0|1>"
//   client: sends "ping\n", asks to renegotiate (a second ClientHello);
//   server: reads "ping\n", asks twice (two HelloRequests);
//   "refused: alert <n>", once per request (anything else ends it);
//   server with BURST: sends BURST HelloRequests at once, then reads as
//     many refusals: "refused: <BURST> times alert 100";
//   client: sends "after\n", reads until "pong\n", "received: pong";
//   server: sends "pong\n", reads until "after\n", "received: after".
// Every wait ends after 10 seconds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int fail(const char* step, int ret) {
  std::printf("failed: %s: %s\n", step, ret < 0 ? gnutls_strerror(ret) : std::strerror(errno));
  std::fflush(stdout);
  return 1;
}

void be_patient(int fd) {
  timeval patience{10, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
}

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  be_patient(fd);
  const sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One connection on 127.0.0.1:port, accepted within 10 seconds.
int accept_on(int port) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) return -1;
  const int on = 1;
  (void)::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  be_patient(listener);
  const sockaddr_in addr = loopback(port);
  int fd = -1;
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 && ::listen(listener, 1) == 0)
    fd = ::accept(listener, nullptr, nullptr);
  ::close(listener);
  if (fd >= 0) be_patient(fd);
  return fd;
}

// Reads until `text` has come.
int receive(gnutls_session_t session, const char* text) {
  std::string got;
  char buf[256];
  while (got.find(text) == std::string::npos) {
    const ssize_t n = gnutls_record_recv(session, buf, sizeof buf);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
    if (n <= 0) return n == 0 ? GNUTLS_E_PREMATURE_TERMINATION : static_cast<int>(n);
    got.append(buf, static_cast<std::size_t>(n));
  }
  return 0;
}

int refused(int ret, gnutls_session_t session) {
  if (ret != GNUTLS_E_WARNING_ALERT_RECEIVED) {
    if (ret < 0)
      std::printf("renegotiation: %s\n", gnutls_strerror(ret));
    else
      std::printf("renegotiation: not refused (%d)\n", ret);
    std::fflush(stdout);
    return 1;
  }
  std::printf("refused: alert %d\n", static_cast<int>(gnutls_alert_get(session)));
  std::fflush(stdout);
  return 0;
}

int send_all(gnutls_session_t session, const char* text) {
  const std::size_t n = std::strlen(text);
  std::size_t sent = 0;
  while (sent < n) {
    const ssize_t ret = gnutls_record_send(session, text + sent, n - sent);
    if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) continue;
    if (ret < 0) return static_cast<int>(ret);
    sent += static_cast<std::size_t>(ret);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool server = (argc == 6 || argc == 7) && std::strcmp(argv[1], "server") == 0;
  if (!server && !(argc == 5 && std::strcmp(argv[1], "client") == 0)) {
    std::fprintf(stderr,
                 "usage: gnutls_renegotiator client PORT CAFILE PRIORITY\n"
                 "       gnutls_renegotiator server PORT CERTFILE KEYFILE PRIORITY [BURST]\n");
    return 2;
  }
  const int port = std::atoi(argv[2]);
  const char* priority = argv[server ? 5 : 4];
  const int burst = argc == 7 ? std::atoi(argv[6]) : 0;
  gnutls_certificate_credentials_t creds = nullptr;
  gnutls_session_t session = nullptr;
  if (gnutls_certificate_allocate_credentials(&creds) < 0) return fail("credentials", -1);
  if (server ? gnutls_certificate_set_x509_key_file(creds, argv[3], argv[4], GNUTLS_X509_FMT_PEM) < 0
             : gnutls_certificate_set_x509_trust_file(creds, argv[3], GNUTLS_X509_FMT_PEM) <= 0)
    return fail(server ? "certificate" : "trust file", -1);
  if (gnutls_init(&session, server ? GNUTLS_SERVER : GNUTLS_CLIENT) < 0) return fail("init", -1);
  const char* err_pos = nullptr;
  int ret = gnutls_priority_set_direct(session, priority, &err_pos);
  if (ret < 0) return fail("priority", ret);
  gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds);
  if (!server) {
    gnutls_server_name_set(session, GNUTLS_NAME_DNS, "localhost", 9);
    gnutls_session_set_verify_cert(session, "localhost", 0);
  }
  gnutls_handshake_set_timeout(session, 10000);
  const int fd = server ? accept_on(port) : connect_to(port);
  if (fd < 0) return fail(server ? "accept" : "connect", 0);
  gnutls_transport_set_int(session, fd);

  do ret = gnutls_handshake(session);
  while (ret < 0 && !gnutls_error_is_fatal(ret));
  if (ret < 0) return fail("handshake", ret);
  std::printf("handshake: %s %s etm=%u\n", gnutls_cipher_get_name(gnutls_cipher_get(session)),
              gnutls_mac_get_name(gnutls_mac_get(session)), gnutls_session_etm_status(session));
  std::fflush(stdout);

  if (server) {
    if ((ret = receive(session, "ping\n")) < 0) return fail("receive ping", ret);
    // Two HelloRequests, each refused with a warning, which
    // gnutls_record_recv reports; or a burst of them, then the refusals.
    auto refusal = [&] {
      char buf[256];
      do ret = static_cast<int>(gnutls_record_recv(session, buf, sizeof buf));
      while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
      return ret == GNUTLS_E_WARNING_ALERT_RECEIVED && gnutls_alert_get(session) == GNUTLS_A_NO_RENEGOTIATION;
    };
    if (burst > 0) {
      for (int i = 0; i < burst; ++i)
        if ((ret = gnutls_rehandshake(session)) < 0) return fail("rehandshake", ret);
      for (int i = 0; i < burst; ++i) {
        if (refusal()) continue;
        std::printf("refusal %d of %d: ", i + 1, burst);
        (void)refused(ret, session);
        return 1;
      }
      std::printf("refused: %d times alert 100\n", burst);
    } else {
      for (int i = 0; i < 2; ++i) {
        if ((ret = gnutls_rehandshake(session)) < 0) return fail("rehandshake", ret);
        (void)refusal();
        if (refused(ret, session) != 0) return 1;
      }
    }
    if ((ret = send_all(session, "pong\n")) < 0) return fail("send pong", ret);
    if ((ret = receive(session, "after\n")) < 0) return fail("receive after", ret);
    std::printf("received: after\n");
  } else {
    if ((ret = send_all(session, "ping\n")) < 0) return fail("send ping", ret);
    // The renegotiation: refused with a warning, which GnuTLS reports once.
    do ret = gnutls_handshake(session);
    while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
    if (refused(ret, session) != 0) return 1;
    if ((ret = send_all(session, "after\n")) < 0) return fail("send after", ret);
    if ((ret = receive(session, "pong\n")) < 0) return fail("receive pong", ret);
    std::printf("received: pong\n");
  }
  std::fflush(stdout);
  (void)gnutls_bye(session, GNUTLS_SHUT_WR);
  gnutls_deinit(session);
  gnutls_certificate_free_credentials(creds);
  ::close(fd);
  return 0;
}
