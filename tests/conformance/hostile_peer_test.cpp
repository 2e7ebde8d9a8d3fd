// Hostile or broken peers: bytes a TLS stack must refuse, and the odd but
// legal ones it must take, with the same answer and the same wire effect on
// every backend. A record or handshake message we reject is protocol_error,
// answered with exactly one fatal alert, and the connection is dead; a fatal
// alert from the peer is protocol_error with nothing sent back; bytes that
// end inside a record make the victim wait, and the EOF after them is
// unexpected_eof.
//
// Most cases play the peer by hand: one unitls socket (the victim) over the
// in-memory pair, the test on the raw other end, writing bytes and reading
// back every byte the victim wrote. Before the handshake has keys, an alert
// is the plaintext record 15 03 0x 00 02 <level> <description>, so the
// answer can be checked byte for byte. The cases that need a real peer run
// unitls on both ends: a handshake that must succeed goes through a relay
// that forwards every byte and reshapes or adds some on the way; after the
// handshake the alert is encrypted, and the peer's read() is the judge.
#include <algorithm>
#include <cerrno>
#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

using Bytes = std::vector<std::byte>;

// RFC 5246 6.2.1 / RFC 8446 5.1.
constexpr unsigned change_cipher_spec = 20;
constexpr unsigned alert = 21;
constexpr unsigned handshake = 22;
constexpr unsigned application_data = 23;
constexpr std::size_t header_size = 5;

// RFC 5246 7.2 / RFC 8446 6.
constexpr unsigned warning = 1;
constexpr unsigned fatal = 2;
constexpr unsigned handshake_failure = 40;
constexpr unsigned user_canceled = 90;
constexpr unsigned no_renegotiation = 100;

Bytes bytes_of(std::initializer_list<unsigned> values) {
  Bytes out;
  for (unsigned v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// One record: type, legacy_version, length, body.
Bytes record(unsigned type, const Bytes& body, unsigned version = 0x0303) {
  Bytes out = bytes_of({type, version >> 8, version & 0xff, static_cast<unsigned>(body.size() >> 8),
                        static_cast<unsigned>(body.size() & 0xff)});
  return out + body;
}

Bytes alert_record(unsigned level, unsigned description) {
  return record(alert, bytes_of({level, description}));
}

// ---- what the victim wrote ------------------------------------------------------

struct Record {
  unsigned type = 0;
  unsigned version = 0;
  Bytes body;
};

// Complete records in a byte stream, and the bytes of an incomplete one at
// its end.
struct Records {
  std::vector<Record> complete;
  std::size_t trailing = 0;
};

Records split_records(std::span<const std::byte> in) {
  Records out;
  std::size_t pos = 0;
  while (in.size() - pos >= header_size) {
    const auto at = [&](std::size_t i) { return std::to_integer<unsigned>(in[pos + i]); };
    const std::size_t length = at(3) << 8 | at(4);
    if (in.size() - pos - header_size < length) break;
    Record r;
    r.type = at(0);
    r.version = at(1) << 8 | at(2);
    r.body.assign(in.begin() + static_cast<std::ptrdiff_t>(pos + header_size),
                  in.begin() + static_cast<std::ptrdiff_t>(pos + header_size + length));
    out.complete.push_back(std::move(r));
    pos += header_size + length;
  }
  out.trailing = in.size() - pos;
  return out;
}

std::string alert_name(unsigned description) {
  switch (description) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 47: return "illegal_parameter";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 80: return "internal_error";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 109: return "missing_extension";
    default: return "alert " + std::to_string(description);
  }
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

// "nothing", "fatal decode_error", "handshake record (90 bytes)", ...
std::string describe_wire(std::span<const std::byte> wire) {
  if (wire.empty()) return "nothing";
  const Records records = split_records(wire);
  std::string out;
  for (const Record& r : records.complete) {
    if (!out.empty()) out += " + ";
    if (r.type == alert && r.body.size() == 2) {
      const unsigned level = std::to_integer<unsigned>(r.body[0]);
      out += level == fatal ? "fatal " : level == warning ? "warning " : "level " + std::to_string(level) + " ";
      out += alert_name(std::to_integer<unsigned>(r.body[1]));
      if ((r.version >> 8) != 3) out += " (record version " + hex(r.version) + ")";
    } else {
      out += "type " + std::to_string(r.type) + " record (" + std::to_string(r.body.size()) + " bytes)";
    }
  }
  if (records.trailing > 0) {
    if (!out.empty()) out += " + ";
    out += std::to_string(records.trailing) + " bytes of an incomplete record";
  }
  return out;
}

// Exactly one plaintext fatal alert record and nothing else.
bool is_one_fatal_alert(std::span<const std::byte> wire) {
  const Records records = split_records(wire);
  if (records.trailing != 0 || records.complete.size() != 1) return false;
  const Record& r = records.complete.front();
  return r.type == alert && (r.version >> 8) == 3 && r.body.size() == 2 &&
         std::to_integer<unsigned>(r.body[0]) == fatal;
}

// Reads everything the transport has now.
Bytes drain(Transport& t) {
  Bytes out;
  std::array<std::byte, 4096> buf;
  for (;;) {
    std::error_code ec;
    const std::ptrdiff_t n = t.read(buf, ec);
    if (n <= 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  return out;
}

// ---- one unitls socket, the test on the other end ---------------------------------

class Victim {
 public:
  Victim(Side side, Version v) : side_(side) {
    MemoryPair pair = make_memory_pair();
    link_ = pair.link;
    const Config config = side == Side::client ? client_config(v) : server_config(v);
    std::error_code ec;
    std::string message;
    context_ = Context::create(config, ec, &message);
    REQUIRE_MESSAGE(context_ != nullptr, describe(ec) << ": " << message);
    socket_ = context_->wrap(std::move(side == Side::client ? pair.client : pair.server));
    peer_end_ = std::move(side == Side::client ? pair.server : pair.client);
    REQUIRE(socket_ != nullptr);
    if (side == Side::client) {
      // The ClientHello goes out first: whatever the hostile server sends
      // is an answer to it.
      REQUIRE(outcome(*socket_, socket_->handshake()) == failure(errc::want_read));
      const Bytes hello = take_written();
      REQUIRE_FALSE(hello.empty());
      REQUIRE(std::to_integer<unsigned>(hello[0]) == handshake);
    }
  }

  SecureSocket& socket() { return *socket_; }

  // Bytes the victim reads next, as if its peer had sent them.
  void send(std::span<const std::byte> bytes) { inbound().inject_bytes(bytes); }
  void send_eof() { inbound().inject_eof(); }
  // Every byte the victim wrote since the last call.
  Bytes take_written() { return drain(*peer_end_); }

 private:
  MemoryPipe& inbound() {
    return side_ == Side::client ? link_->server_to_client() : link_->client_to_server();
  }

  Side side_;
  std::shared_ptr<Context> context_;
  std::unique_ptr<SecureSocket> socket_;
  std::unique_ptr<Transport> peer_end_;
  std::shared_ptr<MemoryLink> link_;
};

// Every call on a dead connection gives its error again, and nothing more
// goes on the wire (not even a close_notify: a close after a failure would
// look clean to the peer).
void expect_dead(Victim& victim, errc e) {
  SecureSocket& s = victim.socket();
  std::byte buf[16];
  CHECK(outcome(s, s.handshake()) == failure(e));
  CHECK(outcome(s, s.read(buf)) == failure(e));
  CHECK(outcome(s, s.write("x")) == failure(e));
  CHECK(outcome(s, s.shutdown()) == failure(e));
  CHECK(s.send_close_notify() == e);
  CHECK(s.get_shutdown() == 0u);
  CHECK(describe_wire(victim.take_written()) == "nothing");
}

// What the victim must make of some bytes in place of its peer's first
// handshake message.
enum class Verdict {
  rejected,    // -1 protocol_error and exactly one fatal alert; dead
  peer_alert,  // -1 protocol_error and nothing sent back (the peer has ended); dead
  waits,       // -1 want_read and nothing sent: the victim still waits for the
               // peer's hello (ignored input, or a record not complete yet);
               // an EOF then is unexpected_eof with nothing sent; dead
};

std::string row(const SecureSocket& s, const Outcome& got, std::span<const std::byte> wire) {
  std::ostringstream os;
  os << "returned " << got << ", native " << describe(s.native_error()) << ", wrote " << describe_wire(wire);
  return os.str();
}

void expect_verdict(Victim& victim, std::span<const std::byte> input, Verdict verdict) {
  SecureSocket& s = victim.socket();
  victim.send(input);
  const Outcome got = outcome(s, s.handshake());
  const Bytes wire = victim.take_written();
  INFO(row(s, got, wire));
  switch (verdict) {
    case Verdict::rejected:
      CHECK(got == failure(errc::protocol_error));
      CHECK_MESSAGE(is_one_fatal_alert(wire), "expected exactly one fatal alert");
      if (got == failure(errc::protocol_error)) expect_dead(victim, errc::protocol_error);
      break;
    case Verdict::peer_alert:
      CHECK(got == failure(errc::protocol_error));
      CHECK(describe_wire(wire) == "nothing");
      if (got == failure(errc::protocol_error)) expect_dead(victim, errc::protocol_error);
      break;
    case Verdict::waits: {
      CHECK(got == failure(errc::want_read));
      CHECK(describe_wire(wire) == "nothing");
      if (got != failure(errc::want_read)) break;
      victim.send_eof();
      const Outcome end = outcome(s, s.handshake());
      const Bytes after = victim.take_written();
      INFO("after EOF: " << row(s, end, after));
      CHECK(end == failure(errc::unexpected_eof));
      CHECK(describe_wire(after) == "nothing");
      if (end == failure(errc::unexpected_eof)) expect_dead(victim, errc::unexpected_eof);
      break;
    }
  }
}

// One row of a table: what the hostile peer sends in place of its first
// handshake message, and what a client and a server victim must make of it.
struct Hostile {
  std::string name;
  std::function<Bytes(Side victim)> bytes;
  Verdict client;
  Verdict server;
};

Hostile to_both(std::string name, Bytes bytes, Verdict verdict) {
  return {std::move(name), [b = std::move(bytes)](Side) { return b; }, verdict, verdict};
}

// Runs every row against a client and a server victim, on each version.
// The plaintext phase is the same for both versions; the versions still
// differ in what the stacks expect next.
void run_table(const std::vector<Hostile>& table) {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side side : {Side::client, Side::server}) {
      for (const Hostile& h : table) {
        CAPTURE(side_name(side));
        CAPTURE(h.name);
        Victim victim(side, v);
        expect_verdict(victim, h.bytes(side), side == Side::client ? h.client : h.server);
      }
    }
  }
}

Bytes repeated(const Bytes& b, int n) {
  Bytes out;
  for (int i = 0; i < n; ++i) out = out + b;
  return out;
}

// An SSLv2-format ClientHello (RFC 5246 E.2) offering at most TLS 1.0: the
// compatibility hello of clients from the last century.
Bytes sslv2_client_hello() {
  Bytes body = bytes_of({0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10});
  body = body + bytes_of({0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a, 0x01, 0x00, 0x80,
                          0x07, 0x00, 0xc0, 0x03, 0x00, 0x80, 0x00, 0x00, 0xff});
  for (unsigned i = 0; i < 16; ++i) body.push_back(static_cast<std::byte>(0xa0 + i));
  return bytes_of({0x80, static_cast<unsigned>(body.size())}) + body;
}

// The first handshake message each side expects (RFC 8446 4): a ClientHello
// to a server, a ServerHello to a client whose ClientHello went out.
unsigned first_message_type(Side victim) { return victim == Side::server ? 1 : 2; }

// ---- a real peer, through the test ----------------------------------------------

// A unitls client and a unitls server of the backend under test, each over
// its own memory pair, joined by the test: forward() moves every byte each
// side wrote to the other, through that direction's reshape function when
// there is one, and inject() adds bytes of the test's own.
class Relay {
 public:
  explicit Relay(Version v) {
    std::error_code ec;
    std::string message;
    client_ctx_ = Context::create(client_config(v), ec, &message);
    REQUIRE_MESSAGE(client_ctx_ != nullptr, describe(ec) << ": " << message);
    server_ctx_ = Context::create(server_config(v), ec, &message);
    REQUIRE_MESSAGE(server_ctx_ != nullptr, describe(ec) << ": " << message);
    MemoryPair a = make_memory_pair();
    MemoryPair b = make_memory_pair();
    client_ = client_ctx_->wrap(std::move(a.client));
    client_end_ = std::move(a.server);
    server_ = server_ctx_->wrap(std::move(b.server));
    server_end_ = std::move(b.client);
    REQUIRE(client_ != nullptr);
    REQUIRE(server_ != nullptr);
  }

  SecureSocket& socket(Side s) { return s == Side::client ? *client_ : *server_; }

  // Reshapes what side s writes before the other side reads it.
  std::function<Bytes(Bytes)> reshape[2];

  // Bytes side s reads next, as if its peer had sent them.
  void inject(Side s, std::span<const std::byte> bytes) { put(end_facing(s), bytes); }

  // Everything side s wrote, as it wrote it.
  const Bytes& written_by(Side s) const { return written_[index(s)]; }

  void forward() {
    for (Side from : {Side::client, Side::server}) {
      Bytes out = drain(end_facing(from));
      written_[index(from)] = written_[index(from)] + out;
      if (reshape[index(from)]) out = reshape[index(from)](std::move(out));
      put(end_facing(peer_of(from)), out);
    }
  }

  // Both handshakes, forwarding after each step. False when either fails.
  bool handshake(int max_rounds = 32) {
    bool done[2] = {false, false};
    for (int round = 0; round < max_rounds && !(done[0] && done[1]); ++round) {
      for (Side s : {Side::client, Side::server}) {
        if (done[index(s)]) continue;
        SecureSocket& sock = socket(s);
        if (sock.handshake() == 1) {
          done[index(s)] = true;
        } else if (sock.last_error() != errc::want_read && sock.last_error() != errc::want_write) {
          forward();
          return false;
        }
        forward();
      }
    }
    return done[0] && done[1];
  }

  std::string state() const {
    auto one = [](const SecureSocket& s) {
      return describe(s.last_error()) + (s.native_error() ? " (native " + describe(s.native_error()) + ")" : "");
    };
    return "client " + one(*client_) + ", wrote " + describe_wire(written_[0]) + "; server " + one(*server_) +
           ", wrote " + describe_wire(written_[1]);
  }

 private:
  static std::size_t index(Side s) { return s == Side::client ? 0 : 1; }
  // The raw end whose writes side s reads (and whose reads are what s wrote).
  Transport& end_facing(Side s) { return s == Side::client ? *client_end_ : *server_end_; }
  static void put(Transport& t, std::span<const std::byte> bytes) {
    if (bytes.empty()) return;
    std::error_code ec;
    REQUIRE(t.write(bytes, ec) == static_cast<std::ptrdiff_t>(bytes.size()));
  }

  std::shared_ptr<Context> client_ctx_, server_ctx_;
  std::unique_ptr<SecureSocket> client_, server_;
  std::unique_ptr<Transport> client_end_, server_end_;
  Bytes written_[2];
};

// Splits every plaintext handshake record into records of one byte each
// (RFC 5246 6.2.1, RFC 8446 5.1: handshake messages may be fragmented across
// records at will). Records after a ChangeCipherSpec are encrypted (TLS 1.2's
// Finished) or application_data on the outside (TLS 1.3), and pass unchanged.
std::function<Bytes(Bytes)> one_byte_handshake_records() {
  struct State {
    Bytes pending;
    bool encrypted = false;
  };
  auto state = std::make_shared<State>();
  return [state](Bytes in) {
    state->pending = state->pending + in;
    const Records records = split_records(state->pending);
    Bytes out;
    for (const Record& r : records.complete) {
      if (r.type == change_cipher_spec) state->encrypted = true;
      if (r.type != handshake || state->encrypted) {
        out = out + record(r.type, r.body, r.version);
        continue;
      }
      for (std::byte b : r.body) out = out + record(r.type, Bytes{b}, r.version);
    }
    state->pending.erase(state->pending.begin(),
                         state->pending.end() - static_cast<std::ptrdiff_t>(records.trailing));
    return out;
  };
}

// Data both ways once the handshake is done (TLS 1.3 tickets go by too).
void expect_data_flows(Relay& relay) {
  SecureSocket& client = relay.socket(Side::client);
  SecureSocket& server = relay.socket(Side::server);
  CHECK(outcome(client, client.write("ping")) == success(4));
  relay.forward();
  std::string got;
  CHECK(outcome(server, server.read(got)) == success(4));
  CHECK(outcome(server, server.write("pong")) == success(4));
  relay.forward();
  CHECK(outcome(client, client.read(got)) == success(4));
  CHECK(got == "pingpong");
}

// A record the victim (side s of an established connection) must reject:
// it fails with protocol_error, writes exactly one record (a fatal alert:
// encrypted now, so the peer's read is the judge), and is dead.
void expect_rejected_after_handshake(MemoryConn& conn, Side s, std::span<const std::byte> input) {
  SecureSocket& victim = conn.socket(s);
  SecureSocket& peer = conn.socket(peer_of(s));
  const auto records = conn.records_from(s);
  conn.to(s).inject_bytes(input);
  std::byte buf[64];
  const Outcome got = outcome(victim, victim.read(buf));
  const auto written = conn.records_from(s) - records;
  const Outcome peer_got = outcome(peer, peer.read(buf));
  INFO("victim returned " << got << ", native " << describe(victim.native_error()) << ", wrote " << written
                          << " record(s); its peer's read returned " << peer_got << ", native "
                          << describe(peer.native_error()));
  CHECK(got == failure(errc::protocol_error));
  CHECK(written == 1);
  CHECK(peer_got == failure(errc::protocol_error));  // a fatal alert, whatever it says
  if (got != failure(errc::protocol_error)) return;
  const auto after = conn.records_from(s);
  CHECK(outcome(victim, victim.read(buf)) == failure(errc::protocol_error));
  CHECK(outcome(victim, victim.write("x")) == failure(errc::protocol_error));
  CHECK(outcome(victim, victim.shutdown()) == failure(errc::protocol_error));
  CHECK(victim.send_close_notify() == errc::protocol_error);
  CHECK(conn.records_from(s) == after);
}

}  // namespace

// ---- in place of the first handshake message ----------------------------------------

TEST_CASE("bytes that are not TLS at all are protocol_error, answered with one fatal alert") {
  const std::vector<Hostile> table = {
      to_both("64 random bytes", to_bytes(pattern(64)), Verdict::rejected),
      {"plain HTTP",
       [](Side victim) {
         return to_bytes(victim == Side::server ? "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                                : "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
       },
       Verdict::rejected, Verdict::rejected},
      to_both("an SSLv2-format ClientHello offering TLS 1.0", sslv2_client_hello(), Verdict::rejected),
      to_both("a record of version 2.0", record(handshake, bytes_of({1, 0, 0, 0}), 0x0200), Verdict::rejected),
      to_both("a record of version 4.3", record(handshake, bytes_of({1, 0, 0, 0}), 0x0403), Verdict::rejected),
  };
  run_table(table);
}

TEST_CASE("a malformed record is protocol_error, answered with one fatal alert") {
  const std::vector<Hostile> table = {
      // RFC 8446 5.1 / RFC 5246 6.2.1: more than 2^14 + 256 (+ 2048) bytes is
      // record_overflow; the header alone says so.
      to_both("a record header announcing 0xffff bytes",
              bytes_of({handshake, 3, 3, 0xff, 0xff}) + Bytes(16, std::byte{0}), Verdict::rejected),
      to_both("a record of unknown content type 0x7f", record(0x7f, bytes_of({1, 0})), Verdict::rejected),
      // "Implementations MUST NOT send zero-length fragments of Handshake,
      // Alert, or ChangeCipherSpec content types" (RFC 5246 6.2.1, RFC 8446 5.1).
      to_both("a zero-length handshake record", record(handshake, {}), Verdict::rejected),
      to_both("a zero-length alert record", record(alert, {}), Verdict::rejected),
      to_both("a zero-length ChangeCipherSpec record", record(change_cipher_spec, {}), Verdict::rejected),
      to_both("an alert record of three bytes", record(alert, bytes_of({fatal, handshake_failure, 0})),
              Verdict::rejected),
      to_both("an empty application_data record", record(application_data, {}), Verdict::rejected),
  };
  run_table(table);
}

TEST_CASE("a handshake message announcing 0xffffff bytes is protocol_error, answered with one fatal alert") {
  const std::vector<Hostile> table = {
      {"the first handshake message, header only",
       [](Side victim) { return record(handshake, bytes_of({first_message_type(victim), 0xff, 0xff, 0xff})); },
       Verdict::rejected, Verdict::rejected},
      {"the first handshake message with 100 bytes of its body",
       [](Side victim) {
         return record(handshake, bytes_of({first_message_type(victim), 0xff, 0xff, 0xff}) + Bytes(100, std::byte{0}));
       },
       Verdict::rejected, Verdict::rejected},
  };
  run_table(table);
}

TEST_CASE("an alert in place of the hello: a client ends without answering, a server rejects it") {
  // A client whose ClientHello went out may hear that the server gave up:
  // a fatal alert (or close_notify) ends the connection for both, and
  // nothing is answered. A server's first message must be a ClientHello
  // (RFC 8446 4.1.2), so any alert is an unexpected message there.
  const std::vector<Hostile> table = {
      to_both("fatal handshake_failure", alert_record(fatal, handshake_failure), Verdict::peer_alert),
      to_both("fatal user_canceled", alert_record(fatal, user_canceled), Verdict::peer_alert),
      to_both("a close_notify", alert_record(warning, 0), Verdict::peer_alert),
  };
  std::vector<Hostile> rows = table;
  for (Hostile& h : rows) h.server = Verdict::rejected;
  rows.push_back({"a warning user_canceled", [](Side) { return alert_record(warning, user_canceled); },
                  Verdict::waits, Verdict::rejected});
  // RFC 5246 7.2.2: no_renegotiation answers a request to renegotiate, and
  // nobody asked; OpenSSL always fails on it.
  rows.push_back(to_both("a warning no_renegotiation", alert_record(warning, no_renegotiation), Verdict::rejected));
  run_table(rows);
}

TEST_CASE("four warning alerts in a row are ignored, the fifth is protocol_error, answered with one fatal alert") {
  // OpenSSL allows four consecutive warnings and fails on the fifth
  // (MAX_WARN_ALERT_COUNT); a limit one stack enforces holds on every backend.
  const Bytes warn = alert_record(warning, user_canceled);
  const std::vector<Hostile> table = {
      {"four warning user_canceled", [warn](Side) { return repeated(warn, 4); }, Verdict::waits, Verdict::rejected},
      {"five warning user_canceled", [warn](Side) { return repeated(warn, 5); }, Verdict::rejected,
       Verdict::rejected},
      {"a thousand warning user_canceled", [warn](Side) { return repeated(warn, 1000); }, Verdict::rejected,
       Verdict::rejected},
  };
  run_table(table);
}

TEST_CASE("a ChangeCipherSpec before the ClientHello is protocol_error, answered with one fatal alert") {
  // RFC 8446 5: a change_cipher_spec record before the first ClientHello
  // "MUST be treated as an unexpected record type"; in TLS 1.2 it is out of
  // order anyway.
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Victim victim(Side::server, v);
    expect_verdict(victim, record(change_cipher_spec, bytes_of({1})), Verdict::rejected);
  }
}

TEST_CASE("a record cut short waits for the rest, and the EOF after it is unexpected_eof") {
  const std::vector<Hostile> table = {
      to_both("three bytes of a record header", bytes_of({handshake, 3, 3}), Verdict::waits),
      to_both("a record header alone", bytes_of({handshake, 3, 3, 0, 100}), Verdict::waits),
      to_both("a record announcing 100 bytes with 10 of them",
              bytes_of({handshake, 3, 3, 0, 100}) + Bytes(10, std::byte{0}), Verdict::waits),
  };
  run_table(table);
}

// ---- odd but legal: a real peer through the relay -------------------------------

TEST_CASE("handshake messages split into one-byte records are accepted") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side victim : {Side::client, Side::server}) {
      CAPTURE(side_name(victim));
      Relay relay(v);
      // What the victim's peer sends is reshaped: a server gets the client's
      // ClientHello one byte a record, a client the server's plaintext flight.
      relay.reshape[victim == Side::server ? 0 : 1] = one_byte_handshake_records();
      const bool done = relay.handshake(4096);
      CHECK_MESSAGE(done, relay.state());
      if (!done) continue;
      CHECK(describe_wire(relay.written_by(victim)).find("alert") == std::string::npos);
      expect_data_flows(relay);
    }
  }
}

TEST_CASE("warning alerts before the hello, fewer than five, are ignored and the handshake carries on") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Relay relay(v);
    SecureSocket& client = relay.socket(Side::client);
    CHECK(outcome(client, client.handshake()) == failure(errc::want_read));
    relay.inject(Side::client, repeated(alert_record(warning, user_canceled), 4));
    REQUIRE_MESSAGE(relay.handshake(), relay.state());
    CHECK(describe_wire(relay.written_by(Side::client)).find("alert") == std::string::npos);
    expect_data_flows(relay);
  }
}

// ---- after the handshake ----------------------------------------------------------------

TEST_CASE("100000 one-byte application records all arrive, in order, without an error") {
  constexpr int count = 100000;
  const std::string data = pattern(count);
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side writer : {Side::client, Side::server}) {
      CAPTURE(side_name(writer));
      MemoryConn conn = connect_memory(v);
      SecureSocket& w = conn.socket(writer);
      SecureSocket& r = conn.socket(peer_of(writer));
      const auto records = conn.records_from(writer);
      int written = 0;
      for (; written < count; ++written) {
        if (w.write(std::string_view(&data[static_cast<std::size_t>(written)], 1)) != 1) break;
      }
      CHECK_MESSAGE(written == count, "write() " << written << " failed: " << describe(w.last_error()));
      CHECK(conn.records_from(writer) - records == static_cast<std::uint64_t>(count));
      std::string got;
      got.reserve(count);
      std::ptrdiff_t n = 1;
      for (int calls = 0; got.size() < data.size() && n > 0 && calls < 2 * count; ++calls) n = r.read(got);
      INFO("last read returned " << outcome(r, n) << ", native " << describe(r.native_error()));
      CHECK(got.size() == data.size());
      CHECK(got == data);
      CHECK(outcome(r, n) == success(n));
      CHECK(conn.alerts_from(peer_of(writer)) == 0);
    }
  }
}

TEST_CASE("a malformed record after the handshake is protocol_error, answered with one fatal alert") {
  struct Row {
    std::string name;
    Bytes bytes;
  };
  const std::vector<Row> rows = {
      {"a record of unknown content type 0x7f", record(0x7f, bytes_of({1, 0}))},
      {"a record header announcing 0xffff bytes", bytes_of({application_data, 3, 3, 0xff, 0xff}) + Bytes(16, std::byte{0})},
      {"an application_data record no key decrypts", record(application_data, Bytes(32, std::byte{0xa5}))},
      {"a zero-length handshake record", record(handshake, {})},
      {"a plaintext HelloRequest", record(handshake, bytes_of({0, 0, 0, 0}))},
      {"a plaintext ChangeCipherSpec", record(change_cipher_spec, bytes_of({1}))},
      {"a zero-length alert record", record(alert, {})},
  };
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side side : {Side::client, Side::server}) {
      for (const Row& row : rows) {
        CAPTURE(side_name(side));
        CAPTURE(row.name);
        MemoryConn conn = connect_memory(v);
        expect_rejected_after_handshake(conn, side, row.bytes);
      }
    }
  }
}

// ---- found by fuzz_divergence (fuzz/): one regression test each ----------------

TEST_CASE("a transport reset during the handshake is transport_error on both sides, never a truncation") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    conn.from(Side::server).inject_error(ECONNRESET);  // the server's writes, the client's reads
    // The client's hello goes out; its read of the answer meets the reset.
    CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::transport_error));
    CHECK(conn.records_from(Side::client) == 1);
    // The server reads the hello; its answer meets the reset.
    CHECK(outcome(*conn.server, conn.server->handshake()) == failure(errc::transport_error));
    CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::transport_error));
  }
}

TEST_CASE("a bad record is protocol_error even when our alert cannot go out any more") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = connect_memory(v);
    REQUIRE(write_all(*conn.server, std::string(100, 'x')));
    conn.from(Side::client).inject_eof();  // the client's writes fail (EPIPE)
    REQUIRE(conn.from(Side::server).corrupt_last_byte());
    std::byte buf[128];
    CHECK(outcome(*conn.client, conn.client->read(buf)) == failure(errc::protocol_error));
    CHECK(outcome(*conn.client, conn.client->read(buf)) == failure(errc::protocol_error));
  }
}

TEST_CASE("a ServerHelloDone announcing a body is protocol_error, not a wait") {
  // TLS 1.2 only: in TLS 1.3 the server's flight after its hello is encrypted.
  if (skip_unless_supported(Version::tls1_2)) return;
  MemoryConn conn = open_memory(Version::tls1_2);
  CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
  CHECK(outcome(*conn.server, conn.server->handshake()) == failure(errc::want_read));
  // The flight ends with ServerHelloDone, 0e 00 00 00: its length becomes non-zero.
  REQUIRE(conn.from(Side::server).corrupt_last_byte());
  CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::protocol_error));
  CHECK(conn.alerts_from(Side::client) == 1);
}

TEST_CASE("after our close_notify a bad record is protocol_error and nothing more goes on the wire") {
  // RFC 5246 7.2.1: the sender of a close_notify sends nothing more, not
  // even the fatal alert it would owe a bad record (OpenSSL's behaviour;
  // mbedTLS and GnuTLS sent one).
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      MemoryConn conn = connect_memory(v);
      SecureSocket& closer = conn.socket(side);
      SecureSocket& peer = conn.socket(peer_of(side));
      CHECK(outcome(closer, closer.shutdown()) == success(0));
      const auto sent = conn.bytes_from(side);
      REQUIRE(write_all(peer, "late data"));
      REQUIRE(conn.from(peer_of(side)).corrupt_last_byte());
      std::byte buf[64];
      CHECK(outcome(closer, closer.read(buf)) == failure(errc::protocol_error));
      CHECK(conn.bytes_from(side) == sent);
    }
  }
}

TEST_CASE("the handshake takes no bytes from the transport past the records it needs") {
  // What follows the handshake on the wire is not the handshake's: a stack
  // that reads ahead would swallow it (found by fuzz_divergence: the mbedTLS
  // engine's reassembly read 4 KiB at a time). TLS 1.2, where the server
  // finishes first and its data can follow its Finished at once.
  if (skip_unless_supported(Version::tls1_2)) return;
  MemoryConn conn = open_memory(Version::tls1_2);
  CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
  CHECK(outcome(*conn.server, conn.server->handshake()) == failure(errc::want_read));
  CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
  REQUIRE(outcome(*conn.server, conn.server->handshake()) == success(1));
  REQUIRE(write_all(*conn.server, "after"));
  const std::size_t with_data = conn.link->server_to_client().buffered();
  CHECK(outcome(*conn.client, conn.client->handshake()) == success(1));
  const std::size_t left = conn.link->server_to_client().buffered();
  CHECK(left > 0);
  CHECK(left < with_data);
  CHECK(read_exact(*conn.client, 5) == "after");
}

// ---- the server name a ClientHello carries (docs/contract.md, "Server names") ------

namespace {

// The first flight of a client from `context` (a ClientHello: one record),
// with the body of its server_name extension replaced by `sni` (added when
// the client sent none; left out when sni is nullopt), and `extra` after it
// (an extension of a type the client sent replaces the client's). Without a
// PSK binder over the bytes changed: a fresh client, or a TLS 1.2 one
// offering a session ID.
Bytes hello_with_server_name(Context& context, const std::optional<Bytes>& sni,
                             const std::vector<std::pair<unsigned, Bytes>>& extra = {}) {
  MemoryPair pair = make_memory_pair();
  auto client = context.wrap(std::move(pair.client));
  REQUIRE(outcome(*client, client->handshake()) == failure(errc::want_read));
  const Bytes flight = drain(*pair.server);
  const Records records = split_records(flight);
  REQUIRE(records.trailing == 0);
  REQUIRE(records.complete.size() == 1);
  const Bytes& msg = records.complete.front().body;
  REQUIRE(msg.size() > 4);
  REQUIRE(std::to_integer<unsigned>(msg[0]) == 1);  // client_hello
  const auto u8 = [&](std::size_t i) { return std::to_integer<std::size_t>(msg.at(i)); };
  const auto u16 = [&](std::size_t i) { return u8(i) << 8 | u8(i + 1); };
  std::size_t pos = 4 + 2 + 32;      // header, legacy_version, random
  pos += 1 + u8(pos);                // legacy_session_id
  pos += 2 + u16(pos);               // cipher_suites
  pos += 1 + u8(pos);                // legacy_compression_methods
  const std::size_t ext_end = pos + 2 + u16(pos);
  REQUIRE(ext_end == msg.size());
  Bytes extensions;
  const auto add = [&](std::size_t type, const Bytes& body) {
    extensions = extensions + bytes_of({static_cast<unsigned>(type >> 8), static_cast<unsigned>(type & 0xff),
                                        static_cast<unsigned>(body.size() >> 8),
                                        static_cast<unsigned>(body.size() & 0xff)}) + body;
  };
  if (sni) add(0, *sni);  // first: a server reads it before anything else anyway
  for (const auto& [type, body] : extra) add(type, body);
  for (std::size_t at = pos + 2; at < ext_end;) {
    const std::size_t type = u16(at), len = u16(at + 2);
    const bool replaced = std::any_of(extra.begin(), extra.end(), [type](const auto& e) { return e.first == type; });
    if (type != 0 && !replaced)
      add(type, Bytes(msg.begin() + static_cast<std::ptrdiff_t>(at + 4),
                      msg.begin() + static_cast<std::ptrdiff_t>(at + 4 + len)));
    at += 4 + len;
  }
  Bytes body(msg.begin() + 4, msg.begin() + static_cast<std::ptrdiff_t>(pos));
  body = body + bytes_of({static_cast<unsigned>(extensions.size() >> 8),
                          static_cast<unsigned>(extensions.size() & 0xff)}) + extensions;
  const Bytes hello = bytes_of({1, static_cast<unsigned>(body.size() >> 16), static_cast<unsigned>((body.size() >> 8) & 0xff),
                                static_cast<unsigned>(body.size() & 0xff)}) + body;
  return record(handshake, hello, records.complete.front().version);
}

Bytes hello_with_server_name(Version v, const Bytes& sni, const std::vector<std::pair<unsigned, Bytes>>& extra) {
  std::error_code ec;
  Config config = client_config(v);
  config.alpn.clear();  // the rows bring their own
  auto context = Context::create(config, ec);
  REQUIRE(context != nullptr);
  return hello_with_server_name(*context, sni, extra);
}

// A server_name extension body: ServerNameList of (type, name) entries.
Bytes server_name_list(std::initializer_list<std::pair<unsigned, std::string_view>> entries) {
  Bytes list;
  for (const auto& [type, name] : entries) {
    list = list + bytes_of({type, static_cast<unsigned>(name.size() >> 8), static_cast<unsigned>(name.size() & 0xff)});
    for (char c : name) list.push_back(static_cast<std::byte>(c));
  }
  return bytes_of({static_cast<unsigned>(list.size() >> 8), static_cast<unsigned>(list.size() & 0xff)}) + list;
}

Bytes host_name(std::string_view name) { return server_name_list({{0, name}}); }

struct NameCase {
  std::string name;
  Bytes extension;
  int alert;  // the fatal alert that answers it; -1: accepted
  std::vector<std::pair<unsigned, Bytes>> extra = {};  // extensions after it
  int native = alert;  // native_error() in unitls.hello; -1: the stack's own
};

constexpr int decode_error = 50;
constexpr int illegal_parameter = 47;
constexpr int unrecognized_name = 112;
constexpr unsigned alpn_extension = 16;

}  // namespace

TEST_CASE("a server takes a ClientHello's server name by one rule: anything else is protocol_error with one alert") {
  using namespace std::string_literals;
  // RFC 6066 3: HostName<1..2^16-1> is an ASCII host name. Taken: one
  // host_name entry (decode_error otherwise: OpenSSL refuses more, GnuTLS
  // and mbedTLS took the first host_name anywhere in the list) of 1 to 255
  // bytes of letters, digits, '-' and '.' (unrecognized_name otherwise:
  // GnuTLS refuses every other byte, '_' included, and cannot be told
  // otherwise; OpenSSL took them all but NUL, mbedTLS everything).
  const std::vector<NameCase> cases = {
      {"example.com", host_name("example.com"), -1},
      {"EXAMPLE-1.com (upper case, digit, hyphen)", host_name("EXAMPLE-1.com"), -1},
      {"a trailing dot", host_name("example.com."), -1},
      {"an IPv4 literal", host_name("127.0.0.1"), -1},
      {"255 bytes", host_name(std::string(255, 'a')), -1},
      {"256 bytes", host_name(std::string(256, 'a')), unrecognized_name},
      {"an underscore", host_name("a_b.example"), unrecognized_name},
      {"a space", host_name("exa mple.com"), unrecognized_name},
      {"a NUL byte", host_name("example.com\0evil"s), unrecognized_name},
      {"UTF-8", host_name("\xc3\xa9t\xc3\xa9.example"), unrecognized_name},
      {"a wildcard", host_name("*.example.com"), unrecognized_name},
      {"an empty name", host_name(""), decode_error},
      {"an entry of another type first", server_name_list({{1, "other"}, {0, "example.com"}}), decode_error},
      {"a host_name, then an entry of another type", server_name_list({{0, "example.com"}, {1, "other"}}),
       decode_error},
      {"two host_names", server_name_list({{0, "example.com"}, {0, "example.org"}}), decode_error},
      {"an empty list", bytes_of({0, 0}), decode_error},
      {"an empty extension", Bytes{}, decode_error},
      {"a list longer than the extension", bytes_of({0, 9, 0, 0, 1, 'a'}), decode_error},
      {"bytes after the list", host_name("example.com") + bytes_of({0}), decode_error},
      // RFC 8446 4.2: no extension twice. OpenSSL refuses it before unitls
      // sees the hello (illegal_parameter, its own native error); the
      // others would have taken the last name, or refused with another
      // alert.
      {"a second server_name", host_name("localhost"), illegal_parameter, {{0, host_name("other.example")}}, -1},
      {"a refused name, then a good one", host_name("a_b.example"), illegal_parameter,
       {{0, host_name("localhost")}}, -1},
      // RFC 7301 3.1; judged whatever the server's ALPN (mbedTLS ignored it
      // without one, and so let a refused name through behind it).
      {"ALPN with an empty name", host_name("localhost"), decode_error, {{alpn_extension, bytes_of({0, 1, 0})}},
       1050},
      {"ALPN with a byte after its list", host_name("localhost"), decode_error,
       {{alpn_extension, bytes_of({0, 2, 1, 'h', 0})}}, 1050},
      {"a refused name, then a malformed ALPN", host_name("a_b.example"), unrecognized_name,
       {{alpn_extension, bytes_of({0, 1, 0})}}},
      // RFC 8446 4.2 holds for types no stack knows too (OpenSSL let those
      // through twice).
      {"an unknown extension twice", host_name("localhost"), illegal_parameter,
       {{0x1234, Bytes{}}, {0x1234, Bytes{}}}},
      // Lists that do not fill their extension (OpenSSL refuses them; GnuTLS
      // read the declared length only, mbedTLS ignored supported_versions).
      {"supported_groups longer than its list", host_name("localhost"), decode_error,
       {{10, bytes_of({0, 2, 0, 0x1d, 0, 0x17})}}, -1},
      {"supported_groups of an odd length", host_name("localhost"), decode_error,
       {{10, bytes_of({0, 3, 0, 0x1d, 0})}}, -1},
      {"supported_versions longer than its list", host_name("localhost"), decode_error,
       {{43, bytes_of({2, 3, 3, 3, 4})}}, -1},
  };
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (const NameCase& c : cases) {
      CAPTURE(c.name);
      Victim victim(Side::server, v);
      SecureSocket& s = victim.socket();
      victim.send(hello_with_server_name(v, c.extension, c.extra));
      const Outcome got = outcome(s, s.handshake());
      const Bytes wire = victim.take_written();
      INFO(row(s, got, wire));
      if (c.alert < 0) {
        CHECK(got == failure(errc::want_read));
        const Records records = split_records(wire);
        REQUIRE_FALSE(records.complete.empty());
        CHECK(records.complete.front().type == handshake);  // the ServerHello
        continue;
      }
      CHECK(got == failure(errc::protocol_error));
      REQUIRE(is_one_fatal_alert(wire));
      CHECK(std::to_integer<int>(split_records(wire).complete.front().body[1]) == c.alert);
      if (c.native >= 0) {
        CHECK(s.native_error().category().name() == std::string_view("unitls.hello"));
        CHECK(s.native_error().value() == c.native);
      }
      expect_dead(victim, errc::protocol_error);
    }
  }
}

TEST_CASE("TLS 1.2: a server resumes a session only under the server name it was made for") {
  // RFC 6066 3: "the server MUST NOT accept the request to resume the
  // session if the server_name extension contains a different name" (only
  // GnuTLS checked; the core's session-ID cache does it for every backend).
  // The resumption offers the session ID of a properly closed connection to
  // "localhost" under another name: the server's answer is a full handshake
  // (a Certificate, no ChangeCipherSpec in its flight). Under the same name
  // it resumes. (TLS 1.3 leaves the check to the client, RFC 8446 4.6.1: its
  // PSK binder covers the ClientHello, so this rewrite cannot be made.)
  if (skip_unless_supported(Version::tls1_2)) return;
  MemoryConn first = connect_memory(Version::tls1_2);
  end_properly(first);
  for (const std::string_view name : {"localhost", "other.example", "LOCALHOST", ""}) {
    CAPTURE(name);  // "": no server_name extension
    const Bytes hello = hello_with_server_name(
        *first.client_ctx, name.empty() ? std::nullopt : std::optional<Bytes>(host_name(name)));
    MemoryPair pair = make_memory_pair();
    auto server = first.server_ctx->wrap(std::move(pair.server));
    pair.link->client_to_server().inject_bytes(hello);
    CHECK(outcome(*server, server->handshake()) == failure(errc::want_read));
    const Records flight = split_records(drain(*pair.client));
    REQUIRE_FALSE(flight.complete.empty());
    const bool resumed = std::any_of(flight.complete.begin(), flight.complete.end(),
                                     [](const Record& r) { return r.type == change_cipher_spec; });
    CHECK(resumed == (name == "localhost"));
  }
}
