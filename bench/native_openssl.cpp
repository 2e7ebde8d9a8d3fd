// OpenSSL used directly, as an OpenSSL application would, configured as
// unitls configures it (docs/benchmarks.md): same version, the groups (X25519
// first, one key share) and suites of unitls's default in its order (with the test PKI's ECDSA
// P-256 certificate: the same suite and group as unitls), no TLS 1.2
// tickets, stateless TLS 1.3 tickets.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench.hpp"

namespace bench {
namespace {

std::string openssl_reason(const char* what) {
  std::string text = std::string("OpenSSL: ") + what;
  if (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    text += std::string(": ") + buf;
  }
  ERR_clear_error();
  return text;
}

class OpenSslEndpoint final : public Endpoint {
 public:
  OpenSslEndpoint(SSL* ssl, const Link& link) : ssl_(ssl), link_(link) {}
  ~OpenSslEndpoint() override { release(); }

  Step handshake() override {
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) return Step::done;
    check_want(ret, "SSL_do_handshake");
    return Step::again;
  }

  std::size_t write(const void* data, std::size_t size) override {
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl_, data, size, &n);
    if (ret == 1) return n;
    check_want(ret, "SSL_write_ex");
    return 0;
  }

  std::size_t read(void* data, std::size_t size) override {
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl_, data, size, &n);
    if (ret == 1) return n;
    check_want(ret, "SSL_read_ex");
    return 0;
  }

  Step shutdown() override {
    const int ret = SSL_shutdown(ssl_);
    if (ret == 1) return Step::done;
    if (ret < 0) check_want(ret, "SSL_shutdown");
    return Step::again;
  }

  bool resumed() const override { return SSL_session_reused(ssl_) == 1; }
  std::string cipher() const override {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    const char* name = c ? SSL_CIPHER_standard_name(c) : nullptr;
    return name ? name : "";
  }
  // SSL_free keeps the session only when SENT is set.
  void mark_closed() override { SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); }
  void release() override {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }

  // A source/sink BIO over in-memory pipes.
  static int bio_read(BIO* bio, char* data, int size) {
    auto* self = static_cast<OpenSslEndpoint*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    const std::size_t n = size > 0 ? self->link_.in->read(data, static_cast<std::size_t>(size)) : 0;
    if (n > 0) return static_cast<int>(n);
    BIO_set_retry_read(bio);
    return -1;
  }
  static int bio_write(BIO* bio, const char* data, int size) {
    auto* self = static_cast<OpenSslEndpoint*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (size <= 0) return 0;
    self->link_.out->write(data, static_cast<std::size_t>(size));
    return size;
  }
  static long bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
  static int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

 private:
  // A native application reads SSL_get_error; with nothing else pushing
  // onto the error queue, it needs no ERR_clear_error before each call.
  void check_want(int ret, const char* call) const {
    const int err = SSL_get_error(ssl_, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    if (err == SSL_ERROR_ZERO_RETURN) fail(std::string("OpenSSL: ") + call + ": end of data");
    fail(openssl_reason(call));
  }

  SSL* ssl_;
  Link link_;
};

// One SSL_CTX per side; the client keeps the newest session itself
// (SSL_CTX_sess_set_new_cb) and hands it to each new connection with
// SSL_set_session; the server keeps its sessions in OpenSSL's own cache.
class OpenSslStack final : public Stack {
 public:
  OpenSslStack(const StackOptions& options, const Certs& certs)
      : tls13_(options.version == Version::tls1_3), sessions_(options.sessions) {
    const int v = tls13_ ? TLS1_3_VERSION : TLS1_2_VERSION;
    method_ = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bench pipes");
    if (!method_) fail(openssl_reason("BIO_meth_new"));
    BIO_meth_set_read(method_, &OpenSslEndpoint::bio_read);
    BIO_meth_set_write(method_, &OpenSslEndpoint::bio_write);
    BIO_meth_set_ctrl(method_, &OpenSslEndpoint::bio_ctrl);
    BIO_meth_set_create(method_, &OpenSslEndpoint::bio_create);

    client_ctx_ = SSL_CTX_new(TLS_client_method());
    server_ctx_ = SSL_CTX_new(TLS_server_method());
    if (!client_ctx_ || !server_ctx_) fail(openssl_reason("SSL_CTX_new"));
    for (SSL_CTX* ctx : {client_ctx_, server_ctx_}) {
      if (!SSL_CTX_set_min_proto_version(ctx, v) || !SSL_CTX_set_max_proto_version(ctx, v))
        fail(openssl_reason("SSL_CTX_set_min/max_proto_version"));
      // unitls's default lists (OpenSSL sends one key share, X25519's; an
      // OpenSSL TLS 1.2 server serves an ECDSA key only on a curve of its
      // own list, so P-256 must be there).
      if (!SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") ||
          !SSL_CTX_set_ciphersuites(
              ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") ||
          !SSL_CTX_set_cipher_list(ctx,
                                   "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                                   "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"))
        fail(openssl_reason("groups and suites"));
    }

    if (SSL_CTX_load_verify_locations(client_ctx_, certs.ca.c_str(), nullptr) != 1)
      fail(openssl_reason("SSL_CTX_load_verify_locations"));
    SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_app_data(client_ctx_, this);
    if (sessions_) {
      SSL_CTX_set_session_cache_mode(client_ctx_,
                                     SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(client_ctx_, &OpenSslStack::on_new_session);
    } else {
      SSL_CTX_set_session_cache_mode(client_ctx_, SSL_SESS_CACHE_OFF);
    }

    if (SSL_CTX_use_certificate_chain_file(server_ctx_, certs.certificate.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(server_ctx_, certs.key.c_str(), SSL_FILETYPE_PEM) != 1)
      fail(openssl_reason("server certificate"));
    static const unsigned char sid_ctx[] = "unitls-bench";
    SSL_CTX_set_session_id_context(server_ctx_, sid_ctx, sizeof sid_ctx - 1);
    // On a TLS 1.3 context this would make the tickets stateful.
    if (!tls13_) SSL_CTX_set_options(server_ctx_, SSL_OP_NO_TICKET);
  }

  ~OpenSslStack() override {
    SSL_SESSION_free(latest_);
    SSL_CTX_free(client_ctx_);
    SSL_CTX_free(server_ctx_);
    BIO_meth_free(method_);
  }

  std::unique_ptr<Endpoint> client(const Link& link) override {
    SSL* ssl = make_ssl(client_ctx_);
    auto endpoint = attach(ssl, link);
    SSL_set_connect_state(ssl);
    if (!SSL_set_tlsext_host_name(ssl, server_name) || !SSL_set1_host(ssl, server_name))
      fail(openssl_reason("server name"));
    if (latest_) {
      // OpenSSL makes a TLS 1.3 session single-use (RFC 8446 C.4): each
      // connection gets its own SSL_SESSION_dup, as unitls does.
      SSL_SESSION* offer = tls13_ ? SSL_SESSION_dup(latest_) : latest_;
      if (!offer || !SSL_set_session(ssl, offer)) fail(openssl_reason("SSL_set_session"));
      if (tls13_) SSL_SESSION_free(offer);  // the SSL holds its own reference
    }
    return endpoint;
  }

  std::unique_ptr<Endpoint> server(const Link& link) override {
    SSL* ssl = make_ssl(server_ctx_);
    auto endpoint = attach(ssl, link);
    SSL_set_accept_state(ssl);
    return endpoint;
  }

 private:
  static SSL* make_ssl(SSL_CTX* ctx) {
    SSL* ssl = SSL_new(ctx);
    if (!ssl) fail(openssl_reason("SSL_new"));
    return ssl;
  }

  std::unique_ptr<Endpoint> attach(SSL* ssl, const Link& link) {
    auto endpoint = std::make_unique<OpenSslEndpoint>(ssl, link);
    if (link.fd >= 0) {
      if (SSL_set_fd(ssl, link.fd) != 1) fail(openssl_reason("SSL_set_fd"));
      return endpoint;
    }
    BIO* bio = BIO_new(method_);
    if (!bio) fail(openssl_reason("BIO_new"));
    BIO_set_data(bio, endpoint.get());
    SSL_set_bio(ssl, bio, bio);
    return endpoint;
  }

  // The client's cache: one slot, the newest session. Returning 1 keeps
  // OpenSSL's reference.
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<OpenSslStack*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    if (!SSL_SESSION_is_resumable(session)) return 0;
    SSL_SESSION_free(self->latest_);
    self->latest_ = session;
    return 1;
  }

  BIO_METHOD* method_ = nullptr;
  SSL_CTX* client_ctx_ = nullptr;
  SSL_CTX* server_ctx_ = nullptr;
  SSL_SESSION* latest_ = nullptr;
  bool tls13_;
  bool sessions_;
};

}  // namespace

std::unique_ptr<Stack> make_native_openssl(const StackOptions& options, const Certs& certs) {
  return std::make_unique<OpenSslStack>(options, certs);
}

}  // namespace bench
