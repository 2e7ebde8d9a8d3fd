// The core's certificate reader (src/certificate.cpp) on arbitrary bytes: a
// peer's certificates are the attacker's bytes, read whenever the
// application asks peer_chain() or peer_certificate(). Whatever the input,
// describe_certificate() must return (nullopt or facts) without reading
// outside it, and what it returns must be self-consistent. Seeds: the test
// PKI's DER files (script/fuzz).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "certificate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto der = std::as_bytes(std::span<const std::uint8_t>(data, size));
  const auto c = unitls::detail::describe_certificate(der);
  if (c) {
    // The facts keep the bytes they came from, and a 64-digit fingerprint.
    if (c->der.size() != size || c->sha256_fingerprint.size() != 64) std::abort();
  }
  return 0;
}
