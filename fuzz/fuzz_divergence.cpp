// The same call sequence on every compiled-in backend: a client and a server
// of one backend over one memory pair (TLS 1.2, so that every backend takes
// part), driven by the input; the observable trace of each backend (every
// call's return value, last_error() and flags, the bytes read, the faults'
// answers) must be the same. A difference is a contract violation: an
// application could tell the backends apart.
//
// Only what the contract fixes is traced. Not traced, because it differs
// between stacks by design: ciphertext sizes (suites differ in overhead),
// hence no write budget other than 0 and unlimited (a budget of k bytes lets
// a different number of records through on each stack), and the wire
// counters; and the damage corrupt_last_byte does before the writer's
// handshake is complete (it hits a different field of each stack's own
// hello). The data read is checked against what the peer wrote instead of
// traced byte by byte (its length is traced).
//
// Input: a variant byte (bit 0 require_close_notify = false, bit 1 client
// certificates, bit 2 ALPN), then operations:
//   op >> 1 % 10, side = op & 1 (client/server):
//   0 handshake, 1 read(pick_size), 2 write(pick_size), 3 shutdown,
//   4 send_close_notify, 5 set_shutdown(byte & 3), 6 set_quiet(byte & 1),
//   7 fault on the pipe the side writes to (hold, release, budget 0, budget
//     unlimited, EOF, ECONNRESET, corrupt_last_byte), 8 both handshakes
//   until done or stuck, 9 both sides read until nothing comes.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>

#include "fuzz_support.hpp"

using namespace unitls;
using namespace unitls::fuzz;

namespace {

std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

class World {
 public:
  World(const std::string& backend, const Variant& v) {
    MemoryPair pair = make_memory_pair();
    link_ = pair.link;
    client_ = std::make_unique<Checked>(
        "client", context_for(backend, Role::client, v)->wrap(std::move(pair.client)),
        &link_->client_to_server(), v, 0xC1);
    server_ = std::make_unique<Checked>(
        "server", context_for(backend, Role::server, v)->wrap(std::move(pair.server)),
        &link_->server_to_client(), v, 0x5E);
  }

  std::vector<std::string> run(Input& in) {
    for (int ops = 0; ops < 200 && !in.empty(); ++ops) {
      const std::uint8_t op = in.byte();
      const bool srv = op & 1;
      Checked& s = srv ? *server_ : *client_;
      switch ((op >> 1) % 10) {
        case 0: s.handshake(); trace(s); break;
        case 1: read(srv, pick_size(in.byte())); break;
        case 2: s.write(pick_size(in.byte())); trace(s); break;
        case 3: s.shutdown(); trace(s); break;
        case 4: s.send_close_notify(); trace(s); break;
        case 5: s.set_shutdown(in.byte() & 3); trace(s); break;
        case 6: s.set_quiet_shutdown(in.byte() & 1); trace(s); break;
        case 7: fault(srv, in.byte()); break;
        case 8:
          for (int round = 0; round < 8 && !(client_->connected() && server_->connected()); ++round) {
            const bool stuck = client_->dead() || server_->dead();
            if (!client_->connected()) { client_->handshake(); trace(*client_); }
            if (!server_->connected()) { server_->handshake(); trace(*server_); }
            if (stuck) break;
          }
          break;
        case 9:
          for (bool side : {false, true})
            for (int i = 0; i < 8 && read(side, 16384) > 0; ++i) {
            }
          break;
      }
    }
    return std::move(trace_);
  }

 private:
  void trace(const Checked& s) { trace_.push_back(s.name() + " " + s.last_line()); }

  std::ptrdiff_t read(bool srv, std::size_t n) {
    Checked& s = srv ? *server_ : *client_;
    const Checked& peer = srv ? *client_ : *server_;
    std::uint64_t& offset = srv ? server_read_ : client_read_;
    const std::ptrdiff_t r = s.read(n);
    trace(s);
    const auto got = s.last_read();
    for (std::size_t i = 0; i < got.size(); ++i)
      if (got[i] != stream_byte(peer.seed(), offset + i))
        violation(s.name() + " read bytes its peer never wrote (stream offset " + std::to_string(offset + i) + ")");
    offset += got.size();
    return r;
  }

  void fault(bool srv, std::uint8_t k) {
    // The pipe this side writes into (its peer reads from it).
    MemoryPipe& p = srv ? link_->server_to_client() : link_->client_to_server();
    std::string what = std::string(srv ? "s2c " : "c2s ");
    switch (k % 7) {
      case 0: p.hold(true); what += "hold"; break;
      case 1: p.hold(false); what += "release"; break;
      case 2: p.set_write_budget(0); what += "budget 0"; break;
      case 3: p.set_write_budget(-1); what += "budget unlimited"; break;
      case 4: p.inject_eof(); what += "eof"; break;
      case 5: p.inject_error(ECONNRESET); what += "ECONNRESET"; break;
      case 6:
        // Only once the writer's handshake is done: its last byte is then an
        // AEAD tag on every stack, so the damage means the same everywhere.
        // Before, each stack's own hello is damaged in a different field
        // (a padding byte here, an extension length there), which is no
        // question of the contract; fuzz_handshake damages handshakes.
        if (!(srv ? server_ : client_)->connected())
          what += "corrupt -> skipped (handshake)";
        else
          what += p.corrupt_last_byte() ? "corrupt -> true" : "corrupt -> false";
        break;
    }
    note("fault " + what);
    trace_.push_back("fault " + what);
  }

  std::shared_ptr<MemoryLink> link_;
  std::unique_ptr<Checked> client_, server_;
  std::uint64_t client_read_ = 0, server_read_ = 0;
  std::vector<std::string> trace_;
};

// Prints every backend's trace side by side, '*' on the steps where they
// differ, and aborts.
[[noreturn]] void diverged(const std::vector<std::string>& names,
                           const std::vector<std::vector<std::string>>& traces) {
  std::size_t steps = 0, first = SIZE_MAX;
  for (const auto& t : traces) steps = std::max(steps, t.size());
  std::string out = "\n==== unitls fuzz: backends diverge (contract: the same answers on every backend)\n      ";
  for (const auto& n : names) out += pad(n, 48);
  out += "\n";
  for (std::size_t k = 0; k < steps; ++k) {
    bool same = true;
    std::string row;
    for (const auto& t : traces) {
      const std::string& cell = k < t.size() ? t[k] : "(end)";
      same = same && cell == (k < traces[0].size() ? traces[0][k] : "(end)");
      row += pad(cell, 48);
    }
    if (!same && first == SIZE_MAX) first = k;
    char head[16];
    std::snprintf(head, sizeof head, "%s %3zu  ", same ? " " : "*", k);
    out += head + row + "\n";
  }
  out += "first difference at step " + std::to_string(first) + "\n";
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> names = all_backends();
  std::vector<std::vector<std::string>> traces;
  for (const std::string& backend : names) {
    InputScope scope;
    note("backend " + backend);
    Input in(data, size);
    const std::uint8_t bits = in.byte();
    Variant v;
    v.tls1_2_only = true;  // mbedTLS 2.28 has no TLS 1.3
    v.lenient_eof = bits & 1;
    v.client_auth = bits & 2;
    v.alpn = bits & 4;
    traces.push_back(World(backend, v).run(in));
  }
  for (const auto& t : traces)
    if (t != traces.front()) diverged(names, traces);
  return 0;
}
