// The description of a certificate that the core reads from its DER alone
// (src/certificate.hpp) and the SHA-256 behind its fingerprint
// (src/sha256.hpp). Every field is compared with what the openssl command
// line prints for the same file; hand-made certificates pin down the cases
// where RFC 4514 and `openssl x509 -nameopt RFC2253` part ways.
#include <arpa/inet.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "certificate.hpp"
#include "doctest.hpp"
#include "temp_dir.hpp"
#include "process.hpp"
#include "sha256.hpp"
#include "x509.hpp"

using namespace unitls;
using namespace unitls::detail;
using namespace std::chrono;
namespace fs = std::filesystem;

using unitls::test::TempDir;

namespace {

using Bytes = std::vector<std::byte>;

}  // namespace

// A failed time comparison shows the time, not "{?}".
namespace doctest {
template <>
struct StringMaker<sys_seconds> {
  static String convert(sys_seconds t) {
    const auto day = floor<days>(t);
    const year_month_day date(day);
    const hh_mm_ss time(t - day);
    char text[40];
    std::snprintf(text, sizeof text, "%d-%02u-%02u %02d:%02d:%02dZ", int(date.year()),
                  unsigned(date.month()), unsigned(date.day()), int(time.hours().count()),
                  int(time.minutes().count()), int(time.seconds().count()));
    return text;
  }
};
}  // namespace doctest

namespace {

Bytes raw(std::string_view s) {
  Bytes out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

Bytes unhex(std::string_view hex) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::byte>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

std::string lower_hex(std::span<const std::byte> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::byte b : bytes) {
    out += digits[std::to_integer<unsigned>(b) >> 4];
    out += digits[std::to_integer<unsigned>(b) & 0x0f];
  }
  return out;
}

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return sys_days(year_month_day{year(y), month(mo), day(d)}) + hours(h) + minutes(mi) + seconds(s);
}

// ---- the openssl command line ------------------------------------------------------

std::string certs_dir() {
  const char* dir = std::getenv("UNITLS_TEST_CERTS");
  REQUIRE_MESSAGE(dir != nullptr, "UNITLS_TEST_CERTS is not set (run through meson test)");
  return dir;
}

std::string openssl_program() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/openssl";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  FAIL("no openssl program on PATH (the tests need it, as the build did)");
  return {};
}

// Runs `openssl args...`, REQUIREs success, returns its stdout.
std::string openssl(std::vector<std::string> args) {
  static const std::string program = openssl_program();
  args.insert(args.begin(), program);
  unitls::test::ChildProcess child({args});
  const auto status = child.wait(std::chrono::seconds(30));
  REQUIRE_MESSAGE(status == 0, child.report());
  return child.out();
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), path);
  std::ostringstream text;
  text << in.rdbuf();
  return raw(text.str());
}

void write_file(const std::string& path, const Bytes& data) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  REQUIRE(out.good());
}

// The certificates of a PEM file, in order.
std::vector<Bytes> pem_certificates(const std::string& path) {
  const Bytes bytes = read_file(path);
  const auto blocks =
      parse_pem(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  std::vector<Bytes> out;
  if (!blocks) return out;
  for (const auto& b : *blocks)
    if (b.label == "CERTIFICATE") out.push_back(b.der);
  return out;
}

// OpenSSL's RFC2253 output escapes each byte of a non-ASCII character as
// \XX; RFC 4514 lets it stand as UTF-8, as we write it. This undoes that one
// difference and nothing else.
std::string unescape_non_ascii(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      const int v = std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16);
      if (v >= 0x80) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    if (s[i] == '\\' && i + 1 < s.size()) out += s[i++];
    out += s[i];
  }
  return out;
}

// "2026-11-26 15:52:50Z" (-dateopt iso_8601).
sys_seconds iso_time(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  REQUIRE_MESSAGE(std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%dZ", &y, &mo, &d, &h, &mi, &s) == 6,
                  text);
  return utc(y, unsigned(mo), unsigned(d), h, mi, s);
}

// IP text in RFC 5952 form (OpenSSL writes IPv6 as eight full groups).
std::string canonical_ip(const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  const int family = text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  REQUIRE_MESSAGE(inet_pton(family, text.c_str(), buf) == 1, text);
  REQUIRE(inet_ntop(family, buf, out, sizeof out) != nullptr);
  return out;
}

// What `openssl x509` says about one certificate file.
struct OpensslView {
  std::string subject, issuer, serial, fingerprint;
  sys_seconds not_before, not_after;
  std::vector<std::string> dns_names, ip_addresses;
};

OpensslView openssl_view(const std::string& path, bool der = false) {
  std::vector<std::string> args = {"x509",         "-in",     path,       "-noout",
                                   "-subject",     "-issuer", "-serial",  "-dates",
                                   "-fingerprint", "-sha256", "-ext",     "subjectAltName",
                                   "-nameopt",     "RFC2253", "-dateopt", "iso_8601"};
  if (der) args.insert(args.begin() + 1, {"-inform", "DER"});
  std::istringstream lines(openssl(args));
  OpensslView v;
  bool san_next = false;
  auto after = [](const std::string& line, std::string_view prefix) -> std::optional<std::string> {
    if (line.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return line.substr(prefix.size());
  };
  for (std::string line; std::getline(lines, line);) {
    if (san_next) {
      san_next = false;
      std::istringstream entries(line.substr(line.find_first_not_of(' ')));
      for (std::string entry; std::getline(entries, entry, ',');) {
        if (entry.front() == ' ') entry.erase(0, 1);
        if (auto dns = after(entry, "DNS:")) v.dns_names.push_back(*dns);
        if (auto ip = after(entry, "IP Address:")) v.ip_addresses.push_back(canonical_ip(*ip));
      }
    } else if (auto s = after(line, "subject=")) {
      v.subject = *s;
    } else if (auto s = after(line, "issuer=")) {
      v.issuer = *s;
    } else if (auto s = after(line, "serial=")) {
      // OpenSSL writes whole octets ("0A", "00"); ours has no leading zeros.
      const bool negative = !s->empty() && s->front() == '-';
      const std::string digits = s->substr(negative ? 1 : 0);
      const std::size_t first = digits.find_first_not_of('0');
      v.serial = first == std::string::npos ? "0" : (negative ? "-" : "") + digits.substr(first);
    } else if (auto s = after(line, "notBefore=")) {
      v.not_before = iso_time(*s);
    } else if (auto s = after(line, "notAfter=")) {
      v.not_after = iso_time(*s);
    } else if (auto s = after(line, "sha256 Fingerprint=")) {
      for (char c : *s)
        if (c != ':')
          v.fingerprint += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (line.rfind("X509v3 Subject Alternative Name:", 0) == 0) {
      san_next = true;
    }
  }
  return v;
}

// Every field of describe_certificate(der) against openssl on the same file
// (the names only when they hold nothing RFC 4514 writes differently).
enum class Names { compare, differ };
void check_against_openssl(const Bytes& der, const std::string& path, bool is_der = false,
                           Names names = Names::compare) {
  CAPTURE(path);
  const auto cert = describe_certificate(der);
  REQUIRE(cert.has_value());
  const OpensslView want = openssl_view(path, is_der);
  if (names == Names::compare) {
    CHECK(cert->subject == unescape_non_ascii(want.subject));
    CHECK(cert->issuer == unescape_non_ascii(want.issuer));
  }
  CHECK(cert->dns_names == want.dns_names);
  CHECK(cert->ip_addresses == want.ip_addresses);
  CHECK(cert->serial == want.serial);
  CHECK(cert->not_before == want.not_before);
  CHECK(cert->not_after == want.not_after);
  CHECK(cert->sha256_fingerprint == want.fingerprint);
  CHECK(cert->der == der);
}

// ---- certificates by hand (DER, X.690) -----------------------------------------------

Bytes tlv(std::uint8_t tag, const Bytes& value) {
  Bytes out{static_cast<std::byte>(tag)};
  const std::size_t n = value.size();
  if (n < 0x80) {
    out.push_back(static_cast<std::byte>(n));
  } else if (n < 0x100) {
    out.insert(out.end(), {std::byte{0x81}, static_cast<std::byte>(n)});
  } else {
    out.insert(out.end(),
               {std::byte{0x82}, static_cast<std::byte>(n >> 8), static_cast<std::byte>(n & 0xff)});
  }
  out.insert(out.end(), value.begin(), value.end());
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes seq(std::initializer_list<Bytes> parts) { return tlv(0x30, cat(parts)); }

// OID contents octets.
const Bytes cn_oid = raw("\x55\x04\x03");
const Bytes o_oid = raw("\x55\x04\x0a");
const Bytes l_oid = raw("\x55\x04\x07");
const Bytes st_oid = raw("\x55\x04\x08");
const Bytes street_oid = raw("\x55\x04\x09");
const Bytes dc_oid = unhex("0992268993f22c640119");
const Bytes uid_oid = unhex("0992268993f22c640101");
const Bytes email_oid = unhex("2a864886f70d010901");

Bytes atv(const Bytes& oid, std::uint8_t tag, const Bytes& value) {
  return seq({tlv(0x06, oid), tlv(tag, value)});
}
Bytes utf8(const Bytes& oid, std::string_view text) { return atv(oid, 0x0c, raw(text)); }

// Name: one inner list per RDN, in DER order.
Bytes name(std::initializer_list<std::initializer_list<Bytes>> rdns) {
  Bytes list;
  for (const auto& rdn : rdns) {
    const Bytes set = tlv(0x31, cat(rdn));
    list.insert(list.end(), set.begin(), set.end());
  }
  return tlv(0x30, list);
}

Bytes der_utc_time(std::string_view t) { return tlv(0x17, raw(t)); }
Bytes der_generalized_time(std::string_view t) { return tlv(0x18, raw(t)); }

struct Parts {
  Bytes serial = tlv(0x02, unhex("01"));
  Bytes issuer = name({{utf8(cn_oid, "issuer")}});
  Bytes subject = name({{utf8(cn_oid, "subject")}});
  Bytes not_before = der_utc_time("250101000000Z");
  Bytes not_after = der_utc_time("260101000000Z");
  Bytes extensions;  // the contents of [3], empty for none
};

// A v3 certificate with an EC key of zeros and a signature that signs
// nothing: describe_certificate verifies no signature, and openssl x509
// prints such a file all the same.
Bytes build(const Parts& p) {
  const Bytes algorithm = seq({tlv(0x06, unhex("2a8648ce3d040302"))});  // ecdsa-with-SHA256
  const Bytes key =
      seq({seq({tlv(0x06, unhex("2a8648ce3d0201")), tlv(0x06, unhex("2a8648ce3d030107"))}),
           tlv(0x03, cat({unhex("0004"), Bytes(64)}))});
  Bytes tbs_fields = cat({tlv(0xa0, tlv(0x02, unhex("02"))), p.serial, algorithm, p.issuer,
                          seq({p.not_before, p.not_after}), p.subject, key});
  if (!p.extensions.empty()) tbs_fields = cat({tbs_fields, tlv(0xa3, p.extensions)});
  const Bytes signature =
      tlv(0x03, cat({unhex("00"), seq({tlv(0x02, unhex("01")), tlv(0x02, unhex("01"))})}));
  return seq({tlv(0x30, tbs_fields), algorithm, signature});
}

Bytes with_subject(const Bytes& subject) {
  Parts p;
  p.subject = subject;
  return build(p);
}

std::string subject_of(const Bytes& subject) {
  const auto cert = describe_certificate(with_subject(subject));
  REQUIRE(cert.has_value());
  return cert->subject;
}

// The subject openssl prints for a hand-made certificate (RFC2253).
std::string openssl_subject(const TempDir& dir, const Bytes& der) {
  const std::string path = dir.file("subject.der");
  write_file(path, der);
  std::string out =
      openssl({"x509", "-inform", "DER", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253"});
  REQUIRE(out.rfind("subject=", 0) == 0);
  out = out.substr(8);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

// ---- SHA-256 ------------------------------------------------------------------------------

TEST_CASE("sha256 gives the digests of the FIPS 180-2 examples") {
  CHECK(lower_hex(sha256(raw(""))) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(lower_hex(sha256(raw("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(lower_hex(sha256(raw("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(lower_hex(sha256(
            raw("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                "klmnopqrlmnopqrsmnopqrstnopqrstu"))) ==
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  CHECK(lower_hex(sha256(Bytes(1000000, std::byte{'a'}))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE(
    "sha256 agrees with openssl dgst around the padding boundaries, in one piece or in many") {
  TempDir dir;
  std::vector<std::string> args = {"dgst", "-sha256", "-r"};
  std::vector<Bytes> messages;
  for (std::size_t n : {1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000}) {
    Bytes m(n);
    for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<std::byte>((i * 37 + n) & 0xff);
    write_file(dir.file("m" + std::to_string(n)), m);
    args.push_back(dir.file("m" + std::to_string(n)));
    messages.push_back(std::move(m));
  }
  std::istringstream lines(openssl(args));
  for (const Bytes& m : messages) {
    CAPTURE(m.size());
    std::string want, file;
    const bool listed = static_cast<bool>(lines >> want >> file);
    REQUIRE(listed);
    CHECK(lower_hex(sha256(m)) == want);
    for (std::size_t chunk : {1, 3, 63, 64, 65}) {
      Sha256 h;
      for (std::size_t i = 0; i < m.size(); i += chunk)
        h.update(std::span(m).subspan(i, std::min(chunk, m.size() - i)));
      CHECK(lower_hex(h.finish()) == want);
    }
  }
}

// ---- the test PKI against openssl ---------------------------------------------------------

TEST_CASE("every certificate of the test PKI is described as the openssl command line prints it") {
  int compared = 0;
  for (const auto& entry : fs::directory_iterator(certs_dir())) {
    if (entry.path().extension() != ".pem") continue;
    const auto certs = pem_certificates(entry.path().string());
    if (certs.size() != 1) continue;  // chains and bundles: their members have files of their own
    // A dNSName with a NUL in it: openssl prints the extension as raw bytes.
    if (entry.path().filename() == "nul_san.pem") {
      const auto cert = describe_certificate(certs[0]);
      REQUIRE(cert.has_value());
      CHECK(cert->dns_names == std::vector<std::string>{std::string("localhost\0evil", 14)});
      continue;
    }
    check_against_openssl(certs[0], entry.path().string());
    ++compared;
  }
  CHECK(compared >= 25);
  const std::string server_der = certs_dir() + "/server.der";
  check_against_openssl(read_file(server_der), server_der, true);
}

TEST_CASE("the test server's certificate is described field by field") {
  const auto cert = describe_certificate(read_file(certs_dir() + "/server.der"));
  REQUIRE(cert.has_value());
  CHECK(cert->subject == "CN=localhost");
  CHECK(cert->issuer == "CN=unitls test CA");
  CHECK(cert->dns_names == std::vector<std::string>{"localhost"});
  CHECK(cert->ip_addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(cert->serial.find_first_not_of("0123456789ABCDEF") == std::string::npos);
  CHECK(cert->serial.front() != '0');
  CHECK(cert->not_after - cert->not_before == days(30));
  CHECK(cert->sha256_fingerprint == lower_hex(sha256(cert->der)));
  // The PEM and the DER file hold the same certificate.
  CHECK(describe_certificate(pem_certificates(certs_dir() + "/server.pem").at(0)) == cert);

  const auto ip_only = describe_certificate(pem_certificates(certs_dir() + "/ip_only.pem").at(0));
  REQUIRE(ip_only.has_value());
  CHECK(ip_only->dns_names.empty());
  CHECK(ip_only->ip_addresses == std::vector<std::string>{"127.0.0.1", "::1"});
}

// ---- names from openssl req -------------------------------------------------------------------

TEST_CASE("names made by openssl req read as openssl prints them, escapes, UTF-8 and all") {
  TempDir dir;
  const std::string key = certs_dir() + "/server.key";
  auto make = [&](const std::string& file, const std::string& subject,
                  std::vector<std::string> more = {}, Names names = Names::compare) {
    std::vector<std::string> args = {"req",          "-new",  "-x509", "-key",  key,    "-out",
                                     dir.file(file), "-days", "1",     "-subj", subject};
    args.insert(args.end(), more.begin(), more.end());
    openssl(args);
    const auto certs = pem_certificates(dir.file(file));
    REQUIRE(certs.size() == 1);
    check_against_openssl(certs[0], dir.file(file), false, names);
    const auto cert = describe_certificate(certs[0]);
    REQUIRE(cert.has_value());
    return *cert;
  };

  // RFC 4514 2.4: ,+"\<>; escaped wherever they stand; '#' and ' ' at the
  // start, ' ' at the end; '=' and an inner '#' not at all.
  CHECK(make("escapes.pem", R"(/CN=a\,b\+c"d\\e<f>g;h=i#j/O=#lead/OU= both ends )").subject ==
        R"(OU=\ both ends\ ,O=\#lead,CN=a\,b\+c\"d\\e\<f\>g\;h=i#j)");
  CHECK(make("spaces.pem", "/CN= /O=  x  ").subject == R"(O=\  x \ ,CN=\ )");

  const Certificate multi = make("multi.pem", "/DC=com/DC=example/CN=a+O=b+OU=c/C=US");
  CHECK(multi.subject.find("DC=example,DC=com") != std::string::npos);
  CHECK(multi.subject.rfind("C=US,", 0) == 0);

  CHECK(make("utf8.pem", "/CN=\xc3\xa4\xe2\x82\xac/O=x", {"-utf8"}).subject ==
        "O=x,CN=\xc3\xa4\xe2\x82\xac");

  // emailAddress is not an RFC 4514 type: dotted OID and the DER in hex
  // (OpenSSL prints "emailAddress=a@b.c").
  CHECK(make("email.pem", "/CN=x/emailAddress=a@b.c", {}, Names::differ).subject ==
        "1.2.840.113549.1.9.1=#16056140622E63,CN=x");
}

TEST_CASE("subjectAltName entries keep their order, with IPv6 in RFC 5952 form") {
  TempDir dir;
  const std::string file = dir.file("san.pem");
  openssl(
      {"req", "-new", "-x509", "-key", certs_dir() + "/server.key", "-out", file, "-days", "1",
       "-subj", "/CN=san", "-addext",
       "subjectAltName=DNS:b.test,IP:::1,IP:2001:DB8:0:0:0:0:0:1,DNS:a.test,IP:::ffff:192.0.2.1,"
       "IP:10.0.0.1,IP:2001:db8:0:0:1:0:0:1,email:x@y.test"});
  const auto certs = pem_certificates(file);
  REQUIRE(certs.size() == 1);
  check_against_openssl(certs[0], file);
  const auto cert = describe_certificate(certs[0]);
  REQUIRE(cert.has_value());
  CHECK(cert->dns_names == std::vector<std::string>{"b.test", "a.test"});
  CHECK(cert->ip_addresses == std::vector<std::string>{"::1", "2001:db8::1", "::ffff:192.0.2.1",
                                                       "10.0.0.1", "2001:db8::1:0:0:1"});
}

TEST_CASE("a validity that ends in 2050 or later is a GeneralizedTime and reads as one") {
  TempDir dir;
  const std::string file = dir.file("long.pem");
  openssl({"req", "-new", "-x509", "-key", certs_dir() + "/server.key", "-out", file, "-days",
           "10000", "-subj", "/CN=long"});
  const auto certs = pem_certificates(file);
  REQUIRE(certs.size() == 1);
  check_against_openssl(certs[0], file);
  const auto cert = describe_certificate(certs[0]);
  REQUIRE(cert.has_value());
  CHECK(cert->not_after >= utc(2050, 1, 1));
  CHECK(cert->not_after - cert->not_before == days(10000));
}

// ---- names by hand --------------------------------------------------------------------------

TEST_CASE(
    "string types are decoded to UTF-8: BMP, Universal, Teletex as Latin-1, and the ASCII ones") {
  TempDir dir;
  const Bytes bmp = with_subject(name({{atv(cn_oid, 0x1e, unhex("006100e420ac"))}}));  // a ä €
  const Bytes universal =
      with_subject(name({{atv(cn_oid, 0x1c, unhex("00000061000020ac0001f600"))}}));  // a € 😀
  const Bytes teletex = with_subject(name({{atv(cn_oid, 0x14, raw("caf\xe9"))}}));
  const Bytes ascii =
      with_subject(name({{atv(cn_oid, 0x13, raw("Print")), atv(o_oid, 0x16, raw("ia5")),
                          atv(l_oid, 0x12, raw("123"))}}));
  CHECK(subject_of(name({{atv(cn_oid, 0x1e, unhex("006100e420ac"))}})) ==
        "CN=a\xc3\xa4\xe2\x82\xac");
  CHECK(subject_of(name({{atv(cn_oid, 0x1c, unhex("00000061000020ac0001f600"))}})) ==
        "CN=a\xe2\x82\xac\xf0\x9f\x98\x80");
  CHECK(subject_of(name({{atv(cn_oid, 0x14, raw("caf\xe9"))}})) == "CN=caf\xc3\xa9");
  CHECK(subject_of(name({{atv(o_oid, 0x1a, raw("visible"))}})) == "O=visible");
  for (const Bytes* der : {&bmp, &universal, &teletex, &ascii}) {
    const auto cert = describe_certificate(*der);
    REQUIRE(cert.has_value());
    CHECK(cert->subject == unescape_non_ascii(openssl_subject(dir, *der)));
  }
}

TEST_CASE("NUL and control characters are escaped as hex, as OpenSSL does") {
  TempDir dir;
  const Bytes subject = name({{atv(cn_oid, 0x0c,
                                   raw(std::string_view("a\0b\x01"
                                                        "c\nd\x7f"
                                                        "e",
                                                        9)))}});
  CHECK(subject_of(subject) == R"(CN=a\00b\01c\0Ad\7Fe)");
  CHECK(subject_of(subject) == openssl_subject(dir, with_subject(subject)));
}

TEST_CASE("a value that is only '#' is escaped, where OpenSSL leaves it bare") {
  // RFC 4514 2.4 escapes a leading '#' whatever follows; unescaped, "CN=#"
  // would read back as an (empty, invalid) hex value. OpenSSL prints "CN=#".
  CHECK(subject_of(name({{utf8(cn_oid, "#")}})) == R"(CN=\#)");
  CHECK(subject_of(name({{utf8(cn_oid, " ")}})) == R"(CN=\ )");
  CHECK(subject_of(name({{utf8(cn_oid, "# ")}})) == R"(CN=\#\ )");
  CHECK(subject_of(name({{utf8(cn_oid, "")}})) == "CN=");
}

TEST_CASE("RDNs are written last first, and the members of a multi-valued RDN too") {
  TempDir dir;
  const Bytes subject =
      name({{utf8(dc_oid, "com")},
            {utf8(dc_oid, "example")},
            {utf8(uid_oid, "u1")},
            {utf8(street_oid, "Main St"), utf8(l_oid, "Town"), utf8(st_oid, "State")}});
  CHECK(subject_of(subject) == "ST=State+L=Town+STREET=Main St,UID=u1,DC=example,DC=com");
  // OpenSSL agrees but for the spelling of STREET (RFC 4514 section 3), which it writes "street".
  CHECK(openssl_subject(dir, with_subject(subject)) ==
        "ST=State+L=Town+street=Main St,UID=u1,DC=example,DC=com");
  CHECK(subject_of(name({})) == "");
}

TEST_CASE("types outside RFC 4514 section 3 are dotted OIDs with the value's DER in hex") {
  TempDir dir;
  CHECK(subject_of(name({{atv(email_oid, 0x16, raw("a@b.c"))}})) ==
        "1.2.840.113549.1.9.1=#16056140622E63");
  CHECK(subject_of(name({{atv(raw("\x55\x04\x05"), 0x13, raw("1234"))}})) ==
        "2.5.4.5=#130431323334");  // serialNumber
  // An unknown type, and an arc beyond 64 bits (a UUID OID): OpenSSL prints both the same way.
  const Bytes unknown = name({{utf8(raw("\x2a\x03\x04"), "hello")}});
  CHECK(subject_of(unknown) == "1.2.3.4=#0C0568656C6C6F");
  CHECK(subject_of(unknown) == openssl_subject(dir, with_subject(unknown)));
  const Bytes uuid = name({{utf8(unhex("6983f09da7ebcfdee0c7a1a7b2c0948cc8f9d776"), "x")}});
  CHECK(subject_of(uuid) == "2.25.329800735698586629295641978511506172918=#0C0178");
  CHECK(subject_of(uuid) == openssl_subject(dir, with_subject(uuid)));
  CHECK(subject_of(name({{utf8(unhex("868d70"), "x")}})) == "2.100000=#0C0178");
  CHECK(subject_of(name({{utf8(unhex("27"), "x")}})) == "0.39=#0C0178");
  CHECK(subject_of(name({{utf8(unhex("28"), "x")}})) == "1.0=#0C0178");
}

TEST_CASE("an object identifier arc of more than 20 octets makes the certificate undescribed, at once") {
  // 20 octets (140 bits) still read; 21 do not. A peer could otherwise send
  // one arc as long as its certificate: each octet costs a pass over the
  // decimal digits so far (60 000 octets: billions of steps without the limit).
  Bytes arc20(19, std::byte{0xff});
  arc20.push_back(std::byte{0x7f});
  CHECK(describe_certificate(with_subject(name({{utf8(cat({unhex("2a"), arc20}), "x")}}))).has_value());
  Bytes arc21(20, std::byte{0xff});
  arc21.push_back(std::byte{0x7f});
  CHECK_FALSE(describe_certificate(with_subject(name({{utf8(cat({unhex("2a"), arc21}), "x")}}))).has_value());
  Bytes huge(60000, std::byte{0xff});
  huge.push_back(std::byte{0x7f});
  CHECK_FALSE(describe_certificate(with_subject(name({{utf8(cat({unhex("2a"), huge}), "x")}}))).has_value());
}

TEST_CASE("a value that is not a string, or not valid for its string type, is written in hex") {
  CHECK(subject_of(name({{atv(cn_oid, 0x02, unhex("05"))}})) == "CN=#020105");  // INTEGER
  CHECK(subject_of(name({{atv(cn_oid, 0x04, raw("ab"))}})) == "CN=#04026162");  // OCTET STRING
  CHECK(subject_of(name({{atv(cn_oid, 0x0c,
                              raw("a\xff"
                                  "b"))}})) == "CN=#0C0361FF62");  // not UTF-8
  CHECK(subject_of(name({{atv(cn_oid, 0x0c, raw("\xc0\xaf"))}})) ==
        "CN=#0C02C0AF");  // overlong '/'
  CHECK(subject_of(name({{atv(cn_oid, 0x0c, raw("\xed\xa0\x80"))}})) ==
        "CN=#0C03EDA080");  // a surrogate
  CHECK(subject_of(name({{atv(cn_oid, 0x13,
                              raw("a\xe9"
                                  "b"))}})) == "CN=#130361E962");  // 8-bit PrintableString
  CHECK(subject_of(name({{atv(cn_oid, 0x1e, unhex("d83dde00"))}})) ==
        "CN=#1E04D83DDE00");  // UTF-16, not UCS-2
  CHECK(subject_of(name({{atv(cn_oid, 0x1e, unhex("0061ff"))}})) ==
        "CN=#1E030061FF");  // odd length
  CHECK(subject_of(name({{atv(cn_oid, 0x1c, unhex("00110000"))}})) ==
        "CN=#1C0400110000");  // past U+10FFFF
}

TEST_CASE("issuer and subject are each read from their own field") {
  Parts p;
  p.issuer = name({{utf8(cn_oid, "CA")}, {utf8(o_oid, "Org")}});
  p.subject = name({{utf8(o_oid, "Leaf Org")}, {utf8(cn_oid, "leaf")}});
  const auto cert = describe_certificate(build(p));
  REQUIRE(cert.has_value());
  CHECK(cert->issuer == "O=Org,CN=CA");
  CHECK(cert->subject == "CN=leaf,O=Leaf Org");
}

// ---- serial and validity
// --------------------------------------------------------------------------

TEST_CASE("the serial is upper-case hex without leading zeros, negative ones with a minus") {
  TempDir dir;
  // OpenSSL refuses an INTEGER with superfluous leading octets (not DER);
  // the core reads it, as it reads the rest of such a certificate.
  struct Case {
    std::string encoded, want;
    bool minimal = true;
  };
  const Case cases[] = {
      {"00", "0"},
      {"01", "1"},
      {"0a", "A"},
      {"7fffffffffffffffffff", "7FFFFFFFFFFFFFFFFFFF"},
      {"ff", "-1"},
      {"80", "-80"},
      {"ff01", "-FF"},
      {"ff7f", "-81"},
      {"0080", "80"},
      {"0000ab", "AB", false},
      {"ffff01", "-FF", false},
  };
  for (const auto& [encoded, want, minimal] : cases) {
    CAPTURE(encoded);
    Parts p;
    p.serial = tlv(0x02, unhex(encoded));
    const Bytes der = build(p);
    const auto cert = describe_certificate(der);
    REQUIRE(cert.has_value());
    CHECK(cert->serial == want);
    if (!minimal) continue;
    const std::string path = dir.file("serial.der");
    write_file(path, der);
    CHECK(cert->serial == openssl_view(path, true).serial);
  }
  Parts empty;
  empty.serial = tlv(0x02, {});
  CHECK_FALSE(describe_certificate(build(empty)).has_value());
  Parts octets;
  octets.serial = tlv(0x04, unhex("01"));
  CHECK_FALSE(describe_certificate(build(octets)).has_value());
}

TEST_CASE("UTCTime years 50 to 99 are 19xx, GeneralizedTime years are as written") {
  TempDir dir;
  auto validity = [](Bytes from, Bytes until) {
    Parts p;
    p.not_before = std::move(from);
    p.not_after = std::move(until);
    return build(p);
  };
  const Bytes der = validity(der_utc_time("491231235959Z"), der_utc_time("500101000000Z"));
  auto cert = describe_certificate(der);
  REQUIRE(cert.has_value());
  CHECK(cert->not_before == utc(2049, 12, 31, 23, 59, 59));
  CHECK(cert->not_after == utc(1950, 1, 1));
  write_file(dir.file("utc.der"), der);
  check_against_openssl(der, dir.file("utc.der"), true);

  const Bytes generalized =
      validity(der_generalized_time("20500101000000Z"), der_generalized_time("99991231235959Z"));
  cert = describe_certificate(generalized);
  REQUIRE(cert.has_value());
  CHECK(cert->not_before == utc(2050, 1, 1));
  CHECK(cert->not_after == utc(9999, 12, 31, 23, 59, 59));
  write_file(dir.file("generalized.der"), generalized);
  check_against_openssl(generalized, dir.file("generalized.der"), true);

  CHECK(describe_certificate(validity(der_utc_time("240229120000Z"), der_utc_time("991231235959Z")))
            ->not_before == utc(2024, 2, 29, 12));
}

TEST_CASE("a validity time not in the form RFC 5280 prescribes makes the certificate unreadable") {
  for (const Bytes& bad :
       {der_utc_time("2501010000Z"), der_utc_time("250101000000+0000"),
        der_utc_time("250101000000"), der_utc_time("251301000000Z"), der_utc_time("250230000000Z"),
        der_utc_time("230229000000Z"), der_utc_time("250101240000Z"), der_utc_time("250101006000Z"),
        der_utc_time("250101000060Z"), der_utc_time("2501010a0000Z"),
        der_generalized_time("20500101000000.5Z"), der_generalized_time("205001010000Z"),
        der_generalized_time("500101000000Z"), tlv(0x04, raw("250101000000Z"))}) {
    CAPTURE(std::string(reinterpret_cast<const char*>(bad.data()) + 2, bad.size() - 2));
    Parts p;
    p.not_after = bad;
    CHECK_FALSE(describe_certificate(build(p)).has_value());
  }
}

// ---- what is not a certificate
// ----------------------------------------------------------------------

TEST_CASE("malformed structure gives nullopt") {
  const Bytes good = build(Parts{});
  REQUIRE(describe_certificate(good).has_value());
  CHECK_FALSE(describe_certificate({}).has_value());
  CHECK_FALSE(describe_certificate(cat({good, unhex("00")})).has_value());  // bytes after it
  CHECK_FALSE(describe_certificate(raw("garbage, not DER at all")).has_value());
  CHECK_FALSE(describe_certificate(unhex("3003020101")).has_value());

  CHECK_FALSE(
      describe_certificate(with_subject(name({{}}))).has_value());  // an RDN with no attribute
  CHECK_FALSE(describe_certificate(with_subject(tlv(0x31, {}))).has_value());  // a SET for the Name
  CHECK_FALSE(describe_certificate(with_subject(name({{seq({tlv(0x06, cn_oid)})}})))
                  .has_value());  // no value
  CHECK_FALSE(describe_certificate(with_subject(name({{seq({tlv(0x06, cn_oid), tlv(0x0c, raw("a")),
                                                            tlv(0x0c, raw("b"))})}})))
                  .has_value());  // two values
  CHECK_FALSE(describe_certificate(with_subject(name({{utf8(unhex("8055"), "x")}})))
                  .has_value());  // not minimal
  CHECK_FALSE(describe_certificate(with_subject(name({{utf8(unhex("5584"), "x")}})))
                  .has_value());  // cut short
  CHECK_FALSE(
      describe_certificate(with_subject(name({{utf8({}, "x")}}))).has_value());  // empty OID
  CHECK_FALSE(
      describe_certificate(with_subject(name({{atv(cn_oid, 0x0c, {}), tlv(0x0c, raw("x"))}})))
          .has_value());

  Parts no_validity_end;
  no_validity_end.not_after = {};
  CHECK_FALSE(describe_certificate(build(no_validity_end)).has_value());
  Parts bad_san;  // a subjectAltName whose GeneralNames is not a SEQUENCE
  bad_san.extensions = seq({seq({tlv(0x06, raw("\x55\x1d\x11")), tlv(0x04, tlv(0x04, raw("x")))})});
  CHECK_FALSE(describe_certificate(build(bad_san)).has_value());
}

TEST_CASE("an iPAddress entry that is neither 4 nor 16 octets is left out") {
  Parts p;
  const Bytes names = seq({tlv(0x87, unhex("0a000001ffffff00")), tlv(0x87, unhex("c0000201")),
                           tlv(0x82, raw("x.test"))});
  p.extensions = seq({seq({tlv(0x06, raw("\x55\x1d\x11")), tlv(0x04, names)})});
  const auto cert = describe_certificate(build(p));
  REQUIRE(cert.has_value());
  CHECK(cert->ip_addresses == std::vector<std::string>{"192.0.2.1"});
  CHECK(cert->dns_names == std::vector<std::string>{"x.test"});
}

TEST_CASE(
    "a certificate cut short at any length, or with any byte changed, never crashes the reader") {
  const Bytes der = read_file(certs_dir() + "/server.der");
  REQUIRE(describe_certificate(der).has_value());
  for (std::size_t n = 0; n < der.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(describe_certificate(std::span(der).first(n)).has_value());
  }
  int readable = 0;
  for (std::size_t i = 0; i < der.size(); ++i) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      Bytes changed = der;
      changed[i] ^= static_cast<std::byte>(1u << bit);
      const auto cert = describe_certificate(changed);
      if (!cert) continue;
      ++readable;
      // Whatever it read, it read from these bytes.
      CHECK(cert->der == changed);
      CHECK(cert->sha256_fingerprint == lower_hex(sha256(changed)));
    }
  }
  // Most flips land in the key or the signature, which are only carried.
  CHECK(readable > 0);
}
