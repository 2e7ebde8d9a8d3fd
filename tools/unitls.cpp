// unitls — the command-line face of the library.
//
//   unitls --version            the library version and the backends compiled in
//   unitls --help               usage (tools/options.cpp holds the option table)
//   unitls --help-markdown      the option table for the README
//   unitls client HOST:PORT     a TLS client relaying stdin/stdout (like openssl s_client)
//   unitls server PORT          a TLS server (like openssl s_server): one connection
//                               relayed to stdin/stdout, or --www / --echo for many
//   unitls demo                 every backend pair over loopback, checked against the contract
//
// The demo is also a smoke test: it exits 0 only if every pair closed as the
// contract (docs/contract.md) says, so script/demo and a packager can trust a
// green run.
#include <csignal>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "options.hpp"

namespace tool {

namespace {

int print_version() {
  std::printf("unitls %s\n", str(unitls::version).c_str());
  std::printf("backends compiled in:\n");
  for (std::string_view b : unitls::available_backends()) {
    std::printf("  %-8s %-10s %s\n", str(b).c_str(),
                b == unitls::default_backend() ? "(default)" : "",
                str(unitls::backend_library_version(b)).c_str());
  }
  return 0;
}

}  // namespace

}  // namespace tool

int main(int argc, char** argv) {
  // A peer that hangs up, or a closed stdout pipe, must show as an error
  // (EPIPE), not kill the program. Sockets use MSG_NOSIGNAL already.
  std::signal(SIGPIPE, SIG_IGN);

  using namespace tool;
  if (argc < 2) return usage_error("", "a command is required");
  const std::string_view command = argv[1];
  const std::span<char* const> rest(argv + 2, static_cast<std::size_t>(argc - 2));
  if (command == "--help" || command == "-h" || command == "help") {
    if (!rest.empty()) return usage_error("", str(command) + " takes no arguments");
    const std::string help = help_text("");
    std::fwrite(help.data(), 1, help.size(), stdout);
    return 0;
  }
  if (command == "--help-markdown") {
    if (!rest.empty()) return usage_error("", str(command) + " takes no arguments");
    const std::string table = help_markdown();
    std::fwrite(table.data(), 1, table.size(), stdout);
    return 0;
  }
  if (command == "--version" || command == "-V") {
    if (!rest.empty()) return usage_error("", str(command) + " takes no arguments");
    return print_version();
  }
  if (command == "client") return client_command(rest);
  if (command == "server") return server_command(rest);
  if (command == "demo") return demo_command(rest);
  if (command.starts_with("-")) return usage_error("", "unknown option " + str(command));
  return usage_error("", "unknown command " + str(command));
}
