// The Reframer (src/reframer.hpp): the peer's plaintext handshake records,
// however the messages are split, come out as records of whole messages;
// other records pass as they came; it never asks for bytes past the record
// it gathers.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "doctest.hpp"
#include "reframer.hpp"

using namespace unitls::detail;

namespace {

using Bytes = std::vector<unsigned char>;

Bytes record(unsigned char type, const Bytes& body) {
  Bytes r = {type, 3, 3, static_cast<unsigned char>(body.size() >> 8), static_cast<unsigned char>(body.size())};
  r.insert(r.end(), body.begin(), body.end());
  return r;
}

// A handshake message of `type` with n body bytes.
Bytes message(unsigned char type, std::size_t n) {
  Bytes m = {type, static_cast<unsigned char>(n >> 16), static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
  for (std::size_t i = 0; i < n; ++i) m.push_back(static_cast<unsigned char>(i));
  return m;
}

Bytes join(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The peer's bytes read as the Reframer asks for them, `chunk` at a time at
// most (a transport that hands out little); what it hands on.
struct Run {
  Bytes out;
};

Run run(Reframer& r, const Bytes& in, std::size_t chunk) {
  Run result;
  std::size_t at = 0;
  while (r.active() && at < in.size()) {
    const std::span<unsigned char> room = r.room();
    REQUIRE(!room.empty());
    const std::size_t n = std::min({room.size(), chunk, in.size() - at});
    std::copy(in.begin() + static_cast<std::ptrdiff_t>(at), in.begin() + static_cast<std::ptrdiff_t>(at + n),
              room.begin());
    r.filled(n);
    at += n;
    unsigned char buf[7];  // taken in small pieces too
    while (r.has_output()) {
      const std::size_t got = r.take(buf, sizeof buf);
      result.out.insert(result.out.end(), buf, buf + got);
    }
  }
  return result;
}

}  // namespace

TEST_CASE("records of whole messages pass as they came, whatever the transport's chunks") {
  const Bytes in = join({record(22, join({message(2, 70), message(11, 300)})), record(22, message(14, 0))});
  for (std::size_t chunk : {1u, 3u, 5u, 64u, 4096u}) {
    CAPTURE(chunk);
    Reframer r(16384);
    CHECK(run(r, in, chunk).out == in);
    CHECK(r.active());
  }
}

TEST_CASE("a message split across records, its header too, comes out whole in one record") {
  const Bytes hello = message(1, 200);
  // The header split after two bytes, the body after 100 more.
  const Bytes in = join({record(22, Bytes(hello.begin(), hello.begin() + 2)),
                         record(22, Bytes(hello.begin() + 2, hello.begin() + 102)),
                         record(22, Bytes(hello.begin() + 102, hello.end()))});
  Reframer r(16384);
  CHECK(run(r, in, 4096).out == record(22, hello));
}

TEST_CASE("messages and pieces in one record are framed at message boundaries") {
  const Bytes a = message(2, 10), b = message(11, 50);
  // a whole and the first half of b; then the rest of b.
  const Bytes in = join({record(22, join({a, Bytes(b.begin(), b.begin() + 25)})), record(22, Bytes(b.begin() + 25, b.end()))});
  Reframer r(16384);
  CHECK(run(r, in, 4096).out == join({record(22, a), record(22, b)}));
}

TEST_CASE("a message longer than the stack's largest fragment goes out in records of at most that") {
  const Bytes big = message(11, 100);
  Reframer r(40);
  const Bytes in = join({record(22, Bytes(big.begin(), big.begin() + 50)), record(22, Bytes(big.begin() + 50, big.end()))});
  const Bytes expected = join({record(22, Bytes(big.begin(), big.begin() + 40)),
                               record(22, Bytes(big.begin() + 40, big.begin() + 80)),
                               record(22, Bytes(big.begin() + 80, big.end()))});
  CHECK(run(r, in, 4096).out == expected);
}

TEST_CASE("another record between the pieces hands on the pieces as they came, then itself") {
  const Bytes hello = message(1, 20);
  const Bytes alert = record(21, {2, 40});
  const Bytes in = join({record(22, Bytes(hello.begin(), hello.begin() + 10)), alert});
  Reframer r(16384);
  CHECK(run(r, in, 4096).out == join({record(22, Bytes(hello.begin(), hello.begin() + 10)), alert}));
  CHECK(r.active());
}

TEST_CASE("after ChangeCipherSpec it stops, and it never asks for a byte past the record it gathers") {
  const Bytes ccs = record(20, {1});
  const Bytes in = join({record(22, message(16, 33)), ccs});
  Reframer r(16384);
  Bytes out = run(r, in, 4096).out;
  CHECK(out == in);
  CHECK_FALSE(r.active());
  // It asked for exactly the two records: the header, then the body, each.
  Reframer counting(16384);
  std::size_t asked = 0;
  for (std::size_t at = 0; at < in.size();) {
    const std::span<unsigned char> room = counting.room();
    asked += room.size();
    std::copy(in.begin() + static_cast<std::ptrdiff_t>(at),
              in.begin() + static_cast<std::ptrdiff_t>(at + room.size()), room.begin());
    counting.filled(room.size());
    at += room.size();
  }
  CHECK(asked == in.size());
}

TEST_CASE("a client's ServerHello with encrypt_then_mac is noticed, one without is not") {
  // server_version, random, session_id (empty), cipher_suite,
  // compression_method, then the extensions.
  auto server_hello = [](bool etm) {
    Bytes body = {3, 3};
    body.insert(body.end(), 32, 0xab);
    body.insert(body.end(), {0, 0xc0, 0x23, 0});
    Bytes ext = {0xff, 0x01, 0, 1, 0};  // renegotiation_info
    if (etm) ext.insert(ext.end(), {0, 22, 0, 0});
    body.insert(body.end(), {static_cast<unsigned char>(ext.size() >> 8), static_cast<unsigned char>(ext.size())});
    body.insert(body.end(), ext.begin(), ext.end());
    Bytes m = {2, 0, static_cast<unsigned char>(body.size() >> 8), static_cast<unsigned char>(body.size())};
    m.insert(m.end(), body.begin(), body.end());
    return record(22, m);
  };
  for (bool etm : {false, true}) {
    CAPTURE(etm);
    Reframer r(16384);
    (void)run(r, server_hello(etm), 4096);
    CHECK(r.encrypt_then_mac() == etm);
  }
}
