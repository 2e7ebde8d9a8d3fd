// What the unitls program's commands share: names for errors and flags, the
// Config a command line describes, argument parsing, sockets and the demo PKI.
#pragma once

#include <unitls/unitls.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tool {

std::string str(std::string_view s);

// ---- names ----------------------------------------------------------------------

// "ok" for an empty code, the errc name for the "unitls" category,
// "<category>:<value>" otherwise.
std::string error_name(std::error_code ec);
// "SENT|RECEIVED", "SENT", "RECEIVED" or "-".
std::string flag_names(unsigned flags);
// "SR", "S", "R" or "-" (the demo's compact sequences).
std::string flag_letters(unsigned flags);
// error_name() plus the native reason, for messages to a person.
std::string describe_failure(const unitls::SecureSocket& socket);

// ---- configuration ------------------------------------------------------------------

// The TLS half of a command line, shared by client, server and demo.
struct TlsOptions {
  std::string backend;  // "" = the default backend
  std::string ca_file, ca_path, cert_file, key_file;
  std::string server_name;
  std::vector<std::string> alpn;
  std::vector<std::string> cipher_suites, groups;  // --ciphersuites / --groups ({} = the default)
  std::optional<unitls::Version> pinned_version;  // --tls1_2 / --tls1_3
  bool no_verify = false;                         // client: do not verify the server
  unitls::ClientAuth client_auth = unitls::ClientAuth::none;  // server: --client-auth
  bool no_require_close_notify = false;           // the peer may end with a plain EOF
  std::string keylog_file;                        // --keylogfile; "" = $SSLKEYLOGFILE, if set
};

unitls::Config make_config(unitls::Role role, const TlsOptions& options);

// The key log of --keylogfile, else of $SSLKEYLOGFILE when that is set and
// not empty: config.keylog appends each line and a newline to the file
// (created 0600; one write() per line, O_APPEND). Returns "" or the problem
// ("--keylogfile F: Permission denied"); neither given: "" and no key log.
std::string add_keylog(unitls::Config& config, const TlsOptions& options);

// Context::create; on failure nullptr and *error = "cannot create the <side>
// context: <the library's sentence> (<errc>)".
std::unique_ptr<unitls::Context> make_context(const unitls::Config& config, std::string_view side,
                                              std::string& error);

// ---- sockets ------------------------------------------------------------------------

// Splits "HOST:PORT", "[v6]:PORT" or "v6::addr:PORT" (the last colon).
// Returns "" or the problem.
std::string split_host_port(std::string_view text, std::string& host, std::string& port);
// A port number 0..65535 written in decimal; nullopt otherwise.
std::optional<unsigned short> parse_port(std::string_view text);

// A connected TCP socket (blocking) to host:port, trying every address
// getaddrinfo gives; -1 and *error when none answers.
int connect_tcp(const std::string& host, const std::string& port, std::string& error);

// A listening TCP socket on address:port (a host name or a numeric
// address, the first of its addresses that can be bound; port 0 = any free
// one); -1 and *error on failure. *bound is the port actually bound, and
// *shown (when given) the address and port as "127.0.0.1:4433" or "[::1]:4433".
int listen_tcp(const std::string& address, unsigned short port, unsigned short* bound,
               std::string& error, std::string* shown = nullptr);

void set_nonblocking(int fd);
// SO_RCVTIMEO/SO_SNDTIMEO: a blocking call gives up after this many seconds.
void set_io_timeouts(int fd, int seconds);

// ---- the demo PKI --------------------------------------------------------------------

// Where the demo's ca.pem, server.pem and server.key live; a directory we
// made is removed with the object.
struct CertDir {
  std::filesystem::path dir;
  std::string origin;  // for the banner
  bool temporary = false;

  CertDir() = default;
  CertDir(const CertDir&) = delete;
  CertDir& operator=(const CertDir&) = delete;
  ~CertDir();
};

// requested (--certs DIR), else a throwaway CA made in-process by `backend`
// ("" = the default one; unitls::make_credential). False and *error when
// that fails.
bool prepare_certs(const std::string& requested, CertDir& certs, std::string& error,
                   const std::string& backend = {});

}  // namespace tool
