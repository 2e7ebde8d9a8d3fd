// unitls-bench: unitls beside each TLS library used directly, the same
// workloads in the same run (docs/benchmarks.md).
//
// For every compiled-in backend and TLS version, each workload runs through
// unitls and through the stack's own API (bench/native_<name>.cpp), driven
// by the same code (one thread, both ends of each connection, over loopback
// TCP; idle memory over in-memory pipes), interleaved, several repetitions;
// one table of medians and ratios unitls÷native at the end.
//
// --instructions runs the same workloads under valgrind's callgrind (the
// program starts itself under valgrind) and reports instructions per byte,
// per handshake and per shutdown instead of time: stable on a loaded machine.
#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#else
#define BENCH_HAVE_CALLGRIND 0
#endif

#include "alloc_count.hpp"
#include "bench.hpp"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string version_name(Version v) { return v == Version::tls1_3 ? "1.3" : "1.2"; }

bool under_valgrind() {
#if BENCH_HAVE_CALLGRIND
  if (RUNNING_ON_VALGRIND) return true;
#endif
  return false;
}

// ---- loopback TCP ------------------------------------------------------------------

// A listening socket on 127.0.0.1 (a free port), made once.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) fail(std::string("socket: ") + std::strerror(errno));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      fail(std::string("listen on 127.0.0.1: ") + std::strerror(errno));
    address_ = a;
  }
  ~Listener() { ::close(fd_); }
  int fd() const { return fd_; }
  const sockaddr_in& address() const { return address_; }

 private:
  int fd_ = -1;
  sockaddr_in address_{};
};

// Both ends of one loopback TCP connection, non-blocking, Nagle off (both
// libraries see the same sockets).
class TcpPair {
 public:
  explicit TcpPair(const Listener& listener) {
    client_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client_ < 0) fail(std::string("socket: ") + std::strerror(errno));
    const sockaddr_in& a = listener.address();
    if (::connect(client_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
      fail(std::string("connect to 127.0.0.1: ") + std::strerror(errno));
    server_ = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (server_ < 0) fail(std::string("accept: ") + std::strerror(errno));
    for (int fd : {client_, server_}) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
  }
  ~TcpPair() {
    ::close(client_);
    ::close(server_);
  }
  TcpPair(const TcpPair&) = delete;
  TcpPair& operator=(const TcpPair&) = delete;

  Link client() const { return Link{client_, nullptr, nullptr}; }
  Link server() const { return Link{server_, nullptr, nullptr}; }
  int server_fd() const { return server_; }

 private:
  int client_ = -1, server_ = -1;
};

// ---- driving both ends ----------------------------------------------------------------

void handshake_both(Endpoint& client, Endpoint& server) {
  bool client_done = false, server_done = false;
  for (int i = 0; i < 10000 && !(client_done && server_done); ++i) {
    if (!client_done) client_done = client.handshake() == Step::done;
    if (!server_done) server_done = server.handshake() == Step::done;
  }
  if (!client_done || !server_done) fail("the handshake does not complete");
}

void shutdown_both(Endpoint& client, Endpoint& server) {
  bool client_done = false, server_done = false;
  for (int i = 0; i < 10000 && !(client_done && server_done); ++i) {
    if (!client_done) client_done = client.shutdown() == Step::done;
    if (!server_done) server_done = server.shutdown() == Step::done;
  }
  if (!client_done || !server_done) fail("the bidirectional shutdown does not complete");
}

// All of data from writer to reader, in writes of `chunk` bytes; each write
// is read out before the next (reads of up to `chunk` bytes), as an event
// loop would: once poll() says the reader's socket (reader_fd, -1: pipes)
// is readable, so that no read finds the bytes still in the kernel (which
// would make the count of reads, and the instructions, vary from run to
// run). Returns the calls made (writes + reads that returned data).
std::size_t transfer(Endpoint& writer, Endpoint& reader, std::size_t chunk, std::size_t total,
                     std::vector<unsigned char>& out, std::vector<unsigned char>& in,
                     int reader_fd = -1) {
  std::size_t calls = 0;
  for (std::size_t sent = 0; sent < total;) {
    const std::size_t size = std::min(chunk, total - sent);
    std::size_t written = 0;
    for (int spins = 0; written < size; ++spins) {
      const std::size_t n = writer.write(out.data() + written, size - written);
      written += n;
      if (n) ++calls;
      if (spins > 100000) fail("a write makes no progress");
    }
    std::size_t got = 0;
    for (int spins = 0; got < size; ++spins) {
      if (reader_fd >= 0) {
        pollfd p{reader_fd, POLLIN, 0};
        (void)::poll(&p, 1, 1000);
      }
      const std::size_t n = reader.read(in.data(), std::min(in.size(), size - got));
      got += n;
      if (n) ++calls;
      if (spins > 100000) fail("a read makes no progress");
    }
    sent += size;
  }
  return calls;
}

// One small message each way: TLS 1.3 tickets have arrived, nothing is in flight.
void ping(Endpoint& client, Endpoint& server) {
  std::vector<unsigned char> a(64, 'p'), b(64);
  transfer(server, client, 64, 64, a, b);
  transfer(client, server, 64, 64, a, b);
}

struct Connection {
  std::unique_ptr<TcpPair> tcp;
  std::unique_ptr<Endpoint> client, server;
};

Connection open(Stack& stack, const Listener& listener) {
  Connection c;
  c.tcp = std::make_unique<TcpPair>(listener);
  c.client = stack.client(c.tcp->client());
  c.server = stack.server(c.tcp->server());
  return c;
}

// ---- measuring: wall clock, or instructions under callgrind ---------------------------

// A measured region: wall time, and under callgrind the instructions
// (counted only between start() and stop(); dump() writes them out under
// a label the parent process reads back).
class Meter {
 public:
  void start() {
#if BENCH_HAVE_CALLGRIND
    if (callgrind_) CALLGRIND_TOGGLE_COLLECT;
#endif
    begin_ = Clock::now();
  }
  void stop() {
    elapsed_ += Clock::now() - begin_;
#if BENCH_HAVE_CALLGRIND
    if (callgrind_) CALLGRIND_TOGGLE_COLLECT;
#endif
  }
  double seconds() const { return std::chrono::duration<double>(elapsed_).count(); }

  static void set_callgrind(bool on) { callgrind_ = on; }
  static bool callgrind() { return callgrind_; }
  // Starts a fresh count (callgrind: zeroes what was collected).
  void reset() {
    elapsed_ = {};
#if BENCH_HAVE_CALLGRIND
    if (callgrind_) CALLGRIND_ZERO_STATS;
#endif
  }
  // Under callgrind: the instructions since reset(), written out as `label`.
  static void dump(const std::string& label) {
#if BENCH_HAVE_CALLGRIND
    if (callgrind_) CALLGRIND_DUMP_STATS_AT(label.c_str());
#else
    (void)label;
#endif
  }

 private:
  static inline bool callgrind_ = false;
  Clock::time_point begin_{};
  Clock::duration elapsed_{};
};

// ---- workloads --------------------------------------------------------------------

struct Sizes {
  std::size_t bulk16_bytes = 64u << 20;
  std::size_t bulk1_bytes = 16u << 20;
  int handshakes = 100;
  int shutdowns = 200;
  std::size_t idle_connections = 1000;
  std::size_t alloc_writes = 4096;
  int repetitions = 5;
};

// One measurement: `value` in the workload's unit; `per` divides the
// callgrind count (bytes, handshakes, shutdowns).
struct Sample {
  double value = 0;
  double per = 1;
};

// The stacks of one library for one (backend, version): one whose client
// offers sessions, one whose client never does.
struct Library {
  std::string name;  // "unitls" or "native"
  std::unique_ptr<Stack> resuming, full;
  std::string cipher;  // what it negotiated
};

struct Workload {
  std::string id;     // for --workloads
  std::string title;  // for the table
  std::string unit;   // wall-clock unit
  std::string instructions_unit;
  // Runs once on `library`, measured by `meter`.
  std::function<Sample(Library&, const Listener&, Meter&, const Sizes&)> run;
};

Sample bulk(Library& lib, const Listener& listener, Meter& meter, std::size_t chunk,
            std::size_t total) {
  Connection c = open(*lib.resuming, listener);
  handshake_both(*c.client, *c.server);
  ping(*c.client, *c.server);
  lib.cipher = c.client->cipher();
  std::vector<unsigned char> out(chunk, 'x'), in(chunk);
  const int fd = c.tcp->server_fd();
  transfer(*c.client, *c.server, chunk, 16 * chunk, out, in, fd);  // warm: buffers allocated
  meter.reset();
  meter.start();
  transfer(*c.client, *c.server, chunk, total, out, in, fd);
  meter.stop();
  c.client->mark_closed();
  c.server->mark_closed();
  return {static_cast<double>(total) / meter.seconds() / 1e6, static_cast<double>(total)};
}

Sample handshakes(Library& lib, const Listener& listener, Meter& meter, int count, bool resume) {
  Stack& stack = resume ? *lib.resuming : *lib.full;
  auto one = [&](bool measured) {
    auto tcp = std::make_unique<TcpPair>(listener);
    if (measured) meter.start();
    auto client = stack.client(tcp->client());
    auto server = stack.server(tcp->server());
    handshake_both(*client, *server);
    if (resume) shutdown_both(*client, *server);
    const bool resumed = client->resumed();
    if (!resume) {
      client->mark_closed();
      server->mark_closed();
    }
    client->release();
    server->release();
    if (measured) meter.stop();
    if (measured && resumed != resume)
      fail(lib.name + (resume ? ": a handshake did not resume" : ": a handshake resumed"));
  };
  one(false);  // resuming: the first session; both: first-use work out of the count
  meter.reset();
  for (int i = 0; i < count; ++i) one(true);
  return {count / meter.seconds(), static_cast<double>(count)};
}

Sample shutdowns(Library& lib, const Listener& listener, Meter& meter, int count) {
  std::vector<Connection> connections;
  for (int i = 0; i < count + 1; ++i) {
    connections.push_back(open(*lib.resuming, listener));
    handshake_both(*connections.back().client, *connections.back().server);
    ping(*connections.back().client, *connections.back().server);
  }
  shutdown_both(*connections[0].client, *connections[0].server);  // first use, not counted
  meter.reset();
  for (int i = 1; i <= count; ++i) {
    meter.start();
    shutdown_both(*connections[i].client, *connections[i].server);
    meter.stop();
  }
  return {meter.seconds() / count * 1e6, static_cast<double>(count)};
}

// Heap allocations per read or write call once a connection is warm: 1 KiB
// writes, each read out.
Sample allocations(Library& lib, const Listener& listener, Meter&, const Sizes& sizes) {
  Connection c = open(*lib.resuming, listener);
  handshake_both(*c.client, *c.server);
  ping(*c.client, *c.server);
  std::vector<unsigned char> out(1024, 'x'), in(1024);
  transfer(*c.client, *c.server, 1024, 64 * 1024, out, in);
  transfer(*c.server, *c.client, 1024, 64 * 1024, out, in);
  const unsigned long before = allocation_count();
  std::size_t calls = transfer(*c.client, *c.server, 1024, sizes.alloc_writes * 1024, out, in);
  calls += transfer(*c.server, *c.client, 1024, sizes.alloc_writes * 1024, out, in);
  const unsigned long made = allocation_count() - before;
  c.client->mark_closed();
  c.server->mark_closed();
  return {static_cast<double>(made) / static_cast<double>(calls), 1};
}

// ---- idle memory --------------------------------------------------------------------

std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// glibc's per-thread cache (tcache) keeps freed chunks that mallinfo2()
// still counts as in use, so a drop measured by freeing would come out
// short. glibc reads the tunable that turns it off only at start-up: the
// program starts itself again once, with it set (only when it measures idle
// memory: malloc without tcache is slower for both sides).
void restart_without_tcache(char** argv) {
  constexpr std::string_view tunable = "glibc.malloc.tcache_count";
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string tunables = current ? current : "";
  if (tunables.find(tunable) != std::string::npos || under_valgrind()) return;
  if (!tunables.empty()) tunables += ':';
  tunables += std::string(tunable) + "=0";
  ::setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  ::execv("/proc/self/exe", argv);
  std::fprintf(stderr, "unitls-bench: cannot restart with %s=0 (%s): idle memory may read low\n",
               std::string(tunable).c_str(), std::strerror(errno));
}

struct IdleRound {
  double client = 0, server = 0;
  std::size_t resumed = 0;
};

// N client/server pairs over pipes, handshaken, one message each way, all
// idle at once; then the servers are freed, then the clients: the drops in
// heap in use, divided by N, are what one idle connection holds.
IdleRound idle_round(Stack& stack, std::size_t n) {
  struct Pipes {
    Pipe to_server, to_client;
  };
  std::vector<Pipes> pipes(n);
  std::vector<std::unique_ptr<Endpoint>> clients, servers;
  clients.reserve(n);
  servers.reserve(n);
  // All N are opened before any handshake: a session is offered only to a
  // connection opened after the one that made it, so the first round is
  // all full handshakes and the second all resumptions.
  for (std::size_t i = 0; i < n; ++i) {
    clients.push_back(stack.client(Link{-1, &pipes[i].to_client, &pipes[i].to_server}));
    servers.push_back(stack.server(Link{-1, &pipes[i].to_server, &pipes[i].to_client}));
  }
  IdleRound r;
  for (std::size_t i = 0; i < n; ++i) {
    handshake_both(*clients[i], *servers[i]);
    ping(*clients[i], *servers[i]);
    if (!pipes[i].to_client.empty() || !pipes[i].to_server.empty())
      fail("bytes still in flight after the exchange");
    if (clients[i]->resumed()) ++r.resumed;
  }
  for (std::size_t i = 0; i < n; ++i) {
    clients[i]->mark_closed();
    servers[i]->mark_closed();
  }
  const std::size_t idle = heap_in_use();
  for (auto& s : servers) s->release();
  const std::size_t without_servers = heap_in_use();
  for (auto& c : clients) c->release();
  const std::size_t without_clients = heap_in_use();
  const double count = static_cast<double>(n);
  r.server = (static_cast<double>(idle) - static_cast<double>(without_servers)) / count;
  r.client = (static_cast<double>(without_servers) - static_cast<double>(without_clients)) / count;
  return r;
}

// ---- the table ------------------------------------------------------------------------

struct Row {
  std::string backend, tls, title, unit;
  std::vector<double> unitls, native;  // samples
};

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// (max - min) / median, as ±percent of the median (half the range).
std::string spread(const std::vector<double>& v) {
  if (v.size() < 2) return "-";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  const double m = median(v);
  if (m == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "±%.1f%%", (*hi - *lo) / 2 / std::fabs(m) * 100);
  return buf;
}

std::string number(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  const double a = std::fabs(v);
  if (a == 0)
    std::snprintf(buf, sizeof buf, "0");
  else if (a >= 1000)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a >= 10)
    std::snprintf(buf, sizeof buf, "%.1f", v);
  else
    std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

void print_table(const std::vector<Row>& rows, bool spreads) {
  std::printf("%-8s %-4s %-32s %-16s %12s %12s %14s %10s", "backend", "TLS", "workload", "unit",
              "unitls", "native", "unitls÷native", "diff");
  if (spreads) std::printf("  %-19s", "spread unitls/native");
  std::printf("\n");
  for (const Row& r : rows) {
    const double u = median(r.unitls), n = median(r.native);
    std::string ratio = "-";
    if (!std::isnan(u) && !std::isnan(n) && n != 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3f", u / n);
      ratio = buf;
    }
    std::string diff = std::isnan(u) || std::isnan(n) ? "-" : number(u - n);
    if (diff != "-" && u - n > 0) diff = "+" + diff;
    // printf pads by bytes; "÷" is two bytes, so the ratio column is one wider.
    std::printf("%-8s %-4s %-32s %-16s %12s %12s %15s %10s", r.backend.c_str(), r.tls.c_str(),
                r.title.c_str(), r.unit.c_str(), number(u).c_str(), number(n).c_str(),
                ratio.c_str(), diff.c_str());
    if (spreads) std::printf("  %s / %s", spread(r.unitls).c_str(), spread(r.native).c_str());
    std::printf("\n");
  }
}

// ---- options ----------------------------------------------------------------------------

struct Options {
  std::vector<std::string> workloads;  // empty: all
  std::string backend;                 // empty: every compiled-in one
  std::string tls = "all";             // all | best | 1.2 | 1.3
  std::string certs;
  Sizes sizes;
  bool quick = false;
  bool instructions = false;
  bool callgrind_child = false;
  std::string valgrind = "valgrind";
};

const char* const workload_ids[] = {"bulk16k", "bulk1k", "full", "resumed", "shutdown", "allocs", "idle"};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: unitls-bench [--instructions] [--quick] [--backend NAME] [--tls all|best|1.2|1.3]\n"
               "                    [--workloads LIST] [--repetitions N] [--connections N] [--certs DIR]\n"
               "  --instructions    count instructions under valgrind's callgrind instead of time\n"
               "  --quick           a tiny workload (CI runs it so that the benchmark cannot rot)\n"
               "  --backend NAME    one backend only (default: every compiled-in one)\n"
               "  --tls             all: every version each backend has (default); best: the newest\n"
               "  --workloads LIST  comma-separated, from: bulk16k,bulk1k,full,resumed,shutdown,allocs,idle\n"
               "  --repetitions N   samples per workload and library, interleaved (default 5)\n"
               "  --connections N   idle memory: connections open at once (default 1000)\n"
               "  --certs DIR       ca.pem, server.pem, server.key (default $UNITLS_TEST_CERTS,\n"
               "                    else build/tests/certs: the test PKI the build makes)\n"
               "  --valgrind PATH   the valgrind program for --instructions (default: valgrind)\n");
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "unitls-bench: %s (--help lists the options)\n", message.c_str());
  std::exit(2);
}

std::size_t positive(const std::string& option, const std::string& v) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n == 0 || v[0] == '-')
    usage_error(option + " wants a positive number, not '" + v + "'");
  return static_cast<std::size_t>(n);
}

Options parse(int argc, char** argv) {
  Options o;
  if (const char* env = std::getenv("UNITLS_TEST_CERTS")) o.certs = env;
  if (o.certs.empty()) o.certs = "build/tests/certs";
  std::optional<std::size_t> repetitions, connections;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--instructions") {
      o.instructions = true;
    } else if (arg == "--callgrind-child") {
      o.callgrind_child = true;
    } else if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--backend") {
      o.backend = value();
    } else if (arg == "--tls") {
      o.tls = value();
      if (o.tls != "all" && o.tls != "best" && o.tls != "1.2" && o.tls != "1.3")
        usage_error("--tls wants all, best, 1.2 or 1.3, not '" + o.tls + "'");
    } else if (arg == "--workloads") {
      std::string list = value();
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        const std::string id = list.substr(at, comma - at);
        if (std::find(std::begin(workload_ids), std::end(workload_ids), id) == std::end(workload_ids))
          usage_error("unknown workload '" + id + "' in --workloads");
        o.workloads.push_back(id);
        at = comma + 1;
      }
    } else if (arg == "--repetitions") {
      repetitions = positive(arg, value());
    } else if (arg == "--connections") {
      connections = positive(arg, value());
    } else if (arg == "--certs") {
      o.certs = value();
    } else if (arg == "--valgrind") {
      o.valgrind = value();
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      usage_error("unknown option '" + arg + "'");
    }
  }
  Sizes& s = o.sizes;
  if (o.instructions || o.callgrind_child) {
    // Instruction counts barely move between runs: one sample, smaller sizes.
    s = {1u << 20, 256u << 10, 10, 10, 0, 0, 1};
  }
  if (o.quick) {
    s.bulk16_bytes = 256u << 10;
    s.bulk1_bytes = 64u << 10;
    s.handshakes = 3;
    s.shutdowns = 3;
    s.idle_connections = 20;
    s.alloc_writes = 64;
    s.repetitions = 1;
  }
  if (repetitions) s.repetitions = static_cast<int>(*repetitions);
  if (connections) s.idle_connections = *connections;
  return o;
}

bool wanted(const Options& o, const std::string& id) {
  return o.workloads.empty() || std::find(o.workloads.begin(), o.workloads.end(), id) != o.workloads.end();
}

// ---- running --------------------------------------------------------------------------

std::vector<Workload> workloads(const Options& o) {
  std::vector<Workload> all = {
      {"bulk16k", "bulk, 16 KiB writes", "MB/s", "instr/byte",
       [](Library& l, const Listener& t, Meter& m, const Sizes& s) {
         return bulk(l, t, m, 16384, s.bulk16_bytes);
       }},
      {"bulk1k", "bulk, 1 KiB writes", "MB/s", "instr/byte",
       [](Library& l, const Listener& t, Meter& m, const Sizes& s) {
         return bulk(l, t, m, 1024, s.bulk1_bytes);
       }},
      {"full", "full handshakes", "handshakes/s", "instr/handshake",
       [](Library& l, const Listener& t, Meter& m, const Sizes& s) {
         return handshakes(l, t, m, s.handshakes, false);
       }},
      {"resumed", "resumed handshake + 2-way close", "handshakes/s", "instr/handshake",
       [](Library& l, const Listener& t, Meter& m, const Sizes& s) {
         return handshakes(l, t, m, s.handshakes, true);
       }},
      {"shutdown", "bidirectional shutdown", "µs/shutdown", "instr/shutdown",
       [](Library& l, const Listener& t, Meter& m, const Sizes& s) {
         return shutdowns(l, t, m, s.shutdowns);
       }},
      {"allocs", "heap allocations, warm", "allocs/call", "",
       [](Library& l, const Listener& t, Meter& m, const Sizes& s) {
         return allocations(l, t, m, s);
       }},
  };
  std::vector<Workload> chosen;
  for (auto& w : all) {
    if (!wanted(o, w.id)) continue;
    // Under callgrind only instructions are measured.
    if (o.callgrind_child && w.instructions_unit.empty()) continue;
    if (w.id == "allocs" && !counts_allocations()) {
      std::printf("(allocations are not counted in a sanitizer build)\n");
      continue;
    }
    chosen.push_back(std::move(w));
  }
  return chosen;
}

bool supports(std::string_view backend, Version version, const Certs& certs) {
  unitls::Config c;
  c.backend = std::string(backend);
  c.ca_file = certs.ca;
  c.server_name = server_name;
  c.min_version = c.max_version = version;
  std::error_code ec;
  std::string message;
  if (unitls::Context::create(c, ec, &message)) return true;
  if (ec == unitls::errc::unsupported) return false;
  fail("unitls: Context::create: " + message);
}

std::vector<Version> versions_for(const Options& o, std::string_view backend, const Certs& certs) {
  const bool has13 = supports(backend, Version::tls1_3, certs);
  if (o.tls == "best") return {has13 ? Version::tls1_3 : Version::tls1_2};
  if (o.tls == "1.2") return {Version::tls1_2};
  if (o.tls == "1.3") return has13 ? std::vector{Version::tls1_3} : std::vector<Version>{};
  return has13 ? std::vector{Version::tls1_2, Version::tls1_3} : std::vector{Version::tls1_2};
}

std::string label(std::string_view backend, Version v, const std::string& workload,
                  const std::string& library) {
  return std::string(backend) + "|" + version_name(v) + "|" + workload + "|" + library;
}

// Runs every workload for every backend and version; rows in the order run.
// Under callgrind each measurement is dumped as label|per.
std::vector<Row> run_all(const Options& o, const Certs& certs) {
  const Listener listener;
  const auto chosen = workloads(o);
  std::vector<Row> rows;
  bool any = false;
  for (std::string_view backend : unitls::available_backends()) {
    if (!o.backend.empty() && backend != o.backend) continue;
    any = true;
    for (Version v : versions_for(o, backend, certs)) {
      Library libs[2];
      libs[0].name = "unitls";
      libs[0].resuming = make_unitls_stack(backend, {v, true}, certs);
      libs[0].full = make_unitls_stack(backend, {v, false}, certs);
      libs[1].name = "native";
      libs[1].resuming = make_native_stack(backend, {v, true}, certs);
      libs[1].full = make_native_stack(backend, {v, false}, certs);
      const bool native = libs[1].resuming != nullptr;
      if (!native)
        std::printf("(%s TLS %s: no native driver in this build)\n", std::string(backend).c_str(),
                    version_name(v).c_str());

      const std::size_t first = rows.size();
      for (const Workload& w : chosen)
        rows.push_back({std::string(backend), version_name(v), w.title,
                        o.callgrind_child ? w.instructions_unit : w.unit, {}, {}});
      for (int rep = 0; rep < o.sizes.repetitions; ++rep) {
        for (std::size_t k = 0; k < chosen.size(); ++k) {
          // Interleaved, the order alternating: neither library always runs
          // on a cache or a CPU the other warmed.
          for (int j = 0; j < 2; ++j) {
            Library& lib = libs[(rep + j) % 2];
            if (!lib.resuming) continue;
            Meter meter;
            const Sample s = chosen[k].run(lib, listener, meter, o.sizes);
            if (o.callgrind_child) {
              char per[32];
              std::snprintf(per, sizeof per, "%.0f", s.per);
              Meter::dump(label(backend, v, chosen[k].id, lib.name) + "|" + per);
            }
            (lib.name == "unitls" ? rows[first + k].unitls : rows[first + k].native).push_back(s.value);
          }
        }
      }
      if (!o.callgrind_child && !chosen.empty()) {
        std::printf("%s TLS %s: %s; unitls negotiated %s, native %s%s\n", std::string(backend).c_str(),
                    version_name(v).c_str(), std::string(unitls::backend_library_version(backend)).c_str(),
                    libs[0].cipher.empty() ? "-" : libs[0].cipher.c_str(),
                    libs[1].cipher.empty() ? "-" : libs[1].cipher.c_str(),
                    native && libs[0].cipher != libs[1].cipher ? "  <-- DIFFERENT SUITES" : "");
        std::fflush(stdout);
      }

      if (wanted(o, "idle") && !o.callgrind_child && o.sizes.idle_connections > 0) {
        const std::string n = std::to_string(o.sizes.idle_connections);
        Row rc{std::string(backend), version_name(v), "idle client (" + n + ", full)", "bytes/conn", {}, {}};
        Row rs{std::string(backend), version_name(v), "idle server (" + n + ", full)", "bytes/conn", {}, {}};
        Row rcr{std::string(backend), version_name(v), "idle client (" + n + ", resumed)", "bytes/conn", {}, {}};
        Row rsr{std::string(backend), version_name(v), "idle server (" + n + ", resumed)", "bytes/conn", {}, {}};
        for (int j = 0; j < 2; ++j) {
          if (j == 1 && !native) continue;
          // Fresh stacks: the first round makes sessions, the second resumes them.
          auto stack = j == 0 ? make_unitls_stack(backend, {v, true}, certs)
                              : make_native_stack(backend, {v, true}, certs);
          const IdleRound full = idle_round(*stack, o.sizes.idle_connections);
          const IdleRound resumed = idle_round(*stack, o.sizes.idle_connections);
          if (full.resumed != 0 || resumed.resumed != o.sizes.idle_connections)
            fail(std::string(j == 0 ? "unitls" : "native") + ": idle memory rounds did not resume as intended");
          (j == 0 ? rc.unitls : rc.native).push_back(full.client);
          (j == 0 ? rs.unitls : rs.native).push_back(full.server);
          (j == 0 ? rcr.unitls : rcr.native).push_back(resumed.client);
          (j == 0 ? rsr.unitls : rsr.native).push_back(resumed.server);
        }
        for (Row* r : {&rc, &rs, &rcr, &rsr}) rows.push_back(std::move(*r));
      }
    }
  }
  if (!any) fail("backend '" + o.backend + "' is not compiled in (unitls::available_backends)");
  return rows;
}

// ---- callgrind: the parent side -------------------------------------------------------------

// Starts this program under callgrind (collection off until a workload
// turns it on), waits, and reads the dumps back: one per measurement,
// labelled backend|TLS|workload|library|per.
std::vector<Row> run_under_callgrind(const Options& o, char** argv, int argc) {
  // In $TMPDIR (else /tmp), a directory of its own for the dumps.
  std::string dir_template = (std::filesystem::temp_directory_path() / "unitls-bench-XXXXXX").string();
  const char* dir = ::mkdtemp(dir_template.data());
  if (!dir) fail("mkdtemp " + dir_template + ": " + std::strerror(errno));
  const std::string out = std::string(dir) + "/callgrind.out";
  // The program's own path: /proc/self/exe would name valgrind once it runs.
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) fail("cannot read /proc/self/exe: " + ec.message());
  std::vector<std::string> args = {o.valgrind, "--tool=callgrind", "--collect-atstart=no",
                                   "--dump-instr=no", "-q",
                                   "--callgrind-out-file=" + out, self, "--callgrind-child"};
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) != "--instructions") args.push_back(argv[i]);
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::execvp(cargs[0], cargs.data());
    std::fprintf(stderr,
                 "unitls-bench: cannot run %s (%s): --instructions needs valgrind (Debian: apt-get install "
                 "valgrind; script/bootstrap installs it)\n",
                 cargs[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::vector<Row> rows;
  std::map<std::string, std::size_t> index;  // backend|TLS|workload -> row
  Options child = o;
  child.callgrind_child = true;
  const auto workload_list = workloads(child);
  // The dumps in the order made (callgrind.out.1, .2, ...): rows come out in
  // the order the child ran them.
  std::vector<std::pair<long, std::filesystem::path>> dumps;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    dumps.emplace_back(ext.size() > 1 ? std::strtol(ext.c_str() + 1, nullptr, 10) : 0, entry.path());
  }
  std::sort(dumps.begin(), dumps.end());
  for (const auto& [number, path] : dumps) {
    std::ifstream in(path);
    std::string line, desc;
    double total = -1;
    while (std::getline(in, line)) {
      if (line.rfind("desc: Trigger: Client Request: ", 0) == 0) desc = line.substr(31);
      if (line.rfind("totals: ", 0) == 0) total = std::strtod(line.c_str() + 8, nullptr);
    }
    std::filesystem::remove(path);
    if (desc.empty() || total < 0) continue;
    // backend|TLS|workload|library|per
    std::vector<std::string> f;
    for (std::size_t at = 0; at <= desc.size();) {
      const std::size_t bar = std::min(desc.find('|', at), desc.size());
      f.push_back(desc.substr(at, bar - at));
      at = bar + 1;
    }
    if (f.size() != 5) continue;
    const std::string key = f[0] + "|" + f[1] + "|" + f[2];
    auto it = index.find(key);
    if (it == index.end()) {
      std::string title = f[2], unit;
      for (const auto& w : workload_list)
        if (w.id == f[2]) title = w.title, unit = w.instructions_unit;
      index[key] = rows.size();
      rows.push_back({f[0], f[1], title, unit, {}, {}});
      it = index.find(key);
    }
    const double per = std::max(1.0, std::strtod(f[4].c_str(), nullptr));
    (f[3] == "unitls" ? rows[it->second].unitls : rows[it->second].native).push_back(total / per);
  }
  std::filesystem::remove(dir);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("the run under callgrind failed (" +
         (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status)) : std::string("killed")) + ")");
  return rows;
}

int run(const Options& o, int argc, char** argv) {
  const Certs certs{o.certs + "/ca.pem", o.certs + "/server.pem", o.certs + "/server.key"};
  for (const std::string& file : {certs.ca, certs.certificate, certs.key}) {
    if (::access(file.c_str(), R_OK) != 0) {
      std::fprintf(stderr,
                   "unitls-bench: cannot read %s (--certs DIR: the test PKI, which the build makes in "
                   "<builddir>/tests/certs)\n",
                   file.c_str());
      return 2;
    }
  }
  if (o.callgrind_child) {
    if (!under_valgrind()) {
      std::fprintf(stderr, "unitls-bench: --callgrind-child is for the run under valgrind (--instructions)\n");
      return 2;
    }
    Meter::set_callgrind(true);
    run_all(o, certs);
    return 0;
  }

  std::printf("unitls %s beside each TLS library used directly (docs/benchmarks.md)\n",
              std::string(unitls::version).c_str());
  if (o.instructions) {
#if !BENCH_HAVE_CALLGRIND
    std::fprintf(stderr, "unitls-bench: built without <valgrind/callgrind.h>: no --instructions\n");
    return 2;
#endif
    std::printf("Instructions (valgrind --tool=callgrind), both ends of each connection, %s%s.\n\n",
                o.sizes.repetitions > 1 ? "medians of " : "one sample each",
                o.sizes.repetitions > 1 ? std::to_string(o.sizes.repetitions).c_str() : "");
    print_table(run_under_callgrind(o, argv, argc), false);
    return 0;
  }
  std::printf("Wall clock, medians of %d interleaved repetitions%s; loopback TCP, one thread runs both ends.\n",
              o.sizes.repetitions, o.quick ? " (quick sizes)" : "");
  std::fflush(stdout);
  const std::vector<Row> rows = run_all(o, certs);
  std::printf("\n");
  print_table(rows, o.sizes.repetitions > 1);
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  // Fixed malloc thresholds: glibc's adjust themselves as blocks are freed,
  // which made heap trimming, and the instructions counted, differ from run
  // to run (the same for both sides, but noise in a ratio).
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const bench::Options options = bench::parse(argc, argv);
  if (!options.instructions && !options.callgrind_child && bench::wanted(options, "idle"))
    bench::restart_without_tcache(argv);
  try {
    return bench::run(options, argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unitls-bench: %s\n", e.what());
    return 1;
  }
}
