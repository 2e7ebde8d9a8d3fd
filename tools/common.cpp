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

int usage_error(std::string_view command, const std::string& why) {
  const std::string prefix = command.empty() ? "unitls" : "unitls " + str(command);
  const std::string_view help = help_text(command);
  std::fprintf(stderr, "%s: %s\n\n%.*s", prefix.c_str(), why.c_str(),
               static_cast<int>(help.size()), help.data());
  return 2;
}

std::string parse_options(std::span<char* const> args, std::span<const OptionSpec> specs,
                          std::vector<std::string>& positional) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (!arg.starts_with("-") || arg == "-") {
      positional.emplace_back(arg);
      continue;
    }
    const auto eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const OptionSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) return "unknown option '" + str(name) + "'";

    std::string value;
    if (!spec->takes_value) {
      if (eq != std::string_view::npos) return str(name) + " takes no value";
    } else if (eq != std::string_view::npos) {
      value = str(arg.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return str(name) + " needs a value";
    }
    if (spec->takes_value && value.empty()) return str(name) + " needs a non-empty value";
    if (std::string problem = spec->apply(value); !problem.empty()) return problem;
  }
  return {};
}

namespace {

std::function<std::string(const std::string&)> store(std::string* field) {
  return [field](const std::string& value) {
    *field = value;
    return std::string();
  };
}

std::function<std::string(const std::string&)> set(bool* field) {
  return [field](const std::string&) {
    *field = true;
    return std::string();
  };
}

std::function<std::string(const std::string&)> pin(TlsOptions* options, unitls::Version v) {
  return [options, v](const std::string&) {
    if (options->pinned_version && *options->pinned_version != v) {
      return std::string("--tls1_2 and --tls1_3 exclude each other");
    }
    options->pinned_version = v;
    return std::string();
  };
}

// A list of names separated by ':' or ',' (as openssl's -ciphersuites and
// -groups take them); Context::create judges the names.
std::function<std::string(const std::string&)> names(std::vector<std::string>* field,
                                                     const char* option) {
  return [field, option](const std::string& value) {
    field->clear();
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = value.find_first_of(":,", start);
      const std::string name =
          value.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (name.empty()) return std::string(option) + " " + value + ": an empty name in the list";
      field->push_back(name);
      if (end == std::string::npos) return std::string();
      start = end + 1;
    }
  };
}

}  // namespace

std::vector<OptionSpec> tls_option_specs(TlsOptions* options) {
  return {
      {"--backend", true, store(&options->backend)},
      {"--cafile", true, store(&options->ca_file)},
      {"--cert", true, store(&options->cert_file)},
      {"--key", true, store(&options->key_file)},
      {"--servername", true, store(&options->server_name)},
      {"--alpn", true,
       [options](const std::string& value) {
         options->alpn.clear();
         std::string_view rest = value;
         for (;;) {
           const auto comma = rest.find(',');
           const std::string_view protocol = rest.substr(0, comma);
           if (protocol.empty() || protocol.size() > 255) {
             return "--alpn " + value + ": protocol names are 1 to 255 bytes, comma-separated";
           }
           options->alpn.emplace_back(protocol);
           if (comma == std::string_view::npos) return std::string();
           rest.remove_prefix(comma + 1);
         }
       }},
      {"--ciphersuites", true, names(&options->cipher_suites, "--ciphersuites")},
      {"--groups", true, names(&options->groups, "--groups")},
      {"--tls1_2", false, pin(options, unitls::Version::tls1_2)},
      {"--tls1_3", false, pin(options, unitls::Version::tls1_3)},
      {"--no-verify", false, set(&options->no_verify)},
      {"--client-auth", true,
       [options](const std::string& value) {
         if (value == "none") options->client_auth = unitls::ClientAuth::none;
         else if (value == "optional") options->client_auth = unitls::ClientAuth::optional;
         else if (value == "required") options->client_auth = unitls::ClientAuth::required;
         else return "--client-auth " + value + ": expected none, optional or required";
         return std::string();
       }},
      {"--keylogfile", true, store(&options->keylog_file)},
  };
}

unitls::Config make_config(unitls::Role role, const TlsOptions& options) {
  unitls::Config config;
  config.role = role;
  config.backend = options.backend;
  config.certificate_file = options.cert_file;
  config.private_key_file = options.key_file;
  config.ca_file = options.ca_file;
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
