#include <unitls/context.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <unitls/backend.hpp>
#include <unitls/secure_socket.hpp>

#include "certificate.hpp"
#include "engine.hpp"
#include "private_key.hpp"
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
  // Config::keylog set: the callback, shared with the sockets (they may
  // outlive the Context).
  std::shared_ptr<const detail::KeyLogFunction> keylog;
};

namespace {

const detail::BackendEntry* find_backend(std::string_view name) {
  for (const auto* entry : detail::backend_registry())
    if (entry->name == name) return entry;
  return nullptr;
}

// Every backend gets the same words for a path that cannot be opened, so the
// checks happen here, before the backend parses anything.
// An option naming a file (or, with directory, a directory): "" or one
// that exists as such and can be read.
bool check_path(const char* option, const std::string& path, std::string& message, bool directory = false) {
  if (path.empty()) return true;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    message = std::string(option) + " '" + path + "': " + std::strerror(errno);
    return false;
  }
  if (directory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    message = std::string(option) + " '" + path + "': " + (directory ? "not a directory" : "not a regular file");
    return false;
  }
  if (::access(path.c_str(), directory ? R_OK | X_OK : R_OK) != 0) {
    message = std::string(option) + " '" + path + "': " + std::strerror(errno);
    return false;
  }
  return true;
}

bool check_file(const char* option, const std::string& path, std::string& message) {
  return check_path(option, path, message);
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

// PEM text of an option (a file's or given in the Config), or false with a
// message naming its source.
bool parse_pem_of(const std::string& source, const std::string& text, std::vector<detail::PemBlock>& blocks,
                  std::string& message) {
  auto parsed = detail::parse_pem(text);
  if (!parsed || parsed->empty()) {
    message = source + ": not PEM" +
              (parsed ? " (no -----BEGIN block; DER and other formats are not accepted)"
                      : " (a -----BEGIN block is damaged)");
    return false;
  }
  blocks = std::move(*parsed);
  return true;
}

// One item of the configuration given as a file or as PEM text (never both:
// check_config).
struct Item {
  std::string file_option, pem_option;  // "certificate_file", "certificate_pem" (with a prefix)
  const std::string* file = nullptr;
  const std::string* pem = nullptr;

  bool given() const { return !file->empty() || !pem->empty(); }
  // What messages call it: "certificate_file 'c.pem'" or "certificate_pem".
  std::string source() const { return file->empty() ? pem_option : file_option + " '" + *file + "'"; }
};

// Configuration files are PEM on every backend (one stack would take DER,
// the others not): the blocks of the item, or false with a message.
bool read_item(const Item& item, std::vector<detail::PemBlock>& blocks, std::string& message) {
  if (item.file->empty()) return parse_pem_of(item.pem_option, *item.pem, blocks, message);
  std::string text;
  const bool ok = read_file(item.file_option.c_str(), *item.file, text, message) &&
                  parse_pem_of(item.source(), text, blocks, message);
  detail::secure_wipe(text);  // a key file's text
  return ok;
}

// A certificate chain and its key: the Config's own, or one of its
// additional_credentials (prefix "additional_credentials[i].").
struct CredentialItems {
  Item certificate, key;
  const std::string* password = nullptr;
  std::string password_option;
};

CredentialItems items_of(const std::string& prefix, const std::string& certificate_file,
                         const std::string& certificate_pem, const std::string& private_key_file,
                         const std::string& private_key_pem, const std::string& password) {
  return {{prefix + "certificate_file", prefix + "certificate_pem", &certificate_file, &certificate_pem},
          {prefix + "private_key_file", prefix + "private_key_pem", &private_key_file, &private_key_pem},
          &password,
          prefix + "private_key_password"};
}

// The main credential (possibly given not at all), then each additional one.
std::vector<CredentialItems> credential_items(const Config& c) {
  std::vector<CredentialItems> out;
  out.push_back(items_of("", c.certificate_file, c.certificate_pem, c.private_key_file, c.private_key_pem,
                         c.private_key_password));
  for (std::size_t i = 0; i < c.additional_credentials.size(); ++i) {
    const Credential& a = c.additional_credentials[i];
    out.push_back(items_of("additional_credentials[" + std::to_string(i) + "].", a.certificate_file,
                           a.certificate_pem, a.private_key_file, a.private_key_pem, a.private_key_password));
  }
  return out;
}

Item ca_item(const Config& c) { return {"ca_file", "ca_pem", &c.ca_file, &c.ca_pem}; }

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

bool check_strings(const Config& c, std::string& message) {
  const std::pair<const char*, const std::string*> strings[] = {
      {"backend", &c.backend}, {"ca_file", &c.ca_file}, {"ca_path", &c.ca_path}, {"server_name", &c.server_name}};
  for (const auto& [option, value] : strings) {
    if (has_nul(*value)) {
      message = std::string(option) + ": contains a NUL byte";
      return false;
    }
  }
  for (const CredentialItems& items : credential_items(c)) {
    // Paths and passwords reach the stacks as C strings.
    for (const auto& [option, value] : {std::pair{&items.certificate.file_option, items.certificate.file},
                                        std::pair{&items.key.file_option, items.key.file},
                                        std::pair{&items.password_option, items.password}}) {
      if (has_nul(*value)) {
        message = *option + ": contains a NUL byte";
        return false;
      }
    }
    // OpenSSL's PEM reader takes passwords of up to PEM_BUFSIZE (1024)
    // bytes, and every backend takes the same. And UTF-8: PKCS#12 schemes
    // take the password as UTF-16, which OpenSSL and GnuTLS convert from
    // UTF-8, each its own way for other bytes.
    if (items.password->size() > 1024) {
      message = items.password_option + ": longer than 1024 bytes";
      return false;
    }
    if (!detail::valid_utf8(std::as_bytes(std::span(items.password->data(), items.password->size())))) {
      message = items.password_option + ": not UTF-8";
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
  if (c.client_auth != ClientAuth::none && c.client_auth != ClientAuth::optional &&
      c.client_auth != ClientAuth::required) {
    message = "client_auth: " + std::to_string(static_cast<int>(c.client_auth)) + " is not a ClientAuth";
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
  const Item ca = ca_item(c);
  if (!c.ca_file.empty() && !c.ca_pem.empty()) {
    message = "ca_file and ca_pem are both set; give one";
    return false;
  }
  if (!check_file("ca_file", c.ca_file, message)) return false;
  if (!check_path("ca_path", c.ca_path, message, true)) return false;
  if (c.role == Role::client && !c.additional_credentials.empty()) {
    message = "additional_credentials is a server option (a client has one certificate)";
    return false;
  }
  const std::vector<CredentialItems> credentials = credential_items(c);
  for (std::size_t i = 0; i < credentials.size(); ++i) {
    const CredentialItems& items = credentials[i];
    for (const Item* item : {&items.certificate, &items.key}) {
      if (!item->file->empty() && !item->pem->empty()) {
        message = item->file_option + " and " + item->pem_option + " are both set; give one";
        return false;
      }
      if (!check_file(item->file_option.c_str(), *item->file, message)) return false;
    }
    if (items.certificate.given() != items.key.given()) {
      message = items.certificate.given()
                    ? items.certificate.source() + " is set but no private key (" + items.key.file_option +
                          " or " + items.key.pem_option + ")"
                    : items.key.source() + " is set but no certificate (" + items.certificate.file_option +
                          " or " + items.certificate.pem_option + ")";
      return false;
    }
    if (i > 0 && !items.certificate.given()) {
      message = "additional_credentials[" + std::to_string(i - 1) + "]: no certificate and key";
      return false;
    }
  }
  if (c.role == Role::server && !credentials[0].certificate.given()) {
    message = "a server needs certificate_file and private_key_file (or certificate_pem and private_key_pem)";
    return false;
  }
  if (c.role == Role::client && c.client_auth != ClientAuth::none) {
    message = "client_auth is a server option (a client sends certificate_file when a server asks)";
    return false;
  }
  // A server that asks for client certificates must say whom it trusts: the
  // system store would let in anyone a public CA ever gave a client cert.
  if (c.role == Role::server && c.client_auth != ClientAuth::none && !ca.given() && c.ca_path.empty()) {
    message = "a server with client_auth (client certificates) needs ca_file (or ca_pem, ca_path), the CA "
              "that signs its clients";
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
    if (const auto at = protocol.find_first_of(caps.alpn_name_excludes); at != std::string::npos) {
      message = "alpn: a protocol name holding '" + std::string(1, protocol[at]) + "', which the " + name +
                " backend (" + std::string(backend_library_version(backend)) +
                ") cannot take: it reads the names as a list separated by it";
      return false;
    }
  }
  return true;
}

// One credential's certificate and key, read once for every backend: they
// must hold what their option says, a server's certificate must be one
// "CN=..." of a certificate, for messages.
std::string subject_of(std::span<const std::byte> der) {
  const auto described = detail::describe_certificate(der);
  return described ? "'" + described->subject + "'" : std::string("a certificate");
}

// clients can accept, and the chain goes out in issuance order.
bool prepare_credential(const CredentialItems& items, Role role, const detail::Capabilities& caps,
                        std::string_view backend, detail::PreparedCredential& out, errc& kind,
                        std::string& message) {
  kind = errc::invalid_argument;
  out.certificate_source = items.certificate.source();
  out.key_source = items.key.source();
  std::vector<detail::PemBlock> blocks;
  if (!read_item(items.certificate, blocks, message)) return false;
  auto first = std::find_if(blocks.begin(), blocks.end(),
                            [](const detail::PemBlock& b) { return b.label == "CERTIFICATE"; });
  if (first == blocks.end()) {
    message = out.certificate_source + ": no CERTIFICATE block in it";
    return false;
  }
  const auto leaf = detail::parse_certificate(first->der);
  if (!leaf) {
    message = out.certificate_source + ": the first certificate cannot be parsed";
    return false;
  }
  // RFC 5280 4.2.1.12. Some stacks refuse to serve such a certificate, the
  // others serve one that every client rejects: either way a mistake
  // better told now.
  if (role == Role::server && !detail::purpose_allows(*leaf, Role::server)) {
    message = out.certificate_source + ": its extendedKeyUsage does not allow serverAuth (TLS server)";
    return false;
  }
  if (!detail::key_usage_allows_signing(*leaf)) {
    message = out.certificate_source + ": its keyUsage leaves out digitalSignature (the key must sign the handshake)";
    return false;
  }
  // What goes out is the leaf and its issuers in order, the same on every
  // backend (docs/contract.md, "Who is on the other end"): GnuTLS sends a
  // configured chain that way whatever the file's order.
  std::vector<const detail::PemBlock*> certificates;
  std::vector<std::span<const std::byte>> ders;
  for (const auto& block : blocks) {
    if (block.label != "CERTIFICATE") continue;
    if (!caps.ber_certificates && !detail::minimal_lengths(block.der)) {
      kind = errc::unsupported;
      message = out.certificate_source + ": a certificate in it is BER, not DER (a length not in its shortest form), " +
                "which the " + std::string(backend) + " backend (" + std::string(backend_library_version(backend)) +
                ") cannot read";
      return false;
    }
    certificates.push_back(&block);
    ders.emplace_back(block.der);
  }
  for (const std::size_t i : detail::issuance_order(ders)) {
    // The issuers' keys too: a peer refuses a chain with a weak one (and
    // OpenSSL at level 2 will not load it).
    if (const auto facts = detail::parse_certificate(ders[i]); facts && !detail::key_strong_enough(*facts)) {
      message = out.certificate_source + ": the certificate of " + subject_of(ders[i]) + " in it has an RSA key of " +
                std::to_string(facts->rsa_bits) + " bits (at least 2048: every backend's peers refuse less)";
      return false;
    }
    out.chain_pem += certificates[i]->text;
    out.chain_pem += '\n';
  }

  if (!read_item(items.key, blocks, message)) return false;
  auto key = std::find_if(blocks.begin(), blocks.end(), [](const detail::PemBlock& b) {
    return b.label.ends_with("PRIVATE KEY");
  });
  if (key == blocks.end()) {
    message = out.key_source + ": no PRIVATE KEY block in it";
    return false;
  }
  // An encrypted key is decrypted by the stack with the password; a
  // scheme the stack cannot decrypt is said now (docs/contract.md,
  // "Credentials"). A password for a plain key is not needed, and ignored.
  // The key's text is wiped when this function's copies go.
  const struct Wipe {
    std::vector<detail::PemBlock>& blocks;
    ~Wipe() {
      for (auto& b : blocks) {
        detail::secure_wipe(b.text);
        detail::secure_wipe(b.der);
      }
    }
  } wipe{blocks};
  if (const auto encrypted = detail::encrypted_key(*key)) {
    if (items.password->empty()) {
      message = out.key_source + ": the key is encrypted; give its password in " + items.password_option;
      return false;
    }
    if (!(caps.key_encryptions & detail::key_encryption_bit(encrypted->scheme))) {
      kind = errc::unsupported;
      message = out.key_source + ": encrypted with " + encrypted->description + ", which the " +
                std::string(backend) + " backend (" + std::string(backend_library_version(backend)) +
                ") cannot decrypt; encrypt it with PBES2 (PBKDF2, AES-CBC): openssl pkcs8 -topk8 -v2 aes-256-cbc";
      return false;
    }
    out.key_password = *items.password;
  }
  out.key_pem = key->text + '\n';
  return true;
}

// The system trust store, found the same way for every backend (each stack
// has its own way, and mbedTLS none), as OpenSSL finds its own: a bundle
// ($SSL_CERT_FILE, else the first of the usual places that exists) and the
// directories of $SSL_CERT_DIR; without either, the first usual directory
// (docs/contract.md, "Verification").
constexpr const char* system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                 // Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",                   // Fedora, RHEL 6
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL 7 and later
    "/etc/ssl/ca-bundle.pem",                             // openSUSE
    "/etc/ssl/cert.pem",                                  // Alpine, the BSDs, macOS
};
constexpr const char* system_directories[] = {"/etc/ssl/certs", "/etc/pki/tls/certs"};

bool exists_as(const char* path, mode_t type) {
  struct stat st {};
  return ::stat(path, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

// The PEM blocks of a bundle, or of each file of a directory that is PEM
// (hashed links included: duplicates are dropped by the caller). A file or
// block that is not usable is skipped, not fatal: a store is many files.
void add_blocks(const std::string& text, std::vector<detail::PemBlock>& blocks) {
  auto parsed = detail::parse_pem(text);
  if (!parsed) return;
  for (auto& block : *parsed) blocks.push_back(std::move(block));
}

bool read_directory(const char* option, const std::string& dir, std::vector<detail::PemBlock>& blocks,
                    std::string& message) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    message = std::string(option) + " '" + dir + "': " + std::strerror(errno);
    return false;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string path = dir + "/" + name;
    std::string one, ignored;
    if (!exists_as(path.c_str(), S_IFREG) || !read_file(option, path, one, ignored)) continue;
    add_blocks(one, blocks);
  }
  return true;
}

bool read_system_store(std::vector<detail::PemBlock>& blocks, std::string& source, std::string& message) {
  std::string file;
  // secure_getenv: a setuid or setgid program ignores them, as OpenSSL does
  // (its caller could make it trust any CA).
  if (const char* env = ::secure_getenv("SSL_CERT_FILE"); env && *env) {
    file = env;
  } else {
    for (const char* bundle : system_bundles) {
      if (exists_as(bundle, S_IFREG)) {
        file = bundle;
        break;
      }
    }
  }
  std::vector<std::string> dirs;
  if (const char* env = ::secure_getenv("SSL_CERT_DIR"); env && *env) {
    // OpenSSL's form: directories separated by ':'.
    for (std::string_view rest = env; !rest.empty();) {
      const auto colon = rest.find(':');
      if (colon != 0) dirs.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  } else if (file.empty()) {
    for (const char* directory : system_directories) {
      if (exists_as(directory, S_IFDIR)) {
        dirs.emplace_back(directory);
        break;
      }
    }
  }
  if (file.empty() && dirs.empty()) {
    message = "no system trust store: none of the usual bundles or directories exists (set ca_file, "
              "ca_pem, SSL_CERT_FILE or SSL_CERT_DIR)";
    return false;
  }
  source = "the system trust store (";
  if (!file.empty()) {
    std::string text;
    if (!read_file("SSL_CERT_FILE", file, text, message)) return false;
    add_blocks(text, blocks);
    source += "'" + file + "'";
  }
  for (const auto& dir : dirs) {
    if (!read_directory("SSL_CERT_DIR", dir, blocks, message)) return false;
    source += (source.back() == '(' ? "'" : ", '") + dir + "'";
  }
  source += ")";
  return true;
}

// The trust anchors: only self-signed and CA certificates (a leaf is no
// anchor: trusting it would let its key vouch for itself whatever its
// issuer says; one stack did, the others not).
bool prepare_trust(const Config& c, detail::Prepared& out, std::string& message) {
  const Item ca = ca_item(c);
  std::vector<detail::PemBlock> blocks;
  if (ca.given() || !c.ca_path.empty()) {
    if (ca.given()) {
      out.trust_source = ca.source();
      if (!read_item(ca, blocks, message)) return false;
    }
    if (!c.ca_path.empty()) {
      if (!read_directory("ca_path", c.ca_path, blocks, message)) return false;
      out.trust_source += (out.trust_source.empty() ? "" : " and ") + std::string("ca_path '") + c.ca_path + "'";
    }
  } else {
    if (!detail::verifies_peer(c)) return true;
    if (!read_system_store(blocks, out.trust_source, message)) return false;
    out.trust_is_system = true;
  }
  std::size_t certificates = 0;
  std::set<std::string, std::less<>> seen;
  for (const auto& block : blocks) {
    if (block.label != "CERTIFICATE" && block.label != "TRUSTED CERTIFICATE") continue;
    ++certificates;
    const auto facts = detail::parse_certificate(block.der);
    if (!facts || !(facts->is_ca || facts->self_issued)) continue;
    if (!seen.insert(std::string(reinterpret_cast<const char*>(block.der.data()), block.der.size())).second)
      continue;
    out.trust_pem += block.text;
    out.trust_pem += '\n';
  }
  if (out.trust_pem.empty()) {
    message = out.trust_source + ": no trust anchor in it (" + std::to_string(certificates) +
              " certificate(s), none a CA or self-signed)";
    return false;
  }
  return true;
}

// Reads what the Config names once for every backend. kind: what a failure
// is (invalid_argument, or unsupported for what this backend cannot do).
bool prepare(const Config& c, const detail::BackendEntry& backend, detail::Prepared& out, errc& kind,
             std::string& message) {
  kind = errc::invalid_argument;
  const std::vector<CredentialItems> items = credential_items(c);
  for (const CredentialItems& credential : items) {
    if (!credential.certificate.given()) continue;  // the main one, not given (a client)
    detail::PreparedCredential prepared;
    if (!prepare_credential(credential, c.role, backend.capabilities, backend.name, prepared, kind, message))
      return false;
    out.credentials.push_back(std::move(prepared));
  }
  if (out.credentials.size() > 1) out.chooser = std::make_shared<const detail::CredentialChooser>(out.credentials);
  if (c.role == Role::client) {
    out.server_name_is_ip = detail::is_ip_literal(c.server_name);
    if (!out.server_name_is_ip) out.sni = c.server_name;
  }
  return prepare_trust(c, out, message);
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

std::string config_message(std::string_view source, std::string_view what, std::string_view stack,
                           std::string_view why) {
  return with_stack_reason(std::string(source) + ": " + std::string(what), stack, why);
}

std::string key_mismatch_message(const PreparedCredential& credential, std::string_view stack,
                                 std::string_view why) {
  return with_stack_reason(credential.key_source + " does not match " + credential.certificate_source, stack, why);
}

std::string key_unusable_message(const PreparedCredential& credential, std::string_view stack,
                                 std::string_view why) {
  return with_stack_reason(credential.key_source + (credential.key_password.empty()
                                                        ? ": not usable"
                                                        : ": cannot be decrypted with its password (a wrong "
                                                          "password, or a damaged key)"),
                           stack, why);
}

CredentialChooser::~CredentialChooser() = default;

struct CredentialChooser::Leaf {
  std::vector<std::byte> der;
  std::optional<CertificateFacts> facts;  // views into der
};

CredentialChooser::CredentialChooser(const std::vector<PreparedCredential>& credentials) {
  for (const auto& credential : credentials) {
    auto leaf = std::make_unique<Leaf>();
    if (auto blocks = parse_pem(credential.chain_pem); blocks && !blocks->empty()) {
      leaf->der = std::move((*blocks)[0].der);
      leaf->facts = parse_certificate(leaf->der);
    }
    leaves_.push_back(std::move(leaf));
  }
}

std::size_t CredentialChooser::choose(std::string_view server_name) const {
  if (server_name.empty()) return 0;
  for (std::size_t i = 0; i < leaves_.size(); ++i)
    if (leaves_[i]->facts && name_matches(*leaves_[i]->facts, server_name)) return i;
  return 0;
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
  // After the selection: the versions it narrowed are those that count.
  if (config.keylog && !entry->capabilities.keylog_tls1_3 && prepared.selection.max_version == Version::tls1_3) {
    why = "keylog: the " + std::string(entry->name) + " backend (" + std::string(backend_library_version(entry->name)) +
          ") cannot log TLS 1.3 secrets; use max_version = tls1_2 with keylog";
    return fail(errc::unsupported);
  }
  if (errc kind{}; !prepare(config, *entry, prepared, kind, why)) return fail(kind);
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
  if (config.keylog) impl->keylog = std::make_shared<const detail::KeyLogFunction>(config.keylog);
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
  if (impl.keylog) setup.keylog = core->log_keys(impl.keylog);
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
