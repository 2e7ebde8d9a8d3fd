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
#include <string_view>
#include <vector>

#include "engine.hpp"

namespace unitls::detail {

// A client Context's cache. Every connection of a Context goes to its one
// server_name, so the cache keyed by server_name is a single entry: the
// newest session.
class ClientSessionCache {
 public:
  struct Entry {
    std::uint64_t serial = 0;  // 0: none
    std::shared_ptr<const StoredSession> session;
  };

  // The newest session, shared (no copy).
  Entry find() const;
  // Stores a copy of session, made by the connection `maker`, replacing
  // what was there.
  void store(std::span<const unsigned char> session, std::shared_ptr<void> native,
             std::uint64_t maker);
  // Removes the entry if `maker` made it or it is the session `used`
  // (another connection may have replaced it since; that one is not for
  // this connection to drop).
  void forget(std::uint64_t maker, std::uint64_t used);
  // A number for a new connection (a maker), never 0.
  std::uint64_t next_id();

 private:
  mutable std::mutex mutex_;
  Entry entry_;
  std::uint64_t entry_maker_ = 0;
  std::uint64_t next_serial_ = 1;
};

class ServerSessionStore;

// One connection's account with its Context's sessions: for a client what
// it used and received; for a server the session it stored or resumed. An
// improper end takes them out. Small: no copy of anything.
class SessionLedger final : public SessionSink {
 public:
  explicit SessionLedger(std::shared_ptr<ClientSessionCache> cache);
  explicit SessionLedger(std::shared_ptr<ServerSessionStore> store);

  // Client: the session this connection offers (null: none), looked up once.
  std::shared_ptr<const StoredSession> offer();
  // Client: the stack made a session (a full TLS 1.2 handshake, a ticket):
  // it is available to new connections at once.
  void session_made(std::span<const unsigned char> session, std::shared_ptr<void> native) override;
  // The handshake completed: a client's offered session was used if the
  // engine resumed; a server's session is the one under its ID.
  void handshake_done(const Engine& engine);
  // The connection ends. Improperly (SENT unset, or dead): every session it
  // used or received leaves the cache.
  void end(bool closed_properly);

 private:
  std::shared_ptr<ClientSessionCache> cache_;
  std::shared_ptr<ServerSessionStore> store_;
  std::uint64_t id_ = 0;       // client: this connection, as the maker of what it received
  std::uint64_t offered_ = 0;  // client: the serial of the session offered
  std::uint64_t used_ = 0;     // client: the same, once the handshake resumed it
  // Server: the session ID this connection stored or resumed (at most 32
  // bytes, RFC 5246 7.4.1.2).
  unsigned char server_id_[32] = {};
  std::uint8_t server_id_size_ = 0;
};

// A server's session-ID cache (RFC 5246 7.4.1.2), one per server Context,
// behind each stack's own cache hooks; the stacks' TLS 1.2 tickets are off,
// so that a session the RFC 2246 rule takes away is really gone (TLS 1.3
// tickets stay stateless where the stack makes them so: docs/contract.md).
class ServerSessionStore {
 public:
  static constexpr std::size_t capacity = 20480;  // OpenSSL's default
  static constexpr std::chrono::seconds lifetime{7200};

  // server_name: the SNI host_name of the handshake that made the session
  // ("" none).
  void store(std::span<const unsigned char> id, std::span<const unsigned char> session,
             std::shared_ptr<void> native, std::string_view server_name);
  // The session stored under id for a ClientHello naming server_name (null:
  // none, expired, or made under another name: RFC 6066 3 forbids resuming
  // it, docs/contract.md "Server names").
  std::shared_ptr<const StoredSession> find(std::span<const unsigned char> id, std::string_view server_name);
  void remove(std::span<const unsigned char> id);
  std::size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const StoredSession> session;
    std::chrono::steady_clock::time_point expires;
    std::string server_name;
  };
  mutable std::mutex mutex_;
  // Keyed by the ID's bytes (as a string: ordered, hashed and compared by
  // the library's string code).
  std::map<std::string, Entry, std::less<>> entries_;
  std::deque<std::string> order_;  // ids in the order stored (some since removed)
};

}  // namespace unitls::detail
