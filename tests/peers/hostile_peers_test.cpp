// Legacy and floods, from a real peer: openssl s_server and s_client asked
// (one command line on their stdin each) to renegotiate a TLS 1.2
// connection or to update their TLS 1.3 keys.
//
// Renegotiation is refused on every backend with exactly one
// no_renegotiation warning. OpenSSL's own answer to that warning is a fatal
// handshake_failure (it asked for a reason), so against these peers the
// refusal ends the connection: our next read() is protocol_error, never a
// wait for a handshake that nobody finishes.
//
// KeyUpdates are post-handshake messages that read() consumes silently; a
// burst from an openssl peer must not surface on one backend and not on
// another.
//
// Our socket is non-blocking here: when a peer waits for an answer we do not
// give, the read below gives up after answer_patience instead of hanging,
// and the case says what was (not) seen.
#include <fcntl.h>
#include <poll.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"
#include "peer_support.hpp"
#include "process.hpp"
#include "sockets.hpp"

namespace unitls::test::peers {
namespace {

using Clock = std::chrono::steady_clock;

// How long a read waits for the peer's answer to what we did (or did not)
// send. The peers answer within milliseconds when they answer at all.
constexpr std::chrono::milliseconds answer_patience{3000};

// The KeyUpdate flood limit of the contract (docs/contract.md, "Hostile
// peers"): more than per_window within a second is a flood.
struct KeyUpdates {
  static constexpr int per_window = 8;
};

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  REQUIRE(flags >= 0);
  REQUIRE(::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

// How often text occurs in haystack.
std::size_t count(const std::string& haystack, std::string_view text) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(text); at != std::string::npos; at = haystack.find(text, at + 1)) ++n;
  return n;
}

// One read() that may have to wait: repeated while it says want_read, for at
// most answer_patience. `data` gets what arrived; the outcome is the last
// call's, or want_read when the peer never answered.
Outcome read_some(SecureSocket& s, int fd, std::string& data, std::size_t want) {
  const auto deadline = Clock::now() + answer_patience;
  std::array<std::byte, 4096> buf;
  for (;;) {
    const std::ptrdiff_t n = s.read(buf);
    if (n > 0) {
      data.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
      if (data.size() >= want) return success(n);
      continue;
    }
    const Outcome o = outcome(s, n);
    if (o != failure(errc::want_read) || Clock::now() >= deadline) return o;
    pollfd p{fd, POLLIN, 0};
    poll_fds(std::span(&p, 1));
  }
}

// Writes text whole, waiting at most answer_patience.
void write_text(SecureSocket& s, int fd, std::string_view text) { nonblocking_write(s, fd, text); }

// A scene with an openssl peer process and our socket on its connection.
class Scene {
 public:
  // The peer's command line; port is 127.0.0.1's, for a server to listen on
  // or a client to connect to.
  using Command = std::function<ChildProcess::Options(int port)>;

  // We are the client: the peer listens.
  static std::unique_ptr<Scene> client_of(const Target& t, const Command& server) {
    return client_of(client_context(t), server);
  }
  // ... with a context of the case's own.
  static std::unique_ptr<Scene> client_of(std::unique_ptr<Context> ctx, const Command& server) {
    auto scene = std::unique_ptr<Scene>(new Scene());
    for (int attempt = 0; attempt < 3 && scene->fd_.get() < 0; ++attempt) {
      const int port = free_port();
      scene->peer_ = std::make_unique<ChildProcess>(server(port));
      scene->fd_ = connect_when_listening(*scene->peer_, port);
      if (scene->fd_.get() < 0 && !(scene->peer_->exited() && lost_port_race(*scene->peer_))) break;
    }
    REQUIRE_MESSAGE(scene->fd_.get() >= 0, "the server did not listen:\n" << scene->report());
    scene->finish(std::move(ctx));
    return scene;
  }

  // We are the server: the peer connects.
  static std::unique_ptr<Scene> server_for(const Target& t, const Command& client,
                                           ClientAuth client_auth = ClientAuth::none) {
    return server_for(server_context(t, client_auth), client);
  }
  // ... with a context of the case's own.
  static std::unique_ptr<Scene> server_for(std::unique_ptr<Context> ctx, const Command& client) {
    auto scene = std::unique_ptr<Scene>(new Scene());
    const Listener listener = listen_loopback();
    scene->peer_ = std::make_unique<ChildProcess>(client(listener.port));
    scene->fd_ = accept_from(listener, *scene->peer_);
    REQUIRE_MESSAGE(scene->fd_.get() >= 0, "the client did not connect:\n" << scene->report());
    scene->finish(std::move(ctx));
    return scene;
  }

  ~Scene() { CHECK_FALSE_MESSAGE(dog_.fired(), "the watchdog cut the socket: something hung"); }

  Scene(const Scene&) = delete;
  Scene& operator=(const Scene&) = delete;

  SecureSocket& socket() { return *socket_; }
  int fd() const { return fd_.get(); }
  ChildProcess& peer() { return *peer_; }
  std::string report() const { return peer_ ? peer_->report() : std::string(); }

  void handshake() {
    const auto r = retry(*socket_, fd(), [&] { return socket_->handshake(); });
    REQUIRE_MESSAGE(r == 1, "handshake: " << describe(socket_->last_error()) << " (native "
                                          << describe(socket_->native_error()) << ")\n" << report());
  }

  // A line to the peer's stdin: a command, or data for it to send us.
  void tell(std::string_view line) { REQUIRE_MESSAGE(peer_->write_stdin(line), report()); }

  // Our data reached the peer: it prints what it receives.
  void expect_peer_shows(std::string_view text) {
    CHECK_MESSAGE(peer_->wait_for_output(text, peer_patience), report());
  }

 private:
  Scene() = default;

  void finish(std::unique_ptr<Context> ctx) {
    dog_.watch(fd_.get());
    set_nonblocking(fd_.get());
    ctx_ = std::move(ctx);
    socket_ = ctx_->wrap(make_fd_transport(fd_.get(), false));
    REQUIRE(socket_ != nullptr);
  }

  std::unique_ptr<ChildProcess> peer_;  // destroyed last: killed and reaped
  Fd fd_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<SecureSocket> socket_;
  Watchdog dog_;  // destroyed first, before the fd it watches is closed
};

std::string openssl() { return peer_program("UNITLS_PEER_OPENSSL"); }

// s_server in its plain mode: prints what it receives, sends each stdin line
// (and takes "r", "k", "K" lines as commands); -msg logs every message.
// `extra`: more s_server options, as given (another certificate: -cert,
// -key, ...; later ones win).
Scene::Command s_server(Version v, std::vector<std::string> extra = {}) {
  return [v, extra](int port) {
    const std::string certs = certs_dir();
    std::vector<std::string> args{openssl(), "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                                  "-cert", certs + "/server.pem", "-key", certs + "/server.key",
                                  v == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-naccept", "1", "-msg"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ChildProcess::Options{args};
  };
}

// s_client likewise: "R" renegotiates, "k"/"K" send a KeyUpdate.
Scene::Command s_client(Version v) {
  return [v](int port) {
    return ChildProcess::Options{{openssl(), "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                                  "-CAfile", certs_dir() + "/ca.pem", "-servername", "localhost",
                                  v == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-msg"}};
  };
}

// Runs body for every backend that has version v. A build none of whose
// backends has v (mbedTLS alone has no TLS 1.3) reports a skip: there is
// nothing to test, and nothing passed.
template <typename Body>
void for_each_backend_with(Version v, Body&& body) {
  if (skip_unless_installed(openssl(), "openssl")) return;
  bool any = false;
  for (const Target& t : targets()) {
    if (t.version != v) continue;
    any = true;
    SUBCASE(t.name.c_str()) { body(t); }
  }
  if (!any) skip("no backend of this build has " + version_name(v));
}

// Data from us to the peer, then from the peer to us: the connection works.
void talk(Scene& scene, std::string_view ours, std::string_view theirs) {
  write_text(scene.socket(), scene.fd(), ours);
  scene.expect_peer_shows(ours);
  scene.tell(theirs);
  std::string got;
  const Outcome o = read_some(scene.socket(), scene.fd(), got, theirs.size());
  REQUIRE_MESSAGE(got == theirs, "read " << o << ", native " << describe(scene.socket().native_error())
                                         << ", got '" << got << "'\n" << scene.report());
}

// After a refused renegotiation, against a peer that fails on our refusal:
// exactly one no_renegotiation warning went out (the peer logged it), and
// our read ends with the peer's fatal alert (protocol_error), not with a
// wait.
void expect_refused(Scene& scene, const Outcome& read, const std::string& log) {
  INFO("our read: " << read << ", native " << describe(scene.socket().native_error()));
  INFO(scene.report());
  CHECK(count(log, "<<< TLS 1.2, Alert [length 0002], warning no_renegotiation") == 1);
  CHECK(read == failure(errc::protocol_error));
  CHECK(count(log, ">>> TLS 1.2, Alert [length 0002], fatal handshake_failure") == 1);
}

}  // namespace

TEST_CASE("a unitls client refuses openssl s_server's HelloRequest with one no_renegotiation warning") {
  for_each_backend_with(Version::tls1_2, [](const Target& t) {
    auto scene = Scene::client_of(t, s_server(t.version));
    scene->handshake();
    talk(*scene, "ping\n", "pong\n");
    // "r": SSL_renegotiate, a HelloRequest (RFC 5246 7.4.1.1) under the
    // connection's keys. Our read meets it, refuses, and then meets the
    // peer's answer to the refusal.
    scene->tell("r\n");
    REQUIRE_MESSAGE(scene->peer().wait_for_output("HelloRequest", peer_patience), scene->report());
    std::string got;
    const Outcome read = read_some(scene->socket(), scene->fd(), got, 1);
    scene->peer().wait(std::chrono::milliseconds(500));
    const std::string log = scene->peer().out();
    CHECK_MESSAGE(count(log, ", ClientHello\n") == 1, "a second handshake was started");
    CHECK(got.empty());
    expect_refused(*scene, read, log);
  });
}

TEST_CASE("a unitls server refuses openssl s_client's renegotiation with one no_renegotiation warning") {
  for_each_backend_with(Version::tls1_2, [](const Target& t) {
    auto scene = Scene::server_for(t, s_client(t.version));
    scene->handshake();
    // s_client sends its stdin lines and prints what it receives.
    scene->tell("ping\n");
    std::string got;
    const Outcome first = read_some(scene->socket(), scene->fd(), got, 5);
    REQUIRE_MESSAGE(got == "ping\n", "read " << first << "\n" << scene->report());
    // "R": SSL_renegotiate, a second ClientHello under the connection's keys
    // (a client-initiated renegotiation, RFC 5746).
    scene->tell("R\n");
    got.clear();
    const Outcome read = read_some(scene->socket(), scene->fd(), got, 1);
    scene->peer().wait(std::chrono::milliseconds(500));
    const std::string log = scene->peer().out();
    CHECK_MESSAGE(count(log, ", ServerHello\n") == 1, "a second handshake was answered");
    CHECK(got.empty());
    expect_refused(*scene, read, log);
  });
}

// A peer that takes the refusal and goes on (GnuTLS, gnutls_renegotiator):
// the connection carries on both ways, under every TLS 1.2 record
// protection. A client is asked twice (two HelloRequests), a server once.
// (The wolfSSL backend opens the peer's handshake records and seals the
// warning itself: docs/backend-notes.md, "wolfSSL".)
TEST_CASE("a refused renegotiation leaves the connection working, under every TLS 1.2 record protection") {
  const std::string program = peer_program("UNITLS_PEER_GNUTLS_RENEGOTIATOR");
  if (skip_unless_installed(program, "the GnuTLS renegotiating peer")) return;
  struct Protection {
    const char* suite;     // ours
    const char* priority;  // GnuTLS's, after the version
    const char* shown;     // what the peer prints for it
  };
  const Protection protections[] = {
      {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "+AES-128-GCM:+AEAD", "AES-128-GCM AEAD etm=0"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "+AES-256-GCM:+AEAD", "AES-256-GCM AEAD etm=0"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "+CHACHA20-POLY1305:+AEAD", "CHACHA20-POLY1305 AEAD etm=0"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "+AES-128-CCM:+AEAD", "AES-128-CCM AEAD etm=0"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8", "+AES-256-CCM-8:+AEAD", "AES-256-CCM-8 AEAD etm=0"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "+AES-128-CBC:+SHA256", "AES-128-CBC SHA256 etm=1"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "+AES-256-CBC:+SHA384", "AES-256-CBC SHA384 etm=1"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "+AES-128-CBC:+SHA1:%NO_ETM", "AES-128-CBC SHA1 etm=0"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "+AES-256-CBC:+SHA384:%NO_ETM", "AES-256-CBC SHA384 etm=0"},
  };
  for (const Target& t : targets()) {
    if (t.version != Version::tls1_2) continue;
    for (const Side we : {Side::client, Side::server}) {
      for (const Protection& p : protections) {
        SUBCASE((t.name + ", " + (we == Side::client ? "client, " : "server, ") + p.shown).c_str()) {
          Config config = we == Side::client ? client_config(Version::tls1_2) : server_config(Version::tls1_2);
          config.backend = t.backend;
          config.cipher_suites = {p.suite};
          std::error_code ec;
          std::string message;
          auto ctx = Context::create(config, ec, &message);
          if (!ctx && ec == errc::unsupported) {
            skip(t.name + " has no " + p.suite + ": " + message);
            return;
          }
          REQUIRE_MESSAGE(ctx, message);
          const std::string priority =
              std::string("NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:-MAC-ALL:") + p.priority;
          const std::string certs = certs_dir();
          auto scene = we == Side::client
                           ? Scene::client_of(std::move(ctx),
                                              [&](int port) {
                                                return ChildProcess::Options{{program, "server", std::to_string(port),
                                                                              certs + "/server.pem",
                                                                              certs + "/server.key", priority}};
                                              })
                           : Scene::server_for(std::move(ctx), [&](int port) {
                               return ChildProcess::Options{
                                   {program, "client", std::to_string(port), certs + "/ca.pem", priority}};
                             });
          scene->handshake();
          // The client sends "ping"; the peer asks to renegotiate; then a
          // line each way shows the connection working. One read meets the
          // requests and the line after them.
          auto expect_line = [&](const std::string& line) {
            std::string got;
            const Outcome o = read_some(scene->socket(), scene->fd(), got, line.size());
            CHECK_MESSAGE(got == line, "read " << o << ", native " << describe(scene->socket().native_error())
                                               << "\n" << scene->report());
          };
          if (we == Side::client) {
            write_text(scene->socket(), scene->fd(), "ping\n");
            expect_line("pong\n");
            write_text(scene->socket(), scene->fd(), "after\n");
          } else {
            expect_line("ping\n");
            expect_line("after\n");
            write_text(scene->socket(), scene->fd(), "pong\n");
          }
          expect_exit_0(scene->peer());
          const std::string log = scene->peer().out();
          CHECK_MESSAGE(count(log, std::string("handshake: ") + p.shown + "\n") == 1, log);
          CHECK_MESSAGE(count(log, "refused: alert 100\n") == (we == Side::client ? 2U : 1U), log);
          CHECK_MESSAGE(count(log, we == Side::client ? "received: after\n" : "received: pong\n") == 1, log);
        }
      }
    }
  }
}

// A peer that asks again and again, reading nothing in between: each
// HelloRequest is refused with its warning, the connection goes on, and
// what the client keeps does not grow with the burst (the wolfSSL engine
// reads such records in a loop, not a recursion, and holds back past two
// records of unsent warnings).
TEST_CASE("a burst of 3000 HelloRequests is refused one by one and the connection goes on") {
  const std::string program = peer_program("UNITLS_PEER_GNUTLS_RENEGOTIATOR");
  if (skip_unless_installed(program, "the GnuTLS renegotiating peer")) return;
  constexpr int burst = 3000;
  for (const Target& t : targets()) {
    if (t.version != Version::tls1_2) continue;
    SUBCASE(t.name.c_str()) {
      const std::string certs = certs_dir();
      auto scene = Scene::client_of(t, [&](int port) {
        return ChildProcess::Options{{program, "server", std::to_string(port), certs + "/server.pem",
                                      certs + "/server.key", "NORMAL:-VERS-ALL:+VERS-TLS1.2",
                                      std::to_string(burst)}};
      });
      scene->handshake();
      write_text(scene->socket(), scene->fd(), "ping\n");
      std::string got;
      const Outcome o = read_some(scene->socket(), scene->fd(), got, 5);
      CHECK_MESSAGE(got == "pong\n", "read " << o << ", native " << describe(scene->socket().native_error())
                                             << "\n" << scene->report());
      write_text(scene->socket(), scene->fd(), "after\n");
      expect_exit_0(scene->peer());
      const std::string log = scene->peer().out();
      CHECK_MESSAGE(count(log, "refused: " + std::to_string(burst) + " times alert 100\n") == 1, log);
      CHECK_MESSAGE(count(log, "received: after\n") == 1, log);
    }
  }
}

// ---- KeyUpdate bursts ------------------------------------------------------------
//
// The flood limit in force (GnuTLS's own, which it cannot be told to lift):
// more than 8 KeyUpdates within 1000 ms of the first is protocol_error,
// answered with a fatal unexpected_message alert, on every backend.

namespace {

// "k" lines to the peer's stdin, each once the previous KeyUpdate is out
// (s_server and s_client look at one read of their stdin at a time: lines
// sent together would be one command). Returns how many KeyUpdates the peer
// logged as sent.
std::size_t send_key_updates(Scene& scene, int n) {
  constexpr std::string_view sent_one = ">>> TLS 1.3, Handshake [length 0005], KeyUpdate";
  std::size_t sent = count(scene.peer().out(), sent_one);
  for (int i = 0; i < n; ++i) {
    scene.tell("k\n");
    const auto deadline = Clock::now() + peer_patience;
    std::size_t now = sent;
    while ((now = count(scene.peer().out(), sent_one)) == sent && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (now == sent) break;
    sent = now;
  }
  return sent;
}

// Side `we` (a client of s_server, or a server for s_client) gets n
// KeyUpdates in a burst, then a line of data.
void key_update_burst(const Target& t, Side we, int n) {
  auto scene = we == Side::client ? Scene::client_of(t, s_server(t.version)) : Scene::server_for(t, s_client(t.version));
  scene->handshake();
  talk(*scene, "ping\n", "pong\n");
  const std::size_t sent = send_key_updates(*scene, n);
  scene->tell("after\n");
  std::string got;
  const Outcome read = read_some(scene->socket(), scene->fd(), got, 6);
  scene->peer().wait(std::chrono::milliseconds(500));
  const std::string log = scene->peer().out();
  INFO("our read: " << read << ", native " << describe(scene->socket().native_error()) << "\n" << scene->report());
  CHECK(sent == static_cast<std::size_t>(n));
  const std::size_t alerts = count(log, "<<< TLS 1.3, Alert [length 0002], fatal unexpected_message");
  if (n <= KeyUpdates::per_window) {
    CHECK(read == success(static_cast<std::ptrdiff_t>(got.size())));
    CHECK(got == "after\n");
    CHECK(alerts == 0);
    // Our keys follow when asked, and data from us still arrives.
    write_text(scene->socket(), scene->fd(), "still here\n");
    scene->expect_peer_shows("still here\n");
  } else {
    CHECK(read == failure(errc::protocol_error));
    CHECK(got.empty());
    CHECK(alerts == 1);
    CHECK(count(log, "<<< TLS 1.3, Alert") == 1);
  }
}

}  // namespace

TEST_CASE("a unitls client takes a burst of 8 KeyUpdates from openssl s_server and reads on") {
  for_each_backend_with(Version::tls1_3, [](const Target& t) { key_update_burst(t, Side::client, 8); });
}

TEST_CASE("a unitls server takes a burst of 8 KeyUpdates from openssl s_client and reads on") {
  for_each_backend_with(Version::tls1_3, [](const Target& t) { key_update_burst(t, Side::server, 8); });
}

TEST_CASE("a burst of 300 KeyUpdates from openssl s_server is protocol_error for a unitls client, "
          "answered with one unexpected_message alert") {
  for_each_backend_with(Version::tls1_3, [](const Target& t) { key_update_burst(t, Side::client, 300); });
}

TEST_CASE("a burst of 300 KeyUpdates from openssl s_client is protocol_error for a unitls server, "
          "answered with one unexpected_message alert") {
  for_each_backend_with(Version::tls1_3, [](const Target& t) { key_update_burst(t, Side::server, 300); });
}

TEST_CASE("a unitls client answers a KeyUpdate that requests ours before its next data") {
  for_each_backend_with(Version::tls1_3, [](const Target& t) {
    auto scene = Scene::client_of(t, s_server(t.version));
    scene->handshake();
    talk(*scene, "ping\n", "pong\n");
    // "K": update_requested. RFC 8446 4.6.3: the receiver "MUST send a
    // KeyUpdate of its own ... prior to sending its next Application Data
    // record". We read the KeyUpdate (and data behind it), then write.
    scene->tell("K\n");
    REQUIRE_MESSAGE(scene->peer().wait_for_output("KeyUpdate", peer_patience), scene->report());
    scene->tell("pong again\n");
    std::string got;
    const Outcome read = read_some(scene->socket(), scene->fd(), got, 11);
    REQUIRE_MESSAGE(got == "pong again\n", "read " << read << "\n" << scene->report());
    write_text(scene->socket(), scene->fd(), "ping again\n");
    scene->expect_peer_shows("ping again\n");
    const std::string log = scene->peer().out();
    const std::size_t ours = log.find("<<< TLS 1.3, Handshake [length 0005], KeyUpdate");
    CHECK_MESSAGE(count(log, "<<< TLS 1.3, Handshake [length 0005], KeyUpdate") == 1, scene->report());
    CHECK(ours < log.find("ping again"));
  });
}

// A certificate no unitls server would serve (Context::create refuses it),
// served by openssl s_server: every backend's client must reject it the
// same way (docs/contract.md, "Verification").
TEST_CASE("a unitls client rejects openssl s_server's clientAuth-only certificate with certificate_error") {
  if (skip_unless_installed(openssl(), "openssl")) return;
  for_each_target([](const Target& t) {
    const std::string pki = certs_dir() + "/";
    auto scene = Scene::client_of(
        t, s_server(t.version, {"-cert", pki + "eku_client_only.pem", "-key", pki + "eku_client_only.key"}));
    SecureSocket& s = scene->socket();
    const auto r = retry(s, scene->fd(), [&] { return s.handshake(); });
    INFO("native " << describe(s.native_error()) << "\n" << scene->report());
    CHECK(outcome(s, r) == failure(errc::certificate_error));
    std::byte buf[16];
    CHECK(outcome(s, s.read(buf)) == failure(errc::certificate_error));
    // The server heard one fatal alert from us (OpenSSL logs it).
    scene->peer().wait(std::chrono::milliseconds(500));
    CHECK(count(scene->peer().out(), ", fatal ") == 1);
  });
}

// A client certificate whose keyUsage leaves out digitalSignature (its key
// may not sign CertificateVerify), sent by openssl s_client: OpenSSL calls it
// an unsuitable purpose, GnuTLS a key usage violation in the middle of the
// handshake, mbedTLS a keyUsage mismatch; every backend's server rejects it
// with certificate_error and one reason (docs/contract.md, "Verification").
TEST_CASE("a unitls server rejects a client certificate whose keyUsage leaves out digitalSignature") {
  if (skip_unless_installed(openssl(), "openssl")) return;
  for_each_target([](const Target& t) {
    const auto command = [v = t.version](int port) {
      const std::string certs = certs_dir();
      return ChildProcess::Options{{openssl(), "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                                    "-CAfile", certs + "/ca.pem", "-servername", "localhost",
                                    "-cert", certs + "/ku_key_encipherment.pem", "-key",
                                    certs + "/ku_key_encipherment.key",
                                    v == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-msg"}};
    };
    auto scene = Scene::server_for(t, command, ClientAuth::required);
    SecureSocket& s = scene->socket();
    const auto r = retry(s, scene->fd(), [&] { return s.handshake(); });
    INFO("native " << describe(s.native_error()) << "\n" << scene->report());
    CHECK(outcome(s, r) == failure(errc::certificate_error));
    CHECK(s.verification_error() == "certificate not for a TLS client (keyUsage without digitalSignature)");
  });
}

// RSA keys under 2048 bits in what openssl s_server sends (a leaf, or the
// intermediate CA of an EC leaf): GnuTLS took them, OpenSSL refused them at
// its system's security level only; every backend's client rejects them
// with one reason (docs/contract.md, "Key strength").
TEST_CASE("a unitls client rejects openssl s_server's RSA-1024 leaf, and an RSA-1024 intermediate CA") {
  if (skip_unless_installed(openssl(), "openssl")) return;
  for (const bool leaf : {true, false}) {
    for_each_target([leaf](const Target& t) {
      const std::string pki = certs_dir() + "/";
      std::vector<std::string> extra{"-cipher", "DEFAULT:@SECLEVEL=0"};
      const std::vector<std::string> cert =
          leaf ? std::vector<std::string>{"-cert", pki + "rsa1024.pem", "-key", pki + "rsa1024.key"}
               : std::vector<std::string>{"-cert", pki + "rsa1024_ca_leaf.pem", "-key", pki + "rsa1024_ca_leaf.key",
                                          "-cert_chain", pki + "rsa1024_ca.pem"};
      extra.insert(extra.end(), cert.begin(), cert.end());
      auto scene = Scene::client_of(t, s_server(t.version, extra));
      SecureSocket& s = scene->socket();
      const auto r = retry(s, scene->fd(), [&] { return s.handshake(); });
      INFO("leaf " << leaf << ", native " << describe(s.native_error()) << "\n" << scene->report());
      CHECK(outcome(s, r) == failure(errc::certificate_error));
      CHECK(s.verification_error() == "certificate key too weak (RSA under 2048 bits)");
    });
  }
}

}  // namespace unitls::test::peers
