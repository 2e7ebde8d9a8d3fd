// The key log (Config::keylog): NSS key-log lines, the same on every backend
// (docs/contract.md, "Key log").
//
// An engine hands over each secret its stack derives, as (which secret,
// client random, secret), through a KeyLogSink; the core formats the lines
// and decides which are logged and in what order, once. Nothing of this
// exists for a Context whose keylog is empty: no stack callback is
// installed, no KeyLogger made.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace unitls::detail {

// The secrets that are logged, in the order their lines are handed to the
// callback (one version's set each: TLS 1.2 has only client_random).
enum class Secret : std::uint8_t {
  client_random,               // TLS 1.2 master secret: CLIENT_RANDOM
  client_handshake_traffic,    // CLIENT_HANDSHAKE_TRAFFIC_SECRET
  server_handshake_traffic,    // SERVER_HANDSHAKE_TRAFFIC_SECRET
  client_traffic_0,            // CLIENT_TRAFFIC_SECRET_0
  server_traffic_0,            // SERVER_TRAFFIC_SECRET_0
  exporter,                    // EXPORTER_SECRET
};
inline constexpr std::size_t secret_kinds = 6;

// The NSS label of a secret, and the secret an NSS label names (nullopt:
// one that is not logged, e.g. CLIENT_EARLY_TRAFFIC_SECRET or OpenSSL's
// "RSA" line).
std::string_view label_of(Secret secret) noexcept;
std::optional<Secret> secret_of_label(std::string_view label) noexcept;

// Where an engine reports a secret, on the thread running the handshake.
// The spans are read at once (the stack's own buffers).
class KeyLogSink {
 public:
  virtual void secret(Secret which, std::span<const unsigned char> client_random,
                      std::span<const unsigned char> secret) noexcept = 0;

 protected:
  ~KeyLogSink() = default;
};

using KeyLogFunction = std::function<void(std::string_view line)>;

// One connection's key log: what the stack reported during the handshake,
// handed to the callback when the handshake completes, in Secret order, each
// secret once. A handshake that fails logs nothing: the stacks derive the
// secrets at different moments, so what a failure had would tell the backend
// (docs/contract.md, "Key log").
class KeyLogger final : public KeyLogSink {
 public:
  explicit KeyLogger(std::shared_ptr<const KeyLogFunction> callback) : callback_(std::move(callback)) {}
  // A connection that ends mid-handshake keeps no secret behind.
  ~KeyLogger() {
    if (!ended_) handshake_ended(false);
  }

  void secret(Secret which, std::span<const unsigned char> client_random,
              std::span<const unsigned char> secret) noexcept override;
  // The handshake ended: completed, the lines go out; either way nothing
  // more is logged (not a KeyUpdate's secrets either), and the secrets are
  // wiped.
  void handshake_ended(bool completed) noexcept;

 private:
  static constexpr std::size_t max_secret = 64;  // SHA-512 suites, should one come
  struct Entry {
    bool present = false;
    std::uint8_t secret_size = 0;
    std::array<unsigned char, 32> client_random{};
    std::array<unsigned char, max_secret> secret{};
  };
  std::shared_ptr<const KeyLogFunction> callback_;
  std::array<Entry, secret_kinds> entries_{};
  bool ended_ = false;
};

}  // namespace unitls::detail
