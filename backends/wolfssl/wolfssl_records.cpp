// TLS 1.2 record protection with a wolfSSL connection's keys (see
// wolfssl_records.hpp for why the engine needs it). RFC 5246 6.2.3:
//   AEAD (RFC 5288, RFC 6655): explicit nonce || ciphertext || tag; the
//     nonce is the 4-byte implicit salt and the explicit nonce;
//   ChaCha20-Poly1305 (RFC 7905): ciphertext || tag; the nonce is the
//     12-byte IV XOR the sequence number;
//   AES-CBC: IV || ciphertext, with the MAC inside the encryption or, with
//     encrypt-then-MAC (RFC 7366), after it.
// The additional data of every kind is seq_num || type || version || length.
#include "wolfssl_records.hpp"

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include <array>
#include <cstring>

#include "wipe.hpp"

namespace unitls::detail::wolfssl_records {

namespace {

constexpr std::size_t header_size = 5;
constexpr std::size_t explicit_nonce_size = 8;  // AES-GCM and AES-CCM in TLS 1.2
constexpr std::size_t salt_size = 4;
constexpr std::size_t nonce_size = 12;
constexpr std::size_t block = AES_BLOCK_SIZE;
constexpr std::uint8_t tls1_2[2] = {3, 3};

using AdditionalData = std::array<unsigned char, 13>;

struct Keys {
  const unsigned char* key = nullptr;
  const unsigned char* iv = nullptr;
  const unsigned char* mac = nullptr;
  word32 key_size = 0;
  std::uint64_t seq = 0;  // of the writer's next record
};

Keys keys_of(WOLFSSL* ssl, Writer writer) {
  const bool client_writes = (wolfSSL_GetSide(ssl) == WOLFSSL_CLIENT_END) == (writer == Writer::us);
  Keys k;
  k.key = client_writes ? wolfSSL_GetClientWriteKey(ssl) : wolfSSL_GetServerWriteKey(ssl);
  k.iv = client_writes ? wolfSSL_GetClientWriteIV(ssl) : wolfSSL_GetServerWriteIV(ssl);
  k.mac = wolfSSL_GetMacSecret(ssl, writer == Writer::peer ? 1 : 0);
  const int size = wolfSSL_GetKeySize(ssl);
  k.key_size = size > 0 ? static_cast<word32>(size) : 0;
  word64 seq = 0;
  if (writer == Writer::peer)
    (void)wolfSSL_GetPeerSequenceNumber(ssl, &seq);
  else
    (void)wolfSSL_GetSequenceNumber(ssl, &seq);
  k.seq = seq;
  return k;
}

AdditionalData additional_data(std::uint64_t seq, std::uint8_t type, std::size_t length) {
  AdditionalData a{};
  for (std::size_t i = 0; i < 8; ++i) a[i] = static_cast<unsigned char>(seq >> (56 - 8 * i));
  a[8] = type;
  a[9] = tls1_2[0];
  a[10] = tls1_2[1];
  a[11] = static_cast<unsigned char>(length >> 8);
  a[12] = static_cast<unsigned char>(length & 0xff);
  return a;
}

// ChaCha20-Poly1305 (RFC 7905 2): the IV XOR the sequence number, padded
// on the left to 12 bytes.
std::array<unsigned char, nonce_size> chacha_nonce(const Keys& k) {
  std::array<unsigned char, nonce_size> nonce{};
  std::memcpy(nonce.data(), k.iv, nonce.size());
  for (std::size_t i = 0; i < 8; ++i) nonce[4 + i] ^= static_cast<unsigned char>(k.seq >> (56 - 8 * i));
  return nonce;
}

// AES-GCM and AES-CCM: the salt, then the record's explicit nonce.
std::array<unsigned char, nonce_size> salted_nonce(const Keys& k, const unsigned char* explicit_nonce) {
  std::array<unsigned char, nonce_size> nonce{};
  std::memcpy(nonce.data(), k.iv, salt_size);
  std::memcpy(nonce.data() + salt_size, explicit_nonce, explicit_nonce_size);
  return nonce;
}

bool equal_in_constant_time(const unsigned char* a, const unsigned char* b, std::size_t n) {
  unsigned char diff = 0;
  for (std::size_t i = 0; i < n; ++i) diff = static_cast<unsigned char>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

// The HMAC of the additional data and `data` under the writer's MAC key.
bool record_mac(WOLFSSL* ssl, const Keys& k, const AdditionalData& ad, const unsigned char* data, std::size_t n,
                unsigned char* out) {
  Hmac hmac;
  if (wc_HmacInit(&hmac, nullptr, INVALID_DEVID) != 0) return false;
  const int mac_size = wolfSSL_GetHmacSize(ssl);
  const bool ok = k.mac && mac_size > 0 &&
                  wc_HmacSetKey(&hmac, wolfSSL_GetHmacType(ssl), k.mac, static_cast<word32>(mac_size)) == 0 &&
                  wc_HmacUpdate(&hmac, ad.data(), static_cast<word32>(ad.size())) == 0 &&
                  wc_HmacUpdate(&hmac, data, static_cast<word32>(n)) == 0 && wc_HmacFinal(&hmac, out) == 0;
  wc_HmacFree(&hmac);
  secure_wipe(&hmac, sizeof hmac);
  return ok;
}

// An AES key schedule, wiped when done.
class AesKey {
 public:
  AesKey() : ready_(wc_AesInit(&aes_, nullptr, INVALID_DEVID) == 0) {}
  ~AesKey() {
    if (ready_) wc_AesFree(&aes_);
    secure_wipe(&aes_, sizeof aes_);
  }
  AesKey(const AesKey&) = delete;
  AesKey& operator=(const AesKey&) = delete;
  Aes* get() { return ready_ ? &aes_ : nullptr; }

 private:
  Aes aes_{};
  bool ready_;
};

// The padding of a CBC record (RFC 5246 6.2.3.2): up to a whole block, each
// byte the padding's length.
void add_padding(std::vector<unsigned char>& data) {
  const std::size_t pad = block - 1 - data.size() % block;
  data.insert(data.end(), pad + 1, static_cast<unsigned char>(pad));
}


// ---- opening AES-CBC records ------------------------------------------------------

// Encrypt-then-MAC (RFC 7366): the MAC over IV and ciphertext is checked
// first; the padding of a record that authenticates is the peer's own.
bool open_encrypt_then_mac(WOLFSSL* ssl, const Keys& k, std::uint8_t type, const unsigned char* body,
                           std::size_t size, std::vector<unsigned char>& out) {
  const int mac_size = wolfSSL_GetHmacSize(ssl);
  if (mac_size <= 0 || size < 2 * block + static_cast<std::size_t>(mac_size)) return false;
  const std::size_t sealed = size - static_cast<std::size_t>(mac_size);  // IV and ciphertext
  if (sealed % block != 0) return false;
  unsigned char expected[WC_MAX_DIGEST_SIZE];
  if (!record_mac(ssl, k, additional_data(k.seq, type, sealed), body, sealed, expected) ||
      !equal_in_constant_time(expected, body + sealed, static_cast<std::size_t>(mac_size)))
    return false;
  out.resize(sealed - block);
  AesKey aes;
  bool ok = aes.get() && wc_AesSetKey(aes.get(), k.key, k.key_size, body, AES_DECRYPTION) == 0 &&
            wc_AesCbcDecrypt(aes.get(), out.data(), body + block, static_cast<word32>(out.size())) == 0;
  const std::size_t pad = out.back();
  for (std::size_t i = 0; ok && i <= pad; ++i) ok = i < out.size() && out[out.size() - 1 - i] == pad;
  if (ok) out.resize(out.size() - pad - 1);
  return ok;
}

// Masks: all ones when true, else 0 (operands far below 2^63).
std::size_t mask_lt(std::size_t a, std::size_t b) { return std::size_t{0} - ((a - b) >> 63); }
std::size_t mask_le(std::size_t a, std::size_t b) { return mask_lt(a, b + 1); }
std::size_t mask_eq(std::size_t a, std::size_t b) { return ~(mask_lt(a, b) | mask_lt(b, a)); }
std::size_t mask_nonzero(std::size_t a) { return std::size_t{0} - ((std::size_t{0} - a) >> 63); }

// MAC-then-encrypt (RFC 5246 6.2.3.2), in time that depends only on the
// record's length, as the record layer's own check must be (Lucky 13,
// AlFardan and Paterson 2013): a record whose type was changed on the way
// comes here, and a check that took longer for some paddings would tell
// its sender about the plaintext. So every byte that may be padding is
// looked at, the MAC's hash runs as many blocks as it would for the
// longest plaintext the record can hold (the rest on a second HMAC that
// nothing reads), and the MAC is read from every place it may start.
bool open_mac_then_encrypt(WOLFSSL* ssl, const Keys& k, std::uint8_t type, const unsigned char* body,
                           std::size_t size, std::vector<unsigned char>& out) {
  unsigned block_shift = 0;   // log2 of the hash's block
  std::size_t length_field = 0;  // the hash's padding: 0x80 and the message length
  switch (wolfSSL_GetHmacType(ssl)) {
    case WC_SHA:
    case WC_SHA256:
      block_shift = 6;
      length_field = 1 + 8;
      break;
    case WC_SHA384:
      block_shift = 7;
      length_field = 1 + 16;
      break;
    default:
      return false;
  }
  const int mac_size = wolfSSL_GetHmacSize(ssl);
  if (mac_size <= 0) return false;
  const auto mac = static_cast<std::size_t>(mac_size);
  if (size < 2 * block || size % block != 0 || size - block < mac + 1) return false;
  const std::size_t c = size - block;  // the ciphertext after the IV
  std::vector<unsigned char> p(c);
  {
    AesKey aes;
    if (!aes.get() || wc_AesSetKey(aes.get(), k.key, k.key_size, body, AES_DECRYPTION) != 0 ||
        wc_AesCbcDecrypt(aes.get(), p.data(), body + block, static_cast<word32>(c)) != 0)
      return false;
  }
  // The padding: its length is the last byte; it may be up to max_pad.
  const std::size_t longest = c - mac - 1;  // the plaintext with no padding
  const std::size_t max_pad = longest < 255 ? longest : 255;
  const std::size_t pad_byte = p[c - 1];
  std::size_t good = mask_le(pad_byte, max_pad);
  const std::size_t pad = pad_byte & good;
  for (std::size_t i = 0; i <= max_pad; ++i)
    good &= ~(mask_le(i, pad) & mask_nonzero(static_cast<std::size_t>(p[c - 1 - i]) ^ pad));
  const std::size_t length = longest - pad;  // of the plaintext
  // The MAC of the plaintext, then the blocks its hash would have run more
  // for the longest plaintext: 13 bytes of additional data after the key's
  // block, and the padding of the hash.
  const std::size_t hash_block = std::size_t{1} << block_shift;
  auto blocks = [&](std::size_t n) { return (hash_block + 13 + n + length_field + hash_block - 1) >> block_shift; };
  unsigned char expected[WC_MAX_DIGEST_SIZE] = {};
  bool ok = record_mac(ssl, k, additional_data(k.seq, type, length), p.data(), length, expected);
  Hmac rest;
  if (wc_HmacInit(&rest, nullptr, INVALID_DEVID) == 0) {
    static constexpr unsigned char zeros[WC_MAX_BLOCK_SIZE] = {};
    // (wolfCrypt hashes the key's block at the first update: an empty one
    // first, so that it is hashed however many blocks follow, none too.)
    if (wc_HmacSetKey(&rest, wolfSSL_GetHmacType(ssl), k.mac, static_cast<word32>(mac)) == 0 &&
        wc_HmacUpdate(&rest, zeros, 0) == 0)
      for (std::size_t i = blocks(length); i < blocks(longest); ++i)
        (void)wc_HmacUpdate(&rest, zeros, static_cast<word32>(hash_block));
    wc_HmacFree(&rest);
  }
  secure_wipe(&rest, sizeof rest);
  // The MAC in the record, from every place it may start.
  unsigned char received[WC_MAX_DIGEST_SIZE] = {};
  for (std::size_t at = longest - max_pad; at <= longest; ++at) {
    const std::size_t here = mask_eq(at, length);
    for (std::size_t j = 0; j < mac; ++j) received[j] |= static_cast<unsigned char>(p[at + j] & here);
  }
  unsigned char diff = 0;
  for (std::size_t j = 0; j < mac; ++j) diff = static_cast<unsigned char>(diff | (expected[j] ^ received[j]));
  good &= ~mask_nonzero(diff);
  if (!ok || good == 0) {
    secure_wipe(p);
    return false;
  }
  p.resize(length);
  out = std::move(p);
  return true;
}

}  // namespace

bool open_record(WOLFSSL* ssl, std::span<const unsigned char> record, bool etm,
                 std::vector<unsigned char>& plaintext) {
  if (record.size() <= header_size) return false;
  const std::uint8_t type = record[0];
  const unsigned char* body = record.data() + header_size;
  const std::size_t size = record.size() - header_size;
  const Keys k = keys_of(ssl, Writer::peer);
  if (!k.key || !k.iv || k.key_size == 0) return false;
  std::vector<unsigned char> out;
  bool ok = false;
  switch (wolfSSL_GetBulkCipher(ssl)) {
    case wolfssl_aes_gcm:
    case wolfssl_aes_ccm: {
      const int tag_size = wolfSSL_GetAeadMacSize(ssl);
      if (tag_size <= 0 || size <= explicit_nonce_size + static_cast<std::size_t>(tag_size)) return false;
      const auto tag = static_cast<word32>(tag_size);
      const std::size_t n = size - explicit_nonce_size - tag;
      const auto nonce = salted_nonce(k, body);
      const auto ad = additional_data(k.seq, type, n);
      const unsigned char* in = body + explicit_nonce_size;
      out.resize(n);
      AesKey aes;
      if (!aes.get()) return false;
      if (wolfSSL_GetBulkCipher(ssl) == wolfssl_aes_gcm)
        ok = wc_AesGcmSetKey(aes.get(), k.key, k.key_size) == 0 &&
             wc_AesGcmDecrypt(aes.get(), out.data(), in, static_cast<word32>(n), nonce.data(), nonce_size, in + n, tag,
                              ad.data(), static_cast<word32>(ad.size())) == 0;
      else
        ok = wc_AesCcmSetKey(aes.get(), k.key, k.key_size) == 0 &&
             wc_AesCcmDecrypt(aes.get(), out.data(), in, static_cast<word32>(n), nonce.data(), nonce_size, in + n, tag,
                              ad.data(), static_cast<word32>(ad.size())) == 0;
      break;
    }
    case wolfssl_chacha: {
      constexpr std::size_t tag = CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE;
      if (size <= tag) return false;
      const std::size_t n = size - tag;
      const auto nonce = chacha_nonce(k);
      const auto ad = additional_data(k.seq, type, n);
      out.resize(n);
      ok = wc_ChaCha20Poly1305_Decrypt(k.key, nonce.data(), ad.data(), static_cast<word32>(ad.size()), body,
                                       static_cast<word32>(n), body + n, out.data()) == 0;
      break;
    }
    case wolfssl_aes:
      // The mode the connection negotiated, and only that: a record that
      // fails encrypt-then-MAC is not decrypted.
      ok = etm ? open_encrypt_then_mac(ssl, k, type, body, size, out)
               : open_mac_then_encrypt(ssl, k, type, body, size, out);
      break;
    default:
      return false;
  }
  if (!ok || out.empty()) {
    secure_wipe(out);
    return false;
  }
  secure_wipe(plaintext);
  plaintext = std::move(out);
  return true;
}

std::vector<unsigned char> seal_record(WOLFSSL* ssl, Writer writer, std::uint8_t type,
                                       std::span<const unsigned char> plaintext, bool etm, const Random& random) {
  const Keys k = keys_of(ssl, writer);
  if (!k.key || !k.iv || k.key_size == 0) return {};
  const std::size_t n = plaintext.size();
  std::vector<unsigned char> record = {type, tls1_2[0], tls1_2[1], 0, 0};
  bool ok = false;
  switch (wolfSSL_GetBulkCipher(ssl)) {
    case wolfssl_aes_gcm:
    case wolfssl_aes_ccm: {
      const int tag_size = wolfSSL_GetAeadMacSize(ssl);
      if (tag_size <= 0) return {};
      const auto tag = static_cast<word32>(tag_size);
      record.resize(header_size + explicit_nonce_size + n + tag);
      unsigned char* body = record.data() + header_size;
      // A random explicit nonce (the chance that it is one wolfSSL uses is
      // about records / 2^64). wolfSSL counts its own: for GCM on from a
      // random start, for CCM from the IV's zeros, that is, the sequence
      // number, which is why ours is not the sequence number.
      if (!random(body, explicit_nonce_size)) return {};
      const auto nonce = salted_nonce(k, body);
      const auto ad = additional_data(k.seq, type, n);
      unsigned char* out = body + explicit_nonce_size;
      AesKey aes;
      if (!aes.get()) return {};
      if (wolfSSL_GetBulkCipher(ssl) == wolfssl_aes_gcm)
        ok = wc_AesGcmSetKey(aes.get(), k.key, k.key_size) == 0 &&
             wc_AesGcmEncrypt(aes.get(), out, plaintext.data(), static_cast<word32>(n), nonce.data(), nonce_size,
                              out + n, tag, ad.data(), static_cast<word32>(ad.size())) == 0;
      else
        ok = wc_AesCcmSetKey(aes.get(), k.key, k.key_size) == 0 &&
             wc_AesCcmEncrypt(aes.get(), out, plaintext.data(), static_cast<word32>(n), nonce.data(), nonce_size,
                              out + n, tag, ad.data(), static_cast<word32>(ad.size())) == 0;
      break;
    }
    case wolfssl_chacha: {
      constexpr std::size_t tag = CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE;
      record.resize(header_size + n + tag);
      unsigned char* body = record.data() + header_size;
      const auto nonce = chacha_nonce(k);
      const auto ad = additional_data(k.seq, type, n);
      ok = wc_ChaCha20Poly1305_Encrypt(k.key, nonce.data(), ad.data(), static_cast<word32>(ad.size()), plaintext.data(),
                                       static_cast<word32>(n), body, body + n) == 0;
      break;
    }
    case wolfssl_aes: {
      const int mac_size = wolfSSL_GetHmacSize(ssl);
      if (mac_size <= 0) return {};
      std::vector<unsigned char> in(plaintext.begin(), plaintext.end());
      if (!etm) {
        in.resize(n + static_cast<std::size_t>(mac_size));
        if (!record_mac(ssl, k, additional_data(k.seq, type, n), plaintext.data(), n, in.data() + n)) return {};
      }
      add_padding(in);
      record.resize(header_size + block + in.size() + (etm ? static_cast<std::size_t>(mac_size) : 0));
      unsigned char* iv = record.data() + header_size;
      AesKey aes;
      ok = random(iv, block) && aes.get() && wc_AesSetKey(aes.get(), k.key, k.key_size, iv, AES_ENCRYPTION) == 0 &&
           wc_AesCbcEncrypt(aes.get(), iv + block, in.data(), static_cast<word32>(in.size())) == 0;
      if (ok && etm) {
        const std::size_t sealed = block + in.size();
        ok = record_mac(ssl, k, additional_data(k.seq, type, sealed), iv, sealed, iv + sealed);
      }
      secure_wipe(in);
      break;
    }
    default:
      return {};
  }
  if (!ok) return {};
  const std::size_t length = record.size() - header_size;
  record[3] = static_cast<unsigned char>(length >> 8);
  record[4] = static_cast<unsigned char>(length & 0xff);
  return record;
}

std::vector<unsigned char> seal_tls13_record(WOLFSSL* ssl, Writer writer, std::uint8_t type,
                                             std::span<const unsigned char> plaintext) {
  const Keys k = keys_of(ssl, writer);
  const int tag_size = wolfSSL_GetAeadMacSize(ssl);
  if (!k.key || !k.iv || k.key_size == 0 || tag_size <= 0 || wolfSSL_GetIVSize(ssl) != static_cast<int>(nonce_size))
    return {};
  const auto tag = static_cast<word32>(tag_size);
  std::vector<unsigned char> inner(plaintext.begin(), plaintext.end());
  inner.push_back(type);  // TLSInnerPlaintext: the content, its type, no padding
  const std::size_t n = inner.size();
  const std::size_t length = n + tag;
  std::vector<unsigned char> record = {23, tls1_2[0], tls1_2[1], static_cast<unsigned char>(length >> 8),
                                       static_cast<unsigned char>(length & 0xff)};
  record.resize(header_size + length);
  unsigned char* out = record.data() + header_size;
  const auto nonce = chacha_nonce(k);  // the IV XOR the sequence number, as for ChaCha20-Poly1305 in TLS 1.2
  const unsigned char* aad = record.data();  // the record's header
  bool ok = false;
  switch (wolfSSL_GetBulkCipher(ssl)) {
    case wolfssl_aes_gcm:
    case wolfssl_aes_ccm: {
      AesKey aes;
      if (!aes.get()) return {};
      ok = wolfSSL_GetBulkCipher(ssl) == wolfssl_aes_gcm
               ? wc_AesGcmSetKey(aes.get(), k.key, k.key_size) == 0 &&
                     wc_AesGcmEncrypt(aes.get(), out, inner.data(), static_cast<word32>(n), nonce.data(), nonce_size,
                                      out + n, tag, aad, header_size) == 0
               : wc_AesCcmSetKey(aes.get(), k.key, k.key_size) == 0 &&
                     wc_AesCcmEncrypt(aes.get(), out, inner.data(), static_cast<word32>(n), nonce.data(), nonce_size,
                                      out + n, tag, aad, header_size) == 0;
      break;
    }
    case wolfssl_chacha:
      ok = tag == CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE &&
           wc_ChaCha20Poly1305_Encrypt(k.key, nonce.data(), aad, header_size, inner.data(), static_cast<word32>(n), out,
                                       out + n) == 0;
      break;
    default:
      return {};
  }
  secure_wipe(inner);
  if (!ok) return {};
  return record;
}

void count_record(WOLFSSL* ssl, Writer writer) {
  // wolfSSL_SetTlsHmacInner writes a record's MAC header, taking the
  // writer's sequence number and counting it (WriteSEQ).
  unsigned char inner[WOLFSSL_TLS_HMAC_INNER_SZ];
  (void)wolfSSL_SetTlsHmacInner(ssl, inner, 0, 0, writer == Writer::peer ? 1 : 0);
}

}  // namespace unitls::detail::wolfssl_records
