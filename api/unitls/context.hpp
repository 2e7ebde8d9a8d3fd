// Configuration and the Context that turns transports into SecureSockets.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unitls/export.hpp>
#include <unitls/transport.hpp>

namespace unitls {

class SecureSocket;

enum class Role { client, server };
enum class Version { tls1_2, tls1_3 };
// Server: whether a client certificate is asked for (docs/contract.md,
// "Client certificates").
enum class ClientAuth {
  none,      // not asked for
  optional,  // asked for; verified when sent, the handshake completes without one
  required,  // asked for and verified; a client without one fails the handshake
};

// One certificate chain and its private key, from files or from PEM text
// (each item one way, not both): a server's additional_credentials.
// (Every member has an initializer: `{.certificate_file = ..., .private_key_file = ...}`
// leaves the others empty without a -Wmissing-field-initializers warning.)
struct Credential {
  std::string certificate_file{}, private_key_file{};
  std::string certificate_pem{}, private_key_pem{};
  std::string private_key_password{};  // of an encrypted key; "" = the key is not encrypted
};

struct Config {
  Role role = Role::client;
  std::string backend;                    // "" = default_backend()
  std::string certificate_file;           // PEM chain (server; client for mutual TLS)
  std::string private_key_file;           // PEM key matching the first certificate
  std::string ca_file;                    // PEM trust anchors; "" (and no ca_pem, ca_path) = the system store
  // A directory whose files hold PEM trust anchors (every regular file is
  // read, OpenSSL's hashed names or not), with or instead of ca_file/ca_pem.
  std::string ca_path;
  // The same as PEM text instead of files (a file and PEM text for the same
  // item is invalid_argument).
  std::string certificate_pem, private_key_pem, ca_pem;
  std::string private_key_password;       // of an encrypted private key; "" = not encrypted
  // Server: more certificates, the one whose names match the client's SNI
  // chosen (the first that does), else the one above (docs/contract.md,
  // "Several certificates").
  std::vector<Credential> additional_credentials;
  bool verify_peer = true;                // client: verify the server's certificate (servers: client_auth)
  ClientAuth client_auth = ClientAuth::none;  // server: ask for a client certificate (needs ca_file, ca_pem or ca_path)
  std::string server_name;                // client: SNI and hostname verification
  std::vector<std::string> alpn;          // offered (client) / accepted (server), in preference order
  Version min_version = Version::tls1_2;
  Version max_version = Version::tls1_3;  // a backend without TLS 1.3 negotiates 1.2
  bool quiet_shutdown = false;            // default for new sockets
  bool require_close_notify = true;       // false: EOF without close_notify reads as end of data
  bool session_cache = true;              // client: resume sessions of properly closed connections
  // Blocking calls (handshake, read, write, shutdown) on a new socket give up
  // after this long with timed_out, not fatal; 0 = no limit. Per socket:
  // SecureSocket::set_timeout().
  std::chrono::milliseconds timeout{0};
  // NSS key log lines (SSLKEYLOGFILE format), for decrypting captures
  // (docs/contract.md, "Key log"). Set: each connection hands it one line per
  // secret, without a newline, when its handshake ends (completed or
  // failed), on the thread calling handshake(): TLS 1.2 `CLIENT_RANDOM
  // <client random> <master secret>`; TLS 1.3 CLIENT_HANDSHAKE_TRAFFIC_SECRET,
  // SERVER_HANDSHAKE_TRAFFIC_SECRET, CLIENT_TRAFFIC_SECRET_0,
  // SERVER_TRAFFIC_SECRET_0, EXPORTER_SECRET, in that order; lower-case hex.
  // The same lines on every backend, resumed handshakes included. Copied
  // into the Context and shared by its sockets, which may call it from
  // several threads at once: making it thread-safe is the caller's. What
  // it throws is caught and dropped. Empty (the default): nothing is
  // logged, and the stacks' own key logging (GnuTLS's $SSLKEYLOGFILE) is
  // off too.
  std::function<void(std::string_view line)> keylog;
  // IANA names, TLS 1.3 and TLS 1.2 suites in one list, in preference order
  // ("TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  // ...); {} = the uniform default. Suites of a version that is not
  // negotiated are left out; a list without TLS 1.3 suites negotiates
  // TLS 1.2 (docs/contract.md, "Cipher suites and groups").
  std::vector<std::string> cipher_suites;
  // IANA names in preference order ("x25519", "secp256r1", "secp384r1",
  // ...); {} = the uniform default. A TLS 1.3 client sends one key share,
  // for the first.
  std::vector<std::string> groups;
};

// One per configuration. Owns the backend's context (certificates, trust
// store, session cache). Thread-safe to share: wrap() may be called from
// several threads. Sockets keep what they need alive, so a Context may be
// destroyed before its sockets.
class UNITLS_API Context {
 public:
  // Checks the configuration and loads every file it names. On failure
  // returns nullptr and sets ec:
  //   errc::invalid_argument — a missing or unreadable file, a bad PEM, a key
  //     that does not match the certificate, an unknown backend name,
  //     min_version > max_version, a server without certificate or key, a
  //     client that verifies the peer without server_name, a server that
  //     asks for client certificates (client_auth) without ca_file,
  //     client_auth on a client, an unknown, empty or repeated name in
  //     cipher_suites or groups, or no suite left for the versions allowed;
  //   errc::unsupported — the backend cannot do what is asked (TLS 1.3 only
  //     on a TLS 1.2 stack, a suite or group its stack lacks).
  // error_message() below has the sentence that names the culprit.
  static std::unique_ptr<Context> create(const Config& config, std::error_code& ec);
  // Same, and puts a human-readable reason (naming the path, option or
  // backend at fault) into *message when it fails.
  static std::unique_ptr<Context> create(const Config& config, std::error_code& ec,
                                         std::string* message);

  // A new socket over transport, handshake not yet started. nullptr when
  // transport is null.
  std::unique_ptr<SecureSocket> wrap(std::unique_ptr<Transport> transport);
  // The same as wrap(make_fd_transport(fd, owns_fd)), with the transport in
  // the socket's own allocation: the way to wrap a connected socket (or a
  // pipe). nullptr when fd < 0. If the socket cannot be made (nullptr) and
  // owns_fd is true, fd is closed. (A name of its own: an overload of wrap()
  // would take wrap(0) or wrap({}) for fd 0.)
  std::unique_ptr<SecureSocket> wrap_fd(int fd, bool owns_fd = true);

  // "openssl", "mbedtls" or "gnutls".
  std::string_view backend() const;
  const Config& config() const;

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  struct Impl;  // internal
  explicit Context(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unitls
