#include <unitls/error.hpp>

namespace unitls {

namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unitls"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::want_read: return "the transport has no data now; call again when readable";
      case errc::want_write: return "the transport cannot take data now; call again when writable";
      case errc::zero_return: return "the peer closed the connection with close_notify";
      case errc::already_sent: return "close notification already sent";
      case errc::connection_closed: return "connection closed: our close_notify was sent";
      case errc::unexpected_eof: return "the transport ended without close_notify (truncation)";
      case errc::data_pending: return "application data arrived before the peer's close_notify; read it first";
      case errc::write_pending: return "an earlier write is unfinished; repeat it first";
      case errc::not_connected: return "the handshake has not completed";
      case errc::transport_error: return "the transport failed";
      case errc::protocol_error: return "fatal TLS protocol error";
      case errc::certificate_error: return "the peer's certificate or name was rejected";
      case errc::timed_out: return "the deadline passed";
      case errc::invalid_argument: return "invalid argument";
      case errc::unsupported: return "not supported by this backend";
    }
    return "unknown unitls error";
  }
};

// Constant-initialised: category() is a plain address, with no guard to
// test on each call (an error_code is made on every want_read,
// docs/benchmarks.md).
constinit const Category category_instance;

}  // namespace

const std::error_category& category() noexcept { return category_instance; }

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category_instance}; }


const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::want_read: return "want_read";
    case errc::want_write: return "want_write";
    case errc::zero_return: return "zero_return";
    case errc::already_sent: return "already_sent";
    case errc::connection_closed: return "connection_closed";
    case errc::unexpected_eof: return "unexpected_eof";
    case errc::data_pending: return "data_pending";
    case errc::write_pending: return "write_pending";
    case errc::not_connected: return "not_connected";
    case errc::transport_error: return "transport_error";
    case errc::protocol_error: return "protocol_error";
    case errc::certificate_error: return "certificate_error";
    case errc::timed_out: return "timed_out";
    case errc::invalid_argument: return "invalid_argument";
    case errc::unsupported: return "unsupported";
  }
  return "unknown";
}

}  // namespace unitls
