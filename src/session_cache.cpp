#include "session_cache.hpp"

#include <algorithm>
#include <string_view>

namespace unitls::detail {

ClientSessionCache::Entry ClientSessionCache::find() const {
  std::lock_guard lock(mutex_);
  return entry_;
}

void ClientSessionCache::store(std::span<const unsigned char> session, std::shared_ptr<void> native,
                               std::uint64_t maker) {
  auto copy = std::make_shared<const StoredSession>(
      StoredSession{SessionBytes(session.begin(), session.end()), std::move(native)});
  std::lock_guard lock(mutex_);
  entry_ = Entry{next_serial_++, std::move(copy)};
  entry_maker_ = maker;
}

void ClientSessionCache::forget(std::uint64_t maker, std::uint64_t used) {
  std::shared_ptr<const StoredSession> dropped;  // freed outside the lock
  std::lock_guard lock(mutex_);
  if (entry_.serial == 0) return;
  if (entry_maker_ != maker && (used == 0 || entry_.serial != used)) return;
  dropped = std::move(entry_.session);
  entry_ = Entry{};
  entry_maker_ = 0;
}

std::uint64_t ClientSessionCache::next_id() {
  std::lock_guard lock(mutex_);
  return next_serial_++;
}

SessionLedger::SessionLedger(std::shared_ptr<ClientSessionCache> cache)
    : cache_(std::move(cache)), id_(cache_->next_id()) {}

SessionLedger::SessionLedger(std::shared_ptr<ServerSessionStore> store) : store_(std::move(store)) {}

std::shared_ptr<const StoredSession> SessionLedger::offer() {
  if (!cache_) return nullptr;
  ClientSessionCache::Entry e = cache_->find();
  offered_ = e.serial;
  return std::move(e.session);
}

void SessionLedger::session_made(std::span<const unsigned char> session, std::shared_ptr<void> native) {
  if (cache_ && (!session.empty() || native)) cache_->store(session, std::move(native), id_);
}

void SessionLedger::handshake_done(const Engine& engine) {
  if (store_) {
    const std::span<const unsigned char> id = engine.server_session_id();
    server_id_size_ = static_cast<std::uint8_t>(std::min(id.size(), sizeof server_id_));
    std::copy_n(id.begin(), server_id_size_, server_id_);
  } else if (offered_ != 0 && engine.session_reused()) {
    used_ = offered_;
  }
}

void SessionLedger::end(bool closed_properly) {
  if (closed_properly) return;
  if (cache_) cache_->forget(id_, used_);
  if (store_ && server_id_size_ > 0) store_->remove(std::span<const unsigned char>(server_id_, server_id_size_));
}

void ServerSessionStore::store(std::span<const unsigned char> id, std::span<const unsigned char> session,
                               std::shared_ptr<void> native, std::string_view server_name) {
  if (id.empty() || (session.empty() && !native)) return;
  auto copy = std::make_shared<const StoredSession>(
      StoredSession{SessionBytes(session.begin(), session.end()), std::move(native)});
  std::string key(id.begin(), id.end());
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  // Full: the oldest go first (an id removed since is skipped).
  while (entries_.size() >= capacity && !order_.empty()) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  if (order_.size() > 2 * capacity) {  // ids removed long ago
    std::erase_if(order_, [&](const std::string& k) { return !entries_.contains(k); });
  }
  entries_[key] = Entry{std::move(copy), now + lifetime, std::string(server_name)};
  order_.push_back(std::move(key));
}

namespace {
// The ID's bytes as the map's key type compares them, without a copy (an ID
// of 32 bytes would make a std::string allocate on every lookup).
std::string_view key_of(std::span<const unsigned char> id) {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}
}  // namespace

std::shared_ptr<const StoredSession> ServerSessionStore::find(std::span<const unsigned char> id,
                                                              std::string_view server_name) {
  const std::string_view key = key_of(id);
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (std::chrono::steady_clock::now() >= it->second.expires) {
    entries_.erase(it);
    return nullptr;
  }
  // Byte for byte, as GnuTLS compares them on its own.
  if (it->second.server_name != server_name) return nullptr;
  return it->second.session;
}

void ServerSessionStore::remove(std::span<const unsigned char> id) {
  std::lock_guard lock(mutex_);
  if (const auto it = entries_.find(key_of(id)); it != entries_.end()) entries_.erase(it);
}

std::size_t ServerSessionStore::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace unitls::detail
