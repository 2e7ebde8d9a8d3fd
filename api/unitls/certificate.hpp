// A certificate as plain facts, the same on every backend.
//
// unitls reads these from the certificate's DER itself (no TLS library
// involved), so that the same certificate gives the same strings, byte for
// byte, whichever backend received it. A Certificate is a value: it owns
// its strings and its copy of the DER, and outlives the socket it came from.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace unitls {

struct Certificate {
  // The distinguished names as RFC 4514 strings: the RDNs from the last to
  // the first, joined by ","; the members of a multi-valued RDN joined by
  // "+", also from the last to the first. Only the type names of RFC 4514
  // section 3 are used (CN, L, ST, O, OU, C, STREET, DC, UID); any other
  // type is its dotted OID with the value as "#" and the hex of its DER
  // (emailAddress: "1.2.840.113549.1.9.1=#16..."). Text values are UTF-8
  // with the escapes of RFC 4514 section 2.4, and control characters as
  // \XX; a value that is not a string, or whose bytes do not decode as its
  // string type, is "#" and hex too. For a name of only those types this is
  // what `openssl x509 -nameopt RFC2253` prints, except that OpenSSL
  // escapes every byte of a non-ASCII character (U+00E4 is \C3\A4 there,
  // its two UTF-8 bytes here), writes STREET as "street", and leaves a
  // value that is just "#" unescaped.
  std::string subject;  // e.g. "CN=localhost,O=Example"
  std::string issuer;

  // subjectAltName entries, in the certificate's order: dNSName as written,
  // iPAddress as text ("127.0.0.1"; IPv6 as RFC 5952, "::1").
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;

  // serialNumber in upper-case hex without separators or leading zeros
  // ("0" for zero; a negative one, malformed but seen, starts with "-").
  std::string serial;

  // The validity period (UTCTime years 50..99 are 19xx, RFC 5280 4.1.2.5).
  std::chrono::sys_seconds not_before;
  std::chrono::sys_seconds not_after;

  // Lower-case hex of the SHA-256 of der, without separators.
  std::string sha256_fingerprint;

  // The certificate as received.
  std::vector<std::byte> der;

  friend bool operator==(const Certificate&, const Certificate&) = default;
};

}  // namespace unitls
