// `unitls demo --steps`: one backend, two acts, every call of the shutdown
// contract printed as a row and compared with docs/contract.md. Blocking sockets
// and a server thread: the plainest way to use the library, step by step.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <future>
#include <optional>

#include "commands.hpp"
#include "common.hpp"

namespace tool {

namespace {

using unitls::errc;

// Blocking calls give up after this long, so a broken backend shows up as a
// failed step instead of a hung demo.
constexpr int io_timeout_seconds = 10;


// What the contract says a call returns.
struct Expect {
  long long ret;
  std::optional<errc> error;  // nullopt: last_error() is empty
  unsigned flags;
};

constexpr unsigned both = unitls::sent_shutdown | unitls::received_shutdown;

class Report {
 public:
  void act(const char* label, const char* title) {
    act_ = label;
    std::printf("\n%s: %s\n", label, title);
    print_row("who", "call", "ret", "last_error", "flags", "");
  }

  // One SecureSocket call: prints the row and compares it with the contract.
  bool row(const char* who, const std::string& call, long long ret,
           const unitls::SecureSocket& socket, const Expect& want, const std::string& note = {}) {
    const std::error_code ec = socket.last_error();
    const unsigned flags = socket.get_shutdown();
    print_row(who, call, std::to_string(ret), error_name(ec), flag_names(flags), note);
    const bool error_ok = want.error ? ec == unitls::make_error_code(*want.error) : !ec;
    if (ret == want.ret && error_ok && flags == want.flags) return true;
    const std::string expected = std::to_string(want.ret) + " " +
                                 (want.error ? unitls::to_string(*want.error) : "ok") + " " +
                                 flag_names(want.flags);
    std::string native;
    if (socket.native_error()) native = " (native: " + socket.native_error().message() + ")";
    std::printf("  %-6s %-28s ^ the contract says: %s%s\n", "", "", expected.c_str(),
                native.c_str());
    differences_.push_back(act_ + ": " + who + " " + call + " returned " + std::to_string(ret) +
                           " " + error_name(ec) + " " + flag_names(flags) + ", expected " +
                           expected);
    return false;
  }

  // Something that is not a SecureSocket call (closing a raw socket).
  void action(const char* who, const char* what) { std::printf("  %-6s %s\n", who, what); }

  void failure(const std::string& what) {
    std::printf("  %s\n", what.c_str());
    differences_.push_back(act_ + ": " + what);
  }

  int finish() const {
    if (differences_.empty()) {
      std::printf("\ncontract: ok\n");
      return 0;
    }
    std::printf("\ncontract: %zu step(s) differed\n", differences_.size());
    for (const auto& d : differences_) std::printf("  - %s\n", d.c_str());
    return 1;
  }

 private:
  static void print_row(const std::string& who, const std::string& call, const std::string& ret,
                        const std::string& error, const std::string& flags,
                        const std::string& note) {
    char line[512];
    std::snprintf(line, sizeof line, "  %-6s %-28s %4s  %-17s %-14s %s", who.c_str(), call.c_str(),
                  ret.c_str(), error.c_str(), flags.c_str(), note.c_str());
    std::string text = line;
    text.erase(text.find_last_not_of(' ') + 1);
    std::printf("%s\n", text.c_str());
  }

  std::string act_;
  std::vector<std::string> differences_;
};

// ---- the demo ---------------------------------------------------------------------

struct Peer {
  std::unique_ptr<unitls::SecureSocket> tls;
  int fd = -1;  // owned by tls's transport
  int handshake = -1;
};

std::string in_quotes(std::string_view text) { return "\"" + str(text) + "\""; }

std::string text_of(const std::array<std::byte, 4096>& buf, long long n) {
  return n > 0 ? std::string(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n))
               : std::string();
}

// Every server call runs on a thread of its own while the main thread is the
// client; the main thread waits for each answer, so the rows print in order.
template <class F>
auto on_server_thread(F f) {
  return std::async(std::launch::async, std::move(f));
}

// Connects a client to a server over loopback and runs both handshakes at
// once. False when there is no connection to go on with.
bool connect_pair(Report& report, Contexts& contexts, Peer& client, Peer& server) {
  std::string error;
  unsigned short port = 0;
  const int listener = listen_tcp("127.0.0.1", 0, &port, error);
  if (listener < 0) {
    report.failure(error);
    return false;
  }
  set_io_timeouts(listener, io_timeout_seconds);  // accept() honours SO_RCVTIMEO on Linux

  auto accepted = on_server_thread([&] {
    Peer p;
    p.fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (p.fd < 0) return p;
    set_io_timeouts(p.fd, io_timeout_seconds);
    p.tls = contexts.server->wrap_fd(p.fd);
    if (p.tls) p.handshake = p.tls->handshake();
    return p;
  });
  client.fd = connect_tcp("127.0.0.1", std::to_string(port), error);
  if (client.fd >= 0) {
    set_io_timeouts(client.fd, io_timeout_seconds);
    client.tls = contexts.client->wrap_fd(client.fd);
    if (client.tls) client.handshake = client.tls->handshake();
  }
  server = accepted.get();
  ::close(listener);

  if (client.fd < 0 || server.fd < 0) {
    report.failure("no TCP connection on 127.0.0.1:" + std::to_string(port));
    return false;
  }
  if (!client.tls || !server.tls) {
    report.failure("Context::wrap returned nullptr");
    return false;
  }
  const auto facts = [](const unitls::SecureSocket& s) {
    return s.protocol_version() + " " + s.cipher();
  };
  const bool server_ok = report.row("server", "handshake()", server.handshake, *server.tls,
                                    {1, std::nullopt, 0}, facts(*server.tls));
  const bool client_ok = report.row("client", "handshake()", client.handshake, *client.tls,
                                    {1, std::nullopt, 0}, facts(*client.tls));
  return server_ok && client_ok;
}

void act_clean_close(Report& report, Contexts& contexts) {
  report.act("act 1", "a clean bidirectional close");
  Peer client, server;
  if (!connect_pair(report, contexts, client, server)) return;
  std::array<std::byte, 4096> buf{};

  const std::string hello = "hello";
  long long n = client.tls->write(hello);
  report.row("client", "write(\"hello\")", n, *client.tls, {5, std::nullopt, 0});

  n = on_server_thread([&] { return server.tls->read(buf); }).get();
  report.row("server", "read()", n, *server.tls, {5, std::nullopt, 0}, in_quotes(text_of(buf, n)));

  const std::string answer = "hello yourself";
  n = on_server_thread([&] { return server.tls->write(answer); }).get();
  report.row("server", "write(" + in_quotes(answer) + ")", n, *server.tls,
             {static_cast<long long>(answer.size()), std::nullopt, 0});

  n = client.tls->read(buf);
  report.row("client", "read()", n, *client.tls,
             {static_cast<long long>(answer.size()), std::nullopt, 0}, in_quotes(text_of(buf, n)));

  n = client.tls->shutdown();
  report.row("client", "shutdown()", n, *client.tls, {0, std::nullopt, unitls::sent_shutdown},
             "close_notify sent");

  n = on_server_thread([&] { return server.tls->read(buf); }).get();
  report.row("server", "read()", n, *server.tls, {0, errc::zero_return, unitls::received_shutdown},
             "the client's close_notify");

  n = on_server_thread([&] { return server.tls->shutdown(); }).get();
  report.row("server", "shutdown()", n, *server.tls, {1, std::nullopt, both}, "close_notify sent");

  n = client.tls->shutdown();
  report.row("client", "shutdown()", n, *client.tls, {1, std::nullopt, both},
             "the server's close_notify");
}

void act_truncation(Report& report, Contexts& contexts) {
  report.act("act 2", "the server closes without close_notify (truncation)");
  Peer client, server;
  if (!connect_pair(report, contexts, client, server)) return;
  std::array<std::byte, 4096> buf{};

  const std::string last = "last words";
  long long n = on_server_thread([&] { return server.tls->write(last); }).get();
  report.row("server", "write(" + in_quotes(last) + ")", n, *server.tls,
             {static_cast<long long>(last.size()), std::nullopt, 0});

  // An attacker (or a crashing peer) ending the TCP stream: FIN, no alert.
  ::shutdown(server.fd, SHUT_RDWR);
  server.tls.reset();  // closes the fd with its transport
  report.action("server", "shutdown(fd, SHUT_RDWR), close(fd): no close_notify");

  n = client.tls->read(buf);
  report.row("client", "read()", n, *client.tls,
             {static_cast<long long>(last.size()), std::nullopt, 0},
             in_quotes(text_of(buf, n)) + " (data before the EOF)");

  n = client.tls->read(buf);
  report.row("client", "read()", n, *client.tls, {-1, errc::unexpected_eof, 0},
             "truncation: the connection is dead");

  n = client.tls->shutdown();
  report.row("client", "shutdown()", n, *client.tls, {-1, errc::unexpected_eof, 0},
             "sticky: nothing sent");
}

}  // namespace

int demo_steps(Contexts& contexts) {
  const std::string_view backend = contexts.client->backend();
  std::printf("backend %s (%s); the client verifies \"localhost\" against ca.pem\n",
              str(backend).c_str(), str(unitls::backend_library_version(backend)).c_str());
  Report report;
  act_clean_close(report, contexts);
  act_truncation(report, contexts);
  return report.finish();
}

}  // namespace tool
