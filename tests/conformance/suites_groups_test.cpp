// Config::cipher_suites and Config::groups (docs/contract.md, "Cipher suites
// and groups"): the uniform default, the server's preference, and the same
// words for a name that is unknown (every backend) or one a stack cannot do.
#include <iterator>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

struct Created {
  std::error_code ec;
  std::string message;
};

Created create(const Config& config) {
  Created out;
  auto ctx = Context::create(config, out.ec, &out.message);
  CHECK_EQ(ctx == nullptr, static_cast<bool>(out.ec));
  return out;
}

std::shared_ptr<Context> made(const Config& config) {
  std::error_code ec;
  std::string message;
  std::shared_ptr<Context> ctx = Context::create(config, ec, &message);
  REQUIRE_MESSAGE(ctx, message);
  return ctx;
}

std::string library() { return std::string(backend_library_version(backend_under_test())); }

// Both sides agree, and say the same.
void expect_negotiated(MemoryConn& conn, const std::string& cipher, const std::string& group) {
  CHECK(conn.client->cipher() == cipher);
  CHECK(conn.server->cipher() == cipher);
  CHECK(conn.client->group() == group);
  CHECK(conn.server->group() == group);
}

// The test PKI's server certificate is ECDSA P-256 (tests/certs/make_certs.sh).
const char* const tls12_aes128 = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
const char* const tls12_aes256 = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
const char* const tls12_chacha = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";

const char* first_suite(Version v) {
  return v == Version::tls1_3 ? "TLS_AES_128_GCM_SHA256" : tls12_aes128;
}

}  // namespace

TEST_CASE("the default configuration negotiates AES-128-GCM over x25519 on every backend") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = connect_memory(v);
      expect_negotiated(conn, first_suite(v), "x25519");
    }
}

TEST_CASE("group() is empty before the handshake") {
  MemoryConn conn = open_memory(Version::tls1_2);
  CHECK(conn.client->group() == "");
  CHECK(conn.server->group() == "");
}

TEST_CASE("the server's preference decides the suite, whatever the client's order") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = connect_memory(v, [&](Config& client, Config&) {
        client.cipher_suites = {"TLS_CHACHA20_POLY1305_SHA256",
                                "TLS_AES_256_GCM_SHA384",
                                "TLS_AES_128_GCM_SHA256",
                                tls12_chacha,
                                tls12_aes256,
                                tls12_aes128};
      });
      expect_negotiated(conn, first_suite(v), "x25519");
    }
}

TEST_CASE(
    "the server's preference decides the group, even when the client's key share is for another") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      // TLS 1.3: the client's one key share is for secp256r1; the server asks
      // for x25519 (HelloRetryRequest).
      MemoryConn conn = connect_memory(v, [&](Config& client, Config&) {
        client.groups = {"secp256r1", "x25519"};
      });
      expect_negotiated(conn, first_suite(v), "x25519");
    }
}

TEST_CASE("a server restricted to one suite and one group gets them from a default client") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      const std::string suite =
          v == Version::tls1_3 ? "TLS_CHACHA20_POLY1305_SHA256" : tls12_chacha;
      MemoryConn conn = connect_memory(v, [&](Config&, Config& server) {
        server.cipher_suites = {suite};
        server.groups = {"secp384r1"};
      });
      expect_negotiated(conn, suite, "secp384r1");
    }
}

TEST_CASE("names are taken in any case, and cipher() and group() answer with the IANA spelling") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = connect_memory(v, [&](Config& client, Config&) {
        client.cipher_suites = {"tls_aes_256_gcm_sha384",
                                "Tls_Ecdhe_Ecdsa_With_Aes_256_Gcm_Sha384"};
        client.groups = {"SECP256R1"};
      });
      expect_negotiated(conn, v == Version::tls1_3 ? "TLS_AES_256_GCM_SHA384" : tls12_aes256,
                        "secp256r1");
    }
}

TEST_CASE(
    "TLS 1.2: a client whose groups leave out the curve of the server's ECDSA key fails the "
    "handshake") {
  MemoryConn conn =
      open_memory(Version::tls1_2, [&](Config& client, Config&) { client.groups = {"x25519"}; });
  const HandshakeEnd end = run_handshake(conn);
  CHECK(end.client == failure(errc::protocol_error));
  CHECK(end.server == failure(errc::protocol_error));
}

TEST_CASE("no suite in common fails the handshake on both sides") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_memory(v, [&](Config& client, Config& server) {
        client.cipher_suites = {v == Version::tls1_3 ? "TLS_AES_128_GCM_SHA256" : tls12_aes128};
        server.cipher_suites = {v == Version::tls1_3 ? "TLS_AES_256_GCM_SHA384" : tls12_aes256};
      });
      const HandshakeEnd end = run_handshake(conn);
      CHECK(end.client == failure(errc::protocol_error));
      CHECK(end.server == failure(errc::protocol_error));
    }
}

TEST_CASE("a list without TLS 1.3 suites negotiates TLS 1.2; one without TLS 1.2 suites TLS 1.3") {
  Config client = client_config(Version::tls1_2), server = server_config(Version::tls1_2);
  client.max_version = server.max_version = Version::tls1_3;
  SUBCASE("TLS 1.2 suites only") {
    client.cipher_suites = {tls12_aes256};
    MemoryConn conn = connect_memory(made(client), made(server));
    CHECK(conn.client->protocol_version() == "TLSv1.2");
    expect_negotiated(conn, tls12_aes256, "x25519");
  }
  SUBCASE("TLS 1.3 suites only") {
    client.cipher_suites = {"TLS_AES_256_GCM_SHA384"};
    std::error_code ec;
    std::string message;
    auto ctx = Context::create(client, ec, &message);
    if (!supports(Version::tls1_3)) {
      CHECK(ec == errc::unsupported);
      CHECK(message == "cipher_suites: only TLS 1.3 suites, and the " + backend_under_test() +
                           " backend (" + library() + ") has no TLS 1.3");
      return;
    }
    REQUIRE_MESSAGE(ctx, message);
    MemoryConn conn = connect_memory(std::shared_ptr<Context>(std::move(ctx)), made(server));
    CHECK(conn.client->protocol_version() == "TLSv1.3");
    expect_negotiated(conn, "TLS_AES_256_GCM_SHA384", "x25519");
  }
}

TEST_CASE(
    "a server's first group that TLS 1.3 has no code point for (brainpool) counts for TLS 1.2 "
    "only") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      Config client = client_config(v), server = server_config(v);
      client.groups = {"brainpoolP384r1", "secp256r1"};
      server.groups = {"brainpoolP384r1", "secp256r1", "x25519"};
      std::error_code ec;
      std::string message;
      auto ctx = Context::create(client, ec, &message);
      if (backend_under_test() == "gnutls") {  // no brainpool groups (the unsupported case below)
        CHECK(ec == errc::unsupported);
        return;
      }
      REQUIRE_MESSAGE(ctx, message);
      MemoryConn conn = connect_memory(std::shared_ptr<Context>(std::move(ctx)), made(server));
      expect_negotiated(conn, first_suite(v),
                        v == Version::tls1_3 ? "secp256r1" : "brainpoolP384r1");
    }
}

TEST_CASE(
    "groups only TLS 1.2 has (brainpool) are invalid_argument when TLS 1.3 is the only version") {
  if (skip_unless_supported(Version::tls1_3)) return;
  Config c = client_config(Version::tls1_3);
  c.groups = {"brainpoolP256r1"};
  const Created f = create(c);
  CHECK(f.ec == errc::invalid_argument);
  CHECK(f.message ==
        "groups: only TLS 1.2 groups (brainpool), but TLS 1.3 is the only version left");
}

TEST_CASE("a resumed TLS 1.2 handshake has no group; a resumed TLS 1.3 one has its own") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn first = connect_memory(v);
      auto client_ctx = first.client_ctx;
      auto server_ctx = first.server_ctx;
      end_properly(first);
      MemoryConn again = connect_memory(client_ctx, server_ctx);
      REQUIRE(again.client->session_reused());
      const std::string group = v == Version::tls1_3 ? "x25519" : "";
      CHECK(again.client->group() == group);
      CHECK(again.server->group() == group);
    }
}

TEST_CASE(
    "an unknown, empty or repeated name is invalid_argument with the same message on every "
    "backend") {
  struct Row {
    std::vector<std::string> suites, groups;
    std::string message;
  };
  const Row rows[] = {
      {{"TLS_AES_128_GCM_SHA256", "FOO"},
       {},
       "cipher_suites: unknown suite 'FOO' (IANA names such as TLS_AES_128_GCM_SHA256)"},
      {{"ECDHE-ECDSA-AES128-GCM-SHA256"},
       {},
       "cipher_suites: unknown suite 'ECDHE-ECDSA-AES128-GCM-SHA256' (IANA names such as "
       "TLS_AES_128_GCM_SHA256)"},
      {{"TLS_RSA_WITH_AES_128_GCM_SHA256"},
       {},
       "cipher_suites: unknown suite 'TLS_RSA_WITH_AES_128_GCM_SHA256' (IANA names such as "
       "TLS_AES_128_GCM_SHA256)"},
      {{},
       {"x25519", "P-256"},
       "groups: unknown group 'P-256' (IANA names such as x25519, secp256r1)"},
      {{},
       {"ffdhe2048"},
       "groups: unknown group 'ffdhe2048' (IANA names such as x25519, secp256r1)"},
      {{""}, {}, "cipher_suites: an empty name"},
      {{}, {"x25519", ""}, "groups: an empty name"},
      {{"TLS_AES_128_GCM_SHA256", "tls_aes_128_gcm_sha256"},
       {},
       "cipher_suites: 'TLS_AES_128_GCM_SHA256' is listed twice"},
      {{}, {"x25519", "secp256r1", "X25519"}, "groups: 'x25519' is listed twice"},
      {{std::string("TLS_AES\0X", 9)},
       {},
       "cipher_suites: unknown suite 'TLS_AES?X' (IANA names such as TLS_AES_128_GCM_SHA256)"},
  };
  for (Role role : {Role::client, Role::server}) {
    for (const Row& row : rows) {
      CAPTURE(row.message);
      Config c =
          role == Role::client ? client_config(Version::tls1_2) : server_config(Version::tls1_2);
      c.max_version = Version::tls1_3;
      c.cipher_suites = row.suites;
      c.groups = row.groups;
      const Created f = create(c);
      CHECK(f.ec == errc::invalid_argument);
      CHECK(f.message == row.message);
    }
  }
}

TEST_CASE(
    "a list with no suite for the versions allowed is invalid_argument at create, not a handshake "
    "failure") {
  SUBCASE("TLS 1.3 suites, max_version = tls1_2") {
    Config c = client_config(Version::tls1_2);
    c.cipher_suites = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"};
    const Created f = create(c);
    CHECK(f.ec == errc::invalid_argument);
    CHECK(f.message == "cipher_suites: only TLS 1.3 suites, but max_version = tls1_2");
  }
  SUBCASE("TLS 1.2 suites, min_version = tls1_3") {
    Config c = server_config(Version::tls1_3);
    c.cipher_suites = {tls12_aes128};
    const Created f = create(c);
    if (!supports(Version::tls1_3)) {
      // min_version = tls1_3 is what such a stack cannot do, whatever the list.
      CHECK(f.ec == errc::unsupported);
      CHECK(f.message == backend_under_test() + " (" + library() +
                             ") has no TLS 1.3 (min_version = tls1_3); use min_version = tls1_2");
      return;
    }
    CHECK(f.ec == errc::invalid_argument);
    CHECK(f.message == "cipher_suites: only TLS 1.2 suites, but min_version = tls1_3");
  }
}

// What the stacks cannot do, measured (docs/backend-notes.md, "Cipher suites
// and groups"): the table says which backend answers unsupported, and with
// which words; every other backend negotiates the entry.
TEST_CASE(
    "a suite or group the stack cannot do is unsupported at create, naming it and the backend") {
  const std::string backend = backend_under_test();
  SUBCASE("brainpoolP256r1 (TLS 1.2)") {
    Config client = client_config(Version::tls1_2), server = server_config(Version::tls1_2);
    // secp256r1 too: in TLS 1.2 the curve of the server's ECDSA key must be
    // one the client lists (RFC 8422 5.1).
    client.groups = server.groups = {"brainpoolP256r1", "secp256r1"};
    const Created f = create(client);
    if (backend == "gnutls") {
      CHECK(f.ec == errc::unsupported);
      CHECK(f.message == "groups: brainpoolP256r1 is not available in the gnutls backend (" +
                             library() + "): GnuTLS has no such group for TLS");
      return;
    }
    REQUIRE_MESSAGE(!f.ec, f.message);
    MemoryConn conn = connect_memory(made(client), made(server));
    expect_negotiated(conn, tls12_aes128, "brainpoolP256r1");
  }
  SUBCASE("a TLS 1.2 list that is not every pairing of its key exchanges and ciphers") {
    Config client = client_config(Version::tls1_2), server = server_config(Version::tls1_2);
    client.cipher_suites =
        server.cipher_suites = {tls12_aes256, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"};
    const Created f = create(client);
    if (backend == "gnutls") {
      CHECK(f.ec == errc::unsupported);
      CHECK(f.message ==
            "cipher_suites: the gnutls backend (" + library() +
                ") cannot offer this list as it is: GnuTLS offers every pairing of the key "
                "exchanges, ciphers and MACs it is given, in one order, and would offer "
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
      return;
    }
    REQUIRE_MESSAGE(!f.ec, f.message);
    MemoryConn conn = connect_memory(made(client), made(server));
    expect_negotiated(conn, tls12_aes256, "x25519");
  }
}

TEST_CASE(
    "every suite of the table an ECDSA server can use is negotiated when both sides list only it") {
  const char* const tls13[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                               "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
                               "TLS_AES_128_CCM_8_SHA256"};
  const char* const tls12[] = {tls12_aes128,
                               tls12_aes256,
                               tls12_chacha,
                               "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
                               "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
                               "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
                               "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
                               "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
                               "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
                               "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
                               "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"};
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      const auto& suites = v == Version::tls1_3
                               ? std::vector<std::string>(std::begin(tls13), std::end(tls13))
                               : std::vector<std::string>(std::begin(tls12), std::end(tls12));
      for (const std::string& suite : suites) {
        CAPTURE(suite);
        // A suite the stack lacks (wolfSSL 5.5 has no ECDHE_ECDSA_WITH_AES_256_CCM)
        // is unsupported at create, naming it: skipped.
        Config probe = client_config(v);
        probe.cipher_suites = {suite};
        if (const Created f = create(probe); f.ec == errc::unsupported) {
          CHECK_MESSAGE(f.message.starts_with("cipher_suites: " + suite + " is not available in the " +
                                              backend_under_test() + " backend"),
                        f.message);
          skip(f.message);
          continue;
        }
        MemoryConn conn = connect_memory(v, [&](Config& client, Config& server) {
          client.cipher_suites = server.cipher_suites = {suite};
        });
        expect_negotiated(conn, suite, "x25519");
      }
    }
}

TEST_CASE(
    "every group of the table is negotiated when both sides list it first, where the stack has "
    "it") {
  const char* const groups[] = {"x25519", "secp256r1",       "secp384r1",       "secp521r1",
                                "x448",   "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"};
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      for (const std::string group : groups) {
        CAPTURE(group);
        const bool brainpool = group.starts_with("brainpool");
        Config client = client_config(v), server = server_config(v);
        // secp256r1 second: the curve of the test PKI's key (RFC 8422 5.1, TLS 1.2).
        client.groups = server.groups = {group};
        if (group != "secp256r1")
          client.groups.push_back("secp256r1"), server.groups.push_back("secp256r1");
        const Created f = create(client);
        if (brainpool && backend_under_test() == "gnutls") {
          CHECK(f.ec == errc::unsupported);
          CHECK(f.message == "groups: " + group + " is not available in the gnutls backend (" +
                                 library() + "): GnuTLS has no such group for TLS");
          continue;
        }
        REQUIRE_MESSAGE(!f.ec, f.message);
        MemoryConn conn = connect_memory(made(client), made(server));
        // TLS 1.3 has no code point for these brainpool groups: secp256r1.
        expect_negotiated(conn, first_suite(v),
                          brainpool && v == Version::tls1_3 ? "secp256r1" : group);
      }
    }
}
