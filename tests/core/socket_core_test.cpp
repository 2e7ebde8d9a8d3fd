// SocketCore over a scripted engine: how the core turns engine steps into
// SecureSocket results (write loops, data kept by data_pending, the RFC 2246
// session rule, native errors), with no TLS library involved.
#include <cstring>
#include <deque>
#include <memory>
#include <string>

#include <unitls/secure_socket.hpp>

#include "doctest.hpp"
#include "engine.hpp"
#include "socket_core.hpp"
#include "wire.hpp"

using namespace unitls;
using namespace unitls::detail;

namespace {

struct Script {
  std::deque<Result> handshake, read, write, alert;
  std::deque<std::string> read_data;  // bytes for each Status::done read
  std::string written;
  int alerts = 0;
  int finished = -1;  // -1 not called, else closed_properly
  int silent = 0;     // the next this many want_* results come without the transport blocking
  int fatal_alerts = 0;
};

// Like a real engine, it asks the transport (the core's Wire) before it
// answers want_read or want_write, unless told to stop silently.
class ScriptedEngine final : public Engine {
 public:
  ScriptedEngine(std::shared_ptr<Script> s, Wire& wire) : s_(std::move(s)), wire_(wire) {}
  Result handshake() override { return next(s_->handshake); }
  Result read(std::span<std::byte> buf) override {
    Result r = next(s_->read);
    if (r.status == Status::done) {
      std::string data = s_->read_data.front();
      s_->read_data.pop_front();
      REQUIRE(data.size() <= buf.size());
      std::memcpy(buf.data(), data.data(), data.size());
      r.bytes = data.size();
    }
    return r;
  }
  Result write(std::span<const std::byte> buf) override {
    Result r = next(s_->write);
    if (r.status == Status::done) {
      r.bytes = std::min(r.bytes, buf.size());
      s_->written.append(reinterpret_cast<const char*>(buf.data()), r.bytes);
    }
    return r;
  }
  Result send_close_notify() override {
    ++s_->alerts;
    return next(s_->alert);
  }
  void send_alert(std::uint8_t) override { ++s_->fatal_alerts; }
  std::string protocol_version() const override { return "TLSv1.3"; }
  std::string cipher() const override { return "TLS_AES_128_GCM_SHA256"; }
  std::uint16_t group() const override { return 29; }
  std::string alpn_selected() const override { return ""; }
  bool session_reused() const override { return false; }
  std::size_t pending() const override { return 0; }
  std::span<const unsigned char> server_session_id() const override { return {}; }
  std::vector<std::vector<std::byte>> peer_chain() const override { return {}; }
  unsigned certificate_issues() const override { return 0; }
  std::string requested_server_name() const override { return {}; }
  void* native_handle() const override { return nullptr; }
  void end(bool closed_properly) override { s_->finished = closed_properly ? 1 : 0; }

 private:
  Result next(std::deque<Result>& q) {
    REQUIRE_FALSE(q.empty());
    Result r = q.front();
    q.pop_front();
    if (r.status == Status::want_read || r.status == Status::want_write) {
      if (s_->silent > 0) {
        --s_->silent;
      } else {
        std::byte b{};
        if (r.status == Status::want_read)
          CHECK(wire_.read(std::span<std::byte>(&b, 1)) == -1);
        else
          CHECK(wire_.write(std::span<const std::byte>(&b, 1)) == -1);
      }
    }
    return r;
  }
  std::shared_ptr<Script> s_;
  Wire& wire_;
};

// Never has data nor room; says whether it blocks.
class FakeTransport final : public Transport {
 public:
  explicit FakeTransport(bool blocking) : blocking_(blocking) {}
  std::ptrdiff_t read(std::span<std::byte>, std::error_code& ec) override {
    ec = errc::want_read;
    return -1;
  }
  std::ptrdiff_t write(std::span<const std::byte>, std::error_code& ec) override {
    ec = errc::want_write;
    return -1;
  }
  bool is_blocking() const noexcept override { return blocking_; }

 private:
  bool blocking_;
};

// A socket as Context::wrap sets it up: the engine on the core's Wire.
std::unique_ptr<SocketCore> make_unconnected(const std::shared_ptr<Script>& s, Config config = {},
                                             bool blocking = false) {
  auto sock = std::make_unique<SocketCore>(nullptr, std::make_unique<FakeTransport>(blocking), nullptr,
                                           nullptr, "scripted", config);
  sock->attach(std::make_unique<ScriptedEngine>(s, sock->wire()));
  return sock;
}

std::unique_ptr<SocketCore> make_socket(const std::shared_ptr<Script>& s, Config config = {},
                                        bool blocking = false) {
  auto sock = make_unconnected(s, config, blocking);
  s->handshake.push_back(Result::ok());
  REQUIRE(sock->handshake() == 1);
  return sock;
}

std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace

TEST_SUITE("socket core") {

TEST_CASE("a blocking write returns only when the engine took every byte, a record at a time") {
  auto s = std::make_shared<Script>();
  auto sock = make_socket(s, Config{}, true);
  s->write = {Result::ok(3), Result::ok(3), Result::ok(100)};
  CHECK(sock->write(bytes("abcdefghij")) == 10);
  CHECK(s->written == "abcdefghij");
  CHECK_FALSE(sock->last_error());
}

TEST_CASE("a non-blocking write returns after the engine's first step, with the count it took") {
  auto s = std::make_shared<Script>();
  auto sock = make_socket(s);
  // A second engine step could commit a record and then answer want_write:
  // the core must not take it on the caller's behalf.
  s->write = {Result::ok(4), Result::ok(6)};
  CHECK(sock->write(bytes("abcdefghij")) == 4);
  CHECK_FALSE(sock->last_error());
  CHECK(s->write.size() == 1);
  s->write.clear();
  s->write = {Result::of(Status::want_write)};
  CHECK(sock->write(bytes("efghij")) == -1);
  CHECK(sock->last_error() == errc::want_write);
  // the unfinished write blocks a close_notify until it is repeated
  CHECK(sock->shutdown() == -1);
  CHECK(sock->last_error() == errc::write_pending);
  CHECK(s->alerts == 0);
  s->write = {Result::ok(6)};
  CHECK(sock->write(bytes("efghij")) == 6);
  s->alert = {Result::ok()};
  CHECK(sock->shutdown() == 0);
  CHECK(s->alerts == 1);
}

TEST_CASE("data met by shutdown is kept and read() returns it in pieces before anything else") {
  auto s = std::make_shared<Script>();
  auto sock = make_socket(s);
  s->alert = {Result::ok()};
  CHECK(sock->shutdown() == 0);
  s->read = {Result::ok()};
  s->read_data = {"late data"};
  CHECK(sock->shutdown() == -1);
  CHECK(sock->last_error() == errc::data_pending);
  CHECK(sock->shutdown() == -1);  // still kept: the engine is not asked
  CHECK(sock->last_error() == errc::data_pending);
  std::byte buf[4];
  CHECK(sock->read(buf) == 4);
  CHECK(sock->read(buf) == 4);
  CHECK(sock->read(buf) == 1);
  CHECK(static_cast<char>(buf[0]) == 'a');
  s->read = {Result::of(Status::close_notify)};
  CHECK(sock->shutdown() == 1);
  CHECK(sock->get_shutdown() == (sent_shutdown | received_shutdown));
  CHECK(s->alerts == 1);
}

TEST_CASE("a failure keeps the engine's native error next to the errc; success clears both") {
  auto s = std::make_shared<Script>();
  auto sock = make_socket(s);
  std::error_code native(104, std::system_category());
  s->write = {Result::fail(errc::transport_error, native)};
  CHECK(sock->write(bytes("x")) == -1);
  CHECK(sock->last_error() == errc::transport_error);
  CHECK(sock->native_error() == native);
  CHECK(sock->read(std::span<std::byte>()) == -1);  // an empty buffer is rejected, not read
  CHECK(sock->last_error() == errc::invalid_argument);
}

TEST_CASE("the engine learns at destruction whether the connection was closed properly") {
  SUBCASE("SENT set: properly") {
    auto s = std::make_shared<Script>();
    {
      auto sock = make_socket(s);
      s->alert = {Result::ok()};
      CHECK(sock->send_close_notify() == std::error_code());
    }
    CHECK(s->finished == 1);
  }
  SUBCASE("quiet shutdown counts as SENT") {
    auto s = std::make_shared<Script>();
    {
      Config c;
      c.quiet_shutdown = true;
      auto sock = make_socket(s, c);
      CHECK(sock->shutdown() == 1);
      CHECK(s->alerts == 0);
    }
    CHECK(s->finished == 1);
  }
  SUBCASE("SENT unset: not properly") {
    auto s = std::make_shared<Script>();
    { auto sock = make_socket(s); }
    CHECK(s->finished == 0);
  }
  SUBCASE("dead: not properly, even with SENT") {
    auto s = std::make_shared<Script>();
    {
      auto sock = make_socket(s);
      sock->set_shutdown(sent_shutdown);
      s->read = {Result::of(Status::eof)};
      CHECK(sock->shutdown() == -1);
      CHECK(sock->last_error() == errc::unexpected_eof);
    }
    CHECK(s->finished == 0);
  }
}

TEST_CASE("connection facts are empty before the handshake") {
  auto s = std::make_shared<Script>();
  auto sock = make_unconnected(s);
  CHECK(sock->protocol_version().empty());
  CHECK(sock->cipher().empty());
  CHECK_FALSE(sock->session_reused());
  CHECK(sock->backend() == "scripted");
}

TEST_CASE("an engine that stops without the transport running dry is called again") {
  auto s = std::make_shared<Script>();
  auto sock = make_socket(s);
  // e.g. GnuTLS after a consumed TLS 1.3 ticket (T11): E_AGAIN, with the
  // next record already waiting.
  s->silent = 2;
  s->read = {Result::of(Status::want_read), Result::of(Status::want_write), Result::ok()};
  s->read_data = {"abc"};
  std::byte buf[8];
  CHECK(sock->read(buf) == 3);
  CHECK(s->read.empty());
  // The transport itself had nothing: want_read to the caller.
  s->read = {Result::of(Status::want_read)};
  CHECK(sock->read(buf) == -1);
  CHECK(sock->last_error() == errc::want_read);
}

TEST_CASE("a close_notify cannot end a handshake: protocol_error, and the connection is dead") {
  auto s = std::make_shared<Script>();
  auto sock = make_unconnected(s);
  const std::error_code native(7, std::generic_category());
  s->handshake = {Result::of(Status::close_notify, native)};
  CHECK(sock->handshake() == -1);
  CHECK(sock->last_error() == errc::protocol_error);
  CHECK(sock->native_error() == native);
  CHECK(sock->handshake() == -1);
  CHECK(sock->last_error() == errc::protocol_error);
}

TEST_CASE("an EOF met by a write is a transport failure, not a truncation") {
  auto s = std::make_shared<Script>();
  auto sock = make_socket(s);
  s->write = {Result::of(Status::eof)};
  CHECK(sock->write(bytes("x")) == -1);
  CHECK(sock->last_error() == errc::transport_error);
}

TEST_CASE("a failure of ours while reading is answered with the alert the engine names, once") {
  auto s = std::make_shared<Script>();
  auto sock = make_socket(s);
  s->read = {Result::answer(errc::protocol_error, std::error_code(20, std::generic_category()), 20)};
  std::byte buf[8];
  CHECK(sock->read(buf) == -1);
  CHECK(sock->last_error() == errc::protocol_error);
  CHECK(s->fatal_alerts == 1);
  // Dead: no engine call, no second alert.
  CHECK(sock->read(buf) == -1);
  CHECK(s->fatal_alerts == 1);
  SUBCASE("but not when the peer's alert was the cause, nor for a write") {
    auto t = std::make_shared<Script>();
    auto other = make_socket(t);
    t->read = {Result::fail(errc::protocol_error, {}, true)};
    CHECK(other->read(buf) == -1);
    auto u = std::make_shared<Script>();
    auto third = make_socket(u);
    u->write = {Result::answer(errc::protocol_error, {}, 80)};
    CHECK(third->write(bytes("x")) == -1);
    CHECK(t->fatal_alerts == 0);
    CHECK(u->fatal_alerts == 0);
  }
}

}  // TEST_SUITE
