// verification_error() (docs/contract.md, "Verification"): after a handshake
// that failed with certificate_error, the side that rejected the peer's
// certificate says why, in the same words on every backend, and
// peer_certificate() / peer_chain() give what the rejected peer sent; the
// other side, and every connection whose certificate was accepted or not
// verified, says "". The rows are those of the certificate zoo
// (certificate_test.cpp, tests/certs/make_certs.sh): one or more per reason
// (untrusted issuer, expired, not yet valid, name, purpose, no certificate).
// Both sides run the backend under test, over the in-memory pair.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

struct Row {
  std::string_view name;
  bool judging_server;            // true: the client verifies the server; false: the server (client_auth required) the client
  std::string_view cert;          // the judged side's certificate ("" none; the key is <name>.key)
  std::string_view ca = "";       // the verifying side's ca_file; "" = ca.pem
  std::string_view server_name = "";  // the client's; "" = "localhost"
  std::string_view error;         // verification_error() of the verifying side ("" accepted)
  std::string_view subject = "";  // the rejected leaf's subject (peer_certificate())
};

// clang-format off
const Row rows[] = {
  // ---- a client verifies the server ----
  {.name = "an accepted certificate", .judging_server = true, .cert = "server.pem", .error = ""},
  {.name = "a leaf signed by a CA the client does not trust", .judging_server = true, .cert = "untrusted.pem",
   .error = "certificate not trusted (issuer CN=unitls untrusted CA)", .subject = "CN=localhost"},
  {.name = "a leaf signed by an intermediate CA, sent without it", .judging_server = true,
   .cert = "intermediate_leaf.pem",
   .error = "certificate not trusted (issuer CN=unitls intermediate CA)", .subject = "CN=localhost"},
  {.name = "a leaf whose issuer is not a CA, sent with that issuer", .judging_server = true,
   .cert = "not_a_ca_chain.pem",
   .error = "certificate not trusted (issuer CN=unitls not a CA)", .subject = "CN=localhost"},
  {.name = "a self-signed leaf the client does not trust", .judging_server = true, .cert = "self_signed.pem",
   .error = "certificate not trusted (issuer CN=localhost)", .subject = "CN=localhost"},
  {.name = "an expired leaf", .judging_server = true, .cert = "expired.pem",
   .error = "certificate expired", .subject = "CN=localhost"},
  {.name = "a leaf not valid yet", .judging_server = true, .cert = "not_yet_valid.pem",
   .error = "certificate not yet valid", .subject = "CN=localhost"},
  {.name = "a leaf for another name", .judging_server = true, .cert = "wrong_name.pem",
   .error = "certificate names DNS:wrong.example, not localhost", .subject = "CN=wrong.example"},
  {.name = "a leaf with a DNS name and an IP address, and another name", .judging_server = true,
   .cert = "server.pem", .server_name = "example.com",
   .error = "certificate names DNS:localhost, IP:127.0.0.1, not example.com", .subject = "CN=localhost"},
  {.name = "a wildcard and two labels in its place", .judging_server = true, .cert = "wildcard.pem",
   .server_name = "a.b.example.test",
   .error = "certificate names DNS:*.example.test, not a.b.example.test", .subject = "CN=wildcard"},
  {.name = "an IPv6 server_name and a leaf without that address", .judging_server = true,
   .cert = "server.pem", .server_name = "::1",
   .error = "certificate names DNS:localhost, IP:127.0.0.1, not ::1", .subject = "CN=localhost"},
  // The CN counts for a host name when there is no dNSName (RFC 6125 6.4.4).
  {.name = "a DNS server_name and a leaf with iPAddress entries only", .judging_server = true,
   .cert = "ip_only.pem", .error = "certificate names IP:127.0.0.1, IP:::1, CN:ip only, not localhost",
   .subject = "CN=ip only"},
  {.name = "a leaf whose CN is the name but whose dNSName entry is not", .judging_server = true,
   .cert = "mixed_case.pem", .server_name = "mixed",
   .error = "certificate names DNS:MiXeD.Example.TEST, not mixed", .subject = "CN=mixed"},
  {.name = "a leaf without subjectAltName, whose CN is another name", .judging_server = true,
   .cert = "cn_only.pem", .server_name = "other.test",
   .error = "certificate names CN:localhost, not other.test", .subject = "CN=localhost"},

  // A control byte in a name is shown as \xHH: the text must not end at a NUL.
  {.name = "a leaf whose dNSName has a NUL in it", .judging_server = true, .cert = "nul_san.pem",
   .error = "certificate names DNS:localhost\\x00evil, not localhost", .subject = "CN=localhost"},

  // ---- a server verifies its client ----
  {.name = "an accepted client certificate", .judging_server = false, .cert = "client.pem", .error = ""},
  {.name = "a client that sends no certificate", .judging_server = false, .cert = "",
   .error = "no certificate"},
  {.name = "a client leaf signed by a CA the server does not trust", .judging_server = false,
   .cert = "untrusted_client.pem", .error = "certificate not trusted (issuer CN=unitls untrusted CA)",
   .subject = "CN=unitls untrusted client"},
  {.name = "a client leaf signed by the CA when the server trusts another CA", .judging_server = false,
   .cert = "client.pem", .ca = "other_ca.pem", .error = "certificate not trusted (issuer CN=unitls test CA)",
   .subject = "CN=unitls test client"},
  {.name = "an expired client leaf", .judging_server = false, .cert = "expired.pem",
   .error = "certificate expired", .subject = "CN=localhost"},
  {.name = "a client leaf not valid yet", .judging_server = false, .cert = "not_yet_valid.pem",
   .error = "certificate not yet valid", .subject = "CN=localhost"},
  {.name = "a client leaf with EKU serverAuth only", .judging_server = false, .cert = "eku_server_only.pem",
   .error = "certificate not for a TLS client (extendedKeyUsage)", .subject = "CN=localhost"},
  {.name = "a client leaf with EKU anyExtendedKeyUsage only", .judging_server = false, .cert = "eku_any.pem",
   .error = "certificate not for a TLS client (extendedKeyUsage)", .subject = "CN=localhost"},
};
// clang-format on

std::string key_of(std::string_view cert) {
  if (cert == "not_a_ca_chain.pem") return "not_a_ca_leaf.key";
  std::string key(cert);
  key.replace(key.size() - 4, 4, ".key");
  return key;
}

void run_row(const Row& row, Version v) {
  Config client = client_config(v);
  Config server = server_config(v);
  Config& judged = row.judging_server ? server : client;
  Config& verifying = row.judging_server ? client : server;
  if (!row.judging_server) server.client_auth = ClientAuth::required;
  if (row.cert.empty()) {
    judged.certificate_file.clear();
    judged.private_key_file.clear();
  } else {
    judged.certificate_file = cert_path(row.cert);
    judged.private_key_file = cert_path(key_of(row.cert));
  }
  if (!row.ca.empty()) verifying.ca_file = cert_path(row.ca);
  if (!row.server_name.empty()) client.server_name = std::string(row.server_name);
  MemoryConn conn = open_memory(must_create(client), must_create(server));
  const HandshakeEnd ends = run_handshake(conn);
  const Side verifier = row.judging_server ? Side::client : Side::server;
  SecureSocket& s = conn.socket(verifier);
  SecureSocket& other = conn.socket(peer_of(verifier));
  INFO(handshake_state(conn));

  if (row.error.empty()) {
    CHECK(ends.of(verifier) == success(1));
    CHECK(s.verification_error().empty());
    CHECK(other.verification_error().empty());
    return;
  }
  REQUIRE(ends.of(verifier) == failure(errc::certificate_error));
  CHECK(s.verification_error() == row.error);
  // Asked again, and after a later call on the dead connection: the same.
  (void)s.write("data");
  CHECK(s.verification_error() == row.error);
  // The judged side did not verify anything that failed.
  CHECK(other.verification_error().empty());
  // What the rejected peer sent, for diagnostics.
  const std::optional<Certificate> leaf = s.peer_certificate();
  if (row.subject.empty()) {
    CHECK_FALSE(leaf.has_value());
    CHECK(s.peer_chain().empty());
  } else {
    REQUIRE(leaf.has_value());
    CHECK(leaf->subject == row.subject);
    REQUIRE_FALSE(s.peer_chain().empty());
    CHECK(s.peer_chain().front() == *leaf);
  }
}

}  // namespace

TEST_CASE(
    "a side that rejects the peer's certificate gives the same verification_error() on every "
    "backend, and the certificates the peer sent") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      for (const Row& row : rows) {
        SUBCASE(std::string(row.name).c_str()) { run_row(row, v); }
      }
    }
}

TEST_CASE("a client that does not verify has no verification_error(), whatever the certificate") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = connect_memory(v, [](Config& client, Config& server) {
        client.verify_peer = false;
        server.certificate_file = cert_path("untrusted.pem");
        server.private_key_file = cert_path("untrusted.key");
      });
      CHECK(conn.client->verification_error().empty());
      CHECK(conn.client->peer_certificate().has_value());
    }
}

TEST_CASE("before and during the handshake there is no verification_error()") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      MemoryConn conn = open_memory(v);
      CHECK(conn.client->verification_error().empty());
      CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
      CHECK(conn.client->verification_error().empty());
    }
}
