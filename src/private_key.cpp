#include "private_key.hpp"

#include <algorithm>
#include <cstdint>

#include "der.hpp"

namespace unitls::detail {

namespace {

// Object identifiers (the contents octets).
constexpr std::initializer_list<std::uint8_t> oid_pbes2 = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d};
constexpr std::initializer_list<std::uint8_t> oid_pbkdf2 = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c};
constexpr std::initializer_list<std::uint8_t> oid_scrypt = {0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b};
constexpr std::uint8_t pkcs5_prefix[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05};  // PKCS#5 v1 schemes
constexpr std::uint8_t pkcs12_pbe_prefix[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01};

bool starts_with(const Tlv& t, std::span<const std::uint8_t> prefix) {
  if (t.tag != tag_oid || t.value.size() != prefix.size() + 1) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (static_cast<std::uint8_t>(t.value[i]) != prefix[i]) return false;
  return true;
}

std::string prf_name(const Tlv& oid) {
  // 1.2.840.113549.2.{7,8,9,10,11}
  constexpr std::uint8_t prefix[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02};
  if (starts_with(oid, prefix)) {
    switch (static_cast<std::uint8_t>(oid.value.back())) {
      case 7: return "hmacWithSHA1";
      case 8: return "hmacWithSHA224";
      case 9: return "hmacWithSHA256";
      case 10: return "hmacWithSHA384";
      case 11: return "hmacWithSHA512";
    }
  }
  return "an unknown PRF";
}

std::string cipher_name(const Tlv& oid) {
  // 2.16.840.1.101.3.4.1.{2,22,42}; 1.2.840.113549.3.7
  constexpr std::uint8_t aes[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01};
  if (starts_with(oid, aes)) {
    switch (static_cast<std::uint8_t>(oid.value.back())) {
      case 2: return "aes-128-cbc";
      case 22: return "aes-192-cbc";
      case 42: return "aes-256-cbc";
    }
  }
  if (oid_is(oid, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07})) return "des-ede3-cbc";
  return "an unknown cipher";
}

bool small_integer(const Tlv& t, unsigned long& out) {
  if (t.tag != tag_integer || t.value.empty() || t.value.size() > 4 ||
      (static_cast<std::uint8_t>(t.value[0]) & 0x80))
    return false;
  out = 0;
  for (std::byte b : t.value) out = out << 8 | static_cast<std::uint8_t>(b);
  return true;
}

// EncryptedPrivateKeyInfo (RFC 5958 3) with its algorithm read as far as
// this file knows it; unknown where it does not.
EncryptedKey pkcs8(std::span<const std::byte> der) {
  EncryptedKey key;
  key.description = "an unknown PKCS#8 encryption scheme";
  Tlv info{}, algorithm{}, data{}, oid{}, params{};
  Der top(der);
  if (!top.next(info) || info.tag != tag_sequence) return key;
  Der in(info.value);
  if (!in.next(algorithm) || algorithm.tag != tag_sequence || !in.next(data) || data.tag != tag_octet_string)
    return key;
  Der alg(algorithm.value);
  if (!alg.next(oid) || oid.tag != tag_oid) return key;
  if (starts_with(oid, pkcs5_prefix) && !oid_is(oid, oid_pbes2)) {
    key.scheme = KeyEncryption::pkcs5_pbes1;
    key.description = "a PKCS#5 v1 scheme (PBES1)";
    return key;
  }
  if (starts_with(oid, pkcs12_pbe_prefix)) {
    key.scheme = KeyEncryption::pkcs12;
    key.description = "a PKCS#12 password-based scheme";
    // pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
    // (RFC 7292 C); the scheme by the OID's last arc (3: 3-key 3DES).
    Tlv pbe{}, salt{}, count{};
    if (alg.next(pbe) && pbe.tag == tag_sequence) {
      Der p(pbe.value);
      if (p.next(salt) && salt.tag == tag_octet_string && p.next(count) && small_integer(count, key.iterations)) {
        key.salt = salt.value;
        key.ciphertext = data.value;
        if (static_cast<std::uint8_t>(oid.value.back()) == 3) key.cipher = "pbeWithSHAAnd3-KeyTripleDES-CBC";
      }
    }
    return key;
  }
  if (!oid_is(oid, oid_pbes2) || !alg.next(params) || params.tag != tag_sequence) return key;
  // PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }
  Tlv kdf{}, scheme{}, kdf_oid{}, kdf_params{}, cipher_oid{}, iv{};
  Der p(params.value);
  if (!p.next(kdf) || kdf.tag != tag_sequence || !p.next(scheme) || scheme.tag != tag_sequence) return key;
  Der k(kdf.value), c(scheme.value);
  if (!k.next(kdf_oid) || !c.next(cipher_oid)) return key;
  key.cipher = cipher_name(cipher_oid);
  if (oid_is(kdf_oid, oid_scrypt)) {
    key.scheme = KeyEncryption::scrypt;
    key.description = "PBES2 (scrypt, " + key.cipher + ")";
    return key;
  }
  if (!oid_is(kdf_oid, oid_pbkdf2) || !k.next(kdf_params) || kdf_params.tag != tag_sequence) return key;
  // PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER,
  //   keyLength INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
  Der kp(kdf_params.value);
  Tlv salt{}, count{}, length{}, prf{};
  if (!kp.next(salt) || salt.tag != tag_octet_string || !kp.next(count) || !small_integer(count, key.iterations))
    return key;
  if (kp.next_if(tag_integer, length)) {
    unsigned long n = 0;
    if (!small_integer(length, n)) return key;
    key.key_length = n;
  }
  key.prf = "hmacWithSHA1";
  if (kp.next_if(tag_sequence, prf)) {
    Der prf_in(prf.value);
    Tlv prf_oid{};
    if (!prf_in.next(prf_oid)) return key;
    key.prf = prf_name(prf_oid);
  }
  if (!c.next(iv) || iv.tag != tag_octet_string) return key;
  // A cipher or PRF not named above: a scheme of its own (OpenSSL reads
  // Camellia, ARIA, ...; the others do not).
  key.scheme = key.prf.starts_with("hmacWith") && !key.cipher.starts_with("an unknown") ? KeyEncryption::pbes2
                                                                                        : KeyEncryption::unknown;
  key.salt = salt.value;
  key.iv = iv.value;
  key.ciphertext = data.value;
  key.description = "PBES2 (PBKDF2 " + key.prf + ", " + key.cipher + ")";
  return key;
}

}  // namespace

std::optional<EncryptedKey> encrypted_key(const PemBlock& block) {
  if (block.encrypted) {
    EncryptedKey key;
    key.scheme = KeyEncryption::legacy_pem;
    key.description = "the traditional PEM encryption (Proc-Type: 4,ENCRYPTED)";
    return key;
  }
  if (block.label == "ENCRYPTED PRIVATE KEY") return pkcs8(block.der);
  return std::nullopt;
}

// RFC 7292 B.1: UTF-16 (big-endian, surrogate pairs past the BMP) and a
// 16-bit zero at the end.
std::vector<unsigned char> pkcs12_password(const std::string& password) {
  std::vector<unsigned char> out;
  for (std::size_t i = 0; i < password.size();) {
    const auto c = static_cast<unsigned char>(password[i]);
    std::uint32_t cp = 0;
    std::size_t n = 0;
    if (c < 0x80) cp = c, n = 1;
    else if ((c & 0xe0) == 0xc0) cp = c & 0x1f, n = 2;
    else if ((c & 0xf0) == 0xe0) cp = c & 0x0f, n = 3;
    else cp = c & 0x07, n = 4;
    n = std::min(n, password.size() - i);
    for (std::size_t k = 1; k < n; ++k) cp = cp << 6 | (static_cast<unsigned char>(password[i + k]) & 0x3f);
    if (cp >= 0x10000) {  // a surrogate pair
      cp -= 0x10000;
      const std::uint32_t hi = 0xd800 + (cp >> 10), lo = 0xdc00 + (cp & 0x3ff);
      out.insert(out.end(), {static_cast<unsigned char>(hi >> 8), static_cast<unsigned char>(hi),
                             static_cast<unsigned char>(lo >> 8), static_cast<unsigned char>(lo)});
    } else {
      out.insert(out.end(), {static_cast<unsigned char>(cp >> 8), static_cast<unsigned char>(cp)});
    }
    i += n;
  }
  out.insert(out.end(), {0, 0});
  return out;
}

}  // namespace unitls::detail
