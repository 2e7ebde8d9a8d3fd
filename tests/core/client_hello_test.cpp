// scan_client_hello: the core's reading of a peer's first ClientHello (ALPN
// offer, SNI), from raw records however the peer split them.
#include <cstdint>
#include <string>
#include <vector>

#include "client_hello.hpp"
#include "doctest.hpp"

using namespace unitls::detail;

namespace {

using Bytes = std::vector<unsigned char>;

void u16(Bytes& b, std::size_t v) {
  b.push_back(static_cast<unsigned char>(v >> 8));
  b.push_back(static_cast<unsigned char>(v));
}
void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

Bytes extension(std::size_t type, const Bytes& body) {
  Bytes e;
  u16(e, type);
  u16(e, body.size());
  append(e, body);
  return e;
}

Bytes alpn_ext(const std::vector<std::string>& names) {
  Bytes list;
  for (const auto& n : names) {
    list.push_back(static_cast<unsigned char>(n.size()));
    list.insert(list.end(), n.begin(), n.end());
  }
  Bytes body;
  u16(body, list.size());
  append(body, list);
  return extension(16, body);
}

Bytes sni_ext(const std::string& host) {
  Bytes entry{0};
  u16(entry, host.size());
  entry.insert(entry.end(), host.begin(), host.end());
  Bytes body;
  u16(body, entry.size());
  append(body, entry);
  return extension(0, body);
}

// A ClientHello handshake message carrying these extensions.
Bytes hello(const Bytes& extensions) {
  Bytes body{3, 3};
  body.resize(2 + 32, 0x11);  // random
  body.push_back(0);          // session_id
  u16(body, 2);
  body.push_back(0x13);
  body.push_back(0x01);  // one suite
  body.push_back(1);
  body.push_back(0);  // null compression
  u16(body, extensions.size());
  append(body, extensions);
  Bytes msg{1, 0, static_cast<unsigned char>(body.size() >> 8), static_cast<unsigned char>(body.size())};
  append(msg, body);
  return msg;
}

// The message in handshake records of at most `chunk` bytes.
Bytes records(const Bytes& msg, std::size_t chunk) {
  Bytes out;
  for (std::size_t off = 0; off < msg.size(); off += chunk) {
    const std::size_t n = std::min(chunk, msg.size() - off);
    out.push_back(22);
    out.push_back(3);
    out.push_back(1);
    u16(out, n);
    out.insert(out.end(), msg.begin() + static_cast<std::ptrdiff_t>(off),
               msg.begin() + static_cast<std::ptrdiff_t>(off + n));
  }
  return out;
}

}  // namespace

TEST_CASE("scan_client_hello reads the ALPN offer and SNI of a hello split across records") {
  Bytes ext = sni_ext("example.test");
  append(ext, alpn_ext({"h2", "http/1.1"}));
  const Bytes raw = records(hello(ext), 7);
  for (std::size_t cut = 0; cut < raw.size(); ++cut)
    CHECK(scan_client_hello(std::span(raw.data(), cut), 16384).state == ClientHelloScan::State::need_more);
  const ClientHelloScan scan = scan_client_hello(raw, 16384);
  REQUIRE(scan.state == ClientHelloScan::State::complete);
  CHECK(scan.has_alpn);
  CHECK(scan.alpn == std::vector<std::string>{"h2", "http/1.1"});
  CHECK(scan.server_name == "example.test");
}

TEST_CASE("scan_client_hello tells a hello without extensions from one it cannot read") {
  SUBCASE("no ALPN, no SNI") {
    const ClientHelloScan scan = scan_client_hello(records(hello({}), 512), 16384);
    CHECK(scan.state == ClientHelloScan::State::complete);
    CHECK_FALSE(scan.has_alpn);
    CHECK(scan.server_name.empty());
  }
  SUBCASE("an empty protocol name is malformed") {
    CHECK(scan_client_hello(records(hello(alpn_ext({""})), 512), 16384).state ==
          ClientHelloScan::State::malformed);
  }
  SUBCASE("an extension longer than the hello is malformed") {
    Bytes ext = alpn_ext({"h2"});
    ext[3] += 10;  // its length claims more than there is
    CHECK(scan_client_hello(records(hello(ext), 512), 16384).state == ClientHelloScan::State::malformed);
  }
  SUBCASE("not a handshake record, or not a ClientHello") {
    Bytes alert{21, 3, 3, 0, 2, 2, 40};
    CHECK(scan_client_hello(alert, 16384).state == ClientHelloScan::State::malformed);
    Bytes server_hello = hello({});
    server_hello[0] = 2;
    CHECK(scan_client_hello(records(server_hello, 512), 16384).state == ClientHelloScan::State::malformed);
  }
  SUBCASE("a record longer than the stack takes") {
    const Bytes raw = records(hello(alpn_ext({"h2"})), 512);
    CHECK(scan_client_hello(raw, 16).state == ClientHelloScan::State::malformed);
  }
}

TEST_CASE("HelloJudge: a repeated extension is found among many, and outranks a refused name") {
  const unsigned char empty[] = {0};
  HelloJudge many;
  for (unsigned type = 100; type < 160; ++type) many.extension(type, std::span<const unsigned char>(empty, 0));
  // (10, 16 and 43 would be malformed empty: supported_groups, ALPN, supported_versions.)
  for (unsigned type = 1; type < 64; ++type)
    if (type != 10 && type != 16 && type != 43) many.extension(type, std::span<const unsigned char>(empty, 0));
  CHECK(many.fault() == HelloFault::none);
  many.extension(63, std::span<const unsigned char>(empty, 0));
  CHECK(many.fault() == HelloFault::repeated_extension);
  many = HelloJudge{};
  for (unsigned type = 100; type < 160; ++type) many.extension(type, std::span<const unsigned char>(empty, 0));
  many.extension(150, std::span<const unsigned char>(empty, 0));  // kept past the first 16
  CHECK(many.fault() == HelloFault::repeated_extension);
  HelloJudge early;
  for (unsigned type = 100; type < 160; ++type) early.extension(type, std::span<const unsigned char>(empty, 0));
  early.extension(101, std::span<const unsigned char>(empty, 0));
  CHECK(early.fault() == HelloFault::repeated_extension);

  // server_name "a_b" (refused), then the same extension again.
  const unsigned char refused[] = {0, 6, 0, 0, 3, 'a', '_', 'b'};
  HelloJudge judge;
  judge.extension(0, refused);
  CHECK(judge.fault() == HelloFault::server_name_refused);
  judge.extension(0, refused);
  CHECK(judge.fault() == HelloFault::repeated_extension);
  CHECK(hello_alert(HelloFault::alpn_malformed) == 50);
}

TEST_CASE("read_client_hello_body judges only a hello whose framing is whole, as OpenSSL does") {
  const Bytes refused = sni_ext("a_b.example");
  auto body_of = [](const Bytes& msg) { return std::span<const unsigned char>(msg.data() + 4, msg.size() - 4); };
  Bytes msg = hello(refused);
  CHECK(read_client_hello_body(body_of(msg)).parses);
  CHECK(read_client_hello_body(body_of(msg)).judged.fault() == HelloFault::server_name_refused);
  SUBCASE("a byte after the extensions block") {
    msg.push_back(0);
    const ClientHelloBody b = read_client_hello_body(body_of(msg));
    CHECK_FALSE(b.parses);
    CHECK(b.judged.fault() == HelloFault::none);
  }
  SUBCASE("a session_id of 33 bytes") {
    Bytes body{3, 3};
    body.resize(2 + 32, 0x11);
    body.push_back(33);
    body.resize(body.size() + 33, 0x22);
    u16(body, 2);
    body.push_back(0x13);
    body.push_back(0x01);
    body.push_back(1);
    body.push_back(0);
    u16(body, refused.size());
    append(body, refused);
    CHECK_FALSE(read_client_hello_body(body).parses);
  }
  SUBCASE("no extensions block at all") {
    Bytes body(msg.begin() + 4, msg.end() - static_cast<std::ptrdiff_t>(refused.size() + 2));
    const ClientHelloBody b = read_client_hello_body(body);
    CHECK(b.parses);
    CHECK(b.judged.fault() == HelloFault::none);
  }
}

TEST_CASE("supported_groups and supported_versions must fill their extension exactly") {
  auto judged = [](unsigned type, const Bytes& body) {
    HelloJudge j;
    j.extension(type, body);
    return j.fault();
  };
  CHECK(judged(10, {0, 2, 0, 0x17}) == HelloFault::none);
  CHECK(judged(10, {0, 2, 0, 0x17, 0, 0x18}) == HelloFault::list_malformed);  // more than declared
  CHECK(judged(10, {0, 4, 0, 0x17}) == HelloFault::list_malformed);           // less
  CHECK(judged(10, {0, 0}) == HelloFault::list_malformed);                    // empty
  CHECK(judged(10, {0, 1, 0x17}) == HelloFault::list_malformed);              // odd
  CHECK(judged(43, {4, 3, 4, 3, 3}) == HelloFault::none);
  CHECK(judged(43, {2, 3, 3, 3, 4}) == HelloFault::list_malformed);
  CHECK(judged(43, {}) == HelloFault::list_malformed);
  CHECK(judged(43, {1, 3}) == HelloFault::list_malformed);
  CHECK(hello_alert(HelloFault::list_malformed) == 50);
}
