// What the `peers` suite shares: the runs (backend x TLS version), the peer
// programs Meson found, loopback listening and connecting with bounds, a
// watchdog, and the payload every peer gets.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"
#include "temp_dir.hpp"
#include "process.hpp"

namespace unitls::test::peers {

// How long one scenario (spawn, handshake, data, close) may take before the
// watchdog cuts our sockets: it takes well under a second, even under ASan.
inline constexpr std::chrono::seconds scenario_deadline{15};
// How long we wait for a peer to do its part (listen, print, exit).
inline constexpr std::chrono::milliseconds peer_patience{8000};

inline constexpr unsigned sent = sent_shutdown;
inline constexpr unsigned received = received_shutdown;
inline constexpr unsigned both = sent_shutdown | received_shutdown;

// How a scenario ends: we send the first close_notify, the peer does, or
// the peer is killed with SIGKILL.
enum class Ending { we_close, peer_closes, peer_killed };

// One run: a backend of this build and a TLS version it supports, named
// "gnutls, TLS 1.3" for SUBCASE.
struct Target {
  std::string backend;
  Version version;
  std::string name;
};

// Every compiled-in backend with each version it supports: a version whose
// Context::create answers errc::unsupported (TLS 1.3 on mbedTLS 2.28) is no
// run at all, not a skip.
const std::vector<Target>& targets();

// Runs body(target) once per target, each in its own SUBCASE.
template <typename Body>
void for_each_target(Body&& body) {
  for (const Target& t : targets()) {
    SUBCASE(t.name.c_str()) { body(t); }
  }
}

// The harness's client (trusts ca.pem, verifies "localhost") and server
// (server.pem/server.key) configurations, pinned to the target.
std::unique_ptr<Context> client_context(const Target& t);
std::unique_ptr<Context> server_context(const Target& t, ClientAuth client_auth = ClientAuth::none);

// "1.2" / "1.3".
std::string version_number(Version v);
// "TLSv1.2" / "TLSv1.3", as protocol_version() says it.
std::string protocol_name(Version v);

// The full path of a peer program, from the variable Meson sets
// (UNITLS_PEER_OPENSSL, ...): "" when Meson did not find the program.
std::string peer_program(const char* variable);
// When path is "": skip("<name> is not installed") and true (the caller
// returns). A missing peer is a reported skip, never a pass.
bool skip_unless_installed(const std::string& path, const std::string& name);

// Waits (peer_patience) for the peer program to exit; REQUIREs that it did
// and CHECKs that its status is 0.
void expect_exit_0(ChildProcess& p);

// Reads until read() returns 0 or -1; everything read before. The last
// call's outcome goes to *end.
std::string read_to_end(SecureSocket& s, Outcome* end);

// $UNITLS_TEST_CERTS.
std::string certs_dir();

// What every peer is sent: 64 lines of 63 printable characters and a
// newline (4 KiB), different in every line, no line a peer command.
const std::string& payload();

// TempDir (temp_dir.hpp): a fresh directory for a peer's files (s_client's
// -msgfile).

// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::string& path);

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A listening socket on 127.0.0.1, port chosen by the kernel.
struct Listener {
  Fd fd;
  int port = 0;
};
Listener listen_loopback();

// A loopback port that was free a moment ago: bound with port 0 and
// released, for a peer that takes a port number (a peer that binds it too
// late gets EADDRINUSE, and the caller starts it again on another).
int free_port();

// Connects to 127.0.0.1:port, retrying while nobody listens yet (every
// 10 ms, for peer_patience). An invalid Fd when the peer ended first or the
// time ran out: the caller looks at why. The first connection that gets
// through is the one the caller uses (a peer that serves one connection
// must not see a probe).
Fd connect_when_listening(ChildProcess& peer, int port);

// Accepts one connection, waiting at most peer_patience; an invalid Fd when
// the peer ended first or the time ran out.
Fd accept_from(const Listener& listener, ChildProcess& peer);

// Whether a peer that could not be reached failed because its port was
// taken (then it is started again on another).
bool lost_port_race(const ChildProcess& peer);

// Shuts our sockets down when a scenario outlives scenario_deadline, so a
// blocking call that waits for a peer that will never answer returns and
// the case fails instead of hanging CI. Register an fd with watch(); the
// watchdog must be destroyed before the fds it watches are closed.
class Watchdog {
 public:
  Watchdog();
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void watch(int fd);
  bool fired() const;

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<int> fds_;
  bool stop_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace unitls::test::peers
