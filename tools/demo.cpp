// `unitls demo`: every client backend against every server backend over
// loopback TCP, one table row per pair, each compared with the contract.
//
// Both ends of a pair run in this one thread on non-blocking sockets (the
// Endpoint of `unitls client`/`server`), advanced in turn, so every run
// prints the same steps in the same order.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "endpoint.hpp"
#include "options.hpp"

namespace tool {

namespace {

constexpr std::size_t payload_size = 64 * 1024;
constexpr std::size_t last_words_size = 1024;  // what the dropping server sends first
constexpr auto connection_deadline = std::chrono::seconds(10);

// What the contract (docs/contract.md) says the close looks like when the client
// closes first in `style` and the server answers in the same style, as
// compact() steps: C = client, S = server, [flags after the call].
std::string_view expected_close(CloseStyle style) {
  switch (style) {
    case CloseStyle::bidi:  // shutdown() table rows "nothing sent", "peer closed first", "both set"
      return "C:shutdown=0[S] S:read=0/zero_return[R] S:shutdown=1[SR] C:shutdown=1[SR]";
    case CloseStyle::once:  // send_close_notify(), then read() to zero_return
      return "C:send_close_notify=ok[S] S:read=0/zero_return[R] S:send_close_notify=ok[SR] "
             "C:read=0/zero_return[SR]";
    case CloseStyle::quiet:  // nothing on the wire: the server sees a truncation
      return "C:set_quiet_shutdown C:shutdown=1[SR] S:read=-1/unexpected_eof[-]";
    case CloseStyle::drop:
      return "C:drop S:read=-1/unexpected_eof[-]";
  }
  return "";
}
// The second connection: the server ends the TCP stream without close_notify.
constexpr std::string_view expected_truncation = "S:drop C:read=-1/unexpected_eof[-]";

struct DemoOptions {
  std::string backend;  // "": every pair; else pairs involving it
  std::string certs;
  CloseStyle close = CloseStyle::bidi;
  bool steps = false;
  bool trace = false;
  bool help = false;
};

// ---- data with a checksum -------------------------------------------------------

struct Checksum {  // FNV-1a, 64 bits
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  std::size_t bytes = 0;
  void add(std::span<const std::byte> data) {
    for (std::byte b : data) hash = (hash ^ std::to_integer<std::uint64_t>(b)) * 0x100000001b3ULL;
    bytes += data.size();
  }
  bool operator==(const Checksum&) const = default;
};

// Bytes that differ in every position and direction (xorshift32).
std::vector<std::byte> payload(std::size_t size, std::uint32_t seed) {
  std::vector<std::byte> data(size);
  for (auto& b : data) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    b = static_cast<std::byte>(seed);
  }
  return data;
}

Checksum checksum_of(std::span<const std::byte> data) {
  Checksum c;
  c.add(data);
  return c;
}

// ---- one connection -----------------------------------------------------------------

struct Script {
  CloseStyle client_style, server_style;
  std::vector<std::byte> client_sends, server_sends;
  bool client_closes_first;  // else the server does; the other answers
};

struct Run {
  Facts facts;  // the client's view
  Checksum to_server, to_client;
  std::string sequence;  // compact steps of both sides, in order
  Endpoint::Outcome client = Endpoint::Outcome::running, server = Endpoint::Outcome::running;
  std::string problem;  // set when the connection could not be run at all
};

// A connected client socket and the server's accepted one, both non-blocking.
bool tcp_pair(int& client_fd, int& server_fd, std::string& error) {
  unsigned short port = 0;
  const int listener = listen_tcp("127.0.0.1", 0, &port, error);
  if (listener < 0) return false;
  client_fd = connect_tcp("127.0.0.1", std::to_string(port), error);  // done by the backlog
  server_fd = client_fd < 0 ? -1 : ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(listener);
  if (client_fd >= 0 && server_fd < 0) {
    error = "accept on 127.0.0.1:" + std::to_string(port) + " failed";
    ::close(client_fd);
  }
  if (client_fd < 0 || server_fd < 0) return false;
  set_nonblocking(client_fd);
  set_nonblocking(server_fd);
  return true;
}

Run run_connection(unitls::Context& client_context, unitls::Context& server_context,
                   const Script& script, const std::string& trace_label) {
  Run run;
  int client_fd = -1, server_fd = -1;
  if (!tcp_pair(client_fd, server_fd, run.problem)) return run;

  const auto events = [&](const char* who, Checksum& received) {
    Endpoint::Events e;
    e.data = [&received](std::span<const std::byte> bytes) { received.add(bytes); };
    e.step = [&run, &trace_label, who](const Step& step) {
      if (!trace_label.empty()) {
        std::fprintf(stderr, "trace %s %s: %s\n", trace_label.c_str(), who,
                     trace_line(step).c_str());
      }
      if (step.routine) return;
      if (!run.sequence.empty()) run.sequence += ' ';
      run.sequence += std::string(who) + ":" + compact(step);
    };
    return e;
  };
  auto client_events = events("C", run.to_client);
  client_events.connected = [&run](const Facts& facts) { run.facts = facts; };
  Endpoint client(client_context.wrap_fd(client_fd), client_fd,
                  script.client_style, std::move(client_events));
  Endpoint server(server_context.wrap_fd(server_fd), server_fd,
                  script.server_style, events("S", run.to_server));
  client.send(script.client_sends);
  server.send(script.server_sends);

  // The side that closes first does so once it has all the other's data, so
  // the close never races the transfer (no data_pending): one fixed sequence.
  Endpoint& first = script.client_closes_first ? client : server;
  const Checksum& first_received = script.client_closes_first ? run.to_client : run.to_server;
  const std::size_t first_expects =
      (script.client_closes_first ? script.server_sends : script.client_sends).size();
  bool input_ended = false;
  const auto end_input_when_due = [&] {
    if (input_ended || first_received.bytes < first_expects) return false;
    first.end_input();
    input_ended = true;
    return true;
  };

  const auto deadline = std::chrono::steady_clock::now() + connection_deadline;
  for (;;) {
    end_input_when_due();
    const short client_wants = client.advance();
    const short server_wants = server.advance();
    if (client_wants == 0 && server_wants == 0) break;
    if (end_input_when_due()) continue;

    std::vector<pollfd> fds;
    if (client_wants != 0) fds.push_back({client.fd(), client_wants, 0});
    if (server_wants != 0) fds.push_back({server.fd(), server_wants, 0});
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || ::poll(fds.data(), fds.size(), static_cast<int>(left.count())) == 0) {
      run.problem = "no progress for " + std::to_string(connection_deadline.count()) +
                    " s (after: " + (run.sequence.empty() ? "-" : run.sequence) + ")";
      break;
    }
  }
  run.client = client.outcome();
  run.server = server.outcome();
  if (run.problem.empty() && run.client == Endpoint::Outcome::failed) run.problem = client.failure();
  if (run.problem.empty() && run.server == Endpoint::Outcome::failed) run.problem = server.failure();
  return run;
}

// ---- the matrix -------------------------------------------------------------------

struct PairRow {
  std::string client, server;
  Run main, truncation;
  std::vector<std::string> differences;  // empty: the pair behaved as the contract says
};

PairRow run_pair(unitls::Context& client, unitls::Context& server, const DemoOptions& options) {
  PairRow row;
  row.client = str(client.backend());
  row.server = str(server.backend());
  const std::string label = options.trace ? row.client + ">" + row.server : "";

  Script main{options.close, options.close, payload(payload_size, 1), payload(payload_size, 2),
              true};
  row.main = run_connection(client, server, main, label.empty() ? label : label + "#1");
  Script drop{CloseStyle::bidi, CloseStyle::drop, {}, payload(last_words_size, 3), false};
  row.truncation = run_connection(client, server, drop, label.empty() ? label : label + "#2");

  auto& d = row.differences;
  using Outcome = Endpoint::Outcome;
  const bool server_truncates = options.close == CloseStyle::quiet || options.close == CloseStyle::drop;
  if (!row.main.problem.empty()) d.push_back("connection 1: " + row.main.problem);
  if (row.main.to_server != checksum_of(main.client_sends) ||
      row.main.to_client != checksum_of(main.server_sends)) {
    d.push_back("data: " + std::to_string(row.main.to_server.bytes) + "/" +
                std::to_string(row.main.to_client.bytes) + " bytes arrived, or a checksum differs");
  }
  if (row.main.sequence != expected_close(options.close)) {
    d.push_back("close: expected " + str(expected_close(options.close)) + ", got " +
                row.main.sequence);
  }
  if (row.main.client != Outcome::clean ||
      row.main.server != (server_truncates ? Outcome::truncated : Outcome::clean)) {
    d.push_back("connection 1 did not end as the close style says");
  }
  if (!row.truncation.problem.empty()) d.push_back("connection 2: " + row.truncation.problem);
  if (row.truncation.sequence != expected_truncation || row.truncation.client != Outcome::truncated ||
      row.truncation.to_client != checksum_of(drop.server_sends)) {
    d.push_back("truncation: expected " + str(expected_truncation) + " after " +
                std::to_string(last_words_size) + " bytes, got " + row.truncation.sequence +
                " after " + std::to_string(row.truncation.to_client.bytes));
  }
  return row;
}

// Prints rows as columns, each as wide as its widest cell.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()));
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string bytes_cell(const Run& run, std::size_t expected) {
  const bool whole = run.to_server.bytes == expected && run.to_client.bytes == expected;
  return std::to_string(run.to_server.bytes) + "/" + std::to_string(run.to_client.bytes) +
         (whole ? " ok" : " SHORT");
}

// Contexts for backend, with the demo's PKI: a client that verifies
// "localhost" against ca.pem, a server that asks no client certificate.
bool make_contexts(std::string_view backend, const CertDir& certs, Contexts& contexts,
                   std::string& error) {
  TlsOptions client;
  client.backend = str(backend);
  client.ca_file = (certs.dir / "ca.pem").string();
  client.server_name = "localhost";
  TlsOptions server;
  server.backend = str(backend);
  server.cert_file = (certs.dir / "server.pem").string();
  server.key_file = (certs.dir / "server.key").string();
  auto client_config = make_config(unitls::Role::client, client);
  client_config.session_cache = false;  // every connection a full handshake: one fixed story
  contexts.server = make_context(make_config(unitls::Role::server, server), "server", error);
  if (contexts.server) contexts.client = make_context(client_config, "client", error);
  return contexts.server && contexts.client;
}

int run_matrix(const DemoOptions& options, const CertDir& certs) {
  std::vector<std::string_view> backends;
  for (std::string_view b : unitls::available_backends()) backends.push_back(b);
  std::vector<Contexts> contexts(backends.size());
  std::string error;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    if (!make_contexts(backends[i], certs, contexts[i], error)) {
      std::fprintf(stderr, "unitls demo: %s: %s\n", str(backends[i]).c_str(), error.c_str());
      return 1;
    }
  }

  std::printf("unitls %s demo: every client backend against every server backend, loopback TCP\n",
              str(unitls::version).c_str());
  for (std::string_view b : backends) {
    std::printf("  %-8s %s\n", str(b).c_str(), str(unitls::backend_library_version(b)).c_str());
  }
  std::printf("certificates: %s; the client verifies \"localhost\" against ca.pem\n",
              certs.origin.c_str());
  std::printf(
      "connection 1: %zu KiB each way (FNV-1a checked), then the client closes (--close %s)\n"
      "              and the server answers in kind; sequence = C client, S server, [flags after]\n"
      "connection 2: the server sends %zu bytes and drops TCP without close_notify; the\n"
      "              client must read them, then unexpected_eof (truncation detected)\n\n",
      payload_size / 1024, str(name_of(options.close)).c_str(), last_words_size);

  std::vector<std::vector<std::string>> table = {
      {"client", "server", "version", "cipher", "bytes c>s/s>c", "close sequence", "truncation",
       "contract"}};
  std::vector<PairRow> rows;
  for (auto& client : contexts) {
    for (auto& server : contexts) {
      if (!options.backend.empty() && client.client->backend() != options.backend &&
          server.server->backend() != options.backend) {
        continue;
      }
      PairRow row = run_pair(*client.client, *server.server, options);
      const bool detected = row.truncation.client == Endpoint::Outcome::truncated;
      table.push_back({row.client, row.server, row.main.facts.version, row.main.facts.cipher,
                       bytes_cell(row.main, payload_size), row.main.sequence,
                       detected ? "yes" : "no", row.differences.empty() ? "yes" : "NO"});
      rows.push_back(std::move(row));
    }
  }
  print_table(table);

  std::size_t failed = 0;
  for (const auto& row : rows) {
    if (row.differences.empty()) continue;
    if (failed++ == 0) std::printf("\n");
    for (const auto& d : row.differences) {
      std::printf("%s > %s: %s\n", row.client.c_str(), row.server.c_str(), d.c_str());
    }
  }
  if (failed == 0) {
    std::printf("\ncontract: all %zu pairs closed the same way, as docs/contract.md says\n", rows.size());
    return 0;
  }
  std::printf("\ncontract: %zu of %zu pairs differed\n", failed, rows.size());
  return 1;
}

int parse_demo(std::span<char* const> args, DemoOptions& options) {
  CommandLine line;
  if (std::string problem = parse_command_line(in_demo, args, line); !problem.empty()) {
    return usage_error("demo", problem);
  }
  if (!line.positional.empty()) return usage_error("demo", "unexpected argument '" + line.positional[0] + "'");
  options.backend = line.tls.backend;
  options.certs = line.certs;
  options.close = line.close;
  options.steps = line.steps;
  options.trace = line.trace;
  options.help = line.help;
  if (!options.backend.empty()) {
    const auto all = unitls::available_backends();
    if (std::find(all.begin(), all.end(), options.backend) == all.end()) {
      std::string names;
      for (std::string_view b : all) names += (names.empty() ? "" : ", ") + str(b);
      return usage_error("demo", "--backend " + options.backend + ": not compiled in (" + names + ")");
    }
  }
  return -1;
}

}  // namespace

int demo_command(std::span<char* const> args) {
  DemoOptions options;
  if (const int rc = parse_demo(args, options); rc >= 0) return rc;
  if (options.help) {
    const std::string help = help_text("demo");
    std::fwrite(help.data(), 1, help.size(), stdout);
    return 0;
  }
  CertDir certs;
  std::string error;
  if (!prepare_certs(options.certs, certs, error)) {
    std::fprintf(stderr, "unitls demo: %s\n", error.c_str());
    return 1;
  }
  if (!options.steps) return run_matrix(options, certs);

  Contexts contexts;
  const std::string_view backend =
      options.backend.empty() ? unitls::default_backend() : std::string_view(options.backend);
  if (!make_contexts(backend, certs, contexts, error)) {
    std::fprintf(stderr, "unitls demo: %s\n", error.c_str());
    return 1;
  }
  std::printf("unitls %s demo --steps; certificates: %s\n", str(unitls::version).c_str(),
              certs.origin.c_str());
  return demo_steps(contexts);
}

}  // namespace tool
