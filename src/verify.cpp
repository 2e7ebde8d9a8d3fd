#include "verify.hpp"

#include "certificate.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace unitls::detail {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equal_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view strip_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

// 4 or 16 bytes when name is an IP literal, else empty.
std::vector<std::uint8_t> ip_bytes(std::string_view name) {
  const std::string s(name);
  std::uint8_t buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return {buf, buf + 4};
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return {buf, buf + 16};
  return {};
}

// One presented DNS identifier against the host name (both without a
// trailing dot).
bool dns_id_matches(std::string_view pattern, std::string_view host) {
  pattern = strip_dot(pattern);
  if (pattern.empty() || host.empty()) return false;
  if (!pattern.starts_with("*.")) return equal_nocase(pattern, host);
  // "*.<rest>": rest must have at least two labels (never `*.localhost`).
  const std::string_view rest = pattern.substr(2);
  if (rest.find('.') == std::string_view::npos || rest.find('*') != std::string_view::npos)
    return false;
  const std::size_t dot = host.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  return equal_nocase(rest, host.substr(dot + 1));
}

}  // namespace

bool name_matches(const CertificateFacts& cert, std::string_view server_name) {
  const std::vector<std::uint8_t> ip = ip_bytes(server_name);
  if (!ip.empty())
    return std::find(cert.ip_addresses.begin(), cert.ip_addresses.end(), ip) != cert.ip_addresses.end();
  const std::string_view host = strip_dot(server_name);
  for (const std::string& dns : cert.dns_names)
    if (dns_id_matches(dns, host)) return true;
  if (cert.dns_names.empty() && !cert.common_name.empty())
    return dns_id_matches(cert.common_name, host);
  return false;
}

bool purpose_allows(const CertificateFacts& cert, Role as) {
  if (!cert.has_eku) return true;
  return as == Role::server ? cert.eku_server : cert.eku_client;
}

PeerVerdict check_peer_leaf(std::span<const std::byte> der, Role verifier,
                            std::string_view server_name) {
  const auto cert = parse_certificate(der);
  if (!cert) return PeerVerdict::unparsable;
  const Role peer = verifier == Role::client ? Role::server : Role::client;
  if (!purpose_allows(*cert, peer)) return PeerVerdict::wrong_purpose;
  if (!key_usage_allows_signing(*cert)) return PeerVerdict::wrong_key_usage;
  if (!key_strong_enough(*cert)) return PeerVerdict::weak_key;
  if (verifier == Role::client && !server_name.empty() && !name_matches(*cert, server_name))
    return PeerVerdict::name_mismatch;
  return PeerVerdict::ok;
}

PeerVerdict check_peer_intermediate(std::span<const std::byte> der, Role verifier) {
  const auto cert = parse_certificate(der);
  if (!cert) return PeerVerdict::ok;
  const Role peer = verifier == Role::client ? Role::server : Role::client;
  return purpose_allows(*cert, peer) ? PeerVerdict::ok : PeerVerdict::wrong_purpose;
}

PeerVerdict check_chain_purposes(std::span<const std::span<const std::byte>> sent, Role verifier,
                                 const AnchorLookup& anchors) {
  if (sent.empty()) return PeerVerdict::ok;
  const Role peer = verifier == Role::client ? Role::server : Role::client;
  std::vector<std::optional<CertificateFacts>> facts(sent.size());
  auto facts_of = [&](std::size_t i) -> const std::optional<CertificateFacts>& {
    if (!facts[i]) facts[i] = parse_certificate(sent[i]);
    return facts[i];
  };
  std::vector<bool> used(sent.size(), false);
  used[0] = true;
  // The issuer of `current`, judged, until the chain ends.
  for (std::optional<CertificateFacts> current = facts_of(0); current && !current->self_issued;) {
    std::size_t next = sent.size();
    for (std::size_t j = 0; j < sent.size() && next == sent.size(); ++j) {
      if (used[j]) continue;
      const auto& f = facts_of(j);
      if (f && std::equal(f->subject.begin(), f->subject.end(), current->issuer.begin(), current->issuer.end()))
        next = j;
    }
    if (next == sent.size()) {
      // Not sent: the anchor that issued it, if one did (the last step).
      const CertificateFacts* anchor = anchors.by_subject(current->issuer);
      if (anchor && !purpose_allows(*anchor, peer)) return PeerVerdict::wrong_purpose;
      return anchor && !key_strong_enough(*anchor) ? PeerVerdict::weak_key : PeerVerdict::ok;
    }
    used[next] = true;
    const auto& f = facts_of(next);
    if (!purpose_allows(*f, peer)) return PeerVerdict::wrong_purpose;
    if (!key_strong_enough(*f)) return PeerVerdict::weak_key;
    if (anchors.contains(sent[next])) return PeerVerdict::ok;  // the chain ends at an anchor
    current = f;
  }
  return PeerVerdict::ok;
}

unsigned issue_of(PeerVerdict verdict) {
  switch (verdict) {
    case PeerVerdict::ok: return 0;
    case PeerVerdict::name_mismatch: return issue_name_mismatch;
    case PeerVerdict::wrong_purpose: return issue_wrong_purpose;
    case PeerVerdict::wrong_key_usage: return issue_wrong_key_usage;
    case PeerVerdict::weak_key: return issue_weak_key;
    case PeerVerdict::unparsable: return issue_other;
  }
  return issue_other;
}

std::string verification_error(unsigned issues, const std::vector<std::vector<std::byte>>& chain,
                               Role verifier, std::string_view server_name) {
  // (A stack that cannot parse a certificate may keep none of the chain.)
  if (chain.empty()) return issues & issue_unreadable ? "certificate rejected (cannot be parsed)" : "no certificate";
  // In the order the checks build on each other (OpenSSL stops at the first
  // failure, in this order; GnuTLS and mbedTLS may report several): a chain
  // that does not reach an anchor says nothing about the rest.
  if (issues & issue_untrusted) {
    const auto leaf = describe_certificate(chain.front());
    return "certificate not trusted (issuer " + (leaf ? leaf->issuer : std::string("unknown")) + ")";
  }
  if (issues & issue_not_yet_valid) return "certificate not yet valid";
  if (issues & issue_expired) return "certificate expired";
  if (issues & issue_wrong_purpose)
    return verifier == Role::client ? "certificate not for a TLS server (extendedKeyUsage)"
                                    : "certificate not for a TLS client (extendedKeyUsage)";
  if (issues & issue_weak_key) return "certificate key too weak (RSA under 2048 bits)";
  if (issues & issue_wrong_key_usage)
    return verifier == Role::client ? "certificate not for a TLS server (keyUsage without digitalSignature)"
                                    : "certificate not for a TLS client (keyUsage without digitalSignature)";
  if (issues & issue_name_mismatch) {
    // The names the rule looked at (name_matches): the subjectAltName
    // entries, and the CN when there is no dNSName.
    std::string names;
    // (A name is shown as it is but for control bytes, \xHH: a NUL would
    // end the text where a C string reads it.)
    const auto add = [&names](std::string_view kind, const std::string& name) {
      names += names.empty() ? "" : ", ";
      names += kind;
      for (const unsigned char c : name) {
        if (c < 0x20 || c == 0x7f) {
          static constexpr char hex[] = "0123456789abcdef";
          names += "\\x";
          names += hex[c >> 4];
          names += hex[c & 0xf];
        } else {
          names += static_cast<char>(c);
        }
      }
    };
    if (const auto leaf = describe_certificate(chain.front())) {
      for (const auto& n : leaf->dns_names) add("DNS:", n);
      for (const auto& n : leaf->ip_addresses) add("IP:", n);
    }
    if (const auto facts = parse_certificate(chain.front());
        facts && facts->dns_names.empty() && !facts->common_name.empty() && !is_ip_literal(server_name))
      add("CN:", facts->common_name);
    return "certificate names " + (names.empty() ? std::string("nothing") : names) + ", not " +
           std::string(server_name);
  }
  if (issues & issue_unreadable) return "certificate rejected (cannot be parsed)";
  return "certificate rejected";
}

bool is_ip_literal(std::string_view name) { return !ip_bytes(name).empty(); }

bool valid_server_name(std::string_view name) {
  if (name.empty()) return true;
  if (!ip_bytes(name).empty()) return true;
  name = strip_dot(name);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

void AnchorSet::finish(Role peer) {
  for (const auto& der : der_) {
    auto facts = parse_certificate(der);
    if (!facts) continue;
    restricts_ = restricts_ || !purpose_allows(*facts, peer) || !key_strong_enough(*facts);
    facts_.push_back(std::move(*facts));
  }
}

}  // namespace unitls::detail
