// The in-memory pair and its MemoryPipe controls.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unitls/error.hpp>
#include <unitls/transport.hpp>

#include "doctest.hpp"

using unitls::errc;

namespace {

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) out[i] = static_cast<std::byte>(text[i]);
  return out;
}

std::vector<std::byte> bytes_of(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

// A TLS record: header type/version 0x0303/big-endian length, then a body.
std::vector<std::byte> record(int type, std::size_t length) {
  std::vector<std::byte> out =
      bytes_of({type, 0x03, 0x03, static_cast<int>(length >> 8), static_cast<int>(length & 0xff)});
  out.resize(out.size() + length, std::byte{0xab});
  return out;
}

std::ptrdiff_t write_all(unitls::Transport& t, const std::vector<std::byte>& data) {
  std::error_code ec;
  const std::ptrdiff_t n = t.write(data, ec);
  REQUIRE_FALSE(ec);
  return n;
}

// Reads whatever is there (up to 64 KiB) as text.
std::string read_text(unitls::Transport& t) {
  std::vector<std::byte> buf(65536);
  std::error_code ec;
  const std::ptrdiff_t n = t.read(buf, ec);
  REQUIRE_FALSE(ec);
  REQUIRE(n > 0);
  return std::string(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
}

std::error_code read_error(unitls::Transport& t) {
  std::byte buf[16];
  std::error_code ec;
  CHECK(t.read(buf, ec) == -1);
  return ec;
}

std::error_code write_error(unitls::Transport& t, std::string_view text = "x") {
  std::error_code ec;
  CHECK(t.write(bytes_of(text), ec) == -1);
  return ec;
}

}  // namespace

TEST_CASE("a memory pair carries bytes both ways") {
  auto pair = unitls::make_memory_pair();
  REQUIRE(pair.client);
  REQUIRE(pair.server);
  REQUIRE(pair.link);
  CHECK(write_all(*pair.client, bytes_of("hello")) == 5);
  CHECK(write_all(*pair.server, bytes_of("world!")) == 6);
  CHECK(read_text(*pair.server) == "hello");
  CHECK(read_text(*pair.client) == "world!");
  CHECK(pair.client->native_handle() == -1);
  CHECK_FALSE(pair.client->native_error());
}

TEST_CASE("a memory pipe reports want_read when nothing is buffered") {
  auto pair = unitls::make_memory_pair();
  CHECK(read_error(*pair.server) == errc::want_read);
  CHECK(read_error(*pair.client) == errc::want_read);
  CHECK_FALSE(pair.server->native_error());
}

TEST_CASE("a memory read takes at most the buffer's size and leaves the rest") {
  auto pair = unitls::make_memory_pair();
  write_all(*pair.client, bytes_of("abcdef"));
  std::byte buf[4];
  std::error_code ec;
  CHECK(pair.server->read(buf, ec) == 4);
  CHECK_FALSE(ec);
  CHECK(pair.link->client_to_server().buffered() == 2);
  CHECK(read_text(*pair.server) == "ef");
  CHECK(pair.link->client_to_server().buffered() == 0);
}

TEST_CASE("a memory pair keeps the order of many writes across large volumes") {
  auto pair = unitls::make_memory_pair();
  std::string sent, received;
  for (int i = 0; i < 2000; ++i) {
    const std::string chunk = std::to_string(i) + ",";
    sent += chunk;
    write_all(*pair.client, bytes_of(chunk));
    // Read a little less than written now and then so the buffer is both
    // consumed and appended to.
    if (i % 3 == 0) {
      std::byte buf[5];
      std::error_code ec;
      const std::ptrdiff_t n = pair.server->read(buf, ec);
      REQUIRE(n > 0);
      received.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
    }
  }
  while (pair.link->client_to_server().buffered() > 0) received += read_text(*pair.server);
  CHECK(received == sent);
}

TEST_CASE("an empty memory read is refused so that 0 always means EOF") {
  auto pair = unitls::make_memory_pair();
  write_all(*pair.client, bytes_of("x"));
  std::error_code ec;
  CHECK(pair.server->read(std::span<std::byte>{}, ec) == -1);
  CHECK(ec == errc::invalid_argument);
  CHECK(pair.link->client_to_server().buffered() == 1);
}

TEST_CASE("an empty memory write moves nothing and succeeds") {
  auto pair = unitls::make_memory_pair();
  std::error_code ec = make_error_code(errc::want_write);
  CHECK(pair.client->write(std::span<const std::byte>{}, ec) == 0);
  CHECK_FALSE(ec);
  CHECK(pair.link->client_to_server().bytes_written() == 0);
}

TEST_CASE("a held memory pipe buffers bytes but the reader sees none until released") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.hold(true);
  CHECK(write_all(*pair.client, bytes_of("in flight")) == 9);
  CHECK(pipe.buffered() == 9);
  CHECK(read_error(*pair.server) == errc::want_read);
  // The other direction is not affected.
  write_all(*pair.server, bytes_of("back"));
  CHECK(read_text(*pair.client) == "back");
  pipe.hold(false);
  CHECK(read_text(*pair.server) == "in flight");
}

TEST_CASE("a held memory pipe keeps an injected EOF in flight behind its bytes") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.hold(true);
  pipe.inject_eof();
  CHECK(read_error(*pair.server) == errc::want_read);
  pipe.hold(false);
  std::byte buf[4];
  std::error_code ec;
  CHECK(pair.server->read(buf, ec) == 0);
  CHECK_FALSE(ec);
}

TEST_CASE("a memory write budget of zero reports want_write") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.set_write_budget(0);
  CHECK(write_error(*pair.client) == errc::want_write);
  CHECK_FALSE(pair.client->native_error());
  CHECK(pipe.buffered() == 0);
  CHECK(pipe.bytes_written() == 0);
}

TEST_CASE("a memory write larger than the budget takes only the budget's worth") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.set_write_budget(4);
  CHECK(write_all(*pair.client, bytes_of("abcdefgh")) == 4);
  CHECK(write_error(*pair.client, "efgh") == errc::want_write);
  CHECK(pipe.bytes_written() == 4);
  CHECK(read_text(*pair.server) == "abcd");
  // Reading does not refill the budget: only setting it again "drains".
  CHECK(write_error(*pair.client, "efgh") == errc::want_write);
  pipe.set_write_budget(2);
  CHECK(write_all(*pair.client, bytes_of("efgh")) == 2);
  pipe.set_write_budget(-1);
  CHECK(write_all(*pair.client, bytes_of("gh")) == 2);
  CHECK(read_text(*pair.server) == "efgh");
}

TEST_CASE("a memory write within the budget lowers it by the bytes accepted") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.set_write_budget(10);
  CHECK(write_all(*pair.client, bytes_of("abc")) == 3);
  CHECK(write_all(*pair.client, bytes_of("defghij")) == 7);
  CHECK(write_error(*pair.client) == errc::want_write);
}

TEST_CASE("a memory pipe with injected EOF gives the buffered bytes first, then 0") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  write_all(*pair.client, bytes_of("last words"));
  pipe.inject_eof();
  CHECK(read_text(*pair.server) == "last words");
  std::byte buf[8];
  std::error_code ec = make_error_code(errc::want_read);
  CHECK(pair.server->read(buf, ec) == 0);
  CHECK_FALSE(ec);
  // EOF stays.
  CHECK(pair.server->read(buf, ec) == 0);
}

TEST_CASE("a memory write after injected EOF fails with transport_error carrying EPIPE") {
  auto pair = unitls::make_memory_pair();
  pair.link->client_to_server().inject_eof();
  CHECK(write_error(*pair.client) == errc::transport_error);
  CHECK(pair.client->native_error() == std::error_code(EPIPE, std::system_category()));
  // The reverse direction still works.
  write_all(*pair.server, bytes_of("ok"));
  CHECK(read_text(*pair.client) == "ok");
}

TEST_CASE("a memory pipe with an injected error gives the buffered bytes first, then the error") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  write_all(*pair.client, bytes_of("partial"));
  pipe.inject_error(ECONNRESET);
  CHECK(read_text(*pair.server) == "partial");
  CHECK_FALSE(pair.server->native_error());
  CHECK(read_error(*pair.server) == errc::transport_error);
  CHECK(pair.server->native_error() == std::error_code(ECONNRESET, std::system_category()));
}

TEST_CASE("a memory write fails at once with an injected error, even over EOF") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.inject_eof();
  pipe.inject_error(ECONNRESET);
  CHECK(write_error(*pair.client) == errc::transport_error);
  CHECK(pair.client->native_error() == std::error_code(ECONNRESET, std::system_category()));
  CHECK(write_error(*pair.client) == errc::transport_error);
  CHECK(pipe.bytes_written() == 0);
}

TEST_CASE("a memory read error outranks EOF and injected error 0 withdraws it") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.inject_eof();
  pipe.inject_error(EIO);
  CHECK(read_error(*pair.server) == errc::transport_error);
  pipe.inject_error(0);
  std::byte buf[4];
  std::error_code ec;
  CHECK(pair.server->read(buf, ec) == 0);
  CHECK_FALSE(ec);
  // native_error() reports the last failed call; a success does not erase it.
  CHECK(pair.server->native_error() == std::error_code(EIO, std::system_category()));
}

TEST_CASE("injected memory bytes are read like written ones but not counted as written") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  write_all(*pair.client, bytes_of("abc"));
  pipe.inject_bytes(record(21, 2));
  CHECK(pipe.buffered() == 3 + 7);
  CHECK(pipe.bytes_written() == 3);
  CHECK(pipe.records_written() == 0);
  CHECK(pipe.alert_records_written() == 0);
  std::vector<std::byte> buf(32);
  std::error_code ec;
  CHECK(pair.server->read(buf, ec) == 10);
  CHECK(buf[3] == std::byte{21});
}

TEST_CASE("injected memory bytes bypass the write budget, hold still applies") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  pipe.set_write_budget(0);
  pipe.hold(true);
  pipe.inject_bytes(bytes_of("zz"));
  CHECK(read_error(*pair.server) == errc::want_read);
  pipe.hold(false);
  CHECK(read_text(*pair.server) == "zz");
}

TEST_CASE("corrupting the last buffered memory byte flips one bit of it") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  CHECK_FALSE(pipe.corrupt_last_byte());
  write_all(*pair.client, bytes_of({0x10, 0x20, 0x30}));
  CHECK(pipe.corrupt_last_byte());
  std::byte buf[3];
  std::error_code ec;
  REQUIRE(pair.server->read(buf, ec) == 3);
  CHECK(buf[0] == std::byte{0x10});
  CHECK(buf[1] == std::byte{0x20});
  const auto flipped = static_cast<unsigned>(buf[2] ^ std::byte{0x30});
  CHECK(flipped != 0);
  CHECK((flipped & (flipped - 1)) == 0);  // exactly one bit
  // Everything has been read: nothing left to corrupt.
  CHECK_FALSE(pipe.corrupt_last_byte());
}

TEST_CASE("discarding a memory pipe drops the unread bytes and says how many") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  CHECK(pipe.discard() == 0);
  write_all(*pair.client, bytes_of("abcdef"));
  std::byte buf[2];
  std::error_code ec;
  REQUIRE(pair.server->read(buf, ec) == 2);
  CHECK(pipe.discard() == 4);
  CHECK(pipe.buffered() == 0);
  CHECK(read_error(*pair.server) == errc::want_read);
  // Counters are about what was written, not what is still there.
  CHECK(pipe.bytes_written() == 6);
  write_all(*pair.client, bytes_of("gh"));
  CHECK(read_text(*pair.server) == "gh");
}

TEST_CASE("memory bytes_written counts every accepted byte per direction") {
  auto pair = unitls::make_memory_pair();
  write_all(*pair.client, bytes_of("12345"));
  write_all(*pair.client, bytes_of("678"));
  write_all(*pair.server, bytes_of("ab"));
  CHECK(pair.link->client_to_server().bytes_written() == 8);
  CHECK(pair.link->server_to_client().bytes_written() == 2);
  read_text(*pair.server);
  CHECK(pair.link->client_to_server().bytes_written() == 8);
}

TEST_CASE("memory records_written counts a record once its last byte is written") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  const auto r = record(23, 100);
  std::error_code ec;
  // Split inside the header, then inside the body, then the last byte.
  const std::span<const std::byte> all(r);
  CHECK(pair.client->write(all.subspan(0, 3), ec) == 3);
  CHECK(pipe.records_written() == 0);
  CHECK(pair.client->write(all.subspan(3, 50), ec) == 50);
  CHECK(pipe.records_written() == 0);
  CHECK(pair.client->write(all.subspan(53, r.size() - 54), ec) ==
        static_cast<std::ptrdiff_t>(r.size() - 54));
  CHECK(pipe.records_written() == 0);
  CHECK(pair.client->write(all.subspan(r.size() - 1), ec) == 1);
  CHECK(pipe.records_written() == 1);
  CHECK(pipe.alert_records_written() == 0);
}

TEST_CASE("memory records_written counts two records written in one write") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  auto both = record(22, 40);
  const auto second = record(21, 2);
  both.insert(both.end(), second.begin(), second.end());
  write_all(*pair.client, both);
  CHECK(pipe.records_written() == 2);
  CHECK(pipe.alert_records_written() == 1);
}

TEST_CASE("memory records_written follows records that straddle writes byte by byte") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  std::vector<std::byte> stream;
  for (int i = 0; i < 5; ++i) {
    // i == 0 is an empty record: complete as soon as its header is.
    const auto r = record(i % 2 == 0 ? 21 : 23, static_cast<std::size_t>(i * 7));
    stream.insert(stream.end(), r.begin(), r.end());
  }
  std::error_code ec;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    REQUIRE(pair.client->write(std::span<const std::byte>(stream).subspan(i, 1), ec) == 1);
  }
  CHECK(pipe.records_written() == 5);
  CHECK(pipe.alert_records_written() == 3);
  CHECK(pipe.bytes_written() == stream.size());
}

TEST_CASE("memory records_written counts only the bytes a write budget accepted") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  const auto r = record(21, 2);
  pipe.set_write_budget(6);
  CHECK(write_all(*pair.client, r) == 6);
  CHECK(pipe.records_written() == 0);
  pipe.set_write_budget(-1);
  std::error_code ec;
  CHECK(pair.client->write(std::span<const std::byte>(r).subspan(6), ec) == 1);
  CHECK(pipe.records_written() == 1);
  CHECK(pipe.alert_records_written() == 1);
}

TEST_CASE("memory records_written handles a record of the maximum length") {
  auto pair = unitls::make_memory_pair();
  auto& pipe = pair.link->client_to_server();
  write_all(*pair.client, record(23, 0xffff));
  CHECK(pipe.records_written() == 1);
  write_all(*pair.client, record(23, 0x4000 + 256));
  CHECK(pipe.records_written() == 2);
  CHECK(pipe.buffered() == 0xffff + 0x4000 + 256 + 10);
}

TEST_CASE("either memory end and the link may outlive the others") {
  std::shared_ptr<unitls::MemoryLink> link;
  std::unique_ptr<unitls::Transport> server;
  {
    auto pair = unitls::make_memory_pair();
    write_all(*pair.client, bytes_of("before"));
    link = pair.link;
    server = std::move(pair.server);
  }
  // The client is gone; its bytes are still there and no EOF was implied.
  CHECK(link->client_to_server().buffered() == 6);
  CHECK(read_text(*server) == "before");
  CHECK(read_error(*server) == errc::want_read);
  link.reset();
  // The server end still writes into a pipe nobody reads.
  CHECK(write_all(*server, bytes_of("into the void")) == 13);

  auto pair = unitls::make_memory_pair();
  write_all(*pair.server, bytes_of("kept"));
  pair.link.reset();
  pair.server.reset();
  CHECK(read_text(*pair.client) == "kept");
  CHECK(read_error(*pair.client) == errc::want_read);
}
