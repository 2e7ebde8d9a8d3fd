// The verification rules the core applies for every backend (src/verify.hpp)
// and the X.509 facts it reads (src/x509.hpp): no backend involved.
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "doctest.hpp"
#include "verify.hpp"
#include "x509.hpp"

using namespace unitls;
using namespace unitls::detail;

namespace {

CertificateFacts dns(std::initializer_list<const char*> names, const char* cn = "") {
  CertificateFacts f;
  for (const char* n : names) f.dns_names.emplace_back(n);
  f.has_subject_alt_name = names.size() > 0;
  f.common_name = cn;
  return f;
}

std::string read_cert_file(const std::string& name) {
  const char* dir = std::getenv("UNITLS_TEST_CERTS");
  REQUIRE_MESSAGE(dir != nullptr, "UNITLS_TEST_CERTS is not set (run through meson test)");
  std::ifstream in(std::string(dir) + "/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::byte> der_of(const std::string& file) {
  auto blocks = parse_pem(read_cert_file(file));
  REQUIRE(blocks.has_value());
  REQUIRE_FALSE(blocks->empty());
  return (*blocks)[0].der;
}

// The facts of a file's first certificate. Their views (subject, issuer,
// key identifiers) point into the DER, so it is kept for the whole run.
CertificateFacts facts_of(const std::string& file) {
  static std::vector<std::unique_ptr<std::vector<std::byte>>> kept;
  kept.push_back(std::make_unique<std::vector<std::byte>>(der_of(file)));
  auto facts = parse_certificate(*kept.back());
  REQUIRE(facts.has_value());
  return *facts;
}

}  // namespace

TEST_CASE("a DNS name matches a dNSName entry without regard to case or a trailing dot") {
  CHECK(name_matches(dns({"localhost"}), "localhost"));
  CHECK(name_matches(dns({"LocalHost"}), "localhost"));
  CHECK(name_matches(dns({"localhost"}), "LOCALHOST."));
  CHECK(name_matches(dns({"other.test", "www.example.test"}), "www.example.test"));
  CHECK_FALSE(name_matches(dns({"example.test"}), "www.example.test"));
  CHECK_FALSE(name_matches(dns({"www.example.test"}), "example.test"));
}

TEST_CASE("a wildcard matches exactly one leftmost label, and never right above a single label") {
  const CertificateFacts wild = dns({"*.example.test"});
  CHECK(name_matches(wild, "a.example.test"));
  CHECK_FALSE(name_matches(wild, "example.test"));
  CHECK_FALSE(name_matches(wild, "a.b.example.test"));
  CHECK_FALSE(name_matches(wild, ".example.test"));
  CHECK_FALSE(name_matches(dns({"*.localhost"}), "a.localhost"));
  CHECK_FALSE(name_matches(dns({"*.test"}), "example.test"));
  CHECK_FALSE(name_matches(dns({"a*.example.test"}), "ab.example.test"));
  CHECK_FALSE(name_matches(dns({"a.*.example.test"}), "a.b.example.test"));
  CHECK_FALSE(name_matches(dns({"*"}), "localhost"));
}

TEST_CASE("an IP address matches only iPAddress entries, byte for byte") {
  CertificateFacts f = dns({"127.0.0.1"}, "127.0.0.1");
  CHECK_FALSE(name_matches(f, "127.0.0.1"));
  f.ip_addresses.push_back({127, 0, 0, 1});
  CHECK(name_matches(f, "127.0.0.1"));
  CHECK_FALSE(name_matches(f, "127.0.0.2"));
  CHECK_FALSE(name_matches(f, "::1"));
  f.ip_addresses.push_back({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  CHECK(name_matches(f, "::1"));
  CHECK(name_matches(f, "0:0::1"));
}

TEST_CASE("the subject's CN counts only when the certificate has no dNSName entry") {
  CHECK(name_matches(dns({}, "localhost"), "localhost"));
  CHECK_FALSE(name_matches(dns({"other.test"}, "localhost"), "localhost"));
  CertificateFacts ip_only = dns({}, "localhost");
  ip_only.ip_addresses.push_back({127, 0, 0, 1});
  ip_only.has_subject_alt_name = true;
  CHECK(name_matches(ip_only, "localhost"));
  CHECK_FALSE(name_matches(dns({}, ""), "localhost"));
}

TEST_CASE("extendedKeyUsage limits a certificate to the purposes it lists") {
  CertificateFacts f;
  CHECK(purpose_allows(f, Role::server));
  CHECK(purpose_allows(f, Role::client));
  f.has_eku = true;  // e.g. anyExtendedKeyUsage alone
  CHECK_FALSE(purpose_allows(f, Role::server));
  CHECK_FALSE(purpose_allows(f, Role::client));
  f.eku_server = true;
  CHECK(purpose_allows(f, Role::server));
  CHECK_FALSE(purpose_allows(f, Role::client));
}

TEST_CASE("server_name must be an IP literal or a host name") {
  for (const char* ok : {"", "localhost", "a.example.test", "localhost.", "x-y_z.test", "127.0.0.1", "::1"})
    CHECK_MESSAGE(valid_server_name(ok), ok);
  for (const char* bad : {"a b", "*.example.test", "a..b", ".", "host/path", "ä.test", "a\tb"})
    CHECK_FALSE_MESSAGE(valid_server_name(bad), bad);
  CHECK_FALSE(valid_server_name(std::string(64, 'a') + ".test"));
  CHECK_FALSE(valid_server_name(std::string(300, 'a')));
}

TEST_CASE("parse_pem splits a file into blocks and refuses damaged ones") {
  auto two = parse_pem("junk before\n-----BEGIN A-----\nQUJD\n-----END A-----\ntext\n-----BEGIN B-----\nREVG\n-----END B-----\n");
  REQUIRE(two.has_value());
  REQUIRE(two->size() == 2);
  CHECK((*two)[0].label == "A");
  CHECK((*two)[0].der.size() == 3);
  CHECK((*two)[1].label == "B");
  CHECK(parse_pem("no blocks at all")->empty());
  CHECK_FALSE(parse_pem("-----BEGIN A-----\nQUJD\n").has_value());             // no END
  CHECK_FALSE(parse_pem("-----BEGIN A-----\nQU*D\n-----END A-----\n").has_value());  // not base64
  auto encrypted = parse_pem("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nQUJD\n-----END EC PRIVATE KEY-----\n");
  REQUIRE(encrypted.has_value());
  CHECK((*encrypted)[0].encrypted);
}

TEST_CASE("parse_certificate reads names, key usage and CA flags of the test PKI") {
  const CertificateFacts server = facts_of("server.pem");
  CHECK(server.dns_names == std::vector<std::string>{"localhost"});
  REQUIRE(server.ip_addresses.size() == 1);
  CHECK(server.ip_addresses[0] == std::vector<std::uint8_t>{127, 0, 0, 1});
  CHECK(server.common_name == "localhost");
  CHECK(server.has_eku);
  CHECK(server.eku_server);
  CHECK_FALSE(server.eku_client);
  CHECK_FALSE(server.is_ca);
  CHECK_FALSE(server.self_issued);

  const CertificateFacts ca = facts_of("ca.pem");
  CHECK(ca.is_ca);
  CHECK(ca.self_issued);
  CHECK_FALSE(ca.has_eku);

  const CertificateFacts client = facts_of("client.pem");
  CHECK(client.eku_client);
  CHECK_FALSE(client.eku_server);
}

TEST_CASE("check_peer_leaf judges the purpose first, then the name a client asked for") {
  CHECK(check_peer_leaf(der_of("server.pem"), Role::client, "localhost") == PeerVerdict::ok);
  CHECK(check_peer_leaf(der_of("server.pem"), Role::client, "127.0.0.1") == PeerVerdict::ok);
  CHECK(check_peer_leaf(der_of("server.pem"), Role::client, "other.test") == PeerVerdict::name_mismatch);
  CHECK(check_peer_leaf(der_of("client.pem"), Role::client, "client.test") == PeerVerdict::wrong_purpose);
  CHECK(check_peer_leaf(der_of("client.pem"), Role::server, "") == PeerVerdict::ok);
  CHECK(check_peer_leaf(der_of("server.pem"), Role::server, "") == PeerVerdict::wrong_purpose);
  const std::byte junk[] = {std::byte{0x30}, std::byte{0x03}, std::byte{0x02}, std::byte{0x01}};
  CHECK(check_peer_leaf(junk, Role::client, "localhost") == PeerVerdict::unparsable);
}
