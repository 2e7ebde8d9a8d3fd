// Sessions follow the shutdown, with connections that overlap
// (docs/contract.md, "Sessions follow the shutdown"): one client cache per
// Context, the same answers on every backend.
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

// Both sides agree on whether the connection resumed.
bool resumed(const MemoryConn& conn) {
  CHECK(conn.client->session_reused() == conn.server->session_reused());
  return conn.client->session_reused();
}

// The client is destroyed with SENT unset (the server closes properly).
void drop(MemoryConn& conn) {
  conn.server->set_shutdown(sent_shutdown | received_shutdown);
  conn.client.reset();
  conn.server.reset();
}

}  // namespace

TEST_CASE("a session is available to the next connection as soon as its handshake (or ticket) is done") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn first = connect_memory(v);  // fresh contexts: an empty cache
    CHECK_FALSE(resumed(first));
    // The first is still open.
    MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
    CHECK(resumed(second));
    end_properly(second);
    end_properly(first);
  }
}

TEST_CASE("an improperly ended connection takes its sessions along, not the ones others received") {
  // 1st open, 2nd resumes it; the 1st is dropped, the 2nd closes properly.
  // TLS 1.2: the 2nd received no session of its own (the servers issue no
  // new ticket on a resumption), so the 3rd does a full handshake. TLS 1.3:
  // the 2nd received fresh tickets, which the 1st's end does not touch.
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn first = connect_memory(v);
    MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
    CHECK(resumed(second));
    drop(first);
    end_properly(second);
    MemoryConn third = connect_memory(second.client_ctx, second.server_ctx);
    CHECK(resumed(third) == (v == Version::tls1_3));
    end_properly(third);
  }
}

TEST_CASE("a connection that resumed and was dropped takes the session it used along") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn first = connect_memory(v);
    end_properly(first);
    MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
    CHECK(resumed(second));
    MemoryConn third = connect_memory(first.client_ctx, first.server_ctx);  // while the 2nd is open
    CHECK(resumed(third));
    drop(second);
    // TLS 1.2: the one session all three shared is gone. TLS 1.3: the 3rd
    // received tickets of its own after the 2nd's, and those stay.
    MemoryConn fourth = connect_memory(first.client_ctx, first.server_ctx);
    CHECK(resumed(fourth) == (v == Version::tls1_3));
    end_properly(third);
    end_properly(fourth);
  }
}

TEST_CASE("a handshake that never completed leaves the session it offered in the cache") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn first = connect_memory(v);
    end_properly(first);
    {
      // Offers the cached session, then is destroyed before any answer.
      MemoryConn abandoned = open_memory(first.client_ctx, first.server_ctx);
      CHECK(outcome(*abandoned.client, abandoned.client->handshake()) == failure(errc::want_read));
    }
    MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
    CHECK(resumed(second));
    end_properly(second);
  }
}

TEST_CASE("a client Context with session_cache off never resumes") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn first = connect_memory(v, [](Config& c, Config&) { c.session_cache = false; });
    end_properly(first);
    MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
    CHECK_FALSE(resumed(second));
    end_properly(second);
  }
}

TEST_CASE("a server forgets the session of a connection it did not close properly (TLS 1.2 session IDs)") {
  // TLS 1.2 sessions live in each server's session-ID cache (no TLS 1.2
  // tickets on any backend), so the RFC 2246 rule holds on the server too.
  // TLS 1.3 tickets are stateless everywhere and cannot be taken back
  // (docs/contract.md, "Sessions follow the shutdown").
  const Version v = Version::tls1_2;
  struct Case {
    std::string_view name;
    bool server_proper;
  };
  for (const Case& c : {Case{"the server closed properly", true}, Case{"the server was dropped", false}}) {
    CAPTURE(c.name);
    MemoryConn first = connect_memory(v);
    CHECK(outcome(*first.client, first.client->shutdown()) == success(0));  // the client: properly
    if (c.server_proper) first.server->set_shutdown(sent_shutdown | received_shutdown);
    first.server.reset();
    first.client.reset();
    MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
    CHECK(resumed(second) == c.server_proper);
    end_properly(second);
  }
}

TEST_CASE("a TLS 1.3 session is resumed from a stateless ticket whatever the server's close") {
  if (skip_unless_supported(Version::tls1_3)) return;
  MemoryConn first = connect_memory(Version::tls1_3);
  CHECK(outcome(*first.client, first.client->shutdown()) == success(0));
  first.server.reset();  // improperly: nothing the server can take back
  first.client.reset();
  MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
  CHECK(resumed(second));
  end_properly(second);
}
