// The key log (docs/contract.md, "Key log"): the same NSS lines, in the same
// order, on every backend, for full and resumed handshakes, on both sides.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

using Lines = std::vector<std::string>;

const std::vector<std::string> tls12_labels = {"CLIENT_RANDOM"};
const std::vector<std::string> tls13_labels = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"};

// One line taken apart: "<label> <client random> <secret>".
struct Line {
  std::string label, client_random, secret;
};

bool lower_hex(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Line split(const std::string& line) {
  Line l;
  const std::size_t a = line.find(' ');
  const std::size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
  REQUIRE_MESSAGE(b != std::string::npos, "not three fields: '" << line << "'");
  REQUIRE_MESSAGE(line.find(' ', b + 1) == std::string::npos, "more than three fields: '" << line << "'");
  l.label = line.substr(0, a);
  l.client_random = line.substr(a + 1, b - a - 1);
  l.secret = line.substr(b + 1);
  return l;
}

std::vector<std::string> labels_of(const Lines& lines) {
  std::vector<std::string> out;
  for (const auto& line : lines) out.push_back(split(line).label);
  return out;
}

// "A, B, C" for a failed check's message.
std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// A Transport that keeps a copy of everything written through it (the
// client's, to see its ClientHello as it went on the wire).
class Recording final : public Transport {
 public:
  Recording(std::unique_ptr<Transport> inner, std::shared_ptr<std::string> sent)
      : inner_(std::move(inner)), sent_(std::move(sent)) {}
  std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) override { return inner_->read(buf, ec); }
  std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) override {
    const std::ptrdiff_t n = inner_->write(buf, ec);
    if (n > 0) sent_->append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
    return n;
  }

 private:
  std::unique_ptr<Transport> inner_;
  std::shared_ptr<std::string> sent_;
};

// The random of the ClientHello that opens `sent`, lower-case hex: a
// handshake record (RFC 5246 6.2.1) holding a client_hello (type 1), whose
// body starts with the 2-byte version and the 32-byte random (7.4.1.2).
std::string client_hello_random(const std::string& sent) {
  REQUIRE(sent.size() >= 5 + 4 + 2 + 32);
  REQUIRE(static_cast<unsigned char>(sent[0]) == 22);
  REQUIRE(static_cast<unsigned char>(sent[5]) == 1);
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  for (std::size_t i = 11; i < 11 + 32; ++i) {
    const auto b = static_cast<unsigned char>(sent[i]);
    hex += digits[b >> 4];
    hex += digits[b & 0xf];
  }
  return hex;
}

// Contexts whose keylog callbacks append to client_lines / server_lines.
struct Logged {
  std::shared_ptr<Lines> client = std::make_shared<Lines>();
  std::shared_ptr<Lines> server = std::make_shared<Lines>();
  std::shared_ptr<Context> client_ctx, server_ctx;
};

Logged logged_contexts(Version min, Version max) {
  Logged l;
  Config c = client_config(max);
  Config s = server_config(max);
  c.min_version = s.min_version = min;
  c.keylog = [lines = l.client](std::string_view line) { lines->emplace_back(line); };
  s.keylog = [lines = l.server](std::string_view line) { lines->emplace_back(line); };
  std::error_code ec;
  std::string why;
  l.client_ctx = Context::create(c, ec, &why);
  REQUIRE_MESSAGE(l.client_ctx, why);
  l.server_ctx = Context::create(s, ec, &why);
  REQUIRE_MESSAGE(l.server_ctx, why);
  return l;
}

// A backend may declare that it cannot log the secrets of a version
// (Capabilities::keylog_tls1_3: Context::create answers unsupported): then
// skip("<why>") and true.
bool skip_unless_keylog(Version min, Version max) {
  Config c = client_config(max);
  c.min_version = min;
  c.keylog = [](std::string_view) {};
  std::error_code ec;
  std::string why;
  if (Context::create(c, ec, &why)) return false;
  REQUIRE_MESSAGE(ec == errc::unsupported, why);
  skip(why);
  return true;
}

// One connection of the logged contexts with its ClientHello recorded; the
// handshake completed. Returns the ClientHello's random.
std::string connect_recorded(Logged& l, MemoryConn& conn) {
  auto sent = std::make_shared<std::string>();
  MemoryPair pair = make_memory_pair();
  pair.client = std::make_unique<Recording>(std::move(pair.client), sent);
  conn = open_memory(l.client_ctx, l.server_ctx, std::move(pair));
  REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
  exchange(conn);
  return client_hello_random(*sent);
}

// The lines of one handshake: the labels of the negotiated version in the
// order of docs/contract.md, each once; the client random of the
// ClientHello on the wire; a secret of the size the version and the suite's
// hash give.
void check_lines(const Lines& lines, const SecureSocket& s, const std::string& wire_random) {
  const bool tls13 = s.protocol_version() == "TLSv1.3";
  CHECK_MESSAGE(labels_of(lines) == (tls13 ? tls13_labels : tls12_labels), joined(labels_of(lines)));
  // TLS 1.2: the 48-byte master secret (RFC 5246 8.1); TLS 1.3: Hash.length
  // of the suite (RFC 8446 7.1).
  const std::size_t secret_hex = !tls13 || s.cipher().ends_with("SHA384") ? 96 : 64;
  for (const auto& line : lines) {
    const Line l = split(line);
    CHECK_MESSAGE(l.client_random == wire_random, line);
    CHECK_MESSAGE(lower_hex(l.secret), line);
    CHECK_MESSAGE(l.secret.size() == secret_hex, line);
  }
}

}  // namespace

TEST_CASE("each side of a connection logs the same lines, with the ClientHello's random") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v) || skip_unless_keylog(v, v)) return;
    Logged l = logged_contexts(v, v);
    MemoryConn conn;
    const std::string random = connect_recorded(l, conn);
    REQUIRE(lower_hex(random));
    CHECK(conn.client->protocol_version() == (v == Version::tls1_3 ? "TLSv1.3" : "TLSv1.2"));
    check_lines(*l.client, *conn.client, random);
    CHECK(*l.server == *l.client);
    // Two TLS 1.3 secrets are never the same.
    if (v == Version::tls1_3) {
      for (std::size_t i = 0; i < l.client->size(); ++i)
        for (std::size_t j = i + 1; j < l.client->size(); ++j)
          CHECK(split((*l.client)[i]).secret != split((*l.client)[j]).secret);
    }
    end_properly(conn);
  }
}

TEST_CASE("the lines follow the negotiated version when both are allowed") {
  // mbedTLS 2.28 negotiates TLS 1.2 here, the others TLS 1.3: each logs the
  // set of the version it speaks.
  if (skip_unless_keylog(Version::tls1_2, Version::tls1_3)) return;
  Logged l = logged_contexts(Version::tls1_2, Version::tls1_3);
  MemoryConn conn;
  const std::string random = connect_recorded(l, conn);
  CHECK(conn.client->protocol_version() == (supports(Version::tls1_3) ? "TLSv1.3" : "TLSv1.2"));
  check_lines(*l.client, *conn.client, random);
  CHECK(*l.server == *l.client);
  end_properly(conn);
}

TEST_CASE("a resumed handshake logs its own lines, with its own client random") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v) || skip_unless_keylog(v, v)) return;
    Logged l = logged_contexts(v, v);
    MemoryConn first;
    const std::string first_random = connect_recorded(l, first);
    const Lines first_lines = *l.client;
    end_properly(first);
    l.client->clear();
    l.server->clear();

    MemoryConn second;
    const std::string second_random = connect_recorded(l, second);
    REQUIRE(second.client->session_reused());
    REQUIRE(second.server->session_reused());
    check_lines(*l.client, *second.client, second_random);
    CHECK(*l.server == *l.client);
    CHECK(second_random != first_random);
    if (v == Version::tls1_2) {
      // The master secret is the session's (RFC 5246 7.4.1.2): the same
      // secret, under the new client random.
      REQUIRE(first_lines.size() == 1);
      REQUIRE(l.client->size() == 1);
      CHECK(split((*l.client)[0]).secret == split(first_lines[0]).secret);
    }
    end_properly(second);
  }
}

TEST_CASE("the lines are handed over when the handshake ends, not before, and once") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v) || skip_unless_keylog(v, v)) return;
    Logged l = logged_contexts(v, v);
    MemoryConn conn = open_memory(l.client_ctx, l.server_ctx);
    bool client_done = false, server_done = false;
    for (int round = 0; round < 32 && !(client_done && server_done); ++round) {
      if (!client_done) client_done = conn.client->handshake() == 1;
      if (!server_done) server_done = conn.server->handshake() == 1;
      CHECK(l.client->empty() != client_done);
      CHECK(l.server->empty() != server_done);
    }
    REQUIRE((client_done && server_done));
    const Lines at_end = *l.client;
    // Data, a TLS 1.3 ticket, the close: no line more.
    exchange(conn);
    CHECK(conn.client->handshake() == 1);
    CHECK(*l.client == at_end);
    CHECK(l.server->size() == at_end.size());
    end_properly(conn);
    CHECK(*l.client == at_end);
  }
}

TEST_CASE("a keylog callback that throws does not disturb the handshake or the other lines") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v) || skip_unless_keylog(v, v)) return;
    auto calls = std::make_shared<int>(0);
    MemoryConn conn = connect_memory(v, [&](Config& client, Config&) {
      client.keylog = [calls](std::string_view) {
        ++*calls;
        throw std::runtime_error("the application's own failure");
      };
    });
    CHECK(*calls == static_cast<int>((v == Version::tls1_3 ? tls13_labels : tls12_labels).size()));
    end_properly(conn);
  }
}

TEST_CASE("a handshake that fails logs nothing, on either side") {
  // The client rejects the server's certificate (a name it does not have).
  // By then the stacks hold different secrets (OpenSSL's TLS 1.3 client
  // only SERVER_HANDSHAKE_TRAFFIC_SECRET, GnuTLS's both handshake secrets),
  // so none is logged anywhere.
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v) || skip_unless_keylog(v, v)) return;
    auto client_lines = std::make_shared<Lines>();
    auto server_lines = std::make_shared<Lines>();
    MemoryConn conn = open_memory(v, [&](Config& client, Config& server) {
      client.server_name = "not-the-server.example";
      client.keylog = [client_lines](std::string_view line) { client_lines->emplace_back(line); };
      server.keylog = [server_lines](std::string_view line) { server_lines->emplace_back(line); };
    });
    const HandshakeEnd end = run_handshake(conn);
    REQUIRE(end.client == failure(errc::certificate_error));
    REQUIRE(end.server.ret == -1);
    CHECK_MESSAGE(client_lines->empty(), joined(labels_of(*client_lines)));
    CHECK_MESSAGE(server_lines->empty(), joined(labels_of(*server_lines)));
    // Nor later.
    CHECK(conn.client->handshake() == -1);
    CHECK(client_lines->empty());
  }
}
