#include <unitls/context.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <unitls/backend.hpp>
#include <unitls/secure_socket.hpp>

#include "engine.hpp"
#include "session_cache.hpp"
#include "socket_core.hpp"
#include "suites.hpp"
#include "verify.hpp"
#include "x509.hpp"

namespace unitls {

struct Context::Impl {
  Config config;
  std::string_view backend;  // points into the registry (static storage)
  std::shared_ptr<detail::BackendContext> backend_context;
  // Client with session_cache: the one cache of this Context's connections.
  std::shared_ptr<detail::ClientSessionCache> sessions;
  // Server: its session-ID cache.
  std::shared_ptr<detail::ServerSessionStore> server_sessions;
};

namespace {

const detail::BackendEntry* find_backend(std::string_view name) {
  for (const auto* entry : detail::backend_registry())
    if (entry->name == name) return entry;
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

// The whole file, or false with a message naming it. A configuration file
// is small; anything beyond the cap is not one.
bool read_file(const char* option, const std::string& path, std::string& out, std::string& message) {
  constexpr std::size_t cap = 64u << 20;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    message = std::string(option) + " '" + path + "': " + std::strerror(errno);
    return false;
  }
  out.clear();
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      message = std::string(option) + " '" + path + "': " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > cap) {
      message = std::string(option) + " '" + path + "': larger than 64 MiB, not a PEM file";
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  return true;
}

// Configuration files are PEM on every backend (one stack would take DER,
// the others not): the blocks of `path`, or false with a message.
bool read_pem(const char* option, const std::string& path, std::vector<detail::PemBlock>& blocks,
              std::string& message) {
  std::string text;
  if (!read_file(option, path, text, message)) return false;
  auto parsed = detail::parse_pem(text);
  if (!parsed || parsed->empty()) {
    message = std::string(option) + " '" + path + "': not a PEM file" +
              (parsed ? " (no -----BEGIN block; DER and other formats are not accepted)"
                      : " (a -----BEGIN block is damaged)");
    return false;
  }
  blocks = std::move(*parsed);
  return true;
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

bool check_strings(const Config& c, std::string& message) {
  const std::pair<const char*, const std::string*> strings[] = {
      {"backend", &c.backend},         {"certificate_file", &c.certificate_file},
      {"private_key_file", &c.private_key_file}, {"ca_file", &c.ca_file},
      {"server_name", &c.server_name},
  };
  for (const auto& [option, value] : strings) {
    if (has_nul(*value)) {
      message = std::string(option) + ": contains a NUL byte";
      return false;
    }
  }
  for (const auto& protocol : c.alpn) {
    if (has_nul(protocol)) {
      message = "alpn: a protocol name contains a NUL byte";
      return false;
    }
  }
  return true;
}

bool check_enums(const Config& c, std::string& message) {
  auto version_ok = [](Version v) { return v == Version::tls1_2 || v == Version::tls1_3; };
  if (c.role != Role::client && c.role != Role::server) {
    message = "role: " + std::to_string(static_cast<int>(c.role)) + " is not a Role";
    return false;
  }
  if (!version_ok(c.min_version) || !version_ok(c.max_version)) {
    message = std::string(version_ok(c.min_version) ? "max_version" : "min_version") + ": " +
              std::to_string(static_cast<int>(version_ok(c.min_version) ? c.max_version : c.min_version)) +
              " is not a Version";
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
  if (!detail::valid_server_name(c.server_name)) {
    message = "server_name '" + c.server_name.substr(0, 64) +
              "' is not a host name or an IP address";
    return false;
  }
  // RFC 7301 3.1: ProtocolName<1..2^8-1>, ProtocolNameList<2..2^16-1>.
  std::size_t alpn_wire = 0;
  for (const auto& protocol : c.alpn) {
    if (protocol.empty() || protocol.size() > 255) {
      message = "alpn: each protocol name must be 1 to 255 bytes (RFC 7301)";
      return false;
    }
    alpn_wire += 1 + protocol.size();
  }
  if (alpn_wire > 0xffff) {
    message = "alpn: the protocol list takes " + std::to_string(alpn_wire) +
              " bytes on the wire, more than the 65535 RFC 7301 allows";
    return false;
  }
  return true;
}

// What the backend cannot do is said here, by its declared capabilities,
// before it is asked to do it.
bool check_capabilities(const Config& c, std::string_view backend, const detail::Capabilities& caps,
                        std::string& message) {
  const std::string name(backend);
  if (!caps.tls1_3 && c.min_version == Version::tls1_3) {
    message = name + " (" + std::string(backend_library_version(backend)) +
              ") has no TLS 1.3 (min_version = tls1_3); use min_version = tls1_2";
    return false;
  }
  if (c.alpn.size() > caps.max_alpn_protocols) {
    message = "alpn: " + std::to_string(c.alpn.size()) + " protocols, but the " + name +
              " backend takes at most " + std::to_string(caps.max_alpn_protocols);
    return false;
  }
  std::size_t wire = 0;
  for (const auto& protocol : c.alpn) wire += 1 + protocol.size();
  if (c.role == Role::client && wire > caps.max_alpn_list) {
    message = "alpn: the protocol list takes " + std::to_string(wire) + " bytes, but the " + name +
              " backend's ClientHello holds at most " + std::to_string(caps.max_alpn_list);
    return false;
  }
  for (const auto& protocol : c.alpn) {
    if (protocol.size() > caps.max_alpn_name) {
      message = "alpn: a protocol name of " + std::to_string(protocol.size()) + " bytes, but the " +
                name + " backend takes at most " + std::to_string(caps.max_alpn_name);
      return false;
    }
  }
  return true;
}

// Reads the PEM files once for every backend: they must hold what their
// option says, a server's certificate must be one clients can accept, and
// only trust anchors of ca_file are passed on.
bool prepare(const Config& c, detail::Prepared& out, std::string& message) {
  std::vector<detail::PemBlock> blocks;
  if (!c.certificate_file.empty()) {
    if (!read_pem("certificate_file", c.certificate_file, blocks, message)) return false;
    auto first = std::find_if(blocks.begin(), blocks.end(),
                              [](const detail::PemBlock& b) { return b.label == "CERTIFICATE"; });
    if (first == blocks.end()) {
      message = "certificate_file '" + c.certificate_file + "': no CERTIFICATE block in it";
      return false;
    }
    const auto leaf = detail::parse_certificate(first->der);
    if (!leaf) {
      message = "certificate_file '" + c.certificate_file + "': the first certificate cannot be parsed";
      return false;
    }
    // RFC 5280 4.2.1.12. Some stacks refuse to serve such a certificate, the
    // others serve one that every client rejects: either way a mistake
    // better told now.
    if (c.role == Role::server && !detail::purpose_allows(*leaf, Role::server)) {
      message = "certificate_file '" + c.certificate_file +
                "': its extendedKeyUsage does not allow serverAuth (TLS server)";
      return false;
    }
    // What goes out is the leaf and its issuers in order, the same on every
    // backend (docs/contract.md, "Who is on the other end"): GnuTLS sends a
    // configured chain that way whatever the file's order.
    std::vector<const detail::PemBlock*> certificates;
    std::vector<std::span<const std::byte>> ders;
    for (const auto& block : blocks) {
      if (block.label != "CERTIFICATE") continue;
      certificates.push_back(&block);
      ders.emplace_back(block.der);
    }
    for (const std::size_t i : detail::issuance_order(ders)) {
      out.chain_pem += certificates[i]->text;
      out.chain_pem += '\n';
    }
  }
  if (!c.private_key_file.empty()) {
    if (!read_pem("private_key_file", c.private_key_file, blocks, message)) return false;
    auto key = std::find_if(blocks.begin(), blocks.end(), [](const detail::PemBlock& b) {
      return b.label.ends_with("PRIVATE KEY");
    });
    if (key == blocks.end()) {
      message = "private_key_file '" + c.private_key_file + "': no PRIVATE KEY block in it";
      return false;
    }
    if (key->encrypted || key->label == "ENCRYPTED PRIVATE KEY") {
      message = "private_key_file '" + c.private_key_file +
                "': the key is encrypted, and no password can be given (store it unencrypted)";
      return false;
    }
    out.key_pem = key->text + '\n';
  }
  if (c.role == Role::client) {
    out.server_name_is_ip = detail::is_ip_literal(c.server_name);
    if (!out.server_name_is_ip) out.sni = c.server_name;
  }
  if (!c.ca_file.empty()) {
    if (!read_pem("ca_file", c.ca_file, blocks, message)) return false;
    std::size_t certificates = 0;
    for (const auto& block : blocks) {
      if (block.label != "CERTIFICATE" && block.label != "TRUSTED CERTIFICATE") continue;
      ++certificates;
      // A leaf is no anchor: trusting it would let its key vouch for
      // itself whatever its issuer says (one stack did, the others not).
      const auto facts = detail::parse_certificate(block.der);
      if (!facts || !(facts->is_ca || facts->self_issued)) continue;
      out.trust_pem += block.text;
      out.trust_pem += '\n';
    }
    if (out.trust_pem.empty()) {
      message = "ca_file '" + c.ca_file + "': no trust anchor in it (" + std::to_string(certificates) +
                " certificate(s), none a CA or self-signed)";
      return false;
    }
  }
  return true;
}

}  // namespace

namespace detail {

namespace {
std::string with_stack_reason(std::string text, std::string_view stack, std::string_view why) {
  if (why.empty()) return text;
  text += " (";
  text += stack;
  text += ": ";
  text += why;
  text += ")";
  return text;
}
}  // namespace

std::string config_message(std::string_view option, const std::string& path, std::string_view what,
                           std::string_view stack, std::string_view why) {
  return with_stack_reason(std::string(option) + " '" + path + "': " + std::string(what), stack, why);
}

std::string key_mismatch_message(const Config& c, std::string_view stack, std::string_view why) {
  return with_stack_reason("private_key_file '" + c.private_key_file + "' does not match certificate_file '" +
                               c.certificate_file + "'",
                           stack, why);
}

}  // namespace detail

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

  if (!check_enums(config, why) || !check_strings(config, why)) return fail(errc::invalid_argument);
  std::string_view name = config.backend.empty() ? default_backend() : config.backend;
  const detail::BackendEntry* entry = find_backend(name);
  if (!entry) {
    why = "backend '" + std::string(name) + "' is not compiled in (available:";
    for (auto b : available_backends()) {
      why += ' ';
      why += b;
    }
    why += ")";
    return fail(errc::invalid_argument);
  }
  if (!check_config(config, why)) return fail(errc::invalid_argument);
  if (!check_capabilities(config, entry->name, entry->capabilities, why))
    return fail(errc::unsupported);
  detail::Prepared prepared;
  bool unsupported = false;
  if (!detail::select_suites(config, entry->capabilities.tls1_3, entry->name, prepared.selection,
                             why, unsupported))
    return fail(unsupported ? errc::unsupported : errc::invalid_argument);
  if (!prepare(config, prepared, why)) return fail(errc::invalid_argument);
  if (config.role == Role::server) prepared.server_sessions = std::make_shared<detail::ServerSessionStore>();

  std::error_code backend_ec;
  auto backend_context = entry->create(config, prepared, backend_ec, why);
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
  if (config.role == Role::client && config.session_cache)
    impl->sessions = std::make_shared<detail::ClientSessionCache>();
  impl->server_sessions = prepared.server_sessions;
  ec.clear();
  if (message) message->clear();
  return std::make_unique<Context>(std::move(impl));
}

namespace {

// The connection in one allocation with room for its engine behind it
// (docs/benchmarks.md), then its engine.
template <class Carrier>
std::unique_ptr<SecureSocket> make_socket(const Context::Impl& impl, Carrier carrier) {
  const std::size_t room = impl.backend_context->engine_size();
  std::unique_ptr<detail::SocketCore> core(new (detail::SocketCore::Room{room}) detail::SocketCore(
      impl.backend_context, std::move(carrier), impl.sessions, impl.server_sessions, impl.backend, impl.config,
      room));
  detail::EngineSetup setup;
  setup.room = core->engine_room();
  if (impl.sessions) {
    setup.offer = core->ledger()->offer();
    setup.sessions = core->ledger();
  }
  auto engine = impl.backend_context->make_engine(core->wire(), setup);
  if (!engine) return nullptr;
  core->attach(std::move(engine));
  return core;
}

}  // namespace

std::unique_ptr<SecureSocket> Context::wrap(std::unique_ptr<Transport> transport) {
  if (!transport) return nullptr;
  return make_socket(*impl_, std::move(transport));
}

std::unique_ptr<SecureSocket> Context::wrap_fd(int fd, bool owns_fd) {
  if (fd < 0) return nullptr;
  return make_socket(*impl_, detail::SocketCore::OwnSocket{fd, owns_fd});
}

std::string_view Context::backend() const { return impl_->backend; }
const Config& Context::config() const { return impl_->config; }

}  // namespace unitls
