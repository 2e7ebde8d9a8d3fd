// Context::create and the secure defaults, on every backend: configuration
// errors name their culprit, peers are verified unless told otherwise, and
// the handshake-level options (names, client certificates, ALPN, versions)
// behave alike. Connections run over the in-memory pair.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

constexpr Version any_version = Version::tls1_2;  // for rules that do not depend on it

// Context::create that is expected to fail: the error and the message.
struct CreateFailure {
  bool created = false;
  std::error_code ec;
  std::string message;
};

CreateFailure create_failure(const Config& config) {
  CreateFailure out;
  auto ctx = Context::create(config, out.ec, &out.message);
  out.created = ctx != nullptr;
  return out;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// A client as make_certs.sh's PKI needs it, with every other field left at
// Config's defaults (verify_peer untouched).
Config default_client() {
  Config c;
  c.backend = backend_under_test();
  c.ca_file = cert_path("ca.pem");
  c.server_name = "localhost";
  return c;
}

MemoryConn open_with(Version v, const ConfigTweak& tweak) { return open_memory(v, tweak); }

// A dead connection repeats its error on read, write, shutdown and send_close_notify.
void expect_dead(SecureSocket& s, const std::error_code& code) {
  std::array<std::byte, 32> buf;
  CHECK(outcome(s, s.read(buf)) == Outcome{-1, code});
  CHECK(outcome(s, s.write("data")) == Outcome{-1, code});
  CHECK(outcome(s, s.shutdown()) == Outcome{-1, code});
  CHECK(s.send_close_notify() == code);
  CHECK(outcome(s, s.read(buf)) == Outcome{-1, code});
}

bool is_protocol_or_certificate_error(const std::error_code& ec) {
  return ec == errc::protocol_error || ec == errc::certificate_error;
}

}  // namespace

// ---- configuration errors -------------------------------------------------------

TEST_CASE("an unknown backend name is invalid_argument, and the message names it") {
  Config c = client_config(any_version);
  c.backend = "no-such-tls";
  const CreateFailure f = create_failure(c);
  CHECK_FALSE(f.created);
  CHECK(f.ec == errc::invalid_argument);
  CHECK_MESSAGE(contains(f.message, "no-such-tls"), "message: " << f.message);
}

TEST_CASE("the two-argument create() reports the same failure without a message") {
  Config c = client_config(any_version);
  c.backend = "no-such-tls";
  std::error_code ec;
  CHECK(Context::create(c, ec) == nullptr);
  CHECK(ec == errc::invalid_argument);
}

TEST_CASE(
    "a certificate_file that does not exist is invalid_argument, and the message names the path") {
  Config c = server_config(any_version);
  c.certificate_file = cert_path("does_not_exist.pem");
  const CreateFailure f = create_failure(c);
  CHECK_FALSE(f.created);
  CHECK(f.ec == errc::invalid_argument);
  CHECK_MESSAGE(contains(f.message, c.certificate_file), "message: " << f.message);
}

TEST_CASE(
    "a file that is not PEM, or is empty, is invalid_argument as certificate, key or CA, and the "
    "message names it") {
  for (const char* file : {"garbage.pem", "empty.pem"}) {
    SUBCASE(file) {
      const std::string path = cert_path(file);
      SUBCASE("as the server's certificate_file") {
        Config c = server_config(any_version);
        c.certificate_file = path;
        const CreateFailure f = create_failure(c);
        CHECK_FALSE(f.created);
        CHECK(f.ec == errc::invalid_argument);
        CHECK_MESSAGE(contains(f.message, path), "message: " << f.message);
      }
      SUBCASE("as the server's private_key_file") {
        Config c = server_config(any_version);
        c.private_key_file = path;
        const CreateFailure f = create_failure(c);
        CHECK_FALSE(f.created);
        CHECK(f.ec == errc::invalid_argument);
        CHECK_MESSAGE(contains(f.message, path), "message: " << f.message);
      }
      SUBCASE("as the client's ca_file") {
        Config c = client_config(any_version);
        c.ca_file = path;
        const CreateFailure f = create_failure(c);
        CHECK_FALSE(f.created);
        CHECK(f.ec == errc::invalid_argument);
        CHECK_MESSAGE(contains(f.message, path), "message: " << f.message);
      }
    }
  }
}

TEST_CASE("a private key that does not match the certificate is invalid_argument") {
  Config c = server_config(any_version);
  c.private_key_file = cert_path("client.key");
  const CreateFailure f = create_failure(c);
  CHECK_FALSE(f.created);
  CHECK(f.ec == errc::invalid_argument);
  // The same words on every backend, naming both files.
  CHECK_MESSAGE(contains(f.message, "private_key_file '" + c.private_key_file +
                                        "' does not match certificate_file '" + c.certificate_file + "'"),
                "message: " << f.message);
}

TEST_CASE(
    "a server without a certificate or without a key is invalid_argument, and the message names "
    "the option") {
  SUBCASE("no certificate, no key") {
    Config c = server_config(any_version);
    c.certificate_file.clear();
    c.private_key_file.clear();
    const CreateFailure f = create_failure(c);
    CHECK_FALSE(f.created);
    CHECK(f.ec == errc::invalid_argument);
    CHECK_MESSAGE(contains(f.message, "certificate"), "message: " << f.message);
  }
  SUBCASE("a certificate without its key") {
    Config c = server_config(any_version);
    c.private_key_file.clear();
    const CreateFailure f = create_failure(c);
    CHECK_FALSE(f.created);
    CHECK(f.ec == errc::invalid_argument);
    CHECK_MESSAGE(contains(f.message, "key"), "message: " << f.message);
  }
}

TEST_CASE("a server that asks for client certificates without a ca_file is invalid_argument") {
  for (ClientAuth auth : {ClientAuth::optional, ClientAuth::required}) {
    Config c = server_config(any_version);
    c.client_auth = auth;
    c.ca_file.clear();
    const CreateFailure f = create_failure(c);
    CHECK_FALSE(f.created);
    CHECK(f.ec == errc::invalid_argument);
    CHECK(f.message == "a server with client_auth (client certificates) needs ca_file (or ca_pem, ca_path), the CA that signs its clients");
  }
}

TEST_CASE("verify_peer is a client's: a server with it and no ca_file is made, and asks for no certificate") {
  Config c = server_config(any_version);
  c.verify_peer = true;
  c.ca_file.clear();
  CHECK(create_failure(c).created);
}

TEST_CASE("client_auth on a client, or outside the enum, is invalid_argument naming it") {
  Config c = client_config(any_version);
  c.client_auth = ClientAuth::required;
  CreateFailure f = create_failure(c);
  CHECK_FALSE(f.created);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(f.message == "client_auth is a server option (a client sends certificate_file when a server asks)");
  Config s = server_config(any_version);
  s.client_auth = static_cast<ClientAuth>(7);
  f = create_failure(s);
  CHECK_FALSE(f.created);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(f.message == "client_auth: 7 is not a ClientAuth");
}

TEST_CASE("min_version above max_version is invalid_argument, and the message names the versions") {
  for (Role role : {Role::client, Role::server}) {
    Config c = role == Role::client ? client_config(any_version) : server_config(any_version);
    c.min_version = Version::tls1_3;
    c.max_version = Version::tls1_2;
    const CreateFailure f = create_failure(c);
    CHECK_FALSE(f.created);
    CHECK(f.ec == errc::invalid_argument);
    CHECK_MESSAGE(contains(f.message, "version"), "message: " << f.message);
  }
}

TEST_CASE("a client that verifies the server without a server_name is invalid_argument") {
  Config c = client_config(any_version);
  c.server_name.clear();
  const CreateFailure f = create_failure(c);
  CHECK_FALSE(f.created);
  CHECK(f.ec == errc::invalid_argument);
  CHECK_MESSAGE(contains(f.message, "server_name"), "message: " << f.message);
}

// ---- backends ---------------------------------------------------------------------

TEST_CASE("Context::backend() is the backend under test, and available_backends() lists it") {
  std::error_code ec;
  auto ctx = Context::create(client_config(any_version), ec);
  REQUIRE_MESSAGE(ctx != nullptr, describe(ec));
  CHECK(ctx->backend() == backend_under_test());
  CHECK(ctx->config().backend == backend_under_test());

  const auto backends = available_backends();
  CHECK_FALSE(backends.empty());
  CHECK(std::find(backends.begin(), backends.end(), backend_under_test()) != backends.end());
  CHECK(std::find(backends.begin(), backends.end(), default_backend()) != backends.end());
  CHECK_FALSE(backend_library_version(backend_under_test()).empty());
  CHECK(backend_library_version("no-such-tls").empty());
}

TEST_CASE("an empty Config::backend selects default_backend()") {
  Config c = client_config(any_version);
  c.backend.clear();
  std::error_code ec;
  auto ctx = Context::create(c, ec);
  REQUIRE_MESSAGE(ctx != nullptr, describe(ec));
  CHECK(ctx->backend() == default_backend());
}

TEST_CASE("wrap(nullptr) returns nullptr") {
  std::error_code ec;
  auto ctx = Context::create(client_config(any_version), ec);
  REQUIRE_MESSAGE(ctx != nullptr, describe(ec));
  CHECK(ctx->wrap(nullptr) == nullptr);
  CHECK(make_fd_transport(-1) == nullptr);
  CHECK(ctx->wrap_fd(-1) == nullptr);
  CHECK(ctx->wrap_fd(-1, false) == nullptr);
}

TEST_CASE("wrap_fd() closes the fd with the socket when it owns it, and leaves it open otherwise") {
  std::error_code ec;
  auto ctx = Context::create(client_config(any_version), ec);
  REQUIRE_MESSAGE(ctx != nullptr, describe(ec));
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);

  auto borrowed = ctx->wrap_fd(fds[0], false);
  REQUIRE(borrowed != nullptr);
  borrowed.reset();
  CHECK(::fcntl(fds[0], F_GETFD) >= 0);  // still open

  auto owner = ctx->wrap_fd(fds[0]);  // owns_fd defaults to true, as make_fd_transport's
  REQUIRE(owner != nullptr);
  owner.reset();
  errno = 0;
  CHECK(::fcntl(fds[0], F_GETFD) == -1);
  CHECK(errno == EBADF);
  ::close(fds[1]);
}

// ---- error codes ------------------------------------------------------------------

TEST_CASE("every errc has a name and its own non-empty message in the category named \"unitls\"") {
  CHECK(std::string_view(category().name()) == "unitls");
  std::set<std::string> messages;
  std::set<std::string> names;
  for (int value = 1; value <= 15; ++value) {
    CAPTURE(value);
    const auto e = static_cast<errc>(value);
    const std::error_code ec = make_error_code(e);
    CHECK(ec.value() == value);
    CHECK(&ec.category() == &category());
    CHECK_FALSE(category().message(value).empty());
    CHECK(ec.message() == category().message(value));
    CHECK(std::string_view(to_string(e)) != "unknown");
    messages.insert(category().message(value));
    names.insert(to_string(e));
  }
  CHECK(messages.size() == 15);
  CHECK(names.size() == 15);
  CHECK(std::string_view(to_string(errc::want_read)) == "want_read");
  CHECK(std::string_view(to_string(errc::unsupported)) == "unsupported");
  CHECK(std::string_view(to_string(static_cast<errc>(16))) == "unknown");
}

// ---- peer verification --------------------------------------------------------------

TEST_CASE(
    "a client verifies the server by default: a certificate from an untrusted CA is "
    "certificate_error and the connection is dead") {
  CHECK(Config{}.verify_peer);
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_with(v, [v](Config& client, Config& server) {
        client = default_client();
        client.min_version = client.max_version = v;
        server.certificate_file = cert_path("untrusted.pem");
        server.private_key_file = cert_path("untrusted.key");
      });
      const HandshakeEnd end = run_handshake(conn);
      CHECK(end.client == failure(errc::certificate_error));
      expect_dead(*conn.client, make_error_code(errc::certificate_error));
      // The server hears the client's fatal alert.
      CHECK(end.server.ret == -1);
      CHECK_MESSAGE(is_protocol_or_certificate_error(end.server.error), "server: " << end.server);
    }
}

TEST_CASE(
    "a server certificate for another name is certificate_error for server_name \"localhost\"") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_with(v, [](Config&, Config& server) {
        server.certificate_file = cert_path("wrong_name.pem");
        server.private_key_file = cert_path("wrong_name.key");
      });
      const HandshakeEnd end = run_handshake(conn);
      CHECK(end.client == failure(errc::certificate_error));
      expect_dead(*conn.client, make_error_code(errc::certificate_error));
    }
}

TEST_CASE("server_name \"127.0.0.1\" matches the server certificate's IP address entry") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn =
          open_with(v, [](Config& client, Config&) { client.server_name = "127.0.0.1"; });
      const HandshakeEnd end = run_handshake(conn);
      CHECK(end.client == success(1));
      CHECK(end.server == success(1));
      exchange(conn);
    }
}

TEST_CASE("a client with verify_peer=false accepts a certificate from an untrusted CA") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_with(v, [](Config& client, Config& server) {
        client.verify_peer = false;
        server.certificate_file = cert_path("untrusted.pem");
        server.private_key_file = cert_path("untrusted.key");
      });
      const HandshakeEnd end = run_handshake(conn);
      CHECK(end.client == success(1));
      CHECK(end.server == success(1));
      exchange(conn);
    }
}

TEST_CASE("a server with client_auth required accepts a client certificate signed by its CA") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_with(v, [](Config& client, Config& server) {
        server.client_auth = ClientAuth::required;
        server.ca_file = cert_path("ca.pem");
        client.certificate_file = cert_path("client.pem");
        client.private_key_file = cert_path("client.key");
      });
      const HandshakeEnd end = run_handshake(conn);
      CHECK(end.client == success(1));
      CHECK(end.server == success(1));
      exchange(conn);
    }
}

TEST_CASE(
    "a server with client_auth required rejects a client without a certificate with certificate_error, "
    "and the client fails too") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_with(v, [](Config&, Config& server) {
        server.client_auth = ClientAuth::required;
        server.ca_file = cert_path("ca.pem");
      });
      const HandshakeEnd end = run_handshake(conn);
      CHECK(end.server == failure(errc::certificate_error));
      expect_dead(*conn.server, make_error_code(errc::certificate_error));

      // In TLS 1.3 the client's handshake is over before the server judges its
      // (empty) certificate: the server's alert then surfaces on the next read.
      Outcome client = end.client;
      if (client.ret == 1) {
        std::array<std::byte, 32> buf;
        client = outcome(*conn.client, conn.client->read(buf));
      }
      CHECK(client.ret == -1);
      CHECK_MESSAGE(is_protocol_or_certificate_error(client.error), "client: " << client);
      if (client.ret == -1 && is_protocol_or_certificate_error(client.error)) {
        expect_dead(*conn.client, client.error);
      }
    }
}

// ---- negotiation ---------------------------------------------------------------------

TEST_CASE(
    "ALPN selects the server's first accepted protocol the client offered, and is empty without "
    "overlap") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      SUBCASE("overlap") {
        MemoryConn conn = connect_memory(v, [](Config& client, Config& server) {
          client.alpn = {"h2", "http/1.1"};
          server.alpn = {"http/1.1"};
        });
        CHECK(conn.client->alpn_selected() == "http/1.1");
        CHECK(conn.server->alpn_selected() == "http/1.1");
      }
      SUBCASE("no overlap") {
        MemoryConn conn = connect_memory(v, [](Config& client, Config& server) {
          client.alpn = {"h2"};
          server.alpn = {"http/1.1"};
        });
        CHECK(conn.client->alpn_selected() == "");
        CHECK(conn.server->alpn_selected() == "");
      }
    }
}

TEST_CASE("protocol_version() and cipher() report the negotiated version and an IANA suite of it") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_memory(v);
      CHECK(conn.client->protocol_version() == "");
      CHECK(conn.client->cipher() == "");
      REQUIRE(run_handshake(conn).client == success(1));
      exchange(conn);
      for (Side side : {Side::client, Side::server}) {
        CAPTURE(side_name(side));
        SecureSocket& s = conn.socket(side);
        const std::string cipher = s.cipher();
        CAPTURE(cipher);
        if (v == Version::tls1_2) {
          CHECK(s.protocol_version() == "TLSv1.2");
          // The test PKI is ECDSA: a TLS 1.2 suite names ECDHE key exchange and ECDSA.
          CHECK(cipher.starts_with("TLS_ECDHE_ECDSA_WITH_"));
        } else {
          CHECK(s.protocol_version() == "TLSv1.3");
          const std::set<std::string> tls13_suites = {
              "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
              "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"};
          CHECK(tls13_suites.count(cipher) == 1);
        }
      }
      CHECK(conn.client->cipher() == conn.server->cipher());
    }
}

TEST_CASE(
    "a client with max_version tls1_2 negotiates TLSv1.2 with a server that allows 1.2 to 1.3") {
  MemoryConn conn = connect_memory(Version::tls1_2, [](Config& client, Config& server) {
    client.min_version = Version::tls1_2;
    client.max_version = Version::tls1_2;
    server.min_version = Version::tls1_2;
    server.max_version = Version::tls1_3;
  });
  CHECK(conn.client->protocol_version() == "TLSv1.2");
  CHECK(conn.server->protocol_version() == "TLSv1.2");
}

TEST_CASE(
    "client and server with the default version range negotiate the newest version the backend "
    "has") {
  MemoryConn conn = connect_memory(Version::tls1_2, [](Config& client, Config& server) {
    client.min_version = server.min_version = Config{}.min_version;
    client.max_version = server.max_version = Config{}.max_version;
  });
  const char* newest = supports(Version::tls1_3) ? "TLSv1.3" : "TLSv1.2";
  CHECK(conn.client->protocol_version() == newest);
  CHECK(conn.server->protocol_version() == newest);
  CHECK(conn.client->backend() == backend_under_test());
}

// ---- input validation and declared limits (docs/contract.md, "The same answers outside shutdown") ----

TEST_CASE("a path or a name with a NUL byte is invalid_argument naming the option, never silently cut") {
  using Field = std::string Config::*;
  const std::pair<const char*, Field> fields[] = {
      {"certificate_file", &Config::certificate_file},
      {"private_key_file", &Config::private_key_file},
      {"ca_file", &Config::ca_file},
      {"server_name", &Config::server_name},
  };
  for (const auto& [option, field] : fields) {
    CAPTURE(option);
    Config c = option == std::string_view("server_name") ? default_client() : server_config(any_version);
    // The part before the NUL is a real, valid value: cutting there would succeed.
    c.*field += std::string("\0.bak", 5);
    const CreateFailure f = create_failure(c);
    CHECK_FALSE(f.created);
    CHECK(f.ec == errc::invalid_argument);
    CHECK(contains(f.message, option));
  }
  Config c = default_client();
  c.alpn = {std::string("h2\0x", 4)};
  const CreateFailure f = create_failure(c);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(contains(f.message, "alpn"));
}

TEST_CASE("a Role or Version value out of range is invalid_argument at create, not a failed handshake") {
  Config c = default_client();
  c.role = static_cast<Role>(7);
  CreateFailure f = create_failure(c);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(contains(f.message, "role"));

  c = default_client();
  c.max_version = static_cast<Version>(9);
  f = create_failure(c);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(contains(f.message, "max_version"));

  c = server_config(any_version);
  c.min_version = static_cast<Version>(-1);
  f = create_failure(c);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(contains(f.message, "min_version"));
}

TEST_CASE("a server_name that is not a host name or an IP address is invalid_argument") {
  for (const char* name : {"a b.example", "*.example.test", "host/path", "a..b", "-" "\xff" "x"}) {
    CAPTURE(name);
    Config c = default_client();
    c.server_name = name;
    const CreateFailure f = create_failure(c);
    CHECK(f.ec == errc::invalid_argument);
    CHECK(contains(f.message, "server_name"));
  }
}

TEST_CASE("an ALPN list longer than RFC 7301 allows (65535 bytes) is invalid_argument on every backend") {
  Config c = default_client();
  c.alpn.assign(300, std::string(250, 'p'));  // 300 x 251 bytes on the wire
  const CreateFailure f = create_failure(c);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(contains(f.message, "alpn"));
}

// A Context refused because the backend declared an ALPN limit: unsupported,
// and the message says which limit.
static void expect_declared_alpn_limit(const std::error_code& ec, const std::string& message) {
  CHECK(ec == errc::unsupported);
  CHECK(contains(message, "alpn"));
  CHECK(contains(message, "at most"));
}

TEST_CASE("a long ALPN name is negotiated, or refused at create as unsupported naming the limit") {
  // RFC 7301 allows 255 bytes; a stack with a smaller limit declares it, and
  // the Context is refused before any socket exists (never a nullptr wrap()
  // or a crash later).
  for (std::size_t length : {31u, 32u, 100u, 255u}) {
    CAPTURE(length);
    const std::string name(length, 'x');
    Config cc = client_config(any_version);
    Config sc = server_config(any_version);
    cc.alpn = {name, "http/1.1"};
    sc.alpn = {name};
    std::error_code ec;
    std::string message;
    std::shared_ptr<Context> client_ctx = Context::create(cc, ec, &message);
    if (!client_ctx) {
      expect_declared_alpn_limit(ec, message);
      CHECK(length > 31);  // every backend takes the names HTTP/2 and friends use
      continue;
    }
    std::shared_ptr<Context> server_ctx = Context::create(sc, ec, &message);
    REQUIRE_MESSAGE(server_ctx != nullptr, message);
    MemoryConn conn = connect_memory(client_ctx, server_ctx);
    CHECK(conn.client->alpn_selected() == name);
    CHECK(conn.server->alpn_selected() == name);
  }
}

TEST_CASE("an ALPN name is any bytes: one name on the wire, or refused at create as unsupported naming the limit") {
  // RFC 7301 3.1: a name is opaque bytes. A ',' is where a stack that takes
  // the names as text would split them. (A NUL is invalid_argument on every
  // backend: "a protocol name contains a NUL byte".)
  for (const std::string name : {"h2,http/1.1", "with space"}) {
    CAPTURE(name);
    Config cc = client_config(any_version);
    Config sc = server_config(any_version);
    cc.alpn = {name, "other"};
    sc.alpn = {name};
    std::error_code ec;
    std::string message;
    std::shared_ptr<Context> client_ctx = Context::create(cc, ec, &message);
    std::shared_ptr<Context> server_ctx = client_ctx ? Context::create(sc, ec, &message) : nullptr;
    if (!server_ctx) {
      CHECK(ec == errc::unsupported);
      CHECK_MESSAGE(contains(message, "alpn: a protocol name holding"), message);
      CHECK_MESSAGE(contains(message, "cannot take"), message);
      CHECK(name != "with space");  // only the bytes a stack cannot hold
      continue;
    }
    MemoryConn conn = connect_memory(client_ctx, server_ctx);
    CHECK(conn.client->alpn_selected() == name);
    CHECK(conn.server->alpn_selected() == name);
  }
}

TEST_CASE("wrap() returns a socket for every transport, whatever the configuration") {
  for (std::size_t count : {1u, 8u}) {
    Config c = default_client();
    for (std::size_t i = 0; i < count; ++i) c.alpn.push_back("proto" + std::to_string(i));
    std::error_code ec;
    auto ctx = Context::create(c, ec);
    REQUIRE(ctx != nullptr);
    MemoryPair pair = make_memory_pair();
    CHECK(ctx->wrap(std::move(pair.client)) != nullptr);
  }
}

TEST_CASE("a client's long ALPN list is negotiated, or refused at create as unsupported naming the limit") {
  // 60 names of 250 bytes (15 KiB on the wire): within RFC 7301, beyond
  // what some stacks fit into a ClientHello.
  for (std::size_t count : {20u, 60u, 250u}) {
    CAPTURE(count);
    Config cc = client_config(any_version);
    Config sc = server_config(any_version);
    for (std::size_t i = 0; i < count; ++i) cc.alpn.push_back(std::string(247, 'a') + std::to_string(100 + i));
    sc.alpn = {cc.alpn.back()};
    std::error_code ec;
    std::string message;
    std::shared_ptr<Context> client_ctx = Context::create(cc, ec, &message);
    if (!client_ctx) {
      expect_declared_alpn_limit(ec, message);
      continue;
    }
    // The server side may be another stack's limit; only a client's list is at stake here.
    sc.backend = "openssl";
    if (std::find(available_backends().begin(), available_backends().end(), "openssl") == available_backends().end())
      sc.backend = backend_under_test();
    std::shared_ptr<Context> server_ctx = Context::create(sc, ec, &message);
    if (!server_ctx) {
      CHECK(ec == errc::unsupported);
      continue;
    }
    MemoryConn conn = open_memory(client_ctx, server_ctx);
    REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
    CHECK(conn.client->alpn_selected() == cc.alpn.back());
  }
}
