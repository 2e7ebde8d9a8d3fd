// The wolfSSL 5 backend: one WOLFSSL_CTX per Config, one WOLFSSL per
// connection. TLS 1.2 and 1.3.
//
// The engine only translates wolfSSL's answers into detail::Result; every
// shutdown rule lives in the core. wolfSSL is the stack whose own shutdown
// state misleads most (docs/backend-notes.md, T15-T20): its flags are wrong
// before the handshake and after a transport EOF, wolfSSL_shutdown resets the
// object when it completes, and writes go through after a fatal error or our
// own close_notify. The engine therefore reads none of that state: the core
// keeps its own, and the engine
//   - keeps the bytes wolfSSL writes in a queue of its own, so that wolfSSL
//     never sees "would block" and never builds a second close_notify on a
//     retried wolfSSL_shutdown (T15);
//   - freezes the connection's facts before wolfSSL_shutdown, which resets
//     the object when the peer's close_notify was already in (T16);
//   - maps errors by wolfSSL_get_error and by the Wire, never by the return
//     value alone (T19: EOF is -397, a received fatal alert -313).
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/des3.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "certificate_message.hpp"
#include "client_hello.hpp"
#include "engine.hpp"
#include "private_key.hpp"
#include "reframer.hpp"
#include "session_cache.hpp"
#include "verify.hpp"
#include "wire.hpp"
#include "wolfssl_records.hpp"

namespace unitls::detail {

namespace {

// ---- native error codes -----------------------------------------------------
//
// Values in the "unitls.wolfssl" category:
//   < 0      a wolfSSL or wolfCrypt error code (error-ssl.h, error-crypt.h);
//   >= 1000  an X509_V_ERR_* verification result, as 1000 + result.
// Transport failures carry their errno in std::system_category instead.
constexpr int verify_base = 1000;

std::string error_text(int code) {
  char buf[WOLFSSL_MAX_ERROR_SZ] = {};
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(code), buf, sizeof buf);
  return buf;
}

class WolfSslCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unitls.wolfssl"; }
  std::string message(int value) const override {
    if (value < 0) return error_text(value);
    if (value >= verify_base)
      return std::string("certificate verify failed: ") +
             wolfSSL_X509_verify_cert_error_string(value - verify_base);
    return "no error";
  }
};

const std::error_category& wolfssl_category() noexcept {
  static const WolfSslCategory instance;
  return instance;
}

std::error_code wolfssl_code(int code) { return {code, wolfssl_category()}; }

// "(wolfSSL: <why>)" for configuration messages.
std::string why(int code) { return error_text(code); }

// wolfCrypt's codes for a certificate it cannot parse (its ASN.1 reader's).
bool is_parse_error(int code) {
  switch (code) {
    case ASN_PARSE_E: case ASN_VERSION_E: case ASN_GETINT_E: case ASN_RSA_KEY_E: case ASN_OBJECT_ID_E:
    case ASN_TAG_NULL_E: case ASN_EXPECT_0_E: case ASN_BITSTR_E: case ASN_UNKNOWN_OID_E: case ASN_DATE_SZ_E:
    case ASN_INPUT_E: case ASN_ECC_KEY_E: case ECC_CURVE_OID_E:
      return true;
    default:
      return false;
  }
}

// An X509_V_ERR_* result (what wolfSSL puts in the store of its verify
// callback, OPENSSL_COMPATIBLE_DEFAULTS) in the core's words (verify.hpp).
unsigned issues_of(int result) {
  switch (result) {
    case 0: return 0;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return issue_untrusted;
    // wolfSSL says the dates this way (GetX509Error: ASN_BEFORE_DATE_E,
    // ASN_AFTER_DATE_E).
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
      return issue_not_yet_valid;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
      return issue_expired;
    case X509_V_ERR_INVALID_PURPOSE: return issue_wrong_purpose;
    // wolfSSL's own codes, which its store carries for some failures.
    case ASN_NO_SIGNER_E:
    case ASN_SELF_SIGNED_E:
    case ASN_PATHLEN_INV_E:
    case ASN_PATHLEN_SIZE_E:
      return issue_untrusted;
    case ASN_BEFORE_DATE_E: return issue_not_yet_valid;
    case ASN_AFTER_DATE_E: return issue_expired;
    case EXTKEYUSE_AUTH_E:
      return issue_wrong_purpose;
    case KEYUSE_SIGNATURE_E:
    case KEYUSE_ENCIPHER_E:
      return issue_wrong_key_usage;
    default:
      return is_parse_error(result) ? issue_unreadable : issue_other;
  }
}

// The named groups by wolfSSL's names (wolfSSL_get_curve_name) and IANA code points.
struct GroupName {
  std::uint16_t code;
  const char* name;
};
constexpr GroupName group_names[] = {
    {23, "SECP256R1"},       {24, "SECP384R1"},       {25, "SECP521R1"},       {29, "X25519"},
    {30, "X448"},            {26, "BRAINPOOLP256R1"}, {27, "BRAINPOOLP384R1"}, {28, "BRAINPOOLP512R1"},
};
std::uint16_t group_of_name(const char* name) {
  if (!name) return 0;
  for (const auto& g : group_names)
    if (std::strcmp(g.name, name) == 0) return g.code;
  return 0;
}

// wolfSSL is initialised once per process (wolfSSL_Init counts; never
// cleaned up, like OpenSSL's own global state).
bool library_ready() {
  static const bool ready = wolfSSL_Init() == WOLFSSL_SUCCESS;
  return ready;
}

// Debian's wolfSSL is built with FP_ECC: each thread that signs or
// verifies with ECDSA fills a cache of its own, which is freed only when
// that thread calls wc_ecc_fp_free (otherwise it leaks at the thread's
// exit, about 3 KiB a point). A thread that runs a handshake or loads a key
// here frees it when it ends.
void thread_uses_ecc() {
#if defined(FP_ECC)
  struct FreeAtExit {
    ~FreeAtExit() { wc_ecc_fp_free(); }
  };
  static thread_local FreeAtExit at_exit;
  (void)at_exit;
#endif
}

class WolfSslEngine;

// A credential as wolfSSL loads it: the chain as PEM, the key as plain DER
// (decrypted once, at Context::create).
struct OwnCredential {
  std::string chain_pem;
  std::vector<unsigned char> key_der;
  OwnCredential() = default;
  OwnCredential(OwnCredential&&) = default;
  OwnCredential& operator=(OwnCredential&&) = default;
  ~OwnCredential() { secure_wipe(key_der); }
};

// ---- the context --------------------------------------------------------------

class WolfSslContext final : public BackendContext,
                             public ContextFacts {
 public:
  WolfSslContext(const Config& config, const Prepared& prepared)
      : ContextFacts(config, prepared),
        alpn_(config.alpn),
        session_cache_(config.role == Role::client && config.session_cache) {}

  ~WolfSslContext() override {
    if (ctx_) wolfSSL_CTX_free(ctx_);
    if (rng_ready_) wc_FreeRng(&rng_);
    detail::secure_wipe(ticket_key_, sizeof ticket_key_);
  }

  WolfSslContext(const WolfSslContext&) = delete;
  WolfSslContext& operator=(const WolfSslContext&) = delete;

  EnginePtr make_engine(Wire& wire, EngineSetup& setup) override;
  std::size_t engine_size() const override;

  bool init(const Config& config, const Prepared& prepared, std::string& message);

 private:
  friend class WolfSslEngine;
  bool select(const Selection& selection, std::string& message);
  bool load_credential(const PreparedCredential& prepared, OwnCredential& own, std::string& message);
  bool load_trust(const Prepared& prepared, std::string& message);

  WOLFSSL_CTX* ctx_ = nullptr;
  std::vector<std::string> alpn_;
  std::string alpn_list_;                  // client: comma-separated (wolfSSL_UseALPN)
  std::vector<unsigned char> alpn_wire_;   // server: RFC 7301 3.1 wire format, preference order
  bool session_cache_;
  bool tls1_3_ = true;                     // TLS 1.3 may be negotiated
  std::vector<unsigned char> cipher_codes_;  // the suites' code points, 2 bytes each, in order
  std::vector<std::uint16_t> groups_;      // code points, preference order
  std::vector<OwnCredential> credentials_;
  AnchorSet anchors_;  // for check_chain_purposes
  // Server: the key of the TLS 1.3 tickets (ChaCha20-Poly1305), made at
  // random for this context; the server name goes into each ticket's
  // additional data (on_ticket).
  unsigned char ticket_key_[CHACHA20_POLY1305_AEAD_KEYSIZE] = {};
  // Server asking for client certificates: the client's leaf of each TLS
  // 1.3 ticket (on_ticket).
  std::shared_ptr<ServerSessionStore> ticket_leaves_;
  unsigned char ticket_name_[WOLFSSL_TICKET_NAME_SZ] = {};
  // The random generator of a server's ticket IVs and of the records the
  // engine seals (wolfssl_records.hpp), made once, when first needed
  // (seeding one per ticket cost about 100 000 instructions a handshake);
  // the context is shared across threads, so the lock is ours.
  bool random(unsigned char* out, std::size_t n) const {
    std::lock_guard lock(rng_mutex_);
    if (!rng_ready_) {
      if (wc_InitRng(&rng_) != 0) return false;
      rng_ready_ = true;
    }
    return wc_RNG_GenerateBlock(&rng_, out, static_cast<word32>(n)) == 0;
  }
  mutable std::mutex rng_mutex_;
  mutable WC_RNG rng_{};
  mutable bool rng_ready_ = false;
};

// ---- the engine -----------------------------------------------------------------

enum class Op { handshake, read, write, close_notify };

// A record wolfSSL must refuse with a fatal alert of its own, encrypted as
// it should be (bad_record_mac): application data no key decrypts. Given to
// wolfSSL in place of a record it would refuse without an alert (Inbound),
// and after a KeyUpdate flood.
constexpr unsigned char poison_record[] = {
    0x17, 0x03, 0x03, 0x00, 0x20, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
    0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5};

// After a KeyUpdate flood: a plaintext handshake record where TLS 1.3
// allows only application_data (RFC 8446 5), which wolfSSL refuses with
// unexpected_message, the alert the limit calls for.
constexpr unsigned char unexpected_record[] = {0x16, 0x03, 0x03, 0x00, 0x01, 0x00};

constexpr std::size_t record_header = 5;
constexpr std::size_t max_plaintext = 16384;  // 2^14 (RFC 8446 5.1)
constexpr std::size_t max_client_hello = 16384 + 2048;
constexpr std::size_t max_ciphertext = 16384 + 2048;  // a TLS 1.2 record's body (RFC 5246 6.2.3)
// Our records not yet on the transport past which a renegotiation request
// waits (gather_handshake_record): two whole records.
constexpr std::size_t max_unsent = 2 * (record_header + max_ciphertext);

// What judged_recv answers when it has put bytes in pending_, or taken a
// record without giving wolfSSL anything: look again. transport_recv loops
// on it, never recursing: a peer's burst of records must not deepen the
// stack.
constexpr int look_again = INT_MIN;

// ---- plaintext handshake messages across records ---------------------------------
//
// wolfSSL 5.5.4 cannot take a handshake message whose header is split
// across records ("parse error on header", measured with one-byte records),
// although RFC 5246 6.2.1 lets a peer split messages at will (and OpenSSL
// and GnuTLS take them so). Until the peer's records are encrypted, the
// engine therefore reads the peer's records through the core's Reframer
// (reframer.hpp), as the mbedTLS backend does.

class WolfSslEngine final : public Engine {
 public:
  WolfSslEngine(WolfSslContext& context, Wire& wire, WOLFSSL* ssl, SessionSink* sessions, KeyLogSink* keylog)
      : context_(&context), wire_(wire), ssl_(ssl), sessions_(sessions), keylog_(keylog) {}

  ~WolfSslEngine() override {
    wolfSSL_free(ssl_);
    secure_wipe(out_);
  }

  WolfSslEngine(const WolfSslEngine&) = delete;
  WolfSslEngine& operator=(const WolfSslEngine&) = delete;

  bool init(const StoredSession* offer);

  Result handshake() override;
  Result read(std::span<std::byte> buf) override;
  Result write(std::span<const std::byte> buf) override;
  Result send_close_notify() override;

  std::string protocol_version() const override {
    if (!handshake_done_) return "";
    if (frozen_) return facts_.version;
    const char* v = wolfSSL_get_version(ssl_);
    return v ? v : "";
  }
  std::string cipher() const override {
    if (!handshake_done_) return "";
    if (frozen_) return facts_.cipher;
    return cipher_now();
  }
  std::uint16_t group() const override {
    if (!handshake_done_) return 0;
    if (frozen_) return facts_.group;
    return group_of_name(wolfSSL_get_curve_name(ssl_));
  }
  std::string alpn_selected() const override {
    if (!handshake_done_) return "";
    if (frozen_) return facts_.alpn;
    return alpn_now();
  }
  bool session_reused() const override {
    if (!handshake_done_) return false;
    if (frozen_) return facts_.reused;
    return wolfSSL_session_reused(ssl_) == 1;
  }
  std::size_t pending() const override {
    const int n = wolfSSL_pending(ssl_);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::span<const unsigned char> server_session_id() const override {
    WOLFSSL_SESSION* session = wolfSSL_get_session(ssl_);
    unsigned len = 0;
    const unsigned char* id = session ? wolfSSL_SESSION_get_id(session, &len) : nullptr;
    if (!id) return {};
    return {id, len};
  }
  std::vector<std::vector<std::byte>> peer_chain() const override {
    if (!handshake_done_) return rejected_chain_;
    if (frozen_) return facts_.chain;
    return chain_now();
  }
  unsigned certificate_issues() const override { return issues_; }
  std::string requested_server_name() const override { return requested_name_; }
  void* native_handle() const override { return ssl_; }
  void send_alert(std::uint8_t description) override;
  void end(bool) override {}

  // ---- callbacks ----
  static int io_recv(WOLFSSL* ssl, char* buf, int size, void* p);
  static int io_send(WOLFSSL* ssl, char* buf, int size, void* p);
  static int verify(int ok, WOLFSSL_X509_STORE_CTX* store);
  static int on_new_session(WOLFSSL* ssl, WOLFSSL_SESSION* session);
  static WOLFSSL_SESSION* find_session(WOLFSSL* ssl, const unsigned char* id, int len, int* copy);
  static void forget_session(WOLFSSL_CTX* ctx, WOLFSSL_SESSION* session);
  static int on_ticket(WOLFSSL* ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                       unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
                       unsigned char* ticket, int in_len, int* out_len, void* arg);
  static WolfSslEngine* of(WOLFSSL* ssl) { return static_cast<WolfSslEngine*>(wolfSSL_GetIOReadCtx(ssl)); }

 private:
  struct Facts {
    std::string version, cipher, alpn;
    std::uint16_t group = 0;
    bool reused = false;
    std::vector<std::vector<std::byte>> chain;
  };

  std::string cipher_now() const {
    const int suite = wolfSSL_get_current_cipher_suite(ssl_);
    const SuiteInfo* info = suite > 0 ? find_suite(static_cast<std::uint16_t>(suite)) : nullptr;
    if (info) return std::string(info->name);
    const char* name = wolfSSL_get_cipher_name_iana_from_suite(static_cast<unsigned char>(suite >> 8),
                                                                 static_cast<unsigned char>(suite));
    return name ? name : "";
  }
  std::string alpn_now() const {
    // No protocols configured, none negotiated: not asked (wolfSSL logs
    // the "not found" into its error queue, about 1 500 instructions).
    if (context_->alpn_.empty()) return "";
    char* name = nullptr;
    unsigned short size = 0;
    if (wolfSSL_ALPN_GetProtocol(ssl_, &name, &size) != WOLFSSL_SUCCESS || !name) return "";
    return std::string(name, size);
  }
  std::vector<std::vector<std::byte>> chain_now() const {
    std::vector<std::vector<std::byte>> chain;
    WOLFSSL_X509_CHAIN* peer = wolfSSL_get_peer_chain(ssl_);
    const int count = peer ? wolfSSL_get_chain_count(peer) : 0;
    for (int i = 0; i < count; ++i) {
      const unsigned char* der = wolfSSL_get_chain_cert(peer, i);
      const int len = wolfSSL_get_chain_length(peer, i);
      if (!der || len <= 0) break;
      const auto* p = reinterpret_cast<const std::byte*>(der);
      chain.emplace_back(p, p + len);
    }
    if (chain.empty() && !resumed_leaf_.empty()) {
      // A server resumed with a TLS 1.3 ticket (on_ticket).
      chain.push_back(resumed_leaf_);
    } else if (chain.empty()) {
      // A resumed session that kept no chain: its leaf, as wolfSSL keeps it.
      if (WOLFSSL_X509* leaf = wolfSSL_get_peer_certificate(ssl_)) {
        int len = 0;
        const unsigned char* der = wolfSSL_X509_get_der(leaf, &len);
        if (der && len > 0) {
          const auto* p = reinterpret_cast<const std::byte*>(der);
          chain.emplace_back(p, p + len);
        }
        wolfSSL_X509_free(leaf);
      }
    }
    return chain;
  }
  // Before wolfSSL_shutdown (T16): what the connection was.
  void freeze() {
    if (frozen_ || !handshake_done_) return;
    facts_.version = protocol_version();
    facts_.cipher = cipher_now();
    facts_.group = group();
    facts_.alpn = alpn_now();
    facts_.reused = wolfSSL_session_reused(ssl_) == 1;
    facts_.chain = chain_now();
    frozen_ = true;
  }

  void handshake_completed();
  void log_tls12_keys();
  Result read_client_hello();
  void choose_group(const ClientHelloScan& hello);
  Result translate(int ret, Op op);
  // The queue of bytes wolfSSL wrote that the transport has not taken:
  // true when it is empty. On a transport failure, *failed.
  bool flush(Result* failed);
  int transport_send(const unsigned char* buf, std::size_t len);
  int transport_recv(unsigned char* buf, std::size_t len);
  // Until the handshake is done: through the Reframer.
  int reframed_recv(unsigned char* buf, std::size_t len);
  // The peer's bytes before any judging: what read_client_hello read
  // ahead, then the transport. > 0 bytes, else a WOLFSSL_CBIO_ERR_*.
  int raw_recv(unsigned char* buf, std::size_t len);
  // After the handshake: each record header judged as it passes (judged_recv).
  int judged_recv(unsigned char* buf, std::size_t len);
  // A record header wolfSSL would refuse without an alert: the wolfSSL
  // error code it would fail with, 0 when the record is one it judges.
  int refused_header(const unsigned char* h) const;
  // TLS 1.2, established: a handshake record, read whole here
  // (gather_handshake_record) and never given to wolfSSL as it came
  // (read_handshake_record); a renegotiation is refused with a warning.
  // (A record of another version, or longer than TLS 1.2 allows, goes to
  // wolfSSL, which refuses it.)
  bool renegotiation_record(const unsigned char* h) const {
    return refuses_renegotiation_ && h[0] == 22 && h[1] == 3 && h[2] == 3 &&
           (static_cast<std::size_t>(h[3]) << 8 | h[4]) <= max_ciphertext;
  }
  // A record of another type between the pieces of a request.
  bool interrupts_request(const unsigned char* h) const { return !requests_.empty() && h[0] != 22; }
  int gather_handshake_record();
  void read_handshake_record(std::vector<unsigned char>& record);
  void send_no_renegotiation();
  // wolfSSL is given, in place of the peer's record, a handshake message
  // it fails with its fatal unexpected_message: a second ClientHello to a
  // server, a HelloVerifyRequest (TLS has none) to a client.
  void give_unexpected_message();
  // Bytes read from the transport that wolfSSL did not take, read again
  // first (raw_recv).
  void unread(const unsigned char* p, std::size_t n) {
    ahead_.erase(ahead_.begin(), ahead_.begin() + static_cast<std::ptrdiff_t>(ahead_pos_));
    ahead_pos_ = 0;
    ahead_.insert(ahead_.begin(), p, p + n);
  }
  void poison(std::error_code code, const unsigned char* record = poison_record, std::size_t size = sizeof poison_record) {
    poisoned_ = code;
    pending_.assign(record, record + size);
    pending_pos_ = 0;
  }
  // TLS 1.3 KeyUpdates (KeyUpdateLimit), counted by the peer's record
  // sequence number: wolfSSL starts it again at 0 with each KeyUpdate (RFC
  // 8446 5.3), so a record that did not add one to it was a KeyUpdate.
  // False once the peer passed the limit.
  bool key_update_seen() {
    word64 seq = 0;
    (void)wolfSSL_GetPeerSequenceNumber(ssl_, &seq);  // (answers 1 for 0)
    // Asked again at the same place (the transport had nothing): no record
    // was processed since.
    const bool updated = record_passed_ && seq != next_seq_;
    record_passed_ = false;
    next_seq_ = seq + 1;
    return !updated || key_updates_.received(std::chrono::steady_clock::now());
  }

  WolfSslContext* context_;
  Wire& wire_;
  WOLFSSL* ssl_;
  SessionSink* sessions_;
  KeyLogSink* keylog_;
  bool handshake_done_ = false;
  bool frozen_ = false;
  bool close_notify_made_ = false;
  bool hello_read_ = false;           // server: the ClientHello was scanned (read_client_hello)
  bool write_pending_ = false;        // write: wolfSSL took pending_count_ bytes, the queue holds them
  std::size_t pending_count_ = 0;
  bool send_failed_ = false;          // io_send saw the transport fail in this call
  bool sent_in_call_ = false;         // wolfSSL wrote during this call (its alert, when it failed)
  bool recv_failed_ = false;          // io_recv likewise
  std::vector<unsigned char> out_;    // written by wolfSSL, not yet taken by the transport
  std::size_t out_pos_ = 0;
  std::vector<unsigned char> ahead_;  // server: the ClientHello read ahead, not yet given to wolfSSL
  std::size_t ahead_pos_ = 0;
  std::string requested_name_;        // server: this handshake's SNI host_name
  unsigned issues_ = 0;               // verify: why a certificate was rejected
  bool rejected_ = false;             // verify: our callback rejected a certificate
  bool curve_refused_ = false;        // verify: the server's key is on a curve we did not offer
  std::vector<std::vector<std::byte>> rejected_chain_;
  std::vector<std::byte> resumed_leaf_;  // server, TLS 1.3 resumption: the client's leaf (on_ticket)
  Facts facts_;
  // TLS 1.3 KeyUpdates (KeyUpdateLimit): counted by the peer's record
  // sequence number going back to 0 (a KeyUpdate starts new keys).
  KeyUpdateLimit key_updates_;
  // The inbound path (transport_recv): plaintext handshake messages
  // reframed, then each record header judged once the handshake is done.
  Reframer reframer_{max_plaintext};
  std::vector<unsigned char> pending_;  // judged (or the poison), for wolfSSL before anything else
  std::size_t pending_pos_ = 0;
  unsigned char header_[record_header] = {};  // a record header being gathered
  std::size_t header_have_ = 0;
  std::size_t body_left_ = 0;           // of the record whose header passed
  std::error_code poisoned_;            // the fault of the record the poison stands for (none: no poison)
  bool count_key_updates_ = false;      // TLS 1.3, established: key_update_seen at each record
  bool refuses_renegotiation_ = false;  // TLS 1.2, established: renegotiation_record
  std::vector<unsigned char> held_;     // a handshake record being gathered whole
  std::size_t held_missing_ = 0;        // bytes of it still to read
  std::vector<unsigned char> requests_;  // the pieces of a renegotiation request read so far
  bool etm_ = false;                    // a CBC suite, encrypt-then-MAC negotiated (RFC 7366)
  bool etm_offered_ = false;            // server: the ClientHello offered encrypt-then-MAC
  bool waiting_to_write_ = false;       // read: a request waits for the queue to drain (max_unsent)
  bool seal_alert_ = false;             // send_alert: TLS 1.3, the handshake's keys in use
  bool record_passed_ = false;          // a record header went to wolfSSL since key_update_seen
  word64 next_seq_ = 0;
  friend class WolfSslContext;
};

// ---- the transport ------------------------------------------------------------
//
// Every byte goes through the core's Wire. What wolfSSL writes is taken at
// once (into out_ when the transport takes less): wolfSSL never sees "would
// block" on a write, so it never keeps half a record of its own, and a
// retried wolfSSL_shutdown never builds a second close_notify (T15). The
// engine reports want_write until out_ is on the transport.

int WolfSslEngine::io_send(WOLFSSL*, char* buf, int size, void* p) {
  auto* self = static_cast<WolfSslEngine*>(p);
  if (size <= 0) return 0;
  return self->transport_send(reinterpret_cast<const unsigned char*>(buf), static_cast<std::size_t>(size));
}

int WolfSslEngine::transport_send(const unsigned char* buf, std::size_t len) {
  sent_in_call_ = true;
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
    const std::ptrdiff_t n = wire_.write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(buf), len));
    if (n > 0) {
      const auto taken = static_cast<std::size_t>(n);
      if (taken < len) out_.insert(out_.end(), buf + taken, buf + len);
      return static_cast<int>(len);
    }
    if (wire_.stop() == Wire::Stop::failed) {
      send_failed_ = true;
      return WOLFSSL_CBIO_ERR_CONN_RST;
    }
  }
  out_.insert(out_.end(), buf, buf + len);
  return static_cast<int>(len);
}

bool WolfSslEngine::flush(Result* failed) {
  while (out_pos_ < out_.size()) {
    const std::ptrdiff_t n = wire_.write(
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(out_.data() + out_pos_), out_.size() - out_pos_));
    if (n > 0) {
      out_pos_ += static_cast<std::size_t>(n);
      continue;
    }
    if (wire_.stop() == Wire::Stop::failed && failed)
      *failed = Result::fail(errc::transport_error, wire_.io_error() ? wire_.io_error() : wolfssl_code(SOCKET_ERROR_E));
    return false;
  }
  if (!out_.empty()) {
    out_.clear();
    out_pos_ = 0;
  }
  return true;
}

int WolfSslEngine::io_recv(WOLFSSL*, char* buf, int size, void* p) {
  auto* self = static_cast<WolfSslEngine*>(p);
  if (size <= 0) return 0;
  return self->transport_recv(reinterpret_cast<unsigned char*>(buf), static_cast<std::size_t>(size));
}

int WolfSslEngine::transport_recv(unsigned char* buf, std::size_t len) {
  len = std::min<std::size_t>(len, INT_MAX);
  for (;;) {
    if (pending_pos_ < pending_.size()) {
      const std::size_t n = std::min(len, pending_.size() - pending_pos_);
      std::memcpy(buf, pending_.data() + pending_pos_, n);
      pending_pos_ += n;
      if (pending_pos_ == pending_.size()) {
        pending_.clear();
        pending_pos_ = 0;
      }
      return static_cast<int>(n);
    }
    // After the poison nothing more is read: wolfSSL has failed on it.
    if (poisoned_) return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    const int n = handshake_done_ && reframer_.released() ? judged_recv(buf, len) : reframed_recv(buf, len);
    if (n != look_again) return n;
  }
}

int WolfSslEngine::reframed_recv(unsigned char* buf, std::size_t len) {
  for (;;) {
    if (reframer_.has_output()) return static_cast<int>(reframer_.take(buf, len));
    if (!reframer_.active()) {
      if (!reframer_.released()) reframer_.release();
      return handshake_done_ ? judged_recv(buf, len) : raw_recv(buf, len);
    }
    const std::span<unsigned char> room = reframer_.room();
    const int n = raw_recv(room.data(), room.size());
    reframer_.filled(static_cast<std::size_t>(std::max(n, 0)));
    if (n <= 0) return n;
  }
}

int WolfSslEngine::raw_recv(unsigned char* buf, std::size_t len) {
  if (ahead_pos_ < ahead_.size()) [[unlikely]] {
    const std::size_t n = std::min(len, ahead_.size() - ahead_pos_);
    std::memcpy(buf, ahead_.data() + ahead_pos_, n);
    ahead_pos_ += n;
    if (ahead_pos_ == ahead_.size()) {
      std::vector<unsigned char>().swap(ahead_);
      ahead_pos_ = 0;
    }
    return static_cast<int>(n);
  }
  const std::ptrdiff_t n = wire_.read(std::span<std::byte>(reinterpret_cast<std::byte*>(buf), len));
  if (n > 0) return static_cast<int>(n);
  // wolfSSL reads 0 as "nothing yet" and asks again for ever: EOF is
  // CONN_CLOSE, which it answers -397 or -308 (T19); the Wire says which.
  if (n == 0) return WOLFSSL_CBIO_ERR_CONN_CLOSE;
  switch (wire_.stop()) {
    case Wire::Stop::would_block_read:
    case Wire::Stop::would_block_write:
      return WOLFSSL_CBIO_ERR_WANT_READ;
    default:
      recv_failed_ = true;
      return WOLFSSL_CBIO_ERR_CONN_RST;
  }
}

// wolfSSL 5.5.4 fails on some records without sending an alert (measured:
// an unknown content type, -311; an empty handshake or alert record, -341),
// and its peer would wait. Every backend answers a record it refuses with a
// fatal alert (docs/contract.md, "Hostile peers"): such a record is given
// to wolfSSL as the poison, which it refuses with bad_record_mac, encrypted;
// the failure is reported with the code of the real fault.
int WolfSslEngine::refused_header(const unsigned char* h) const {
  const unsigned char type = h[0];
  const std::size_t length = static_cast<std::size_t>(h[3]) << 8 | h[4];
  if (type < 20 || type > 23) return UNKNOWN_RECORD_TYPE;
  if (length == 0 && (type == 21 || type == 22)) return LENGTH_ERROR;
  return 0;
}

// The records of an established connection, their headers judged as they
// pass (refused_header). Bytes go straight into wolfSSL's buffer; only a
// header split across transport reads is gathered first.
int WolfSslEngine::judged_recv(unsigned char* buf, std::size_t len) {
  // wolfSSL reads a record's header only once the record before is
  // processed: the place to see whether that one was a KeyUpdate.
  if (header_have_ == 0 && body_left_ == 0 && count_key_updates_ && !key_update_seen()) {
    poison(make_error_code(RecordFault::key_update_flood), unexpected_record, sizeof unexpected_record);
    return look_again;
  }
  if (!held_.empty()) return gather_handshake_record();
  while (header_have_ > 0) {
    const int n = raw_recv(header_ + header_have_, record_header - header_have_);
    if (n <= 0) return n;
    header_have_ += static_cast<std::size_t>(n);
    if (header_have_ < record_header) continue;
    header_have_ = 0;
    if (const int code = refused_header(header_)) {
      poison(wolfssl_code(code));
    } else if (renegotiation_record(header_)) {
      held_.assign(header_, header_ + record_header);
      held_missing_ = static_cast<std::size_t>(header_[3]) << 8 | header_[4];
      return gather_handshake_record();
    } else if (interrupts_request(header_)) {
      unread(header_, record_header);
      give_unexpected_message();
    } else {
      body_left_ = static_cast<std::size_t>(header_[3]) << 8 | header_[4];
      record_passed_ = true;
      pending_.assign(header_, header_ + record_header);
      pending_pos_ = 0;
    }
    return look_again;
  }
  const int got = raw_recv(buf, len);
  if (got <= 0) return got;
  const auto n = static_cast<std::size_t>(got);
  std::size_t i = 0;
  while (i < n) {
    if (body_left_ > 0) {
      const std::size_t skip = std::min(body_left_, n - i);
      body_left_ -= skip;
      i += skip;
      continue;
    }
    if (n - i < record_header) {
      // A header split across reads: its start waits in header_ (wolfSSL
      // gets the bytes before it now).
      header_have_ = n - i;
      std::memcpy(header_, buf + i, header_have_);
      if (i > 0) return static_cast<int>(i);
      return look_again;
    }
    if (const int code = refused_header(buf + i)) {
      poison(wolfssl_code(code));
      if (i > 0) return static_cast<int>(i);
      return look_again;
    }
    if (renegotiation_record(buf + i) || interrupts_request(buf + i)) {
      // The bytes from this record on are read again: by
      // gather_handshake_record, or by nobody after wolfSSL failed.
      if (renegotiation_record(buf + i)) {
        const std::size_t whole = record_header + (static_cast<std::size_t>(buf[i + 3]) << 8 | buf[i + 4]);
        const std::size_t have = std::min(whole, n - i);
        held_.assign(buf + i, buf + i + have);
        held_missing_ = whole - have;
        unread(buf + i + have, n - i - have);
      } else {
        unread(buf + i, n - i);
        give_unexpected_message();
      }
      if (i > 0) return static_cast<int>(i);
      return look_again;
    }
    body_left_ = static_cast<std::size_t>(buf[i + 3]) << 8 | buf[i + 4];
    record_passed_ = true;
    i += record_header;
  }
  return got;
}

// ---- renegotiation ----------------------------------------------------------------
//
// On an established TLS 1.2 connection a server may ask for a renegotiation
// with a HelloRequest, a client with a second ClientHello (RFC 5246 7.4.1.1,
// RFC 5746). Every backend refuses each with a no_renegotiation warning and
// the connection goes on (docs/contract.md, "Hostile peers"). wolfSSL 5.5.4
// fails a second ClientHello as a duplicate message (-395) with a fatal
// alert, refuses only the first HelloRequest of a connection (the second is
// -395 too, without an alert), and has no call that sends a warning. So the
// engine keeps every handshake record of an established TLS 1.2 connection
// from wolfSSL: it opens the record under the peer's keys, counts it for
// wolfSSL, and seals each warning under ours (wolfssl_records.hpp).

int WolfSslEngine::gather_handshake_record() {
  while (held_missing_ > 0) {
    const std::size_t have = held_.size();
    held_.resize(have + held_missing_);
    const int n = raw_recv(held_.data() + have, held_missing_);
    held_.resize(have + static_cast<std::size_t>(std::max(n, 0)));
    if (n <= 0) return n;
    held_missing_ -= static_cast<std::size_t>(n);
  }
  // A peer that sends requests and reads nothing must not make the queue
  // of our warnings grow: past max_unsent the record waits until the
  // transport has taken some (read() answers want_write).
  if (!close_notify_made_ && out_.size() - out_pos_ > max_unsent) {
    (void)flush(nullptr);
    if (out_.size() - out_pos_ > max_unsent) {
      waiting_to_write_ = true;
      return WOLFSSL_CBIO_ERR_WANT_READ;
    }
  }
  std::vector<unsigned char> record;
  record.swap(held_);
  read_handshake_record(record);
  return look_again;
}

void WolfSslEngine::read_handshake_record(std::vector<unsigned char>& record) {
  std::vector<unsigned char> plaintext;
  if (!wolfssl_records::open_record(ssl_, record, etm_, plaintext)) {
    // It does not authenticate (or is under a cipher wolfssl_records does
    // not know): wolfSSL judges it as it came.
    pending_ = std::move(record);
    pending_pos_ = 0;
    return;
  }
  requests_.insert(requests_.end(), plaintext.begin(), plaintext.end());
  secure_wipe(plaintext);
  // The whole requests (RFC 5246 7.4: a type, a 24-bit length): to a
  // server ClientHellos, no longer than a first one may be
  // (read_client_hello); to a client HelloRequests, which are empty.
  const bool server = context_->role_ == Role::server;
  const unsigned char request = server ? 1 : 0;
  const std::size_t longest = server ? max_client_hello : 0;
  std::size_t whole = 0, count = 0;
  bool fault = false;
  while (!fault && requests_.size() - whole >= 4) {
    const std::size_t len = static_cast<std::size_t>(requests_[whole + 1]) << 16 |
                            static_cast<std::size_t>(requests_[whole + 2]) << 8 | requests_[whole + 3];
    fault = requests_[whole] != request || len > longest;
    if (fault || requests_.size() - whole - 4 < len) break;
    whole += 4 + len;
    ++count;
  }
  // One warning for the record, however many requests it ends (OpenSSL
  // answers a record so, and a record of many tiny requests must not
  // multiply what we send).
  if (count > 0) send_no_renegotiation();
  if (fault) {
    // Another handshake message: unexpected_message, from wolfSSL, which
    // gets a message it refuses so in place of this record.
    requests_.clear();
    give_unexpected_message();
    return;
  }
  requests_.erase(requests_.begin(), requests_.begin() + static_cast<std::ptrdiff_t>(whole));
  wolfssl_records::count_record(ssl_, wolfssl_records::Writer::peer);
}

void WolfSslEngine::send_no_renegotiation() {
  if (close_notify_made_) return;  // nothing goes out after our close_notify
  static constexpr unsigned char warning[] = {1, 100};  // warning, no_renegotiation (RFC 5246 7.2)
  const std::vector<unsigned char> record = wolfssl_records::seal_record(
      ssl_, wolfssl_records::Writer::us, 21, warning, etm_,
      [this](unsigned char* out, std::size_t n) { return context_->random(out, n); });
  if (record.empty()) return;
  (void)transport_send(record.data(), record.size());
  wolfssl_records::count_record(ssl_, wolfssl_records::Writer::us);
}

void WolfSslEngine::give_unexpected_message() {
  static constexpr unsigned char client_hello[] = {1, 0, 0, 0};
  static constexpr unsigned char hello_verify_request[] = {3, 0, 0, 0};
  std::vector<unsigned char> record = wolfssl_records::seal_record(
      ssl_, wolfssl_records::Writer::peer, 22,
      context_->role_ == Role::server ? std::span<const unsigned char>(client_hello)
                                      : std::span<const unsigned char>(hello_verify_request),
      etm_,
      [this](unsigned char* out, std::size_t n) { return context_->random(out, n); });
  if (record.empty()) {
    poison(wolfssl_code(DUPLICATE_MSG_E));
    return;
  }
  pending_ = std::move(record);
  pending_pos_ = 0;
}

// ---- steps ------------------------------------------------------------------------

bool WolfSslEngine::init(const StoredSession* offer) {
  wolfSSL_SetIOReadCtx(ssl_, this);
  wolfSSL_SetIOWriteCtx(ssl_, this);
  const WolfSslContext& c = *context_;
  if (c.role_ == Role::server) return true;
  // The name is checked by verify (the core's rule), not by wolfSSL: SNI
  // only, no wolfSSL_check_domain_name.
  if (!c.sni_.empty() &&
      wolfSSL_UseSNI(ssl_, WOLFSSL_SNI_HOST_NAME, c.sni_.data(), static_cast<unsigned short>(c.sni_.size())) !=
          WOLFSSL_SUCCESS)
    return false;
  if (!c.alpn_list_.empty() &&
      wolfSSL_UseALPN(ssl_, const_cast<char*>(c.alpn_list_.data()), static_cast<unsigned>(c.alpn_list_.size()),
                      WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
    return false;
  // wolfSSL_set_session copies the session: the cached one is only read.
  if (offer && offer->native)
    (void)wolfSSL_set_session(ssl_, static_cast<WOLFSSL_SESSION*>(offer->native.get()));
  return true;
}

// A server gathers the ClientHello before wolfSSL sees it (the core's
// scan_client_hello), as the mbedTLS backend does: the server name is the
// core's to judge (docs/contract.md, "Server names"), and the credential
// it picks must be on the connection before wolfSSL answers the hello
// (wolfSSL 5.5 has no ClientHello callback). The bytes go to wolfSSL
// unchanged.
Result WolfSslEngine::read_client_hello() {
  const WolfSslContext& c = *context_;
  for (;;) {
    const ClientHelloScan scan = scan_client_hello(ahead_, max_client_hello);
    if (scan.state != ClientHelloScan::State::need_more) {
      hello_read_ = true;
      if (const HelloFault fault = scan.fault; fault != HelloFault::none)
        return Result::answer(errc::protocol_error, make_error_code(fault), hello_alert(fault));
      requested_name_ = scan.server_name;
      choose_group(scan);
      if (const std::size_t i = c.credential_for(requested_name_); i > 0) {
        const OwnCredential& chosen = c.credentials_[i];
        if (wolfSSL_use_certificate_chain_buffer(ssl_, reinterpret_cast<const unsigned char*>(chosen.chain_pem.data()),
                                                 static_cast<long>(chosen.chain_pem.size())) != WOLFSSL_SUCCESS ||
            wolfSSL_use_PrivateKey_buffer(ssl_, chosen.key_der.data(), static_cast<long>(chosen.key_der.size()),
                                          WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
          return Result::fail(errc::protocol_error, wolfssl_code(MEMORY_E));
      }
      return Result::ok();
    }
    unsigned char buf[4096];
    const std::ptrdiff_t n = wire_.read(std::span<std::byte>(reinterpret_cast<std::byte*>(buf), sizeof buf));
    if (n > 0) {
      ahead_.insert(ahead_.end(), buf, buf + n);
      continue;
    }
    if (n == 0) return Result::of(Status::eof);
    switch (wire_.stop()) {
      case Wire::Stop::would_block_read:
      case Wire::Stop::would_block_write:
        return Result::of(Status::want_read);
      default:
        return Result::fail(errc::transport_error, wire_.io_error() ? wire_.io_error() : wolfssl_code(SOCKET_ERROR_E));
    }
  }
}

// The server's preference decides the group, as on every backend
// (docs/contract.md, "Cipher suites and groups"): wolfSSL 5.5.4 takes the
// first of the client's groups its own key size allows in TLS 1.2, whatever
// its own list, and the client's key share in TLS 1.3 when it can. So this
// connection's groups become the one the server prefers among the client's
// supported_groups (for TLS 1.3, among those TLS 1.3 has: wolfSSL then
// takes that share or asks for it with a HelloRetryRequest). The brainpool
// curves wolfSSL_set1_curves_list cannot name are chosen by their size.
void WolfSslEngine::choose_group(const ClientHelloScan& hello) {
  const WolfSslContext& c = *context_;
  // (wolfSSL takes encrypt-then-MAC whenever a client offers it: with a
  // CBC suite, the connection's records are so; handshake_completed.)
  etm_offered_ = hello.offers_encrypt_then_mac;
  if (!hello.has_groups) return;
  const bool tls13 = hello.offers_tls1_3 && c.tls1_3_;
  const std::uint16_t code = prefer_group(c.groups_, hello.groups, tls13);
  if (code == 0) return;
  // TLS 1.2: wolfSSL takes the first of the client's groups whose key has
  // its ephemeral size, 32 bytes (TLSX_ValidateSupportedCurves): when that
  // is the one chosen, nothing needs narrowing (which costs about 4 000
  // instructions a handshake).
  if (!tls13 && (code == 23 || code == 29) && hello.groups.size() >= 2 &&
      static_cast<std::uint16_t>(hello.groups[0] << 8 | hello.groups[1]) == code)
    return;
  const char* name = code == 23   ? "P-256"
                     : code == 24 ? "P-384"
                     : code == 25 ? "P-521"
                     : code == 29 ? "X25519"
                     : code == 30 ? "X448"
                                  : nullptr;
  if (name) {
    if (c.tls1_3_) {
      (void)wolfSSL_set1_curves_list(ssl_, name);
    } else if (wolfSSL_SetVersion(ssl_, WOLFSSL_TLSV1_3) == WOLFSSL_SUCCESS) {
      // A TLS 1.2-only object takes no group list: one that is made
      // TLS 1.3 for the call, then TLS 1.2 again with the suites (which
      // wolfSSL_SetVersion resets).
      (void)wolfSSL_set1_curves_list(ssl_, name);
      (void)wolfSSL_SetVersion(ssl_, WOLFSSL_TLSV1_2);
      // (By code points: parsing the names cost about 12 000
      // instructions a handshake.)
      (void)wolfSSL_set_cipher_list_bytes(ssl_, c.cipher_codes_.data(), static_cast<int>(c.cipher_codes_.size()));
    }
  } else {
    const word16 size = code == 26 ? 32 : code == 27 ? 48 : code == 28 ? 64 : 0;
    if (size) (void)wolfSSL_SetTmpEC_DHE_Sz(ssl_, size);
  }
}

Result WolfSslEngine::handshake() {
  send_failed_ = recv_failed_ = sent_in_call_ = false;
  thread_uses_ecc();
  Result failed = Result::ok();
  if (!flush(&failed)) return failed.status == Status::failed ? failed : Result::of(Status::want_write);
  if (handshake_done_) return Result::ok();
  if (context_->role_ == Role::server && !hello_read_) {
    Result r = read_client_hello();
    if (r.status != Status::done) return r;
  }
  const int ret = wolfSSL_negotiate(ssl_);
  if (ret == WOLFSSL_SUCCESS) {
    handshake_completed();
    if (!flush(&failed)) return failed.status == Status::failed ? failed : Result::of(Status::want_write);
    return Result::ok();
  }
  Result r = translate(ret, Op::handshake);
  // What wolfSSL wrote before it stopped (its flight, or its alert) goes
  // out first.
  if (!flush(&failed) && r.status == Status::want_read) {
    if (failed.status == Status::failed) return failed;
    return Result::of(Status::want_write);
  }
  return r;
}

void WolfSslEngine::handshake_completed() {
  handshake_done_ = true;
  count_key_updates_ = wolfSSL_version(ssl_) == TLS1_3_VERSION;
  refuses_renegotiation_ = wolfSSL_version(ssl_) == TLS1_2_VERSION;
  etm_ = wolfSSL_GetCipherType(ssl_) == WOLFSSL_BLOCK_TYPE &&
         (context_->role_ == Role::server ? etm_offered_ : reframer_.encrypt_then_mac());
  std::vector<std::vector<std::byte>>().swap(rejected_chain_);
  if (keylog_) log_tls12_keys();
}

// TLS 1.2: the master secret, from the session, once the handshake is
// complete (full or resumed). wolfSSL 5.5.4 in Debian is built without
// HAVE_SECRET_CALLBACK: the TLS 1.3 secrets cannot be had (the backend
// declares it, Capabilities::keylog_tls1_3).
void WolfSslEngine::log_tls12_keys() {
  if (wolfSSL_version(ssl_) != TLS1_2_VERSION) return;
  unsigned char random[32], master[48];
  WOLFSSL_SESSION* session = wolfSSL_get_session(ssl_);
  if (!session || wolfSSL_get_client_random(ssl_, random, sizeof random) != sizeof random ||
      wolfSSL_SESSION_get_master_key(session, master, sizeof master) != static_cast<int>(sizeof master))
    return;
  keylog_->secret(Secret::client_random, {random, sizeof random}, {master, sizeof master});
  detail::secure_wipe(master, sizeof master);
}

Result WolfSslEngine::read(std::span<std::byte> buf) {
  send_failed_ = recv_failed_ = waiting_to_write_ = false;
  // A reply wolfSSL made while reading (a KeyUpdate), best effort; never
  // the record of an unfinished write() or close_notify, which waits for
  // the call that finishes it (a read must neither answer for the
  // transport's being full then, nor put our close_notify on the wire).
  const bool queue_is_ours = !write_pending_ && !close_notify_made_;
  if (queue_is_ours) (void)flush(nullptr);
  const int ret = wolfSSL_read(ssl_, buf.data(), static_cast<int>(std::min<std::size_t>(buf.size(), INT_MAX)));
  if (ret > 0) return Result::ok(static_cast<std::size_t>(ret));
  Result r = translate(ret, Op::read);
  if (r.status == Status::want_read && waiting_to_write_) return Result::of(Status::want_write);
  Result failed = Result::ok();
  if (r.status == Status::failed && queue_is_ours) (void)flush(&failed);  // our alert, if wolfSSL made one
  return r;
}

Result WolfSslEngine::write(std::span<const std::byte> buf) {
  send_failed_ = recv_failed_ = false;
  Result failed = Result::ok();
  if (write_pending_) {
    // wolfSSL took these bytes in the call that answered want_write: the
    // record is in out_, only its flush is left.
    if (!flush(&failed)) return failed.status == Status::failed ? failed : Result::of(Status::want_write);
    write_pending_ = false;
    return Result::ok(pending_count_);
  }
  if (!flush(&failed)) return failed.status == Status::failed ? failed : Result::of(Status::want_write);
  // One record per call, as on the other stacks.
  const int len = static_cast<int>(std::min<std::size_t>(buf.size(), 16384));
  const int ret = wolfSSL_write(ssl_, buf.data(), len);
  if (ret > 0) {
    if (!flush(&failed)) {
      if (failed.status == Status::failed) return failed;
      write_pending_ = true;
      pending_count_ = static_cast<std::size_t>(ret);
      return Result::of(Status::want_write);
    }
    return Result::ok(static_cast<std::size_t>(ret));
  }
  Result r = translate(ret, Op::write);
  (void)flush(nullptr);
  return r;
}

Result WolfSslEngine::send_close_notify() {
  send_failed_ = recv_failed_ = false;
  Result failed = Result::ok();
  if (!close_notify_made_) {
    close_notify_made_ = true;
    // T16: a wolfSSL_shutdown that finds the peer's close_notify already
    // in returns 1 and clears the object for reuse; the facts are kept.
    freeze();
    const int ret = wolfSSL_shutdown(ssl_);
    // 0 (T15: WOLFSSL_SHUTDOWN_NOT_DONE in this build): sent, the peer's
    // not yet in; 1: sent and the peer's in. The core waits for the peer's
    // close_notify with read(), never with wolfSSL_shutdown (T15, T17).
    if (ret < 0) {
      // Nothing sent: wolfSSL saw the transport end (isClosed) and skips
      // the alert, which the Wire would have swallowed anyway.
      if (wire_.eof()) return Result::ok();
      if (send_failed_)
        return Result::fail(errc::transport_error, wire_.io_error() ? wire_.io_error() : wolfssl_code(SOCKET_ERROR_E));
      const int err = wolfSSL_get_error(ssl_, ret);
      if (err != WOLFSSL_ERROR_NONE && err != WOLFSSL_ERROR_ZERO_RETURN)
        return Result::fail(errc::protocol_error, wolfssl_code(err));
    }
  }
  if (!flush(&failed)) return failed.status == Status::failed ? failed : Result::of(Status::want_write);
  return Result::ok();
}

// A fatal alert wolfSSL did not send itself (wolfSSL has no public call
// for an alert): a ClientHello the core refused (read_client_hello) and the
// TLS 1.2 failures of translate, before any record is encrypted, as a
// plaintext record; a TLS 1.3 certificate wolfSSL could not parse, sealed.
void WolfSslEngine::send_alert(std::uint8_t description) {
  if (handshake_done_) return;
  const unsigned char alert[] = {2, description};  // fatal
  if (seal_alert_) {
    // A TLS 1.3 Certificate wolfSSL failed without an alert (translate):
    // the handshake's records are encrypted, so is the alert, under the
    // keys our next record would have (wolfssl_records.hpp).
    const std::vector<unsigned char> record = wolfssl_records::seal_tls13_record(ssl_, wolfssl_records::Writer::us, 21, alert);
    if (!record.empty()) {
      (void)transport_send(record.data(), record.size());
      (void)flush(nullptr);
      return;
    }
  }
  // (A TLS 1.2 server that required a client certificate, translate: the
  // client's records are not encrypted before its ChangeCipherSpec.)
  const unsigned char record[] = {0x15, 0x03, 0x03, 0x00, 0x02, alert[0], alert[1]};
  (void)transport_send(record, sizeof record);
  (void)flush(nullptr);
}

// Maps a failed call by wolfSSL_get_error and the Wire, never by the return
// value (T19).
Result WolfSslEngine::translate(int ret, Op op) {
  const int err = wolfSSL_get_error(ssl_, ret);
  // wolfSSL failed on the poison: the fault is the record it stands for.
  if (poisoned_ && pending_pos_ == pending_.size() && err != WOLFSSL_ERROR_WANT_READ &&
      err != WOLFSSL_ERROR_WANT_WRITE)
    return Result::fail(errc::protocol_error, poisoned_);
  switch (err) {
    case WOLFSSL_ERROR_WANT_READ:
      return Result::of(Status::want_read);
    case WOLFSSL_ERROR_WANT_WRITE:
      return Result::of(Status::want_write);
    case WOLFSSL_ERROR_ZERO_RETURN:
    case ZERO_RETURN:
      if (recv_failed_ || send_failed_ || wire_.io_error())
        return Result::fail(errc::transport_error, wire_.io_error() ? wire_.io_error() : wolfssl_code(err));
      if (op == Op::read || op == Op::handshake) return Result::of(Status::close_notify, wolfssl_code(ZERO_RETURN));
      return Result::fail(errc::transport_error, wolfssl_code(err));
    default:
      break;
  }
  // The transport: its EOF (-397, -308 after CONN_CLOSE), or its failure.
  // A failure to send the alert that answers a bad record leaves the bad
  // record the cause.
  const bool socket_error = err == SOCKET_ERROR_E || err == SOCKET_PEER_CLOSED_E;
  if (recv_failed_ || (socket_error && (send_failed_ || wire_.io_error())))
    return Result::fail(errc::transport_error, wire_.io_error() ? wire_.io_error() : wolfssl_code(err));
  if (err == SOCKET_PEER_CLOSED_E || (err == SOCKET_ERROR_E && wire_.eof())) return Result::of(Status::eof, wolfssl_code(err));
  if (err == FATAL_ERROR) return Result::fail(errc::protocol_error, wolfssl_code(err), true);
  if (op == Op::handshake) {
    // (Not verifying, wolfSSL sends no alert for it: illegal_parameter, in
    // plaintext, as a TLS 1.2 server's Certificate comes before any key.)
    if (curve_refused_)
      return context_->verify_peer_ ? Result::fail(errc::protocol_error, wolfssl_code(ECC_CURVE_ERROR))
                                    : Result::answer(errc::protocol_error, wolfssl_code(ECC_CURVE_ERROR), illegal_parameter);
    // A rejected certificate; one wolfSSL cannot parse (a BER length, ...)
    // is one too, as on the other stacks. wolfSSL sends no alert for some of
    // them (a parse failure): bad_certificate then, so that the peer does
    // not wait.
    if (rejected_ || is_parse_error(err)) {
      if (!rejected_) {
        issues_ |= issue_unreadable;
        // wolfSSL keeps no chain it could not parse: the one the peer sent,
        // as the other stacks show it (TLS 1.2: the message was plaintext).
        if (rejected_chain_.empty())
          for_each_certificate(reframer_.certificate_message(), false,
                               [this](std::span<const unsigned char>, std::span<const unsigned char> der) {
                                 const auto bytes = std::as_bytes(der);
                                 rejected_chain_.emplace_back(bytes.begin(), bytes.end());
                               });
      }
      // (TLS 1.3: the Certificate came encrypted, after the keys were set.)
      seal_alert_ = wolfSSL_version(ssl_) == TLS1_3_VERSION;
      return sent_in_call_ ? Result::fail(errc::certificate_error, wolfssl_code(err))
                           : Result::answer(errc::certificate_error, wolfssl_code(err), bad_certificate);
    }
    // A server that requires a client certificate and got none: wolfSSL
    // sends no alert in TLS 1.2 (the client would wait for our Finished):
    // handshake_failure, what OpenSSL sends. Nothing is encrypted yet then.
    if (err == NO_PEER_CERT)
      return wolfSSL_version(ssl_) == TLS1_2_VERSION
                 ? Result::answer(errc::certificate_error, wolfssl_code(err), handshake_failure)
                 : Result::fail(errc::certificate_error, wolfssl_code(err));
  }
  return Result::fail(errc::protocol_error, wolfssl_code(err));
}

// ---- verification ---------------------------------------------------------------
//
// wolfSSL checks the chain, the signatures and the validity period (and the
// leaf's extendedKeyUsage). Names and purposes are the core's rules
// (verify.hpp), the same on every backend: the leaf is judged here after
// wolfSSL's own checks passed, and the CAs above it, the trust anchor
// included, by check_chain_purposes (wolfSSL checks no CA's
// extendedKeyUsage). WOLFSSL_VERIFY_CB_ALL_CERTS and
// WOLFSSL_ALWAYS_VERIFY_CB (Debian's build) make wolfSSL call this for every
// certificate the peer sent, the top first, the leaf last: a failure of its
// own at any depth is kept (with the chain), the core's rules run at the
// leaf.
int WolfSslEngine::verify(int ok, WOLFSSL_X509_STORE_CTX* store) {
  auto* ssl = static_cast<WOLFSSL*>(wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx()));
  WolfSslEngine* self = ssl ? of(ssl) : nullptr;
  if (!self) return ok;
  const WolfSslContext& c = *self->context_;
  const int depth = store->error_depth;
  std::span<const unsigned char> der;
  if (store->certs && depth >= 0 && depth < store->totalCerts)
    der = {store->certs[depth].buffer, store->certs[depth].length};
  auto reject = [&](unsigned issues) {
    self->issues_ |= issues;
    self->rejected_ = true;
    self->rejected_chain_.clear();
    for (int i = 0; store->certs && i < store->totalCerts; ++i) {
      const auto* p = reinterpret_cast<const std::byte*>(store->certs[i].buffer);
      self->rejected_chain_.emplace_back(p, p + store->certs[i].length);
    }
    return 0;
  };
  if (!c.verify_peer_) {
    // A client that verifies nothing: only the RFC 8422 5.1 check, on the leaf.
    if (depth == 0 && !der.empty() && wolfSSL_version(ssl) == TLS1_2_VERSION &&
        !server_key_allowed(std::as_bytes(der), c.groups_)) {
      self->curve_refused_ = true;
      return 0;
    }
    return 1;
  }
  if (!ok) return reject(issues_of(store->error));
  if (der.empty() || depth > 0) return ok;
  // RFC 8422 5.1: a TLS 1.2 server's ECDSA key on a curve the client's
  // groups leave out. wolfSSL takes it; OpenSSL fails it as a protocol
  // error, and so does every backend (docs/contract.md, "Cipher suites and
  // groups"). Refused here so that wolfSSL sends its alert.
  if (c.role_ == Role::client && wolfSSL_version(ssl) == TLS1_2_VERSION &&
      !server_key_allowed(std::as_bytes(der), c.groups_)) {
    self->curve_refused_ = true;
    return 0;
  }
  PeerVerdict verdict = check_peer_leaf(std::as_bytes(der), c.role_, c.server_name_);
  if (verdict == PeerVerdict::ok) {
    // The CAs' purposes, the anchor included (wolfSSL checks none of them).
    std::vector<std::span<const std::byte>> sent;
    for (int i = 0; store->certs && i < store->totalCerts; ++i)
      sent.push_back(std::as_bytes(std::span<const unsigned char>(store->certs[i].buffer, store->certs[i].length)));
    verdict = check_chain_purposes(sent, c.role_, c.anchors_.lookup());
  }
  if (verdict == PeerVerdict::ok) return 1;
  wolfSSL_X509_STORE_CTX_set_error(store, verdict == PeerVerdict::wrong_purpose ? X509_V_ERR_INVALID_PURPOSE
                                                                                : X509_V_ERR_CERT_REJECTED);
  return reject(issue_of(verdict));
}

// ---- sessions -----------------------------------------------------------------

std::shared_ptr<void> shared(WOLFSSL_SESSION* session) {
  return std::shared_ptr<void>(session, [](void* s) { wolfSSL_SESSION_free(static_cast<WOLFSSL_SESSION*>(s)); });
}

// wolfSSL_CTX_sess_set_new_cb (HAVE_EXT_CACHE). A client: wolfSSL made a
// session (the end of a full TLS 1.2 handshake, a TLS 1.3
// NewSessionTicket). A server: a session for the core's session-ID cache.
// 1: the reference wolfSSL gave is ours.
int WolfSslEngine::on_new_session(WOLFSSL* ssl, WOLFSSL_SESSION* session) {
  WolfSslEngine* self = of(ssl);
  if (!self) return 0;
  if (self->sessions_) {
    // A resumption without a new ticket makes none (wolfSSL 1.2 reports
    // the session it resumed).
    if (wolfSSL_version(ssl) == TLS1_2_VERSION && wolfSSL_session_reused(ssl) == 1) return 0;
    self->sessions_->session_made({}, shared(session));
    return 1;
  }
  if (ServerSessionStore* store = self->context_->server_sessions_.get()) {
    if (wolfSSL_version(ssl) != TLS1_2_VERSION) return 0;  // TLS 1.3: stateless tickets
    unsigned len = 0;
    const unsigned char* id = wolfSSL_SESSION_get_id(session, &len);
    if (!id || len == 0) return 0;
    store->store(std::span<const unsigned char>(id, len), {}, shared(session), self->requested_name_);
    return 1;
  }
  return 0;
}

// wolfSSL_CTX_sess_set_get_cb (server): a session ID the client offered.
WOLFSSL_SESSION* WolfSslEngine::find_session(WOLFSSL* ssl, const unsigned char* id, int len, int* copy) {
  *copy = 0;  // wolfSSL copies it and releases this reference
  const WolfSslEngine* self = of(ssl);
  if (!self || len <= 0 || !self->context_->server_sessions_) return nullptr;
  const auto found = self->context_->server_sessions_->find(
      std::span<const unsigned char>(id, static_cast<std::size_t>(len)), self->requested_name_);
  if (!found || !found->native) return nullptr;
  auto* session = static_cast<WOLFSSL_SESSION*>(found->native.get());
  if (wolfSSL_SESSION_up_ref(session) != WOLFSSL_SUCCESS) return nullptr;
  return session;
}

void WolfSslEngine::forget_session(WOLFSSL_CTX* ctx, WOLFSSL_SESSION* session) {
  const auto* context = static_cast<const WolfSslContext*>(wolfSSL_CTX_get_ex_data(ctx, 0));
  unsigned len = 0;
  const unsigned char* id = session ? wolfSSL_SESSION_get_id(session, &len) : nullptr;
  if (context && context->server_sessions_ && id) context->server_sessions_->remove(std::span<const unsigned char>(id, len));
}

// wolfSSL_CTX_set_TicketEncCb (server, TLS 1.3): the tickets sealed with
// ChaCha20-Poly1305 under the context's key, with the server name of the
// handshake as additional data, so that a ticket resumes only under the
// name it was made with (docs/contract.md, "Server names"; wolfSSL's own
// ticket callback takes any name). The 16-byte tag goes in mac.
int WolfSslEngine::on_ticket(WOLFSSL* ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                             unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
                             unsigned char* ticket, int in_len, int* out_len, void*) {
  WolfSslEngine* self = of(ssl);
  if (!self || in_len < 0) return WOLFSSL_TICKET_RET_FATAL;
  const WolfSslContext& c = *self->context_;
  const std::string& name = self->requested_name_;
  const auto* aad = reinterpret_cast<const unsigned char*>(name.data());
  static_assert(WOLFSSL_TICKET_IV_SZ >= CHACHA20_POLY1305_AEAD_IV_SIZE);
  static_assert(WOLFSSL_TICKET_MAC_SZ >= CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE);
  if (enc) {
    std::memcpy(key_name, c.ticket_name_, WOLFSSL_TICKET_NAME_SZ);
    if (!c.random(iv, WOLFSSL_TICKET_IV_SZ)) return WOLFSSL_TICKET_RET_FATAL;
    std::memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
    if (wc_ChaCha20Poly1305_Encrypt(c.ticket_key_, iv, aad, static_cast<word32>(name.size()), ticket,
                                    static_cast<word32>(in_len), ticket, mac) != 0)
      return WOLFSSL_TICKET_RET_FATAL;
    *out_len = in_len;
    // The client's certificate, which wolfSSL's ticket does not carry, is
    // kept in a store of the core's under the ticket's IV, for the
    // connection that resumes with it (peer_chain: the leaf of the
    // handshake that made the session, as on every backend). Its own store,
    // not the session-ID cache: tickets must not push TLS 1.2 sessions out.
    if (c.ticket_leaves_) {
      const std::vector<std::vector<std::byte>> chain = self->chain_now();
      if (!chain.empty())
        c.ticket_leaves_->store(std::span<const unsigned char>(iv, WOLFSSL_TICKET_IV_SZ),
                                  std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(chain[0].data()),
                                                                 chain[0].size()),
                                  nullptr, name);
    }
    return WOLFSSL_TICKET_RET_OK;
  }
  if (std::memcmp(key_name, c.ticket_name_, WOLFSSL_TICKET_NAME_SZ) != 0) return WOLFSSL_TICKET_RET_REJECT;
  if (wc_ChaCha20Poly1305_Decrypt(c.ticket_key_, iv, aad, static_cast<word32>(name.size()), ticket,
                                  static_cast<word32>(in_len), mac, ticket) != 0)
    return WOLFSSL_TICKET_RET_REJECT;
  *out_len = in_len;
  if (c.ticket_leaves_) {
    if (const auto kept = c.ticket_leaves_->find(std::span<const unsigned char>(iv, WOLFSSL_TICKET_IV_SZ), name)) {
      const auto* p = reinterpret_cast<const std::byte*>(kept->bytes.data());
      self->resumed_leaf_.assign(p, p + kept->bytes.size());
    }
  }
  return WOLFSSL_TICKET_RET_OK;
}

// ---- configuration ----------------------------------------------------------------

// Server-side ALPN: the core's choice (prefer_alpn), the same on every
// backend.
int select_alpn(WOLFSSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto& ours = *static_cast<const std::vector<unsigned char>*>(arg);
  const std::span<const unsigned char> chosen = prefer_alpn(ours, {in, inlen});
  if (chosen.empty()) return SSL_TLSEXT_ERR_NOACK;
  *out = chosen.data();
  *outlen = static_cast<unsigned char>(chosen.size());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::size_t WolfSslContext::engine_size() const { return sizeof(WolfSslEngine); }

EnginePtr WolfSslContext::make_engine(Wire& wire, EngineSetup& setup) {
  WOLFSSL* ssl = wolfSSL_new(ctx_);
  if (!ssl) return nullptr;
  auto engine = setup.room.make<WolfSslEngine>(*this, wire, ssl, setup.sessions, setup.keylog);
  if (!engine->init(setup.offer.get())) return nullptr;
  return engine;
}

namespace {

// PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 C) with the password as
// a BMPString of its UTF-8, by wolfCrypt's primitives. The PrivateKeyInfo
// DER, or empty when it does not decrypt.
std::vector<unsigned char> decrypt_pkcs12(const EncryptedKey& k, const std::string& password) {
  if (k.cipher != "pbeWithSHAAnd3-KeyTripleDES-CBC" || k.iterations == 0 || k.iterations > INT_MAX ||
      k.ciphertext.empty() || k.ciphertext.size() % DES_BLOCK_SIZE != 0)
    return {};
  std::vector<unsigned char> bmp = pkcs12_password(password);
  unsigned char key[24], iv[DES_BLOCK_SIZE];
  const auto* salt = reinterpret_cast<const unsigned char*>(k.salt.data());
  const int iterations = static_cast<int>(k.iterations);
  bool ok = wc_PKCS12_PBKDF_ex(key, bmp.data(), static_cast<int>(bmp.size()), salt, static_cast<int>(k.salt.size()),
                               iterations, sizeof key, WC_SHA, 1, nullptr) == 0 &&
            wc_PKCS12_PBKDF_ex(iv, bmp.data(), static_cast<int>(bmp.size()), salt, static_cast<int>(k.salt.size()),
                               iterations, sizeof iv, WC_SHA, 2, nullptr) == 0;
  secure_wipe(bmp);
  std::vector<unsigned char> plain(k.ciphertext.size());
  if (ok) {
    Des3 des;
    ok = wc_Des3Init(&des, nullptr, INVALID_DEVID) == 0;
    ok = ok && wc_Des3_SetKey(&des, key, iv, DES_DECRYPTION) == 0 &&
         wc_Des3_CbcDecrypt(&des, plain.data(), reinterpret_cast<const unsigned char*>(k.ciphertext.data()),
                            static_cast<word32>(k.ciphertext.size())) == 0;
    wc_Des3Free(&des);
  }
  secure_wipe(key, sizeof key);
  // PKCS#7 padding: a wrong password shows here, or as DER that does not parse.
  const std::size_t pad = ok ? plain.back() : 0;
  if (pad == 0 || pad > DES_BLOCK_SIZE || pad > plain.size()) {
    secure_wipe(plain);
    return {};
  }
  for (std::size_t i = plain.size() - pad; i < plain.size(); ++i)
    if (plain[i] != pad) {
      secure_wipe(plain);
      return {};
    }
  plain.resize(plain.size() - pad);
  return plain;
}

// The key of a credential as plain DER, decrypted with its password
// (wolfSSL reads the legacy PEM encryption, PKCS#5 v1 and PBES2 with
// PBKDF2 itself); a wolfSSL error code when it cannot.
int key_der(const PreparedCredential& prepared, std::vector<unsigned char>& der) {
  if (!prepared.key_password.empty()) {
    if (auto blocks = parse_pem(prepared.key_pem); blocks && !blocks->empty()) {
      const auto encrypted = encrypted_key(blocks->front());
      if (encrypted && encrypted->scheme == KeyEncryption::pkcs12) {
        der = decrypt_pkcs12(*encrypted, prepared.key_password);
        const unsigned char* p = der.data();
        WOLFSSL_EVP_PKEY* key = der.empty() ? nullptr : wolfSSL_d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
        if (!key) {
          secure_wipe(der);
          der.clear();
          return ASN_PARSE_E;
        }
        wolfSSL_EVP_PKEY_free(key);
        return static_cast<int>(der.size());
      }
    }
  }
  der.resize(prepared.key_pem.size() + 64);
  const int n = wc_KeyPemToDer(reinterpret_cast<const unsigned char*>(prepared.key_pem.data()),
                               static_cast<int>(prepared.key_pem.size()), der.data(), static_cast<int>(der.size()),
                               prepared.key_password.empty() ? nullptr : prepared.key_password.c_str());
  if (n <= 0) {
    secure_wipe(der);
    der.clear();
    return n;
  }
  der.resize(static_cast<std::size_t>(n));
  return n;
}

// Whether the key is the leaf's: a signature made with it verifies with the
// leaf's public key. wolfSSL_CTX_check_private_key cannot tell: 5.5.4
// passes an EC key of the same curve that is not the certificate's
// (measured).
bool key_matches(const OwnCredential& own) {
  thread_uses_ecc();
  WOLFSSL_X509* leaf = wolfSSL_X509_load_certificate_buffer(
      reinterpret_cast<const unsigned char*>(own.chain_pem.data()), static_cast<int>(own.chain_pem.size()),
      WOLFSSL_FILETYPE_PEM);
  const unsigned char* p = own.key_der.data();
  WOLFSSL_EVP_PKEY* key = wolfSSL_d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(own.key_der.size()));
  WOLFSSL_EVP_PKEY* pub = leaf ? wolfSSL_X509_get_pubkey(leaf) : nullptr;
  WOLFSSL_EVP_MD_CTX* sign = wolfSSL_EVP_MD_CTX_new();
  WOLFSSL_EVP_MD_CTX* check = wolfSSL_EVP_MD_CTX_new();
  static const unsigned char text[] = "unitls: does the key belong to the certificate?";
  unsigned char sig[1024];
  std::size_t sig_len = sizeof sig;
  const bool ok = key && pub && sign && check &&
                  wolfSSL_EVP_DigestSignInit(sign, nullptr, wolfSSL_EVP_sha256(), nullptr, key) == WOLFSSL_SUCCESS &&
                  wolfSSL_EVP_DigestSignUpdate(sign, text, sizeof text) == WOLFSSL_SUCCESS &&
                  wolfSSL_EVP_DigestSignFinal(sign, sig, &sig_len) == WOLFSSL_SUCCESS &&
                  wolfSSL_EVP_DigestVerifyInit(check, nullptr, wolfSSL_EVP_sha256(), nullptr, pub) == WOLFSSL_SUCCESS &&
                  wolfSSL_EVP_DigestVerifyUpdate(check, text, sizeof text) == WOLFSSL_SUCCESS &&
                  wolfSSL_EVP_DigestVerifyFinal(check, sig, sig_len) == WOLFSSL_SUCCESS;
  if (check) wolfSSL_EVP_MD_CTX_free(check);
  if (sign) wolfSSL_EVP_MD_CTX_free(sign);
  if (pub) wolfSSL_EVP_PKEY_free(pub);
  if (key) wolfSSL_EVP_PKEY_free(key);
  if (leaf) wolfSSL_X509_free(leaf);
  return ok;
}

}  // namespace

bool WolfSslContext::load_credential(const PreparedCredential& prepared, OwnCredential& own, std::string& message) {
  own.chain_pem = prepared.chain_pem;
  // The key as plain DER, decrypted here once.
  const int n = key_der(prepared, own.key_der);
  if (n <= 0) {
    message = key_unusable_message(prepared, "wolfSSL", why(n));
    return false;
  }
  // Whether the key is the leaf's: a scratch context of the same kind.
  WOLFSSL_CTX* scratch = wolfSSL_CTX_new(wolfSSLv23_server_method());
  if (!scratch) {
    message = "cannot create a wolfSSL context";
    return false;
  }
  int ret = wolfSSL_CTX_use_certificate_chain_buffer(scratch, reinterpret_cast<const unsigned char*>(own.chain_pem.data()),
                                                     static_cast<long>(own.chain_pem.size()));
  if (ret != WOLFSSL_SUCCESS) {
    wolfSSL_CTX_free(scratch);
    message = config_message(prepared.certificate_source, "not usable", "wolfSSL", why(ret));
    return false;
  }
  ret = wolfSSL_CTX_use_PrivateKey_buffer(scratch, own.key_der.data(), static_cast<long>(own.key_der.size()),
                                          WOLFSSL_FILETYPE_ASN1);
  if (ret != WOLFSSL_SUCCESS) {
    wolfSSL_CTX_free(scratch);
    message = key_unusable_message(prepared, "wolfSSL", why(ret));
    return false;
  }
  wolfSSL_CTX_free(scratch);
  if (!key_matches(own)) {
    message = key_mismatch_message(prepared, "wolfSSL");
    return false;
  }
  return true;
}

bool WolfSslContext::load_trust(const Prepared& prepared, std::string& message) {
  if (prepared.trust_pem.empty()) return true;
  // The anchors the core kept (ca_file, ca_pem or the system store), one
  // by one: their DER is kept too (is_anchor). A system bundle may hold
  // certificates wolfSSL cannot parse; the rest still count.
  std::size_t at = 0;
  int loaded = 0;
  static constexpr std::string_view begin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view end = "-----END CERTIFICATE-----";
  const std::string& pem = prepared.trust_pem;
  while ((at = pem.find(begin, at)) != std::string::npos) {
    const std::size_t stop = pem.find(end, at);
    if (stop == std::string::npos) break;
    const std::string block = pem.substr(at, stop + end.size() - at) + "\n";
    at = stop + end.size();
    std::vector<unsigned char> der(block.size());
    const int n = wolfSSL_CertPemToDer(reinterpret_cast<const unsigned char*>(block.data()), static_cast<int>(block.size()),
                                       der.data(), static_cast<int>(der.size()), CERT_TYPE);
    int ret = n > 0 ? wolfSSL_CTX_load_verify_buffer(ctx_, der.data(), n, WOLFSSL_FILETYPE_ASN1) : n;
    if (n > 0 && ret != WOLFSSL_SUCCESS) {
      // A self-signed certificate that is no CA: wolfSSL takes it as a
      // trusted peer.
      ret = wolfSSL_CTX_trust_peer_buffer(ctx_, der.data(), n, WOLFSSL_FILETYPE_ASN1);
    }
    if (ret != WOLFSSL_SUCCESS) {
      if (prepared.trust_is_system) continue;
      message = config_message(prepared.trust_source, "not usable", "wolfSSL", why(ret));
      return false;
    }
    anchors_.add({reinterpret_cast<const std::byte*>(der.data()), static_cast<std::size_t>(n)});
    ++loaded;
  }
  anchors_.finish(role_ == Role::client ? Role::server : Role::client);
  if (loaded == 0 && !prepared.trust_is_system) {
    message = config_message(prepared.trust_source, "not usable", "wolfSSL", "no certificate");
    return false;
  }
  return true;
}

bool WolfSslContext::select(const Selection& selection, std::string& message) {
  std::string list;
  for (const SuiteInfo* suite : selection.suites) {
    const char* name = wolfSSL_get_cipher_name_from_suite(static_cast<unsigned char>(suite->code >> 8),
                                                          static_cast<unsigned char>(suite->code & 0xff));
    if (!name || std::strcmp(name, "None") == 0 || std::strcmp(name, "") == 0) {
      message = unsupported_suite_message(*suite, "wolfssl", "not in this build of wolfSSL");
      init_error_ = errc::unsupported;
      return false;
    }
    if (!list.empty()) list += ':';
    list += name;
    cipher_codes_.push_back(static_cast<unsigned char>(suite->code >> 8));
    cipher_codes_.push_back(static_cast<unsigned char>(suite->code & 0xff));
  }
  if (wolfSSL_CTX_set_cipher_list(ctx_, list.c_str()) != WOLFSSL_SUCCESS) {
    message = "cipher_suites: wolfSSL refused '" + list + "'";
    init_error_ = errc::unsupported;
    return false;
  }
  std::vector<int> groups;
  for (const GroupInfo* group : selection.groups) {
    groups.push_back(group->code);
    groups_.push_back(group->code);
  }
  // In order: the supported_groups a client sends, and its one TLS 1.3
  // key share (the first group wolfSSL has a share for).
  const int ret = wolfSSL_CTX_set_groups(ctx_, groups.data(), static_cast<int>(groups.size()));
  if (ret != WOLFSSL_SUCCESS) {
    // Which one: each on its own.
    for (const GroupInfo* group : selection.groups) {
      WOLFSSL_CTX* scratch = wolfSSL_CTX_new(wolfSSLv23_client_method());
      const bool ok = scratch && wolfSSL_CTX_UseSupportedCurve(scratch, group->code) == WOLFSSL_SUCCESS;
      if (scratch) wolfSSL_CTX_free(scratch);
      if (!ok) {
        message = unsupported_group_message(*group, "wolfssl", "not in this build of wolfSSL");
        init_error_ = errc::unsupported;
        return false;
      }
    }
    message = "groups: wolfSSL refused the list (" + why(ret) + ")";
    init_error_ = errc::unsupported;
    return false;
  }
  return true;
}

bool WolfSslContext::init(const Config&, const Prepared& prepared, std::string& message) {
  if (!library_ready()) {
    message = "cannot initialise wolfSSL";
    return false;
  }
  const Selection& selection = prepared.selection;
  const bool server = role_ == Role::server;
  // The versions through the flexible method and its limits, never a
  // TLS 1.2-only method: its objects take no group list (wolfSSL_set_groups
  // wants a TLS 1.3-capable object), which the server's choice of group
  // needs (choose_group).
  WOLFSSL_METHOD* method = server ? wolfSSLv23_server_method() : wolfSSLv23_client_method();
  ctx_ = method ? wolfSSL_CTX_new(method) : nullptr;
  if (!ctx_) {
    message = "cannot create a wolfSSL context";
    return false;
  }
  wolfSSL_CTX_set_ex_data(ctx_, 0, this);
  tls1_3_ = selection.max_version == Version::tls1_3;
  if (wolfSSL_CTX_SetMinVersion(ctx_, selection.min_version == Version::tls1_3 ? WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2) !=
          WOLFSSL_SUCCESS ||
      (!tls1_3_ && wolfSSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION) != WOLFSSL_SUCCESS)) {
    message = "min_version/max_version: refused by wolfSSL";
    return false;
  }
  if (!select(selection, message)) return false;
  wolfSSL_CTX_SetIORecv(ctx_, &WolfSslEngine::io_recv);
  wolfSSL_CTX_SetIOSend(ctx_, &WolfSslEngine::io_send);

  for (const PreparedCredential& credential : prepared.credentials) {
    OwnCredential own;
    if (!load_credential(credential, own, message)) return false;
    credentials_.push_back(std::move(own));
  }
  if (!credentials_.empty()) {
    const OwnCredential& main = credentials_.front();
    if (wolfSSL_CTX_use_certificate_chain_buffer(ctx_, reinterpret_cast<const unsigned char*>(main.chain_pem.data()),
                                                 static_cast<long>(main.chain_pem.size())) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_PrivateKey_buffer(ctx_, main.key_der.data(), static_cast<long>(main.key_der.size()),
                                          WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
      message = key_mismatch_message(prepared.credentials.front(), "wolfSSL");
      return false;
    }
  }
  if (!load_trust(prepared, message)) return false;

  for (const auto& p : alpn_) {
    if (!alpn_list_.empty()) alpn_list_ += ',';
    alpn_list_ += p;
    alpn_wire_.push_back(static_cast<unsigned char>(p.size()));
    alpn_wire_.insert(alpn_wire_.end(), p.begin(), p.end());
  }

  if (server) {
    const int mode = client_auth_ == ClientAuth::required
                         ? WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
                     : client_auth_ == ClientAuth::optional ? WOLFSSL_VERIFY_PEER
                                                            : WOLFSSL_VERIFY_NONE;
    wolfSSL_CTX_set_verify(ctx_, mode, verify_peer_ ? &WolfSslEngine::verify : nullptr);
    static const unsigned char sid_ctx[] = "unitls";
    wolfSSL_CTX_set_session_id_context(ctx_, sid_ctx, sizeof sid_ctx - 1);
    // The session-ID cache is the core's (ServerSessionStore); TLS 1.2
    // tickets are off, so a session the RFC 2246 rule takes away is gone.
    // TLS 1.3 tickets stay stateless, sealed by on_ticket.
    wolfSSL_CTX_NoTicketTLSv12(ctx_);
    wolfSSL_CTX_set_session_cache_mode(ctx_, WOLFSSL_SESS_CACHE_SERVER | WOLFSSL_SESS_CACHE_NO_INTERNAL);
    wolfSSL_CTX_sess_set_new_cb(ctx_, &WolfSslEngine::on_new_session);
    wolfSSL_CTX_sess_set_get_cb(ctx_, &WolfSslEngine::find_session);
    wolfSSL_CTX_sess_set_remove_cb(ctx_, &WolfSslEngine::forget_session);
    if (client_auth_ != ClientAuth::none) ticket_leaves_ = std::make_shared<ServerSessionStore>();
    if (!random(ticket_key_, sizeof ticket_key_) || !random(ticket_name_, sizeof ticket_name_)) {
      message = "cannot make a session ticket key (wolfCrypt's random generator)";
      return false;
    }
    wolfSSL_CTX_set_TicketEncCb(ctx_, &WolfSslEngine::on_ticket);
    if (!alpn_wire_.empty()) wolfSSL_CTX_set_alpn_select_cb(ctx_, select_alpn, &alpn_wire_);
  } else {
    // The callback also when nothing is verified: the RFC 8422 5.1 check
    // (verify) is no verification.
    wolfSSL_CTX_set_verify(ctx_, verify_peer_ ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE, &WolfSslEngine::verify);
    if (session_cache_) {
      wolfSSL_CTX_set_session_cache_mode(ctx_, WOLFSSL_SESS_CACHE_CLIENT | WOLFSSL_SESS_CACHE_NO_INTERNAL);
      wolfSSL_CTX_sess_set_new_cb(ctx_, &WolfSslEngine::on_new_session);
    } else {
      wolfSSL_CTX_set_session_cache_mode(ctx_, WOLFSSL_SESS_CACHE_OFF);
    }
  }
  return true;
}

namespace {

// ---- keys for make_credential (src/engine.hpp, EcdsaP256) ----------------------------

// wolfCrypt's random generator for one key or one signature.
class OneTimeRandom {
 public:
  OneTimeRandom() : ret_(wc_InitRng(&rng_)) {}
  ~OneTimeRandom() {
    if (ret_ == 0) wc_FreeRng(&rng_);
  }
  OneTimeRandom(const OneTimeRandom&) = delete;
  OneTimeRandom& operator=(const OneTimeRandom&) = delete;
  int seeded() const { return ret_; }
  WC_RNG* rng() { return &rng_; }

 private:
  WC_RNG rng_{};
  int ret_;
};

bool wolfssl_generate_p256(std::vector<std::byte>& sec1, std::vector<std::byte>& point, std::string& message) {
  thread_uses_ecc();
  OneTimeRandom random;
  ecc_key key;
  int ret = random.seeded();
  const bool made = ret == 0 && (ret = wc_ecc_init(&key)) == 0;
  if (made) ret = wc_ecc_make_key_ex(random.rng(), 32, &key, ECC_SECP256R1);
  unsigned char buf[256];
  if (made && ret == 0) {
    // SEC1 ECPrivateKey (RFC 5915), the public key included.
    ret = wc_EccKeyToDer(&key, buf, sizeof buf);
    if (ret > 0) {
      sec1.assign(reinterpret_cast<std::byte*>(buf), reinterpret_cast<std::byte*>(buf + ret));
      ret = 0;
    }
  }
  if (made && ret == 0) {
    point.resize(65);
    word32 len = static_cast<word32>(point.size());
    ret = wc_ecc_export_x963(&key, reinterpret_cast<unsigned char*>(point.data()), &len);
    if (ret == 0 && len != 65) ret = BAD_FUNC_ARG;
  }
  secure_wipe(buf, sizeof buf);
  if (made) wc_ecc_free(&key);
  if (ret != 0) message = "wolfCrypt: " + error_text(ret);
  return ret == 0;
}

bool wolfssl_sign_p256(std::span<const std::byte> sec1, std::span<const std::byte> digest,
                       std::vector<std::byte>& signature, std::string& message) {
  thread_uses_ecc();
  OneTimeRandom random;
  ecc_key key;
  int ret = random.seeded();
  const bool made = ret == 0 && (ret = wc_ecc_init(&key)) == 0;
  word32 at = 0;
  if (made)
    ret = wc_EccPrivateKeyDecode(reinterpret_cast<const unsigned char*>(sec1.data()), &at, &key,
                                 static_cast<word32>(sec1.size()));
  if (made && ret == 0) {
    unsigned char sig[ECC_MAX_SIG_SIZE];
    word32 len = sizeof sig;
    ret = wc_ecc_sign_hash(reinterpret_cast<const unsigned char*>(digest.data()), static_cast<word32>(digest.size()),
                           sig, &len, random.rng(), &key);
    if (ret == 0) signature.assign(reinterpret_cast<std::byte*>(sig), reinterpret_cast<std::byte*>(sig + len));
  }
  if (made) wc_ecc_free(&key);
  if (ret != 0) message = "wolfCrypt: " + error_text(ret);
  return ret == 0;
}

constexpr EcdsaP256 wolfssl_ecdsa_p256{&wolfssl_generate_p256, &wolfssl_sign_p256};

const char* wolfssl_library_version() {
  static const std::string version = std::string("wolfSSL ") + wolfSSL_lib_version();
  return version.c_str();
}

}  // namespace

// TLS 1.2 and 1.3. wolfSSL writes its ClientHello as one record, whatever
// its size (measured: 62 KiB of ALPN names go out in a record the peer must
// refuse, RFC 8446 5.1): the ALPN list keeps 1 KiB of the 2^14 bytes for the
// rest of the hello.
extern const BackendEntry wolfssl_backend{
    "wolfssl", &make_context<WolfSslContext>, &wolfssl_library_version,
    Capabilities{// wolfSSL_UseALPN takes a comma-separated C string of at most
                 // WOLFSSL_MAX_ALPN_NUMBER names.
                 .max_alpn_protocols = WOLFSSL_MAX_ALPN_NUMBER,
                 .max_alpn_list = 16384 - 1024,
                 .alpn_name_excludes = ",",
                 // PBES2 with PBKDF2 (AES, 3DES), PKCS#5 v1, PKCS#12 through
                 // decrypt_pkcs12; no scrypt, no Camellia.
                 .key_encryptions = key_encryption_bit(KeyEncryption::legacy_pem) |
                                    key_encryption_bit(KeyEncryption::pkcs12) |
                                    key_encryption_bit(KeyEncryption::pkcs5_pbes1) |
                                    key_encryption_bit(KeyEncryption::pbes2),
                 // Debian's build has no HAVE_SECRET_CALLBACK: no TLS 1.3
                 // secret reaches the application (log_tls12_keys).
                 .keylog_tls1_3 = false,
                 // Its certificate parser takes DER only: a BER length (the
                 // outer SEQUENCE's in four bytes) fails to load, and a
                 // peer's fails the handshake.
                 .ber_certificates = false},
    &wolfssl_ecdsa_p256};

}  // namespace unitls::detail
