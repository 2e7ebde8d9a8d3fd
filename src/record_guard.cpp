#include "record_guard.hpp"

#include "engine.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include <unitls/error.hpp>

namespace unitls::detail {

namespace {

constexpr std::uint8_t change_cipher_spec = 20;
constexpr std::uint8_t alert = 21;
constexpr std::uint8_t handshake = 22;
constexpr std::uint8_t application_data = 23;

// RFC 8446 5.1, RFC 5246 6.2.1: a plaintext fragment is at most 2^14 bytes.
constexpr std::size_t max_plaintext = 1u << 14;

// The longest handshake message a peer may send in the plaintext phase, by
// type: OpenSSL's limits (statem_srvr.c CLIENT_HELLO_MAX_LENGTH, statem_clnt.c
// SERVER_HELLO_MAX_LENGTH, SSL_MAX_CERT_LIST_DEFAULT for the rest), the
// tightest of the three stacks, so that every backend refuses the same
// messages, and none waits for 16 MiB (GnuTLS would).
std::size_t max_message(std::uint8_t type) {
  switch (type) {
    case 0: return 0;       // HelloRequest: always empty
    case 14: return 0;      // ServerHelloDone: always empty
    case 1: return 131396;  // ClientHello
    case 2: return 20000;   // ServerHello, HelloRetryRequest
    default: return 102400;
  }
}

bool is_content_type(std::uint8_t t) { return t >= change_cipher_spec && t <= application_data; }

class RecordCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unitls.record"; }
  std::string message(int value) const override {
    switch (static_cast<RecordFault>(value)) {
      case RecordFault::none: return "no fault";
      case RecordFault::bad_type: return "not a TLS record (unknown content type): unexpected_message sent";
      case RecordFault::empty_fragment:
        return "a zero-length handshake, alert or ChangeCipherSpec record: unexpected_message sent";
      case RecordFault::early_change_cipher_spec:
        return "a record other than a handshake before the peer's first handshake message: "
               "unexpected_message sent";
      case RecordFault::warning_flood: return "too many warning alerts in a row: unexpected_message sent";
      case RecordFault::record_overflow: return "a plaintext record longer than 2^14 bytes: record_overflow sent";
      case RecordFault::bad_alert: return "an alert record that is not one alert: decode_error sent";
      case RecordFault::oversized_message:
        return "a handshake message longer than any peer may send: illegal_parameter sent";
      case RecordFault::bad_version: return "a record version other than 3.x: protocol_version sent";
      case RecordFault::renegotiation_refused:
        return "the peer answered our first hello with no_renegotiation: handshake_failure sent";
      case RecordFault::key_update_flood:
        return "more than " + std::to_string(KeyUpdateLimit::per_window) + " KeyUpdates within " +
               std::to_string(KeyUpdateLimit::window.count()) + " ms: unexpected_message sent";
    }
    return "record fault " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& record_category() noexcept {
  static const RecordCategory instance;
  return instance;
}

std::ptrdiff_t RecordGuard::judged_read(std::span<std::byte> buf, std::error_code& ec) {
  if (fault_ != RecordFault::none) {
    // Nothing after a rejected record reaches the stack; the core reports
    // the fault.
    ec = make_error_code(errc::want_read);
    return -1;
  }
  const std::ptrdiff_t n = inner_->read(buf, ec);
  if (n <= 0 || !active_) return n;
  const std::size_t good = inspect(buf.first(static_cast<std::size_t>(n)));
  if (fault_ == RecordFault::none) return n;
  if (good == 0) {
    ec = make_error_code(errc::want_read);
    return -1;
  }
  ec.clear();
  return static_cast<std::ptrdiff_t>(good);
}

std::ptrdiff_t RecordGuard::judged_write(std::span<const std::byte> buf, std::error_code& ec) {
  if (fault_ != RecordFault::none || sealed_) {
    // Our fatal alert was the last word: whatever the stack still has to say
    // (a flight built from the records before the rejected one) is dropped.
    ec.clear();
    return static_cast<std::ptrdiff_t>(buf.size());
  }
  const std::ptrdiff_t n = inner_->write(buf, ec);
  if (n > 0 && active_) track_written(buf.first(static_cast<std::size_t>(n)));
  return n;
}

std::size_t RecordGuard::inspect(std::span<const std::byte> bytes) {
  std::size_t record_start = 0;  // where the current record began in bytes (0: earlier)
  std::size_t i = 0;
  while (i < bytes.size() && active_) {
    if (body_left_ == 0) {
      if (header_size_ == 0) {
        record_start = i;
        if (bytes.size() - i >= sizeof header_) {
          // A whole header at once (the usual case: stacks read the 5
          // bytes of a header in one call).
          if (!is_content_type(static_cast<std::uint8_t>(bytes[i]))) {
            reject(RecordFault::bad_type);
            return record_start;
          }
          std::memcpy(header_, bytes.data() + i, sizeof header_);
          i += sizeof header_;
          if (!check_header()) return record_start;
          continue;
        }
      }
      header_[header_size_++] = static_cast<std::uint8_t>(bytes[i++]);
      // Judged at once: non-TLS bytes (HTTP, an SSLv2 hello) may never make
      // up a whole header.
      if (header_size_ == 1 && !is_content_type(header_[0])) {
        reject(RecordFault::bad_type);
        return record_start;
      }
      if (header_size_ < 5) continue;
      header_size_ = 0;
      if (!check_header()) return record_start;
      continue;
    }
    const std::size_t n = std::min(body_left_, bytes.size() - i);
    if (header_[0] == handshake) {
      for (std::size_t k = 0; k < n;) {
        if (message_left_ > 0) {
          const std::size_t skip = std::min(message_left_, n - k);
          message_left_ -= skip;
          k += skip;
          continue;
        }
        if (message_header_size_ == 0 && n - k >= sizeof message_header_) {
          // A whole message header at once.
          std::memcpy(message_header_, bytes.data() + i + k, sizeof message_header_);
          k += sizeof message_header_;
          if (!message_started()) return record_start;
          continue;
        }
        if (!handshake_byte(static_cast<std::uint8_t>(bytes[i + k]))) return record_start;
        ++k;
      }
    } else if (header_[0] == alert) {
      for (std::size_t k = 0; k < n && alert_size_ < 2; ++k)
        alert_[alert_size_++] = static_cast<std::uint8_t>(bytes[i + k]);
    }
    body_left_ -= n;
    i += n;
    if (body_left_ == 0 && header_[0] == alert) {
      alert_size_ = 0;
      const bool warning = alert_[0] == 1;
      // RFC 5246 7.2.2: the peer refuses to renegotiate; during the first
      // handshake that can only mean it will not talk to us.
      if (warning && alert_[1] == 100) {
        reject(RecordFault::renegotiation_refused);
        return record_start;
      }
      if (warning && ++warnings_in_a_row_ > max_warning_alerts) {
        reject(RecordFault::warning_flood);
        return record_start;
      }
    }
  }
  return bytes.size();
}

bool RecordGuard::check_header() {
  const std::uint8_t type = header_[0];
  const std::size_t length = static_cast<std::size_t>(header_[3]) << 8 | header_[4];
  if (header_[1] != 3) {
    reject(RecordFault::bad_version);
    return false;
  }
  if (length > max_plaintext) {
    reject(RecordFault::record_overflow);
    return false;
  }
  // RFC 5246 6.2.1, RFC 8446 5.1: zero-length fragments of these types MUST
  // NOT be sent (OpenSSL would skip 32 of them, the others fail at once).
  if (length == 0 && type != application_data) {
    reject(RecordFault::empty_fragment);
    return false;
  }
  if (type == alert && length != 2) {
    reject(RecordFault::bad_alert);
    return false;
  }
  // Before the peer's first handshake message only a handshake record may
  // come (RFC 8446 5: a ChangeCipherSpec before the ClientHello is
  // unexpected_message), or an alert telling a client the server will not
  // talk; a server has nothing to hear an alert about yet.
  if (!seen_handshake_ && (type == change_cipher_spec || type == application_data ||
                           (type == alert && role_ == Role::server))) {
    reject(RecordFault::early_change_cipher_spec);
    return false;
  }
  if (type != alert && length > 0) warnings_in_a_row_ = 0;
  if (type == handshake) seen_handshake_ = true;
  body_left_ = length;
  // From the peer's ChangeCipherSpec or first application_data record on,
  // its records are encrypted: the stack's business.
  if (type == change_cipher_spec || type == application_data) active_ = false;
  return true;
}

bool RecordGuard::handshake_byte(std::uint8_t b) {
  message_header_[message_header_size_++] = b;
  if (message_header_size_ < 4) return true;
  message_header_size_ = 0;
  return message_started();
}

bool RecordGuard::message_started() {
  message_left_ = static_cast<std::size_t>(message_header_[1]) << 16 |
                  static_cast<std::size_t>(message_header_[2]) << 8 | message_header_[3];
  if (message_left_ > max_message(message_header_[0])) {
    reject(RecordFault::oversized_message);
    return false;
  }
  return true;
}

void RecordGuard::reject(RecordFault f) {
  fault_ = f;
  // Exactly one fatal alert, in plaintext (nothing of ours is encrypted
  // yet), and only between two of our records: half a record of ours is
  // on the wire otherwise, and the alert would land inside it.
  if (out_header_size_ != 0 || out_body_left_ != 0) return;
  const auto description = static_cast<std::uint8_t>(static_cast<int>(f) % 1000);
  const std::byte record[] = {std::byte{alert}, std::byte{3},    std::byte{3},          std::byte{0},
                              std::byte{2},     std::byte{2},    std::byte{description}};
  std::error_code ec;
  (void)inner_->write(record, ec);  // best effort: a transport that cannot take 7 bytes has failed
}

void RecordGuard::track_written(std::span<const std::byte> bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (out_body_left_ > 0) {
      const std::size_t n = std::min(out_body_left_, bytes.size() - i);
      out_body_left_ -= n;
      i += n;
      continue;
    }
    if (out_header_size_ == 0 && bytes.size() - i >= 5) {
      // A whole header at once (stacks write whole records).
      out_type_ = static_cast<std::uint8_t>(bytes[i]);
      out_length_[0] = static_cast<std::uint8_t>(bytes[i + 3]);
      out_length_[1] = static_cast<std::uint8_t>(bytes[i + 4]);
      i += 5;
      out_header_size_ = 5;
    } else {
      const auto b = static_cast<std::uint8_t>(bytes[i++]);
      if (out_header_size_ == 0) out_type_ = b;
      if (out_header_size_ == 3 || out_header_size_ == 4) out_length_[out_header_size_ - 3] = b;
      ++out_header_size_;
    }
    if (out_header_size_ < 5) continue;
    out_header_size_ = 0;
    out_body_left_ = static_cast<std::size_t>(out_length_[0]) << 8 | out_length_[1];
    // Our ChangeCipherSpec or first encrypted record: from here on an alert
    // of ours must be encrypted, which only the stack can do.
    if (out_type_ == change_cipher_spec || out_type_ == application_data) {
      active_ = false;
      return;
    }
  }
}

}  // namespace unitls::detail
