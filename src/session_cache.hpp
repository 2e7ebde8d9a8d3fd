// The client session cache and the RFC 2246 rule, once for every backend
// (docs/contract.md, "Sessions follow the shutdown").
//
// The Context owns one ClientSessionCache (client, session_cache on). Each
// connection has a SessionLedger: what it offered, what it used, what it
// received. Engines only export a session when their stack makes a new one
// (SessionSink::session_made) and import the one they are given; when a
// session is stored, offered and forgotten is decided here.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
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

class ServerSessionStore;

// One connection's account with its Context's sessions: for a client what
// it offered, used and received; for a server the session it stored or
// resumed. An improper end takes them out.
class SessionLedger final : public SessionSink {
 public:
  SessionLedger(std::shared_ptr<ClientSessionCache> cache, std::string key);
  explicit SessionLedger(std::shared_ptr<ServerSessionStore> store);

  // Client: the session this connection offers (null: none), looked up once.
  std::shared_ptr<const SessionBytes> offer();
  // Client: the stack made a session (a full TLS 1.2 handshake, a ticket):
  // it is available to new connections at once.
  void session_made(std::span<const unsigned char> session) override;
  // The handshake completed: a client's offered session was used if the
  // engine resumed; a server's session is the one under its ID.
  void handshake_done(const Engine& engine);
  // The connection ends. Improperly (SENT unset, or dead): every session it
  // used or received leaves the cache.
  void end(bool closed_properly);

 private:
  std::shared_ptr<ClientSessionCache> cache_;
  std::shared_ptr<ServerSessionStore> store_;
  std::string key_;
  std::uint64_t offered_ = 0;
  std::vector<std::uint64_t> mine_;  // client: used or received, forgotten on an improper end
  SessionBytes server_id_;           // server: the session ID this connection stored or resumed
};

// A server's session-ID cache (RFC 5246 7.4.1.2), one per server Context,
// behind each stack's own cache hooks; the stacks' TLS 1.2 tickets are off,
// so that a session the RFC 2246 rule takes away is really gone (TLS 1.3
// tickets stay stateless where the stack makes them so: docs/contract.md).
class ServerSessionStore {
 public:
  static constexpr std::size_t capacity = 20480;  // OpenSSL's default
  static constexpr std::chrono::seconds lifetime{7200};

  void store(std::span<const unsigned char> id, std::span<const unsigned char> session);
  // The session stored under id (null: none, or expired).
  std::shared_ptr<const SessionBytes> find(std::span<const unsigned char> id);
  void remove(std::span<const unsigned char> id);
  std::size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const SessionBytes> session;
    std::chrono::steady_clock::time_point expires;
  };
  mutable std::mutex mutex_;
  std::map<SessionBytes, Entry, std::less<>> entries_;
  std::deque<SessionBytes> order_;  // ids in the order stored (some since removed)
};

}  // namespace unitls::detail
