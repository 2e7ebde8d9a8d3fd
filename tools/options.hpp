// The unitls program's command line: one table of options from which the
// parsing, `--help` and the README's option table (`--help-markdown`) are all
// produced, so the three cannot drift apart.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"
#include "endpoint.hpp"

namespace tool {

// Which commands an option belongs to (a mask).
enum Scope : unsigned {
  in_client = 1,
  in_server = 2,
  in_demo = 4,
  in_program = 8,  // `unitls --version`, before any command
};

// What `unitls server` does with each connection.
enum class ServeMode {
  relay,  // stdin to the one client, its data to stdout (as s_server without -www)
  echo,   // every client's data back to it (gnutls-serv --echo)
  www,    // an HTTP response describing the connection (s_server -www)
};

// Everything a command line can say; each command reads its part.
struct CommandLine {
  TlsOptions tls;
  CloseStyle close = CloseStyle::bidi;
  bool trace = false;
  bool help = false;
  std::vector<std::string> positional;
  // client and server
  std::string target;  // client: HOST:PORT (--connect); server: PORT (--accept)
  std::string host, port;          // client: HOST:PORT, once checked
  unsigned short listen_port = 0;  // server: PORT, once checked
  int timeout_ms = -1;  // --timeout; -1 = not given
  bool ign_eof = false;
  bool show_certs = false;
  // server
  std::string bind;  // "" = 127.0.0.1
  ServeMode mode = ServeMode::relay;
  long naccept = 0;  // 0 = not given
  // demo
  std::string certs;
  bool steps = false;
};

// One option. The same name may appear twice with disjoint scopes (the
// demo's --backend means something else).
struct Option {
  std::string_view name;     // "--cafile"
  std::string_view aliases;  // other spellings, space-separated ("-CAfile")
  std::string_view value;    // the value's placeholder; "" for a flag
  unsigned scope;            // Scope bits
  std::string_view help;     // one paragraph, wrapped when printed
  std::string (*apply)(CommandLine&, const std::string& value);  // "" or the problem
};

std::span<const Option> option_table();

// Parses the arguments of a command (in_client, in_server or in_demo): an
// option as "--name VALUE", "--name=VALUE" or a flag; anything not starting
// with '-' (and "-" itself) goes to line.positional. Returns "" or the
// problem, a sentence without the program's name ("unknown option --x").
std::string parse_command_line(Scope command, std::span<char* const> args, CommandLine& line);

// The help of one command ("client", "server", "demo"), or of the whole
// program for "".
std::string help_text(std::string_view command);

// The option table as Markdown, for the README (between its
// "unitls-options" markers; tests/cli_readme.py checks it).
std::string help_markdown();

// Prints "unitls[ COMMAND]: WHY; see unitls[ COMMAND] --help" to stderr,
// one line (openssl prints two); returns 2, the exit status of a usage error.
int usage_error(std::string_view command, const std::string& why);

}  // namespace tool
