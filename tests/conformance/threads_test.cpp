// Contexts shared between threads. A Context is thread-safe to share (wrap()
// from several threads at once, one session cache for all of them) and its
// sockets keep what they need alive, so a Context may be destroyed while
// sockets made from it are still in use on other threads (context.hpp).
// These cases make many complete connections on 8 threads at once over the
// in-memory pair; in a plain build they check that every connection still
// behaves as it does alone, and script/test runs them under ThreadSanitizer
// to find data races in the core and the backends.
//
// doctest's assertions are not thread-safe, and neither are the harness
// helpers that REQUIRE (open_memory, exchange, connect_memory): the threads
// use the public API and the harness's assertion-free helpers only, record
// what happened in a ThreadLog of their own, and the main thread asserts
// after join().
#include <cstddef>
#include <functional>
#include <latch>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

constexpr int thread_count = 8;

// What one thread saw; written by that thread only, read after join().
struct ThreadLog {
  int established = 0;  // connections whose handshake completed and whose data arrived intact
  int reused = 0;       // of those, how many resumed a session
  int closed = 0;       // connections that completed the bidirectional close
  std::vector<std::string> failures;

  void fail(const std::string& where, const std::string& what) {
    failures.push_back(where + ": " + what);
  }
};

// Runs body(thread index, its log) on thread_count threads released at the
// same moment (so that they really overlap), and returns the logs.
std::vector<ThreadLog> run_threads(const std::function<void(int, ThreadLog&)>& body) {
  std::vector<ThreadLog> logs(thread_count);
  std::latch start(thread_count);
  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      body(t, logs[static_cast<std::size_t>(t)]);
    });
  }
  for (auto& thread : threads) thread.join();
  return logs;
}

// On the main thread: no thread reported a failure (the first few are
// printed), each established `established` connections, and thread t closed
// closed(t) of them properly.
void check_logs(const std::vector<ThreadLog>& logs, int established,
                const std::function<int(std::size_t)>& closed) {
  for (std::size_t t = 0; t < logs.size(); ++t) {
    CAPTURE(t);
    const ThreadLog& log = logs[t];
    std::ostringstream first;
    for (std::size_t i = 0; i < log.failures.size() && i < 3; ++i)
      first << "\n  " << log.failures[i];
    CHECK_MESSAGE(log.failures.empty(), log.failures.size() << " failure(s):" << first.str());
    CHECK(log.established == established);
    CHECK(log.closed == closed(t));
  }
}

int total_established(const std::vector<ThreadLog>& logs) {
  int n = 0;
  for (const ThreadLog& log : logs) n += log.established;
  return n;
}

int total_reused(const std::vector<ThreadLog>& logs) {
  int n = 0;
  for (const ThreadLog& log : logs) n += log.reused;
  return n;
}

// The harness's configurations with the client session cache on (it is the
// default; set here because sharing it between threads is what is tested).
// Built on the main thread: cert_path() REQUIREs.
struct Configs {
  Config client, server;
};

Configs configs(Version v) {
  Configs c{client_config(v), server_config(v)};
  c.client.session_cache = true;
  return c;
}

struct Contexts {
  std::unique_ptr<Context> client, server;
};

// On the main thread (REQUIREs).
Contexts make_contexts(Version v) {
  const Configs c = configs(v);
  std::error_code ec;
  std::string message;
  Contexts out;
  out.client = Context::create(c.client, ec, &message);
  REQUIRE_MESSAGE(out.client != nullptr, "client context: " << describe(ec) << ": " << message);
  out.server = Context::create(c.server, ec, &message);
  REQUIRE_MESSAGE(out.server != nullptr, "server context: " << describe(ec) << ": " << message);
  return out;
}

// The functions below return "" on success, else what went wrong; none of
// them asserts, so any thread may call them.

// Two sockets over a fresh memory pair. The MemoryConn holds no Context: the
// contexts belong to the caller, who may destroy them before the sockets.
std::string open_pair(Context& client_ctx, Context& server_ctx, MemoryConn& conn) {
  MemoryPair pair = make_memory_pair();
  if (!pair.client || !pair.server || !pair.link)
    return "make_memory_pair() returned a null member";
  conn.link = pair.link;
  conn.client = client_ctx.wrap(std::move(pair.client));
  conn.server = server_ctx.wrap(std::move(pair.server));
  if (!conn.client || !conn.server) return "wrap() returned nullptr";
  return "";
}

// payload from the server to the client, then back; both must arrive intact
// (records from other threads' connections must never mix in).
std::string transfer(MemoryConn& conn, const std::string& payload) {
  auto one_way = [&](SecureSocket& from, SecureSocket& to, const char* direction) -> std::string {
    if (!write_all(from, payload))
      return std::string(direction) + " write: " + describe(from.last_error());
    const std::string got = read_exact(to, payload.size());
    if (got == payload) return "";
    if (got.size() == payload.size()) return std::string(direction) + ": the bytes arrived altered";
    return std::string(direction) + ": " + std::to_string(got.size()) + " of " +
           std::to_string(payload.size()) + " bytes read, then " + describe(to.last_error());
  };
  std::string error = one_way(*conn.server, *conn.client, "server to client");
  if (error.empty()) error = one_way(*conn.client, *conn.server, "client to server");
  return error;
}

// Handshake on both sides, then a transfer. Both sides must agree on whether
// the session was resumed.
std::string establish(MemoryConn& conn, const std::string& payload) {
  if (!complete_handshake(conn)) return handshake_state(conn);
  if (conn.client->session_reused() != conn.server->session_reused())
    return "session_reused(): client " + std::to_string(conn.client->session_reused()) +
           ", server " + std::to_string(conn.server->session_reused());
  return transfer(conn, payload);
}

// The proper bidirectional close, each call answering as the contract says:
// client shutdown() 0, server read() zero_return, server shutdown() 1,
// client shutdown() 1.
std::string close_properly(MemoryConn& conn) {
  SecureSocket& client = *conn.client;
  SecureSocket& server = *conn.server;
  std::byte buf[16];
  const struct {
    const char* call;
    std::function<Outcome()> make;
    Outcome expected;
  } steps[] = {
      {"client shutdown()", [&] { return outcome(client, client.shutdown()); }, success(0)},
      {"server read()", [&] { return outcome(server, server.read(buf)); },
       end_of_data(errc::zero_return)},
      {"server shutdown()", [&] { return outcome(server, server.shutdown()); }, success(1)},
      {"client shutdown()", [&] { return outcome(client, client.shutdown()); }, success(1)},
  };
  for (const auto& step : steps) {
    const Outcome got = step.make();
    if (got == step.expected) continue;
    std::ostringstream os;
    os << step.call << " returned " << got << ", expected " << step.expected;
    return os.str();
  }
  return "";
}

// Distinct on every connection, and longer than one record (16 KiB), so that
// a record delivered to the wrong connection or a torn one shows.
std::string payload_for(int thread, int connection) {
  return "thread " + std::to_string(thread) + ", connection " + std::to_string(connection) + ": " +
         pattern(20000);
}

std::string name_of(int thread, int connection) {
  return "thread " + std::to_string(thread) + ", connection " + std::to_string(connection);
}

}  // namespace

TEST_CASE(
    "one client Context and one server Context shared by 8 threads each doing full connections") {
  constexpr int per_thread = 20;
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    const Contexts ctx = make_contexts(v);
    const auto logs = run_threads([&](int t, ThreadLog& log) {
      for (int i = 0; i < per_thread; ++i) {
        const std::string name = name_of(t, i);
        MemoryConn conn;
        std::string error = open_pair(*ctx.client, *ctx.server, conn);
        if (error.empty()) error = establish(conn, payload_for(t, i));
        if (!error.empty()) {
          log.fail(name, error);
          continue;
        }
        ++log.established;
        if (conn.client->session_reused()) ++log.reused;
        error = close_properly(conn);
        if (!error.empty()) {
          log.fail(name, error);
          continue;
        }
        ++log.closed;
      }
    });
    check_logs(logs, per_thread, [](std::size_t) { return per_thread; });
    // Every connection closed properly, so each left a resumable session in
    // the shared cache for whichever thread came next; the one that started
    // first found the cache empty.
    const int reused = total_reused(logs);
    CHECK(reused > 0);
    CHECK(reused < total_established(logs));
  }
}

TEST_CASE(
    "when half of 8 threads drop their connections without shutdown and the others close properly, "
    "every connection over the shared Contexts still completes") {
  constexpr int per_thread = 20;
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    const Contexts ctx = make_contexts(v);
    const auto logs = run_threads([&](int t, ThreadLog& log) {
      const bool drops = t % 2 == 1;
      for (int i = 0; i < per_thread; ++i) {
        const std::string name = name_of(t, i);
        MemoryConn conn;
        std::string error = open_pair(*ctx.client, *ctx.server, conn);
        if (error.empty()) error = establish(conn, payload_for(t, i));
        if (!error.empty()) {
          log.fail(name, error);
          continue;
        }
        ++log.established;
        if (drops) {
          // Destroyed with SENT unset: the sessions this connection used or
          // received leave the shared cache while other threads use it. The
          // client goes first on even connections, the server on odd ones.
          if (i % 2 == 0) conn.client.reset();
          conn.server.reset();
          conn.client.reset();
          continue;
        }
        error = close_properly(conn);
        if (!error.empty()) {
          log.fail(name, error);
          continue;
        }
        ++log.closed;
      }
    });
    // Whether a given connection resumed depends on the interleaving (a drop
    // removes sessions others may have been about to use), so only what
    // every connection must do is checked.
    check_logs(logs, per_thread, [](std::size_t t) { return t % 2 == 1 ? 0 : per_thread; });
  }
}

TEST_CASE(
    "8 threads that each create their own Contexts at the same time connect, resume their own "
    "session, and keep using it after destroying the Contexts") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    const Configs c = configs(v);
    const auto logs = run_threads([&](int t, ThreadLog& log) {
      std::error_code ec;
      std::string message;
      std::unique_ptr<Context> client_ctx = Context::create(c.client, ec, &message);
      if (!client_ctx) return log.fail("client context", describe(ec) + ": " + message);
      std::unique_ptr<Context> server_ctx = Context::create(c.server, ec, &message);
      if (!server_ctx) return log.fail("server context", describe(ec) + ": " + message);

      MemoryConn first;
      std::string error = open_pair(*client_ctx, *server_ctx, first);
      if (error.empty()) error = establish(first, payload_for(t, 0));
      if (!error.empty()) return log.fail(name_of(t, 0), error);
      ++log.established;
      if (first.client->session_reused()) ++log.reused;
      error = close_properly(first);
      if (!error.empty()) return log.fail(name_of(t, 0), error);
      ++log.closed;
      first = MemoryConn{};

      // These contexts are this thread's alone and the first connection
      // closed properly: the second one must resume its session.
      MemoryConn second;
      error = open_pair(*client_ctx, *server_ctx, second);
      if (error.empty()) error = establish(second, payload_for(t, 1));
      if (!error.empty()) return log.fail(name_of(t, 1), error);
      ++log.established;
      if (second.client->session_reused()) ++log.reused;

      // Sockets keep what they need alive: data still flows and the close
      // (which puts the session back into the destroyed client context's
      // cache) still works.
      client_ctx.reset();
      server_ctx.reset();
      error = transfer(second, payload_for(t, 2));
      if (error.empty()) error = close_properly(second);
      if (!error.empty()) return log.fail(name_of(t, 1) + ", contexts destroyed", error);
      ++log.closed;
    });
    check_logs(logs, 2, [](std::size_t) { return 2; });
    for (std::size_t t = 0; t < logs.size(); ++t) {
      CAPTURE(t);
      CHECK_MESSAGE(logs[t].reused == 1,
                    "the first connection is a full handshake, the second resumes");
    }
  }
}

TEST_CASE(
    "sockets on 8 threads keep working after the main thread destroys the Contexts they came "
    "from") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Contexts ctx = make_contexts(v);
    // Every thread has its sockets and no longer touches the contexts once it
    // arrives at `established`; only then does the main thread destroy them.
    std::latch established(thread_count + 1);
    std::latch destroyed(1);
    std::thread destroyer([&] {
      established.arrive_and_wait();
      ctx.client.reset();
      ctx.server.reset();
      destroyed.count_down();
    });
    Context& client_ctx = *ctx.client;
    Context& server_ctx = *ctx.server;
    const auto logs = run_threads([&](int t, ThreadLog& log) {
      // Two connections per thread: one closes properly after the contexts
      // are gone, the other is dropped.
      MemoryConn conns[2];
      bool ok[2] = {false, false};
      for (int i = 0; i < 2; ++i) {
        std::string error = open_pair(client_ctx, server_ctx, conns[i]);
        if (error.empty()) error = establish(conns[i], payload_for(t, i));
        if (error.empty()) {
          ok[i] = true;
          ++log.established;
        } else {
          log.fail(name_of(t, i), error);
        }
      }
      // Arrive even after a failure: the other threads are waiting.
      established.arrive_and_wait();
      destroyed.wait();
      for (int i = 0; i < 2; ++i) {
        if (!ok[i]) continue;
        const std::string name = name_of(t, i) + ", contexts destroyed";
        std::string error = transfer(conns[i], payload_for(t, i + 2));
        if (error.empty() && i == 0) error = close_properly(conns[i]);
        if (!error.empty()) {
          log.fail(name, error);
          continue;
        }
        if (i == 0) ++log.closed;
        conns[i] = MemoryConn{};
      }
    });
    destroyer.join();
    check_logs(logs, 2, [](std::size_t) { return 1; });
  }
}
