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

TEST_CASE("the client cache keeps the newest session per name and forgets only by serial") {
  ClientSessionCache cache;
  CHECK(cache.find("a").serial == 0);
  const auto one = cache.store("a", bytes("one"));
  const auto two = cache.store("a", bytes("two"));
  CHECK(one != two);
  REQUIRE(cache.find("a").session);
  CHECK(*cache.find("a").session == bytes("two"));
  const std::uint64_t old[] = {one};
  cache.forget("a", old);  // replaced since: not this one's to drop
  CHECK(cache.find("a").serial == two);
  const std::uint64_t mine[] = {two};
  cache.forget("b", mine);
  CHECK(cache.find("a").serial == two);
  cache.forget("a", mine);
  CHECK(cache.find("a").serial == 0);
}

TEST_CASE("a ledger forgets what its connection used or received, and only on an improper end") {
  auto cache = std::make_shared<ClientSessionCache>();
  cache->store("host", bytes("first"));
  SUBCASE("closed properly: the session stays") {
    SessionLedger ledger(cache, "host");
    CHECK(ledger.offer() != nullptr);
    ledger.end(true);
    CHECK(cache->find("host").session != nullptr);
  }
  SUBCASE("offered but never used, then dropped: the session stays") {
    SessionLedger ledger(cache, "host");
    CHECK(ledger.offer() != nullptr);
    ledger.end(false);
    CHECK(cache->find("host").session != nullptr);
  }
  SUBCASE("received, then dropped: it goes") {
    SessionLedger ledger(cache, "host");
    ledger.session_made(bytes("ticket"));
    CHECK(*cache->find("host").session == bytes("ticket"));
    ledger.end(false);
    CHECK(cache->find("host").session == nullptr);
  }
}

TEST_CASE("the server store finds by ID, removes, and evicts the oldest when full") {
  ServerSessionStore store;
  store.store(bytes("id-1"), bytes("s1"));
  REQUIRE(store.find(bytes("id-1")));
  CHECK(*store.find(bytes("id-1")) == bytes("s1"));
  CHECK_FALSE(store.find(bytes("id-2")));
  store.remove(bytes("id-1"));
  CHECK_FALSE(store.find(bytes("id-1")));
  for (std::size_t i = 0; i < ServerSessionStore::capacity + 10; ++i)
    store.store(bytes("k" + std::to_string(i)), bytes("v"));
  CHECK(store.size() == ServerSessionStore::capacity);
  CHECK_FALSE(store.find(bytes("k0")));
  CHECK(store.find(bytes("k" + std::to_string(ServerSessionStore::capacity + 9))));
}
