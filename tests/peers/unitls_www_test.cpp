// The `unitls` program's `server --www` (every backend, every TLS version it
// has) as an outside test suite meets it: many clients nobody here wrote
// (`openssl s_client`, curl), one after another and several at once, against
// one server process with no supervisor. Each client gets the page and exits
// 0; the server logs every connection as closed cleanly, and SIGTERM stops it
// with exit 0 and the summary "served N connections: N clean, ...".
#include <signal.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "peer_support.hpp"
#include "process.hpp"

namespace unitls::test::peers {
namespace {

// How many clients of each program, one after another, then this many again
// `at_once` at a time.
constexpr int clients = 10;
constexpr int at_once = 5;

// A `unitls server 0 --www` pinned to the target; port() once it listens.
class WwwServer {
 public:
  explicit WwwServer(const Target& t)
      : process_({{peer_program("UNITLS_PROGRAM"), "server", "0", "--www", "--backend", t.backend,
                   t.version == Version::tls1_2 ? "--tls1_2" : "--tls1_3", "--cert",
                   certs_dir() + "/server.pem", "--key", certs_dir() + "/server.key"}}) {
    const auto deadline = std::chrono::steady_clock::now() + peer_patience;
    const std::regex listening("listening on 127\\.0\\.0\\.1:([0-9]+)");
    while (std::chrono::steady_clock::now() < deadline && !process_.exited()) {
      std::smatch m;
      const std::string err = process_.err();
      if (std::regex_search(err, m, listening)) {
        port_ = std::stoi(m[1]);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  int port() const { return port_; }
  ChildProcess& process() { return process_; }

 private:
  ChildProcess process_;
  int port_ = 0;
};

// One client program's command line for the server's port; it asks for "/"
// and prints the page to stdout.
using Command = ChildProcess::Options (*)(int port, Version v);

ChildProcess::Options s_client(int port, Version v) {
  // -ign_eof: the end of its stdin (after the request) is no close; our
  // close_notify after the page is, and it answers with its own.
  return {{peer_program("UNITLS_PEER_OPENSSL"), "s_client", "-connect",
           "127.0.0.1:" + std::to_string(port), "-CAfile", certs_dir() + "/ca.pem",
           "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost",
           v == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-brief", "-ign_eof"}};
}

ChildProcess::Options curl(int port, Version) {
  return {{peer_program("UNITLS_PEER_CURL"), "--silent", "--show-error", "--max-time", "20",
           "--cacert", certs_dir() + "/ca.pem", "https://localhost:" + std::to_string(port) + "/"}};
}

// Starts `count` clients at once, each sending an HTTP/1.0 request on stdin
// (curl ignores it), and checks that each printed the page for this target
// and exited 0.
void run_clients(Command command, const Target& t, int port, int count) {
  std::vector<std::unique_ptr<ChildProcess>> running;
  for (int i = 0; i < count; ++i) {
    running.push_back(std::make_unique<ChildProcess>(command(port, t.version)));
    running.back()->write_stdin("GET / HTTP/1.0\r\n\r\n");
    running.back()->close_stdin();
  }
  for (auto& p : running) {
    INFO(p->report());
    expect_exit_0(*p);
    CHECK(p->out().find("unitls server --www\n") != std::string::npos);
    CHECK(p->out().find("backend: " + t.backend + "\n") != std::string::npos);
    CHECK(p->out().find("protocol: " + protocol_name(t.version) + "\n") != std::string::npos);
    CHECK(p->out().find("server name: localhost\n") != std::string::npos);
  }
}

void serve_many(Command command, const Target& t) {
  WwwServer server(t);
  INFO(server.process().report());
  REQUIRE_MESSAGE(server.port() != 0, "unitls server --www did not listen");
  for (int i = 0; i < clients; ++i) run_clients(command, t, server.port(), 1);
  for (int i = 0; i < clients; i += at_once) run_clients(command, t, server.port(), at_once);

  ::kill(server.process().pid(), SIGTERM);
  const auto status = server.process().wait(peer_patience);
  REQUIRE_MESSAGE(status.has_value(), "SIGTERM did not stop the server");
  CHECK(*status == 0);
  const std::string n = std::to_string(2 * clients);
  CHECK_MESSAGE(server.process().err().find("served " + n + " connections: " + n +
                                            " clean, 0 truncated, 0 failed") != std::string::npos,
                server.process().report());
}

void run(Command command, const char* variable, const char* name) {
  if (skip_unless_installed(peer_program("UNITLS_PROGRAM"), "the unitls program")) return;
  if (skip_unless_installed(peer_program(variable), name)) return;
  for_each_target([&](const Target& t) { serve_many(command, t); });
}

}  // namespace

TEST_CASE("unitls server --www, openssl s_client: 10 clients in a row and 10 five at once each "
          "get the page and close cleanly; SIGTERM stops the server with exit 0") {
  run(s_client, "UNITLS_PEER_OPENSSL", "openssl s_client");
}

TEST_CASE("unitls server --www, curl: 10 clients in a row and 10 five at once each get the page "
          "and close cleanly; SIGTERM stops the server with exit 0") {
  run(curl, "UNITLS_PEER_CURL", "curl");
}

}  // namespace unitls::test::peers
