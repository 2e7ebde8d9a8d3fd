// unitls error codes.
//
// Every call of a SecureSocket reports through return values and one
// std::error_code (SecureSocket::last_error()). The codes callers branch on
// are the errc values below, in the category named "unitls". Each backend
// additionally keeps its library's native error in its own category
// ("unitls.openssl", ...) for diagnostics only; compare against errc, never
// against a native code.
#pragma once

#include <string>
#include <system_error>

#include <unitls/export.hpp>

namespace unitls {

enum class errc {  // value 0 is never used: an empty error_code means success
  want_read = 1,      // non-blocking transport has no data; call again when readable
  want_write,         // non-blocking transport cannot take data; call again when writable
  zero_return,        // the peer's close_notify was processed: no more data will come
  already_sent,       // send_close_notify(): our close_notify is already out
  connection_closed,  // write() after our close_notify was sent (or SENT set by hand)
  unexpected_eof,     // transport EOF without the peer's close_notify (truncation)
  data_pending,       // shutdown() met application data; it is kept for read()
  write_pending,      // shutdown()/send_close_notify() while a write() is unfinished
  not_connected,      // the handshake has not completed
  transport_error,    // the transport failed (reset, broken pipe, other errno)
  protocol_error,     // fatal TLS error: bad record, fatal alert sent or received
  certificate_error,  // the peer's certificate or name was rejected
  timed_out,          // a blocking call passed its deadline
  invalid_argument,   // a bad configuration value, path or PEM (the message names it)
  unsupported,        // the backend cannot do what was asked (e.g. TLS 1.3 on mbedTLS 2.28)
};

// The "unitls" category. message() has a sentence for every errc.
UNITLS_API const std::error_category& category() noexcept;
UNITLS_API std::error_code make_error_code(errc e) noexcept;

// The name of an errc value, as written in the enum ("want_read", ...), or
// "unknown" for a value outside it. Handy for logs and traces.
UNITLS_API const char* to_string(errc e) noexcept;

}  // namespace unitls

template <>
struct std::is_error_code_enum<unitls::errc> : std::true_type {};
