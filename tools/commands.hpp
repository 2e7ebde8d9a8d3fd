// The unitls program's commands. Each takes the arguments after its name and
// returns the exit status: 0 success, 1 failure, 2 usage error.
#pragma once

#include <unitls/unitls.hpp>

#include <memory>
#include <span>

namespace tool {

int client_command(std::span<char* const> args);
int server_command(std::span<char* const> args);
int demo_command(std::span<char* const> args);

struct CommandLine;
// `unitls server --www` / `--echo`: serves connections on listener (which it
// owns) until --naccept N or SIGINT/SIGTERM (serve.cpp); the exit status.
int serve(const CommandLine& options, unitls::Context& context, int listener);

// A client and a server context of the demo (same PKI).
struct Contexts {
  std::unique_ptr<unitls::Context> client, server;
};

// `unitls demo --steps`: the two-act printout of every call for one backend
// (demo_steps.cpp). 0 when every step matched the contract.
int demo_steps(Contexts& contexts);

}  // namespace tool
