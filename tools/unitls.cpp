// unitls — the command-line face of the library.
//
//   unitls --version   the library version and the backends compiled in
//   unitls --help      usage
//   unitls demo        a real client and server over loopback TCP, printing
//                      every call of the shutdown contract (SEMANTICS.md)
//
// The demo is also a smoke test: it exits 0 only if every step returned what
// the contract says, so script/demo and a packager can trust a green run.
#include <unitls/unitls.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using unitls::errc;

constexpr std::string_view usage_text =
    "usage: unitls --version\n"
    "       unitls --help\n"
    "       unitls demo [--backend NAME] [--certs DIR]\n"
    "\n"
    "  -V, --version     print the unitls version and the TLS backends compiled in,\n"
    "                    the default one marked, each with its library's version\n"
    "  -h, --help        print this help\n"
    "\n"
    "  demo              run a TLS client and a TLS server (in its own thread) over\n"
    "                    loopback TCP (127.0.0.1, a free port, blocking sockets) and\n"
    "                    print each call as a row: who, call, return value,\n"
    "                    last_error(), shutdown flags (SENT|RECEIVED, - for none).\n"
    "                    Act 1: handshake, one message each way, a clean\n"
    "                    bidirectional close (shutdown() 0 then 1).\n"
    "                    Act 2: a server that closes its socket without\n"
    "                    close_notify; the client sees unexpected_eof.\n"
    "                    The client verifies the server (ca.pem, name \"localhost\").\n"
    "                    Ends with \"contract: ok\" or the steps that differed.\n"
    "    --backend NAME  use backend NAME instead of the default (see --version)\n"
    "    --certs DIR     take DIR/ca.pem, DIR/server.pem and DIR/server.key\n"
    "                    (e.g. build/tests/certs); without it a throwaway CA and\n"
    "                    server certificate are made in a temporary directory\n"
    "                    with the openssl command-line tool\n"
    "\n"
    "exit status: 0 success, 1 failure (or a step broke the contract), 2 usage error\n";

int usage_error(const std::string& why) {
  std::fprintf(stderr, "unitls: %s\n\n%.*s", why.c_str(), static_cast<int>(usage_text.size()),
               usage_text.data());
  return 2;
}

std::string str(std::string_view s) { return std::string(s); }

// ---- --version --------------------------------------------------------------

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

// ---- certificates -------------------------------------------------------------

// Where the demo's PKI lives; a directory we made is removed afterwards.
struct CertDir {
  fs::path dir;
  std::string origin;  // for the banner
  bool temporary = false;

  CertDir() = default;
  CertDir(const CertDir&) = delete;
  CertDir& operator=(const CertDir&) = delete;
  ~CertDir() {
    std::error_code ignored;
    if (temporary) fs::remove_all(dir, ignored);
  }
};

bool has_pki(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "ca.pem", ec) && fs::is_regular_file(dir / "server.pem", ec) &&
         fs::is_regular_file(dir / "server.key", ec);
}

std::optional<fs::path> find_program(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const fs::path candidate = fs::path(str(rest.substr(0, colon))) / str(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  }
  return std::nullopt;
}

// Runs a program without a shell (no quoting to get wrong), its output going
// to log. True when it exited 0.
bool run(const fs::path& program, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  std::string argv0 = program.string();
  argv.push_back(argv0.data());
  std::vector<std::string> copies = args;
  for (auto& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv0.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A throwaway CA and a "localhost" server certificate signed by it, ECDSA
// P-256 (every backend has it), valid one day.
bool make_throwaway_pki(const fs::path& openssl, const fs::path& dir, std::string& error) {
  const fs::path log = dir / "openssl.log";
  {
    std::ofstream ext(dir / "server.ext");
    ext << "basicConstraints=critical,CA:FALSE\n"
           "keyUsage=critical,digitalSignature\n"
           "extendedKeyUsage=serverAuth\n"
           "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    if (!ext) {
      error = "cannot write " + (dir / "server.ext").string();
      return false;
    }
  }
  std::random_device random;
  const std::string serial = "0x" + std::to_string(random()) + std::to_string(random());
  const auto p = [&](const char* name) { return (dir / name).string(); };
  const std::vector<std::vector<std::string>> steps = {
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       p("ca.key"), "-out", p("ca.pem"), "-days", "1", "-subj", "/CN=unitls demo CA", "-addext",
       "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
      {"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       p("server.key"), "-out", p("server.csr"), "-subj", "/CN=localhost"},
      {"x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
       "-set_serial", serial, "-days", "1", "-extfile", p("server.ext"), "-out", p("server.pem")},
  };
  for (const auto& step : steps) {
    if (!run(openssl, step, log)) {
      std::ifstream in(log);
      std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      error = "`openssl " + step[0] + "` failed while making a throwaway CA in " + dir.string() +
              (output.empty() ? std::string() : ":\n" + output);
      return false;
    }
  }
  return true;
}

// --certs DIR, else a throwaway PKI made with openssl, else the test PKI of
// the build tree this program sits in (build/tests/certs).
bool prepare_certs(const std::string& requested, CertDir& certs, std::string& error) {
  if (!requested.empty()) {
    certs.dir = requested;
    certs.origin = requested;
    if (!has_pki(certs.dir)) {
      error = "--certs " + requested + ": expected ca.pem, server.pem and server.key in it";
      return false;
    }
    return true;
  }
  if (const auto openssl = find_program("openssl")) {
    const fs::path base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
    std::string pattern = (base / "unitls-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      error = "cannot create a temporary directory under " + base.string();
      return false;
    }
    certs.dir = pattern;
    certs.temporary = true;
    certs.origin = "throwaway CA in " + pattern + " (made with " + openssl->string() + ")";
    return make_throwaway_pki(*openssl, certs.dir, error);
  }
  std::error_code ec;
  const fs::path built =
      fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / "tests" / "certs";
  if (!ec && has_pki(built)) {
    certs.dir = built;
    certs.origin = built.string() + " (the build's test PKI)";
    return true;
  }
  error =
      "the demo needs certificates: pass --certs DIR (with ca.pem, server.pem, server.key), "
      "or install the openssl command-line tool (apt-get install openssl) so a throwaway CA "
      "can be made";
  return false;
}

// ---- loopback TCP ---------------------------------------------------------------

// Blocking calls give up after this long, so a broken backend shows up as a
// failed step instead of a hung demo.
constexpr int io_timeout_seconds = 10;

void set_timeouts(int fd) {
  const timeval tv{io_timeout_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::system_category().message(errno);
}

sockaddr_in loopback(unsigned short port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

class Listener {
 public:
  bool open(std::string& error) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      error = errno_text("socket");
      return false;
    }
    set_timeouts(fd_);  // accept() honours SO_RCVTIMEO on Linux
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      error = errno_text("listening on 127.0.0.1");
      return false;
    }
    port_ = ntohs(addr.sin_port);
    return true;
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
  }
  int accept_one() const {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) set_timeouts(fd);
    return fd;
  }
  unsigned short port() const { return port_; }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

int connect_loopback(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_timeouts(fd);
  const sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// ---- the printout and the contract check --------------------------------------

std::string error_name(std::error_code ec) {
  if (!ec) return "ok";
  if (ec.category() == unitls::category()) return unitls::to_string(static_cast<errc>(ec.value()));
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

std::string flag_names(unsigned flags) {
  std::string s;
  if ((flags & unitls::sent_shutdown) != 0) s = "SENT";
  if ((flags & unitls::received_shutdown) != 0) s += s.empty() ? "RECEIVED" : "|RECEIVED";
  return s.empty() ? "-" : s;
}

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

struct Contexts {
  std::unique_ptr<unitls::Context> client, server;
};

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
  Listener listener;
  std::string error;
  if (!listener.open(error)) {
    report.failure(error);
    return false;
  }

  auto accepted = on_server_thread([&] {
    Peer p;
    p.fd = listener.accept_one();
    if (p.fd < 0) return p;
    p.tls = contexts.server->wrap(unitls::make_fd_transport(p.fd));
    if (p.tls) p.handshake = p.tls->handshake();
    return p;
  });
  client.fd = connect_loopback(listener.port());
  if (client.fd >= 0) {
    client.tls = contexts.client->wrap(unitls::make_fd_transport(client.fd));
    if (client.tls) client.handshake = client.tls->handshake();
  }
  server = accepted.get();

  if (client.fd < 0 || server.fd < 0) {
    report.failure("no TCP connection on 127.0.0.1:" + std::to_string(listener.port()));
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

struct DemoOptions {
  std::string backend;
  std::string certs;
};

std::unique_ptr<unitls::Context> make_context(const unitls::Config& config, const char* side,
                                              std::string& error) {
  std::error_code ec;
  std::string message;
  auto context = unitls::Context::create(config, ec, &message);
  if (!context) {
    error = std::string("cannot create the ") + side +
            " context: " + (message.empty() ? ec.message() : message) + " (" + error_name(ec) + ")";
  }
  return context;
}

int demo(const DemoOptions& options) {
  CertDir certs;
  std::string error;
  if (!prepare_certs(options.certs, certs, error)) {
    std::fprintf(stderr, "unitls demo: %s\n", error.c_str());
    return 1;
  }

  unitls::Config server_config;
  server_config.role = unitls::Role::server;
  server_config.backend = options.backend;
  server_config.certificate_file = (certs.dir / "server.pem").string();
  server_config.private_key_file = (certs.dir / "server.key").string();
  server_config.verify_peer = false;  // for a server: no client certificate asked

  unitls::Config client_config;
  client_config.role = unitls::Role::client;
  client_config.backend = options.backend;
  client_config.ca_file = (certs.dir / "ca.pem").string();
  client_config.server_name = "localhost";
  client_config.verify_peer = true;

  Contexts contexts;
  contexts.server = make_context(server_config, "server", error);
  if (contexts.server) contexts.client = make_context(client_config, "client", error);
  if (!contexts.server || !contexts.client) {
    std::fprintf(stderr, "unitls demo: %s\n", error.c_str());
    return 1;
  }

  const std::string_view backend = contexts.client->backend();
  std::printf("unitls %s demo: backend %s (%s)\n", str(unitls::version).c_str(),
              str(backend).c_str(), str(unitls::backend_library_version(backend)).c_str());
  std::printf("certificates: %s; the client verifies \"localhost\" against ca.pem\n",
              certs.origin.c_str());

  Report report;
  act_clean_close(report, contexts);
  act_truncation(report, contexts);
  return report.finish();
}

int parse_demo(int argc, char** argv, DemoOptions& options) {
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string* target = nullptr;
    std::string_view name;
    for (auto [flag, field] : {std::pair{std::string_view("--backend"), &options.backend},
                               std::pair{std::string_view("--certs"), &options.certs}}) {
      if (arg == flag ||
          (arg.starts_with(flag) && arg.size() > flag.size() && arg[flag.size()] == '=')) {
        target = field;
        name = flag;
      }
    }
    if (target == nullptr) return usage_error("demo: unknown option '" + str(arg) + "'");
    if (arg.size() > name.size()) {
      *target = str(arg.substr(name.size() + 1));
    } else if (i + 1 < argc) {
      *target = argv[++i];
    } else {
      return usage_error("demo: " + str(name) + " needs a value");
    }
    if (target->empty()) return usage_error("demo: " + str(name) + " needs a non-empty value");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that hangs up must show as transport_error, not kill the demo.
  std::signal(SIGPIPE, SIG_IGN);

  if (argc < 2) return usage_error("a command is required");
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    if (argc > 2) return usage_error(str(command) + " takes no arguments");
    std::printf("%.*s", static_cast<int>(usage_text.size()), usage_text.data());
    return 0;
  }
  if (command == "--version" || command == "-V") {
    if (argc > 2) return usage_error(str(command) + " takes no arguments");
    return print_version();
  }
  if (command == "demo") {
    DemoOptions options;
    if (const int rc = parse_demo(argc, argv, options); rc != 0) return rc;
    return demo(options);
  }
  return usage_error("unknown command '" + str(command) + "'");
}
