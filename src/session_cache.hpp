// The client session cache and the RFC 2246 rule, once for every backend
// (docs/contract.md, "Sessions follow the shutdown").
//
// The Context owns one ClientSessionCache (client, session_cache on). Each
// connection has a SessionLedger: what it offered, what it used, what it
// received. Engines only export a session when their stack makes a new one
// (SessionSink::session_made) and import the one they are given; when a
// session is stored, offered and forgotten is decided here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "engine.hpp"

namespace unitls::detail {

class ClientSessionCache {
 public:
  struct Entry {
    std::uint64_t serial = 0;  // 0: none
    std::shared_ptr<const SessionBytes> session;
  };

  // The newest session stored under key, shared (no copy).
  Entry find(const std::string& key) const;
  // Stores a copy of session under key, replacing what was there; its serial.
  std::uint64_t store(const std::string& key, std::span<const unsigned char> session);
  // Removes key's entry if it is one of `serials` (another connection may
  // have replaced it since; that one is not for this connection to drop).
  void forget(const std::string& key, std::span<const std::uint64_t> serials);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::uint64_t next_serial_ = 1;
};

// One client connection's account with the cache.
class SessionLedger final : public SessionSink {
 public:
  SessionLedger(std::shared_ptr<ClientSessionCache> cache, std::string key);

  // The session this connection offers (null: none), looked up once.
  std::shared_ptr<const SessionBytes> offer();
  // The stack made a session (a full TLS 1.2 handshake, a ticket): it is
  // available to new connections at once.
  void session_made(std::span<const unsigned char> session) override;
  // The handshake completed; reused: the offered session was used.
  void handshake_done(bool reused);
  // The connection ends. Improperly (SENT unset, or dead): every session it
  // used or received leaves the cache.
  void end(bool closed_properly);

 private:
  std::shared_ptr<ClientSessionCache> cache_;
  std::string key_;
  std::uint64_t offered_ = 0;
  std::vector<std::uint64_t> mine_;  // used or received: forgotten on an improper end
};

}  // namespace unitls::detail
