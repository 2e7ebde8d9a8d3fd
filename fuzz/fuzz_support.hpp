// What the fuzz targets share: reading the fuzzer's bytes as decisions,
// contexts per backend, a SecureSocket wrapper that checks the contract on
// every call, and a two-socket world whose traffic goes through a relay the
// fuzzer may tamper with.
//
// Public API only (unitls/unitls.hpp): the targets exercise what a user can
// reach. How to run them: script/fuzz.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unitls/unitls.hpp>

namespace unitls::fuzz {

// ---- the fuzzer's bytes ---------------------------------------------------------

// Reads decisions off the input; past its end every read is 0 (an input is
// never rejected for being short).
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return empty() ? 0 : data_[pos_++]; }
  std::uint16_t u16() {
    const unsigned hi = byte();
    return static_cast<std::uint16_t>((hi << 8) | byte());
  }
  // Up to n bytes (fewer at the end of the input).
  std::span<const std::byte> take(std::size_t n);

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// ---- environment ------------------------------------------------------------------

// $UNITLS_FUZZ_CERTS, else the PKI the build made (fuzz/meson.build).
std::string cert_path(std::string_view name);

// The backends a target fuzzes: $UNITLS_FUZZ_BACKEND (one name; aborts
// when it is not compiled in), else every compiled-in backend, each given
// the same input.
const std::vector<std::string>& backends_to_fuzz();
// Every compiled-in backend, in available_backends() order.
std::vector<std::string> all_backends();

// What changes a context. One shared Context per distinct value (contexts
// are made once; session_cache is off so that no input depends on the
// inputs before it).
struct Variant {
  bool tls1_2_only = false;    // max_version = tls1_2 (else 1.2..1.3)
  bool verify_peer = true;     // client: verify the server
  bool client_auth = false;    // server: require a client certificate; client: present one
  bool alpn = false;           // offer / accept {"h2", "http/1.1"}
  bool lenient_eof = false;    // require_close_notify = false
};
Variant variant_from(std::uint8_t bits);

// Who talks to whom, from the first two input bytes: the variant byte
// (variant_from), then a byte whose bit 0 puts `backend` (the one under
// test) on the server side and whose rest picks the other side's backend
// among the compiled-in ones. Notes the pairing.
struct Pairing {
  Variant variant;
  bool under_test_is_server = false;
  std::string client_backend, server_backend;
};
Pairing pairing_from(Input& in, const std::string& backend);
std::shared_ptr<Context> context_for(const std::string& backend, Role role, const Variant& v);

// ---- the contract, checked on every call ---------------------------------------

// Ends the run (abort(), so libFuzzer keeps the input) with the reason and
// the last calls of the current input.
[[noreturn]] void violation(const std::string& what);
// Appends to the log printed by violation(); cleared per input.
void note(const std::string& line);
void clear_notes();
// One input's run on one backend: its notes are dropped when it starts and
// when it ends, so that an input leaves the heap as it found it (libFuzzer
// runs a leak check after any input that allocated more than it freed).
struct InputScope {
  InputScope() { clear_notes(); }
  ~InputScope() { clear_notes(); }
  InputScope(const InputScope&) = delete;
  InputScope& operator=(const InputScope&) = delete;
};

// The application bytes a side writes: byte k of its stream is a function
// of k, so a reader can tell what it must have received.
std::byte stream_byte(unsigned seed, std::uint64_t k);

// A SecureSocket whose every call is checked against the rules a caller can
// rely on (dead connections, flags that only grow, the errc each call may
// answer, nothing on the wire where nothing may be sent, ...). The model
// below is what a careful caller knows from the answers alone.
class Checked {
 public:
  // out: the pipe this socket writes into (for "nothing on the wire").
  // seed: the seed of its application stream (stream_byte).
  Checked(std::string name, std::unique_ptr<SecureSocket> socket, const MemoryPipe* out,
          const Variant& variant, unsigned seed);

  int handshake();
  // Reads into a buffer of n bytes; the bytes are in last_read().
  std::ptrdiff_t read(std::size_t n);
  // Writes n bytes of its stream (the same bytes again after want_write,
  // as the contract asks of callers).
  std::ptrdiff_t write(std::size_t n);
  int shutdown();
  std::error_code send_close_notify();
  void set_shutdown(unsigned mode);
  void set_quiet_shutdown(bool on);

  SecureSocket& socket() { return *socket_; }
  const std::string& name() const { return name_; }
  bool connected() const { return connected_; }
  bool dead() const { return dead_; }
  unsigned seed() const { return seed_; }
  std::span<const std::byte> last_read() const { return read_buf_; }
  // Bytes of its stream write() has had accepted, and how many more a
  // pending write (want_write) may have committed to the stack.
  std::uint64_t written() const { return written_; }
  std::size_t pending_write() const { return pending_write_; }
  // The last call's answer, as a trace line: "shutdown -> -1 want_read [S]".
  const std::string& last_line() const { return line_; }

 private:
  // Checks shared by every call: the error's category, flags that only grow
  // (and change only where the call may change them), the dead rule.
  struct Before {
    unsigned flags;
    std::uint64_t wire;
  };
  Before before() const;
  void after(const char* call, std::ptrdiff_t ret, const Before& b);
  void expect(bool ok, const std::string& what) const;
  std::uint64_t wire() const;

  std::string name_;
  std::unique_ptr<SecureSocket> socket_;
  const MemoryPipe* out_;
  Variant variant_;
  unsigned seed_;

  // What the answers so far have told.
  bool connected_ = false;
  bool dead_ = false;
  std::error_code dead_error_;
  bool flushing_ = false;       // our close_notify answered want_*: the next close call flushes
  bool write_pending_ = false;  // a write() answered want_*
  bool kept_ = false;           // shutdown() answered data_pending: read() has the data
  // A read of kept data that filled its buffer may or may not have emptied
  // it (the caller cannot know its size): the next read may still return
  // kept data, the next shutdown() may still answer data_pending.
  bool kept_maybe_ = false;
  bool quiet_ = false;
  std::size_t pending_write_ = 0;
  std::uint64_t written_ = 0;
  std::vector<std::byte> read_buf_;
  std::string line_;
};

// "ok", "want_read", ... ; a foreign category in full.
std::string describe(const std::error_code& ec);
std::string flags_name(unsigned flags);

// ---- two sockets and a relay ---------------------------------------------------

// A client and a server, each over its own memory pair; what one writes
// reaches the other only when the relay delivers it, so the fuzzer can hold,
// cut, flip, drop, insert and duplicate bytes on the way. Application data
// is checked end to end: whatever a side reads must be its peer's stream.
class RelayWorld {
 public:
  enum Dir { c2s = 0, s2c = 1 };

  RelayWorld(const std::string& client_backend, const std::string& server_backend,
             const Variant& v);

  Checked& client() { return *client_; }
  Checked& server() { return *server_; }
  Checked& side(bool server_side) { return server_side ? *server_ : *client_; }

  // Moves what each side wrote into the relay's buffers.
  void collect();
  std::vector<std::byte>& pending(Dir d) { return pending_[d]; }
  // Hands the first n buffered bytes of d (all when n >= size) to the receiver.
  void deliver(Dir d, std::size_t n = SIZE_MAX);
  // The pipe the receiver of d reads from, and the one the sender of d writes to.
  MemoryPipe& receiving_pipe(Dir d);
  MemoryPipe& sending_pipe(Dir d);

  // read() on a side, then the end-to-end check of what came.
  std::ptrdiff_t read(bool server_side, std::size_t n);

  // Handshake steps on both sides with full delivery until both are done or
  // nothing moves any more (at most `rounds` rounds). True when both are done.
  bool drive_handshake(int rounds = 16);

  // One operation decoded from the input (the op language of fuzz_handshake
  // and fuzz_shutdown).
  void step(Input& in);

 private:
  void check_stream(Checked& reader, const Checked& writer, std::uint64_t& offset);

  std::unique_ptr<Transport> client_peer_, server_peer_;  // the relay's ends
  std::shared_ptr<MemoryLink> client_link_, server_link_;
  std::unique_ptr<Checked> client_, server_;
  std::vector<std::byte> pending_[2];
  std::uint64_t client_read_ = 0, server_read_ = 0;  // stream offsets read so far
};

// Sizes for read/write operations, picked by one input byte.
std::size_t pick_size(std::uint8_t b);

// fuzz_client / fuzz_server: one socket of `role` on each backend to fuzz,
// over a memory pair whose other end is the fuzzer. The input is
//   variant byte (variant_from), then operations:
//   op % 12 = 0..3: inject u16-length bytes as the peer's, then one step
//                   (handshake() until connected, read() after);
//   4 handshake, 5 read(pick_size), 6 write(pick_size), 7 shutdown,
//   8 send_close_notify, 9 transport fault, 10 set_shutdown, 11 set_quiet.
// fuzz/make_corpus.py writes seeds in this form.
void run_raw_peer(Role role, const std::uint8_t* data, std::size_t size);

}  // namespace unitls::fuzz
