// A unitls client (every backend, every TLS version it has) against TLS
// servers nobody here wrote: `openssl s_server -rev`, `gnutls-serv --echo`
// and Python's ssl module (peer.py). For each: the data comes back whole, our
// close_notify is a clean close for the server (and it answers with its own),
// the server's close_notify is read() -> 0 with zero_return, and a server
// killed with SIGKILL is read() -> -1 with unexpected_eof.
//
// Our socket is blocking (make_fd_transport over a loopback TCP socket); a
// watchdog shuts it down if a scenario hangs, and the server process is
// killed and reaped whatever happens.
#include <algorithm>
#include <array>
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

// Inside the suite's namespace: its names win over any a shared header
// may add to unitls::test later.
namespace unitls::test::peers {
namespace {

// A TLS server program, as the scenarios need to know it.
class ServerPeer {
 public:
  virtual ~ServerPeer() = default;
  virtual std::string name() const = 0;
  // Its full path, "" when it is not installed.
  virtual std::string program() const = 0;
  // The command line of a server for one connection of version v, on
  // 127.0.0.1:port or, when takes_listener(), on the listening socket it
  // inherits as fd 3.
  virtual ChildProcess::Options command(int port, Version v, Ending e) const = 0;
  virtual bool takes_listener() const { return false; }
  // What the server is given on its stdin once started (stdin stays open
  // when keep_stdin_open()).
  virtual std::string stdin_text() const { return {}; }
  virtual bool keep_stdin_open() const { return true; }
  // Whether it echoes (its reply to payload() is reply()) when the scenario
  // ends with e.
  virtual bool echoes(Ending) const { return true; }
  virtual std::string reply() const { return payload(); }
  // Makes it send its close_notify (after the echo).
  virtual void ask_to_close(SecureSocket&) const {}
  // What it sent between ask_to_close() and its close_notify.
  virtual void check_last_words(const std::string& data) const { CHECK(data.empty()); }
  // After our close_notify and its answer: the server saw a clean close.
  virtual void check_saw_clean_close(ChildProcess& p, Version v) const = 0;
  // After its close_notify and our answer: the server ended well.
  virtual void check_closed_cleanly(ChildProcess& p, Version v) const = 0;
};

// One scenario: the server process, our socket on it, a watchdog.
class Scene {
 public:
  Scene(const ServerPeer& server, const Target& t, Ending e) {
    if (server.takes_listener()) {
      Listener listener = listen_loopback();
      ChildProcess::Options options = server.command(listener.port, t.version, e);
      options.pass_as_fd3 = listener.fd.get();
      peer_ = std::make_unique<ChildProcess>(std::move(options));
      fd_ = connect_when_listening(*peer_, listener.port);
    } else {
      // A port that was free a moment ago may be taken by the time the server
      // binds it: then it exits, and it is started again on another.
      for (int attempt = 0; attempt < 3 && fd_.get() < 0; ++attempt) {
        const int port = free_port();
        peer_ = std::make_unique<ChildProcess>(server.command(port, t.version, e));
        fd_ = connect_when_listening(*peer_, port);
        if (fd_.get() < 0 && !(peer_->exited() && lost_port_race(*peer_))) break;
      }
    }
    REQUIRE_MESSAGE(fd_.get() >= 0, server.name() << " did not listen:\n" << peer_->report());
    dog_.watch(fd_.get());
    if (const std::string text = server.stdin_text(); !text.empty()) {
      REQUIRE_MESSAGE(peer_->write_stdin(text), peer_->report());
    }
    if (!server.keep_stdin_open()) peer_->close_stdin();

    ctx_ = client_context(t);
    socket_ = ctx_->wrap(make_fd_transport(fd_.get(), false));
    REQUIRE(socket_ != nullptr);
  }

  ~Scene() { CHECK_FALSE_MESSAGE(dog_.fired(), "the watchdog cut the socket: something hung"); }

  Scene(const Scene&) = delete;
  Scene& operator=(const Scene&) = delete;

  SecureSocket& socket() { return *socket_; }
  ChildProcess& peer() { return *peer_; }
  std::string report() const { return peer_ ? peer_->report() : std::string(); }

 private:
  std::unique_ptr<ChildProcess> peer_;  // destroyed last: killed and reaped
  Fd fd_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<SecureSocket> socket_;
  Watchdog dog_;  // destroyed first, before the fd it watches is closed
};

// Handshake on the pinned version, the payload out and the reply back whole.
void connect_and_exchange(Scene& scene, const ServerPeer& server, const Target& t, Ending e) {
  SecureSocket& s = scene.socket();
  blocking_handshake(s);
  CHECK(s.protocol_version() == protocol_name(t.version));
  if (!server.echoes(e)) return;
  blocking_write(s, payload());
  const std::string expected = server.reply();
  const std::string got = blocking_read_exact(s, expected.size());
  REQUIRE_MESSAGE(got == expected, "the reply differs from what was sent (" << got.size() << " bytes)");
}

void we_close_first(const ServerPeer& server, const Target& t) {
  Scene scene(server, t, Ending::we_close);
  INFO(scene.report());
  SecureSocket& s = scene.socket();
  connect_and_exchange(scene, server, t, Ending::we_close);
  CHECK(outcome(s, s.shutdown()) == success(0));
  CHECK(s.get_shutdown() == sent);
  CHECK(outcome(s, s.shutdown()) == success(1));  // the server's answer
  CHECK(s.get_shutdown() == both);
  expect_zero_return(s);
  server.check_saw_clean_close(scene.peer(), t.version);
}

void peer_closes_first(const ServerPeer& server, const Target& t) {
  Scene scene(server, t, Ending::peer_closes);
  INFO(scene.report());
  SecureSocket& s = scene.socket();
  connect_and_exchange(scene, server, t, Ending::peer_closes);
  server.ask_to_close(s);
  Outcome end;
  server.check_last_words(read_to_end(s, &end));
  CHECK(end == end_of_data(errc::zero_return));
  CHECK(s.get_shutdown() == received);
  expect_zero_return(s);  // sticky
  CHECK(outcome(s, s.shutdown()) == success(1));  // our close_notify goes out, nothing to wait for
  CHECK(s.get_shutdown() == both);
  server.check_closed_cleanly(scene.peer(), t.version);
}

void peer_is_killed(const ServerPeer& server, const Target& t) {
  Scene scene(server, t, Ending::peer_killed);
  INFO(scene.report());
  SecureSocket& s = scene.socket();
  // The server has read everything we sent (it echoed all of it), so the
  // kernel closes its socket with a FIN, not a reset.
  connect_and_exchange(scene, server, t, Ending::peer_killed);
  scene.peer().kill();
  std::array<std::byte, 64> buf;
  CHECK(outcome(s, s.read(buf)) == failure(errc::unexpected_eof));
  CHECK(s.get_shutdown() == 0);
  expect_dead(s, errc::unexpected_eof);
  CHECK(s.get_shutdown() == 0);
}

template <typename Peer>
void run(void (*scenario)(const ServerPeer&, const Target&)) {
  const Peer server;
  if (skip_unless_installed(server.program(), server.name())) return;
  for_each_target([&](const Target& t) { scenario(server, t); });
}

// ---- openssl s_server ---------------------------------------------------------
// -rev answers every line reversed; "CLOSE" makes it send its close_notify;
// at the end of the connection it sends its close_notify (SSL_shutdown once)
// and exits (-naccept 1). -msg prints every record and alert to stdout:
// "<<< TLS 1.3, Alert [length 0002], warning close_notify" is ours arriving.
// It prints "CONNECTION CLOSED" for a truncated connection too, so the
// alert line is the evidence.
class OpensslServer final : public ServerPeer {
 public:
  std::string name() const override { return "openssl s_server"; }
  std::string program() const override { return peer_program("UNITLS_PEER_OPENSSL"); }
  ChildProcess::Options command(int port, Version v, Ending) const override {
    const std::string certs = certs_dir();
    return {{program(), "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
             certs + "/server.pem", "-key", certs + "/server.key",
             v == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-rev", "-naccept", "1", "-msg"}};
  }
  std::string reply() const override {
    std::string out;
    std::string_view text = payload();
    while (!text.empty()) {
      const std::size_t eol = text.find('\n');
      std::string line(text.substr(0, eol));
      std::reverse(line.begin(), line.end());
      out += line + '\n';
      text.remove_prefix(eol + 1);
    }
    return out;
  }
  void ask_to_close(SecureSocket& s) const override { blocking_write(s, "CLOSE\n"); }
  void check_saw_clean_close(ChildProcess& p, Version v) const override {
    expect_exit_0(p);
    CHECK_MESSAGE(p.out().find("<<< TLS " + version_number(v) +
                               ", Alert [length 0002], warning close_notify") != std::string::npos,
                  p.report());
    CHECK(p.err().find("CONNECTION CLOSED") != std::string::npos);
  }
  void check_closed_cleanly(ChildProcess& p, Version v) const override {
    expect_exit_0(p);
    CHECK_MESSAGE(p.out().find(">>> TLS " + version_number(v) +
                               ", Alert [length 0002], warning close_notify") != std::string::npos,
                  p.report());
  }
};

// ---- gnutls-serv ----------------------------------------------------------------
// --echo sends every line back; it never closes a connection itself, so the
// scenario where the server closes first uses its HTTP mode instead: a GET
// is answered with a page, then gnutls_bye(GNUTLS_SHUT_WR). It serves until
// it is killed. -d 5 logs every alert ("Alert[1|0] - Close notify - was
// received") to stderr.
class GnutlsServer final : public ServerPeer {
 public:
  std::string name() const override { return "gnutls-serv"; }
  std::string program() const override { return peer_program("UNITLS_PEER_GNUTLS_SERV"); }
  ChildProcess::Options command(int port, Version v, Ending e) const override {
    const std::string certs = certs_dir();
    return {{program(), e == Ending::peer_closes ? "--http" : "--echo", "--port", std::to_string(port),
             "--x509certfile", certs + "/server.pem", "--x509keyfile", certs + "/server.key",
             "--disable-client-cert", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS" + version_number(v), "-d",
             "5"}};
  }
  bool echoes(Ending e) const override { return e != Ending::peer_closes; }
  void ask_to_close(SecureSocket& s) const override { blocking_write(s, "GET / HTTP/1.0\r\n\r\n"); }
  void check_last_words(const std::string& data) const override {
    CHECK(data.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(data.ends_with("</BODY></HTML>\n\n"));
  }
  void check_saw_clean_close(ChildProcess& p, Version) const override {
    CHECK_MESSAGE(p.err().find("Alert[1|0] - Close notify - was received") != std::string::npos, p.report());
  }
  void check_closed_cleanly(ChildProcess& p, Version) const override {
    CHECK_MESSAGE(p.err().find("Sending Alert[1|0] - Close notify") != std::string::npos, p.report());
  }
};

// ---- Python's ssl module -----------------------------------------------------
class PythonServer final : public ServerPeer {
 public:
  std::string name() const override { return "python3 (ssl module)"; }
  std::string program() const override { return peer_program("UNITLS_PEER_PYTHON"); }
  bool takes_listener() const override { return true; }
  ChildProcess::Options command(int, Version v, Ending e) const override {
    const char* then = e == Ending::we_close ? "wait-close" : e == Ending::peer_closes ? "close" : "hold";
    return {{program(), peer_program("UNITLS_PEER_SCRIPT"), "server", "--listen-fd", "3", "--certs",
             certs_dir(), "--version", version_number(v), "--then", then}};
  }
  std::string stdin_text() const override { return payload(); }
  bool keep_stdin_open() const override { return false; }
  void check_saw_clean_close(ChildProcess& p, Version) const override {
    expect_exit_0(p);
    CHECK(p.out().find("clean close") != std::string::npos);
  }
  void check_closed_cleanly(ChildProcess& p, Version) const override {
    expect_exit_0(p);
    CHECK(p.out().find("unwrap ok") != std::string::npos);
  }
};

}  // namespace

#define SERVER_PEER_CASES(Peer, label)                                                        \
  TEST_CASE("unitls client, " label ": the data comes back whole, and our close_notify is a " \
            "clean close the server answers") {                                               \
    run<Peer>(we_close_first);                                                                \
  }                                                                                           \
  TEST_CASE("unitls client, " label ": the server's close_notify makes read() return 0 "      \
            "with zero_return") {                                                             \
    run<Peer>(peer_closes_first);                                                             \
  }                                                                                           \
  TEST_CASE("unitls client, " label ": a server killed with SIGKILL makes read() fail with "  \
            "unexpected_eof") {                                                               \
    run<Peer>(peer_is_killed);                                                                \
  }

SERVER_PEER_CASES(OpensslServer, "openssl s_server")
SERVER_PEER_CASES(GnutlsServer, "gnutls-serv")
SERVER_PEER_CASES(PythonServer, "python3 ssl server")

}  // namespace unitls::test::peers
