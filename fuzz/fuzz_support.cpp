#include "fuzz_support.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>

namespace unitls::fuzz {

std::span<const std::byte> Input::take(std::size_t n) {
  n = std::min(n, size_ - std::min(pos_, size_));
  auto out = std::as_bytes(std::span<const std::uint8_t>(data_ + pos_, n));
  pos_ += n;
  return out;
}

// ---- environment ----------------------------------------------------------------

std::string cert_path(std::string_view name) {
  const char* dir = std::getenv("UNITLS_FUZZ_CERTS");
#ifdef UNITLS_FUZZ_DEFAULT_CERTS
  if (dir == nullptr || *dir == '\0') dir = UNITLS_FUZZ_DEFAULT_CERTS;
#endif
  if (dir == nullptr || *dir == '\0') {
    std::fprintf(stderr, "unitls fuzz: set UNITLS_FUZZ_CERTS to a directory made by "
                         "tests/certs/make_certs.sh\n");
    std::abort();
  }
  return std::string(dir) + "/" + std::string(name);
}

std::vector<std::string> all_backends() {
  std::vector<std::string> out;
  for (std::string_view b : available_backends()) out.emplace_back(b);
  return out;
}

const std::vector<std::string>& backends_to_fuzz() {
  static const std::vector<std::string> chosen = [] {
    const char* env = std::getenv("UNITLS_FUZZ_BACKEND");
    if (env == nullptr || *env == '\0') return all_backends();
    for (std::string_view b : available_backends())
      if (b == env) return std::vector<std::string>{std::string(b)};
    std::fprintf(stderr, "unitls fuzz: UNITLS_FUZZ_BACKEND=%s is not compiled in\n", env);
    std::abort();
  }();
  return chosen;
}

Pairing pairing_from(Input& in, const std::string& backend) {
  Pairing p;
  p.variant = variant_from(in.byte());
  const std::uint8_t roles = in.byte();
  const std::vector<std::string> all = all_backends();
  const std::string& other = all[(roles >> 1) % all.size()];
  p.under_test_is_server = roles & 1;
  p.client_backend = p.under_test_is_server ? other : backend;
  p.server_backend = p.under_test_is_server ? backend : other;
  note("client " + p.client_backend + ", server " + p.server_backend);
  return p;
}

Variant variant_from(std::uint8_t bits) {
  Variant v;
  v.tls1_2_only = bits & 1;
  v.verify_peer = !(bits & 2);
  v.client_auth = bits & 4;
  v.alpn = bits & 8;
  v.lenient_eof = bits & 16;
  return v;
}

std::shared_ptr<Context> context_for(const std::string& backend, Role role, const Variant& v) {
  static std::map<std::string, std::shared_ptr<Context>> cache;
  const std::string key = backend + (role == Role::client ? "/c/" : "/s/") +
                          char('0' + v.tls1_2_only) + char('0' + v.verify_peer) +
                          char('0' + v.client_auth) + char('0' + v.alpn) +
                          char('0' + v.lenient_eof);
  auto& slot = cache[key];
  if (slot) return slot;

  Config c;
  c.role = role;
  c.backend = backend;
  c.max_version = v.tls1_2_only ? Version::tls1_2 : Version::tls1_3;
  c.require_close_notify = !v.lenient_eof;
  c.session_cache = false;
  if (v.alpn) c.alpn = {"h2", "http/1.1"};
  if (role == Role::client) {
    c.ca_file = cert_path("ca.pem");
    c.server_name = "localhost";
    c.verify_peer = v.verify_peer;
    if (v.client_auth) {
      c.certificate_file = cert_path("client.pem");
      c.private_key_file = cert_path("client.key");
    }
  } else {
    c.certificate_file = cert_path("server.pem");
    c.private_key_file = cert_path("server.key");
    if (v.client_auth) c.client_auth = ClientAuth::required;
    if (v.client_auth) c.ca_file = cert_path("ca.pem");
  }
  std::error_code ec;
  std::string message;
  auto ctx = Context::create(c, ec, &message);
  if (!ctx) {
    std::fprintf(stderr, "unitls fuzz: Context::create(%s) failed: %s: %s\n", key.c_str(),
                 ec.message().c_str(), message.c_str());
    std::abort();
  }
  slot = std::shared_ptr<Context>(std::move(ctx));
  return slot;
}

// ---- reporting --------------------------------------------------------------------

namespace {
std::deque<std::string>& notes() {
  static std::deque<std::string> lines;
  return lines;
}
}  // namespace

void note(const std::string& line) {
  auto& n = notes();
  if (n.size() >= 400) n.pop_front();
  n.push_back(line);
}
void clear_notes() { notes().clear(); }

void violation(const std::string& what) {
  std::fprintf(stderr, "\n==== unitls fuzz: contract violation\n%s\n---- calls of this input:\n",
               what.c_str());
  for (const auto& line : notes()) std::fprintf(stderr, "  %s\n", line.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string describe(const std::error_code& ec) {
  if (!ec) return "ok";
  if (ec.category() == category()) return to_string(static_cast<errc>(ec.value()));
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

std::string flags_name(unsigned flags) {
  switch (flags) {
    case 0: return "[-]";
    case sent_shutdown: return "[S]";
    case received_shutdown: return "[R]";
    case sent_shutdown | received_shutdown: return "[SR]";
  }
  return "[?" + std::to_string(flags) + "]";
}

std::byte stream_byte(unsigned seed, std::uint64_t k) {
  std::uint64_t x = (k + 1) * 0x9E3779B97F4A7C15ull ^ (std::uint64_t{seed} << 32);
  x ^= x >> 29;
  return static_cast<std::byte>(x & 0xff);
}

std::size_t pick_size(std::uint8_t b) {
  // Around the record size (16384) and the small sizes that split records.
  static constexpr std::size_t sizes[] = {1, 2, 5, 16, 100, 1000, 4096, 16383, 16384, 16385, 20000, 40000};
  return sizes[b % std::size(sizes)];
}

// ---- Checked ---------------------------------------------------------------------

namespace {

bool is_fatal(const std::error_code& e) {
  return e == errc::unexpected_eof || e == errc::transport_error || e == errc::protocol_error ||
         e == errc::certificate_error;
}

bool one_of(const std::error_code& e, std::initializer_list<errc> allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](errc a) { return e == a; });
}

}  // namespace

Checked::Checked(std::string name, std::unique_ptr<SecureSocket> socket, const MemoryPipe* out,
                 const Variant& variant, unsigned seed)
    : name_(std::move(name)), socket_(std::move(socket)), out_(out), variant_(variant), seed_(seed) {
  if (!socket_) violation(name_ + ": Context::wrap returned nullptr for a memory transport");
  quiet_ = socket_->get_quiet_shutdown();
}

std::uint64_t Checked::wire() const { return out_ ? out_->bytes_written() : 0; }

Checked::Before Checked::before() const { return {socket_->get_shutdown(), wire()}; }

void Checked::expect(bool ok, const std::string& what) const {
  if (!ok) violation(name_ + " (" + std::string(socket_->backend()) + "): " + what + "\n  last call: " + line_);
}

void Checked::after(const char* call, std::ptrdiff_t ret, const Before& b) {
  const std::error_code e = socket_->last_error();
  const unsigned flags = socket_->get_shutdown();
  line_ = std::string(call) + " -> " + std::to_string(ret) + " " + describe(e) + " " + flags_name(flags);
  note(name_ + ": " + line_);
  expect(!e || e.category() == category(), "last_error() is not in the unitls category");
  expect((flags & ~(sent_shutdown | received_shutdown)) == 0, "get_shutdown() has unknown bits");
  expect((b.flags & ~flags) == 0, "a shutdown flag was cleared (flags only grow)");
}

int Checked::handshake() {
  const Before b = before();
  const int r = socket_->handshake();
  const std::error_code e = socket_->last_error();
  after("handshake", r, b);
  expect(socket_->get_shutdown() == b.flags, "handshake() changed the shutdown flags");
  if (dead_) {
    expect(r == -1 && e == dead_error_, "a dead connection must answer with its error, " + describe(dead_error_));
    expect(wire() == b.wire, "a dead connection put bytes on the wire");
    return r;
  }
  if (connected_) {
    expect(r == 1 && !e, "handshake() after completion must return 1");
    return r;
  }
  expect(r == 1 || r == -1, "handshake() returns 1 or -1");
  if (r == 1) {
    expect(!e, "a successful call must clear last_error()");
    connected_ = true;
    return r;
  }
  expect(one_of(e, {errc::want_read, errc::want_write, errc::certificate_error, errc::protocol_error,
                    errc::transport_error, errc::unexpected_eof}),
         "handshake() failed with " + describe(e));
  if (is_fatal(e)) {
    dead_ = true;
    dead_error_ = e;
  }
  return r;
}

std::ptrdiff_t Checked::read(std::size_t n) {
  const Before b = before();
  read_buf_.assign(n, std::byte{0});
  const std::ptrdiff_t r = socket_->read(std::span<std::byte>(read_buf_));
  const std::error_code e = socket_->last_error();
  after("read", r, b);
  read_buf_.resize(r > 0 ? static_cast<std::size_t>(r) : 0);
  line_ += " n=" + std::to_string(n);
  const unsigned flags = socket_->get_shutdown();
  expect(r >= -1 && r <= static_cast<std::ptrdiff_t>(n), "read() returned a count outside [-1, n]");

  if (kept_) {
    // SEMANTICS: data_pending keeps the data for read(), which returns it.
    expect(r > 0 && !e, "read() after data_pending must return the kept data");
    expect(flags == b.flags, "read() of kept data changed the flags");
    kept_ = false;
    kept_maybe_ = r == static_cast<std::ptrdiff_t>(n);  // a short read emptied it
    return r;
  }
  if (kept_maybe_) {
    kept_maybe_ = false;
    if (r > 0 && !e) {
      // Possibly more kept data, which comes before everything else.
      expect(flags == b.flags, "read() of kept data changed the flags");
      kept_maybe_ = r == static_cast<std::ptrdiff_t>(n);
      return r;
    }
  }
  if (dead_) {
    if (variant_.lenient_eof && dead_error_ == errc::unexpected_eof)
      expect(r == 0 && e == errc::unexpected_eof,
             "require_close_notify=false: read() after the EOF returns 0 with unexpected_eof every time");
    else
      expect(r == -1 && e == dead_error_, "a dead connection must answer with its error, " + describe(dead_error_));
    expect(wire() == b.wire, "a dead connection put bytes on the wire");
    expect(flags == b.flags, "read() on a dead connection changed the flags");
    return r;
  }
  if (!connected_) {
    expect(r == -1 && e == errc::not_connected, "read() before the handshake must fail with not_connected");
    expect(wire() == b.wire, "read() before the handshake put bytes on the wire");
    return r;
  }
  if (b.flags & received_shutdown) {
    expect(r == 0 && e == errc::zero_return, "read() after RECEIVED must return 0 with zero_return (sticky)");
    expect(wire() == b.wire, "read() after RECEIVED put bytes on the wire");
    expect(flags == b.flags, "read() after RECEIVED changed the flags");
    return r;
  }
  if (r > 0) {
    expect(!e, "a successful call must clear last_error()");
    expect(flags == b.flags, "read() that returned data changed the flags");
    return r;
  }
  if (r == 0) {
    if (e == errc::zero_return) {
      expect(flags == (b.flags | received_shutdown), "read() of the peer's close_notify must set RECEIVED");
    } else {
      expect(variant_.lenient_eof && e == errc::unexpected_eof,
             "read() returned 0 with " + describe(e) + " (only zero_return, or unexpected_eof when close_notify is not required)");
      expect(flags == b.flags, "a truncation must not set RECEIVED");
      dead_ = true;
      dead_error_ = e;
    }
    return r;
  }
  expect(one_of(e, {errc::want_read, errc::unexpected_eof, errc::transport_error, errc::protocol_error}),
         "read() failed with " + describe(e));
  // Rule 4: read() never sets RECEIVED for an alert.
  expect(flags == b.flags, "a failed read() changed the flags");
  if (is_fatal(e)) {
    dead_ = true;
    dead_error_ = e;
  }
  return r;
}

std::ptrdiff_t Checked::write(std::size_t n) {
  // After want_write the caller repeats the call with the same bytes.
  if (pending_write_ > 0) n = pending_write_;
  std::vector<std::byte> buf(n);
  for (std::size_t i = 0; i < n; ++i) buf[i] = stream_byte(seed_, written_ + i);
  const Before b = before();
  const std::ptrdiff_t r = socket_->write(std::span<const std::byte>(buf));
  const std::error_code e = socket_->last_error();
  after("write", r, b);
  line_ += " n=" + std::to_string(n);
  expect(socket_->get_shutdown() == b.flags, "write() changed the shutdown flags");
  expect(r == -1 || (r >= 1 && r <= static_cast<std::ptrdiff_t>(n)), "write() returned a count outside {-1} u [1, n]");

  if (dead_) {
    expect(r == -1 && e == dead_error_, "a dead connection must answer with its error, " + describe(dead_error_));
    expect(wire() == b.wire, "a dead connection put bytes on the wire");
    return r;
  }
  if (!connected_) {
    expect(r == -1 && e == errc::not_connected, "write() before the handshake must fail with not_connected");
    expect(wire() == b.wire, "write() before the handshake put bytes on the wire");
    return r;
  }
  if (b.flags & sent_shutdown) {
    expect(r == -1 && e == errc::connection_closed, "write() after SENT must fail with connection_closed");
    expect(wire() == b.wire, "write() after SENT put bytes on the wire");
    return r;
  }
  if (r > 0) {
    expect(!e, "a successful call must clear last_error()");
    written_ += static_cast<std::uint64_t>(r);
    pending_write_ = 0;
    write_pending_ = false;
    return r;
  }
  expect(one_of(e, {errc::want_write, errc::want_read, errc::unexpected_eof, errc::transport_error,
                    errc::protocol_error}),
         "write() failed with " + describe(e));
  if (e == errc::want_write || e == errc::want_read) {
    write_pending_ = true;
    pending_write_ = n;
  } else {
    dead_ = true;
    dead_error_ = e;
  }
  return r;
}

int Checked::shutdown() {
  const Before b = before();
  const bool flushing = flushing_;
  const int r = socket_->shutdown();
  const std::error_code e = socket_->last_error();
  after("shutdown", r, b);
  const unsigned flags = socket_->get_shutdown();
  constexpr unsigned both = sent_shutdown | received_shutdown;
  expect(r >= -1 && r <= 1, "shutdown() returns 0, 1 or -1");
  expect(r == -1 || !e, "a successful call must clear last_error()");

  if (dead_) {
    expect(r == -1 && e == dead_error_, "a dead connection must answer with its error, " + describe(dead_error_));
    expect(wire() == b.wire, "a dead connection put bytes on the wire");
    expect(flags == b.flags, "shutdown() on a dead connection changed the flags");
    return r;
  }
  if (!connected_) {
    expect(r == -1 && e == errc::not_connected, "shutdown() before the handshake must fail with not_connected");
    expect(wire() == b.wire, "shutdown() before the handshake put bytes on the wire");
    expect(flags == b.flags, "shutdown() before the handshake changed the flags");
    return r;
  }
  if (quiet_) {
    expect(r == 1 && flags == both, "quiet shutdown() returns 1 and sets both flags");
    expect(wire() == b.wire, "quiet shutdown() put bytes on the wire");
    flushing_ = false;
    return r;
  }
  // Whether this call produces or flushes our close_notify.
  const bool sends = flushing || !(b.flags & sent_shutdown);
  if (!flushing && b.flags == both) {
    expect(r == 1, "shutdown() with both flags set returns 1 (idempotent)");
    expect(wire() == b.wire, "shutdown() with both flags set put bytes on the wire");
    return r;
  }
  if (!flushing && !(b.flags & sent_shutdown) && write_pending_) {
    expect(r == -1 && e == errc::write_pending, "shutdown() during an unfinished write() must fail with write_pending");
    expect(wire() == b.wire && flags == b.flags, "shutdown() refused with write_pending changed something");
    return r;
  }
  if (sends) {
    // SENT is set before the alert is flushed (OpenSSL's rule, kept everywhere).
    expect(flags & sent_shutdown, "shutdown() that sends our close_notify must set SENT");
    if (r >= 0) {
      const int want = (b.flags & received_shutdown) ? 1 : 0;
      expect(r == want, want ? "shutdown() after the peer's close_notify returns 1"
                             : "the first shutdown() returns 0");
      expect(flags == (b.flags | sent_shutdown), "shutdown() that sent our close_notify set RECEIVED");
      expect(wire() > b.wire, "shutdown() returned success but nothing went on the wire");
      flushing_ = false;
      return r;
    }
    expect(one_of(e, {errc::want_write, errc::want_read, errc::transport_error, errc::protocol_error,
                      errc::unexpected_eof}),
           "shutdown() sending our close_notify failed with " + describe(e));
    expect((flags & received_shutdown) == (b.flags & received_shutdown),
           "shutdown() sending our close_notify changed RECEIVED");
    if (is_fatal(e)) {
      dead_ = true;
      dead_error_ = e;
      flushing_ = false;
    } else {
      flushing_ = true;
    }
    return r;
  }
  // SENT, not RECEIVED: waiting for the peer's close_notify.
  if (kept_maybe_) {
    kept_maybe_ = false;
    if (r == -1 && e == errc::data_pending) {
      expect(wire() == b.wire && flags == b.flags, "shutdown() with kept data changed something");
      kept_ = true;
      return r;
    }
  }
  if (kept_) {
    expect(r == -1 && e == errc::data_pending, "shutdown() with kept data must answer data_pending again");
    expect(wire() == b.wire && flags == b.flags, "shutdown() with kept data changed something");
    return r;
  }
  if (r == 1) {
    expect(flags == both, "shutdown() that returned 1 must have set RECEIVED");
    return r;
  }
  expect(r == -1, "a waiting shutdown() returns 1 or -1, never 0 again");
  expect(one_of(e, {errc::want_read, errc::data_pending, errc::unexpected_eof, errc::transport_error,
                    errc::protocol_error}),
         "a waiting shutdown() failed with " + describe(e));
  if (e == errc::protocol_error)
    expect((flags & sent_shutdown) && (flags & ~both) == 0, "flags broke");
  else
    expect(flags == b.flags, "a waiting shutdown() that failed with " + describe(e) + " changed the flags");
  if (e == errc::data_pending) kept_ = true;
  if (is_fatal(e)) {
    dead_ = true;
    dead_error_ = e;
  }
  return r;
}

std::error_code Checked::send_close_notify() {
  const Before b = before();
  const bool flushing = flushing_;
  const std::error_code ec = socket_->send_close_notify();
  const std::error_code e = socket_->last_error();
  after("send_close_notify", ec ? -1 : 0, b);
  const unsigned flags = socket_->get_shutdown();
  expect(ec == e, "send_close_notify() returned something else than last_error()");
  expect((flags & received_shutdown) == (b.flags & received_shutdown), "send_close_notify() changed RECEIVED");

  if (dead_) {
    expect(ec == dead_error_, "a dead connection must answer with its error, " + describe(dead_error_));
    expect(wire() == b.wire, "a dead connection put bytes on the wire");
    expect(flags == b.flags, "send_close_notify() on a dead connection changed the flags");
    return ec;
  }
  if (!connected_) {
    expect(ec == errc::not_connected, "send_close_notify() before the handshake must fail with not_connected");
    expect(wire() == b.wire && flags == b.flags, "send_close_notify() before the handshake changed something");
    return ec;
  }
  if (!flushing && (b.flags & sent_shutdown)) {
    expect(ec == errc::already_sent, "send_close_notify() after SENT must answer already_sent");
    expect(wire() == b.wire, "send_close_notify() after SENT put bytes on the wire (a second alert?)");
    return ec;
  }
  if (!flushing && write_pending_) {
    expect(ec == errc::write_pending, "send_close_notify() during an unfinished write() must fail with write_pending");
    expect(wire() == b.wire && flags == b.flags, "send_close_notify() refused with write_pending changed something");
    return ec;
  }
  expect(flags & sent_shutdown, "send_close_notify() that sends must set SENT");
  if (!ec) {
    expect(wire() > b.wire, "send_close_notify() returned success but nothing went on the wire");
    flushing_ = false;
    return ec;
  }
  expect(one_of(ec, {errc::want_write, errc::want_read, errc::transport_error, errc::protocol_error,
                     errc::unexpected_eof}),
         "send_close_notify() failed with " + describe(ec));
  if (is_fatal(ec)) {
    dead_ = true;
    dead_error_ = ec;
    flushing_ = false;
  } else {
    flushing_ = true;
  }
  return ec;
}

void Checked::set_shutdown(unsigned mode) {
  const Before b = before();
  const std::error_code e_before = socket_->last_error();
  socket_->set_shutdown(mode);
  line_ = "set_shutdown(" + std::to_string(mode) + ") " + flags_name(socket_->get_shutdown());
  note(name_ + ": " + line_);
  expect(socket_->get_shutdown() == (b.flags | (mode & (sent_shutdown | received_shutdown))),
         "set_shutdown(mode) must add exactly the given flags");
  expect(wire() == b.wire, "set_shutdown() put bytes on the wire");
  expect(socket_->last_error() == e_before, "set_shutdown() changed last_error()");
}

void Checked::set_quiet_shutdown(bool on) {
  socket_->set_quiet_shutdown(on);
  quiet_ = on;
  line_ = std::string("set_quiet_shutdown(") + (on ? "true" : "false") + ")";
  note(name_ + ": " + line_);
  expect(socket_->get_quiet_shutdown() == on, "get_quiet_shutdown() does not return what was set");
}

// ---- RelayWorld -----------------------------------------------------------------

RelayWorld::RelayWorld(const std::string& client_backend, const std::string& server_backend,
                       const Variant& v) {
  MemoryPair a = make_memory_pair();  // client <-> relay
  MemoryPair b = make_memory_pair();  // relay <-> server
  client_link_ = a.link;
  server_link_ = b.link;
  client_peer_ = std::move(a.server);
  server_peer_ = std::move(b.client);
  client_ = std::make_unique<Checked>(
      "client", context_for(client_backend, Role::client, v)->wrap(std::move(a.client)),
      &client_link_->client_to_server(), v, 0xC1);
  server_ = std::make_unique<Checked>(
      "server", context_for(server_backend, Role::server, v)->wrap(std::move(b.server)),
      &server_link_->server_to_client(), v, 0x5E);
}

MemoryPipe& RelayWorld::receiving_pipe(Dir d) {
  return d == c2s ? server_link_->client_to_server() : client_link_->server_to_client();
}
MemoryPipe& RelayWorld::sending_pipe(Dir d) {
  return d == c2s ? client_link_->client_to_server() : server_link_->server_to_client();
}

void RelayWorld::collect() {
  std::byte buf[16384];
  Transport* from[2] = {client_peer_.get(), server_peer_.get()};
  for (int d = 0; d < 2; ++d) {
    for (;;) {
      std::error_code ec;
      const std::ptrdiff_t n = from[d]->read(std::span<std::byte>(buf), ec);
      if (n <= 0) break;
      pending_[d].insert(pending_[d].end(), buf, buf + n);
    }
  }
}

void RelayWorld::deliver(Dir d, std::size_t n) {
  auto& p = pending_[d];
  n = std::min(n, p.size());
  if (n == 0) return;
  receiving_pipe(d).inject_bytes(std::span<const std::byte>(p.data(), n));
  p.erase(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n));
}

void RelayWorld::check_stream(Checked& reader, const Checked& writer, std::uint64_t& offset) {
  const auto got = reader.last_read();
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != stream_byte(writer.seed(), offset + i))
      violation(reader.name() + " read bytes its peer never wrote (stream offset " +
                std::to_string(offset + i) + ")");
  }
  offset += got.size();
  if (offset > writer.written() + writer.pending_write())
    violation(reader.name() + " read " + std::to_string(offset) + " bytes, its peer wrote only " +
              std::to_string(writer.written()) + " (+" + std::to_string(writer.pending_write()) +
              " pending)");
}

std::ptrdiff_t RelayWorld::read(bool server_side, std::size_t n) {
  Checked& reader = side(server_side);
  const std::ptrdiff_t r = reader.read(n);
  if (r > 0) check_stream(reader, side(!server_side), server_side ? server_read_ : client_read_);
  collect();
  return r;
}

bool RelayWorld::drive_handshake(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    if (client_->connected() && server_->connected()) return true;
    const std::uint64_t moved = sending_pipe(c2s).bytes_written() + sending_pipe(s2c).bytes_written();
    if (!client_->connected() && !client_->dead()) client_->handshake();
    collect();
    deliver(c2s);
    if (!server_->connected() && !server_->dead()) server_->handshake();
    collect();
    deliver(s2c);
    const std::uint64_t now = sending_pipe(c2s).bytes_written() + sending_pipe(s2c).bytes_written();
    if (now == moved && i > 0) break;
  }
  return client_->connected() && server_->connected();
}

void RelayWorld::step(Input& in) {
  const std::uint8_t op = in.byte();
  const bool srv = op & 1;  // most operations come in a client and a server flavour
  const Dir dir = srv ? s2c : c2s;
  switch ((op >> 1) % 16) {
    case 0: side(srv).handshake(); break;
    case 1: read(srv, pick_size(in.byte())); break;
    case 2: side(srv).write(pick_size(in.byte())); break;
    case 3: side(srv).shutdown(); break;
    case 4: side(srv).send_close_notify(); break;
    case 5: side(srv).set_shutdown(in.byte() & 3); break;
    case 6: side(srv).set_quiet_shutdown(in.byte() & 1); break;
    case 7:
      note(std::string("relay: deliver ") + (dir == c2s ? "c2s" : "s2c") + " all (" +
           std::to_string(pending_[dir].size()) + ")");
      deliver(dir);
      break;
    case 8: {  // part of it: cuts records in the middle
      const std::size_t n = pending_[dir].empty() ? 0 : in.u16() % (pending_[dir].size() + 1);
      note(std::string("relay: deliver ") + (dir == c2s ? "c2s " : "s2c ") + std::to_string(n));
      deliver(dir, n);
      break;
    }
    case 9: {  // flip bits of one byte
      auto& p = pending_[dir];
      const std::size_t at = in.u16();
      const std::uint8_t x = in.byte() | 1;
      if (p.empty()) break;
      p[at % p.size()] ^= std::byte{x};
      note(std::string("relay: flip ") + (dir == c2s ? "c2s @" : "s2c @") + std::to_string(at % p.size()) +
           " ^" + std::to_string(x));
      break;
    }
    case 10: {  // drop bytes (a lost or cut record)
      auto& p = pending_[dir];
      const std::size_t at = in.u16();
      const std::size_t len = std::size_t{in.byte()} + 1;
      if (p.empty()) break;
      const std::size_t from = at % p.size();
      const std::size_t to = std::min(p.size(), from + len);
      p.erase(p.begin() + static_cast<std::ptrdiff_t>(from), p.begin() + static_cast<std::ptrdiff_t>(to));
      note(std::string("relay: drop ") + (dir == c2s ? "c2s @" : "s2c @") + std::to_string(from) + "+" +
           std::to_string(to - from));
      break;
    }
    case 11: {  // insert the fuzzer's own bytes (a forged record, garbage)
      auto& p = pending_[dir];
      const std::size_t at = in.u16();
      const auto bytes = in.take(in.u16() % 2048);
      const std::size_t where = p.empty() ? 0 : at % (p.size() + 1);
      p.insert(p.begin() + static_cast<std::ptrdiff_t>(where), bytes.begin(), bytes.end());
      note(std::string("relay: insert ") + (dir == c2s ? "c2s @" : "s2c @") + std::to_string(where) + " " +
           std::to_string(bytes.size()) + " bytes");
      break;
    }
    case 12: {  // replay a range (a duplicated record)
      auto& p = pending_[dir];
      const std::size_t at = in.u16();
      const std::size_t len = in.u16();
      if (p.empty()) break;
      const std::size_t from = at % p.size();
      const std::size_t to = std::min(p.size(), from + len % 4096 + 1);
      std::vector<std::byte> copy(p.begin() + static_cast<std::ptrdiff_t>(from),
                                  p.begin() + static_cast<std::ptrdiff_t>(to));
      p.insert(p.begin() + static_cast<std::ptrdiff_t>(to), copy.begin(), copy.end());
      note(std::string("relay: duplicate ") + (dir == c2s ? "c2s @" : "s2c @") + std::to_string(from) +
           "+" + std::to_string(copy.size()));
      break;
    }
    case 13: {  // transport faults
      const std::uint8_t k = in.byte();
      const char* what = "";
      switch (k % 6) {
        case 0: receiving_pipe(dir).inject_eof(); what = "eof to receiver"; break;
        case 1: receiving_pipe(dir).inject_error(ECONNRESET); what = "ECONNRESET to receiver"; break;
        case 2: receiving_pipe(dir).hold((k >> 3) & 1); what = (k >> 3) & 1 ? "hold on" : "hold off"; break;
        case 3: sending_pipe(dir).set_write_budget(k >> 3); what = "sender budget small"; break;
        case 4: sending_pipe(dir).set_write_budget(-1); what = "sender budget unlimited"; break;
        case 5: sending_pipe(dir).inject_error(EPIPE); what = "EPIPE to sender"; break;
      }
      note(std::string("relay: fault ") + (dir == c2s ? "c2s " : "s2c ") + what);
      break;
    }
    case 14:
      note("relay: drive handshake");
      drive_handshake();
      break;
    case 15:  // everything both ways, then each side reads what came
      note("relay: deliver both, read both");
      deliver(c2s);
      deliver(s2c);
      read(false, 16384);
      read(true, 16384);
      break;
  }
  collect();
}

}  // namespace unitls::fuzz

namespace unitls::fuzz {

void run_raw_peer(Role role, const std::uint8_t* data, std::size_t size) {
  for (const std::string& backend : backends_to_fuzz()) {
    InputScope scope;
    Input in(data, size);
    const Variant v = variant_from(in.byte());
    MemoryPair pair = make_memory_pair();
    const bool client = role == Role::client;
    MemoryPipe& in_pipe = client ? pair.link->server_to_client() : pair.link->client_to_server();
    MemoryPipe& out_pipe = client ? pair.link->client_to_server() : pair.link->server_to_client();
    Checked s(client ? "client" : "server",
              context_for(backend, role, v)->wrap(std::move(client ? pair.client : pair.server)),
              &out_pipe, v, 0xF0);
    note("backend " + backend);

    for (int ops = 0; ops < 512 && !in.empty(); ++ops) {
      const std::uint8_t op = in.byte();
      switch (op % 12) {
        case 0: case 1: case 2: case 3: {
          const auto bytes = in.take(in.u16());
          in_pipe.inject_bytes(bytes);
          note("peer: " + std::to_string(bytes.size()) + " bytes");
          if (!s.connected() && !s.dead())
            s.handshake();
          else
            s.read(16384);
          break;
        }
        case 4: s.handshake(); break;
        case 5: s.read(pick_size(in.byte())); break;
        case 6: s.write(pick_size(in.byte())); break;
        case 7: s.shutdown(); break;
        case 8: s.send_close_notify(); break;
        case 9: {
          const std::uint8_t k = in.byte();
          switch (k % 7) {
            case 0: in_pipe.inject_eof(); note("fault: eof"); break;
            case 1: in_pipe.inject_error(ECONNRESET); note("fault: ECONNRESET on read"); break;
            case 2: out_pipe.inject_error(EPIPE); note("fault: EPIPE on write"); break;
            case 3: out_pipe.set_write_budget(k >> 3); note("fault: write budget " + std::to_string(k >> 3)); break;
            case 4: out_pipe.set_write_budget(-1); note("fault: write budget unlimited"); break;
            case 5: in_pipe.hold(true); note("fault: hold"); break;
            case 6: in_pipe.hold(false); note("fault: release"); break;
          }
          break;
        }
        case 10: s.set_shutdown(in.byte() & 3); break;
        case 11: s.set_quiet_shutdown(in.byte() & 1); break;
      }
      // Without its keys the fuzzer cannot finish a handshake (ECDHE, then
      // Finished under keys it cannot know): a connected socket here means a
      // check was skipped.
      if (s.connected()) violation("a handshake completed with a peer that sent only fuzzer bytes");
      // The peer reads and forgets what the socket wrote (bounded memory).
      out_pipe.discard();
    }
  }
}

}  // namespace unitls::fuzz
