#include <unitls/context.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <unitls/backend.hpp>
#include <unitls/secure_socket.hpp>

#include "engine.hpp"
#include "socket_core.hpp"

namespace unitls {

struct Context::Impl {
  Config config;
  std::string_view backend;  // points into the registry (static storage)
  std::shared_ptr<detail::BackendContext> backend_context;
};

namespace {

const detail::BackendEntry* find_backend(std::string_view name) {
  for (const auto& entry : detail::backend_registry())
    if (entry.name == name) return &entry;
  return nullptr;
}

// Every backend gets the same words for a path that cannot be opened, so the
// checks happen here, before the backend parses anything.
bool check_file(const char* option, const std::string& path, std::string& message) {
  if (path.empty()) return true;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    message = std::string(option) + " '" + path + "': " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    message = std::string(option) + " '" + path + "': not a regular file";
    return false;
  }
  if (::access(path.c_str(), R_OK) != 0) {
    message = std::string(option) + " '" + path + "': " + std::strerror(errno);
    return false;
  }
  return true;
}

bool check_config(const Config& c, std::string& message) {
  if (c.min_version > c.max_version) {
    message = "min_version is above max_version";
    return false;
  }
  if (!check_file("certificate_file", c.certificate_file, message) ||
      !check_file("private_key_file", c.private_key_file, message) ||
      !check_file("ca_file", c.ca_file, message))
    return false;
  if (c.certificate_file.empty() != c.private_key_file.empty()) {
    message = c.certificate_file.empty() ? "private_key_file is set but certificate_file is not"
                                         : "certificate_file is set but private_key_file is not";
    return false;
  }
  if (c.role == Role::server && c.certificate_file.empty()) {
    message = "a server needs certificate_file and private_key_file";
    return false;
  }
  // A server that asks for client certificates must say whom it trusts: the
  // system store would let in anyone a public CA ever gave a client cert.
  if (c.role == Role::server && c.verify_peer && c.ca_file.empty()) {
    message = "a server with verify_peer (client certificates required) needs ca_file, "
              "the CA that signs its clients (or set verify_peer = false)";
    return false;
  }
  // Secure by default: verifying a certificate without a name to check it
  // against would accept any certificate the CA ever signed.
  if (c.role == Role::client && c.verify_peer && c.server_name.empty()) {
    message = "a client that verifies the peer needs server_name (or set verify_peer = false)";
    return false;
  }
  if (c.server_name.size() > 253 || c.server_name.find('\0') != std::string::npos) {
    message = "server_name '" + c.server_name.substr(0, 64) + "' is not a valid host name";
    return false;
  }
  for (const auto& protocol : c.alpn) {
    if (protocol.empty() || protocol.size() > 255) {
      message = "alpn: each protocol name must be 1 to 255 bytes";
      return false;
    }
  }
  return true;
}

}  // namespace

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

std::unique_ptr<Context> Context::create(const Config& config, std::error_code& ec) {
  return create(config, ec, nullptr);
}

std::unique_ptr<Context> Context::create(const Config& config, std::error_code& ec,
                                         std::string* message) {
  std::string why;
  auto fail = [&](errc e) -> std::unique_ptr<Context> {
    ec = make_error_code(e);
    if (message) *message = why;
    return nullptr;
  };

  std::string_view name = config.backend.empty() ? default_backend() : config.backend;
  const detail::BackendEntry* entry = find_backend(name);
  if (!entry) {
    why = "backend '" + std::string(name) + "' is not compiled in (available:";
    for (auto b : available_backends()) why += " " + std::string(b);
    why += ")";
    return fail(errc::invalid_argument);
  }
  if (!check_config(config, why)) return fail(errc::invalid_argument);

  std::error_code backend_ec;
  auto backend_context = entry->create(config, backend_ec, why);
  if (!backend_context) {
    if (!backend_ec) backend_ec = make_error_code(errc::invalid_argument);
    ec = backend_ec;
    if (message) *message = why;
    return nullptr;
  }

  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->backend = entry->name;
  impl->backend_context = std::move(backend_context);
  ec.clear();
  if (message) message->clear();
  return std::make_unique<Context>(std::move(impl));
}

std::unique_ptr<SecureSocket> Context::wrap(std::unique_ptr<Transport> transport) {
  if (!transport) return nullptr;
  const Transport* raw = transport.get();  // owned by the engine from here on
  auto engine = impl_->backend_context->make_engine(std::move(transport));
  if (!engine) return nullptr;
  return std::make_unique<detail::SocketCore>(impl_->backend_context, std::move(engine), raw,
                                              impl_->backend, impl_->config);
}

std::string_view Context::backend() const { return impl_->backend; }
const Config& Context::config() const { return impl_->config; }

}  // namespace unitls
