#include "session_cache.hpp"

#include <algorithm>

namespace unitls::detail {

ClientSessionCache::Entry ClientSessionCache::find(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  return it == entries_.end() ? Entry{} : it->second;
}

std::uint64_t ClientSessionCache::store(const std::string& key,
                                        std::span<const unsigned char> session) {
  auto copy = std::make_shared<const SessionBytes>(session.begin(), session.end());
  std::lock_guard lock(mutex_);
  const std::uint64_t serial = next_serial_++;
  entries_[key] = Entry{serial, std::move(copy)};
  return serial;
}

void ClientSessionCache::forget(const std::string& key, std::span<const std::uint64_t> serials) {
  std::shared_ptr<const SessionBytes> dropped;  // freed outside the lock
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (std::find(serials.begin(), serials.end(), it->second.serial) == serials.end()) return;
  dropped = std::move(it->second.session);
  entries_.erase(it);
}

SessionLedger::SessionLedger(std::shared_ptr<ClientSessionCache> cache, std::string key)
    : cache_(std::move(cache)), key_(std::move(key)) {}

SessionLedger::SessionLedger(std::shared_ptr<ServerSessionStore> store) : store_(std::move(store)) {}

std::shared_ptr<const SessionBytes> SessionLedger::offer() {
  if (!cache_) return nullptr;
  ClientSessionCache::Entry e = cache_->find(key_);
  offered_ = e.serial;
  return std::move(e.session);
}

void SessionLedger::session_made(std::span<const unsigned char> session) {
  if (!cache_ || session.empty()) return;
  mine_.push_back(cache_->store(key_, session));
}

void SessionLedger::handshake_done(const Engine& engine) {
  if (store_) {
    server_id_ = engine.server_session_id();
  } else if (offered_ != 0 && engine.session_reused()) {
    mine_.push_back(offered_);
  }
}

void SessionLedger::end(bool closed_properly) {
  if (closed_properly) return;
  if (cache_ && !mine_.empty()) cache_->forget(key_, mine_);
  if (store_ && !server_id_.empty()) store_->remove(server_id_);
}

void ServerSessionStore::store(std::span<const unsigned char> id, std::span<const unsigned char> session) {
  if (id.empty() || session.empty()) return;
  auto copy = std::make_shared<const SessionBytes>(session.begin(), session.end());
  SessionBytes key(id.begin(), id.end());
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  // Full: the oldest go first (an id removed since is skipped).
  while (entries_.size() >= capacity && !order_.empty()) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  if (order_.size() > 2 * capacity) {  // ids removed long ago
    std::erase_if(order_, [&](const SessionBytes& k) { return !entries_.contains(k); });
  }
  entries_[key] = Entry{std::move(copy), now + lifetime};
  order_.push_back(std::move(key));
}

std::shared_ptr<const SessionBytes> ServerSessionStore::find(std::span<const unsigned char> id) {
  const SessionBytes key(id.begin(), id.end());
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (std::chrono::steady_clock::now() >= it->second.expires) {
    entries_.erase(it);
    return nullptr;
  }
  return it->second.session;
}

void ServerSessionStore::remove(std::span<const unsigned char> id) {
  const SessionBytes key(id.begin(), id.end());
  std::lock_guard lock(mutex_);
  entries_.erase(key);
}

std::size_t ServerSessionStore::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace unitls::detail
