// The record guard (src/record_guard.hpp) over a scripted transport: what it
// lets through, what it rejects, and the one alert it writes.
#include <algorithm>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include <unitls/error.hpp>

#include "doctest.hpp"
#include "record_guard.hpp"

using namespace unitls;
using namespace unitls::detail;

namespace {

using Bytes = std::vector<std::uint8_t>;

// Reads hand out the queued chunks one per call; writes are recorded.
class Scripted final : public Transport {
 public:
  std::deque<Bytes> chunks;
  Bytes written;

  std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) override {
    if (chunks.empty()) {
      ec = make_error_code(errc::want_read);
      return -1;
    }
    Bytes& c = chunks.front();
    const std::size_t n = std::min(buf.size(), c.size());
    std::memcpy(buf.data(), c.data(), n);
    c.erase(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(n));
    if (c.empty()) chunks.pop_front();
    ec.clear();
    return static_cast<std::ptrdiff_t>(n);
  }
  std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) override {
    for (std::byte b : buf) written.push_back(static_cast<std::uint8_t>(b));
    ec.clear();
    return static_cast<std::ptrdiff_t>(buf.size());
  }
};

struct Fixture {
  Scripted* inner;
  RecordGuard guard;
  explicit Fixture(Role role) : inner(new Scripted), guard(std::unique_ptr<Transport>(inner), role) {}

  // Reads until want_read; returns every byte the guard let through.
  Bytes drain() {
    Bytes out;
    std::byte buf[64];
    std::error_code ec;
    for (std::ptrdiff_t n; (n = guard.read(buf, ec)) > 0;)
      for (std::ptrdiff_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(buf[i]));
    CHECK(ec == errc::want_read);
    return out;
  }
  void write(const Bytes& b) {
    std::error_code ec;
    CHECK(guard.write(std::as_bytes(std::span(b)), ec) == static_cast<std::ptrdiff_t>(b.size()));
  }
};

Bytes alert_record(std::uint8_t description) { return {21, 3, 3, 0, 2, 2, description}; }

// A handshake record holding one message of the given type and length
// (the body is zeros; only the framing matters to the guard).
Bytes handshake_record(std::uint8_t type, std::size_t message_length, std::size_t present) {
  Bytes msg = {type, static_cast<std::uint8_t>(message_length >> 16),
               static_cast<std::uint8_t>(message_length >> 8), static_cast<std::uint8_t>(message_length)};
  msg.resize(4 + present);
  Bytes r(5 + msg.size());
  r[0] = 22;
  r[1] = 3;
  r[2] = 1;
  r[3] = static_cast<std::uint8_t>(msg.size() >> 8);
  r[4] = static_cast<std::uint8_t>(msg.size());
  std::copy(msg.begin(), msg.end(), r.begin() + 5);
  return r;
}

}  // namespace

TEST_CASE("well-formed plaintext records pass untouched, split anywhere") {
  Fixture f(Role::server);
  const Bytes hello = handshake_record(1, 40, 40);
  f.inner->chunks = {Bytes(hello.begin(), hello.begin() + 3), Bytes(hello.begin() + 3, hello.end())};
  CHECK(f.drain() == hello);
  CHECK(f.guard.fault() == RecordFault::none);
  CHECK(f.inner->written.empty());
}

TEST_CASE("bytes that are not TLS are rejected at the first byte, with one unexpected_message alert") {
  Fixture f(Role::server);
  f.inner->chunks = {{'G', 'E', 'T', ' ', '/'}};
  CHECK(f.drain().empty());
  CHECK(f.guard.fault() == RecordFault::bad_type);
  CHECK(f.inner->written == alert_record(10));
  // Sticky, and nothing more is written or read.
  f.inner->chunks = {handshake_record(1, 4, 4)};
  CHECK(f.drain().empty());
  f.write({22, 3, 3, 0, 1, 0});
  CHECK(f.inner->written == alert_record(10));
}

TEST_CASE("each malformed header gets its own alert") {
  struct Case {
    const char* name;
    Bytes input;
    RecordFault fault;
  };
  const Case cases[] = {
      {"version 2.0", {22, 2, 0, 0, 4}, RecordFault::bad_version},
      {"longer than 2^14", {22, 3, 3, 0x40, 0x01}, RecordFault::record_overflow},
      {"empty handshake record", {22, 3, 3, 0, 0}, RecordFault::empty_fragment},
      {"three-byte alert", {21, 3, 3, 0, 3, 1, 0, 0}, RecordFault::bad_alert},
      {"ChangeCipherSpec first", {20, 3, 3, 0, 1, 1}, RecordFault::early_change_cipher_spec},
      {"application data first", {23, 3, 3, 0, 1, 0}, RecordFault::early_change_cipher_spec},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Fixture f(Role::server);
    f.inner->chunks = {c.input};
    CHECK(f.drain().empty());
    CHECK(f.guard.fault() == c.fault);
    CHECK(f.inner->written == alert_record(static_cast<std::uint8_t>(static_cast<int>(c.fault) % 1000)));
  }
}

TEST_CASE("records before a rejected one still reach the stack") {
  Fixture f(Role::server);
  Bytes input = handshake_record(1, 8, 8);
  const Bytes good = input;
  input.insert(input.end(), {0xff, 0xff});
  f.inner->chunks = {input};
  CHECK(f.drain() == good);
  CHECK(f.guard.fault() == RecordFault::bad_type);
}

TEST_CASE("a handshake message announcing more than a peer may send is illegal_parameter") {
  Fixture f(Role::client);
  f.inner->chunks = {handshake_record(2, 0xffffff, 10)};  // a ServerHello of 16 MiB
  CHECK(f.drain().empty());
  CHECK(f.guard.fault() == RecordFault::oversized_message);
  CHECK(f.inner->written == alert_record(47));
}

TEST_CASE("four warning alerts in a row pass, the fifth is a flood") {
  Fixture f(Role::client);
  Bytes warning = {21, 3, 3, 0, 2, 1, 90};  // user_canceled
  for (int i = 0; i < RecordGuard::max_warning_alerts; ++i) f.inner->chunks.push_back(warning);
  CHECK(f.drain().size() == warning.size() * RecordGuard::max_warning_alerts);
  CHECK(f.guard.fault() == RecordFault::none);
  f.inner->chunks = {warning};
  CHECK(f.drain().empty());
  CHECK(f.guard.fault() == RecordFault::warning_flood);
}

TEST_CASE("once our records are encrypted the guard lets everything through") {
  Fixture f(Role::client);
  f.write(handshake_record(1, 4, 4));  // our ClientHello
  f.write({20, 3, 3, 0, 1, 1});        // our ChangeCipherSpec
  const Bytes odd = {22, 3, 3, 0, 0, 0xff, 0xff};
  f.inner->chunks = {odd};
  CHECK(f.drain() == odd);
  CHECK(f.guard.fault() == RecordFault::none);
}

TEST_CASE("no alert goes out in the middle of one of our records") {
  Fixture f(Role::client);
  f.write({22, 3, 3, 0, 10, 1, 2});  // 2 of 10 body bytes written so far
  f.inner->chunks = {{0x80, 0x01}};
  CHECK(f.drain().empty());
  CHECK(f.guard.fault() == RecordFault::bad_type);
  CHECK(f.inner->written.size() == 7);  // our partial record, no alert inside it
}
