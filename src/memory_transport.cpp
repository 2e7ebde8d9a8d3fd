// The in-memory pair: two transports joined back to back, with a MemoryPipe
// per direction for shaping the traffic in tests and benchmarks.
//
// Threads: each pipe is guarded by its own mutex, so the two ends may live on
// different threads (a client thread and a server thread). One Transport
// object, like a socket object, is used by one thread at a time: its
// native_error() is not synchronised.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include <unitls/error.hpp>
#include <unitls/transport.hpp>

namespace unitls {

MemoryPipe::~MemoryPipe() = default;
MemoryLink::~MemoryLink() = default;

namespace {

// RFC 8446 §5.1 / RFC 5246 §6.2: type(1) legacy_version(2) length(2).
constexpr std::size_t record_header_size = 5;
constexpr std::uint8_t content_type_alert = 21;

// Counts complete TLS records in a byte stream fed in arbitrary pieces.
// Bodies are skipped by length, so the cost is per record, not per byte.
class RecordCounter {
 public:
  void feed(const std::byte* data, std::size_t size) {
    while (size > 0) {
      if (header_have_ < record_header_size) {
        const std::size_t take = std::min(size, record_header_size - header_have_);
        std::memcpy(header_ + header_have_, data, take);
        header_have_ += take;
        data += take;
        size -= take;
        if (header_have_ < record_header_size) return;
        body_left_ = (std::size_t{header_[3]} << 8) | header_[4];
      } else {
        const std::size_t take = std::min(size, body_left_);
        body_left_ -= take;
        data += take;
        size -= take;
      }
      // A zero-length record is complete as soon as its header is.
      if (body_left_ == 0) complete();
    }
  }

  std::uint64_t records() const { return records_; }
  std::uint64_t alerts() const { return alerts_; }

 private:
  void complete() {
    ++records_;
    if (header_[0] == content_type_alert) ++alerts_;
    header_have_ = 0;
  }

  std::uint8_t header_[record_header_size] = {};
  std::size_t header_have_ = 0;
  std::size_t body_left_ = 0;
  std::uint64_t records_ = 0;
  std::uint64_t alerts_ = 0;
};

// What a read or write on a pipe came to, before it becomes an error_code.
struct Outcome {
  std::ptrdiff_t n;
  errc error;       // meaningful when n < 0
  int errno_value;  // for errc::transport_error
};

class Pipe final : public MemoryPipe {
 public:
  void hold(bool on) override {
    std::lock_guard lock(mutex_);
    held_ = on;
  }

  void set_write_budget(std::ptrdiff_t bytes) override {
    std::lock_guard lock(mutex_);
    budget_ = bytes;
  }

  void inject_eof() override {
    std::lock_guard lock(mutex_);
    eof_ = true;
  }

  // 0 withdraws an injected error (an extension: the header does not need it).
  void inject_error(int errno_value) override {
    std::lock_guard lock(mutex_);
    error_ = errno_value;
  }

  void inject_bytes(std::span<const std::byte> bytes) override {
    std::lock_guard lock(mutex_);
    data_.insert(data_.end(), bytes.begin(), bytes.end());
  }

  bool corrupt_last_byte() override {
    std::lock_guard lock(mutex_);
    if (data_.size() == head_) return false;
    data_.back() ^= std::byte{0x01};
    return true;
  }

  std::size_t discard() override {
    std::lock_guard lock(mutex_);
    const std::size_t dropped = data_.size() - head_;
    data_.clear();
    head_ = 0;
    return dropped;
  }

  std::uint64_t bytes_written() const override {
    std::lock_guard lock(mutex_);
    return bytes_written_;
  }
  std::uint64_t records_written() const override {
    std::lock_guard lock(mutex_);
    return records_.records();
  }
  std::uint64_t alert_records_written() const override {
    std::lock_guard lock(mutex_);
    return records_.alerts();
  }
  std::size_t buffered() const override {
    std::lock_guard lock(mutex_);
    return data_.size() - head_;
  }

  Outcome write(std::span<const std::byte> buf) {
    std::lock_guard lock(mutex_);
    // An injected error outranks EOF: it is the more specific fault.
    if (error_ != 0) return {-1, errc::transport_error, error_};
    // Like a socket whose peer has shut down reading.
    if (eof_) return {-1, errc::transport_error, EPIPE};
    std::size_t take = buf.size();
    if (budget_ >= 0) {
      // A full socket buffer takes what fits and reports would-block only
      // when nothing does.
      if (budget_ == 0) return {-1, errc::want_write, 0};
      take = std::min(take, static_cast<std::size_t>(budget_));
      budget_ -= static_cast<std::ptrdiff_t>(take);
    }
    data_.insert(data_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(take));
    bytes_written_ += take;
    records_.feed(buf.data(), take);
    return {static_cast<std::ptrdiff_t>(take), errc{}, 0};
  }

  Outcome read(std::span<std::byte> buf) {
    std::lock_guard lock(mutex_);
    // Held bytes are in flight, and so is whatever follows them (EOF, error).
    if (held_) return {-1, errc::want_read, 0};
    const std::size_t available = data_.size() - head_;
    if (available > 0) {
      const std::size_t take = std::min(available, buf.size());
      std::memcpy(buf.data(), data_.data() + head_, take);
      head_ += take;
      compact();
      return {static_cast<std::ptrdiff_t>(take), errc{}, 0};
    }
    if (error_ != 0) return {-1, errc::transport_error, error_};
    if (eof_) return {0, errc{}, 0};
    return {-1, errc::want_read, 0};
  }

 private:
  // Reads advance head_ instead of erasing, so a read costs one memcpy; the
  // consumed prefix is dropped once it is at least half the buffer, which
  // keeps the erase amortised O(1) per byte.
  void compact() {
    if (head_ == data_.size()) {
      data_.clear();
      head_ = 0;
    } else if (head_ >= 4096 && head_ * 2 >= data_.size()) {
      data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  mutable std::mutex mutex_;
  std::vector<std::byte> data_;
  std::size_t head_ = 0;  // data_[0, head_) has been read
  bool held_ = false;
  bool eof_ = false;
  int error_ = 0;
  std::ptrdiff_t budget_ = -1;
  std::uint64_t bytes_written_ = 0;
  RecordCounter records_;
};

class MemoryEnd final : public Transport {
 public:
  MemoryEnd(std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out)
      : in_(std::move(in)), out_(std::move(out)) {}

  std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) override {
    // 0 must mean EOF and nothing else, so an empty read is refused.
    if (buf.empty()) {
      ec = make_error_code(errc::invalid_argument);
      return -1;
    }
    return answer(in_->read(buf), ec);
  }

  std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) override {
    if (buf.empty()) {
      ec.clear();
      return 0;
    }
    return answer(out_->write(buf), ec);
  }

  std::error_code native_error() const noexcept override { return native_error_; }

 private:
  std::ptrdiff_t answer(const Outcome& outcome, std::error_code& ec) {
    if (outcome.n >= 0) {
      ec.clear();
      return outcome.n;
    }
    ec = make_error_code(outcome.error);
    if (outcome.error == errc::transport_error)
      native_error_ = std::error_code(outcome.errno_value, std::system_category());
    return -1;
  }

  // Shared with the link and the other end, so any of the three may outlive
  // the others.
  std::shared_ptr<Pipe> in_, out_;
  std::error_code native_error_;
};

class Link final : public MemoryLink {
 public:
  MemoryPipe& client_to_server() override { return *client_to_server_; }
  MemoryPipe& server_to_client() override { return *server_to_client_; }

  std::shared_ptr<Pipe> client_to_server_ = std::make_shared<Pipe>();
  std::shared_ptr<Pipe> server_to_client_ = std::make_shared<Pipe>();
};

}  // namespace

MemoryPair make_memory_pair() {
  auto link = std::make_shared<Link>();
  MemoryPair pair;
  pair.client = std::make_unique<MemoryEnd>(link->server_to_client_, link->client_to_server_);
  pair.server = std::make_unique<MemoryEnd>(link->client_to_server_, link->server_to_client_);
  pair.link = std::move(link);
  return pair;
}

}  // namespace unitls
