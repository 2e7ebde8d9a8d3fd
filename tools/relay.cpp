// `unitls client HOST:PORT` and `unitls server PORT`: stdin to TLS, TLS to
// stdout, over a non-blocking socket driven by poll(), closed in the style
// --close names. Modelled on `openssl s_client` / `s_server`.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "endpoint.hpp"
#include "options.hpp"

namespace tool {

namespace {

using RelayOptions = CommandLine;

// After the handshake, as `openssl s_client` says it: whether the peer's
// certificate was verified, and with --showcerts the chain it sent.
void print_peer(const unitls::SecureSocket& tls, bool verified, bool show_certs) {
  if (verified) std::fprintf(stderr, "Verification: OK\n");
  if (!show_certs) return;
  const std::vector<unitls::Certificate> chain = tls.peer_chain();
  std::fprintf(stderr, "Certificate chain (%zu)%s\n", chain.size(),
               tls.session_reused() ? ", from the resumed session: the leaf alone" : "");
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const unitls::Certificate& c = chain[i];
    std::fprintf(stderr, " %zu s:%s\n   i:%s\n", i, c.subject.c_str(), c.issuer.c_str());
    std::string names;
    for (const auto& n : c.dns_names) names += (names.empty() ? "DNS:" : ", DNS:") + n;
    for (const auto& n : c.ip_addresses) names += (names.empty() ? "IP:" : ", IP:") + n;
    if (!names.empty()) std::fprintf(stderr, "   names: %s\n", names.c_str());
    std::fprintf(stderr, "   serial: %s\n   sha256: %s\n", c.serial.c_str(), c.sha256_fingerprint.c_str());
  }
}

// Parses the command line of `command`; returns -1 to go on, else the exit
// status (0 after --help, 2 after a usage error).
int parse_relay(std::string_view command, std::span<char* const> args, CommandLine& options) {
  const bool server = command == "server";
  if (std::string problem = parse_command_line(server ? in_server : in_client, args, options);
      !problem.empty()) {
    return usage_error(command, problem);
  }
  if (options.help) {
    const std::string help = help_text(command);
    std::fwrite(help.data(), 1, help.size(), stdout);
    return 0;
  }
  const char* what = server ? "PORT" : "HOST:PORT";
  auto& rest = options.positional;
  if (!options.target.empty()) rest.insert(rest.begin(), options.target);
  if (rest.empty()) return usage_error(command, std::string(what) + " is missing");
  if (rest.size() > 1) return usage_error(command, "unexpected argument " + rest[1]);
  if (server) {
    const auto port = parse_port(rest[0]);
    if (!port) return usage_error(command, rest[0] + " is not a port (0 to 65535)");
    options.listen_port = *port;
  } else if (std::string problem = split_host_port(rest[0], options.host, options.port);
             !problem.empty()) {
    return usage_error(command, problem);
  }

  const auto& tls = options.tls;
  if (server && (tls.cert_file.empty() || tls.key_file.empty())) {
    return usage_error(command, "a server needs --cert FILE and --key FILE");
  }
  if (server && tls.client_auth != unitls::ClientAuth::none && tls.ca_file.empty() && tls.ca_path.empty()) {
    return usage_error(command, "--client-auth needs --cafile FILE or --capath DIR (the CA of client certificates)");
  }
  if (!server && tls.cert_file.empty() != tls.key_file.empty()) {
    return usage_error(command, "a client certificate needs both --cert and --key");
  }
  if (server && options.mode == ServeMode::relay && options.naccept > 1) {
    return usage_error(command, "the stdin relay serves one connection; --naccept N needs --www or --echo");
  }
  if (server && options.mode != ServeMode::relay && (options.ign_eof || options.show_certs)) {
    return usage_error(command, str(options.ign_eof ? "--ign-eof" : "--showcerts") +
                                    " is for the stdin relay, not --www or --echo");
  }
  return -1;
}

// Writes all of bytes to stdout. A reader that went away (EPIPE: SIGPIPE is
// ignored) is not an error of the TLS connection: the rest is discarded.
void write_stdout(std::span<const std::byte> bytes, bool& open) {
  while (open && !bytes.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
    if (n > 0) {
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EAGAIN) {  // an inherited non-blocking stdout
      pollfd p{STDOUT_FILENO, POLLOUT, 0};
      ::poll(&p, 1, -1);
    } else if (n < 0 && errno != EINTR) {
      open = false;
    }
  }
}

// Relays until the connection is over; returns the exit status.
int relay(std::string_view command, std::unique_ptr<unitls::SecureSocket> tls, int fd,
          const RelayOptions& options) {
  const std::string prefix = "unitls " + str(command);
  if (!tls) {  // wrap() returns nullptr only for a null transport
    std::fprintf(stderr, "%s: cannot wrap the connection\n", prefix.c_str());
    return 1;
  }
  bool stdout_open = true;
  bool connected = false;
  // The socket, for the connected event (the Endpoint owns it from here).
  const unitls::SecureSocket* peer = tls.get();
  // A server verifies the certificate a client sent (none: nothing to say).
  const bool verifies = command == "client" ? !options.tls.no_verify
                                            : options.tls.client_auth != unitls::ClientAuth::none;
  Endpoint::Events events;
  events.connected = [&](const Facts& facts) {
    connected = true;
    std::fprintf(stderr, "connected: %s %s group=%s alpn=%s backend=%s\n", facts.version.c_str(),
                 facts.cipher.c_str(), facts.group.empty() ? "-" : facts.group.c_str(),
                 facts.alpn.empty() ? "-" : facts.alpn.c_str(), facts.backend.c_str());
    if (peer) print_peer(*peer, verifies && peer->peer_certificate().has_value(), options.show_certs);
  };
  events.data = [&](std::span<const std::byte> bytes) { write_stdout(bytes, stdout_open); };
  if (options.trace) {
    events.step = [](const Step& step) {
      std::fprintf(stderr, "trace: %s\n", trace_line(step).c_str());
    };
  }
  Endpoint endpoint(std::move(tls), fd, options.close, std::move(events));
  endpoint.accept_eof(options.tls.no_require_close_notify);

  bool stdin_open = true;
  std::array<std::byte, 16384> buf;
  for (;;) {
    const short wanted = endpoint.advance();
    if (wanted == 0) break;
    std::array<pollfd, 2> fds{{{fd, wanted, 0}, {STDIN_FILENO, POLLIN, 0}}};
    const bool read_stdin = stdin_open && endpoint.wants_input();
    // --timeout: only while waiting for the peer alone (connecting, the
    // handshake, the close, or stdin is done); a person typing takes their
    // time.
    const int wait_ms = read_stdin && connected ? -1 : options.timeout_ms;
    const int ready = ::poll(fds.data(), read_stdin ? 2 : 1, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "%s: poll: %s\n", prefix.c_str(), std::strerror(errno));
      return 1;
    }
    if (ready == 0) {
      std::fprintf(stderr, "%s: timed out: nothing from the peer for %d ms (%s)\n", prefix.c_str(),
                   options.timeout_ms, connected ? "connected" : "in the handshake");
      return 1;
    }
    if (read_stdin && fds[1].revents != 0) {
      const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n > 0) {
        endpoint.send(std::span(buf).first(static_cast<std::size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;  // EOF (or an unreadable stdin): close in our style
        if (!options.ign_eof) endpoint.end_input();
      }
    }
  }

  switch (endpoint.outcome()) {
    case Endpoint::Outcome::clean:
    case Endpoint::Outcome::running:
      return 0;
    case Endpoint::Outcome::ended:
      std::fprintf(stderr, "%s: peer ended without close_notify (accepted: --no-require-close-notify)\n",
                   prefix.c_str());
      return 0;
    case Endpoint::Outcome::truncated:
      if (connected) {
        std::fprintf(stderr, "%s: peer closed without close_notify (truncation)\n", prefix.c_str());
        return 1;
      }
      break;
    case Endpoint::Outcome::failed:
      break;
  }
  // As `openssl s_client` says it: why our side rejected the peer's
  // certificate, the same words on every backend.
  if (!endpoint.verification_error().empty())
    std::fprintf(stderr, "Verification error: %s\n", endpoint.verification_error().c_str());
  std::fprintf(stderr, "%s: %s\n", prefix.c_str(), endpoint.failure().c_str());
  return 1;
}

// The context, or 1 after printing why it could not be made.
std::unique_ptr<unitls::Context> context_for(std::string_view command, unitls::Role role,
                                             const TlsOptions& options) {
  unitls::Config config = make_config(role, options);
  std::string error = add_keylog(config, options);
  if (!error.empty()) {
    std::fprintf(stderr, "unitls %s: %s\n", str(command).c_str(), error.c_str());
    return nullptr;
  }
  auto context = make_context(config, command, error);
  if (!context) std::fprintf(stderr, "unitls %s: %s\n", str(command).c_str(), error.c_str());
  return context;
}

}  // namespace

int client_command(std::span<char* const> args) {
  CommandLine options;
  if (const int rc = parse_relay("client", args, options); rc >= 0) return rc;
  if (options.tls.server_name.empty()) options.tls.server_name = options.host;

  auto context = context_for("client", unitls::Role::client, options.tls);
  if (!context) return 1;
  std::string error;
  const int fd = connect_tcp(options.host, options.port, error);
  if (fd < 0) {
    std::fprintf(stderr, "unitls client: %s\n", error.c_str());
    return 1;
  }
  set_nonblocking(fd);
  return relay("client", context->wrap_fd(fd), fd, options);
}

int server_command(std::span<char* const> args) {
  CommandLine options;
  if (const int rc = parse_relay("server", args, options); rc >= 0) return rc;

  auto context = context_for("server", unitls::Role::server, options.tls);
  if (!context) return 1;
  std::string error, shown;
  unsigned short port = 0;
  const std::string bind = options.bind.empty() ? "127.0.0.1" : options.bind;
  const int listener = listen_tcp(bind, options.listen_port, &port, error, &shown);
  if (listener < 0) {
    std::fprintf(stderr, "unitls server: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "listening on %s\n", shown.c_str());
  if (options.mode != ServeMode::relay) return serve(options, *context, listener);

  int fd;
  do {
    fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  ::close(listener);  // one connection, as s_server -naccept 1
  if (fd < 0) {
    std::fprintf(stderr, "unitls server: accept: %s\n", std::strerror(errno));
    return 1;
  }
  set_nonblocking(fd);
  return relay("server", context->wrap_fd(fd), fd, options);
}

}  // namespace tool
