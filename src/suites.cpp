#include "suites.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <type_traits>

#include <unitls/backend.hpp>

#include "der.hpp"

namespace unitls::detail {

namespace {

using enum KeyExchange;
constexpr Version v12 = Version::tls1_2;
constexpr Version v13 = Version::tls1_3;

// TLS 1.3 (RFC 8446 B.4, RFC 8998 excluded) and the TLS 1.2 ECDHE suites
// (RFC 5289, RFC 7251, RFC 7905, RFC 8422). Static RSA key transport, DHE
// and PSK suites are not here: unitls offers forward secrecy with the
// groups of Config::groups only (docs/contract.md, "Cipher suites and groups").
constexpr SuiteInfo suites[] = {
    {0x1301, "TLS_AES_128_GCM_SHA256", v13, any},
    {0x1302, "TLS_AES_256_GCM_SHA384", v13, any},
    {0x1303, "TLS_CHACHA20_POLY1305_SHA256", v13, any},
    {0x1304, "TLS_AES_128_CCM_SHA256", v13, any},
    {0x1305, "TLS_AES_128_CCM_8_SHA256", v13, any},
    {0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", v12, ecdhe_ecdsa},
    {0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", v12, ecdhe_ecdsa},
    {0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", v12, ecdhe_ecdsa},
    {0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", v12, ecdhe_rsa},
    {0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", v12, ecdhe_rsa},
    {0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", v12, ecdhe_rsa},
    {0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", v12, ecdhe_ecdsa},
    {0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", v12, ecdhe_ecdsa},
    {0xC0AE, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", v12, ecdhe_ecdsa},
    {0xC0AF, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8", v12, ecdhe_ecdsa},
    {0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", v12, ecdhe_ecdsa},
    {0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", v12, ecdhe_ecdsa},
    {0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", v12, ecdhe_ecdsa},
    {0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", v12, ecdhe_ecdsa},
    {0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", v12, ecdhe_rsa},
    {0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", v12, ecdhe_rsa},
    {0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", v12, ecdhe_rsa},
    {0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", v12, ecdhe_rsa},
};

// The elliptic-curve groups (RFC 8446 4.2.7, RFC 7027 for brainpool in
// TLS 1.2). Finite-field groups are not here: no suite above uses them.
constexpr GroupInfo groups[] = {
    {29, "x25519"},
    {23, "secp256r1"},
    {24, "secp384r1"},
    {25, "secp521r1"},
    {30, "x448"},
    {26, "brainpoolP256r1", false},
    {27, "brainpoolP384r1", false},
    {28, "brainpoolP512r1", false},
};

// AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305: the order OpenSSL, GnuTLS
// and browsers agree is fastest on hardware with AES instructions first;
// TLS 1.2 with both certificate types.
constexpr std::uint16_t uniform_suites[] = {0x1301, 0x1302, 0x1303, 0xC02B, 0xC02C,
                                            0xCCA9, 0xC02F, 0xC030, 0xCCA8};
// X25519 (the client's one key share), P-256, and P-384 for the servers
// that offer nothing else (docs/contract.md, "Cipher suites and groups").
constexpr std::uint16_t uniform_groups[] = {29, 23, 24};

bool same_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A name as a message shows it: at most 64 characters, nothing unprintable.
std::string shown(std::string_view name) {
  std::string out(name.substr(0, 64));
  for (char& c : out)
    if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
  if (name.size() > 64) out += "...";
  return out;
}

template <class Info>
bool resolve(const char* option, const char* what, const char* examples,
             const std::vector<std::string>& names, std::vector<const Info*>& out,
             std::string& message) {
  for (const auto& name : names) {
    if (name.empty()) {
      message = std::string(option) + ": an empty name";
      return false;
    }
    const Info* info = nullptr;
    if constexpr (std::is_same_v<Info, SuiteInfo>)
      info = find_suite(name);
    else
      info = find_group(name);
    if (!info) {
      message = std::string(option) + ": unknown " + what + " '" + shown(name) +
                "' (IANA names such as " + examples + ")";
      return false;
    }
    if (std::find(out.begin(), out.end(), info) != out.end()) {
      message = std::string(option) + ": '" + std::string(info->name) + "' is listed twice";
      return false;
    }
    out.push_back(info);
  }
  return true;
}

std::string stack_words(std::string_view backend) {
  std::string text = "the " + std::string(backend) + " backend";
  const std::string_view library = backend_library_version(backend);
  if (!library.empty()) text += " (" + std::string(library) + ")";
  return text;
}

}  // namespace

std::span<const SuiteInfo> suite_table() { return suites; }
std::span<const GroupInfo> group_table() { return groups; }

const SuiteInfo* find_suite(std::uint16_t code) {
  for (const auto& s : suites)
    if (s.code == code) return &s;
  return nullptr;
}
const GroupInfo* find_group(std::uint16_t code) {
  for (const auto& g : groups)
    if (g.code == code) return &g;
  return nullptr;
}
const SuiteInfo* find_suite(std::string_view name) {
  for (const auto& s : suites)
    if (same_ignoring_case(s.name, name)) return &s;
  return nullptr;
}
const GroupInfo* find_group(std::string_view name) {
  for (const auto& g : groups)
    if (same_ignoring_case(g.name, name)) return &g;
  return nullptr;
}

std::span<const std::uint16_t> default_suites() { return uniform_suites; }
std::span<const std::uint16_t> default_groups() { return uniform_groups; }

bool select_suites(const Config& c, bool stack_has_tls1_3, std::string_view stack, Selection& out,
                   std::string& message, bool& unsupported) {
  unsupported = false;
  out = Selection{};
  std::vector<const SuiteInfo*> listed;
  if (!resolve("cipher_suites", "suite", "TLS_AES_128_GCM_SHA256", c.cipher_suites, listed,
               message) ||
      !resolve("groups", "group", "x25519, secp256r1", c.groups, out.groups, message))
    return false;
  if (c.cipher_suites.empty())
    for (const std::uint16_t code : default_suites()) listed.push_back(find_suite(code));
  if (c.groups.empty())
    for (const std::uint16_t code : default_groups()) out.groups.push_back(find_group(code));

  // The versions this stack will negotiate (a stack without TLS 1.3 serves
  // max_version = tls1_3 with TLS 1.2; min_version = tls1_3 was refused).
  const Version max = stack_has_tls1_3 ? c.max_version : Version::tls1_2;
  bool has12 = false, has13 = false, listed12 = false, listed13 = false;
  for (const SuiteInfo* s : listed) {
    (s->version == v13 ? listed13 : listed12) = true;
    if (s->version < c.min_version || s->version > max) continue;
    out.suites.push_back(s);
    (s->version == v13 ? has13 : has12) = true;
  }
  if (out.suites.empty()) {
    if (!listed12 && c.max_version == Version::tls1_2) {
      message = "cipher_suites: only TLS 1.3 suites, but max_version = tls1_2";
    } else if (!listed13 && c.min_version == Version::tls1_3) {
      message = "cipher_suites: only TLS 1.2 suites, but min_version = tls1_3";
    } else {
      message = "cipher_suites: only TLS 1.3 suites, and " + stack_words(stack) + " has no TLS 1.3";
      unsupported = true;
    }
    return false;
  }
  out.min_version = has12 ? c.min_version : v13;
  out.max_version = has13 ? max : v12;
  // TLS 1.3 needs a group it can use for its key share.
  if (std::none_of(out.groups.begin(), out.groups.end(),
                   [](const GroupInfo* g) { return g->tls1_3; })) {
    if (out.min_version == v13) {
      message = "groups: only TLS 1.2 groups (brainpool), but TLS 1.3 is the only version left";
      return false;
    }
    out.max_version = v12;
  }
  return true;
}

std::uint16_t ec_curve_of(std::span<const std::byte> der) {
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ... } }
  Der top(der);
  Tlv cert, tbs, field, spki, algorithm, oid, params;
  if (!top.next(cert) || cert.tag != tag_sequence) return 0;
  Der cert_fields(cert.value);
  if (!cert_fields.next(tbs) || tbs.tag != tag_sequence) return 0;
  Der fields(tbs.value);
  (void)fields.next_if(0xa0, field);
  for (int i = 0; i < 5; ++i)  // serialNumber, signature, issuer, validity, subject
    if (!fields.next(field)) return 0;
  if (!fields.next(spki) || spki.tag != tag_sequence) return 0;
  Der key(spki.value);
  if (!key.next(algorithm) || algorithm.tag != tag_sequence) return 0;
  Der alg(algorithm.value);
  if (!alg.next(oid) || !oid_is(oid, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}))  // id-ecPublicKey
    return 0;
  if (!alg.next(params) || params.tag != tag_oid) return 0;  // namedCurve (RFC 5480: the only form)
  if (oid_is(params, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})) return 23;  // secp256r1
  if (oid_is(params, {0x2b, 0x81, 0x04, 0x00, 0x22})) return 24;                    // secp384r1
  if (oid_is(params, {0x2b, 0x81, 0x04, 0x00, 0x23})) return 25;                    // secp521r1
  if (oid_is(params, {0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07}))
    return 26;  // brainpoolP256r1
  if (oid_is(params, {0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b}))
    return 27;  // brainpoolP384r1
  if (oid_is(params, {0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d}))
    return 28;  // brainpoolP512r1
  return 0;
}

bool server_key_allowed(std::span<const std::byte> der, std::span<const std::uint16_t> groups) {
  const std::uint16_t curve = ec_curve_of(der);
  return curve == 0 || std::find(groups.begin(), groups.end(), curve) != groups.end();
}

std::string unsupported_suite_message(const SuiteInfo& suite, std::string_view backend,
                                      std::string_view why) {
  std::string text =
      "cipher_suites: " + std::string(suite.name) + " is not available in " + stack_words(backend);
  if (!why.empty()) text += ": " + std::string(why);
  return text;
}

std::string unsupported_group_message(const GroupInfo& group, std::string_view backend,
                                      std::string_view why) {
  std::string text =
      "groups: " + std::string(group.name) + " is not available in " + stack_words(backend);
  if (!why.empty()) text += ": " + std::string(why);
  return text;
}

std::uint16_t prefer_group(std::span<const std::uint16_t> ours, std::span<const unsigned char> offered, bool tls1_3) {
  for (const std::uint16_t code : ours) {
    if (tls1_3) {
      const GroupInfo* info = find_group(code);
      if (!info || !info->tls1_3) continue;  // a TLS 1.2-only group (brainpool)
    }
    for (std::size_t i = 0; i + 1 < offered.size(); i += 2)
      if ((std::uint16_t{offered[i]} << 8 | offered[i + 1]) == code) return code;
  }
  return 0;
}

}  // namespace unitls::detail
