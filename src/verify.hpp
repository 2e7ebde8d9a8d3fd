// The verification rules that must not depend on the stack
// (docs/contract.md, "The same answers outside shutdown"): which host names
// a certificate stands for, and which purposes it may serve. Every backend
// calls check_peer_leaf() from its own verification hook, after its own
// chain, signature and validity checks passed, and turns a verdict other
// than ok into its native "certificate rejected" (so the alert it sends and
// the errc the core reports are those of any rejected certificate).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <unitls/context.hpp>

#include "x509.hpp"

namespace unitls::detail {

enum class PeerVerdict {
  ok,
  name_mismatch,  // the leaf does not stand for the name we asked for
  wrong_purpose,  // its extendedKeyUsage excludes what the peer does (serverAuth / clientAuth)
  // its keyUsage leaves out digitalSignature: its key may not sign the
  // handshake, which every suite unitls offers needs (ECDHE and TLS 1.3)
  wrong_key_usage,
  weak_key,  // an RSA key under 2048 bits (key_strong_enough)
  unparsable,     // not a certificate our parser reads: rejected, never waved through
};

// RFC 6125 on one certificate: DNS names case-insensitively; a wildcard only
// as the whole leftmost label, matching one label, and never directly above
// a single-label name (`*.localhost`, `*.com`); an IP address literal only
// against iPAddress entries; the subject's CN only when the certificate has
// no dNSName entry (RFC 6125 6.4.4), and never for an IP address.
bool name_matches(const CertificateFacts& cert, std::string_view server_name);

// RFC 5280 4.2.1.12: a certificate with an extendedKeyUsage extension may
// serve only the purposes it lists (anyExtendedKeyUsage alone does not
// count: the strict reading, OpenSSL's). `as` is the role of the side that
// presents the certificate.
bool purpose_allows(const CertificateFacts& cert, Role as);
// RFC 5280 4.2.1.3: a leaf with a keyUsage extension signs only with
// digitalSignature in it (RFC 8446 4.4.2.2, RFC 8422 5.3).
// 112-bit security, as OpenSSL's security level 2 and mbedTLS's default
// profile have it: an RSA key of at least 2048 bits, in every certificate of
// a chain (an EC key is on a curve the stacks accept or it does not verify).
inline bool key_strong_enough(const CertificateFacts& cert) { return cert.rsa_bits == 0 || cert.rsa_bits >= 2048; }
inline bool key_usage_allows_signing(const CertificateFacts& cert) {
  return !cert.has_key_usage || cert.key_usage_signature;
}

// The peer's leaf certificate (DER), judged by the side `verifier`: a client
// checks that the server's leaf allows serverAuth and matches server_name
// (when not empty); a server checks that the client's leaf allows clientAuth.
PeerVerdict check_peer_leaf(std::span<const std::byte> der, Role verifier,
                            std::string_view server_name);

// A CA certificate of the chain the verifier built, above the leaf (the
// trust anchor included): when it has an extendedKeyUsage extension, that
// must list what the peer does, anyExtendedKeyUsage not counting (RFC 5280
// 4.2.1.12 applied to the chain, as OpenSSL checks it; mbedTLS checks the
// leaf only, GnuTLS is not asked, and their backends call this). ok or
// wrong_purpose (unparsable: the stack parsed it, so its own checks stand).
PeerVerdict check_peer_intermediate(std::span<const std::byte> der, Role verifier);

// check_peer_intermediate over the chain from the leaf (sent[0]): each next
// certificate is the sent one whose subject is the current one's issuer,
// else the trust anchor that is (anchor_for), until a self-issued one or a
// trust anchor was judged, or none follows. For a backend whose stack has
// verified the chain but is not asked to check the CAs' purposes.
struct AnchorLookup {
  // The trust anchor with this subject (null: none).
  std::function<const CertificateFacts*(std::span<const std::byte> subject)> by_subject;
  // Whether a certificate is a trust anchor.
  std::function<bool(std::span<const std::byte> der)> contains;
};
PeerVerdict check_chain_purposes(std::span<const std::span<const std::byte>> sent, Role verifier,
                                 const AnchorLookup& anchors);

// A context's trust anchors for check_chain_purposes, read once: their DER
// and facts, and the AnchorLookup over them. Kept beside the stack's own
// trust store by a backend whose stack does not judge the CAs' purposes.
class AnchorSet {
 public:
  AnchorSet() = default;
  AnchorSet(const AnchorSet&) = delete;  // (the lookup refers to this one)
  AnchorSet& operator=(const AnchorSet&) = delete;

  // Each anchor's DER, then finish() with the role of the peers it judges.
  void add(std::span<const std::byte> der) { der_.emplace_back(der.begin(), der.end()); }
  void finish(Role peer);

  bool empty() const { return der_.empty(); }
  const AnchorLookup& lookup() const { return lookup_; }
  // An anchor that check_chain_purposes would fail for that peer (a
  // purpose it does not allow, a key too weak): the chain must be judged
  // even when the peer sent only its leaf.
  bool restricts() const { return restricts_; }

 private:
  std::vector<std::vector<std::byte>> der_;
  std::vector<CertificateFacts> facts_;  // (they view der_, complete by then)
  bool restricts_ = false;
  AnchorLookup lookup_{
      [this](std::span<const std::byte> subject) -> const CertificateFacts* {
        for (const auto& f : facts_)
          if (std::equal(f.subject.begin(), f.subject.end(), subject.begin(), subject.end())) return &f;
        return nullptr;
      },
      [this](std::span<const std::byte> der) {
        for (const auto& a : der_)
          if (std::equal(a.begin(), a.end(), der.begin(), der.end())) return true;
        return false;
      }};
};

// Why a peer's certificate was rejected, in the core's words. Each engine
// maps its stack's own verification result (OpenSSL's X509_V_ERR_*,
// GnuTLS's status bits, mbedTLS's flags) and the PeerVerdict it reported
// into these bits (Engine::certificate_issues); a stack may say several at
// once, so which one is reported is decided here (verification_error), the
// same on every backend.
enum CertificateIssue : unsigned {
  issue_untrusted = 1u << 0,      // no chain to a trust anchor (unknown issuer, an issuer that is no CA, ...)
  issue_not_yet_valid = 1u << 1,  // notBefore is in the future
  issue_expired = 1u << 2,        // notAfter has passed
  issue_wrong_purpose = 1u << 3,  // (extended) key usage excludes what the peer does
  issue_name_mismatch = 1u << 4,  // the leaf does not stand for the name we asked for
  issue_other = 1u << 5,          // anything else: a bad signature, revoked, unreadable
  issue_wrong_key_usage = 1u << 6,  // the leaf's keyUsage leaves out digitalSignature
  issue_unreadable = 1u << 7,       // the stack could not parse a certificate the peer sent
  issue_weak_key = 1u << 8,         // an RSA key under 2048 bits in the chain
};

// The bit a PeerVerdict other than ok stands for.
unsigned issue_of(PeerVerdict verdict);

// docs/contract.md, "Verification": the reason a rejected certificate was
// rejected, the same text on every backend. issues: the engine's bits;
// chain: the certificates the peer sent (leaf first; empty: it sent none);
// verifier: our role; server_name: the name a client asked for. Never
// empty.
std::string verification_error(unsigned issues, const std::vector<std::vector<std::byte>>& chain,
                               Role verifier, std::string_view server_name);

// True when name is an IPv4 or IPv6 address literal (RFC 6066 3: such a
// name is never sent as SNI).
bool is_ip_literal(std::string_view name);

// server_name as the configuration may hold it: an IPv4/IPv6 literal, or a
// host name of letters, digits, '-', '_' and '.' labels (1-63 bytes each, at
// most 253 in all, one trailing dot allowed).
bool valid_server_name(std::string_view name);

}  // namespace unitls::detail
