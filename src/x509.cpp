#include "x509.hpp"

#include <algorithm>
#include <cstring>

#include "der.hpp"

namespace unitls::detail {

namespace {

// ---- PEM (RFC 7468) -----------------------------------------------------------

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Decodes base64 with white space anywhere and '=' padding at the end.
std::optional<std::vector<std::byte>> decode_base64(std::string_view text) {
  std::vector<std::byte> out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  int padding = 0;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = base64_value(c);
    if (v < 0 || padding > 0) return std::nullopt;  // a foreign byte, or data after '='
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::byte>((acc >> bits) & 0xff));
    }
  }
  if (padding > 2) return std::nullopt;
  return out;
}

constexpr std::string_view begin_marker = "-----BEGIN ";
constexpr std::string_view end_marker = "-----END ";
constexpr std::string_view dashes = "-----";

}  // namespace

std::optional<std::vector<PemBlock>> parse_pem(std::string_view text) {
  std::vector<PemBlock> blocks;
  std::size_t pos = 0;
  while ((pos = text.find(begin_marker, pos)) != std::string_view::npos) {
    const std::size_t label_start = pos + begin_marker.size();
    const std::size_t label_end = text.find(dashes, label_start);
    if (label_end == std::string_view::npos) return std::nullopt;
    PemBlock block;
    block.label = std::string(text.substr(label_start, label_end - label_start));
    if (block.label.find('\n') != std::string::npos) return std::nullopt;
    const std::size_t body_start = label_end + dashes.size();
    const std::string end_line = std::string(end_marker) + block.label + std::string(dashes);
    const std::size_t body_end = text.find(end_line, body_start);
    if (body_end == std::string_view::npos) return std::nullopt;
    std::string_view body = text.substr(body_start, body_end - body_start);
    // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED", "DEK-Info: ...") end at
    // the first empty line.
    if (body.find(':') != std::string_view::npos) {
      block.encrypted = body.find("ENCRYPTED") != std::string_view::npos;
      std::size_t blank = body.find("\n\n");
      if (blank == std::string_view::npos) blank = body.find("\r\n\r\n");
      if (blank == std::string_view::npos) return std::nullopt;
      body = body.substr(blank);
    }
    auto der = decode_base64(body);
    if (!der || der->empty()) return std::nullopt;
    block.der = std::move(*der);
    pos = body_end + end_line.size();
    block.text = std::string(text.substr(label_start - begin_marker.size(), pos - (label_start - begin_marker.size())));
    blocks.push_back(std::move(block));
  }
  return blocks;
}

namespace {

// Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue).
// The last commonName (RFC 6125 6.4.4: the most specific one).
bool read_common_name(std::span<const std::byte> name, std::string& cn) {
  Der rdns(name);
  Tlv rdn;
  while (!rdns.empty()) {
    if (!rdns.next(rdn) || rdn.tag != tag_set) return false;
    Der atvs(rdn.value);
    Tlv atv;
    while (!atvs.empty()) {
      if (!atvs.next(atv) || atv.tag != tag_sequence) return false;
      Der parts(atv.value);
      Tlv type, value;
      if (!parts.next(type) || !parts.next(value)) return false;
      if (oid_is(type, {0x55, 0x04, 0x03})) cn = as_text(value.value);  // id-at-commonName
    }
  }
  return true;
}

// GeneralNames (RFC 5280 4.2.1.6): dNSName [2] IA5String, iPAddress [7] OCTET STRING.
bool read_subject_alt_name(std::span<const std::byte> value, CertificateFacts& f) {
  Der outer(value);
  Tlv names;
  if (!outer.next(names) || names.tag != tag_sequence) return false;
  Der list(names.value);
  Tlv name;
  while (!list.empty()) {
    if (!list.next(name)) return false;
    if (name.tag == 0x82) {
      f.dns_names.push_back(as_text(name.value));
    } else if (name.tag == 0x87) {
      std::vector<std::uint8_t> ip;
      for (std::byte b : name.value) ip.push_back(static_cast<std::uint8_t>(b));
      f.ip_addresses.push_back(std::move(ip));
    }
  }
  f.has_subject_alt_name = true;
  return true;
}

// ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId.
bool read_extended_key_usage(std::span<const std::byte> value, CertificateFacts& f) {
  Der outer(value);
  Tlv list;
  if (!outer.next(list) || list.tag != tag_sequence) return false;
  Der purposes(list.value);
  Tlv purpose;
  f.has_eku = true;
  while (!purposes.empty()) {
    if (!purposes.next(purpose) || purpose.tag != tag_oid) return false;
    if (oid_is(purpose, {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01})) f.eku_server = true;
    if (oid_is(purpose, {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02})) f.eku_client = true;
  }
  return true;
}

// KeyUsage ::= BIT STRING; digitalSignature is bit 0, the first byte's high
// bit after the unused-bits count.
bool read_key_usage(std::span<const std::byte> value, CertificateFacts& f) {
  Der outer(value);
  Tlv bits;
  if (!outer.next(bits) || bits.tag != tag_bit_string || bits.value.empty()) return false;
  f.has_key_usage = true;
  f.key_usage_signature = bits.value.size() > 1 && (static_cast<std::uint8_t>(bits.value[1]) & 0x80) != 0;
  return true;
}

// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }.
bool read_basic_constraints(std::span<const std::byte> value, CertificateFacts& f) {
  Der outer(value);
  Tlv seq;
  if (!outer.next(seq) || seq.tag != tag_sequence) return false;
  Der fields(seq.value);
  Tlv ca;
  if (fields.next_if(tag_boolean, ca)) f.is_ca = ca.value.size() == 1 && ca.value[0] != std::byte{0};
  return true;
}

// Key identifiers, read leniently: they only order chains, and a certificate
// that carries a damaged one is no less usable than before they were read.
// SubjectKeyIdentifier ::= OCTET STRING.
void read_subject_key_id(std::span<const std::byte> value, CertificateFacts& f) {
  Der outer(value);
  Tlv id;
  if (outer.next(id) && id.tag == tag_octet_string) f.subject_key_id = id.value;
}

// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }.
void read_authority_key_id(std::span<const std::byte> value, CertificateFacts& f) {
  Der outer(value);
  Tlv seq, id;
  if (!outer.next(seq) || seq.tag != tag_sequence) return;
  Der fields(seq.value);
  if (fields.next_if(0x80, id)) f.authority_key_id = id.value;
}

}  // namespace

namespace {

bool minimal_lengths_at(std::span<const std::byte> der, int depth) {
  if (depth > 32) return false;
  while (!der.empty()) {
    if (der.size() < 2) return false;
    const auto tag = static_cast<std::uint8_t>(der[0]);
    std::size_t len = static_cast<std::uint8_t>(der[1]);
    std::size_t header = 2;
    if (len & 0x80) {
      const std::size_t n = len & 0x7f;
      if (n == 0 || n > 4 || der.size() < 2 + n) return false;
      if (static_cast<std::uint8_t>(der[2]) == 0) return false;  // a leading zero octet
      len = 0;
      for (std::size_t i = 0; i < n; ++i) len = (len << 8) | static_cast<std::uint8_t>(der[2 + i]);
      if (len < 0x80) return false;  // the short form would do
      header += n;
    }
    if (der.size() - header < len) return false;
    if ((tag & 0x20) && !minimal_lengths_at(der.subspan(header, len), depth + 1)) return false;
    der = der.subspan(header + len);
  }
  return true;
}

// SubjectPublicKeyInfo: the subjectPublicKey's bits (after the
// unused-bits count; empty when it does not parse).
std::span<const std::byte> public_key_of(const Tlv& spki) {
  Der fields(spki.value);
  Tlv algorithm, key;
  if (!fields.next(algorithm) || !fields.next(key) || key.tag != tag_bit_string || key.value.size() < 2) return {};
  return key.value.subspan(1);
}

// SubjectPublicKeyInfo of rsaEncryption (RFC 8017 A.1.1): the modulus's
// bits; 0 for any other key.
std::size_t rsa_bits_of(const Tlv& spki) {
  Der fields(spki.value);
  Tlv algorithm, key;
  if (!fields.next(algorithm) || !fields.next(key) || key.tag != tag_bit_string || key.value.size() < 2) return 0;
  Der alg(algorithm.value);
  Tlv id;
  if (!alg.next(id) || !oid_is(id, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01})) return 0;
  Der outer(key.value.subspan(1));  // (after the unused-bits count)
  Tlv seq, modulus;
  if (!outer.next(seq) || seq.tag != tag_sequence) return 0;
  Der numbers(seq.value);
  if (!numbers.next(modulus) || modulus.tag != tag_integer) return 0;
  std::span<const std::byte> n = modulus.value;
  while (!n.empty() && n.front() == std::byte{0}) n = n.subspan(1);
  if (n.empty()) return 0;
  std::size_t bits = n.size() * 8;
  for (auto top = static_cast<std::uint8_t>(n.front()); (top & 0x80) == 0; top = static_cast<std::uint8_t>(top << 1)) --bits;
  return bits;
}

}  // namespace

bool minimal_lengths(std::span<const std::byte> der) { return minimal_lengths_at(der, 0); }

std::optional<CertificateFacts> parse_certificate(std::span<const std::byte> der) {
  CertificateFacts f;
  Der top(der);
  Tlv cert, tbs;
  if (!top.next(cert) || cert.tag != tag_sequence || !top.empty()) return std::nullopt;
  Der cert_fields(cert.value);
  if (!cert_fields.next(tbs) || tbs.tag != tag_sequence) return std::nullopt;

  Der fields(tbs.value);
  Tlv version, serial, signature, issuer, validity, subject, spki, field;
  (void)fields.next_if(0xa0, version);  // [0] EXPLICIT Version DEFAULT v1
  if (!fields.next(serial) || !fields.next(signature) || !fields.next(issuer) ||
      !fields.next(validity) || !fields.next(subject) || !fields.next(spki))
    return std::nullopt;
  if (issuer.tag != tag_sequence || subject.tag != tag_sequence) return std::nullopt;
  f.self_issued = issuer.whole.size() == subject.whole.size() &&
                  std::memcmp(issuer.whole.data(), subject.whole.data(), issuer.whole.size()) == 0;
  f.subject = subject.whole;
  f.issuer = issuer.whole;
  f.public_key = public_key_of(spki);
  f.rsa_bits = rsa_bits_of(spki);
  if (!read_common_name(subject.value, f.common_name)) return std::nullopt;

  while (!fields.empty()) {
    if (!fields.next(field)) return std::nullopt;
    if (field.tag != 0xa3) continue;  // [1], [2] unique IDs
    Der outer(field.value);
    Tlv extensions, extension;
    if (!outer.next(extensions) || extensions.tag != tag_sequence) return std::nullopt;
    Der list(extensions.value);
    while (!list.empty()) {
      if (!list.next(extension) || extension.tag != tag_sequence) return std::nullopt;
      Der parts(extension.value);
      Tlv id, critical, value;
      if (!parts.next(id) || id.tag != tag_oid) return std::nullopt;
      (void)parts.next_if(tag_boolean, critical);
      if (!parts.next(value) || value.tag != tag_octet_string) return std::nullopt;
      bool ok = true;
      if (oid_is(id, {0x55, 0x1d, 0x11}))
        ok = read_subject_alt_name(value.value, f);
      else if (oid_is(id, {0x55, 0x1d, 0x25}))
        ok = read_extended_key_usage(value.value, f);
      else if (oid_is(id, {0x55, 0x1d, 0x13}))
        ok = read_basic_constraints(value.value, f);
      else if (oid_is(id, {0x55, 0x1d, 0x0f}))
        ok = read_key_usage(value.value, f);
      else if (oid_is(id, {0x55, 0x1d, 0x0e}))
        read_subject_key_id(value.value, f);
      else if (oid_is(id, {0x55, 0x1d, 0x23}))
        read_authority_key_id(value.value, f);
      if (!ok) return std::nullopt;
    }
  }
  return f;
}

namespace {
bool issued(const CertificateFacts& child, const CertificateFacts& parent) {
  if (!std::ranges::equal(parent.subject, child.issuer)) return false;
  return child.authority_key_id.empty() || parent.subject_key_id.empty() ||
         std::ranges::equal(parent.subject_key_id, child.authority_key_id);
}
}  // namespace

std::vector<std::size_t> issuance_order(const std::vector<std::span<const std::byte>>& ders) {
  std::vector<std::optional<CertificateFacts>> facts;
  facts.reserve(ders.size());
  for (const auto& der : ders) facts.push_back(parse_certificate(der));
  std::vector<std::size_t> order;
  if (facts.empty() || !facts[0]) return order;
  std::vector<bool> used(ders.size(), false);
  std::size_t current = 0;
  order.push_back(0);
  used[0] = true;
  while (!facts[current]->self_issued) {
    std::size_t next = ders.size();
    for (std::size_t i = 0; i < ders.size() && next == ders.size(); ++i)
      if (!used[i] && facts[i] && issued(*facts[current], *facts[i])) next = i;
    if (next == ders.size()) break;
    order.push_back(next);
    used[next] = true;
    current = next;
  }
  return order;
}

}  // namespace unitls::detail
