#include "keylog.hpp"

#include "wipe.hpp"

#include <algorithm>
#include <string>

namespace unitls::detail {

namespace {

// NSS key log format (the labels as OpenSSL, GnuTLS and Wireshark spell them),
// indexed by Secret.
constexpr std::string_view labels[secret_kinds] = {
    "CLIENT_RANDOM",           "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",         "EXPORTER_SECRET",
};

void append_hex(std::string& out, std::span<const unsigned char> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  for (const unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
}

// Secrets do not stay behind in the connection's memory once logged.
void wipe(void* p, std::size_t n) noexcept { secure_wipe(p, n); }

}  // namespace

std::string_view label_of(Secret secret) noexcept { return labels[static_cast<std::size_t>(secret)]; }

std::optional<Secret> secret_of_label(std::string_view label) noexcept {
  for (std::size_t i = 0; i < secret_kinds; ++i)
    if (labels[i] == label) return static_cast<Secret>(i);
  return std::nullopt;
}

void KeyLogger::secret(Secret which, std::span<const unsigned char> client_random,
                       std::span<const unsigned char> secret) noexcept {
  Entry& e = entries_[static_cast<std::size_t>(which)];
  // One line per secret: a stack that reports one twice is heard once. A
  // client random is 32 bytes (RFC 5246 7.4.1.2, RFC 8446 4.1.2).
  if (ended_ || e.present || client_random.size() != e.client_random.size() || secret.empty() ||
      secret.size() > max_secret)
    return;
  e.present = true;
  e.secret_size = static_cast<std::uint8_t>(secret.size());
  std::copy(client_random.begin(), client_random.end(), e.client_random.begin());
  std::copy(secret.begin(), secret.end(), e.secret.begin());
}

void KeyLogger::handshake_ended(bool completed) noexcept {
  if (ended_) return;
  ended_ = true;
  std::string line;
  for (std::size_t i = 0; i < secret_kinds; ++i) {
    Entry& e = entries_[i];
    if (!e.present) continue;
    if (!completed) {
      wipe(e.secret.data(), e.secret.size());
      continue;
    }
    line.assign(labels[i]);
    line += ' ';
    append_hex(line, e.client_random);
    line += ' ';
    append_hex(line, std::span<const unsigned char>(e.secret.data(), e.secret_size));
    wipe(e.secret.data(), e.secret.size());
#if defined(__cpp_exceptions)
    // The callback is the user's: whatever it throws stays here, where the
    // handshake's caller would not expect it (docs/contract.md, "Key log").
    try {
      (*callback_)(line);
    } catch (...) {
    }
#else
    (*callback_)(line);
#endif
  }
  wipe(line.data(), line.size());
}

}  // namespace unitls::detail
