// mbedTLS 2.28 used directly, as an mbedTLS application would, configured
// as unitls configures it (docs/benchmarks.md): TLS 1.2 (all 2.28 has), the
// default preset with the groups and suites of unitls's default, in its
// order (with the test PKI's ECDSA P-256 certificate: the same suite
// and group as unitls), sessions by ID from the server's cache, no tickets.
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/x509_crt.h>

#include "bench.hpp"

namespace bench {
namespace {

std::string mbedtls_reason(const char* what, int ret) {
  char buf[200];
  mbedtls_strerror(ret, buf, sizeof buf);
  return std::string("mbedTLS: ") + what + ": " + buf;
}

bool want(int ret) { return ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE; }

class MbedTlsStack;

class MbedTlsEndpoint final : public Endpoint {
 public:
  MbedTlsEndpoint(MbedTlsStack& stack, bool client, const Link& link)
      : stack_(stack), client_(client), link_(link), ssl_(std::make_unique<mbedtls_ssl_context>()) {
    mbedtls_ssl_init(ssl_.get());
    net_.fd = link.fd;
  }
  ~MbedTlsEndpoint() override { release(); }

  mbedtls_ssl_context* ssl() { return ssl_.get(); }
  mbedtls_net_context* net() { return &net_; }
  // The session this client offers: resumed iff the server took its ID.
  void offered(const mbedtls_ssl_session& session) {
    offered_id_len_ = session.id_len;
    std::memcpy(offered_id_, session.id, session.id_len);
  }

  Step handshake() override;

  std::size_t write(const void* data, std::size_t size) override {
    const int ret = mbedtls_ssl_write(ssl_.get(), static_cast<const unsigned char*>(data), size);
    if (ret > 0) return static_cast<std::size_t>(ret);
    if (want(ret)) return 0;
    fail(mbedtls_reason("mbedtls_ssl_write", ret));
  }

  std::size_t read(void* data, std::size_t size) override {
    const int ret = mbedtls_ssl_read(ssl_.get(), static_cast<unsigned char*>(data), size);
    if (ret > 0) return static_cast<std::size_t>(ret);
    if (want(ret)) return 0;
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) fail("mbedTLS: read: end of data");
    fail(mbedtls_reason("mbedtls_ssl_read", ret));
  }

  // mbedTLS has no two-way close: send ours, then read until the peer's.
  Step shutdown() override {
    if (!sent_) {
      const int ret = mbedtls_ssl_close_notify(ssl_.get());
      if (want(ret)) return Step::again;
      if (ret != 0) fail(mbedtls_reason("mbedtls_ssl_close_notify", ret));
      sent_ = true;
    }
    unsigned char buf[256];
    const int ret = mbedtls_ssl_read(ssl_.get(), buf, sizeof buf);
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return Step::done;
    if (want(ret)) return Step::again;
    fail(ret > 0 ? std::string("mbedTLS: data after close_notify")
                 : mbedtls_reason("mbedtls_ssl_read (shutdown)", ret));
  }

  bool resumed() const override { return resumed_; }
  std::string cipher() const override {
    std::string name = mbedtls_ssl_get_ciphersuite(ssl_.get());
    for (char& c : name)
      if (c == '-') c = '_';
    return name;
  }
  // mbedTLS removes no session on an improper close: nothing to mark.
  void mark_closed() override {}
  // The context itself is heap-allocated and freed here too, like the
  // other stacks' connection objects.
  void release() override {
    if (!ssl_) return;
    mbedtls_ssl_free(ssl_.get());
    ssl_.reset();
  }

  static int pipe_send(void* p, const unsigned char* data, std::size_t size) {
    static_cast<MbedTlsEndpoint*>(p)->link_.out->write(data, size);
    return static_cast<int>(size);
  }
  static int pipe_recv(void* p, unsigned char* data, std::size_t size) {
    const std::size_t n = static_cast<MbedTlsEndpoint*>(p)->link_.in->read(data, size);
    return n > 0 ? static_cast<int>(n) : MBEDTLS_ERR_SSL_WANT_READ;
  }

 private:
  MbedTlsStack& stack_;
  bool client_;
  Link link_;
  mbedtls_net_context net_{};
  std::unique_ptr<mbedtls_ssl_context> ssl_;
  unsigned char offered_id_[32] = {};
  std::size_t offered_id_len_ = 0;
  bool resumed_ = false;
  bool sent_ = false;
};

// One configuration per side; the client keeps a copy of the newest session
// (mbedtls_ssl_get_session) and gives it to each new connection
// (mbedtls_ssl_set_session); the server resumes by session ID from
// mbedtls_ssl_cache.
class MbedTlsStack final : public Stack {
 public:
  MbedTlsStack(const StackOptions& options, const Certs& certs) : sessions_(options.sessions) {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    mbedtls_x509_crt_init(&ca_);
    mbedtls_x509_crt_init(&chain_);
    mbedtls_pk_init(&key_);
    mbedtls_ssl_config_init(&client_conf_);
    mbedtls_ssl_config_init(&server_conf_);
    mbedtls_ssl_cache_init(&cache_);
    mbedtls_ssl_session_init(&latest_);

    static const unsigned char personalization[] = "unitls-bench";
    int ret = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, personalization,
                                    sizeof personalization - 1);
    if (ret != 0) fail(mbedtls_reason("mbedtls_ctr_drbg_seed", ret));
    if ((ret = mbedtls_x509_crt_parse_file(&ca_, certs.ca.c_str())) != 0)
      fail(mbedtls_reason("ca file", ret));
    if ((ret = mbedtls_x509_crt_parse_file(&chain_, certs.certificate.c_str())) != 0)
      fail(mbedtls_reason("certificate file", ret));
    if ((ret = mbedtls_pk_parse_keyfile(&key_, certs.key.c_str(), nullptr)) != 0)
      fail(mbedtls_reason("key file", ret));

    // unitls's default lists: the same ClientHello and the same choices
    // (X25519 first; in TLS 1.2 the client's curves also bound the server
    // key's curve for mbedTLS, so P-256 must be there).
    static const int suites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                                 MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                                 MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                                 MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                                 MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                                 MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                                 0};
    static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_CURVE25519,
                                                  MBEDTLS_ECP_DP_SECP256R1,
                                                  MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};
    for (auto [conf, endpoint] : {std::pair{&client_conf_, MBEDTLS_SSL_IS_CLIENT},
                                  std::pair{&server_conf_, MBEDTLS_SSL_IS_SERVER}}) {
      ret = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT);
      if (ret != 0) fail(mbedtls_reason("mbedtls_ssl_config_defaults", ret));
      mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &drbg_);
      mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
      mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
      mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
      mbedtls_ssl_conf_ciphersuites(conf, suites);
      mbedtls_ssl_conf_curves(conf, curves);
    }
    mbedtls_ssl_conf_authmode(&client_conf_, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&client_conf_, &ca_, nullptr);
    mbedtls_ssl_conf_authmode(&server_conf_, MBEDTLS_SSL_VERIFY_NONE);
    if ((ret = mbedtls_ssl_conf_own_cert(&server_conf_, &chain_, &key_)) != 0)
      fail(mbedtls_reason("mbedtls_ssl_conf_own_cert", ret));
    mbedtls_ssl_conf_session_cache(&server_conf_, &cache_, mbedtls_ssl_cache_get,
                                   mbedtls_ssl_cache_set);
  }

  ~MbedTlsStack() override {
    mbedtls_ssl_session_free(&latest_);
    mbedtls_ssl_cache_free(&cache_);
    mbedtls_ssl_config_free(&server_conf_);
    mbedtls_ssl_config_free(&client_conf_);
    mbedtls_pk_free(&key_);
    mbedtls_x509_crt_free(&chain_);
    mbedtls_x509_crt_free(&ca_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }

  std::unique_ptr<Endpoint> client(const Link& link) override {
    auto endpoint = make(&client_conf_, true, link);
    int ret = mbedtls_ssl_set_hostname(endpoint->ssl(), server_name);
    if (ret != 0) fail(mbedtls_reason("mbedtls_ssl_set_hostname", ret));
    if (sessions_ && have_latest_) {
      if ((ret = mbedtls_ssl_set_session(endpoint->ssl(), &latest_)) != 0)
        fail(mbedtls_reason("mbedtls_ssl_set_session", ret));
      endpoint->offered(latest_);
    }
    return endpoint;
  }

  std::unique_ptr<Endpoint> server(const Link& link) override {
    return make(&server_conf_, false, link);
  }

  bool sessions() const { return sessions_; }
  // The client's cache: one slot, a copy of the newest session.
  void keep(const mbedtls_ssl_context* ssl) {
    mbedtls_ssl_session_free(&latest_);
    mbedtls_ssl_session_init(&latest_);
    have_latest_ = mbedtls_ssl_get_session(ssl, &latest_) == 0;
  }

 private:
  std::unique_ptr<MbedTlsEndpoint> make(const mbedtls_ssl_config* conf, bool client,
                                        const Link& link) {
    auto endpoint = std::make_unique<MbedTlsEndpoint>(*this, client, link);
    const int ret = mbedtls_ssl_setup(endpoint->ssl(), conf);
    if (ret != 0) fail(mbedtls_reason("mbedtls_ssl_setup", ret));
    if (link.fd >= 0)
      mbedtls_ssl_set_bio(endpoint->ssl(), endpoint->net(), mbedtls_net_send, mbedtls_net_recv,
                          nullptr);
    else
      mbedtls_ssl_set_bio(endpoint->ssl(), endpoint.get(), &MbedTlsEndpoint::pipe_send,
                          &MbedTlsEndpoint::pipe_recv, nullptr);
    return endpoint;
  }

  bool sessions_;
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  mbedtls_x509_crt ca_, chain_;
  mbedtls_pk_context key_;
  mbedtls_ssl_config client_conf_, server_conf_;
  mbedtls_ssl_cache_context cache_;
  mbedtls_ssl_session latest_;
  bool have_latest_ = false;
};

Step MbedTlsEndpoint::handshake() {
  const int ret = mbedtls_ssl_handshake(ssl_.get());
  if (want(ret)) return Step::again;
  if (ret != 0)
    fail(mbedtls_reason(client_ ? "client: mbedtls_ssl_handshake" : "server: mbedtls_ssl_handshake",
                        ret));
  if (client_ && stack_.sessions()) {
    // A server that resumes answers with the offered session ID (RFC 5246
    // 7.4.1.3); a resumption makes no new session to keep.
    const mbedtls_ssl_session* s = ssl_->session;
    resumed_ = offered_id_len_ > 0 && s->id_len == offered_id_len_ &&
               std::memcmp(s->id, offered_id_, offered_id_len_) == 0;
    if (!resumed_) stack_.keep(ssl_.get());
  }
  return Step::done;
}

}  // namespace

std::unique_ptr<Stack> make_native_mbedtls(const StackOptions& options, const Certs& certs) {
  if (options.version != Version::tls1_2) return nullptr;
  return std::make_unique<MbedTlsStack>(options, certs);
}

}  // namespace bench
