// The core's session caches on their own: what the client cache keeps and
// forgets, and the server's session-ID store.
#include <string>
#include <vector>

#include "doctest.hpp"
#include "session_cache.hpp"

using namespace unitls::detail;

namespace {
SessionBytes bytes(const std::string& s) { return SessionBytes(s.begin(), s.end()); }
}  // namespace

TEST_CASE("the client cache keeps the newest session and forgets it only for its maker or user") {
  ClientSessionCache cache;
  CHECK(cache.find().serial == 0);
  const auto a = cache.next_id(), b = cache.next_id();
  cache.store(bytes("one"), nullptr, a);
  const auto one = cache.find().serial;
  cache.store(bytes("two"), nullptr, b);
  REQUIRE(cache.find().session);
  CHECK(cache.find().session->bytes == bytes("two"));
  cache.forget(a, one);  // replaced since: not a's to drop, nor the one a used
  CHECK(cache.find().session->bytes == bytes("two"));
  cache.forget(a, cache.find().serial);  // the one a resumed with
  CHECK(cache.find().serial == 0);
  cache.store(bytes("three"), nullptr, b);
  cache.forget(b, 0);  // the one b made
  CHECK(cache.find().serial == 0);
}

TEST_CASE("a ledger forgets what its connection used or received, and only on an improper end") {
  auto cache = std::make_shared<ClientSessionCache>();
  cache->store(bytes("first"), nullptr, cache->next_id());
  SUBCASE("closed properly: the session stays") {
    SessionLedger ledger(cache);
    CHECK(ledger.offer() != nullptr);
    ledger.end(true);
    CHECK(cache->find().session != nullptr);
  }
  SUBCASE("offered but never used, then dropped: the session stays") {
    SessionLedger ledger(cache);
    CHECK(ledger.offer() != nullptr);
    ledger.end(false);
    CHECK(cache->find().session != nullptr);
  }
  SUBCASE("received, then dropped: it goes") {
    SessionLedger ledger(cache);
    ledger.session_made(bytes("ticket"), nullptr);
    CHECK(cache->find().session->bytes == bytes("ticket"));
    ledger.end(false);
    CHECK(cache->find().session == nullptr);
  }
}

TEST_CASE("the server store finds by ID, removes, and evicts the oldest when full") {
  ServerSessionStore store;
  store.store(bytes("id-1"), bytes("s1"), nullptr, "");
  REQUIRE(store.find(bytes("id-1"), ""));
  CHECK(store.find(bytes("id-1"), "")->bytes == bytes("s1"));
  CHECK_FALSE(store.find(bytes("id-2"), ""));
  store.remove(bytes("id-1"));
  CHECK_FALSE(store.find(bytes("id-1"), ""));
  for (std::size_t i = 0; i < ServerSessionStore::capacity + 10; ++i)
    store.store(bytes("k" + std::to_string(i)), bytes("v"), nullptr, "");
  CHECK(store.size() == ServerSessionStore::capacity);
  CHECK_FALSE(store.find(bytes("k0"), ""));
  CHECK(store.find(bytes("k" + std::to_string(ServerSessionStore::capacity + 9)), ""));
}

TEST_CASE("the server store gives a session only to a ClientHello naming the server it was made for") {
  // RFC 6066 3: a server MUST NOT resume a session under another name.
  ServerSessionStore store;
  store.store(bytes("a"), bytes("s"), nullptr, "one.example");
  store.store(bytes("b"), bytes("s"), nullptr, "");
  CHECK(store.find(bytes("a"), "one.example"));
  CHECK_FALSE(store.find(bytes("a"), "two.example"));
  CHECK_FALSE(store.find(bytes("a"), "ONE.example"));  // byte for byte, as GnuTLS
  CHECK_FALSE(store.find(bytes("a"), ""));
  CHECK(store.find(bytes("b"), ""));
  CHECK_FALSE(store.find(bytes("b"), "one.example"));
  CHECK(store.find(bytes("a"), "one.example"));  // a refusal leaves the session there
}
