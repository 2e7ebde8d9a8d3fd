// The backend-neutral description of a certificate (api/unitls/certificate.hpp),
// read by the core from the DER alone: every backend hands over the same
// bytes, so every backend reports the same strings.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include <unitls/certificate.hpp>

namespace unitls::detail {

// The facts of one DER certificate; nullopt when der is not one certificate
// (and nothing else) that this reader understands: malformed DER, a field
// missing or of the wrong type, a validity time not in the form RFC 5280
// 4.1.2.5 prescribes. Never reads outside der.
std::optional<Certificate> describe_certificate(std::span<const std::byte> der);

// Certificate::sha256_fingerprint of der: lower-case hex of its SHA-256.
std::string sha256_fingerprint(std::span<const std::byte> der);

// RFC 3629: well-formed UTF-8 (no overlong forms, no surrogates, nothing
// past U+10FFFF).
bool valid_utf8(std::span<const std::byte> text);

}  // namespace unitls::detail
