// Certificates made in-process: a new ECDSA P-256 key and an X.509
// certificate for it, self-signed or signed by a CA made the same way, with
// the crypto of a compiled-in backend (docs/contract.md, "Making
// credentials"). For a device that makes its own certificate on first start,
// for tests, and for `unitls demo`; no openssl program needed.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unitls/context.hpp>
#include <unitls/export.hpp>

namespace unitls {

// What the certificate says.
struct CertificateRequest {
  std::string common_name{};                // the subject's CN (UTF-8, 1-64 bytes)
  std::vector<std::string> dns_names{};     // subjectAltName dNSName entries
  std::vector<std::string> ip_addresses{};  // subjectAltName iPAddress entries ("127.0.0.1", "::1")
  // A CA (basicConstraints cA, keyUsage keyCertSign and cRLSign) instead of
  // a TLS leaf (digitalSignature; extendedKeyUsage serverAuth and clientAuth).
  bool is_ca = false;
  // Valid from one hour ago (clock skew) for this long (at least a minute).
  std::chrono::seconds valid_for = std::chrono::hours(24 * 30);
};

// A new key and its certificate as PEM (certificate_pem, private_key_pem:
// an unencrypted PKCS#8 "PRIVATE KEY"), ready for Config or
// additional_credentials. issuer: the CA that signs it (a credential made
// by make_credential with is_ca); null: self-signed. backend: whose crypto
// makes the key and signs ("" = the default backend, or else the first
// compiled-in one that can). On failure nullopt, ec = invalid_argument (a
// request or issuer that cannot be used, named in *message) or unsupported
// (no compiled-in backend makes keys).
UNITLS_API std::optional<Credential> make_credential(const CertificateRequest& request,
                                                     const Credential* issuer, std::error_code& ec,
                                                     std::string* message = nullptr,
                                                     std::string_view backend = {});

}  // namespace unitls
