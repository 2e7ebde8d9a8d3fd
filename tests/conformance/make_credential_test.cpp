// make_credential (docs/contract.md, "Making credentials"): a CA, a server
// and a client certificate made in-process with the backend under test's
// crypto serve TLS on every compiled-in backend, in both directions, and
// read back as the request said. Bad requests and issuers are
// invalid_argument naming what is wrong.
#include <optional>
#include <string>

#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

Credential must_make(const CertificateRequest& request, const Credential* issuer) {
  std::error_code ec;
  std::string message;
  std::optional<Credential> made = make_credential(request, issuer, ec, &message, backend_under_test());
  INFO(message);
  REQUIRE(made.has_value());
  CHECK_FALSE(ec);
  CHECK(made->certificate_pem.rfind("-----BEGIN CERTIFICATE-----\n", 0) == 0);
  CHECK(made->private_key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
  return *made;
}

struct Pki {
  Credential ca, server, client;
};

Pki make_pki() {
  Pki pki;
  pki.ca = must_make({.common_name = "made CA", .is_ca = true}, nullptr);
  pki.server = must_make({.common_name = "made server", .dns_names = {"localhost", "*.example.test"},
                          .ip_addresses = {"127.0.0.1", "::1"}},
                         &pki.ca);
  pki.client = must_make({.common_name = "made client"}, &pki.ca);
  return pki;
}

std::string failure_of(const CertificateRequest& request, const Credential* issuer, errc expected) {
  std::error_code ec;
  std::string message;
  const auto made = make_credential(request, issuer, ec, &message, backend_under_test());
  CHECK_FALSE(made.has_value());
  CHECK(ec == expected);
  return message;
}

}  // namespace

TEST_CASE("credentials made in-process serve mutual TLS with every backend, both ways") {
  const Pki pki = make_pki();
  for (std::string_view other : available_backends()) {
    for (Version v : all_versions) {
      for (bool made_side_is_server : {true, false}) {
        Config client = client_config(v), server = server_config(v);
        (made_side_is_server ? client : server).backend = std::string(other);
        CAPTURE(other);
        CAPTURE(version_name(v));
        CAPTURE(made_side_is_server);
        client.ca_file.clear();
        client.ca_pem = pki.ca.certificate_pem;
        client.certificate_pem = pki.client.certificate_pem;
        client.private_key_pem = pki.client.private_key_pem;
        server.ca_file.clear();
        server.ca_pem = pki.ca.certificate_pem;
        server.certificate_file.clear();
        server.private_key_file.clear();
        server.certificate_pem = pki.server.certificate_pem;
        server.private_key_pem = pki.server.private_key_pem;
        server.client_auth = ClientAuth::required;
        // (A pair where one side has no TLS 1.3 is left out: unsupported.)
        std::error_code client_ec, server_ec;
        std::shared_ptr<Context> client_ctx = Context::create(client, client_ec);
        std::shared_ptr<Context> server_ctx = Context::create(server, server_ec);
        if (client_ec == errc::unsupported || server_ec == errc::unsupported) continue;
        REQUIRE(client_ctx);
        REQUIRE(server_ctx);
        MemoryConn conn = connect_memory(client_ctx, server_ctx);
        const auto server_leaf = conn.client->peer_certificate();
        const auto client_leaf = conn.server->peer_certificate();
        REQUIRE(server_leaf.has_value());
        REQUIRE(client_leaf.has_value());
        CHECK(server_leaf->subject == "CN=made server");
        CHECK(server_leaf->issuer == "CN=made CA");
        CHECK(server_leaf->dns_names == std::vector<std::string>{"localhost", "*.example.test"});
        CHECK(server_leaf->ip_addresses == std::vector<std::string>{"127.0.0.1", "::1"});
        CHECK(client_leaf->subject == "CN=made client");
        CHECK(conn.client->verification_error().empty());
        exchange(conn);
      }
    }
  }
}

TEST_CASE("a self-signed credential made in-process is its own trust anchor; a name it lacks is rejected") {
  const Credential self = must_make({.common_name = "self", .dns_names = {"device.local"}}, nullptr);
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Config client = client_config(v), server = server_config(v);
    client.ca_file.clear();
    client.ca_pem = self.certificate_pem;
    client.server_name = "device.local";
    server.certificate_file.clear();
    server.private_key_file.clear();
    server.certificate_pem = self.certificate_pem;
    server.private_key_pem = self.private_key_pem;
    MemoryConn conn = connect_memory(must_create(client), must_create(server));
    CHECK(conn.client->peer_certificate()->subject == "CN=self");
    client.server_name = "localhost";
    MemoryConn wrong = open_memory(must_create(client), must_create(server));
    CHECK(run_handshake(wrong).client == failure(errc::certificate_error));
  }
}

TEST_CASE("make_credential refuses bad requests and issuers, naming what is wrong") {
  const Pki pki = make_pki();
  CHECK(failure_of({.common_name = ""}, nullptr, errc::invalid_argument) ==
        "common_name: 1 to 64 bytes of UTF-8 without NUL");
  CHECK(failure_of({.common_name = std::string(65, 'a')}, nullptr, errc::invalid_argument) ==
        "common_name: 1 to 64 bytes of UTF-8 without NUL");
  CHECK(failure_of({.common_name = "x", .dns_names = {"a b"}}, nullptr, errc::invalid_argument) ==
        "dns_names: 'a b' is not a host name");
  CHECK(failure_of({.common_name = "x", .dns_names = {"127.0.0.1"}}, nullptr, errc::invalid_argument) ==
        "dns_names: '127.0.0.1' is not a host name");
  CHECK(failure_of({.common_name = "x", .ip_addresses = {"localhost"}}, nullptr, errc::invalid_argument) ==
        "ip_addresses: 'localhost' is not an IPv4 or IPv6 address");
  CHECK(failure_of({.common_name = "x", .valid_for = std::chrono::seconds(1)}, nullptr, errc::invalid_argument) ==
        "valid_for: from one minute to 100 years");
  // A leaf is no issuer; an issuer's key must be its own.
  CHECK(failure_of({.common_name = "x"}, &pki.server, errc::invalid_argument) ==
        "issuer: certificate_pem is not a CA certificate");
  Credential mismatched = pki.ca;
  mismatched.private_key_pem = pki.client.private_key_pem;
  CHECK(failure_of({.common_name = "x"}, &mismatched, errc::invalid_argument) ==
        "issuer: private_key_pem does not match its certificate_pem");
  Credential garbage = pki.ca;
  garbage.private_key_pem = "not a key";
  CHECK(failure_of({.common_name = "x"}, &garbage, errc::invalid_argument).rfind("issuer: private_key_pem is not", 0) ==
        0);
  // An unknown backend.
  std::error_code ec;
  std::string message;
  CHECK_FALSE(make_credential({.common_name = "x"}, nullptr, ec, &message, "no-such-backend").has_value());
  CHECK(ec == errc::invalid_argument);
  CHECK(message == "backend 'no-such-backend' is not compiled in");
}

TEST_CASE("two credentials made in-process have different keys and serials") {
  const Credential a = must_make({.common_name = "same"}, nullptr);
  const Credential b = must_make({.common_name = "same"}, nullptr);
  CHECK(a.private_key_pem != b.private_key_pem);
  CHECK(a.certificate_pem != b.certificate_pem);
}
