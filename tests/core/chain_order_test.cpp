// The order in which a configured chain goes out (issuance_order,
// src/x509.hpp; docs/contract.md, "Who is on the other end"): the leaf and
// its issuers, the rest left out, on the test PKI's files.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "doctest.hpp"
#include "x509.hpp"

using namespace unitls::detail;

namespace {

// The CERTIFICATE blocks of the test PKI's files, in the order given.
std::vector<PemBlock> certificates(std::initializer_list<const char*> names) {
  const char* dir = std::getenv("UNITLS_TEST_CERTS");
  REQUIRE_MESSAGE(dir != nullptr, "UNITLS_TEST_CERTS is not set (run through meson test)");
  std::vector<PemBlock> out;
  for (const char* name : names) {
    std::ifstream in(std::string(dir) + "/" + name);
    REQUIRE_MESSAGE(in.good(), name);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto blocks = parse_pem(text);
    REQUIRE(blocks.has_value());
    for (auto& b : *blocks)
      if (b.label == "CERTIFICATE") out.push_back(std::move(b));
  }
  return out;
}

std::vector<std::size_t> order_of(const std::vector<PemBlock>& blocks) {
  std::vector<std::span<const std::byte>> ders;
  for (const auto& b : blocks) ders.emplace_back(b.der);
  return issuance_order(ders);
}

}  // namespace

TEST_CASE("a chain goes out as leaf, its issuer, that one's issuer, without the certificates of no use") {
  // unordered_chain.pem: intermediate_leaf, ca, other_ca, intermediate.
  CHECK(order_of(certificates({"unordered_chain.pem"})) == std::vector<std::size_t>{0, 3, 1});
  CHECK(order_of(certificates({"intermediate_chain.pem"})) == std::vector<std::size_t>{0, 1});
  CHECK(order_of(certificates({"server_chain.pem"})) == std::vector<std::size_t>{0, 1});
}

TEST_CASE("a chain stops at a self-issued certificate and where the next issuer is missing") {
  // The root comes first after the leaf in the file; nothing follows a
  // self-issued certificate, and a leaf without its issuer goes alone.
  CHECK(order_of(certificates({"server.pem", "ca.pem", "other_ca.pem"})) == std::vector<std::size_t>{0, 1});
  CHECK(order_of(certificates({"intermediate_leaf.pem", "ca.pem"})) == std::vector<std::size_t>{0});
  CHECK(order_of(certificates({"ca.pem", "server.pem"})) == std::vector<std::size_t>{0});
  CHECK(order_of(certificates({"server.pem"})) == std::vector<std::size_t>{0});
}

TEST_CASE("a leaf that does not parse orders nothing; an unparsable certificate after it is left out") {
  std::vector<PemBlock> blocks = certificates({"server.pem", "ca.pem"});
  PemBlock broken = blocks[1];
  broken.der.resize(broken.der.size() / 2);
  CHECK(order_of({broken, blocks[0]}).empty());
  CHECK(order_of({blocks[0], broken, blocks[1]}) == std::vector<std::size_t>{0, 2});
}

TEST_CASE("key identifiers are read: a leaf's authorityKeyIdentifier is its CA's subjectKeyIdentifier, not another CA's") {
  // issuance_order takes an issuer of the right name only when these agree
  // (a renewed intermediate under the same name). The test PKI's
  // certificates carry both identifiers (openssl's defaults).
  std::vector<PemBlock> blocks = certificates({"server.pem", "ca.pem"});
  const auto leaf = parse_certificate(blocks[0].der);
  const auto ca = parse_certificate(blocks[1].der);
  REQUIRE(leaf.has_value());
  REQUIRE(ca.has_value());
  REQUIRE_FALSE(leaf->authority_key_id.empty());
  REQUIRE_FALSE(ca->subject_key_id.empty());
  CHECK(std::ranges::equal(leaf->authority_key_id, ca->subject_key_id));
  const auto intermediate = certificates({"intermediate.pem"});
  const auto facts = parse_certificate(intermediate[0].der);
  REQUIRE(facts.has_value());
  CHECK_FALSE(std::ranges::equal(facts->subject_key_id, leaf->authority_key_id));
}

TEST_CASE("minimal_lengths tells DER from BER: a length in more bytes than it needs, anywhere, is BER") {
  // Capabilities::ber_certificates: a backend whose stack reads DER only
  // refuses the BER ones at create.
  std::vector<PemBlock> blocks = certificates({"server.pem", "ca.pem"});
  for (const auto& b : blocks) CHECK(minimal_lengths(b.der));
  // The outer SEQUENCE's length in three bytes where two do (30 82 hi lo ->
  // 30 83 00 hi lo), as peer_identity_test's non-canonical certificate.
  std::vector<std::byte> ber = blocks[0].der;
  REQUIRE(ber[1] == std::byte{0x82});
  ber[1] = std::byte{0x83};
  ber.insert(ber.begin() + 2, std::byte{0});
  CHECK_FALSE(minimal_lengths(ber));
  CHECK(parse_certificate(ber).has_value());  // the core reads it all the same
  // Inside: a short length in the long form (02 01 05 -> 02 81 01 05).
  const std::vector<std::byte> inner = {std::byte{0x30}, std::byte{0x04}, std::byte{0x02}, std::byte{0x81},
                                        std::byte{0x01}, std::byte{0x05}};
  CHECK_FALSE(minimal_lengths(inner));
  const std::vector<std::byte> fine = {std::byte{0x30}, std::byte{0x03}, std::byte{0x02}, std::byte{0x01},
                                       std::byte{0x05}};
  CHECK(minimal_lengths(fine));
}
