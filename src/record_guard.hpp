// RecordGuard: the one place that judges the peer's plaintext records.
//
// Until either side's records are encrypted, a TLS stream is plain records
// (RFC 8446 5.1, RFC 5246 6.2.1) and plain handshake messages. The stacks
// disagree about malformed ones (docs/backend-notes.md, "Hostile peers"):
// OpenSSL skips empty handshake records and answers non-TLS bytes without an
// alert, GnuTLS waits for a handshake message announcing 16 MiB, ... So the
// core reads that phase itself, before any stack sees a byte, and rejects
// what the contract rejects (docs/contract.md, "Hostile peers"): the
// connection fails with protocol_error and exactly one fatal alert goes out,
// written here in plaintext, which is what the peer expects at that point.
//
// Once a record of either direction is encrypted (ChangeCipherSpec or
// application_data seen), the guard steps aside: it forwards every call and
// the stacks, whose answers to bad encrypted records agree, take over.
//
// The guard is a Transport wrapped around the user's: the engine reads and
// writes through it. It never copies or buffers: it looks at the bytes the
// engine reads, and hands on only those before a rejected record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include <unitls/context.hpp>
#include <unitls/transport.hpp>

namespace unitls::detail {

// Why a record was rejected: the value is the TLS alert description sent
// (RFC 8446 6), the category "unitls.record" says what was wrong.
enum class RecordFault : int {
  none = 0,
  bad_type = 10,            // unexpected_message: not a TLS content type (non-TLS bytes, HTTP, SSLv2)
  empty_fragment = 1010,    // unexpected_message: a zero-length handshake, alert or ChangeCipherSpec record
  early_change_cipher_spec = 2010,  // unexpected_message: not a handshake record before the peer's first one
  warning_flood = 3010,     // unexpected_message: too many warning alerts in a row
  record_overflow = 22,     // record_overflow: a plaintext record longer than 2^14
  bad_alert = 50,           // decode_error: an alert record that is not exactly one alert
  oversized_message = 47,   // illegal_parameter: a handshake message longer than any peer may send
  bad_version = 70,         // protocol_version: a record version that is not 3.x
  renegotiation_refused = 40,  // handshake_failure: the peer said no_renegotiation to our first hello
  // Not the guard's own, but a record fault of the same kind: more TLS 1.3
  // KeyUpdates than KeyUpdateLimit (engine.hpp) allows, which a backend
  // whose stack takes any number reports with this code.
  key_update_flood = 4010,  // unexpected_message
};

const std::error_category& record_category() noexcept;
inline std::error_code make_error_code(RecordFault f) {
  return {static_cast<int>(f), record_category()};
}

class RecordGuard final : public Transport {
 public:
  // At most this many warning alerts in a row (OpenSSL's MAX_WARN_ALERT_COUNT,
  // which it cannot be told to lift): the next one is a flood.
  static constexpr int max_warning_alerts = 4;

  RecordGuard(std::unique_ptr<Transport> inner, Role role)
      : owned_(std::move(inner)), inner_(owned_.get()), role_(role) {}
  // Around a transport that lives elsewhere (and outlives the guard).
  RecordGuard(Transport& inner, Role role) : inner_(&inner), role_(role) {}

  // Once the records are encrypted and nothing was rejected, the guard has
  // nothing left to judge: straight to the transport, inline (the data path,
  // docs/benchmarks.md).
  std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) override {
    if (passes_reads()) [[likely]] return inner_->read(buf, ec);
    return judged_read(buf, ec);
  }
  std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) override {
    if (passes_writes()) [[likely]] return inner_->write(buf, ec);
    return judged_write(buf, ec);
  }
  // Whether a read or write now goes to the transport untouched: the Wire
  // may then make it itself.
  bool passes_reads() const noexcept { return !active_ && fault_ == RecordFault::none; }
  bool passes_writes() const noexcept { return !active_ && fault_ == RecordFault::none && !sealed_; }
  int native_handle() const noexcept override { return inner_->native_handle(); }
  bool is_blocking() const noexcept override { return inner_->is_blocking(); }
  std::error_code native_error() const noexcept override { return inner_->native_error(); }
  void set_deadline(std::chrono::steady_clock::time_point deadline) noexcept override {
    inner_->set_deadline(deadline);
  }

  // What the guard rejected (RecordFault::none while nothing). Sticky.
  RecordFault fault() const noexcept { return fault_; }
  // The plaintext phase: records are still judged here.
  bool active() const noexcept { return active_; }
  bool sealed() const noexcept { return sealed_; }

  // For a caller that read or wrote the inner transport itself (the Wire's
  // direct socket path, docs/benchmarks.md) while nothing is rejected:
  // judged() looks at the bytes just read, as read() would, and returns how
  // many of them to hand on (0 with fault() set: none, the read is "nothing
  // now"); written() follows what was written.
  std::size_t judged(std::span<const std::byte> bytes) { return active_ ? inspect(bytes) : bytes.size(); }
  void written(std::span<const std::byte> bytes) {
    if (active_) track_written(bytes);
  }

  // Our close_notify is fully on the transport: RFC 5246 7.2.1, its sender
  // sends nothing more on the connection. Whatever the stack still writes
  // (mbedTLS and GnuTLS answer a bad record after it with a fatal alert,
  // OpenSSL does not) is dropped here, the same for every backend.
  void seal() noexcept { sealed_ = true; }

 private:
  std::ptrdiff_t judged_read(std::span<std::byte> buf, std::error_code& ec);
  std::ptrdiff_t judged_write(std::span<const std::byte> buf, std::error_code& ec);
  // Looks at bytes just read; returns how many of them come before a
  // rejected record (all of them when nothing is wrong).
  std::size_t inspect(std::span<const std::byte> bytes);
  // Checks a complete record header; false (fault_ set) when it is rejected.
  bool check_header();
  // One byte of a plaintext handshake record's content.
  bool handshake_byte(std::uint8_t b);
  // A handshake message header is complete: false (fault_ set) when the
  // announced length is rejected.
  bool message_started();
  void reject(RecordFault f);
  void track_written(std::span<const std::byte> bytes);

  std::unique_ptr<Transport> owned_;  // inner_ when the guard owns it
  Transport* inner_;
  Role role_;
  bool active_ = true;  // plaintext phase: records are judged here
  bool sealed_ = false;  // our close_notify went out: nothing more does
  RecordFault fault_ = RecordFault::none;

  // The inbound record being read.
  std::uint8_t header_[5] = {};
  std::size_t header_size_ = 0;  // bytes of header_ collected
  std::size_t body_left_ = 0;    // bytes of the current record's content still to come
  std::uint8_t alert_[2] = {};
  std::size_t alert_size_ = 0;
  int warnings_in_a_row_ = 0;
  bool seen_handshake_ = false;  // the peer's first handshake record arrived

  // The plaintext handshake messages inside those records.
  std::uint8_t message_header_[4] = {};
  std::size_t message_header_size_ = 0;
  std::size_t message_left_ = 0;

  // What we wrote: record boundaries (an alert may go out only between
  // records) and whether our records are encrypted yet.
  std::size_t out_header_size_ = 0;
  std::uint8_t out_type_ = 0;
  std::uint8_t out_length_[2] = {};
  std::size_t out_body_left_ = 0;
};

}  // namespace unitls::detail

template <>
struct std::is_error_code_enum<unitls::detail::RecordFault> : std::true_type {};
