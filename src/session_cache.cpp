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

std::shared_ptr<const SessionBytes> SessionLedger::offer() {
  ClientSessionCache::Entry e = cache_->find(key_);
  offered_ = e.serial;
  return std::move(e.session);
}

void SessionLedger::session_made(std::span<const unsigned char> session) {
  if (session.empty()) return;
  mine_.push_back(cache_->store(key_, session));
}

void SessionLedger::handshake_done(bool reused) {
  if (reused && offered_ != 0) mine_.push_back(offered_);
}

void SessionLedger::end(bool closed_properly) {
  if (!closed_properly && !mine_.empty()) cache_->forget(key_, mine_);
}

}  // namespace unitls::detail
