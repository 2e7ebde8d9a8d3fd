// Names, argument parsing and configuration shared by every command.
#include "common.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tool {

std::string str(std::string_view s) { return std::string(s); }

std::string error_name(std::error_code ec) {
  if (!ec) return "ok";
  if (ec.category() == unitls::category()) {
    return unitls::to_string(static_cast<unitls::errc>(ec.value()));
  }
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

std::string flag_names(unsigned flags) {
  std::string s;
  if ((flags & unitls::sent_shutdown) != 0) s = "SENT";
  if ((flags & unitls::received_shutdown) != 0) s += s.empty() ? "RECEIVED" : "|RECEIVED";
  return s.empty() ? "-" : s;
}

std::string flag_letters(unsigned flags) {
  std::string s;
  if ((flags & unitls::sent_shutdown) != 0) s += 'S';
  if ((flags & unitls::received_shutdown) != 0) s += 'R';
  return s.empty() ? "-" : s;
}

std::string describe_failure(const unitls::SecureSocket& socket) {
  std::string s = error_name(socket.last_error());
  if (const std::error_code native = socket.native_error()) s += " (" + native.message() + ")";
  return s;
}

unitls::Config make_config(unitls::Role role, const TlsOptions& options) {
  unitls::Config config;
  config.role = role;
  config.backend = options.backend;
  config.certificate_file = options.cert_file;
  config.private_key_file = options.key_file;
  config.ca_file = options.ca_file;
  config.ca_path = options.ca_path;
  config.server_name = options.server_name;
  config.alpn = options.alpn;
  config.cipher_suites = options.cipher_suites;
  config.groups = options.groups;
  // A client verifies unless told not to; a server asks for a client
  // certificate only when told to.
  if (role == unitls::Role::client) config.verify_peer = !options.no_verify;
  else config.client_auth = options.client_auth;
  if (options.pinned_version) config.min_version = config.max_version = *options.pinned_version;
  config.require_close_notify = !options.no_require_close_notify;
  return config;
}

std::string add_keylog(unitls::Config& config, const TlsOptions& options) {
  std::string path = options.keylog_file;
  std::string source = "--keylogfile";
  if (path.empty()) {
    const char* env = std::getenv("SSLKEYLOGFILE");
    if (env == nullptr || *env == '\0') return {};
    path = env;
    source = "SSLKEYLOGFILE";
  }
  // Secrets: readable by the owner only (0600), as NSS and curl create it.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return source + " " + path + ": " + std::strerror(errno);
  const auto file = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  // One write() per line: lines of connections on several threads do not
  // interleave (O_APPEND).
  config.keylog = [file](std::string_view line) {
    std::string text(line);
    text += '\n';
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(*file, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  };
  return {};
}

std::unique_ptr<unitls::Context> make_context(const unitls::Config& config, std::string_view side,
                                              std::string& error) {
  std::error_code ec;
  std::string message;
  auto context = unitls::Context::create(config, ec, &message);
  if (!context) {
    error = "cannot create the " + str(side) + " context: " +
            (message.empty() ? ec.message() : message) + " (" + error_name(ec) + ")";
  }
  return context;
}

}  // namespace tool
