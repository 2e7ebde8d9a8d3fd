// idle_memory: the heap an idle client connection holds, unitls against
// each TLS stack's own API (docs/benchmarks.md, "Idle memory per
// connection").
//
// For each compiled-in backend, twice (unitls, then the stack used
// directly, doing the same work): open N client/server pairs over in-memory
// pipes, complete every handshake, send one small message each way (so that
// TLS 1.3 tickets have arrived) and keep all N open and idle. Then free the
// N server connections, then the N client connections; the drop in the heap
// in use (glibc's mallinfo2) when the clients go, divided by N, is what one
// idle client connection holds. A second round opens N more connections
// after the first N were closed properly: each is offered the client's
// cached session and resumes, which is where a connection holding a private
// copy of its session would show.
//
//   idle_memory [--connections N] [--certs DIR] [--tls best|1.2|1.3|all]
//               [--backend NAME] [--only unitls|native] [--verbose]
//               [--massif-dir DIR]
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unitls/unitls.hpp>

// Optional: detailed heap snapshots when run under valgrind's massif.
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define IDLE_MEMORY_VALGRIND 1
#endif

#ifdef HAVE_OPENSSL
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif
#ifdef HAVE_GNUTLS
#include <gnutls/gnutls.h>
#endif
#ifdef HAVE_MBEDTLS
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/x509_crt.h>
#endif

namespace {

using unitls::Version;

constexpr const char* server_name = "localhost";  // the name server.pem is for

std::string version_name(Version v) { return v == Version::tls1_3 ? "1.3" : "1.2"; }

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

// ---- heap accounting ---------------------------------------------------------

// Bytes handed out by malloc and not yet freed, chunk overhead included
// (what a connection really costs), in every arena and in mmap'd blocks.
std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Whether valgrind runs the program (it replaces malloc: mallinfo2 then says
// nothing, and a program it runs cannot exec itself).
bool under_valgrind() {
#ifdef IDLE_MEMORY_VALGRIND
  if (RUNNING_ON_VALGRIND) return true;
#endif
  const char* preload = std::getenv("LD_PRELOAD");
  return preload && std::strstr(preload, "vgpreload");
}

// glibc's per-thread cache (tcache) keeps up to 7 freed chunks of each small
// size that mallinfo2() still counts as in use, so a drop measured by freeing
// would come out short (by up to ~240 KiB in all). glibc reads the tunable
// that turns it off only at start-up: the program starts itself again once,
// with it set. If that fails, it measures anyway.
void restart_without_tcache(char** argv) {
  constexpr std::string_view tunable = "glibc.malloc.tcache_count";
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string tunables = current ? current : "";
  if (tunables.find(tunable) != std::string::npos || under_valgrind()) return;
  if (!tunables.empty()) tunables += ':';
  tunables += std::string(tunable) + "=0";
  ::setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  ::execv("/proc/self/exe", argv);
  std::fprintf(stderr,
               "idle_memory: cannot restart with %s=0 (%s): figures may be up to ~100 bytes low\n",
               std::string(tunable).c_str(), std::strerror(errno));
}

// Under valgrind --tool=massif with --massif-dir: a detailed snapshot of the
// heap into DIR/<label>.massif (ms_print reads it), to see which call sites
// hold the bytes.
void massif_snapshot(const std::string& dir, const std::string& label) {
#ifdef IDLE_MEMORY_VALGRIND
  if (dir.empty() || !RUNNING_ON_VALGRIND) return;
  const std::string command = "detailed_snapshot " + dir + "/" + label + ".massif";
  VALGRIND_MONITOR_COMMAND(command.c_str());
#else
  (void)dir;
  (void)label;
#endif
}

// ---- the in-memory pipes -------------------------------------------------------

// One direction of a connection. The same pipes carry unitls (through a
// Transport) and each native stack (through its own I/O callbacks), so the
// transport costs both sides the same: nothing, once drained.
class Pipe {
 public:
  void write(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }

  // Up to size bytes; 0 when nothing is buffered.
  std::size_t read(void* out, std::size_t size) {
    const std::size_t n = std::min(size, bytes_.size() - head_);
    if (n == 0) return 0;
    std::memcpy(out, bytes_.data() + head_, n);
    head_ += n;
    if (head_ == bytes_.size()) {
      // Drained: the memory goes back, so that an idle connection's pipes
      // hold no heap and only the TLS objects are measured.
      std::vector<unsigned char>().swap(bytes_);
      head_ = 0;
    }
    return n;
  }

  bool empty() const { return head_ == bytes_.size(); }

 private:
  std::vector<unsigned char> bytes_;
  std::size_t head_ = 0;
};

struct Pipes {
  Pipe to_server, to_client;
};

// ---- one side of a connection, whichever library runs it ----------------------

enum class Step { done, again };

class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // One handshake call; throws on failure.
  virtual Step handshake() = 0;
  // All of text (the pipes take everything).
  virtual void send(std::string_view text) = 0;
  // What one read call gave ("" when nothing yet); throws on failure.
  virtual std::string receive(std::size_t max) = 0;
  virtual bool resumed() const = 0;
  // A proper close that puts nothing on the wire (SENT set without sending,
  // where the library keeps that flag): the session stays resumable.
  virtual void mark_closed() = 0;
  // Frees the connection's TLS objects. The Endpoint itself stays, so that
  // the heap drop measured is the connection's alone.
  virtual void release() = 0;
};

// A library set up for one version: its client and server configuration
// (contexts, credentials, the client's session cache), shared by every
// connection it opens.
class Stack {
 public:
  virtual ~Stack() = default;
  // A connection over pipes, not yet handshaken.
  virtual std::unique_ptr<Endpoint> client(Pipes& pipes) = 0;
  virtual std::unique_ptr<Endpoint> server(Pipes& pipes) = 0;
};

struct Certs {
  std::string ca, certificate, key;
};

// ---- unitls ---------------------------------------------------------------------

// The pipes as a unitls Transport (the public API's way to run over any
// byte stream). make_memory_pair() is not used: its buffers keep their
// capacity when drained, which would be counted against unitls only.
class PipeTransport final : public unitls::Transport {
 public:
  PipeTransport(Pipe& in, Pipe& out) : in_(in), out_(out) {}

  std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) override {
    const std::size_t n = buf.empty() ? 0 : in_.read(buf.data(), buf.size());
    if (n == 0) {
      ec = unitls::make_error_code(buf.empty() ? unitls::errc::invalid_argument
                                               : unitls::errc::want_read);
      return -1;
    }
    ec.clear();
    return static_cast<std::ptrdiff_t>(n);
  }

  std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) override {
    out_.write(buf.data(), buf.size());
    ec.clear();
    return static_cast<std::ptrdiff_t>(buf.size());
  }

 private:
  Pipe& in_;
  Pipe& out_;
};

class UnitlsEndpoint final : public Endpoint {
 public:
  UnitlsEndpoint(std::unique_ptr<unitls::SecureSocket> socket, const char* side)
      : socket_(std::move(socket)), side_(side) {
    if (!socket_) fail(std::string("unitls ") + side_ + ": Context::wrap returned nullptr");
  }

  Step handshake() override {
    if (socket_->handshake() == 1) return Step::done;
    check_want("handshake");
    return Step::again;
  }

  void send(std::string_view text) override {
    for (int i = 0; i < 16 && !text.empty(); ++i) {
      const std::ptrdiff_t n = socket_->write(text);
      if (n <= 0)
        check_want("write");
      else
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    if (!text.empty()) fail(std::string("unitls ") + side_ + ": write does not finish");
  }

  std::string receive(std::size_t max) override {
    std::string out(max, '\0');
    const std::ptrdiff_t n = socket_->read(std::as_writable_bytes(std::span<char>(out)));
    if (n <= 0) {
      if (n == 0) fail(std::string("unitls ") + side_ + ": read: end of data");
      check_want("read");
      return "";
    }
    out.resize(static_cast<std::size_t>(n));
    return out;
  }

  bool resumed() const override { return socket_->session_reused(); }
  void mark_closed() override {
    socket_->set_shutdown(unitls::sent_shutdown | unitls::received_shutdown);
  }
  void release() override { socket_.reset(); }

 private:
  void check_want(const char* call) const {
    const std::error_code ec = socket_->last_error();
    if (ec == unitls::errc::want_read || ec == unitls::errc::want_write) return;
    fail(std::string("unitls ") + side_ + ": " + call + ": " + ec.message() + " (" +
         socket_->native_error().message() + ")");
  }

  std::unique_ptr<unitls::SecureSocket> socket_;
  const char* side_;
};

class UnitlsStack final : public Stack {
 public:
  UnitlsStack(std::string_view backend, Version version, const Certs& certs) {
    unitls::Config client;
    client.role = unitls::Role::client;
    client.backend = std::string(backend);
    client.ca_file = certs.ca;
    client.server_name = server_name;
    client.min_version = client.max_version = version;
    client.session_cache = true;
    unitls::Config server;
    server.role = unitls::Role::server;
    server.backend = std::string(backend);
    server.certificate_file = certs.certificate;
    server.private_key_file = certs.key;
    server.verify_peer = false;
    server.min_version = server.max_version = version;
    client_ = make(client);
    server_ = make(server);
  }

  std::unique_ptr<Endpoint> client(Pipes& pipes) override {
    return std::make_unique<UnitlsEndpoint>(
        client_->wrap(std::make_unique<PipeTransport>(pipes.to_client, pipes.to_server)), "client");
  }
  std::unique_ptr<Endpoint> server(Pipes& pipes) override {
    return std::make_unique<UnitlsEndpoint>(
        server_->wrap(std::make_unique<PipeTransport>(pipes.to_server, pipes.to_client)), "server");
  }

  // Whether the backend can make contexts for exactly this version (false:
  // unsupported, as TLS 1.3 on mbedTLS 2.28).
  static bool supports(std::string_view backend, Version version, const Certs& certs) {
    unitls::Config c;
    c.backend = std::string(backend);
    c.ca_file = certs.ca;
    c.server_name = server_name;
    c.min_version = c.max_version = version;
    std::error_code ec;
    std::string message;
    if (unitls::Context::create(c, ec, &message)) return true;
    if (ec == unitls::errc::unsupported) return false;
    fail("unitls: Context::create: " + message);
  }

 private:
  static std::unique_ptr<unitls::Context> make(const unitls::Config& config) {
    std::error_code ec;
    std::string message;
    auto context = unitls::Context::create(config, ec, &message);
    if (!context) fail("unitls: Context::create: " + message);
    return context;
  }

  std::unique_ptr<unitls::Context> client_, server_;
};

// ---- OpenSSL, directly -------------------------------------------------------------
#ifdef HAVE_OPENSSL

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
  OpenSslEndpoint(SSL* ssl, Pipe& in, Pipe& out) : ssl_(ssl), in_(in), out_(out) {}
  ~OpenSslEndpoint() override { release(); }

  Step handshake() override {
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) return Step::done;
    check_want(ret, "SSL_do_handshake");
    return Step::again;
  }

  void send(std::string_view text) override {
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl_, text.data(), text.size(), &n);
    if (ret != 1 || n != text.size()) fail(openssl_reason("SSL_write_ex"));
  }

  std::string receive(std::size_t max) override {
    std::string out(max, '\0');
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl_, out.data(), out.size(), &n);
    if (ret != 1) {
      check_want(ret, "SSL_read_ex");
      return "";
    }
    out.resize(n);
    return out;
  }

  bool resumed() const override { return SSL_session_reused(ssl_) == 1; }
  // SSL_free keeps the session only when SENT is set.
  void mark_closed() override { SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); }
  void release() override {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }

  // A source/sink BIO over the pipes (unitls's OpenSSL engine has one over
  // its transport too).
  static int bio_read(BIO* bio, char* data, int size) {
    auto* self = static_cast<OpenSslEndpoint*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    const std::size_t n = size > 0 ? self->in_.read(data, static_cast<std::size_t>(size)) : 0;
    if (n > 0) return static_cast<int>(n);
    BIO_set_retry_read(bio);
    return -1;
  }
  static int bio_write(BIO* bio, const char* data, int size) {
    auto* self = static_cast<OpenSslEndpoint*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (size <= 0) return 0;
    self->out_.write(data, static_cast<std::size_t>(size));
    return size;
  }
  static long bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
  static int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

 private:
  void check_want(int ret, const char* call) const {
    const int err = SSL_get_error(ssl_, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    fail(openssl_reason(call));
  }

  SSL* ssl_;
  Pipe& in_;
  Pipe& out_;
};

// What an OpenSSL application does: one SSL_CTX per side; the client keeps
// the newest session itself (SSL_CTX_sess_set_new_cb) and hands it to each
// new connection with SSL_set_session, which shares it (a reference, no
// copy; under TLS 1.3 a shallow copy, see client()); the server keeps its
// sessions in OpenSSL's own cache. As unitls
// configures OpenSSL: no TLS 1.2 tickets, TLS 1.3 tickets stateless.
class OpenSslStack final : public Stack {
 public:
  OpenSslStack(Version version, const Certs& certs) : tls13_(version == Version::tls1_3) {
    const int v = version == Version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
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
    }

    if (SSL_CTX_load_verify_locations(client_ctx_, certs.ca.c_str(), nullptr) != 1)
      fail(openssl_reason("SSL_CTX_load_verify_locations"));
    SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_app_data(client_ctx_, this);
    SSL_CTX_set_session_cache_mode(client_ctx_,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(client_ctx_, &OpenSslStack::on_new_session);

    if (SSL_CTX_use_certificate_chain_file(server_ctx_, certs.certificate.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(server_ctx_, certs.key.c_str(), SSL_FILETYPE_PEM) != 1)
      fail(openssl_reason("server certificate"));
    static const unsigned char sid_ctx[] = "idle_memory";
    SSL_CTX_set_session_id_context(server_ctx_, sid_ctx, sizeof sid_ctx - 1);
    // On a TLS 1.3 context this would make the tickets stateful.
    if (version == Version::tls1_2) SSL_CTX_set_options(server_ctx_, SSL_OP_NO_TICKET);
  }

  ~OpenSslStack() override {
    SSL_SESSION_free(latest_);
    SSL_CTX_free(client_ctx_);
    SSL_CTX_free(server_ctx_);
    BIO_meth_free(method_);
  }

  std::unique_ptr<Endpoint> client(Pipes& pipes) override {
    SSL* ssl = make_ssl(client_ctx_);
    auto endpoint = attach(ssl, pipes.to_client, pipes.to_server);
    SSL_set_connect_state(ssl);
    if (!SSL_set_tlsext_host_name(ssl, server_name) || !SSL_set1_host(ssl, server_name))
      fail(openssl_reason("server name"));
    if (latest_) {
      // OpenSSL makes a TLS 1.3 session single-use: once a connection has
      // resumed with it, it is marked not resumable (RFC 8446 C.4: a ticket
      // for one connection), and every other connection that shares it does
      // a full handshake. So under TLS 1.3 each connection gets its own
      // SSL_SESSION_dup, which still shares the certificates (references).
      SSL_SESSION* offer = tls13_ ? SSL_SESSION_dup(latest_) : latest_;
      if (!offer || !SSL_set_session(ssl, offer)) fail(openssl_reason("SSL_set_session"));
      if (tls13_) SSL_SESSION_free(offer);  // the SSL holds its own reference
    }
    return endpoint;
  }

  std::unique_ptr<Endpoint> server(Pipes& pipes) override {
    SSL* ssl = make_ssl(server_ctx_);
    auto endpoint = attach(ssl, pipes.to_server, pipes.to_client);
    SSL_set_accept_state(ssl);
    return endpoint;
  }

 private:
  static SSL* make_ssl(SSL_CTX* ctx) {
    SSL* ssl = SSL_new(ctx);
    if (!ssl) fail(openssl_reason("SSL_new"));
    return ssl;
  }

  std::unique_ptr<Endpoint> attach(SSL* ssl, Pipe& in, Pipe& out) {
    auto endpoint = std::make_unique<OpenSslEndpoint>(ssl, in, out);
    BIO* bio = BIO_new(method_);
    if (!bio) fail(openssl_reason("BIO_new"));
    BIO_set_data(bio, endpoint.get());
    SSL_set_bio(ssl, bio, bio);
    return endpoint;
  }

  // The client's cache: one slot, the newest session (unitls's cache keeps
  // one per server name too). Returning 1 keeps OpenSSL's reference.
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
};

#endif  // HAVE_OPENSSL

// ---- GnuTLS, directly ----------------------------------------------------------------
#ifdef HAVE_GNUTLS

std::string gnutls_reason(const char* what, int ret) {
  return std::string("GnuTLS: ") + what + ": " + gnutls_strerror(ret);
}

class GnuTlsStack;

class GnuTlsEndpoint final : public Endpoint {
 public:
  GnuTlsEndpoint(GnuTlsStack& stack, gnutls_session_t session, bool client, Pipe& in, Pipe& out)
      : stack_(stack), session_(session), client_(client), in_(in), out_(out) {}
  ~GnuTlsEndpoint() override { release(); }

  Step handshake() override;

  void send(std::string_view text) override {
    const ssize_t ret = gnutls_record_send(session_, text.data(), text.size());
    if (ret != static_cast<ssize_t>(text.size()))
      fail(gnutls_reason("gnutls_record_send", static_cast<int>(ret)));
  }

  std::string receive(std::size_t max) override;

  bool resumed() const override { return gnutls_session_is_resumed(session_) != 0; }
  // GnuTLS removes no session on an improper close: nothing to mark.
  void mark_closed() override {}
  void release() override {
    if (session_) gnutls_deinit(session_);
    session_ = nullptr;
  }

  static ssize_t pull(gnutls_transport_ptr_t ptr, void* data, size_t size) {
    auto* self = static_cast<GnuTlsEndpoint*>(ptr);
    const std::size_t n = self->in_.read(data, size);
    if (n > 0) return static_cast<ssize_t>(n);
    gnutls_transport_set_errno(self->session_, EAGAIN);
    return -1;
  }
  static ssize_t push(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
    static_cast<GnuTlsEndpoint*>(ptr)->out_.write(data, size);
    return static_cast<ssize_t>(size);
  }
  static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int) {
    return static_cast<GnuTlsEndpoint*>(ptr)->in_.empty() ? 0 : 1;
  }

 private:
  void export_session();

  GnuTlsStack& stack_;
  gnutls_session_t session_;
  bool client_;
  bool ticket_pending_ = false;  // TLS 1.3 client: no NewSessionTicket seen yet
  Pipe& in_;
  Pipe& out_;
};

// What a GnuTLS application does: shared credentials and priorities; the
// client keeps the newest session's data (gnutls_session_get_data2) and
// gives it to each new connection (gnutls_session_set_data); the server
// keeps TLS 1.2 sessions in its own database (gnutls_db_set_*), issues no
// TLS 1.2 tickets and stateless TLS 1.3 tickets, as unitls configures it.
class GnuTlsStack final : public Stack {
 public:
  GnuTlsStack(Version version, const Certs& certs) {
    const char* priority = version == Version::tls1_3 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                                      : "NORMAL:-VERS-ALL:+VERS-TLS1.2";
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

  std::unique_ptr<Endpoint> client(Pipes& pipes) override {
    gnutls_session_t session = init(GNUTLS_CLIENT, client_credentials_);
    auto endpoint = attach(session, true, pipes.to_client, pipes.to_server);
    int ret =
        gnutls_server_name_set(session, GNUTLS_NAME_DNS, server_name, std::strlen(server_name));
    if (ret < 0) fail(gnutls_reason("gnutls_server_name_set", ret));
    gnutls_session_set_verify_cert(session, server_name, 0);
    if (latest_.data && (ret = gnutls_session_set_data(session, latest_.data, latest_.size)) < 0)
      fail(gnutls_reason("gnutls_session_set_data", ret));
    return endpoint;
  }

  std::unique_ptr<Endpoint> server(Pipes& pipes) override {
    gnutls_session_t session = init(GNUTLS_SERVER | GNUTLS_NO_TICKETS_TLS12, server_credentials_);
    auto endpoint = attach(session, false, pipes.to_server, pipes.to_client);
    const int ret = gnutls_session_ticket_enable_server(session, &ticket_key_);
    if (ret < 0) fail(gnutls_reason("gnutls_session_ticket_enable_server", ret));
    gnutls_db_set_ptr(session, &database_);
    gnutls_db_set_retrieve_function(session, &GnuTlsStack::db_find);
    gnutls_db_set_store_function(session, &GnuTlsStack::db_store);
    gnutls_db_set_remove_function(session, &GnuTlsStack::db_remove);
    return endpoint;
  }

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

  std::unique_ptr<Endpoint> attach(gnutls_session_t session, bool client, Pipe& in, Pipe& out) {
    auto endpoint = std::make_unique<GnuTlsEndpoint>(*this, session, client, in, out);
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
    // TLS 1.3: a session to keep exists once a ticket arrived (receive()).
    // TLS 1.2: now, unless this one resumed (the server sends no ticket).
    if (client_) {
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

std::string GnuTlsEndpoint::receive(std::size_t max) {
  std::string out(max, '\0');
  const ssize_t ret = gnutls_record_recv(session_, out.data(), out.size());
  if (ticket_pending_ && (gnutls_session_get_flags(session_) & GNUTLS_SFLAGS_SESSION_TICKET)) {
    ticket_pending_ = false;
    export_session();
  }
  if (ret > 0) {
    out.resize(static_cast<std::size_t>(ret));
    return out;
  }
  if (ret == 0) fail("GnuTLS: gnutls_record_recv: end of data");
  if (ret == GNUTLS_E_AGAIN || !gnutls_error_is_fatal(static_cast<int>(ret))) return "";
  fail(gnutls_reason("gnutls_record_recv", static_cast<int>(ret)));
}

void GnuTlsEndpoint::export_session() {
  gnutls_datum_t data{};
  if (gnutls_session_get_data2(session_, &data) == GNUTLS_E_SUCCESS && data.size > 0)
    stack_.keep(data);
  else
    gnutls_free(data.data);
}

#endif  // HAVE_GNUTLS

// ---- mbedTLS 2.28, directly ----------------------------------------------------------
#ifdef HAVE_MBEDTLS

std::string mbedtls_reason(const char* what, int ret) {
  char buf[200];
  mbedtls_strerror(ret, buf, sizeof buf);
  return std::string("mbedTLS: ") + what + ": " + buf;
}

class MbedTlsStack;

class MbedTlsEndpoint final : public Endpoint {
 public:
  MbedTlsEndpoint(MbedTlsStack& stack, bool client, Pipe& in, Pipe& out)
      : stack_(stack),
        client_(client),
        in_(in),
        out_(out),
        ssl_(std::make_unique<mbedtls_ssl_context>()) {
    mbedtls_ssl_init(ssl_.get());
  }
  ~MbedTlsEndpoint() override { release(); }

  mbedtls_ssl_context* ssl() { return ssl_.get(); }
  // The session this client offers: resumed iff the server took its ID.
  void offered(const mbedtls_ssl_session& session) {
    offered_id_len_ = session.id_len;
    std::memcpy(offered_id_, session.id, session.id_len);
  }

  Step handshake() override;

  void send(std::string_view text) override {
    const int ret = mbedtls_ssl_write(
        ssl_.get(), reinterpret_cast<const unsigned char*>(text.data()), text.size());
    if (ret != static_cast<int>(text.size())) fail(mbedtls_reason("mbedtls_ssl_write", ret));
  }

  std::string receive(std::size_t max) override {
    std::string out(max, '\0');
    const int ret =
        mbedtls_ssl_read(ssl_.get(), reinterpret_cast<unsigned char*>(out.data()), out.size());
    if (ret > 0) {
      out.resize(static_cast<std::size_t>(ret));
      return out;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) return "";
    fail(mbedtls_reason("mbedtls_ssl_read", ret));
  }

  bool resumed() const override { return resumed_; }
  // mbedTLS removes no session on an improper close: nothing to mark.
  void mark_closed() override {}
  // The context itself is heap-allocated and freed here too, like the
  // other stacks' connection objects.
  void release() override {
    if (!ssl_) return;
    mbedtls_ssl_free(ssl_.get());
    ssl_.reset();
  }

  static int bio_send(void* p, const unsigned char* data, std::size_t size) {
    static_cast<MbedTlsEndpoint*>(p)->out_.write(data, size);
    return static_cast<int>(size);
  }
  static int bio_recv(void* p, unsigned char* data, std::size_t size) {
    const std::size_t n = static_cast<MbedTlsEndpoint*>(p)->in_.read(data, size);
    return n > 0 ? static_cast<int>(n) : MBEDTLS_ERR_SSL_WANT_READ;
  }

 private:
  MbedTlsStack& stack_;
  bool client_;
  Pipe& in_;
  Pipe& out_;
  std::unique_ptr<mbedtls_ssl_context> ssl_;
  unsigned char offered_id_[32] = {};
  std::size_t offered_id_len_ = 0;
  bool resumed_ = false;
};

// What an mbedTLS application does: one configuration per side; the client
// keeps a copy of the newest session (mbedtls_ssl_get_session) and gives it
// to each new connection (mbedtls_ssl_set_session, which copies it: mbedTLS
// has no shared sessions); the server resumes by session ID from
// mbedtls_ssl_cache. TLS 1.2 only, no tickets from the server, as in unitls.
class MbedTlsStack final : public Stack {
 public:
  MbedTlsStack(const Certs& certs) {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    mbedtls_x509_crt_init(&ca_);
    mbedtls_x509_crt_init(&chain_);
    mbedtls_pk_init(&key_);
    mbedtls_ssl_config_init(&client_conf_);
    mbedtls_ssl_config_init(&server_conf_);
    mbedtls_ssl_cache_init(&cache_);
    mbedtls_ssl_session_init(&latest_);

    static const unsigned char personalization[] = "idle_memory";
    int ret = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, personalization,
                                    sizeof personalization - 1);
    if (ret != 0) fail(mbedtls_reason("mbedtls_ctr_drbg_seed", ret));
    if ((ret = mbedtls_x509_crt_parse_file(&ca_, certs.ca.c_str())) != 0)
      fail(mbedtls_reason("ca file", ret));
    if ((ret = mbedtls_x509_crt_parse_file(&chain_, certs.certificate.c_str())) != 0)
      fail(mbedtls_reason("certificate file", ret));
    if ((ret = mbedtls_pk_parse_keyfile(&key_, certs.key.c_str(), nullptr)) != 0)
      fail(mbedtls_reason("key file", ret));

    for (auto [conf, endpoint] : {std::pair{&client_conf_, MBEDTLS_SSL_IS_CLIENT},
                                  std::pair{&server_conf_, MBEDTLS_SSL_IS_SERVER}}) {
      ret = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT);
      if (ret != 0) fail(mbedtls_reason("mbedtls_ssl_config_defaults", ret));
      mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &drbg_);
      mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
      mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
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

  std::unique_ptr<Endpoint> client(Pipes& pipes) override {
    auto endpoint = make(&client_conf_, true, pipes.to_client, pipes.to_server);
    int ret = mbedtls_ssl_set_hostname(endpoint->ssl(), server_name);
    if (ret != 0) fail(mbedtls_reason("mbedtls_ssl_set_hostname", ret));
    if (have_latest_) {
      if ((ret = mbedtls_ssl_set_session(endpoint->ssl(), &latest_)) != 0)
        fail(mbedtls_reason("mbedtls_ssl_set_session", ret));
      endpoint->offered(latest_);
    }
    return endpoint;
  }

  std::unique_ptr<Endpoint> server(Pipes& pipes) override {
    return make(&server_conf_, false, pipes.to_server, pipes.to_client);
  }

  // The client's cache: one slot, a copy of the newest session.
  void keep(const mbedtls_ssl_context* ssl) {
    mbedtls_ssl_session_free(&latest_);
    mbedtls_ssl_session_init(&latest_);
    have_latest_ = mbedtls_ssl_get_session(ssl, &latest_) == 0;
  }

 private:
  std::unique_ptr<MbedTlsEndpoint> make(const mbedtls_ssl_config* conf, bool client, Pipe& in,
                                        Pipe& out) {
    auto endpoint = std::make_unique<MbedTlsEndpoint>(*this, client, in, out);
    const int ret = mbedtls_ssl_setup(endpoint->ssl(), conf);
    if (ret != 0) fail(mbedtls_reason("mbedtls_ssl_setup", ret));
    mbedtls_ssl_set_bio(endpoint->ssl(), endpoint.get(), &MbedTlsEndpoint::bio_send,
                        &MbedTlsEndpoint::bio_recv, nullptr);
    return endpoint;
  }

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
  if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) return Step::again;
  if (ret != 0)
    fail(mbedtls_reason(client_ ? "client: mbedtls_ssl_handshake" : "server: mbedtls_ssl_handshake",
                        ret));
  if (client_) {
    // A server that resumes answers with the offered session ID (RFC 5246
    // 7.4.1.3); a resumption makes no new session to keep.
    const mbedtls_ssl_session* s = ssl_->session;
    resumed_ = offered_id_len_ > 0 && s->id_len == offered_id_len_ &&
               std::memcmp(s->id, offered_id_, offered_id_len_) == 0;
    if (!resumed_) stack_.keep(ssl_.get());
  }
  return Step::done;
}

#endif  // HAVE_MBEDTLS

std::unique_ptr<Stack> make_native(std::string_view backend, Version version, const Certs& certs) {
#ifdef HAVE_OPENSSL
  if (backend == "openssl") return std::make_unique<OpenSslStack>(version, certs);
#endif
#ifdef HAVE_GNUTLS
  if (backend == "gnutls") return std::make_unique<GnuTlsStack>(version, certs);
#endif
#ifdef HAVE_MBEDTLS
  if (backend == "mbedtls" && version == Version::tls1_2)
    return std::make_unique<MbedTlsStack>(certs);
#endif
  (void)backend;
  (void)version;
  (void)certs;
  return nullptr;
}

// ---- the measurement ---------------------------------------------------------------

struct Round {
  double client = 0;  // bytes per idle client connection
  double server = 0;  // bytes per idle server connection
  double rest = 0;    // the rest of the growth: caches, first-use state, the Endpoints
  std::size_t resumed = 0;
};

void expect(Endpoint& reader, std::string_view text) {
  std::string got;
  // A read may only consume a TLS 1.3 ticket and report nothing yet.
  for (int i = 0; i < 8 && got.size() < text.size(); ++i)
    got += reader.receive(text.size() - got.size());
  if (got != text) fail("expected \"" + std::string(text) + "\", read \"" + got + "\"");
}

// Handshake, then one small message each way; afterwards nothing is in
// flight, and the client has every ticket the server sent.
void establish(Endpoint& client, Endpoint& server, const Pipes& pipes) {
  bool client_done = false, server_done = false;
  for (int i = 0; i < 32 && !(client_done && server_done); ++i) {
    if (!client_done) client_done = client.handshake() == Step::done;
    if (!server_done) server_done = server.handshake() == Step::done;
  }
  if (!client_done || !server_done) fail("the handshake does not complete");
  server.send("ping");
  expect(client, "ping");
  client.send("pong");
  expect(server, "pong");
  if (!pipes.to_client.empty() || !pipes.to_server.empty())
    fail("bytes still in flight after the exchange");
}

// snapshot_dir/label: see massif_snapshot.
Round measure(Stack& stack, std::size_t n, const std::string& snapshot_dir,
              const std::string& label) {
  // Everything the bookkeeping needs is allocated before the first reading.
  std::vector<Pipes> pipes(n);
  std::vector<std::unique_ptr<Endpoint>> clients, servers;
  clients.reserve(n);
  servers.reserve(n);
  const std::size_t before = heap_in_use();

  // All N are opened before any handshake: a session is offered only to a
  // connection opened after the one that made it, so the first round is all
  // full handshakes and the second all resumptions.
  for (std::size_t i = 0; i < n; ++i) {
    clients.push_back(stack.client(pipes[i]));
    servers.push_back(stack.server(pipes[i]));
  }
  Round r;
  for (std::size_t i = 0; i < n; ++i) {
    establish(*clients[i], *servers[i], pipes[i]);
    if (clients[i]->resumed()) ++r.resumed;
  }

  // All N idle. Closed properly, without a byte on the wire, so that the
  // next round resumes; then each side's connections are freed in turn.
  for (std::size_t i = 0; i < n; ++i) {
    clients[i]->mark_closed();
    servers[i]->mark_closed();
  }
  const std::size_t idle = heap_in_use();
  massif_snapshot(snapshot_dir, label + "-idle");
  for (auto& s : servers) s->release();
  const std::size_t without_servers = heap_in_use();
  massif_snapshot(snapshot_dir, label + "-clients");
  for (auto& c : clients) c->release();
  const std::size_t without_clients = heap_in_use();

  const double count = static_cast<double>(n);
  r.server = (static_cast<double>(idle) - static_cast<double>(without_servers)) / count;
  r.client = (static_cast<double>(without_servers) - static_cast<double>(without_clients)) / count;
  r.rest = (static_cast<double>(without_clients) - static_cast<double>(before)) / count;
  return r;
}

struct Options {
  std::size_t connections = 2000;
  std::string certs = "build/tests/certs";
  std::string tls = "best";  // best | 1.2 | 1.3 | all
  std::string backend;       // "": every compiled-in one
  std::string only;          // "": both; "unitls" or "native"
  bool verbose = false;
  std::string massif_dir;  // see massif_snapshot
};

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: idle_memory [--connections N] [--certs DIR] [--tls best|1.2|1.3|all]\n"
      "                   [--backend NAME] [--only unitls|native] [--verbose] [--massif-dir DIR]\n"
      "  --connections N  connections per round, all open at once (default 2000)\n"
      "  --certs DIR      the test PKI: ca.pem, server.pem, server.key (default "
      "build/tests/certs)\n"
      "  --tls            best: TLS 1.3 where the backend has it, else 1.2 (default);\n"
      "                   all: every version each backend has\n"
      "  --backend NAME   one backend only\n"
      "  --only SIDE      measure unitls or the native library only (e.g. under valgrind)\n"
      "  --verbose        also the rest of the heap growth per connection (caches, bookkeeping)\n"
      "  --massif-dir DIR under valgrind --tool=massif: detailed snapshots at each idle point\n"
      "                   (DIR/<side>-<backend>-<TLS>-<round>-idle.massif, and -clients.massif\n"
      "                   once the servers are freed)\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--connections") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n == 0) {
        std::fprintf(stderr, "idle_memory: --connections wants a positive number, not '%s'\n",
                     v.c_str());
        std::exit(2);
      }
      o.connections = static_cast<std::size_t>(n);
    } else if (arg == "--certs") {
      o.certs = value();
    } else if (arg == "--tls") {
      o.tls = value();
      if (o.tls != "best" && o.tls != "1.2" && o.tls != "1.3" && o.tls != "all") {
        usage(stderr);
        std::exit(2);
      }
    } else if (arg == "--backend") {
      o.backend = value();
    } else if (arg == "--only") {
      o.only = value();
      if (o.only != "unitls" && o.only != "native") {
        usage(stderr);
        std::exit(2);
      }
    } else if (arg == "--massif-dir") {
      o.massif_dir = value();
    } else if (arg == "--verbose") {
      o.verbose = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "idle_memory: unknown option '%s'\n", argv[i]);
      usage(stderr);
      std::exit(2);
    }
  }
  return o;
}

std::string per_conn(const Round* r, double Round::*field) {
  if (!r) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", r->*field);
  return buf;
}

std::string ratio(const Round* u, const Round* n) {
  if (!u || !n || n->client <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", u->client / n->client);
  return buf;
}

std::string resumed(const Round* r, std::size_t n) {
  return r ? std::to_string(r->resumed) + "/" + std::to_string(n) : "-";
}

int run(const Options& o) {
  const Certs certs{o.certs + "/ca.pem", o.certs + "/server.pem", o.certs + "/server.key"};
  for (const std::string& file : {certs.ca, certs.certificate, certs.key}) {
    if (::access(file.c_str(), R_OK) != 0) {
      std::fprintf(stderr,
                   "idle_memory: cannot read %s (--certs DIR: the test PKI, made by the build)\n",
                   file.c_str());
      return 2;
    }
  }

  std::printf(
      "Idle memory per connection, unitls against each TLS library used directly (unitls %s)\n"
      "\n"
      "Per round, N = %zu client/server pairs over in-memory pipes are opened, handshaken and\n"
      "exchange one small message each way (so TLS 1.3 tickets have arrived); all N stay open and\n"
      "idle, with nothing in flight. Then the N server connections are freed, then the N client\n"
      "connections: \"client\" is the drop in heap in use (glibc mallinfo2, chunk overhead "
      "included)\n"
      "when the clients are freed, divided by N; \"server\" likewise. The pipes are the same for\n"
      "both and hold no heap when idle; caches owned by the contexts are not counted.\n"
      "Round \"full\": no session to offer, full handshakes. Round \"resumed\": N more "
      "connections,\n"
      "opened after the first N were closed properly, each offered the client's cached session.\n"
      "ratio = unitls client / native client.\n\n",
      std::string(unitls::version).c_str(), o.connections);
  if (under_valgrind())
    std::printf(
        "Under valgrind mallinfo2 sees nothing: the byte columns are 0 (--massif-dir has the "
        "heap).\n\n");

  std::printf("%-8s %-4s %-8s %-19s %13s %13s %6s %13s %13s%s\n", "backend", "TLS", "round",
              "resumed u/n", "unitls client", "native client", "ratio", "unitls server",
              "native server", o.verbose ? "   unitls rest   native rest" : "");

  bool any = false;
  bool incomplete = false;
  for (std::string_view backend : unitls::available_backends()) {
    if (!o.backend.empty() && backend != o.backend) continue;
    any = true;
    std::vector<Version> versions;
    const bool has13 = UnitlsStack::supports(backend, Version::tls1_3, certs);
    if (o.tls == "best")
      versions = {has13 ? Version::tls1_3 : Version::tls1_2};
    else if (o.tls == "1.2")
      versions = {Version::tls1_2};
    else if (o.tls == "1.3")
      versions = {Version::tls1_3};
    else
      versions =
          has13 ? std::vector{Version::tls1_2, Version::tls1_3} : std::vector{Version::tls1_2};

    for (Version v : versions) {
      if (v == Version::tls1_3 && !has13) {
        std::printf("%-8s %-4s (no TLS 1.3 in this backend)\n", std::string(backend).c_str(),
                    version_name(v).c_str());
        continue;
      }
      Round u[2], n[2];
      bool have_u = false, have_n = false;
      if (o.only != "native") {
        const std::string label = "unitls-" + std::string(backend) + "-" + version_name(v);
        UnitlsStack stack(backend, v, certs);
        u[0] = measure(stack, o.connections, o.massif_dir, label + "-full");
        u[1] = measure(stack, o.connections, o.massif_dir, label + "-resumed");
        have_u = true;
      }
      if (o.only != "unitls") {
        if (auto stack = make_native(backend, v, certs)) {
          const std::string label = "native-" + std::string(backend) + "-" + version_name(v);
          n[0] = measure(*stack, o.connections, o.massif_dir, label + "-full");
          n[1] = measure(*stack, o.connections, o.massif_dir, label + "-resumed");
          have_n = true;
        }
      }
      const std::string library(unitls::backend_library_version(backend));
      for (int round = 0; round < 2; ++round) {
        const Round* ur = have_u ? &u[round] : nullptr;
        const Round* nr = have_n ? &n[round] : nullptr;
        const std::size_t want = round == 0 ? 0 : o.connections;
        if ((ur && ur->resumed != want) || (nr && nr->resumed != want)) incomplete = true;
        std::printf("%-8s %-4s %-8s %-19s %13s %13s %6s %13s %13s", std::string(backend).c_str(),
                    version_name(v).c_str(), round == 0 ? "full" : "resumed",
                    (resumed(ur, o.connections) + " " + resumed(nr, o.connections)).c_str(),
                    per_conn(ur, &Round::client).c_str(), per_conn(nr, &Round::client).c_str(),
                    ratio(ur, nr).c_str(), per_conn(ur, &Round::server).c_str(),
                    per_conn(nr, &Round::server).c_str());
        if (o.verbose)
          std::printf(" %13s %13s", per_conn(ur, &Round::rest).c_str(),
                      per_conn(nr, &Round::rest).c_str());
        std::printf("\n");
      }
      std::printf("%-8s (%s)\n", "", library.c_str());
      std::fflush(stdout);
    }
  }
  if (!any) {
    std::fprintf(stderr, "idle_memory: backend '%s' is not compiled in\n", o.backend.c_str());
    return 2;
  }
  if (incomplete) {
    std::printf(
        "\nWARNING: a round did not resume (or resumed) as intended: see \"resumed u/n\".\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  restart_without_tcache(argv);
  const Options options = parse(argc, argv);
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "idle_memory: %s\n", e.what());
    return 1;
  }
}
