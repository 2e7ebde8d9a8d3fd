#include "harness.hpp"

#include <fstream>
#include <iterator>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

namespace unitls::test {

namespace {

// Skips are counted here and listed when the program exits, so that a run
// over a backend without TLS 1.3 says how much it did not test.
struct SkipLog {
  std::map<std::string, int> reasons;
  int total = 0;
  ~SkipLog() {
    if (total == 0) return;
    std::fprintf(stderr, "[unitls tests, backend %s] %d subcase(s) skipped:\n",
                 backend_under_test().c_str(), total);
    for (const auto& [reason, n] : reasons) std::fprintf(stderr, "  %3d x %s\n", n, reason.c_str());
  }
};

SkipLog& skip_log() {
  static SkipLog log;
  return log;
}

}  // namespace

// ---- configuration ----------------------------------------------------------

std::string cert_path(std::string_view name) {
  const char* dir = std::getenv("UNITLS_TEST_CERTS");
  REQUIRE_MESSAGE(dir != nullptr, "UNITLS_TEST_CERTS is not set (run the tests through meson test)");
  return std::string(dir) + "/" + std::string(name);
}

std::string cert_text(std::string_view name) {
  std::ifstream in(cert_path(name), std::ios::binary);
  REQUIRE_MESSAGE(in.good(), cert_path(name));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::shared_ptr<Context> must_create(const Config& config) {
  std::error_code ec;
  std::string message;
  std::shared_ptr<Context> context = Context::create(config, ec, &message);
  REQUIRE_MESSAGE(context != nullptr, (config.role == Role::client ? "client" : "server") << " context: "
                                          << describe(ec) << ": " << message);
  return context;
}

std::string backend_under_test() {
  const char* name = std::getenv("UNITLS_TEST_BACKEND");
  return name && *name ? std::string(name) : std::string(default_backend());
}

Config client_config(Version v) {
  Config c;
  c.role = Role::client;
  c.backend = backend_under_test();
  c.ca_file = cert_path("ca.pem");
  c.server_name = "localhost";
  c.min_version = v;
  c.max_version = v;
  return c;
}

Config server_config(Version v) {
  Config c;
  c.role = Role::server;
  c.backend = backend_under_test();
  c.ca_file = cert_path("ca.pem");
  c.certificate_file = cert_path("server.pem");
  c.private_key_file = cert_path("server.key");
  c.min_version = v;  // client_auth none: no client certificate
  c.max_version = v;
  return c;
}

bool supports(Version v) {
  static std::optional<bool> cached[2];
  auto& slot = cached[v == Version::tls1_2 ? 0 : 1];
  if (!slot) {
    bool ok = true;
    for (const Config& config : {client_config(v), server_config(v)}) {
      std::error_code ec;
      std::string message;
      auto ctx = Context::create(config, ec, &message);
      if (ctx) continue;
      REQUIRE_MESSAGE(ec == errc::unsupported, "Context::create(" << version_name(v) << ") failed with "
                                                                  << describe(ec) << ": " << message);
      ok = false;
    }
    slot = ok;
  }
  return *slot;
}

std::string version_name(Version v) { return v == Version::tls1_2 ? "TLS 1.2" : "TLS 1.3"; }

void skip(const std::string& reason) {
  MESSAGE("skipped: " << reason);
  auto& log = skip_log();
  ++log.reasons[reason];
  ++log.total;
}

bool skip_unless_supported(Version v) {
  if (supports(v)) return false;
  skip(backend_under_test() + " has no " + version_name(v));
  return true;
}

int skip_count() { return skip_log().total; }

std::string side_name(Side s) { return s == Side::client ? "client" : "server"; }

std::vector<Closing> versions_and_closers() {
  std::vector<Closing> out;
  for (Version v : all_versions)
    for (Side s : {Side::client, Side::server})
      out.push_back({v, s, version_name(v) + ", " + side_name(s) + " closes"});
  return out;
}

// ---- the in-memory connection ---------------------------------------------

MemoryConn open_memory(Version v, const ConfigTweak& tweak) {
  Config cc = client_config(v);
  Config sc = server_config(v);
  if (tweak) tweak(cc, sc);
  std::error_code ec;
  std::string message;
  std::shared_ptr<Context> client_ctx = Context::create(cc, ec, &message);
  REQUIRE_MESSAGE(client_ctx != nullptr, "client context: " << describe(ec) << ": " << message);
  std::shared_ptr<Context> server_ctx = Context::create(sc, ec, &message);
  REQUIRE_MESSAGE(server_ctx != nullptr, "server context: " << describe(ec) << ": " << message);
  return open_memory(std::move(client_ctx), std::move(server_ctx));
}

MemoryConn open_memory(std::shared_ptr<Context> client_ctx, std::shared_ptr<Context> server_ctx) {
  return open_memory(std::move(client_ctx), std::move(server_ctx), make_memory_pair());
}

MemoryConn open_memory(std::shared_ptr<Context> client_ctx, std::shared_ptr<Context> server_ctx,
                       MemoryPair pair) {
  MemoryConn conn;
  REQUIRE(pair.client != nullptr);
  REQUIRE(pair.server != nullptr);
  REQUIRE(pair.link != nullptr);
  conn.link = pair.link;
  conn.client = client_ctx->wrap(std::move(pair.client));
  conn.server = server_ctx->wrap(std::move(pair.server));
  REQUIRE(conn.client != nullptr);
  REQUIRE(conn.server != nullptr);
  conn.client_ctx = std::move(client_ctx);
  conn.server_ctx = std::move(server_ctx);
  return conn;
}

bool complete_handshake(MemoryConn& conn, int max_rounds) {
  auto step = [](SecureSocket& s, bool& done) {
    if (done) return true;
    int r = s.handshake();
    if (r == 1) {
      done = true;
      return true;
    }
    const std::error_code ec = s.last_error();
    return ec == errc::want_read || ec == errc::want_write;
  };
  bool client_done = false, server_done = false;
  for (int round = 0; round < max_rounds && !(client_done && server_done); ++round) {
    if (!step(*conn.client, client_done)) return false;
    if (!step(*conn.server, server_done)) return false;
  }
  return client_done && server_done;
}

std::string handshake_state(const MemoryConn& conn) {
  auto one = [](const SecureSocket& s) {
    std::string out = describe(s.last_error());
    if (s.native_error()) out += " (native " + describe(s.native_error()) + ")";
    return out;
  };
  return "handshake: client " + one(*conn.client) + ", server " + one(*conn.server);
}

HandshakeEnd run_handshake(MemoryConn& conn) {
  HandshakeEnd end{failure(errc::want_read), failure(errc::want_read)};
  auto finished = [](const Outcome& o) {
    return o.ret == 1 || (o.error != errc::want_read && o.error != errc::want_write);
  };
  for (int round = 0; round < 32; ++round) {
    if (!finished(end.client)) end.client = outcome(*conn.client, conn.client->handshake());
    if (!finished(end.server)) end.server = outcome(*conn.server, conn.server->handshake());
    if (finished(end.client) && finished(end.server)) break;
    if (round > 0 && conn.link->client_to_server().buffered() == 0 &&
        conn.link->server_to_client().buffered() == 0)
      break;  // both wait and nothing is in flight: no step can change anything
  }
  return end;
}

void end_properly(MemoryConn& conn) {
  CHECK(outcome(*conn.client, conn.client->shutdown()) == success(0));
  conn.server->set_shutdown(sent_shutdown | received_shutdown);
  conn.client.reset();
  conn.server.reset();
}

void exchange(MemoryConn& conn) {
  REQUIRE(write_all(*conn.server, "ping"));
  REQUIRE(read_exact(*conn.client, 4) == "ping");
  REQUIRE(write_all(*conn.client, "pong"));
  REQUIRE(read_exact(*conn.server, 4) == "pong");
  REQUIRE(conn.link->client_to_server().buffered() == 0);
  REQUIRE(conn.link->server_to_client().buffered() == 0);
}

MemoryConn connect_memory(Version v, const ConfigTweak& tweak) {
  MemoryConn conn = open_memory(v, tweak);
  REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
  exchange(conn);
  return conn;
}

MemoryConn connect_memory(std::shared_ptr<Context> client_ctx, std::shared_ptr<Context> server_ctx) {
  MemoryConn conn = open_memory(std::move(client_ctx), std::move(server_ctx));
  REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
  exchange(conn);
  return conn;
}

// ---- outcomes -----------------------------------------------------------------

std::string describe(const std::error_code& ec) {
  if (!ec) return "ok";
  if (ec.category() == unitls::category()) return to_string(static_cast<errc>(ec.value()));
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{" << o.ret << ", " << describe(o.error) << "}";
}

// ---- driving calls --------------------------------------------------------------

bool write_all(SecureSocket& s, std::string_view data, int max_calls) {
  for (int i = 0; i < max_calls && !data.empty(); ++i) {
    std::ptrdiff_t n = s.write(data);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (s.last_error() != errc::want_write) {
      return false;
    }
  }
  return data.empty();
}

std::string read_exact(SecureSocket& s, std::size_t n, int max_calls) {
  std::string out;
  for (int i = 0; i < max_calls && out.size() < n; ++i) {
    std::string chunk;
    chunk.resize(n - out.size());
    std::ptrdiff_t r = s.read(std::as_writable_bytes(std::span<char>(chunk)));
    if (r > 0) {
      out.append(chunk.data(), static_cast<std::size_t>(r));
    } else if (r == 0 || s.last_error() != errc::want_read) {
      break;
    }
  }
  return out;
}

std::string read_available(SecureSocket& s, int max_calls) {
  std::string out;
  for (int i = 0; i < max_calls; ++i) {
    std::byte buf[4096];
    std::ptrdiff_t r = s.read(std::span<std::byte>(buf));
    if (r <= 0) break;
    out += to_string(std::span<const std::byte>(buf, static_cast<std::size_t>(r)));
  }
  return out;
}

// ---- bytes -------------------------------------------------------------------

std::vector<std::byte> to_bytes(std::string_view text) {
  auto b = std::as_bytes(std::span<const char>(text.data(), text.size()));
  return {b.begin(), b.end()};
}

std::string to_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string pattern(std::size_t n) {
  std::string out(n, '\0');
  std::uint32_t x = 2463534242u;  // xorshift32: cheap, deterministic, not periodic at record sizes
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

}  // namespace unitls::test
