// The option table and what is made of it: parsing, --help, --help-markdown.
#include "options.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace tool {

namespace {

using L = CommandLine;

std::string ok() { return {}; }

// A number first..last written in decimal; nullopt otherwise.
std::optional<long> parse_number(const std::string& text, long first, long last) {
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || n < first || n > last) return std::nullopt;
  return n;
}

// A list of names separated by ':' or ',' (as openssl's -ciphersuites and
// -groups take them); Context::create judges the names.
std::string names(std::vector<std::string>& field, std::string_view option, const std::string& value) {
  field.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = value.find_first_of(":,", start);
    std::string name = value.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (name.empty()) return str(option) + " " + value + ": an empty name in the list";
    field.push_back(std::move(name));
    if (end == std::string::npos) return ok();
    start = end + 1;
  }
}

std::string pin(L& l, unitls::Version v) {
  if (l.tls.pinned_version && *l.tls.pinned_version != v) return "--tls1_2 and --tls1_3 exclude each other";
  l.tls.pinned_version = v;
  return ok();
}

std::string mode(L& l, ServeMode m) {
  if (l.mode != ServeMode::relay && l.mode != m) return "--www and --echo exclude each other";
  l.mode = m;
  return ok();
}

std::string target(L& l, std::string_view option, const std::string& value) {
  if (!l.target.empty()) return str(option) + " given twice";
  l.target = value;
  return ok();
}

constexpr unsigned relay = in_client | in_server;

// Help paragraphs are single lines here; the printer wraps them.
constexpr std::array options = {
    Option{"--help", "-h", "", in_client | in_server | in_demo | in_program,
           "print this help (unitls COMMAND --help: that command's)",
           [](L& l, const std::string&) { return l.help = true, ok(); }},
    Option{"--version", "-V", "", in_program,
           "print the unitls version and the TLS backends compiled in, the default one marked, each "
           "with its library's version",
           nullptr},
    Option{"--help-markdown", "", "", in_program,
           "print this option table as Markdown (the README's copy is made from it)", nullptr},
    Option{"--connect", "-connect", "HOST:PORT", in_client,
           "the server to connect to, instead of the HOST:PORT argument: a name, 127.0.0.1:4433, "
           "[::1]:4433",
           [](L& l, const std::string& v) { return target(l, "--connect", v); }},
    Option{"--accept", "-accept -port", "PORT", in_server,
           "the port to listen on, instead of the PORT argument (0 = any free one, printed)",
           [](L& l, const std::string& v) { return target(l, "--accept", v); }},
    Option{"--bind", "", "ADDR", in_server,
           "listen on ADDR, a host name or a numeric address (default 127.0.0.1); the first address "
           "of a name that can be bound is used",
           [](L& l, const std::string& v) { return l.bind = v, ok(); }},
    Option{"--backend", "", "NAME", relay,
           "TLS backend (see --version); default: the default one",
           [](L& l, const std::string& v) { return l.tls.backend = v, ok(); }},
    Option{"--cafile", "-CAfile", "FILE", relay,
           "PEM trust anchors: the client verifies the server with them (default: the system "
           "store); the server verifies client certificates with them (--client-auth)",
           [](L& l, const std::string& v) { return l.tls.ca_file = v, ok(); }},
    Option{"--capath", "-CApath", "DIR", relay,
           "a directory of PEM trust anchors (every file read), with or instead of --cafile",
           [](L& l, const std::string& v) { return l.tls.ca_path = v, ok(); }},
    Option{"--cert", "-cert", "FILE", relay,
           "PEM certificate chain (server: required; client: for mutual TLS, with --key)",
           [](L& l, const std::string& v) { return l.tls.cert_file = v, ok(); }},
    Option{"--key", "-key", "FILE", relay, "PEM private key of --cert",
           [](L& l, const std::string& v) { return l.tls.key_file = v, ok(); }},
    Option{"--servername", "-servername", "NAME", in_client,
           "SNI and the name the certificate must match (default: HOST; an IP address is matched, "
           "not sent)",
           [](L& l, const std::string& v) { return l.tls.server_name = v, ok(); }},
    Option{"--alpn", "-alpn", "A,B", relay,
           "ALPN protocols, in preference order (client: offered; server: accepted)",
           [](L& l, const std::string& value) {
             l.tls.alpn.clear();
             std::string_view rest = value;
             for (;;) {
               const auto comma = rest.find(',');
               const std::string_view protocol = rest.substr(0, comma);
               if (protocol.empty() || protocol.size() > 255) {
                 return "--alpn " + value + ": protocol names are 1 to 255 bytes, comma-separated";
               }
               l.tls.alpn.emplace_back(protocol);
               if (comma == std::string_view::npos) return ok();
               rest.remove_prefix(comma + 1);
             }
           }},
    Option{"--ciphersuites", "-ciphersuites", "L", relay,
           "cipher suites by IANA name, TLS 1.3 and 1.2 together, in preference order, ':' or ',' "
           "between them (e.g. TLS_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); "
           "default: the uniform default (docs/contract.md)",
           [](L& l, const std::string& v) { return names(l.tls.cipher_suites, "--ciphersuites", v); }},
    Option{"--groups", "-groups", "L", relay,
           "key exchange groups by IANA name, in preference order (e.g. x25519:secp256r1); default: "
           "x25519, secp256r1, secp384r1. A server's order decides, for both lists",
           [](L& l, const std::string& v) { return names(l.tls.groups, "--groups", v); }},
    Option{"--tls1_2", "-tls1_2", "", relay, "pin the protocol version to TLS 1.2",
           [](L& l, const std::string&) { return pin(l, unitls::Version::tls1_2); }},
    Option{"--tls1_3", "-tls1_3", "", relay, "pin the protocol version to TLS 1.3",
           [](L& l, const std::string&) { return pin(l, unitls::Version::tls1_3); }},
    Option{"--no-verify", "", "", in_client,
           "do not verify the server's certificate or name",
           [](L& l, const std::string&) { return l.tls.no_verify = true, ok(); }},
    Option{"--client-auth", "", "MODE", in_server,
           "none (default: ask for no client certificate), optional (ask; verify one if sent) or "
           "required (ask, verify, and fail a client without one); needs --cafile or --capath",
           [](L& l, const std::string& value) {
             if (value == "none") l.tls.client_auth = unitls::ClientAuth::none;
             else if (value == "optional") l.tls.client_auth = unitls::ClientAuth::optional;
             else if (value == "required") l.tls.client_auth = unitls::ClientAuth::required;
             else return "--client-auth " + value + ": expected none, optional or required";
             return ok();
           }},
    Option{"--www", "-www", "", in_server,
           "serve connections until stopped, several at once: answer each HTTP request with a page "
           "describing the connection (version, cipher suite, group, backend, the client's "
           "certificate subject), then close in --close style (as s_server -www)",
           [](L& l, const std::string&) { return mode(l, ServeMode::www); }},
    Option{"--echo", "", "", in_server,
           "serve connections until stopped, several at once: send each client's data back to it; "
           "answer its close_notify in --close style (as gnutls-serv --echo)",
           [](L& l, const std::string&) { return mode(l, ServeMode::echo); }},
    Option{"--naccept", "-naccept", "N", in_server,
           "stop after N connections (--www, --echo; the stdin relay serves one); SIGINT or SIGTERM "
           "stop the server at any time: it closes the open connections and exits 0",
           [](L& l, const std::string& value) {
             const auto n = parse_number(value, 1, 1000000000);
             if (!n) return "--naccept " + value + ": expected a number, 1 to 1000000000";
             l.naccept = *n;
             return ok();
           }},
    Option{"--close", "", "STYLE", relay,
           "how to close (default bidi): bidi = shutdown() until it returns 1: our close_notify, "
           "then wait for the peer's (OpenSSL two-step); once = send_close_notify(), then read to "
           "zero_return (GSKit one-step); quiet = set_quiet_shutdown(true) + shutdown(): sends "
           "nothing, the peer sees a truncation; drop = close the socket without close_notify",
           [](L& l, const std::string& value) {
             const auto style = parse_close_style(value);
             if (!style) return "--close " + value + ": expected bidi, once, quiet or drop";
             l.close = *style;
             return ok();
           }},
    Option{"--showcerts", "-showcerts", "", relay,
           "print the chain the peer sent (subject, issuer, names, serial, SHA-256) after "
           "\"connected:\"; a verified peer is announced with \"Verification: OK\" either way",
           [](L& l, const std::string&) { return l.show_certs = true, ok(); }},
    Option{"--trace", "", "", relay,
           "print every shutdown step to stderr: the call, its return value, last_error() (an errc "
           "name, or ok) and the flags after it (SENT|RECEIVED, SENT, RECEIVED, -)",
           [](L& l, const std::string&) { return l.trace = true, ok(); }},
    Option{"--keylogfile", "-keylogfile", "FILE", relay,
           "append the connections' TLS secrets to FILE (NSS key log format, for Wireshark; "
           "created 0600); default: $SSLKEYLOGFILE when set",
           [](L& l, const std::string& v) { return l.tls.keylog_file = v, ok(); }},
    Option{"--timeout", "", "MS", relay,
           "give up after MS milliseconds without a word from the peer while connecting, in the "
           "handshake or in the close (\"timed out ...\", exit 1); default: wait for ever. With "
           "--www and --echo: each connection's handshake, request and idle time (default 10000); "
           "a connection that runs out is closed, the others go on",
           [](L& l, const std::string& value) {
             const auto ms = parse_number(value, 1, 86400000);
             if (!ms) return "--timeout " + value + ": expected milliseconds, 1 to 86400000";
             l.timeout_ms = static_cast<int>(*ms);
             return ok();
           }},
    Option{"--ign-eof", "-ign_eof", "", relay,
           "when stdin ends, do not close: keep printing what the peer sends until it closes (as "
           "s_client -ign_eof)",
           [](L& l, const std::string&) { return l.ign_eof = true, ok(); }},
    Option{"--no-require-close-notify", "", "", relay,
           "the peer may end with a plain TCP close (HTTP/1.0 servers): that is the end of its "
           "data, exit 0",
           [](L& l, const std::string&) { return l.tls.no_require_close_notify = true, ok(); }},
    Option{"--backend", "", "NAME", in_demo, "only the pairs in which NAME is client or server",
           [](L& l, const std::string& v) { return l.tls.backend = v, ok(); }},
    Option{"--close", "", "STYLE", in_demo,
           "the close of the first connection: bidi (default), once, quiet or drop (see client, "
           "server)",
           [](L& l, const std::string& value) {
             const auto style = parse_close_style(value);
             if (!style) return "--close " + value + ": expected bidi, once, quiet or drop";
             l.close = *style;
             return ok();
           }},
    Option{"--certs", "", "DIR", in_demo,
           "take DIR/ca.pem, DIR/server.pem and DIR/server.key (e.g. build/tests/certs); without it "
           "a throwaway CA and server certificate are made in-process (ECDSA P-256, by the "
           "default backend's crypto) in a temporary directory",
           [](L& l, const std::string& v) { return l.certs = v, ok(); }},
    Option{"--steps", "--verbose -v", "", in_demo,
           "instead of the table: one backend (--backend, else the default), every call printed as "
           "a row (who, call, return value, last_error(), flags), blocking sockets. Act 1: one "
           "message each way and a clean bidirectional close. Act 2: a server that closes its "
           "socket without close_notify",
           [](L& l, const std::string&) { return l.steps = true, ok(); }},
    Option{"--trace", "", "", in_demo, "print every shutdown step of every connection to stderr",
           [](L& l, const std::string&) { return l.trace = true, ok(); }},
};

struct Command {
  std::string_view name;
  Scope scope;
  std::string_view synopsis;
  std::string_view about;  // paragraphs, already wrapped
  std::string_view status;
};

constexpr std::array commands = {
    Command{"client", in_client, "unitls client HOST:PORT [options]",
            "A TLS connection relaying stdin to the server and its data to stdout (modelled on\n"
            "openssl s_client). \"connected: VERSION CIPHER group=GROUP alpn=PROTOCOL\n"
            "backend=NAME\" goes to stderr after the handshake. When stdin ends, the client\n"
            "closes in --close style and, for bidi and once, prints what the server still\n"
            "sends until its close_notify. When the server's close_notify comes first, the\n"
            "client answers in --close style and exits 0.\n",
            "exit status: 0 clean close; 1 failure, a timeout, or the peer closed without\n"
            "close_notify (\"peer closed without close_notify (truncation)\"); 2 usage error\n"},
    Command{"server", in_server, "unitls server PORT [options]",
            "A TLS server on PORT (0 = any free one; \"listening on ADDR:PORT\" goes to stderr).\n"
            "By default it serves one connection as the client does: stdin to the client, the\n"
            "client's data to stdout, then it exits (as s_server -naccept 1). With --www or\n"
            "--echo it serves connections until stopped or --naccept N, several at once on\n"
            "non-blocking sockets, each closed in --close style; one line per connection on\n"
            "stderr (\"connection N: closed cleanly\", or what went wrong), and a summary\n"
            "at the end (\"served N connections: C clean, T truncated, F failed\"; clean:\n"
            "closed as --close says).\n",
            "exit status: the stdin relay: as the client's; --www, --echo: 0 once stopped\n"
            "(whatever the clients did), 1 when it cannot listen; 2 usage error\n"},
    Command{"demo", in_demo, "unitls demo [--backend NAME] [--close STYLE] [--certs DIR] [--steps] [--trace]",
            "Every client backend against every server backend over loopback TCP (both ends in\n"
            "one thread, non-blocking sockets), printed as a table: version, cipher, bytes\n"
            "each way (64 KiB, FNV-1a checked), the shutdown sequence of both sides (C client,\n"
            "S server, [flags after each call]: S, R, SR or -), whether a server that drops\n"
            "the connection without close_notify is detected as a truncation\n"
            "(unexpected_eof), and whether all of it is what the contract says. The client\n"
            "verifies the server (ca.pem, name \"localhost\").\n",
            "exit status: 0 every pair matched the contract, 1 otherwise, 2 usage error\n"},
};

std::string_view scope_name(unsigned scope) {
  switch (scope) {
    case in_client: return "the client";
    case in_server: return "the server";
    case in_demo: return "demo";
    case in_client | in_server: return "client and server";
    default: return "another command";
  }
}

// An alias or the name, split out of Option::aliases.
template <typename F>
void for_each_spelling(const Option& o, F&& f) {
  f(o.name);
  std::string_view rest = o.aliases;
  while (!rest.empty()) {
    const auto space = rest.find(' ');
    f(rest.substr(0, space));
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
}

bool spelled(const Option& o, std::string_view name) {
  bool found = false;
  for_each_spelling(o, [&](std::string_view s) { found = found || s == name; });
  return found;
}

// "--cafile FILE (also -CAfile)"
std::string label(const Option& o) {
  std::string s = str(o.name);
  if (!o.value.empty()) s += " " + str(o.value);
  return s;
}

// text wrapped at 79 columns, every line after the first indented by indent.
std::string wrap(std::string_view text, std::size_t indent, std::size_t first_column) {
  constexpr std::size_t width = 79;
  std::string out;
  std::size_t column = first_column;
  bool line_start = true;
  while (!text.empty()) {
    const auto space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (!line_start && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
      line_start = true;
    }
    if (!line_start) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    line_start = false;
  }
  return out + "\n";
}

void add_options(std::string& out, unsigned scope) {
  constexpr std::size_t column = 24;
  for (const Option& o : options) {
    if ((o.scope & scope) == 0) continue;
    std::string head = "  " + label(o);
    std::string also;
    for_each_spelling(o, [&](std::string_view s) {
      if (s != o.name) also += (also.empty() ? "" : ", ") + str(s);
    });
    std::string text = str(o.help);
    if (!also.empty()) text += " (also " + also + ")";
    if (head.size() + 1 > column) {
      out += head + "\n" + std::string(column, ' ');
    } else {
      out += head + std::string(column - head.size(), ' ');
    }
    out += wrap(text, column, column);
  }
}

std::string command_help(const Command& c) {
  std::string out = "usage: " + str(c.synopsis) + "\n\n" + str(c.about) + "\n";
  add_options(out, c.scope);
  out += "  " + str(c.status);
  return out;
}

// text in a table cell: '|' escaped, and the contract a link (the README
// sits at the top of the tree).
std::string markdown_cell(std::string_view text) {
  constexpr std::string_view contract = "docs/contract.md";
  std::string s;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i).starts_with(contract)) {
      s += "[" + str(contract) + "](" + str(contract) + ")";
      i += contract.size() - 1;
      continue;
    }
    if (text[i] == '|') s += '\\';
    s += text[i];
  }
  return s;
}

}  // namespace

std::span<const Option> option_table() { return options; }

std::string parse_command_line(Scope command, std::span<char* const> args, CommandLine& line) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (!arg.starts_with("-") || arg == "-") {
      line.positional.emplace_back(arg);
      continue;
    }
    const auto eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const Option* option = nullptr;
    unsigned elsewhere = 0;
    for (const Option& o : options) {
      if (!spelled(o, name)) continue;
      if ((o.scope & command) != 0 && o.apply != nullptr) option = &o;
      else elsewhere |= o.scope;
    }
    if (option == nullptr && elsewhere != 0 && (elsewhere & in_program) == 0) {
      return str(name) + " is for " + str(scope_name(elsewhere));
    }
    if (option == nullptr) return "unknown option " + str(name);

    std::string value;
    if (option->value.empty()) {
      if (eq != std::string_view::npos) return str(name) + " takes no value";
    } else if (eq != std::string_view::npos) {
      value = str(arg.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return str(name) + " needs a value (" + str(option->value) + ")";
    }
    if (!option->value.empty() && value.empty()) return str(name) + " needs a non-empty value";
    if (std::string problem = option->apply(line, value); !problem.empty()) return problem;
  }
  return {};
}

std::string help_text(std::string_view command) {
  for (const Command& c : commands) {
    if (c.name == command) return command_help(c);
  }
  std::string out = "usage: unitls --version\n       unitls --help\n";
  for (const Command& c : commands) out += "       " + str(c.synopsis) + "\n";
  out += "\n";
  add_options(out, in_program);
  for (const Command& c : commands) {
    out += "\n" + str(c.synopsis) + "\n" + str(c.about) + "\n";
    add_options(out, c.scope);
    out += "  " + str(c.status);
  }
  return out;
}

std::string help_markdown() {
  std::string out = "| option | commands | what |\n|---|---|---|\n";
  for (const Option& o : options) {
    std::string spellings;
    for_each_spelling(o, [&](std::string_view s) {
      if (!spellings.empty()) spellings += ", ";
      spellings += "`" + str(s) + (o.value.empty() ? "" : " " + str(o.value)) + "`";
    });
    std::string scope = (o.scope & in_program) != 0 ? "unitls" : "";
    for (const Command& c : commands) {
      if ((o.scope & c.scope) != 0) scope += (scope.empty() ? "" : ", ") + str(c.name);
    }
    out += "| " + markdown_cell(spellings) + " | " + scope + " | " + markdown_cell(o.help) + " |\n";
  }
  return out;
}

int usage_error(std::string_view command, const std::string& why) {
  const std::string who = command.empty() ? "unitls" : "unitls " + str(command);
  std::fprintf(stderr, "%s: %s; see %s --help\n", who.c_str(), why.c_str(), who.c_str());
  return 2;
}

}  // namespace tool
