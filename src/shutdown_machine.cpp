#include "shutdown_machine.hpp"

#include <unitls/secure_socket.hpp>

namespace unitls::detail {

unsigned ConnectionState::flags() const noexcept {
  return (sent ? sent_shutdown : 0u) | (received ? received_shutdown : 0u);
}

ConnectionState set_flags(ConnectionState s, unsigned mode) noexcept {
  if (mode & sent_shutdown) s.sent = true;
  if (mode & received_shutdown) s.received = true;
  return s;
}

}  // namespace unitls::detail
