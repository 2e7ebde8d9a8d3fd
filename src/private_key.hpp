// Encrypted private keys: which scheme protects a key block, read by the
// core so that every backend is asked the same question (docs/contract.md,
// "Credentials"). The stacks decrypt; a backend declares the schemes it can
// (Capabilities::key_encryptions), and a key under another scheme is
// errc::unsupported at Context::create, naming the scheme.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "x509.hpp"

namespace unitls::detail {

enum class KeyEncryption : unsigned {
  legacy_pem,  // "Proc-Type: 4,ENCRYPTED" with DEK-Info (OpenSSL's traditional form)
  pkcs12,      // PKCS#8 with a PKCS#12 password-based scheme (pbeWithSHAAnd3-KeyTripleDES-CBC, ...)
  pkcs5_pbes1, // PKCS#8 with a PKCS#5 v1 scheme (56-bit DES or RC2 with MD5/SHA-1: obsolete)
  pbes2,       // PKCS#8 with PBES2: PBKDF2, then a block cipher (RFC 8018 6.2)
  scrypt,      // PKCS#8 with PBES2 whose key derivation is scrypt (RFC 7914)
  unknown,     // PKCS#8 with a scheme not named above
};

constexpr unsigned key_encryption_bit(KeyEncryption e) { return 1u << static_cast<unsigned>(e); }

struct EncryptedKey {
  KeyEncryption scheme = KeyEncryption::unknown;
  std::string description;  // for messages: "PBES2 (PBKDF2 hmacWithSHA256, aes-256-cbc)"
  // PBES2 with PBKDF2, and PKCS#12 (views into the block's DER), for a
  // backend whose stack cannot decrypt it by itself but has the primitives.
  std::string prf;     // "hmacWithSHA1", "hmacWithSHA224", ... "hmacWithSHA512"
  std::string cipher;  // "aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "des-ede3-cbc", ...;
                       // PKCS#12: "pbeWithSHAAnd3-KeyTripleDES-CBC" (else "")
  std::span<const std::byte> salt, iv, ciphertext;
  unsigned long iterations = 0;
  std::size_t key_length = 0;  // 0: the cipher's
};

// nullopt: the block is not an encrypted key.
std::optional<EncryptedKey> encrypted_key(const PemBlock& block);

// A password as PKCS#12's key derivation wants it (RFC 7292 B.1): a
// BMPString, big-endian, with two zero bytes at its end, from the UTF-8 the
// core checked, as OpenSSL and GnuTLS read it. (mbedTLS 2.28 and wolfSSL
// 5.5.4 widen each byte instead, so a non-ASCII password that decrypted on
// the other stacks did not on theirs: their engines derive the key from
// this.)
std::vector<unsigned char> pkcs12_password(const std::string& password);

}  // namespace unitls::detail
