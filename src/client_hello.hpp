// The first ClientHello of a connection, read from the raw records as they
// arrive (RFC 5246 7.4.1.2 / RFC 8446 4.1.2, gathered across records), for
// what a stack cannot tell before it decides: the ALPN offer (RFC 7301 3.1)
// and the SNI host name (RFC 6066 3). Generic TLS parsing, so it lives in the
// core; a backend asks it, never parses a hello itself.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace unitls::detail {

// What the core makes of a ClientHello's extensions: one rule on every
// backend, applied before the stack reads them (docs/contract.md, "Server
// names"). The value modulo 1000 is the fatal alert that answers it
// (hello_alert); the category "unitls.hello" names the fault.
enum class HelloFault : int {
  none = 0,
  // illegal_parameter: an extension type twice (RFC 8446 4.2, RFC 5246
  // 7.4.1.4: "MUST NOT").
  repeated_extension = 47,
  // decode_error: an ALPN extension that does not parse (RFC 7301 3.1:
  // names of 1 to 255 bytes filling the list exactly).
  alpn_malformed = 1050,
  // decode_error: a supported_groups or supported_versions extension whose
  // list does not fill it exactly, is empty or has an odd length (OpenSSL
  // refuses them; GnuTLS reads the declared length and ignores the rest,
  // mbedTLS 2.28 ignores supported_versions).
  list_malformed = 2050,
  // decode_error: the extension does not parse (lengths that disagree, an
  // empty list, an empty name), or it is not one host_name entry.
  server_name_malformed = 50,
  // unrecognized_name: the host_name is longer than 255 bytes or holds a
  // byte other than a letter, a digit, '-' or '.' (GnuTLS refuses those
  // and cannot be told otherwise, so every backend does).
  server_name_refused = 112,
};

inline int hello_alert(HelloFault f) { return static_cast<int>(f) % 1000; }

const std::error_category& hello_category() noexcept;
inline std::error_code make_error_code(HelloFault f) { return {static_cast<int>(f), hello_category()}; }

struct ServerNameVerdict {
  HelloFault fault = HelloFault::none;
  std::string_view name;  // the host_name, when fault is none (in the body judged)
};

// The server_name extension's body as a server judges it.
ServerNameVerdict judge_server_name(std::span<const unsigned char> extension_body);

// A ClientHello's extensions judged one at a time, in the order they came
// (a backend hands over those its stack shows it). A repeated extension is
// the fault whatever else is wrong (OpenSSL refuses it before anything
// else); otherwise the first fault counts.
class HelloJudge {
 public:
  void extension(unsigned type, std::span<const unsigned char> body) {
    // Most types are one bit to set, nothing to judge: inline, as this runs
    // for every extension of every hello (docs/benchmarks.md).
    if (type < 64 && type != 0 && type != 10 && type != 16 && type != 43) {  // (judged: see judge_extension)
      const std::uint64_t bit = std::uint64_t{1} << type;
      repeated_ = repeated_ || (low_seen_ & bit) != 0;
      low_seen_ |= bit;
      return;
    }
    judge_extension(type, body);
  }
  HelloFault fault() const { return repeated_ ? HelloFault::repeated_extension : fault_; }
  // The server_name's host_name ("" none, or refused), in the bytes judged:
  // a caller that keeps it copies it.
  std::string_view server_name() const { return name_; }

 private:
  void judge_extension(unsigned type, std::span<const unsigned char> body);

  HelloFault fault_ = HelloFault::none;
  bool repeated_ = false;
  std::string_view name_;
  // The types so far, without an allocation: those under 64 (nearly all a
  // hello has) as bits, a few others in place, more on the heap.
  std::uint64_t low_seen_ = 0;
  std::array<std::uint16_t, 16> seen_{};
  std::size_t seen_count_ = 0;
  std::vector<std::uint16_t> more_;
};

// A ClientHello's body (the handshake message after its 4-byte header):
// first its framing (RFC 8446 4.1.2: a session_id of at most 32 bytes,
// suites in pairs, a compression method, extensions filling their block and
// the message exactly); a hello that fails it is not judged at all (parses
// false: every stack answers it with decode_error, as OpenSSL does before its
// ClientHello callback). Then every extension judged, with what a server's
// stack may need before it reads the hello itself. The spans point into the
// body.
struct ClientHelloBody {
  bool parses = false;  // false: malformed (what was judged before the fault stands)
  HelloJudge judged;
  bool has_alpn = false;
  std::span<const unsigned char> alpn;  // the (first) ALPN extension's body (RFC 7301 3.1)
  bool has_groups = false;
  std::span<const unsigned char> groups;  // NamedGroupList's content (RFC 8422 5.1.1): code points, 2 bytes each
  bool offers_tls1_3 = false;             // supported_versions lists TLS 1.3 (RFC 8446 4.2.1)
  bool offers_encrypt_then_mac = false;   // encrypt_then_mac (RFC 7366 2)
};
ClientHelloBody read_client_hello_body(std::span<const unsigned char> body);

struct ClientHelloScan {
  enum class State {
    need_more,  // the hello is not complete yet
    malformed,  // not a ClientHello, or not one that parses: the stack judges it
    complete,
  };
  State state = State::need_more;
  bool has_alpn = false;          // the hello carried the ALPN extension
  std::vector<std::string> alpn;  // its protocols, in the client's order
  // The hello's extensions as HelloJudge judged them (also in a hello that
  // is malformed otherwise, as far as it was read): the fault, and the
  // host_name when there is none.
  HelloFault fault = HelloFault::none;
  std::string server_name;
  // Of a complete hello (ClientHelloBody): a stack that chooses the group
  // or the record protection around its library reads them here, without
  // a second walk.
  bool has_groups = false;
  std::vector<unsigned char> groups;  // NamedGroupList's content: code points, 2 bytes each
  bool offers_tls1_3 = false;
  bool offers_encrypt_then_mac = false;
};

// raw: the bytes received so far. A record longer than max_record is
// malformed (the stack refuses it at once).
ClientHelloScan scan_client_hello(std::span<const unsigned char> raw, std::size_t max_record);

// Server-side ALPN (RFC 7301 3.2): the first of our protocols (`ours`, in
// the wire format of RFC 7301 3.1, our preference order) that the client
// offers (`offered`, the same format): its name inside `offered`, or empty
// when none is (no ALPN then rather than a no_application_protocol alert, on
// every backend). A malformed offer counts up to where it breaks.
std::span<const unsigned char> prefer_alpn(std::span<const unsigned char> ours, std::span<const unsigned char> offered);

}  // namespace unitls::detail
