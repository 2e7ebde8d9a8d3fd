// Cipher suites and groups against peers nobody here wrote
// (docs/contract.md, "Cipher suites and groups"): a unitls client (every
// backend, every TLS version it has) against `openssl s_server` restricted
// with -groups / -ciphersuites / -cipher, and a unitls server against
// `openssl s_client` and `gnutls-cli` with their own preferences. The same
// peer gets the same suite and group from every backend.
//
// Each scenario stops after the handshake: the peer is killed and reaped
// with its process object.
#include <memory>
#include <string>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"
#include "peer_support.hpp"
#include "process.hpp"
#include "sockets.hpp"

namespace unitls::test::peers {
namespace {

std::unique_ptr<Context> context_of(Config c, const Target& t) {
  c.backend = t.backend;
  std::error_code ec;
  std::string message;
  auto ctx = Context::create(c, ec, &message);
  REQUIRE_MESSAGE(ctx, message);
  return ctx;
}

struct Negotiated {
  std::string cipher, group;
};

// Our client (default configuration) against `openssl s_server <args>`.
Negotiated client_against_s_server(const Target& t, const std::vector<std::string>& args) {
  const std::string openssl = peer_program("UNITLS_PEER_OPENSSL");
  const std::string certs = certs_dir();
  std::unique_ptr<ChildProcess> peer;
  Fd fd;
  for (int attempt = 0; attempt < 3 && fd.get() < 0; ++attempt) {
    const int port = free_port();
    ChildProcess::Options options{{openssl, "s_server", "-accept",
                                   "127.0.0.1:" + std::to_string(port), "-cert",
                                   certs + "/server.pem", "-key", certs + "/server.key", "-naccept",
                                   "1", t.version == Version::tls1_2 ? "-tls1_2" : "-tls1_3"}};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    peer = std::make_unique<ChildProcess>(std::move(options));
    fd = connect_when_listening(*peer, port);
    if (fd.get() < 0 && !(peer->exited() && lost_port_race(*peer))) break;
  }
  REQUIRE_MESSAGE(fd.get() >= 0, "openssl s_server did not listen:\n" << peer->report());
  Watchdog dog;
  dog.watch(fd.get());
  auto ctx = context_of(client_config(t.version), t);
  auto s = ctx->wrap(make_fd_transport(fd.get(), false));
  INFO(peer->report());
  blocking_handshake(*s);
  CHECK(s->protocol_version() == protocol_name(t.version));
  Negotiated n{s->cipher(), s->group()};
  s.reset();
  CHECK_FALSE_MESSAGE(dog.fired(), "the watchdog cut the socket: something hung");
  return n;
}

// Our server (default configuration) against a client program; its
// output (stdout and stderr) once the handshake is done.
struct ServerRun {
  Negotiated ours;
  std::string peer_output;
};
ServerRun server_against(const Target& t, std::vector<std::string> argv,
                         const std::string& wait_for) {
  const Listener listener = listen_loopback();
  for (auto& a : argv)
    if (const auto at = a.find("PORT"); at != std::string::npos)
      a.replace(at, 4, std::to_string(listener.port));
  ChildProcess peer(ChildProcess::Options{std::move(argv)});
  Fd fd = accept_from(listener, peer);
  REQUIRE_MESSAGE(fd.get() >= 0, "the client did not connect:\n" << peer.report());
  Watchdog dog;
  dog.watch(fd.get());
  auto ctx = context_of(server_config(t.version), t);
  auto s = ctx->wrap(make_fd_transport(fd.get(), false));
  INFO(peer.report());
  blocking_handshake(*s);
  ServerRun run{{s->cipher(), s->group()}, {}};
  // The client prints what it negotiated once its handshake is done; ours
  // is done, so it is on its way.
  const auto deadline = std::chrono::steady_clock::now() + peer_patience;
  while ((peer.out() + peer.err()).find(wait_for) == std::string::npos && !peer.exited() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  run.peer_output = peer.out() + peer.err();
  s.reset();
  CHECK_FALSE_MESSAGE(dog.fired(), "the watchdog cut the socket: something hung");
  return run;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a unitls client gets the suite and group an openssl s_server is restricted to") {
  const std::string openssl = peer_program("UNITLS_PEER_OPENSSL");
  if (skip_unless_installed(openssl, "openssl")) return;
  for_each_target([&](const Target& t) {
    if (t.version == Version::tls1_3) {
      // Our one key share is for x25519: s_server asks for secp384r1 (HelloRetryRequest).
      const Negotiated n = client_against_s_server(
          t, {"-groups", "P-384", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"});
      CHECK(n.cipher == "TLS_CHACHA20_POLY1305_SHA256");
      CHECK(n.group == "secp384r1");
    } else {
      // secp256r1: an OpenSSL server's TLS 1.2 groups must hold its ECDSA key's curve.
      const Negotiated n = client_against_s_server(
          t, {"-groups", "P-256", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"});
      CHECK(n.cipher == "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
      CHECK(n.group == "secp256r1");
    }
  });
}

TEST_CASE(
    "an openssl s_server that follows the client's order gets the uniform default's first choice") {
  const std::string openssl = peer_program("UNITLS_PEER_OPENSSL");
  if (skip_unless_installed(openssl, "openssl")) return;
  for_each_target([&](const Target& t) {
    const Negotiated n = client_against_s_server(t, {});
    CHECK(n.cipher == (t.version == Version::tls1_3 ? "TLS_AES_128_GCM_SHA256"
                                                    : "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"));
    CHECK(n.group == "x25519");
  });
}

TEST_CASE("a unitls server's preference wins over openssl s_client's") {
  const std::string openssl = peer_program("UNITLS_PEER_OPENSSL");
  if (skip_unless_installed(openssl, "openssl")) return;
  for_each_target([&](const Target& t) {
    // s_client's own order starts with AES-256-GCM; its one key share is
    // for P-256, the first of its -groups.
    std::vector<std::string> argv{openssl,          "s_client",    "-connect",
                                  "127.0.0.1:PORT", "-CAfile",     certs_dir() + "/ca.pem",
                                  "-servername",    "localhost",   "-brief",
                                  "-groups",        "P-256:X25519"};
    argv.push_back(t.version == Version::tls1_2 ? "-tls1_2" : "-tls1_3");
    if (t.version == Version::tls1_2) {
      argv.push_back("-cipher");
      argv.push_back(
          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-"
          "SHA256");
    }
    const ServerRun run = server_against(t, argv, "Server Temp Key");
    const std::string suite = t.version == Version::tls1_3
                                  ? "TLS_AES_128_GCM_SHA256"
                                  : "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    CHECK(run.ours.cipher == suite);
    CHECK(run.ours.group == "x25519");
    CHECK_MESSAGE(contains(run.peer_output,
                           "Ciphersuite: " + std::string(t.version == Version::tls1_3
                                                             ? "TLS_AES_128_GCM_SHA256"
                                                             : "ECDHE-ECDSA-AES128-GCM-SHA256")),
                  run.peer_output);
    CHECK_MESSAGE(contains(run.peer_output, "Server Temp Key: X25519"), run.peer_output);
  });
}

TEST_CASE("TLS 1.3: a unitls server takes its preferred group among gnutls-cli's two key shares") {
  const std::string gnutls_cli = peer_program("UNITLS_PEER_GNUTLS_CLI");
  if (skip_unless_installed(gnutls_cli, "gnutls-cli")) return;
  for_each_target([&](const Target& t) {
    if (t.version != Version::tls1_3) return;
    // gnutls-cli sends key shares for secp256r1 and x25519, in that order.
    const ServerRun run = server_against(
        t,
        {gnutls_cli, "--port", "PORT", "--x509cafile", certs_dir() + "/ca.pem", "--sni-hostname",
         "localhost", "--verify-hostname", "localhost", "--priority",
         "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP256R1:+GROUP-X25519", "127.0.0.1"},
        "- Description:");
    CHECK(run.ours.cipher == "TLS_AES_128_GCM_SHA256");
    CHECK(run.ours.group == "x25519");
    CHECK_MESSAGE(contains(run.peer_output, "(ECDHE-X25519)"), run.peer_output);
  });
}

TEST_CASE(
    "TLS 1.2: a unitls client refuses a gnutls-serv that serves an ECDSA key on a curve the client "
    "did not list") {
  const std::string gnutls_serv = peer_program("UNITLS_PEER_GNUTLS_SERV");
  if (skip_unless_installed(gnutls_serv, "gnutls-serv")) return;
  for_each_target([&](const Target& t) {
    if (t.version != Version::tls1_2) return;
    for (const bool verify : {true, false}) {
      CAPTURE(verify);
      // gnutls-serv serves its P-256 key to a client that lists x25519 alone
      // (RFC 8422 5.1 says it must not); the client refuses it, as
      // protocol_error, whether it verifies or not.
      std::unique_ptr<ChildProcess> peer;
      Fd fd;
      for (int attempt = 0; attempt < 3 && fd.get() < 0; ++attempt) {
        const int port = free_port();
        peer = std::make_unique<ChildProcess>(ChildProcess::Options{
            {gnutls_serv, "--echo", "--port", std::to_string(port), "--x509certfile",
             certs_dir() + "/server.pem", "--x509keyfile", certs_dir() + "/server.key",
             "--disable-client-cert", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2"}});
        fd = connect_when_listening(*peer, port);
        if (fd.get() < 0 && !(peer->exited() && lost_port_race(*peer))) break;
      }
      REQUIRE_MESSAGE(fd.get() >= 0, "gnutls-serv did not listen:\n" << peer->report());
      Watchdog dog;
      dog.watch(fd.get());
      Config c = client_config(t.version);
      c.groups = {"x25519"};
      c.verify_peer = verify;
      auto ctx = context_of(c, t);
      auto s = ctx->wrap(make_fd_transport(fd.get(), false));
      CHECK(outcome(*s, s->handshake()) == failure(errc::protocol_error));
      s.reset();
      CHECK_FALSE_MESSAGE(dog.fired(), "the watchdog cut the socket: something hung");
    }
  });
}

}  // namespace unitls::test::peers
