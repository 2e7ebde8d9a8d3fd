// The suite and group table and select_suites (src/suites.hpp): no backend.
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "doctest.hpp"
#include "suites.hpp"
#include "x509.hpp"

using namespace unitls;
using namespace unitls::detail;

TEST_CASE(
    "every suite and group has one code point and one name, and the defaults are in the table") {
  std::set<std::uint16_t> codes;
  std::set<std::string> names;
  for (const auto& s : suite_table()) {
    CHECK(codes.insert(s.code).second);
    CHECK(names.insert(std::string(s.name)).second);
    CHECK(s.name.starts_with("TLS_"));
    CHECK((s.version == Version::tls1_3) == (s.code >> 8 == 0x13));
    CHECK((s.version == Version::tls1_3) == (s.kx == KeyExchange::any));
  }
  for (const auto& g : group_table()) CHECK(find_group(g.code) == &g);
  for (auto code : default_suites()) CHECK(find_suite(code) != nullptr);
  for (auto code : default_groups()) CHECK(find_group(code) != nullptr);
  CHECK(find_suite("tls_aes_128_gcm_sha256") == find_suite(std::uint16_t{0x1301}));
  CHECK(find_group("X25519")->code == 29);
}

TEST_CASE(
    "select_suites keeps the suites of the versions allowed, in order, and narrows the versions") {
  Config c;
  Selection sel;
  std::string message;
  bool unsupported = true;
  SUBCASE("the default on a stack with TLS 1.3") {
    REQUIRE(select_suites(c, true, "x", sel, message, unsupported));
    CHECK(sel.suites.size() == default_suites().size());
    CHECK(sel.suites.front()->code == 0x1301);
    CHECK(sel.groups.front()->name == "x25519");
    CHECK(sel.min_version == Version::tls1_2);
    CHECK(sel.max_version == Version::tls1_3);
  }
  SUBCASE("the default on a stack without TLS 1.3: its TLS 1.2 suites") {
    REQUIRE(select_suites(c, false, "x", sel, message, unsupported));
    CHECK(sel.suites.size() == 6);
    CHECK(sel.suites.front()->code == 0xC02B);
    CHECK(sel.max_version == Version::tls1_2);
  }
  SUBCASE("TLS 1.3 suites only: TLS 1.3 only") {
    c.cipher_suites = {"TLS_AES_256_GCM_SHA384"};
    REQUIRE(select_suites(c, true, "x", sel, message, unsupported));
    CHECK(sel.min_version == Version::tls1_3);
    REQUIRE_FALSE(select_suites(c, false, "x", sel, message, unsupported));
    CHECK(unsupported);
  }
  SUBCASE("TLS 1.2 suites only: TLS 1.2 only") {
    c.cipher_suites = {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                       "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"};
    REQUIRE(select_suites(c, true, "x", sel, message, unsupported));
    CHECK(sel.max_version == Version::tls1_2);
    CHECK(sel.suites[0]->code == 0xC013);
    CHECK(sel.suites[1]->code == 0xC02F);
  }
  SUBCASE("only TLS 1.2 groups: TLS 1.2 only, or nothing left") {
    c.groups = {"brainpoolP256r1"};
    REQUIRE(select_suites(c, true, "x", sel, message, unsupported));
    CHECK(sel.max_version == Version::tls1_2);
    c.min_version = Version::tls1_3;
    CHECK_FALSE(select_suites(c, true, "x", sel, message, unsupported));
    CHECK_FALSE(unsupported);
  }
}

TEST_CASE(
    "ec_curve_of reads the named curve of an EC key; server_key_allowed holds a server to the "
    "groups") {
  const char* dir = std::getenv("UNITLS_TEST_CERTS");
  REQUIRE_MESSAGE(dir != nullptr, "UNITLS_TEST_CERTS is not set (run through meson test)");
  std::ifstream in(std::string(dir) + "/server.pem");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto blocks = parse_pem(text);
  REQUIRE(blocks.has_value());
  REQUIRE_FALSE(blocks->empty());
  const std::span<const std::byte> der((*blocks)[0].der);
  CHECK(ec_curve_of(der) == 23);  // the test PKI is ECDSA P-256
  const std::uint16_t p256[] = {29, 23}, x25519[] = {29};
  CHECK(server_key_allowed(der, p256));
  CHECK_FALSE(server_key_allowed(der, x25519));
  // Not a certificate: not this rule's business.
  const std::byte junk[] = {std::byte{0x30}, std::byte{0x03}, std::byte{0x02}, std::byte{0x01},
                            std::byte{0x00}};
  CHECK(ec_curve_of(junk) == 0);
  CHECK(server_key_allowed(junk, x25519));
}
