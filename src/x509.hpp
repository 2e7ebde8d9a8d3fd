// Certificates as the core sees them: PEM files split into DER blocks, and
// the few facts of an X.509 certificate that the verification rules need
// (docs/contract.md, "The same answers outside shutdown").
//
// The core reads these itself, once, so that every backend applies the same
// rule to the same bytes: which certificates of a ca_file are trust anchors,
// whether a server's own certificate may serve, and whether the peer's leaf
// matches the name and the purpose. The backends still verify signatures,
// chains and validity with their own X.509 code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace unitls::detail {

// One "-----BEGIN <label>-----" ... "-----END <label>-----" block.
struct PemBlock {
  std::string label;           // "CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY", ...
  std::vector<std::byte> der;  // the base64 body, decoded
  bool encrypted = false;      // legacy "Proc-Type: 4,ENCRYPTED" header
  std::string text;            // the block as it stood in the file, BEGIN to END line
};

// Every PEM block in text, in order. Text outside blocks is ignored (as
// every stack does: comments, "Bag Attributes"). A block whose base64 does
// not decode, or that has no END line, makes the whole text unusable:
// nullopt.
std::optional<std::vector<PemBlock>> parse_pem(std::string_view text);

// The facts of one certificate that the rules below use.
struct CertificateFacts {
  std::vector<std::string> dns_names;               // subjectAltName dNSName, as written
  std::vector<std::vector<std::uint8_t>> ip_addresses;  // subjectAltName iPAddress, 4 or 16 bytes
  bool has_subject_alt_name = false;
  std::string common_name;  // the last CN of the subject ("" none)
  bool has_eku = false;     // an extendedKeyUsage extension is present
  bool eku_server = false;  // id-kp-serverAuth listed
  bool eku_client = false;  // id-kp-clientAuth listed
  bool is_ca = false;       // basicConstraints cA = TRUE
  // The subjectPublicKey's bits (for an EC key, its point; a view too).
  std::span<const std::byte> public_key;
  // An RSA key's modulus in bits (0: not an RSA key, or one that does not
  // parse).
  std::size_t rsa_bits = 0;
  bool has_key_usage = false;         // a keyUsage extension is present
  bool key_usage_signature = false;   // ... with digitalSignature (bit 0)
  bool self_issued = false; // subject == issuer (byte for byte)
  // The subject and issuer Names' DER: views into the der given to
  // parse_certificate (valid as long as it is).
  std::span<const std::byte> subject;
  std::span<const std::byte> issuer;
  // subjectKeyIdentifier and authorityKeyIdentifier's keyIdentifier (views
  // too; empty when absent or unreadable: they only order chains).
  std::span<const std::byte> subject_key_id;
  std::span<const std::byte> authority_key_id;
};

// nullopt when der is not a certificate the parser understands.
std::optional<CertificateFacts> parse_certificate(std::span<const std::byte> der);

// True when every length in der, down through its constructed elements, is
// in its shortest form (DER, X.690 10.1); false for BER's longer forms (the
// parser above reads both).
bool minimal_lengths(std::span<const std::byte> der);

// A certificate chain as a stack sends it: the leaf (first of ders), then
// the certificate that issued it, then that one's issuer, ... up to a
// self-issued one or one whose issuer is not there; the certificates that
// are not on that path are left out. An issuer is the first certificate
// whose subject is the issuer name byte for byte and, when both carry key
// identifiers, whose subjectKeyIdentifier is the authorityKeyIdentifier (a
// renewed intermediate under the same name). Indices into ders; empty when
// the first does not parse. (GnuTLS orders and prunes a configured chain
// this way and cannot be told not to: every backend sends the same.)
std::vector<std::size_t> issuance_order(const std::vector<std::span<const std::byte>>& ders);

}  // namespace unitls::detail
