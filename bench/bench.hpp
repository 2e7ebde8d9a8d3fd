// The benchmark's pieces (docs/benchmarks.md): one Endpoint interface that
// unitls and each TLS library used directly implement, so that every
// workload in bench.cpp runs the same driver code over either.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unitls/unitls.hpp>

namespace bench {

using unitls::Version;

inline constexpr const char* server_name = "localhost";  // the name server.pem is for

[[noreturn]] inline void fail(const std::string& what) { throw std::runtime_error(what); }

// ---- in-memory pipes -------------------------------------------------------------

// One direction of an in-memory connection (the idle-memory workload, where
// a thousand TCP connections would run out of descriptors). Drained, it
// holds no heap, so that an idle connection's pipes cost neither side.
class Pipe {
 public:
  void write(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }

  // Up to size bytes; 0 when nothing is buffered.
  std::size_t read(void* out, std::size_t size) {
    const std::size_t n = std::min(size, bytes_.size() - head_);
    if (n == 0) return 0;
    std::memcpy(out, bytes_.data() + head_, n);
    head_ += n;
    if (head_ == bytes_.size()) {
      std::vector<unsigned char>().swap(bytes_);
      head_ = 0;
    }
    return n;
  }

  bool empty() const { return head_ == bytes_.size(); }

 private:
  std::vector<unsigned char> bytes_;
  std::size_t head_ = 0;
};

// What one side of a connection runs over: a non-blocking socket (each
// library then uses its own socket I/O, as an application would), or a
// pair of in-memory pipes (each library through its I/O callbacks).
struct Link {
  int fd = -1;
  Pipe* in = nullptr;
  Pipe* out = nullptr;
};

// ---- one side of a connection, whichever library runs it ------------------------

enum class Step { done, again };

class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // One handshake call; throws on failure.
  virtual Step handshake() = 0;
  // Writes from data: the bytes taken, 0 when the transport takes nothing now.
  virtual std::size_t write(const void* data, std::size_t size) = 0;
  // Reads into data: the bytes read, 0 when nothing is there yet (a TLS 1.3
  // ticket may be all a call consumes). The end of data or a failure throws.
  virtual std::size_t read(void* data, std::size_t size) = 0;
  // One step of a bidirectional close: done once this side has sent its
  // close_notify and received the peer's.
  virtual Step shutdown() = 0;
  virtual bool resumed() const = 0;
  // The negotiated suite's IANA name (to check both drivers negotiate alike).
  virtual std::string cipher() const = 0;
  // A proper close that puts nothing on the wire: the session stays resumable.
  virtual void mark_closed() = 0;
  // Frees the connection's TLS objects (the Endpoint itself stays, so that
  // the heap drop measured is the connection's alone).
  virtual void release() = 0;
};

struct Certs {
  std::string ca, certificate, key;
};

// A library set up for one version: client and server configuration
// (contexts, credentials, the client's one-entry session cache), shared by
// every connection it opens.
class Stack {
 public:
  virtual ~Stack() = default;
  virtual std::unique_ptr<Endpoint> client(const Link& link) = 0;
  virtual std::unique_ptr<Endpoint> server(const Link& link) = 0;
};

// sessions: whether the client offers the newest session it has (false:
// every handshake is a full one).
struct StackOptions {
  Version version = Version::tls1_3;
  bool sessions = true;
};

std::unique_ptr<Stack> make_unitls_stack(std::string_view backend, const StackOptions& options,
                                         const Certs& certs);

// The stack used directly; nullptr when this build has no native driver for
// the backend or the version. Native drivers live in bench/native_<name>.cpp,
// one per backend, each defining make_native_<name> (the build lists them).
std::unique_ptr<Stack> make_native_stack(std::string_view backend, const StackOptions& options,
                                         const Certs& certs);

}  // namespace bench
