#include "certificate.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "der.hpp"
#include "sha256.hpp"
#include "x509.hpp"

namespace unitls::detail {

namespace {

std::uint8_t octet(std::byte b) { return static_cast<std::uint8_t>(b); }

void append_hex(std::string& out, std::span<const std::byte> bytes, std::string_view digits) {
  for (std::byte b : bytes) {
    out += digits[octet(b) >> 4];
    out += digits[octet(b) & 0x0f];
  }
}

constexpr std::string_view upper_hex = "0123456789ABCDEF";
constexpr std::string_view lower_hex = "0123456789abcdef";

// ---- OBJECT IDENTIFIER as dotted decimal (X.690 8.19) ---------------------------

// A non-negative number in decimal digits, least significant first: an arc
// can exceed 64 bits (the UUID arcs under 2.25 are 128-bit numbers).
class Decimal {
 public:
  void times128_plus(unsigned add) {
    unsigned carry = add;
    for (auto& d : digits_) {
      const unsigned v = d * 128u + carry;
      d = static_cast<std::uint8_t>(v % 10);
      carry = v / 10;
    }
    for (; carry > 0; carry /= 10) digits_.push_back(static_cast<std::uint8_t>(carry % 10));
  }

  bool at_least(unsigned n) const {
    if (digits_.size() > 9) return true;
    unsigned v = 0;
    for (auto it = digits_.rbegin(); it != digits_.rend(); ++it) v = v * 10 + *it;
    return v >= n;
  }

  // Only for n <= the value.
  void subtract(unsigned n) {
    unsigned borrow = n;
    for (auto& d : digits_) {
      if (borrow == 0) break;
      int v = int(d) - int(borrow % 10);
      borrow /= 10;
      if (v < 0) {
        v += 10;
        ++borrow;
      }
      d = static_cast<std::uint8_t>(v);
    }
    while (!digits_.empty() && digits_.back() == 0) digits_.pop_back();
  }

  std::string text() const {
    if (digits_.empty()) return "0";
    std::string s;
    for (auto it = digits_.rbegin(); it != digits_.rend(); ++it) s += static_cast<char>('0' + *it);
    return s;
  }

 private:
  std::vector<std::uint8_t> digits_;
};

// Base-128 subidentifiers, bit 8 set on all but the last octet of each, and
// none starting with 0x80 (not minimal); the first one holds the first two
// arcs as 40 * first + second, where first is 0, 1 or 2.
std::optional<std::string> dotted_oid(std::span<const std::byte> v) {
  if (v.empty()) return std::nullopt;
  std::string out;
  Decimal arc;
  bool first = true;
  bool at_start = true;
  std::size_t arc_octets = 0;
  for (std::byte b : v) {
    if (at_start && octet(b) == 0x80) return std::nullopt;
    at_start = false;
    // At most 20 octets (140 bits) an arc: the longest in use are the 128-bit
    // UUID arcs under 2.25. Longer ones are refused, not converted: each
    // octet costs a pass over the digits so far, and a peer's certificate
    // could make one arc of its whole size (the CVE-2023-2650 class).
    if (++arc_octets > 20) return std::nullopt;
    arc.times128_plus(octet(b) & 0x7f);
    if (octet(b) & 0x80) continue;
    if (first) {
      const unsigned top = arc.at_least(80) ? 2 : arc.at_least(40) ? 1 : 0;
      arc.subtract(40 * top);
      out = std::to_string(top);
      first = false;
    }
    out += '.';
    out += arc.text();
    arc = Decimal();
    at_start = true;
    arc_octets = 0;
  }
  if (!at_start) return std::nullopt;  // the last subidentifier runs past the end
  return out;
}

// ---- attribute values as text -------------------------------------------------------

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

bool is_scalar(char32_t c) { return c <= 0x10ffff && (c < 0xd800 || c > 0xdfff); }


// The characters of a string-typed value as UTF-8; nullopt for any other
// type, and for bytes that are not characters of the value's type (the
// value is then written as hex, which RFC 4514 section 2.4 allows for any
// value, instead of guessing at an encoding).
std::optional<std::string> string_value(const Tlv& value) {
  const auto v = value.value;
  std::string out;
  switch (value.tag) {
    case tag_utf8_string:
      if (!valid_utf8(v)) return std::nullopt;
      return as_text(v);
    case tag_numeric_string:
    case tag_printable_string:
    case tag_ia5_string:
    case tag_visible_string:
      // Subsets of ASCII. The alphabets are not enforced further: certificates
      // with '@' or '&' in a PrintableString are common, and their meaning is
      // plain.
      for (std::byte b : v)
        if (octet(b) >= 0x80) return std::nullopt;
      return as_text(v);
    case tag_teletex_string:
      // T.61 in theory; in practice (and in every TLS stack) Latin-1.
      for (std::byte b : v) append_utf8(out, octet(b));
      return out;
    case tag_bmp_string:  // UCS-2, big-endian: the BMP only, so no surrogates
      if (v.size() % 2 != 0) return std::nullopt;
      for (std::size_t i = 0; i < v.size(); i += 2) {
        const char32_t c = (char32_t(octet(v[i])) << 8) | octet(v[i + 1]);
        if (!is_scalar(c)) return std::nullopt;
        append_utf8(out, c);
      }
      return out;
    case tag_universal_string:  // UCS-4, big-endian
      if (v.size() % 4 != 0) return std::nullopt;
      for (std::size_t i = 0; i < v.size(); i += 4) {
        const char32_t c = (char32_t(octet(v[i])) << 24) | (char32_t(octet(v[i + 1])) << 16) |
                           (char32_t(octet(v[i + 2])) << 8) | octet(v[i + 3]);
        if (!is_scalar(c)) return std::nullopt;
        append_utf8(out, c);
      }
      return out;
    default:
      return std::nullopt;
  }
}

// RFC 4514 section 2.4: a backslash before the characters that would end
// or change the value (and before a space or '#' that starts it, a space
// that ends it); NUL as \00. Other control characters (and DEL) are
// written as \XX too, which the section allows, so that a name never
// carries a line break or a terminal escape into a log; OpenSSL does the same.
void append_escaped(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (std::string_view(",+\"\\<>;").find(c) != std::string_view::npos ||
        (i == 0 && (c == ' ' || c == '#')) || (i + 1 == s.size() && c == ' ')) {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += '\\';
      out += upper_hex[u >> 4];
      out += upper_hex[u & 0x0f];
    } else {
      out += c;
    }
  }
}

// RFC 4514 section 3: the descriptors every reader must know. Any other
// type is written as its dotted OID (section 2.3), whose value section 2.4
// then requires in the '#' form: emailAddress is PKCS#9, not an LDAP
// attribute, and `serialNumber`, `title`, `GN`, ... would be registered
// descriptors, but a reader need not know them.
struct ShortName {
  std::string_view oid;  // the contents octets
  std::string_view name;
};
constexpr ShortName short_names[] = {
    {"\x55\x04\x03", "CN"},
    {"\x55\x04\x07", "L"},
    {"\x55\x04\x08", "ST"},
    {"\x55\x04\x0a", "O"},
    {"\x55\x04\x0b", "OU"},
    {"\x55\x04\x06", "C"},
    {"\x55\x04\x09", "STREET"},
    {"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19", "DC"},   // 0.9.2342.19200300.100.1.25
    {"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01", "UID"},  // 0.9.2342.19200300.100.1.1
};

std::string_view short_name(const Tlv& type) {
  for (const ShortName& s : short_names)
    if (as_text(type.value) == s.oid) return s.name;
  return {};
}

// AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }.
std::optional<std::string> attribute(const Tlv& atv) {
  if (atv.tag != tag_sequence) return std::nullopt;
  Der parts(atv.value);
  Tlv type, value;
  if (!parts.next(type) || type.tag != tag_oid || !parts.next(value) || !parts.empty())
    return std::nullopt;
  const auto dotted = dotted_oid(type.value);
  if (!dotted) return std::nullopt;
  const std::string_view name = short_name(type);
  std::string out = name.empty() ? *dotted : std::string(name);
  out += '=';
  const auto text = name.empty() ? std::nullopt : string_value(value);
  if (text) {
    append_escaped(out, *text);
  } else {
    out += '#';
    append_hex(out, value.whole, upper_hex);
  }
  return out;
}

// Name ::= SEQUENCE OF RelativeDistinguishedName (SET SIZE (1..MAX) OF
// AttributeTypeAndValue), written last RDN first (RFC 4514 section 2.1).
// Section 2.2 leaves the order inside an RDN open; it is reversed too, as
// OpenSSL does (GnuTLS keeps the DER order), so that the whole string is the
// DER's attributes backwards.
std::optional<std::string> distinguished_name(const Tlv& name) {
  if (name.tag != tag_sequence) return std::nullopt;
  std::vector<std::vector<std::string>> rdns;
  Der list(name.value);
  Tlv rdn;
  while (!list.empty()) {
    if (!list.next(rdn) || rdn.tag != tag_set || rdn.value.empty()) return std::nullopt;
    auto& members = rdns.emplace_back();
    Der atvs(rdn.value);
    Tlv atv;
    while (!atvs.empty()) {
      if (!atvs.next(atv)) return std::nullopt;
      auto text = attribute(atv);
      if (!text) return std::nullopt;
      members.push_back(std::move(*text));
    }
  }
  std::string out;
  for (auto r = rdns.rbegin(); r != rdns.rend(); ++r) {
    if (!out.empty()) out += ',';
    for (auto m = r->rbegin(); m != r->rend(); ++m) {
      if (m != r->rbegin()) out += '+';
      out += *m;
    }
  }
  return out;
}

// ---- serial, times, addresses --------------------------------------------------------

// CertificateSerialNumber ::= INTEGER, two's complement. RFC 5280 4.1.2.2
// wants it positive; a negative one is written as "-" and its magnitude.
std::optional<std::string> serial_text(const Tlv& serial) {
  if (serial.tag != tag_integer || serial.value.empty()) return std::nullopt;
  std::vector<std::byte> magnitude(serial.value.begin(), serial.value.end());
  const bool negative = (octet(magnitude[0]) & 0x80) != 0;
  if (negative) {
    unsigned carry = 1;
    for (auto it = magnitude.rbegin(); it != magnitude.rend(); ++it) {
      const unsigned v = (~octet(*it) & 0xffu) + carry;
      *it = static_cast<std::byte>(v & 0xff);
      carry = v >> 8;
    }
  }
  std::string hex;
  append_hex(hex, magnitude, upper_hex);
  const std::size_t digit = hex.find_first_not_of('0');
  if (digit == std::string::npos) return "0";
  return (negative ? "-" : "") + hex.substr(digit);
}

// RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY >= 50 is 19YY, else 20YY) and
// GeneralizedTime YYYYMMDDHHMMSSZ, always in UTC with seconds and without
// fractions. Other forms are refused, as OpenSSL's verification does.
std::optional<std::chrono::sys_seconds> read_time(const Tlv& t) {
  const std::string text = as_text(t.value);
  std::size_t year_digits;
  if (t.tag == tag_utc_time)
    year_digits = 2;
  else if (t.tag == tag_generalized_time)
    year_digits = 4;
  else
    return std::nullopt;
  if (text.size() != year_digits + 11 || text.back() != 'Z') return std::nullopt;
  for (std::size_t i = 0; i + 1 < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  std::size_t pos = 0;
  auto number = [&](std::size_t digits) {
    int v = 0;
    for (std::size_t i = 0; i < digits; ++i) v = v * 10 + (text[pos++] - '0');
    return v;
  };
  int year = number(year_digits);
  if (year_digits == 2) year += year >= 50 ? 1900 : 2000;
  const int month = number(2), day = number(2), hour = number(2), minute = number(2),
            second = number(2);
  using namespace std::chrono;
  const year_month_day date{std::chrono::year(year), std::chrono::month(unsigned(month)),
                            std::chrono::day(unsigned(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  return sys_days(date) + hours(hour) + minutes(minute) + seconds(second);
}

// RFC 5280 4.2.1.6: four octets for IPv4, sixteen for IPv6. inet_ntop
// writes IPv6 as RFC 5952 wants it. An entry of another length names no
// address (src/verify.cpp never matches it either), so it is left out.
std::optional<std::string> address_text(const std::vector<std::uint8_t>& ip) {
  char buf[INET6_ADDRSTRLEN];
  const int family = ip.size() == 4 ? AF_INET : ip.size() == 16 ? AF_INET6 : AF_UNSPEC;
  if (family == AF_UNSPEC || inet_ntop(family, ip.data(), buf, sizeof buf) == nullptr)
    return std::nullopt;
  return std::string(buf);
}

}  // namespace

// RFC 3629 section 4: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::span<const std::byte> v) {
  std::size_t i = 0;
  while (i < v.size()) {
    const std::uint8_t b = octet(v[i]);
    std::size_t n;
    char32_t c;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xe0) == 0xc0) {
      n = 1;
      c = b & 0x1f;
    } else if ((b & 0xf0) == 0xe0) {
      n = 2;
      c = b & 0x0f;
    } else if ((b & 0xf8) == 0xf0) {
      n = 3;
      c = b & 0x07;
    } else {
      return false;
    }
    if (v.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((octet(v[i + k]) & 0xc0) != 0x80) return false;
      c = (c << 6) | (octet(v[i + k]) & 0x3f);
    }
    constexpr char32_t smallest[] = {0, 0x80, 0x800, 0x10000};
    if (c < smallest[n] || !is_scalar(c)) return false;
    i += n + 1;
  }
  return true;
}

std::optional<Certificate> describe_certificate(std::span<const std::byte> der) {
  // The subjectAltName entries come from the same reader the name check
  // uses (src/x509.hpp), so what is shown is what was matched.
  const auto facts = parse_certificate(der);
  if (!facts) return std::nullopt;

  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }.
  Der top(der);
  Tlv cert, tbs, algorithm, signature_value;
  if (!top.next(cert) || cert.tag != tag_sequence || !top.empty()) return std::nullopt;
  Der cert_fields(cert.value);
  if (!cert_fields.next(tbs) || tbs.tag != tag_sequence || !cert_fields.next(algorithm) ||
      algorithm.tag != tag_sequence || !cert_fields.next(signature_value) ||
      signature_value.tag != tag_bit_string || !cert_fields.empty())
    return std::nullopt;

  Der fields(tbs.value);
  Tlv version, serial, signature, issuer, validity, subject;
  (void)fields.next_if(0xa0, version);  // [0] EXPLICIT Version DEFAULT v1
  if (!fields.next(serial) || !fields.next(signature) || !fields.next(issuer) ||
      !fields.next(validity) || !fields.next(subject))
    return std::nullopt;

  Certificate c;
  auto serial_hex = serial_text(serial);
  auto issuer_text = distinguished_name(issuer);
  auto subject_text = distinguished_name(subject);
  if (!serial_hex || !issuer_text || !subject_text || validity.tag != tag_sequence)
    return std::nullopt;
  Der times(validity.value);
  Tlv not_before, not_after;
  if (!times.next(not_before) || !times.next(not_after) || !times.empty()) return std::nullopt;
  const auto from = read_time(not_before);
  const auto until = read_time(not_after);
  if (!from || !until) return std::nullopt;

  c.subject = std::move(*subject_text);
  c.issuer = std::move(*issuer_text);
  c.dns_names = facts->dns_names;
  for (const auto& ip : facts->ip_addresses)
    if (auto text = address_text(ip)) c.ip_addresses.push_back(std::move(*text));
  c.serial = std::move(*serial_hex);
  c.not_before = *from;
  c.not_after = *until;
  c.sha256_fingerprint = sha256_fingerprint(der);
  c.der.assign(der.begin(), der.end());
  return c;
}

std::string sha256_fingerprint(std::span<const std::byte> der) {
  std::string hex;
  append_hex(hex, sha256(der), lower_hex);
  return hex;
}

}  // namespace unitls::detail
