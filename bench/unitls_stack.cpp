// The unitls side of the benchmark: the public API only, as an application
// uses it (docs/benchmarks.md).
#include <span>
#include <system_error>

#include "bench.hpp"

namespace bench {
namespace {

// In-memory pipes as a unitls Transport. make_memory_pair() is not used:
// its buffers keep their capacity when drained, which would be counted
// against unitls only in the idle-memory workload.
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

  std::size_t write(const void* data, std::size_t size) override {
    const std::ptrdiff_t n =
        socket_->write(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
    if (n > 0) return static_cast<std::size_t>(n);
    check_want("write");
    return 0;
  }

  std::size_t read(void* data, std::size_t size) override {
    const std::ptrdiff_t n = socket_->read(std::span<std::byte>(static_cast<std::byte*>(data), size));
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) fail(std::string("unitls ") + side_ + ": read: end of data");
    check_want("read");
    return 0;
  }

  Step shutdown() override {
    const int ret = socket_->shutdown();
    if (ret == 1) return Step::done;
    if (ret < 0) check_want("shutdown");
    return Step::again;
  }

  bool resumed() const override { return socket_->session_reused(); }
  std::string cipher() const override { return socket_->cipher(); }
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
  UnitlsStack(std::string_view backend, const StackOptions& options, const Certs& certs) {
    unitls::Config client;
    client.role = unitls::Role::client;
    client.backend = std::string(backend);
    client.ca_file = certs.ca;
    client.server_name = server_name;
    client.min_version = client.max_version = options.version;
    client.session_cache = options.sessions;
    unitls::Config server;
    server.role = unitls::Role::server;
    server.backend = std::string(backend);
    server.certificate_file = certs.certificate;
    server.private_key_file = certs.key;
    server.min_version = server.max_version = options.version;
    client_ = make(client);
    server_ = make(server);
  }

  std::unique_ptr<Endpoint> client(const Link& link) override {
    return std::make_unique<UnitlsEndpoint>(wrap(*client_, link), "client");
  }
  std::unique_ptr<Endpoint> server(const Link& link) override {
    return std::make_unique<UnitlsEndpoint>(wrap(*server_, link), "server");
  }

 private:
  // A socket as an application wraps one (the native side hands the stack
  // its fd too); the in-memory pipes through a Transport of their own.
  static std::unique_ptr<unitls::SecureSocket> wrap(unitls::Context& context, const Link& link) {
    if (link.fd >= 0) return context.wrap_fd(link.fd, false);
    return context.wrap(std::make_unique<PipeTransport>(*link.in, *link.out));
  }

  static std::unique_ptr<unitls::Context> make(const unitls::Config& config) {
    std::error_code ec;
    std::string message;
    auto context = unitls::Context::create(config, ec, &message);
    if (!context) fail("unitls: Context::create: " + message);
    return context;
  }

  std::unique_ptr<unitls::Context> client_, server_;
};

}  // namespace

std::unique_ptr<Stack> make_unitls_stack(std::string_view backend, const StackOptions& options,
                                         const Certs& certs) {
  return std::make_unique<UnitlsStack>(backend, options, certs);
}

}  // namespace bench
