// A unitls server (every backend, every TLS version it has) against TLS
// clients nobody here wrote: `openssl s_client`, `gnutls-cli` (both verify
// "localhost" against ca.pem) and Python's ssl module (peer.py). For each:
// the client's data arrives whole and our echo reaches it whole, our
// close_notify is a clean close for the client (and it answers with its
// own), the client's close_notify is read() -> 0 with zero_return, and a
// client killed with SIGKILL is read() -> -1 with unexpected_eof.
//
// Our socket is blocking (make_fd_transport over a loopback TCP socket); the
// client is another process, so the server needs no thread of its own. A
// watchdog shuts our socket down if a scenario hangs, and the client process
// is killed and reaped whatever happens.
#include <array>
#include <memory>
#include <string>
#include <string_view>

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

// A TLS client program, as the scenarios need to know it. It sends
// payload() (given on its stdin) and shows what it received.
class ClientPeer {
 public:
  virtual ~ClientPeer() = default;
  virtual std::string name() const = 0;
  // Its full path, "" when it is not installed.
  virtual std::string program() const = 0;
  // The command line of a client of version v for 127.0.0.1:port; dir is
  // for the files it writes.
  virtual ChildProcess::Options command(int port, Version v, Ending e, const TempDir& dir) const = 0;
  // Whether its stdin stays open after the payload (the end of its stdin
  // is its signal to close) or is closed at once.
  virtual bool keep_stdin_open() const { return true; }
  // Waits until it has received our echo of the payload, whole.
  virtual bool received_echo(ChildProcess& p) const = 0;
  // Whether it answers our close_notify with its own before it closes the
  // connection.
  virtual bool answers_close_notify() const { return true; }
  // Makes it send its close_notify.
  virtual void ask_to_close(ChildProcess&) const {}
  // After our close_notify and its answer: the client saw a clean close.
  virtual void check_saw_clean_close(ChildProcess& p, Version v, const TempDir& dir) const = 0;
  // After its close_notify and our answer: the client ended well.
  virtual void check_closed_cleanly(ChildProcess& p, Version v, const TempDir& dir) const = 0;
};

// One scenario: the client process, our socket for its connection, a
// watchdog.
class Scene {
 public:
  Scene(const ClientPeer& client, const Target& t, Ending e) {
    // Our own listener on port 0: no port race on this side.
    const Listener listener = listen_loopback();
    peer_ = std::make_unique<ChildProcess>(client.command(listener.port, t.version, e, dir_));
    REQUIRE_MESSAGE(peer_->write_stdin(payload()), peer_->report());
    if (!client.keep_stdin_open()) peer_->close_stdin();
    fd_ = accept_from(listener, *peer_);
    REQUIRE_MESSAGE(fd_.get() >= 0, client.name() << " did not connect:\n" << peer_->report());
    dog_.watch(fd_.get());

    ctx_ = server_context(t);
    socket_ = ctx_->wrap(make_fd_transport(fd_.get(), false));
    REQUIRE(socket_ != nullptr);
  }

  ~Scene() { CHECK_FALSE_MESSAGE(dog_.fired(), "the watchdog cut the socket: something hung"); }

  Scene(const Scene&) = delete;
  Scene& operator=(const Scene&) = delete;

  SecureSocket& socket() { return *socket_; }
  ChildProcess& peer() { return *peer_; }
  const TempDir& dir() const { return dir_; }
  std::string report() const { return peer_ ? peer_->report() : std::string(); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> peer_;  // destroyed after our socket: killed and reaped
  Fd fd_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<SecureSocket> socket_;
  Watchdog dog_;  // destroyed first, before the fd it watches is closed
};

// Handshake on the pinned version, the client's payload in whole, our echo
// out and seen whole by the client.
void accept_and_exchange(Scene& scene, const ClientPeer& client, const Target& t) {
  SecureSocket& s = scene.socket();
  blocking_handshake(s);
  CHECK(s.protocol_version() == protocol_name(t.version));
  const std::string got = blocking_read_exact(s, payload().size());
  REQUIRE_MESSAGE(got == payload(), "the data received differs from what the client sent");
  blocking_write(s, payload());
  REQUIRE_MESSAGE(client.received_echo(scene.peer()), "the client did not show our echo whole");
}

void we_close_first(const ClientPeer& client, const Target& t) {
  Scene scene(client, t, Ending::we_close);
  INFO(scene.report());
  SecureSocket& s = scene.socket();
  accept_and_exchange(scene, client, t);
  CHECK(outcome(s, s.shutdown()) == success(0));
  CHECK(s.get_shutdown() == sent);
  if (client.answers_close_notify()) {
    CHECK(outcome(s, s.shutdown()) == success(1));  // the client's answer
    CHECK(s.get_shutdown() == both);
    expect_zero_return(s);
  } else {
    // It reads our close_notify, then closes the socket without its own:
    // for the second shutdown() that is a transport EOF while waiting.
    CHECK(outcome(s, s.shutdown()) == failure(errc::unexpected_eof));
    CHECK(s.get_shutdown() == sent);
    expect_dead(s, errc::unexpected_eof);
    CHECK(s.get_shutdown() == sent);
  }
  client.check_saw_clean_close(scene.peer(), t.version, scene.dir());
}

void peer_closes_first(const ClientPeer& client, const Target& t) {
  Scene scene(client, t, Ending::peer_closes);
  INFO(scene.report());
  SecureSocket& s = scene.socket();
  accept_and_exchange(scene, client, t);
  client.ask_to_close(scene.peer());
  Outcome end;
  CHECK(read_to_end(s, &end).empty());
  CHECK(end == end_of_data(errc::zero_return));
  CHECK(s.get_shutdown() == received);
  expect_zero_return(s);  // sticky
  CHECK(outcome(s, s.shutdown()) == success(1));  // our close_notify goes out, nothing to wait for
  CHECK(s.get_shutdown() == both);
  client.check_closed_cleanly(scene.peer(), t.version, scene.dir());
}

void peer_is_killed(const ClientPeer& client, const Target& t) {
  Scene scene(client, t, Ending::peer_killed);
  INFO(scene.report());
  SecureSocket& s = scene.socket();
  // The client has shown all we sent (session tickets come before it), so
  // nothing is left unread on its side: the kernel closes with a FIN.
  accept_and_exchange(scene, client, t);
  scene.peer().kill();
  std::array<std::byte, 64> buf;
  CHECK(outcome(s, s.read(buf)) == failure(errc::unexpected_eof));
  CHECK(s.get_shutdown() == 0);
  expect_dead(s, errc::unexpected_eof);
  CHECK(s.get_shutdown() == 0);
}

template <typename Peer>
void run(void (*scenario)(const ClientPeer&, const Target&)) {
  const Peer client;
  if (skip_unless_installed(client.program(), client.name())) return;
  for_each_target([&](const Target& t) { scenario(client, t); });
}

// ---- openssl s_client ---------------------------------------------------------
// Sends its stdin, prints what it receives to stdout (-brief keeps
// everything else on stderr). The end of its stdin makes it send its
// close_notify; our close_notify makes it answer with its own. Both end
// with status 0. -msgfile logs every record and alert:
// "<<< TLS 1.3, Alert [length 0002], warning close_notify" is ours arriving.
class OpensslClient final : public ClientPeer {
 public:
  std::string name() const override { return "openssl s_client"; }
  std::string program() const override { return peer_program("UNITLS_PEER_OPENSSL"); }
  ChildProcess::Options command(int port, Version v, Ending, const TempDir& dir) const override {
    return {{program(), "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-CAfile",
             certs_dir() + "/ca.pem", "-verify_return_error", "-verify_hostname", "localhost",
             "-servername", "localhost", v == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-brief",
             "-nocommands", "-msg", "-msgfile", dir.file("msg")}};
  }
  bool received_echo(ChildProcess& p) const override { return p.wait_for_output(payload(), peer_patience); }
  void ask_to_close(ChildProcess& p) const override { p.close_stdin(); }
  void check_saw_clean_close(ChildProcess& p, Version v, const TempDir& dir) const override {
    expect_exit_0(p);
    CHECK(p.out() == payload());
    CHECK_MESSAGE(read_file(dir.file("msg")).find("<<< TLS " + version_number(v) +
                                                  ", Alert [length 0002], warning close_notify") !=
                      std::string::npos,
                  read_file(dir.file("msg")));
  }
  void check_closed_cleanly(ChildProcess& p, Version v, const TempDir& dir) const override {
    expect_exit_0(p);
    CHECK(p.out() == payload());
    CHECK(read_file(dir.file("msg")).find(">>> TLS " + version_number(v) +
                                          ", Alert [length 0002], warning close_notify") != std::string::npos);
  }
};

// ---- gnutls-cli ---------------------------------------------------------------
// Sends its stdin, prints what it receives to stdout after a
// "- Simple Client Mode:" header. The end of its stdin makes it send its
// close_notify (gnutls_bye); a close_notify it receives is reported as
// "- Peer has closed the GnuTLS connection" (a bare EOF would be "The TLS
// connection was non-properly terminated" and status 1), and then it exits
// without answering: only a close it started itself is polite (its
// socket_bye() sends nothing when the server closed first).
class GnutlsClient final : public ClientPeer {
 public:
  std::string name() const override { return "gnutls-cli"; }
  std::string program() const override { return peer_program("UNITLS_PEER_GNUTLS_CLI"); }
  bool answers_close_notify() const override { return false; }
  ChildProcess::Options command(int port, Version v, Ending, const TempDir&) const override {
    return {{program(), "--port", std::to_string(port), "--x509cafile", certs_dir() + "/ca.pem",
             "--verify-hostname", "localhost", "--sni-hostname", "localhost", "--priority",
             "NORMAL:-VERS-ALL:+VERS-TLS" + version_number(v), "127.0.0.1"}};
  }
  bool received_echo(ChildProcess& p) const override { return p.wait_for_output(payload(), peer_patience); }
  void ask_to_close(ChildProcess& p) const override { p.close_stdin(); }
  void check_saw_clean_close(ChildProcess& p, Version, const TempDir&) const override {
    expect_exit_0(p);
    CHECK(p.out().find("- Peer has closed the GnuTLS connection") != std::string::npos);
    CHECK(p.out().find("non-properly terminated") == std::string::npos);
  }
  // After its gnutls_bye it reads on, and our answer arrives as a close_notify.
  void check_closed_cleanly(ChildProcess& p, Version, const TempDir&) const override {
    expect_exit_0(p);
    CHECK(p.out().find("- Peer has closed the GnuTLS connection") != std::string::npos);
    CHECK(p.out().find("non-properly terminated") == std::string::npos);
  }
};

// ---- Python's ssl module -----------------------------------------------------
class PythonClient final : public ClientPeer {
 public:
  std::string name() const override { return "python3 (ssl module)"; }
  std::string program() const override { return peer_program("UNITLS_PEER_PYTHON"); }
  ChildProcess::Options command(int port, Version v, Ending e, const TempDir&) const override {
    const char* then = e == Ending::we_close ? "wait-close" : e == Ending::peer_closes ? "close" : "hold";
    return {{program(), peer_program("UNITLS_PEER_SCRIPT"), "client", "--port", std::to_string(port),
             "--certs", certs_dir(), "--version", version_number(v), "--then", then}};
  }
  bool keep_stdin_open() const override { return false; }
  bool received_echo(ChildProcess& p) const override { return p.wait_for_output("echo ok", peer_patience); }
  // With --then close it calls unwrap() right after the echo.
  void check_saw_clean_close(ChildProcess& p, Version, const TempDir&) const override {
    expect_exit_0(p);
    CHECK(p.out().find("clean close") != std::string::npos);
  }
  void check_closed_cleanly(ChildProcess& p, Version, const TempDir&) const override {
    expect_exit_0(p);
    CHECK(p.out().find("unwrap ok") != std::string::npos);
  }
};

}  // namespace

#define CLIENT_PEER_CASES(Peer, label)                                                          \
  TEST_CASE("unitls server, " label ": the data arrives whole both ways, and our close_notify " \
            "is a clean close the client answers") {                                            \
    run<Peer>(we_close_first);                                                                  \
  }                                                                                             \
  TEST_CASE("unitls server, " label ": the client's close_notify makes read() return 0 "        \
            "with zero_return") {                                                               \
    run<Peer>(peer_closes_first);                                                               \
  }                                                                                             \
  TEST_CASE("unitls server, " label ": a client killed with SIGKILL makes read() fail with "    \
            "unexpected_eof") {                                                                 \
    run<Peer>(peer_is_killed);                                                                  \
  }

CLIENT_PEER_CASES(OpensslClient, "openssl s_client")
CLIENT_PEER_CASES(GnutlsClient, "gnutls-cli")
CLIENT_PEER_CASES(PythonClient, "python3 ssl client")

}  // namespace unitls::test::peers
