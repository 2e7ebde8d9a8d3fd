// A handshake Certificate message (RFC 5246 7.4.2; RFC 8446 4.4.2: a
// request context first, and extensions after each certificate), walked
// for the certificates it carries. Generic TLS parsing, for a backend that
// keeps the bytes a peer sent (OpenSSL from its msg callback, mbedTLS from
// its input buffer); the core never reads the message itself.
#pragma once

#include <cstddef>
#include <span>

namespace unitls::detail {

// Calls each(entry, der) for every certificate of `message` (its 4-byte
// handshake header included), in order: entry is the 3-byte length and the
// DER, der the DER alone. Stops where the message stops parsing (the stack
// refuses such a message itself).
template <class Each>
void for_each_certificate(std::span<const unsigned char> message, bool tls13, Each&& each) {
  std::size_t at = 4;  // type and length
  if (tls13) {
    if (message.size() < at + 1) return;
    at += 1 + message[at];  // certificate_request_context
  }
  if (message.size() < at + 3) return;
  at += 3;  // the list's length: each entry says its own
  while (message.size() >= at + 3) {
    const std::size_t len = std::size_t(message[at]) << 16 | std::size_t(message[at + 1]) << 8 | message[at + 2];
    if (len > message.size() - at - 3) return;
    each(message.subspan(at, 3 + len), message.subspan(at + 3, len));
    at += 3 + len;
    if (tls13) {
      if (message.size() < at + 2) return;
      at += 2 + (std::size_t(message[at]) << 8 | message[at + 1]);
    }
  }
}

}  // namespace unitls::detail
