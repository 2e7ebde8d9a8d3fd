// Every backend against every other (issue 12, item 5): the same peer
// negotiates the same suite and group whichever backend runs either side
// (docs/contract.md, "Cipher suites and groups"). In-memory pairs; each pair
// on each version both stacks have (mbedTLS 2.28: TLS 1.2 only).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

std::shared_ptr<Context> made(Config c) {
  std::error_code ec;
  std::string message;
  std::shared_ptr<Context> ctx = Context::create(c, ec, &message);
  REQUIRE_MESSAGE(ctx, c.backend << ": " << message);
  return ctx;
}

bool has(std::string_view backend, Version v) {
  Config c = client_config(v);
  c.backend = std::string(backend);
  std::error_code ec;
  std::string message;
  return Context::create(c, ec, &message) != nullptr;
}

struct Expected {
  std::string tls13_suite, tls12_suite, group;
};

// For every client backend x server backend x version both have: the
// contexts from tweak(client, server), a handshake, and what both sides say.
void for_every_pair(const std::function<void(Config&, Config&)>& tweak, const Expected& expected) {
  for (std::string_view c : available_backends()) {
    for (std::string_view s : available_backends()) {
      for (Version v : all_versions) {
        if (!has(c, v) || !has(s, v)) continue;
        CAPTURE(c);
        CAPTURE(s);
        CAPTURE(version_name(v));
        Config client = client_config(v), server = server_config(v);
        client.backend = std::string(c);
        server.backend = std::string(s);
        tweak(client, server);
        MemoryConn conn = connect_memory(made(client), made(server));
        const std::string suite =
            v == Version::tls1_3 ? expected.tls13_suite : expected.tls12_suite;
        CHECK(conn.client->cipher() == suite);
        CHECK(conn.server->cipher() == suite);
        CHECK(conn.client->group() == expected.group);
        CHECK(conn.server->group() == expected.group);
      }
    }
  }
}

}  // namespace

TEST_CASE("every pair of backends negotiates the uniform default's first suite over x25519") {
  for_every_pair([](Config&, Config&) {},
                 {"TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "x25519"});
}

TEST_CASE("on every pair of backends the server's order wins over the client's") {
  for_every_pair(
      [](Config& client, Config&) {
        client.cipher_suites = {"TLS_CHACHA20_POLY1305_SHA256",
                                "TLS_AES_256_GCM_SHA384",
                                "TLS_AES_128_GCM_SHA256",
                                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"};
        client.groups = {"secp384r1", "secp256r1", "x25519"};
      },
      {"TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "x25519"});
}

TEST_CASE("on every pair of backends a restricted server gets what it is restricted to") {
  for_every_pair(
      [](Config&, Config& server) {
        server.cipher_suites = {"TLS_AES_256_GCM_SHA384",
                                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"};
        server.groups = {"secp384r1", "secp256r1"};
      },
      {"TLS_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "secp384r1"});
}
