// The key log against OpenSSL's own (docs/contract.md, "Key log"): for the
// same connection, the lines Config::keylog receives are the ones `openssl
// s_server -keylogfile` / `s_client -keylogfile` writes, on every backend and
// version, a resumed TLS 1.2 and 1.3 handshake included.
#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"
#include "peer_support.hpp"
#include "process.hpp"
#include "sockets.hpp"

namespace unitls::test::peers {
namespace {

using Lines = std::vector<std::string>;

// The key lines of an openssl -keylogfile file (its "# SSL/TLS secrets log
// file" comment left out), sorted: OpenSSL writes them in the order it
// derives them, which differs from ours by role.
Lines sorted_key_lines(const std::string& text) {
  Lines lines;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    if (!line.empty() && line[0] != '#') lines.emplace_back(line);
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 1);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

Lines sorted(Lines lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::shared_ptr<Context> logging_context(Config c, const Target& t, const std::shared_ptr<Lines>& lines) {
  c.backend = t.backend;
  c.keylog = [lines](std::string_view line) { lines->emplace_back(line); };
  std::error_code ec;
  std::string why;
  std::shared_ptr<Context> ctx = Context::create(c, ec, &why);
  // A backend may declare that it cannot log this version's secrets
  // (Capabilities::keylog_tls1_3): skipped, naming the limit.
  if (!ctx && ec == errc::unsupported) {
    skip(why);
    return nullptr;
  }
  REQUIRE_MESSAGE(ctx, why);
  return ctx;
}

// Handshake, one line each way through -rev, and a proper close (the
// session stays resumable).
void connect_once(Context& ctx, ChildProcess& server, int port, bool expect_resumed) {
  Fd fd = connect_when_listening(server, port);
  REQUIRE_MESSAGE(fd.get() >= 0, server.report());
  Watchdog dog;
  dog.watch(fd.get());
  auto s = ctx.wrap(make_fd_transport(fd.get(), false));
  REQUIRE(s != nullptr);
  blocking_handshake(*s);
  blocking_write(*s, "keylog\n");
  CHECK(blocking_read_exact(*s, 7) == "golyek\n");
  CHECK(s->session_reused() == expect_resumed);
  CHECK(s->close(std::chrono::milliseconds(2000)) == SecureSocket::CloseResult::clean);
  CHECK_FALSE(dog.fired());
}

}  // namespace

TEST_CASE("a unitls client logs the lines openssl s_server logs, for a full and a resumed handshake") {
  const std::string openssl = peer_program("UNITLS_PEER_OPENSSL");
  if (skip_unless_installed(openssl, "openssl")) return;
  for_each_target([&](const Target& t) {
    TempDir dir;
    auto lines = std::make_shared<Lines>();
    auto ctx = logging_context(client_config(t.version), t, lines);
    if (!ctx) return;
    std::unique_ptr<ChildProcess> server;
    int port = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
      port = free_port();
      const std::string certs = certs_dir();
      server = std::make_unique<ChildProcess>(ChildProcess::Options{
          {openssl, "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", certs + "/server.pem",
           "-key", certs + "/server.key", t.version == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-rev",
           "-naccept", "2", "-keylogfile", dir.file("keys")}});
      // A lost port race ends the server before anyone connects.
      if (server->wait(std::chrono::milliseconds(100)) && lost_port_race(*server)) continue;
      break;
    }
    connect_once(*ctx, *server, port, false);
    connect_once(*ctx, *server, port, true);
    expect_exit_0(*server);
    const Lines theirs = sorted_key_lines(read_file(dir.file("keys")));
    CHECK(theirs.size() == (t.version == Version::tls1_3 ? 10u : 2u));
    CHECK_MESSAGE(sorted(*lines) == theirs, server->report());
  });
}

TEST_CASE("a unitls server logs the lines openssl s_client logs") {
  const std::string openssl = peer_program("UNITLS_PEER_OPENSSL");
  if (skip_unless_installed(openssl, "openssl")) return;
  for_each_target([&](const Target& t) {
    TempDir dir;
    auto lines = std::make_shared<Lines>();
    auto ctx = logging_context(server_config(t.version), t, lines);
    if (!ctx) return;
    const Listener listener = listen_loopback();
    ChildProcess client({{openssl, "s_client", "-connect", "127.0.0.1:" + std::to_string(listener.port),
                          "-CAfile", certs_dir() + "/ca.pem", "-servername", "localhost",
                          t.version == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-brief", "-nocommands",
                          "-keylogfile", dir.file("keys")}});
    REQUIRE(client.write_stdin("keylog\n"));
    Fd fd = accept_from(listener, client);
    REQUIRE_MESSAGE(fd.get() >= 0, client.report());
    {
      Watchdog dog;
      dog.watch(fd.get());
      auto s = ctx->wrap(make_fd_transport(fd.get(), false));
      REQUIRE(s != nullptr);
      blocking_handshake(*s);
      CHECK(blocking_read_exact(*s, 7) == "keylog\n");
      blocking_write(*s, "logged\n");
      REQUIRE(client.wait_for_output("logged\n", peer_patience));
      client.close_stdin();  // s_client sends its close_notify
      CHECK(s->close(std::chrono::milliseconds(2000)) == SecureSocket::CloseResult::clean);
      CHECK_FALSE(dog.fired());
    }
    expect_exit_0(client);
    const Lines theirs = sorted_key_lines(read_file(dir.file("keys")));
    CHECK(theirs.size() == (t.version == Version::tls1_3 ? 5u : 1u));
    CHECK_MESSAGE(sorted(*lines) == theirs, client.report());
  });
}

}  // namespace unitls::test::peers
