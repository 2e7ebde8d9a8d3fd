// The first ClientHello of a connection, read from the raw records as they
// arrive (RFC 5246 7.4.1.2 / RFC 8446 4.1.2, gathered across records), for
// what a stack cannot tell before it decides: the ALPN offer (RFC 7301 3.1)
// and the SNI host name (RFC 6066 3). Generic TLS parsing, so it lives in the
// core; a backend asks it, never parses a hello itself.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace unitls::detail {

struct ClientHelloScan {
  enum class State {
    need_more,  // the hello is not complete yet
    malformed,  // not a ClientHello, or not one that parses: the stack judges it
    complete,
  };
  State state = State::need_more;
  bool has_alpn = false;          // the hello carried the ALPN extension
  std::vector<std::string> alpn;  // its protocols, in the client's order
  std::string server_name;        // the SNI host_name ("" none)
};

// raw: the bytes received so far. A record longer than max_record is
// malformed (the stack refuses it at once).
ClientHelloScan scan_client_hello(std::span<const unsigned char> raw, std::size_t max_record);

// The host_name of a server_name extension's body (RFC 6066 3), for a stack
// that hands over the extension rather than the name ("" none, or a body
// that does not parse).
std::string sni_host_name(std::span<const unsigned char> extension_body);

}  // namespace unitls::detail
