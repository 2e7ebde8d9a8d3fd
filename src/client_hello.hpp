// The first ClientHello of a connection, read from the raw records as they
// arrive (RFC 5246 7.4.1.2 / RFC 8446 4.1.2, gathered across records), for
// what a stack cannot tell before it decides: the ALPN offer (RFC 7301 3.1)
// and the SNI host name (RFC 6066 3). Generic TLS parsing, so it lives in the
// core; a backend asks it, never parses a hello itself.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace unitls::detail {

// What the core makes of a server_name extension (RFC 6066 3): one rule on
// every backend (docs/contract.md, "Server names"). The value is the fatal
// alert that answers it; the category "unitls.hello" names the fault.
enum class HelloFault : int {
  none = 0,
  // decode_error: the extension does not parse (lengths that disagree, an
  // empty list, an empty name), or it is not one host_name entry.
  server_name_malformed = 50,
  // unrecognized_name: the host_name is longer than 255 bytes or holds a
  // byte other than a letter, a digit, '-' or '.' (GnuTLS refuses those
  // and cannot be told otherwise, so every backend does).
  server_name_refused = 112,
};

const std::error_category& hello_category() noexcept;
inline std::error_code make_error_code(HelloFault f) { return {static_cast<int>(f), hello_category()}; }

struct ServerNameVerdict {
  HelloFault fault = HelloFault::none;
  std::string name;  // the host_name, when fault is none
};

// The server_name extension's body as a server judges it.
ServerNameVerdict judge_server_name(std::span<const unsigned char> extension_body);

struct ClientHelloScan {
  enum class State {
    need_more,  // the hello is not complete yet
    malformed,  // not a ClientHello, or not one that parses: the stack judges it
    complete,
  };
  State state = State::need_more;
  bool has_alpn = false;          // the hello carried the ALPN extension
  std::vector<std::string> alpn;  // its protocols, in the client's order
  std::string server_name;        // the SNI host_name ("" none, or refused)
  HelloFault server_name_fault = HelloFault::none;  // judge_server_name's verdict
};

// raw: the bytes received so far. A record longer than max_record is
// malformed (the stack refuses it at once).
ClientHelloScan scan_client_hello(std::span<const unsigned char> raw, std::size_t max_record);

}  // namespace unitls::detail
