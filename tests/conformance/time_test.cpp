// Time and event loops (docs/contract.md, "Time"): a blocking call against a
// silent peer returns timed_out within its limit, not fatal, and the
// connection goes on once the peer speaks; pending() tells an event loop
// what read() has without the transport. Real sockets (an AF_UNIX
// socketpair, blocking), every backend.
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace unitls;
using namespace unitls::test;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto limit = 500ms;
constexpr auto margin = 500ms;  // the check asks ~0.7 s; sanitizer builds are slower

// Two blocking sockets over a socketpair, not yet connected.
struct Pair {
  std::unique_ptr<SecureSocket> client, server;
};

Pair make_pair(Version v) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  std::error_code ec;
  auto cctx = Context::create(client_config(v), ec);
  REQUIRE(cctx);
  auto sctx = Context::create(server_config(v), ec);
  REQUIRE(sctx);
  Pair p{cctx->wrap(make_fd_transport(fds[0])), sctx->wrap(make_fd_transport(fds[1]))};
  REQUIRE(p.client);
  REQUIRE(p.server);
  return p;
}

// The peer does `work` on its own thread (it "wakes up").
template <class F>
std::future<void> peer(F&& work) {
  return std::async(std::launch::async, std::forward<F>(work));
}

// Runs call; checks it returned -1 timed_out after about `limit`.
template <class F>
void expect_timeout(SecureSocket& s, F&& call) {
  const auto start = Clock::now();
  const std::ptrdiff_t ret = call();
  const auto took = Clock::now() - start;
  CHECK(outcome(s, ret) == failure(errc::timed_out));
  CHECK(took >= limit - 20ms);
  CHECK(took < limit + margin);
}

void connect(Pair& p) {
  auto server = peer([&] { CHECK(p.server->handshake() == 1); });
  CHECK(p.client->handshake() == 1);
  server.get();
}

}  // namespace

TEST_CASE("a blocking handshake against a peer that never speaks times out, and completes when it does") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Pair p = make_pair(v);
    p.client->set_timeout(limit);
    expect_timeout(*p.client, [&] { return p.client->handshake(); });
    expect_timeout(*p.client, [&] { return p.client->handshake(); });  // not sticky
    connect(p);
    CHECK(write_all(*p.client, "after the wait"));
    auto server = peer([&] { CHECK(read_exact(*p.server, 14) == "after the wait"); });
    server.get();
  }
}

TEST_CASE("a server's blocking handshake times out against a client that connects and says nothing") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Pair p = make_pair(v);
    p.server->set_timeout(limit);
    expect_timeout(*p.server, [&] { return p.server->handshake(); });
    auto client = peer([&] { CHECK(p.client->handshake() == 1); });
    CHECK(p.server->handshake() == 1);
    client.get();
  }
}

TEST_CASE("a blocking read times out while the peer is silent, and reads what it sends next") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Pair p = make_pair(v);
    connect(p);
    p.client->set_timeout(limit);
    std::byte buf[64];
    expect_timeout(*p.client, [&] { return p.client->read(buf); });
    expect_timeout(*p.client, [&] { return p.client->read(buf); });
    CHECK(write_all(*p.server, "hello"));
    CHECK(read_exact(*p.client, 5) == "hello");
    CHECK(p.client->get_shutdown() == 0);
  }
}

TEST_CASE("a blocking shutdown() waiting for the peer's close_notify times out with SENT set, then completes") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Pair p = make_pair(v);
    connect(p);
    p.client->set_timeout(limit);
    CHECK(outcome(*p.client, p.client->shutdown()) == success(0));
    expect_timeout(*p.client, [&] { return p.client->shutdown(); });
    CHECK(p.client->get_shutdown() == sent_shutdown);
    std::byte buf[16];
    CHECK(outcome(*p.server, p.server->read(buf)) == end_of_data(errc::zero_return));
    CHECK(outcome(*p.server, p.server->shutdown()) == success(1));
    CHECK(outcome(*p.client, p.client->shutdown()) == success(1));
  }
}

TEST_CASE("a blocking write times out while the peer reads nothing, and every byte arrives once it does") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Pair p = make_pair(v);
    connect(p);
    p.client->set_timeout(limit);
    const std::string data = pattern(8u << 20);  // far more than the socket buffers hold
    std::size_t sent = 0;
    bool timed_out = false;
    const auto start = Clock::now();
    while (sent < data.size() && !timed_out) {
      const std::ptrdiff_t n = p.client->write(std::string_view(data).substr(sent));
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      CHECK(outcome(*p.client, n) == failure(errc::timed_out));
      timed_out = true;
    }
    CHECK(timed_out);
    CHECK(Clock::now() - start < 2 * limit + margin);  // a partial write, then the one that timed out
    auto reader = peer([&] { CHECK(read_exact(*p.server, data.size(), 1 << 20) == data); });
    p.client->set_timeout(0ms);
    while (sent < data.size()) {  // the same bytes again, from where it stopped
      const std::ptrdiff_t n = p.client->write(std::string_view(data).substr(sent));
      REQUIRE(n > 0);
      sent += static_cast<std::size_t>(n);
    }
    reader.get();
  }
}

TEST_CASE("SO_RCVTIMEO on a blocking socket is timed_out, never want_read") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    const timeval tv{0, 300000};
    REQUIRE(::setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    std::error_code ec;
    auto cctx = Context::create(client_config(v), ec);
    REQUIRE(cctx);
    auto client = cctx->wrap(make_fd_transport(fds[0]));
    CHECK(outcome(*client, client->handshake()) == failure(errc::timed_out));
    ::close(fds[1]);
  }
}

TEST_CASE("pending() counts what a record holds beyond the caller's buffer, and read() returns it") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = connect_memory(v);
    CHECK(conn.client->pending() == 0);
    const std::string data = pattern(1000);
    CHECK(conn.server->write(data) == 1000);  // one record
    std::byte small[100];
    CHECK(conn.client->read(small) == 100);
    CHECK(conn.client->pending() == 900);
    conn.to(Side::client).hold(true);  // nothing more from the transport
    std::byte rest[2000];
    CHECK(conn.client->read(rest) == 900);
    CHECK(conn.client->pending() == 0);
    CHECK(to_string(std::span<const std::byte>(small)) + to_string(std::span<const std::byte>(rest, 900)) == data);
  }
}

TEST_CASE("close() ends cleanly when the peer answers, and reports a silent or vanished peer within its limit") {
  using CloseResult = SecureSocket::CloseResult;
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    SUBCASE("the peer answers: clean, both flags") {
      Pair p = make_pair(v);
      connect(p);
      auto server = peer([&] {
        CHECK(write_all(*p.server, "late data"));  // met by close(), discarded
        std::byte buf[16];
        CHECK(outcome(*p.server, p.server->read(buf)) == end_of_data(errc::zero_return));
        CHECK(outcome(*p.server, p.server->shutdown()) == success(1));
      });
      CHECK(p.client->close(limit) == CloseResult::clean);
      CHECK(p.client->get_shutdown() == (sent_shutdown | received_shutdown));
      server.get();
    }
    SUBCASE("the peer is silent: peer_silent after the limit, SENT set") {
      Pair p = make_pair(v);
      connect(p);
      const auto start = Clock::now();
      CHECK(p.client->close(limit) == CloseResult::peer_silent);
      CHECK(Clock::now() - start >= limit - 20ms);
      CHECK(Clock::now() - start < limit + margin);
      CHECK(p.client->get_shutdown() == sent_shutdown);
    }
    SUBCASE("the peer's transport ends without close_notify: truncated") {
      Pair p = make_pair(v);
      connect(p);
      auto server = peer([&] {
        std::byte buf[16];
        CHECK(outcome(*p.server, p.server->read(buf)) == end_of_data(errc::zero_return));
        p.server.reset();  // closes its socket without answering
      });
      CHECK(p.client->close(limit) == CloseResult::truncated);
      server.get();
    }
    SUBCASE("the transport is gone before our close_notify: failed") {
      Pair p = make_pair(v);
      connect(p);
      p.server.reset();
      CHECK(p.client->close(limit) == CloseResult::failed);
      CHECK(p.client->last_error() == errc::transport_error);
    }
    SUBCASE("non-blocking, in memory: what is there now") {
      MemoryConn conn = connect_memory(v);
      CHECK(conn.client->close(limit) == CloseResult::peer_silent);  // no fd to wait on
      std::byte buf[16];
      CHECK(outcome(*conn.server, conn.server->read(buf)) == end_of_data(errc::zero_return));
      CHECK(outcome(*conn.server, conn.server->shutdown()) == success(1));
      CHECK(conn.client->close(limit) == CloseResult::clean);
    }
  }
}

TEST_CASE("each side's blocking handshake times out in the middle while the other is not driven, and completes when it is") {
  // One thread drives both ends in turn; a turn ends when its side has to
  // wait for the other (timed_out), or when its handshake is complete. TLS
  // 1.2: the client waits for the server's Finished mid-handshake; TLS 1.3:
  // the server waits for the client's.
  constexpr auto turn = 300ms;
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Pair p = make_pair(v);
    p.client->set_timeout(turn);
    p.server->set_timeout(turn);
    auto step = [&](SecureSocket& s) {
      const auto start = Clock::now();
      const int r = s.handshake();
      const auto took = Clock::now() - start;
      if (r == -1) {
        CHECK(s.last_error() == errc::timed_out);
        CHECK(took >= turn - 20ms);
        CHECK(took < turn + margin);
      }
      return r == 1 ? std::string("done") : describe(s.last_error());
    };
    CHECK(step(*p.client) == "timed_out");  // ClientHello out, nothing back
    CHECK(step(*p.server) == "timed_out");  // its flight out, waits for the client's
    if (v == Version::tls1_2) {
      CHECK(step(*p.client) == "timed_out");  // Finished out, waits for the server's
      CHECK(step(*p.server) == "done");
      CHECK(step(*p.client) == "done");
    } else {
      CHECK(step(*p.client) == "done");
      CHECK(step(*p.server) == "done");
    }
    CHECK(p.client->protocol_version() == (v == Version::tls1_2 ? "TLSv1.2" : "TLSv1.3"));
    CHECK(write_all(*p.client, "ping"));
    CHECK(read_exact(*p.server, 4) == "ping");
  }
}
