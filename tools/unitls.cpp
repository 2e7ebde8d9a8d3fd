// unitls — the command-line face of the library.
//
//   unitls --version            the library version and the backends compiled in
//   unitls --help               usage
//   unitls client HOST:PORT     a TLS client relaying stdin/stdout (like openssl s_client)
//   unitls server PORT          a TLS server for one connection (like openssl s_server)
//   unitls demo                 every backend pair over loopback, checked against the contract
//
// The demo is also a smoke test: it exits 0 only if every pair closed as the
// contract (docs/contract.md) says, so script/demo and a packager can trust a
// green run.
#include <csignal>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"

namespace tool {

namespace {

constexpr std::string_view synopsis =
    "usage: unitls --version\n"
    "       unitls --help\n"
    "       unitls client HOST:PORT [options]\n"
    "       unitls server PORT [options]\n"
    "       unitls demo [--backend NAME] [--close STYLE] [--certs DIR] [--steps] [--trace]\n";

constexpr std::string_view general_help =
    "\n"
    "  -V, --version     print the unitls version and the TLS backends compiled in,\n"
    "                    the default one marked, each with its library's version\n"
    "  -h, --help        print this help (also: unitls COMMAND --help)\n";

constexpr std::string_view relay_help =
    "\n"
    "client, server: one TLS connection relaying stdin to the peer and the peer's\n"
    "data to stdout (modelled on openssl s_client / s_server). The client connects\n"
    "to HOST:PORT (a name, 127.0.0.1:4433, [::1]:4433); the server listens on PORT\n"
    "(0 = any free one, printed) on 127.0.0.1, accepts one connection and exits when\n"
    "it is over. \"connected: VERSION CIPHER group=GROUP alpn=PROTOCOL backend=NAME\"\n"
    "goes to stderr after the handshake. When stdin ends, the program closes in --close\n"
    "style and, for bidi and once, prints what the peer still sends until its\n"
    "close_notify. When the peer's close_notify comes first, the program answers\n"
    "in --close style and exits 0.\n"
    "    --backend NAME     TLS backend (see --version); default: the default one\n"
    "    --cafile FILE      PEM trust anchors: the client verifies the server with\n"
    "                       them (default: the system store); the server verifies\n"
    "                       client certificates with them (--client-auth)\n"
    "    --cert FILE        PEM certificate chain (server: required; client: for\n"
    "                       mutual TLS, with --key)\n"
    "    --key FILE         PEM private key of --cert\n"
    "    --servername NAME  client: SNI and the name the certificate must match\n"
    "                       (default: HOST; an IP address is matched, not sent)\n"
    "    --alpn A,B         ALPN protocols, in preference order (client: offered;\n"
    "                       server: accepted)\n"
    "    --ciphersuites L   cipher suites by IANA name, TLS 1.3 and 1.2 together, in\n"
    "                       preference order, ':' or ',' between them (e.g.\n"
    "                       TLS_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);\n"
    "                       default: the uniform default (docs/contract.md)\n"
    "    --groups L         key exchange groups by IANA name, in preference order\n"
    "                       (e.g. x25519:secp256r1); default: x25519, secp256r1,\n"
    "                       secp384r1. A server's order decides, for both lists\n"
    "    --tls1_2, --tls1_3 pin the protocol version\n"
    "    --no-verify        client: do not verify the server's certificate or name\n"
    "    --client-auth MODE server: none (default: ask for no client certificate),\n"
    "                       optional (ask; verify one if sent) or required (ask,\n"
    "                       verify, and fail a client without one); needs --cafile\n"
    "    --close STYLE      how to close (default bidi):\n"
    "                         bidi   shutdown() until it returns 1: our close_notify,\n"
    "                                then wait for the peer's (OpenSSL two-step)\n"
    "                         once   send_close_notify(), then read to zero_return\n"
    "                                (GSKit one-step)\n"
    "                         quiet  set_quiet_shutdown(true) + shutdown(): sends\n"
    "                                nothing; the peer sees a truncation\n"
    "                         drop   close the socket without close_notify\n"
    "    --showcerts        print the chain the peer sent (subject, issuer, names,\n"
    "                       serial, SHA-256) after \"connected:\"; a verified peer\n"
    "                       is announced with \"Verification: OK\" either way\n"
    "    --trace            print every shutdown step to stderr: the call, its\n"
    "                       return value, last_error() (an errc name, or ok) and\n"
    "                       the flags after it (SENT|RECEIVED, SENT, RECEIVED, -)\n"
    "    --keylogfile FILE  append the connection's TLS secrets to FILE (NSS key\n"
    "                       log format, for Wireshark; created 0600); default:\n"
    "                       $SSLKEYLOGFILE when set\n"
    "    --bind ADDR        server: listen on numeric address ADDR (default 127.0.0.1)\n"
    "    --timeout MS       give up after MS milliseconds without a word from the\n"
    "                       peer while connecting, in the handshake or in the close\n"
    "                       (\"timed out ...\", exit 1); default: wait for ever\n"
    "    --ign-eof          when stdin ends, do not close: keep printing what the\n"
    "                       peer sends until it closes (as s_client -ign_eof)\n"
    "    --no-require-close-notify\n"
    "                       the peer may end with a plain TCP close (HTTP/1.0\n"
    "                       servers): that is the end of its data, exit 0\n"
    "  exit status: 0 clean close; 1 failure, a timeout, or the peer closed without\n"
    "  close_notify (\"peer closed without close_notify (truncation)\"); 2 usage error\n";

constexpr std::string_view demo_help =
    "\n"
    "demo: every client backend against every server backend over loopback TCP\n"
    "(both ends in one thread, non-blocking sockets), printed as a table: version,\n"
    "cipher, bytes each way (64 KiB, FNV-1a checked), the shutdown sequence of both\n"
    "sides (C client, S server, [flags after each call]: S, R, SR or -), whether a\n"
    "server that drops the connection without close_notify is detected as a\n"
    "truncation (unexpected_eof), and whether all of it is what the contract says.\n"
    "The client verifies the server (ca.pem, name \"localhost\").\n"
    "    --backend NAME  only the pairs in which NAME is client or server\n"
    "    --close STYLE   the close of the first connection: bidi (default), once,\n"
    "                    quiet or drop (see client/server above)\n"
    "    --certs DIR     take DIR/ca.pem, DIR/server.pem and DIR/server.key\n"
    "                    (e.g. build/tests/certs); without it a throwaway CA and\n"
    "                    server certificate are made in a temporary directory with\n"
    "                    the openssl command-line tool\n"
    "    --steps, --verbose\n"
    "                    instead of the table: one backend (--backend, else the\n"
    "                    default), every call printed as a row (who, call, return\n"
    "                    value, last_error(), flags), blocking sockets. Act 1: one\n"
    "                    message each way and a clean bidirectional close. Act 2: a\n"
    "                    server that closes its socket without close_notify.\n"
    "    --trace         print every shutdown step of every connection to stderr\n"
    "  exit status: 0 every pair matched the contract, 1 otherwise, 2 usage error\n";

const std::string full_help = std::string(synopsis) + std::string(general_help) +
                              std::string(relay_help) + std::string(demo_help);
const std::string relay_only = "usage: unitls client HOST:PORT [options]\n"
                               "       unitls server PORT [options]\n" +
                               std::string(relay_help);
const std::string demo_only =
    "usage: unitls demo [--backend NAME] [--close STYLE] [--certs DIR] [--steps] [--trace]\n" +
    std::string(demo_help);

int print_version() {
  std::printf("unitls %s\n", str(unitls::version).c_str());
  std::printf("backends compiled in:\n");
  for (std::string_view b : unitls::available_backends()) {
    std::printf("  %-8s %-10s %s\n", str(b).c_str(),
                b == unitls::default_backend() ? "(default)" : "",
                str(unitls::backend_library_version(b)).c_str());
  }
  return 0;
}

}  // namespace

std::string_view help_text(std::string_view command) {
  if (command == "client" || command == "server") return relay_only;
  if (command == "demo") return demo_only;
  return full_help;
}

}  // namespace tool

int main(int argc, char** argv) {
  // A peer that hangs up, or a closed stdout pipe, must show as an error
  // (EPIPE), not kill the program. Sockets use MSG_NOSIGNAL already.
  std::signal(SIGPIPE, SIG_IGN);

  using namespace tool;
  if (argc < 2) return usage_error("", "a command is required");
  const std::string_view command = argv[1];
  const std::span<char* const> rest(argv + 2, static_cast<std::size_t>(argc - 2));
  if (command == "--help" || command == "-h" || command == "help") {
    if (!rest.empty()) return usage_error("", str(command) + " takes no arguments");
    std::fwrite(full_help.data(), 1, full_help.size(), stdout);
    return 0;
  }
  if (command == "--version" || command == "-V") {
    if (!rest.empty()) return usage_error("", str(command) + " takes no arguments");
    return print_version();
  }
  if (command == "client") return client_command(rest);
  if (command == "server") return server_command(rest);
  if (command == "demo") return demo_command(rest);
  return usage_error("", "unknown command '" + str(command) + "'");
}
