// GnuTLS used directly, as a GnuTLS application would, configured as unitls
// configures it (docs/benchmarks.md): NORMAL with X25519 alone (GnuTLS
// would send a second key share for any second group) and the suites of
// unitls's default in its order (with the test PKI's ECDSA P-256
// certificate: the same suite and group as unitls), no TLS 1.2 tickets
// (sessions by ID in the server's database), stateless TLS 1.3 tickets.
#include <cerrno>
#include <map>

#include <gnutls/gnutls.h>

#include "bench.hpp"

namespace bench {
namespace {

std::string gnutls_reason(const char* what, int ret) {
  return std::string("GnuTLS: ") + what + ": " + gnutls_strerror(ret);
}

class GnuTlsStack;

class GnuTlsEndpoint final : public Endpoint {
 public:
  GnuTlsEndpoint(GnuTlsStack& stack, gnutls_session_t session, bool client, const Link& link)
      : stack_(stack), session_(session), client_(client), link_(link) {}
  ~GnuTlsEndpoint() override { release(); }

  Step handshake() override;

  std::size_t write(const void* data, std::size_t size) override {
    const ssize_t ret = gnutls_record_send(session_, data, size);
    if (ret > 0) return static_cast<std::size_t>(ret);
    if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) return 0;
    fail(gnutls_reason("gnutls_record_send", static_cast<int>(ret)));
  }

  std::size_t read(void* data, std::size_t size) override {
    const ssize_t ret = gnutls_record_recv(session_, data, size);
    if (ticket_pending_) keep_ticket();
    if (ret > 0) return static_cast<std::size_t>(ret);
    if (ret == 0) fail("GnuTLS: gnutls_record_recv: end of data");
    if (ret == GNUTLS_E_AGAIN || !gnutls_error_is_fatal(static_cast<int>(ret))) return 0;
    fail(gnutls_reason("gnutls_record_recv", static_cast<int>(ret)));
  }

  Step shutdown() override {
    const int ret = gnutls_bye(session_, GNUTLS_SHUT_RDWR);
    if (ticket_pending_) keep_ticket();
    if (ret == GNUTLS_E_SUCCESS) return Step::done;
    if (ret == GNUTLS_E_AGAIN || !gnutls_error_is_fatal(ret)) return Step::again;
    fail(gnutls_reason("gnutls_bye", ret));
  }

  bool resumed() const override { return gnutls_session_is_resumed(session_) != 0; }
  std::string cipher() const override {
    const char* name = gnutls_ciphersuite_get(session_);
    return name ? name : "";
  }
  // GnuTLS removes no session on an improper close: nothing to mark.
  void mark_closed() override {}
  void release() override {
    if (session_) gnutls_deinit(session_);
    session_ = nullptr;
  }

  static ssize_t pull(gnutls_transport_ptr_t ptr, void* data, size_t size) {
    auto* self = static_cast<GnuTlsEndpoint*>(ptr);
    const std::size_t n = self->link_.in->read(data, size);
    if (n > 0) return static_cast<ssize_t>(n);
    gnutls_transport_set_errno(self->session_, EAGAIN);
    return -1;
  }
  static ssize_t push(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
    static_cast<GnuTlsEndpoint*>(ptr)->link_.out->write(data, size);
    return static_cast<ssize_t>(size);
  }
  static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int) {
    return static_cast<GnuTlsEndpoint*>(ptr)->link_.in->empty() ? 0 : 1;
  }

 private:
  // TLS 1.3: the session to keep exists once a ticket has arrived.
  void keep_ticket() {
    if (!(gnutls_session_get_flags(session_) & GNUTLS_SFLAGS_SESSION_TICKET)) return;
    ticket_pending_ = false;
    export_session();
  }
  void export_session();

  GnuTlsStack& stack_;
  gnutls_session_t session_;
  bool client_;
  bool ticket_pending_ = false;  // TLS 1.3 client: no NewSessionTicket seen yet
  Link link_;
};

// Shared credentials and priorities; the client keeps the newest session's
// data (gnutls_session_get_data2) and gives it to each new connection
// (gnutls_session_set_data); the server keeps TLS 1.2 sessions in its own
// database (gnutls_db_set_*).
class GnuTlsStack final : public Stack {
 public:
  GnuTlsStack(const StackOptions& options, const Certs& certs) : sessions_(options.sessions) {
    const char* priority =
        options.version == Version::tls1_3
            ? "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:-CIPHER-ALL:+AES-128-GCM:+"
              "AES-256-GCM:"
              "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"
            : "NORMAL:-VERS-ALL:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:-CIPHER-ALL:+AES-128-GCM:+"
              "AES-256-GCM:"
              "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA";
    int ret = gnutls_priority_init(&priority_, priority, nullptr);
    if (ret < 0) fail(gnutls_reason("gnutls_priority_init", ret));
    if ((ret = gnutls_certificate_allocate_credentials(&client_credentials_)) < 0 ||
        (ret = gnutls_certificate_allocate_credentials(&server_credentials_)) < 0)
      fail(gnutls_reason("gnutls_certificate_allocate_credentials", ret));
    if ((ret = gnutls_certificate_set_x509_trust_file(client_credentials_, certs.ca.c_str(),
                                                      GNUTLS_X509_FMT_PEM)) <= 0)
      fail(gnutls_reason("gnutls_certificate_set_x509_trust_file", ret));
    if ((ret = gnutls_certificate_set_x509_key_file(server_credentials_, certs.certificate.c_str(),
                                                    certs.key.c_str(), GNUTLS_X509_FMT_PEM)) < 0)
      fail(gnutls_reason("gnutls_certificate_set_x509_key_file", ret));
    if ((ret = gnutls_session_ticket_key_generate(&ticket_key_)) < 0)
      fail(gnutls_reason("gnutls_session_ticket_key_generate", ret));
  }

  ~GnuTlsStack() override {
    gnutls_free(latest_.data);
    gnutls_free(ticket_key_.data);
    gnutls_certificate_free_credentials(client_credentials_);
    gnutls_certificate_free_credentials(server_credentials_);
    gnutls_priority_deinit(priority_);
  }

  std::unique_ptr<Endpoint> client(const Link& link) override {
    gnutls_session_t session = init(GNUTLS_CLIENT, client_credentials_);
    auto endpoint = attach(session, true, link);
    int ret =
        gnutls_server_name_set(session, GNUTLS_NAME_DNS, server_name, std::strlen(server_name));
    if (ret < 0) fail(gnutls_reason("gnutls_server_name_set", ret));
    gnutls_session_set_verify_cert(session, server_name, 0);
    if (sessions_ && latest_.data &&
        (ret = gnutls_session_set_data(session, latest_.data, latest_.size)) < 0)
      fail(gnutls_reason("gnutls_session_set_data", ret));
    return endpoint;
  }

  std::unique_ptr<Endpoint> server(const Link& link) override {
    gnutls_session_t session = init(GNUTLS_SERVER | GNUTLS_NO_TICKETS_TLS12, server_credentials_);
    auto endpoint = attach(session, false, link);
    const int ret = gnutls_session_ticket_enable_server(session, &ticket_key_);
    if (ret < 0) fail(gnutls_reason("gnutls_session_ticket_enable_server", ret));
    gnutls_db_set_ptr(session, &database_);
    gnutls_db_set_retrieve_function(session, &GnuTlsStack::db_find);
    gnutls_db_set_store_function(session, &GnuTlsStack::db_store);
    gnutls_db_set_remove_function(session, &GnuTlsStack::db_remove);
    return endpoint;
  }

  bool sessions() const { return sessions_; }
  // The client's cache: one slot, the newest session.
  void keep(gnutls_datum_t data) {
    gnutls_free(latest_.data);
    latest_ = data;
  }

 private:
  using Database = std::map<std::string, std::string>;

  gnutls_session_t init(unsigned flags, gnutls_certificate_credentials_t credentials) {
    gnutls_session_t session = nullptr;
    int ret = gnutls_init(&session, flags | GNUTLS_NO_SIGNAL);
    if (ret < 0) fail(gnutls_reason("gnutls_init", ret));
    if ((ret = gnutls_priority_set(session, priority_)) < 0 ||
        (ret = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials)) < 0)
      fail(gnutls_reason("gnutls_priority_set/credentials_set", ret));
    gnutls_handshake_set_timeout(session, 0);
    return session;
  }

  std::unique_ptr<Endpoint> attach(gnutls_session_t session, bool client, const Link& link) {
    auto endpoint = std::make_unique<GnuTlsEndpoint>(*this, session, client, link);
    if (link.fd >= 0) {
      gnutls_transport_set_int(session, link.fd);
      return endpoint;
    }
    gnutls_transport_set_ptr(session, endpoint.get());
    gnutls_transport_set_pull_function(session, &GnuTlsEndpoint::pull);
    gnutls_transport_set_push_function(session, &GnuTlsEndpoint::push);
    gnutls_transport_set_pull_timeout_function(session, &GnuTlsEndpoint::pull_timeout);
    return endpoint;
  }

  static std::string bytes(gnutls_datum_t d) {
    return {reinterpret_cast<const char*>(d.data), d.size};
  }
  static gnutls_datum_t db_find(void* db, gnutls_datum_t key) {
    auto& database = *static_cast<Database*>(db);
    gnutls_datum_t out{};
    const auto it = database.find(bytes(key));
    if (it == database.end() || it->second.empty()) return out;
    out.data = static_cast<unsigned char*>(gnutls_malloc(it->second.size()));  // GnuTLS frees it
    if (!out.data) return out;
    std::memcpy(out.data, it->second.data(), it->second.size());
    out.size = static_cast<unsigned>(it->second.size());
    return out;
  }
  static int db_store(void* db, gnutls_datum_t key, gnutls_datum_t data) {
    (*static_cast<Database*>(db))[bytes(key)] = bytes(data);
    return 0;
  }
  static int db_remove(void* db, gnutls_datum_t key) {
    static_cast<Database*>(db)->erase(bytes(key));
    return 0;
  }

  bool sessions_;
  gnutls_priority_t priority_ = nullptr;
  gnutls_certificate_credentials_t client_credentials_ = nullptr;
  gnutls_certificate_credentials_t server_credentials_ = nullptr;
  gnutls_datum_t ticket_key_{};
  gnutls_datum_t latest_{};
  Database database_;
};

Step GnuTlsEndpoint::handshake() {
  const int ret = gnutls_handshake(session_);
  if (ret == GNUTLS_E_SUCCESS) {
    // TLS 1.3: a session to keep exists once a ticket arrived (read()).
    // TLS 1.2: now, unless this one resumed (the server sends no ticket).
    if (client_ && stack_.sessions()) {
      if (gnutls_protocol_get_version(session_) == GNUTLS_TLS1_3)
        ticket_pending_ = true;
      else if (!gnutls_session_is_resumed(session_))
        export_session();
    }
    return Step::done;
  }
  if (ret == GNUTLS_E_AGAIN || !gnutls_error_is_fatal(ret)) return Step::again;
  fail(gnutls_reason(client_ ? "client: gnutls_handshake" : "server: gnutls_handshake", ret));
}

void GnuTlsEndpoint::export_session() {
  gnutls_datum_t data{};
  if (gnutls_session_get_data2(session_, &data) == GNUTLS_E_SUCCESS && data.size > 0)
    stack_.keep(data);
  else
    gnutls_free(data.data);
}

}  // namespace

std::unique_ptr<Stack> make_native_gnutls(const StackOptions& options, const Certs& certs) {
  return std::make_unique<GnuTlsStack>(options, certs);
}

}  // namespace bench
