// Cipher suites and groups by their IANA names (docs/contract.md, "Cipher
// suites and groups"): the one table every backend shares, the uniform
// default, and the checks of Config::cipher_suites and Config::groups that
// are not a stack's business.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <unitls/context.hpp>

namespace unitls::detail {

// How a TLS 1.2 suite agrees on its keys (TLS 1.3 suites leave it to the
// key_share and the certificate: any).
enum class KeyExchange { any, ecdhe_ecdsa, ecdhe_rsa };

struct SuiteInfo {
  std::uint16_t code;     // the IANA code point (RFC 8446 B.4, RFC 8422 6, ...)
  std::string_view name;  // the IANA name
  Version version;        // tls1_3: a TLS 1.3 suite, tls1_2: a TLS 1.2 one
  KeyExchange kx;
};

struct GroupInfo {
  std::uint16_t code;     // the IANA NamedGroup code point (RFC 8446 4.2.7)
  std::string_view name;  // the IANA name: "x25519", "secp256r1", ...
  bool tls1_3 =
      true;  // false: TLS 1.2 only (brainpool, RFC 7027; TLS 1.3 has other code points, RFC 8734)
};

// Every suite and group unitls knows, in no particular order.
std::span<const SuiteInfo> suite_table();
std::span<const GroupInfo> group_table();

// By code point; nullptr when unitls does not know it.
const SuiteInfo* find_suite(std::uint16_t code);
const GroupInfo* find_group(std::uint16_t code);
// By name, ignoring ASCII case; nullptr when unknown.
const SuiteInfo* find_suite(std::string_view name);
const GroupInfo* find_group(std::string_view name);

// The uniform default preference, the same on every backend.
std::span<const std::uint16_t> default_suites();
std::span<const std::uint16_t> default_groups();

// What the core made of cipher_suites, groups and the versions: the suites
// of the versions this backend will negotiate, in preference order, the
// groups in preference order, and the versions narrowed to those the
// suites and groups leave (a list with no TLS 1.3 suite, or no TLS 1.3
// group, negotiates TLS 1.2, and the other way round).
struct Selection {
  std::vector<const SuiteInfo*> suites;
  std::vector<const GroupInfo*> groups;
  Version min_version = Version::tls1_2;
  Version max_version = Version::tls1_3;
};

// Checks the lists (every entry known, none empty or listed twice) and
// selects. false with *message when not: invalid_argument, unless
// *unsupported is set (a list only a TLS 1.3 stack could use, on a stack
// without TLS 1.3: stack names the backend for the message).
bool select_suites(const Config& config, bool stack_has_tls1_3, std::string_view stack,
                   Selection& out, std::string& message, bool& unsupported);

// The named curve of a certificate's EC public key (RFC 5480 2.1.1) as a
// group code point of the table; 0 for another key, or a certificate that
// does not parse.
std::uint16_t ec_curve_of(std::span<const std::byte> certificate_der);

// TLS 1.2 client: whether the server's certificate is one these groups
// allow. RFC 8422 5.1: supported_groups also names the curves a client
// takes for ECDSA keys, and a server must not use a key on another. A key
// that is not EC, or on a curve outside the table, is not this rule's
// business (the stack judges it).
bool server_key_allowed(std::span<const std::byte> certificate_der,
                        std::span<const std::uint16_t> groups);

// "cipher_suites: TLS_AES_128_CCM_8_SHA256 is not available in the gnutls
// backend (GnuTLS 3.7.9: <why>)": the words every backend uses for an entry
// its stack cannot do (errc::unsupported).
std::string unsupported_suite_message(const SuiteInfo& suite, std::string_view backend,
                                      std::string_view why = {});
std::string unsupported_group_message(const GroupInfo& group, std::string_view backend,
                                      std::string_view why = {});

// The server's choice of group (docs/contract.md, "Cipher suites and
// groups"): the first of `ours` (code points, our preference order) that the
// client lists in `offered` (a NamedGroupList's content, RFC 8422 5.1.1: two
// bytes a code point); with tls1_3, only groups TLS 1.3 has. 0: none.
std::uint16_t prefer_group(std::span<const std::uint16_t> ours, std::span<const unsigned char> offered, bool tls1_3);

}  // namespace unitls::detail
