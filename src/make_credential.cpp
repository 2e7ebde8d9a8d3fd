// make_credential (api/unitls/make_credential.hpp): the core writes the
// X.509 certificate (RFC 5280) and the PKCS#8 key (RFC 5208, 5915); a
// backend's EcdsaP256 (src/engine.hpp) makes the key and signs. The same
// certificate shape whichever backend signs (docs/contract.md, "Making
// credentials").
#include <arpa/inet.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <initializer_list>

#include <unitls/backend.hpp>
#include <unitls/make_credential.hpp>

#include "certificate.hpp"
#include "der.hpp"
#include "engine.hpp"
#include "sha256.hpp"
#include "verify.hpp"
#include "wipe.hpp"
#include "x509.hpp"

namespace unitls {

namespace {

using Bytes = std::vector<std::byte>;
using detail::Der;
using detail::Tlv;
using detail::secure_wipe;

// ---- DER writing ----------------------------------------------------------------

void put_length(Bytes& out, std::size_t n) {
  if (n < 0x80) {
    out.push_back(static_cast<std::byte>(n));
    return;
  }
  std::byte digits[sizeof n];
  std::size_t count = 0;
  for (; n > 0; n >>= 8) digits[count++] = static_cast<std::byte>(n & 0xff);
  out.push_back(static_cast<std::byte>(0x80 | count));
  while (count > 0) out.push_back(digits[--count]);
}

Bytes tlv(std::uint8_t tag, std::span<const std::byte> content) {
  Bytes out;
  out.reserve(content.size() + 6);
  out.push_back(static_cast<std::byte>(tag));
  put_length(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes tlv(std::uint8_t tag, std::initializer_list<std::span<const std::byte>> parts) {
  Bytes content;
  for (auto part : parts) content.insert(content.end(), part.begin(), part.end());
  return tlv(tag, content);
}

Bytes bytes(std::initializer_list<std::uint8_t> values) {
  Bytes out;
  for (auto v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

std::span<const std::byte> text_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

Bytes oid(std::initializer_list<std::uint8_t> encoded) { return tlv(detail::tag_oid, bytes(encoded)); }

// The OIDs written (their DER contents).
const Bytes oid_ec_public_key = oid({0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01});        // 1.2.840.10045.2.1
const Bytes oid_prime256v1 = oid({0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07});     // 1.2.840.10045.3.1.7
const Bytes oid_ecdsa_sha256 = oid({0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02});   // 1.2.840.10045.4.3.2
const Bytes oid_common_name = oid({0x55, 0x04, 0x03});                                  // 2.5.4.3
const Bytes oid_basic_constraints = oid({0x55, 0x1d, 0x13});                            // 2.5.29.19
const Bytes oid_key_usage = oid({0x55, 0x1d, 0x0f});                                    // 2.5.29.15
const Bytes oid_ext_key_usage = oid({0x55, 0x1d, 0x25});                                // 2.5.29.37
const Bytes oid_subject_alt_name = oid({0x55, 0x1d, 0x11});                             // 2.5.29.17
const Bytes oid_subject_key_id = oid({0x55, 0x1d, 0x0e});                               // 2.5.29.14
const Bytes oid_authority_key_id = oid({0x55, 0x1d, 0x23});                             // 2.5.29.35
const Bytes oid_server_auth = oid({0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01});    // 1.3.6.1.5.5.7.3.1
const Bytes oid_client_auth = oid({0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02});    // 1.3.6.1.5.5.7.3.2

Bytes extension(const Bytes& id, bool critical, const Bytes& value) {
  const Bytes octets = tlv(detail::tag_octet_string, value);
  if (!critical) return tlv(detail::tag_sequence, {id, octets});
  return tlv(detail::tag_sequence, {id, bytes({detail::tag_boolean, 1, 0xff}), octets});
}

// Name: one RDN, the common name as a UTF8String.
Bytes name_of(const std::string& common_name) {
  const Bytes attribute =
      tlv(detail::tag_sequence, {oid_common_name, tlv(detail::tag_utf8_string, text_bytes(common_name))});
  return tlv(detail::tag_sequence, tlv(detail::tag_set, attribute));
}

// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
Bytes time_of(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[64];  // (room for any int, as the compiler sees it)
  const int year = tm.tm_year + 1900;
  if (year < 2050) {
    std::snprintf(text, sizeof text, "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    return tlv(detail::tag_utc_time, text_bytes(std::string_view(text, 13)));
  }
  std::snprintf(text, sizeof text, "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return tlv(detail::tag_generalized_time, text_bytes(std::string_view(text, 15)));
}

std::string pem_of(std::string_view label, std::span<const std::byte> der) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string body;
  for (std::size_t i = 0; i < der.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, der.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k)
      v = v << 8 | (k < n ? static_cast<std::uint8_t>(der[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) body += k <= n ? alphabet[(v >> (18 - 6 * k)) & 0x3f] : '=';
  }
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  for (std::size_t i = 0; i < body.size(); i += 64) out += body.substr(i, 64) + '\n';
  out += "-----END " + std::string(label) + "-----\n";
  secure_wipe(body);
  return out;
}

// ---- reading the issuer ---------------------------------------------------------

// The SEC1 ECPrivateKey of a P-256 key given as PKCS#8 "PRIVATE KEY" or as
// "EC PRIVATE KEY" (unencrypted), with its public point when it carries one.
bool p256_key_of(const std::string& pem, Bytes& sec1, Bytes& point_in_key) {
  const auto blocks = detail::parse_pem(pem);
  if (!blocks || blocks->empty()) return false;
  const detail::PemBlock& block = blocks->front();
  std::span<const std::byte> ec_private_key;
  bool curve_known = false;
  if (block.label == "PRIVATE KEY") {
    // PrivateKeyInfo: version, AlgorithmIdentifier {ecPublicKey, prime256v1}, OCTET STRING.
    Der outer(block.der);
    Tlv info, version, algorithm, key;
    if (!outer.next(info) || info.tag != detail::tag_sequence) return false;
    Der fields(info.value);
    if (!fields.next(version) || !fields.next(algorithm) || !fields.next(key) ||
        key.tag != detail::tag_octet_string)
      return false;
    Der alg(algorithm.value);
    Tlv id, curve;
    if (!alg.next(id) || !alg.next(curve) ||
        !std::equal(id.whole.begin(), id.whole.end(), oid_ec_public_key.begin(), oid_ec_public_key.end()) ||
        !std::equal(curve.whole.begin(), curve.whole.end(), oid_prime256v1.begin(), oid_prime256v1.end()))
      return false;
    curve_known = true;
    ec_private_key = key.value;
  } else if (block.label == "EC PRIVATE KEY" && !block.encrypted) {
    ec_private_key = block.der;
  } else {
    return false;
  }
  // ECPrivateKey: version 1, OCTET STRING (32 bytes), [0] parameters, [1] publicKey.
  Der outer(ec_private_key);
  Tlv seq, version, secret, field;
  if (!outer.next(seq) || seq.tag != detail::tag_sequence) return false;
  Der fields(seq.value);
  if (!fields.next(version) || !fields.next(secret) || secret.tag != detail::tag_octet_string ||
      secret.value.empty() || secret.value.size() > 33)
    return false;
  point_in_key.clear();
  while (fields.next(field)) {
    Der inner(field.value);
    Tlv t;
    if (field.tag == 0xa0 && inner.next(t)) {
      curve_known = std::equal(t.whole.begin(), t.whole.end(), oid_prime256v1.begin(), oid_prime256v1.end());
      if (!curve_known) return false;
    } else if (field.tag == 0xa1 && inner.next(t) && t.tag == detail::tag_bit_string && !t.value.empty()) {
      point_in_key.assign(t.value.begin() + 1, t.value.end());
    }
  }
  if (!curve_known) return false;
  sec1.assign(seq.whole.begin(), seq.whole.end());
  return true;
}

// A stack's new key in one encoding whichever stack made it (RFC 5915):
// version 1, the private scalar in exactly 32 bytes (GnuTLS may write 31 or
// 33), the curve, the public point.
bool canonical_sec1(const Bytes& made, const Bytes& point, Bytes& out) {
  Der outer(made);
  Tlv seq, version, secret;
  if (!outer.next(seq) || seq.tag != detail::tag_sequence) return false;
  Der fields(seq.value);
  if (!fields.next(version) || !fields.next(secret) || secret.tag != detail::tag_octet_string) return false;
  std::span<const std::byte> d = secret.value;
  while (!d.empty() && d.front() == std::byte{0}) d = d.subspan(1);
  if (d.empty() || d.size() > 32) return false;
  Bytes d32(32 - d.size(), std::byte{0});
  d32.insert(d32.end(), d.begin(), d.end());
  out = tlv(detail::tag_sequence, {bytes({detail::tag_integer, 1, 1}), tlv(detail::tag_octet_string, d32),
                                   tlv(0xa0, oid_prime256v1),
                                   tlv(0xa1, tlv(detail::tag_bit_string, {bytes({0}), point}))});
  secure_wipe(d32);
  return true;
}

// ---- checking the request ------------------------------------------------------

bool dns_name_ok(const std::string& name) {
  std::string_view rest = name;
  if (rest.rfind("*.", 0) == 0) rest.remove_prefix(2);  // a wildcard, whole leftmost label
  return !rest.empty() && rest.find('*') == std::string_view::npos && detail::valid_server_name(rest) &&
         !detail::is_ip_literal(rest);
}

bool fail(std::error_code& ec, std::string* message, errc kind, std::string text) {
  ec = make_error_code(kind);
  if (message) *message = std::move(text);
  return false;
}

bool check_request(const CertificateRequest& r, std::vector<Bytes>& ips, std::error_code& ec, std::string* message) {
  if (r.common_name.empty() || r.common_name.size() > 64 ||
      !detail::valid_utf8(text_bytes(r.common_name)) || r.common_name.find('\0') != std::string::npos)
    return fail(ec, message, errc::invalid_argument, "common_name: 1 to 64 bytes of UTF-8 without NUL");
  for (const auto& name : r.dns_names)
    if (!dns_name_ok(name))
      return fail(ec, message, errc::invalid_argument, "dns_names: '" + name.substr(0, 64) + "' is not a host name");
  for (const auto& ip : r.ip_addresses) {
    unsigned char buf[16];
    if (::inet_pton(AF_INET, ip.c_str(), buf) == 1) {
      ips.push_back(Bytes(reinterpret_cast<const std::byte*>(buf), reinterpret_cast<const std::byte*>(buf) + 4));
    } else if (::inet_pton(AF_INET6, ip.c_str(), buf) == 1) {
      ips.push_back(Bytes(reinterpret_cast<const std::byte*>(buf), reinterpret_cast<const std::byte*>(buf) + 16));
    } else {
      return fail(ec, message, errc::invalid_argument,
                  "ip_addresses: '" + ip.substr(0, 64) + "' is not an IPv4 or IPv6 address");
    }
  }
  if (r.valid_for < std::chrono::minutes(1) || r.valid_for > std::chrono::hours(24 * 365 * 100))
    return fail(ec, message, errc::invalid_argument, "valid_for: from one minute to 100 years");
  return true;
}

const detail::BackendEntry* signer_backend(std::string_view wanted, std::error_code& ec, std::string* message) {
  const auto registry = detail::backend_registry();
  if (!wanted.empty()) {
    for (const auto* entry : registry) {
      if (entry->name != wanted) continue;
      if (entry->ecdsa_p256) return entry;
      fail(ec, message, errc::unsupported, "backend " + std::string(wanted) + " makes no keys");
      return nullptr;
    }
    fail(ec, message, errc::invalid_argument, "backend '" + std::string(wanted) + "' is not compiled in");
    return nullptr;
  }
  for (const auto* entry : registry)
    if (entry->name == detail::registry_default_backend() && entry->ecdsa_p256) return entry;
  for (const auto* entry : registry)
    if (entry->ecdsa_p256) return entry;
  fail(ec, message, errc::unsupported, "no compiled-in backend makes keys");
  return nullptr;
}

}  // namespace

std::optional<Credential> make_credential(const CertificateRequest& request, const Credential* issuer,
                                          std::error_code& ec, std::string* message, std::string_view backend) {
  std::vector<Bytes> ips;
  if (!check_request(request, ips, ec, message)) return std::nullopt;
  const detail::BackendEntry* entry = signer_backend(backend, ec, message);
  if (!entry) return std::nullopt;
  const detail::EcdsaP256& ecdsa = *entry->ecdsa_p256;
  std::string why;

  // The issuer: its name and key identifier from its certificate, its key.
  Bytes issuer_name, issuer_key_id, issuer_sec1;
  if (issuer) {
    const auto blocks = detail::parse_pem(issuer->certificate_pem);
    std::optional<detail::CertificateFacts> facts;
    if (blocks && !blocks->empty() && blocks->front().label == "CERTIFICATE")
      facts = detail::parse_certificate(blocks->front().der);
    if (!facts || !facts->is_ca) {
      fail(ec, message, errc::invalid_argument, "issuer: certificate_pem is not a CA certificate");
      return std::nullopt;
    }
    issuer_name.assign(facts->subject.begin(), facts->subject.end());
    issuer_key_id.assign(facts->subject_key_id.begin(), facts->subject_key_id.end());
    Bytes point_in_key;
    const auto cert_point = facts->public_key;
    if (!p256_key_of(issuer->private_key_pem, issuer_sec1, point_in_key)) {
      fail(ec, message, errc::invalid_argument,
           "issuer: private_key_pem is not an unencrypted ECDSA P-256 key (PRIVATE KEY or EC PRIVATE KEY)");
      return std::nullopt;
    }
    if (!point_in_key.empty() && !std::equal(point_in_key.begin(), point_in_key.end(), cert_point.begin(),
                                             cert_point.end())) {
      secure_wipe(issuer_sec1);
      fail(ec, message, errc::invalid_argument, "issuer: private_key_pem does not match its certificate_pem");
      return std::nullopt;
    }
  }

  Bytes made, sec1, point;
  const bool generated = ecdsa.generate(made, point, why);
  if (generated && (point.size() != 65 || !canonical_sec1(made, point, sec1))) why = "an unexpected key encoding";
  secure_wipe(made);
  if (sec1.empty()) {
    secure_wipe(issuer_sec1);
    fail(ec, message, errc::protocol_error, entry->name.data() + std::string(": key generation failed: ") + why);
    return std::nullopt;
  }

  // TBSCertificate (RFC 5280 4.1).
  const Bytes algorithm = tlv(detail::tag_sequence, oid_ecdsa_sha256);
  std::byte serial[16];
  if (::getrandom(serial, sizeof serial, 0) != static_cast<ssize_t>(sizeof serial)) {
    secure_wipe(sec1);
    secure_wipe(issuer_sec1);
    fail(ec, message, errc::protocol_error, std::string("getrandom: ") + std::strerror(errno));
    return std::nullopt;
  }
  serial[0] = (serial[0] & std::byte{0x7f}) | std::byte{0x40};  // positive, 16 bytes, no leading zero
  const Bytes subject = name_of(request.common_name);
  if (!issuer) issuer_name = subject;
  const std::time_t now = std::time(nullptr);
  const Bytes validity =
      tlv(detail::tag_sequence, {time_of(now - 3600), time_of(now + static_cast<std::time_t>(request.valid_for.count()))});
  const Bytes spki = tlv(detail::tag_sequence,
                         {tlv(detail::tag_sequence, {oid_ec_public_key, oid_prime256v1}),
                          tlv(detail::tag_bit_string, {bytes({0}), point})});
  // Key identifiers: the first 20 bytes of the point's SHA-256 (RFC 7093 2).
  const auto digest_of_point = detail::sha256(point);
  const Bytes key_id(digest_of_point.begin(), digest_of_point.begin() + 20);

  Bytes extensions;
  auto add = [&](const Bytes& e) { extensions.insert(extensions.end(), e.begin(), e.end()); };
  if (request.is_ca) {
    add(extension(oid_basic_constraints, true, tlv(detail::tag_sequence, bytes({detail::tag_boolean, 1, 0xff}))));
    add(extension(oid_key_usage, true, bytes({detail::tag_bit_string, 2, 1, 0x06})));  // keyCertSign, cRLSign
  } else {
    add(extension(oid_basic_constraints, true, tlv(detail::tag_sequence, Bytes{})));
    add(extension(oid_key_usage, true, bytes({detail::tag_bit_string, 2, 7, 0x80})));  // digitalSignature
    add(extension(oid_ext_key_usage, false, tlv(detail::tag_sequence, {oid_server_auth, oid_client_auth})));
  }
  if (!request.dns_names.empty() || !ips.empty()) {
    Bytes names;
    for (const auto& name : request.dns_names) {
      const Bytes entry_bytes = tlv(0x82, text_bytes(name));  // dNSName [2] IA5String
      names.insert(names.end(), entry_bytes.begin(), entry_bytes.end());
    }
    for (const auto& ip : ips) {
      const Bytes entry_bytes = tlv(0x87, ip);  // iPAddress [7]
      names.insert(names.end(), entry_bytes.begin(), entry_bytes.end());
    }
    add(extension(oid_subject_alt_name, false, tlv(detail::tag_sequence, names)));
  }
  add(extension(oid_subject_key_id, false, tlv(detail::tag_octet_string, key_id)));
  if (issuer && !issuer_key_id.empty())
    add(extension(oid_authority_key_id, false, tlv(detail::tag_sequence, tlv(0x80, issuer_key_id))));

  const Bytes tbs = tlv(detail::tag_sequence,
                        {tlv(0xa0, bytes({detail::tag_integer, 1, 2})),  // v3
                         tlv(detail::tag_integer, std::span<const std::byte>(serial)), algorithm, issuer_name,
                         validity, subject, spki, tlv(0xa3, tlv(detail::tag_sequence, extensions))});
  const auto digest = detail::sha256(tbs);
  Bytes signature;
  const bool signed_ok = ecdsa.sign(issuer ? issuer_sec1 : sec1, digest, signature, why);
  secure_wipe(issuer_sec1);
  if (!signed_ok) {
    secure_wipe(sec1);
    fail(ec, message, errc::protocol_error, std::string(entry->name) + ": signing failed: " + why);
    return std::nullopt;
  }
  const Bytes certificate =
      tlv(detail::tag_sequence, {tbs, algorithm, tlv(detail::tag_bit_string, {bytes({0}), signature})});

  // PKCS#8 PrivateKeyInfo around the SEC1 key.
  Bytes pkcs8 = tlv(detail::tag_sequence, {bytes({detail::tag_integer, 1, 0}),
                                           tlv(detail::tag_sequence, {oid_ec_public_key, oid_prime256v1}),
                                           tlv(detail::tag_octet_string, sec1)});
  secure_wipe(sec1);
  Credential out;
  out.certificate_pem = pem_of("CERTIFICATE", certificate);
  out.private_key_pem = pem_of("PRIVATE KEY", pkcs8);
  secure_wipe(pkcs8);
  ec.clear();
  if (message) message->clear();
  return out;
}

}  // namespace unitls
