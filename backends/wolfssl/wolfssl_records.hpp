// TLS 1.2 records the wolfSSL engine reads or writes for wolfSSL, under the
// connection's own keys.
//
// wolfSSL 5.5.4 cannot refuse a renegotiation with a no_renegotiation
// warning: a second ClientHello to a server is a fatal duplicate message,
// and there is no public call that sends an alert (docs/backend-notes.md,
// "wolfSSL", renegotiation). The engine therefore opens a handshake record
// of an established TLS 1.2 connection itself, and seals the warning
// itself. Debian's build has ATOMIC_USER, whose accessors give the keys,
// the cipher and the sequence numbers; wolfSSL_SetTlsHmacInner moves a
// sequence number on by one, so that wolfSSL counts the record it did not
// see.
//
// What can be opened and sealed: AES-GCM, AES-CCM (16- and 8-byte tags),
// ChaCha20-Poly1305 (RFC 7905), and AES-CBC with its MAC after the
// encryption (RFC 7366) or inside it. The MAC inside the encryption is
// checked in time that depends only on the record's length, as wolfSSL's
// own record layer checks it (Lucky 13): a record whose type was changed on
// the way is opened here, and must tell its sender nothing.
#pragma once

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace unitls::detail::wolfssl_records {

// Whose keys and sequence number: the peer's (the records we read) or ours.
enum class Writer { peer, us };

// Fills its buffer with random bytes (explicit nonces, CBC IVs); false if
// it cannot.
using Random = std::function<bool(unsigned char*, std::size_t)>;

// The peer's record `record` (its 5-byte header and body), as the peer's
// next record, under the connection's suite (etm: a CBC suite negotiated
// encrypt-then-MAC, RFC 7366): its plaintext. False, with nothing changed,
// when it does not authenticate, is empty, or is under a cipher this file
// does not know. Nothing is counted: that is count_record's.
bool open_record(WOLFSSL* ssl, std::span<const unsigned char> record, bool etm, std::vector<unsigned char>& plaintext);

// A record of `type` carrying `plaintext`, as `writer`'s next record (etm:
// a CBC record encrypt-then-MAC). Empty if it cannot be made. Nothing is
// counted.
std::vector<unsigned char> seal_record(WOLFSSL* ssl, Writer writer, std::uint8_t type,
                                       std::span<const unsigned char> plaintext, bool etm, const Random& random);

// TLS 1.3 (RFC 8446 5.2): a record of `type` carrying `plaintext`, as
// `writer`'s next record under the keys in use (an application_data record
// with the type inside). AEAD suites only. Empty if it cannot be made.
std::vector<unsigned char> seal_tls13_record(WOLFSSL* ssl, Writer writer, std::uint8_t type,
                                             std::span<const unsigned char> plaintext);

// `writer`'s sequence number moves on by one: a record was read or written
// that wolfSSL did not process itself.
void count_record(WOLFSSL* ssl, Writer writer);

}  // namespace unitls::detail::wolfssl_records
