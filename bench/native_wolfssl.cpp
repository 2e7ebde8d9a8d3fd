// wolfSSL used directly, as a wolfSSL application would, configured as
// unitls configures it (docs/benchmarks.md): same version, the groups (X25519
// first, one key share) and suites of unitls's default in its order (with the
// test PKI's ECDSA P-256 certificate: the same suite and group as unitls), no
// TLS 1.2 tickets, stateless TLS 1.3 tickets.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfio.h>

#include <cstring>

#include "bench.hpp"

namespace bench {
namespace {

std::string wolfssl_reason(const char* what, int err) {
  char buf[WOLFSSL_MAX_ERROR_SZ] = {};
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(err), buf, sizeof buf);
  return std::string("wolfSSL: ") + what + ": " + buf;
}

class WolfSslEndpoint final : public Endpoint {
 public:
  WolfSslEndpoint(WOLFSSL* ssl, const Link& link) : ssl_(ssl), link_(link) {}
  ~WolfSslEndpoint() override { release(); }

  Step handshake() override {
    const int ret = wolfSSL_negotiate(ssl_);
    if (ret == WOLFSSL_SUCCESS) return Step::done;
    check_want(ret, "wolfSSL_negotiate");
    return Step::again;
  }

  std::size_t write(const void* data, std::size_t size) override {
    const int ret = wolfSSL_write(ssl_, data, static_cast<int>(size));
    if (ret > 0) return static_cast<std::size_t>(ret);
    check_want(ret, "wolfSSL_write");
    return 0;
  }

  std::size_t read(void* data, std::size_t size) override {
    const int ret = wolfSSL_read(ssl_, data, static_cast<int>(size));
    if (ret > 0) return static_cast<std::size_t>(ret);
    check_want(ret, "wolfSSL_read");
    return 0;
  }

  // The first call sends the close_notify and returns 0; later ones read
  // until the peer's arrives (0 meanwhile, never WANT_READ), then 1.
  Step shutdown() override {
    const int ret = wolfSSL_shutdown(ssl_);
    if (ret == WOLFSSL_SUCCESS) return Step::done;
    if (ret < 0) check_want(ret, "wolfSSL_shutdown");
    return Step::again;
  }

  bool resumed() const override { return wolfSSL_session_reused(ssl_) == 1; }
  std::string cipher() const override {
    const int suite = wolfSSL_get_current_cipher_suite(ssl_);
    const char* name = wolfSSL_get_cipher_name_iana_from_suite(static_cast<unsigned char>(suite >> 8),
                                                                static_cast<unsigned char>(suite));
    return name ? name : "";
  }
  // wolfSSL keeps its sessions whatever the close.
  void mark_closed() override {}
  void release() override {
    if (ssl_) wolfSSL_free(ssl_);
    ssl_ = nullptr;
  }

  // I/O callbacks over in-memory pipes.
  static int pipe_recv(WOLFSSL*, char* buf, int size, void* p) {
    auto* self = static_cast<WolfSslEndpoint*>(p);
    const std::size_t n = size > 0 ? self->link_.in->read(buf, static_cast<std::size_t>(size)) : 0;
    return n > 0 ? static_cast<int>(n) : WOLFSSL_CBIO_ERR_WANT_READ;
  }
  static int pipe_send(WOLFSSL*, char* buf, int size, void* p) {
    auto* self = static_cast<WolfSslEndpoint*>(p);
    if (size <= 0) return 0;
    self->link_.out->write(buf, static_cast<std::size_t>(size));
    return size;
  }

 private:
  void check_want(int ret, const char* call) const {
    const int err = wolfSSL_get_error(ssl_, ret);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_NONE) return;
    if (err == WOLFSSL_ERROR_ZERO_RETURN) fail(std::string("wolfSSL: ") + call + ": end of data");
    fail(wolfssl_reason(call, err));
  }

  WOLFSSL* ssl_;
  Link link_;
};

// One WOLFSSL_CTX per side; the client keeps the newest session itself
// (wolfSSL_CTX_sess_set_new_cb) and hands it to each new connection with
// wolfSSL_set_session; the server keeps its sessions in wolfSSL's own cache.
class WolfSslStack final : public Stack {
 public:
  WolfSslStack(const StackOptions& options, const Certs& certs)
      : tls13_(options.version == Version::tls1_3), sessions_(options.sessions) {
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) fail("wolfSSL: wolfSSL_Init failed");
    client_ctx_ = wolfSSL_CTX_new(tls13_ ? wolfTLSv1_3_client_method() : wolfTLSv1_2_client_method());
    server_ctx_ = wolfSSL_CTX_new(tls13_ ? wolfTLSv1_3_server_method() : wolfTLSv1_2_server_method());
    if (!client_ctx_ || !server_ctx_) fail("wolfSSL: wolfSSL_CTX_new failed");
    // unitls's default lists: X25519 first (its key share), then P-256 (the
    // curve of the test PKI's key) and P-384.
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
    for (WOLFSSL_CTX* ctx : {client_ctx_, server_ctx_}) {
      const int ret = tls13_ ? wolfSSL_CTX_set_groups(ctx, groups, 3) : WOLFSSL_SUCCESS;
      if (ret != WOLFSSL_SUCCESS ||
          (!tls13_ && (wolfSSL_CTX_UseSupportedCurve(ctx, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS ||
                       wolfSSL_CTX_UseSupportedCurve(ctx, WOLFSSL_ECC_SECP256R1) != WOLFSSL_SUCCESS ||
                       wolfSSL_CTX_UseSupportedCurve(ctx, WOLFSSL_ECC_SECP384R1) != WOLFSSL_SUCCESS)) ||
          wolfSSL_CTX_set_cipher_list(ctx,
                                      "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
                                      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305") != WOLFSSL_SUCCESS)
        fail("wolfSSL: groups and suites");
      wolfSSL_CTX_SetIORecv(ctx, &WolfSslEndpoint::pipe_recv);
      wolfSSL_CTX_SetIOSend(ctx, &WolfSslEndpoint::pipe_send);
    }

    if (wolfSSL_CTX_load_verify_locations(client_ctx_, certs.ca.c_str(), nullptr) != WOLFSSL_SUCCESS)
      fail("wolfSSL: wolfSSL_CTX_load_verify_locations");
    wolfSSL_CTX_set_verify(client_ctx_, WOLFSSL_VERIFY_PEER, nullptr);
    wolfSSL_CTX_set_ex_data(client_ctx_, 0, this);
    if (sessions_) {
      wolfSSL_CTX_set_session_cache_mode(client_ctx_, WOLFSSL_SESS_CACHE_CLIENT | WOLFSSL_SESS_CACHE_NO_INTERNAL);
      wolfSSL_CTX_sess_set_new_cb(client_ctx_, &WolfSslStack::on_new_session);
    } else {
      wolfSSL_CTX_set_session_cache_mode(client_ctx_, WOLFSSL_SESS_CACHE_OFF);
    }

    if (wolfSSL_CTX_use_certificate_chain_file(server_ctx_, certs.certificate.c_str()) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_PrivateKey_file(server_ctx_, certs.key.c_str(), WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
      fail("wolfSSL: server certificate");
    wolfSSL_CTX_set_verify(server_ctx_, WOLFSSL_VERIFY_NONE, nullptr);
    if (!tls13_) wolfSSL_CTX_NoTicketTLSv12(server_ctx_);
  }

  ~WolfSslStack() override {
    if (latest_) wolfSSL_SESSION_free(latest_);
    wolfSSL_CTX_free(client_ctx_);
    wolfSSL_CTX_free(server_ctx_);
  }

  std::unique_ptr<Endpoint> client(const Link& link) override {
    WOLFSSL* ssl = make_ssl(client_ctx_);
    auto endpoint = attach(ssl, link);
    if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, server_name, static_cast<unsigned short>(std::strlen(server_name))) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_check_domain_name(ssl, server_name) != WOLFSSL_SUCCESS)
      fail("wolfSSL: server name");
    if (latest_ && wolfSSL_set_session(ssl, latest_) != WOLFSSL_SUCCESS) fail("wolfSSL: wolfSSL_set_session");
    return endpoint;
  }

  std::unique_ptr<Endpoint> server(const Link& link) override {
    return attach(make_ssl(server_ctx_), link);
  }

 private:
  static WOLFSSL* make_ssl(WOLFSSL_CTX* ctx) {
    WOLFSSL* ssl = wolfSSL_new(ctx);
    if (!ssl) fail("wolfSSL: wolfSSL_new failed");
    return ssl;
  }

  std::unique_ptr<Endpoint> attach(WOLFSSL* ssl, const Link& link) {
    auto endpoint = std::make_unique<WolfSslEndpoint>(ssl, link);
    if (link.fd >= 0) {
      // The library's own socket I/O, as an application would use it.
      wolfSSL_SSLSetIORecv(ssl, EmbedReceive);
      wolfSSL_SSLSetIOSend(ssl, EmbedSend);
      if (wolfSSL_set_fd(ssl, link.fd) != WOLFSSL_SUCCESS) fail("wolfSSL: wolfSSL_set_fd");
      return endpoint;
    }
    wolfSSL_SetIOReadCtx(ssl, endpoint.get());
    wolfSSL_SetIOWriteCtx(ssl, endpoint.get());
    return endpoint;
  }

  // The client's cache: one slot, the newest session. Returning 1 keeps
  // wolfSSL's reference.
  static int on_new_session(WOLFSSL* ssl, WOLFSSL_SESSION* session) {
    auto* self = static_cast<WolfSslStack*>(wolfSSL_CTX_get_ex_data(wolfSSL_get_SSL_CTX(ssl), 0));
    if (self->latest_) wolfSSL_SESSION_free(self->latest_);
    self->latest_ = session;
    return 1;
  }

  WOLFSSL_CTX* client_ctx_ = nullptr;
  WOLFSSL_CTX* server_ctx_ = nullptr;
  WOLFSSL_SESSION* latest_ = nullptr;
  bool tls13_;
  bool sessions_;
};

}  // namespace

std::unique_ptr<Stack> make_native_wolfssl(const StackOptions& options, const Certs& certs) {
  return std::make_unique<WolfSslStack>(options, certs);
}

}  // namespace bench
