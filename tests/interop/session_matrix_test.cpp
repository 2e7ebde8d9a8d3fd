// Sessions across stacks (docs/contract.md, "Sessions"): every client
// backend against every server backend, in memory, on each version both
// have. The client's cache and the server's session-ID store follow the
// same rule whichever stack is on the other end.
#include <string>
#include <string_view>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

std::shared_ptr<Context> context_for(Role role, std::string_view backend, Version v) {
  Config c = role == Role::client ? client_config(v) : server_config(v);
  c.backend = std::string(backend);
  std::error_code ec;
  std::string message;
  auto ctx = Context::create(c, ec, &message);
  return ctx ? std::shared_ptr<Context>(std::move(ctx)) : nullptr;
}

bool resumed(const MemoryConn& conn) {
  CHECK(conn.client->session_reused() == conn.server->session_reused());
  return conn.client->session_reused();
}

void end(MemoryConn& conn, bool client_proper, bool server_proper) {
  if (client_proper) CHECK(outcome(*conn.client, conn.client->shutdown()) == success(0));
  if (server_proper) conn.server->set_shutdown(sent_shutdown | received_shutdown);
  conn.client.reset();
  conn.server.reset();
}

// body(client_ctx, server_ctx, version) for every pair and version both have.
template <class Body>
void for_each_pair(Body&& body) {
  for (const std::string_view cb : available_backends()) {
    for (const std::string_view sb : available_backends()) {
      for (const Version v : all_versions) {
        auto client = context_for(Role::client, cb, v);
        auto server = context_for(Role::server, sb, v);
        if (!client || !server) continue;  // a stack without this version (mbedTLS: TLS 1.3)
        const std::string name = std::string(cb) + " client × " + std::string(sb) + " server, " +
                                 version_name(v);
        SUBCASE(name.c_str()) { body(client, server, v); }
      }
    }
  }
}

}  // namespace

TEST_CASE("across stacks, a second connection resumes while the first is open, and a dropped one takes its session along") {
  for_each_pair([](const std::shared_ptr<Context>& client, const std::shared_ptr<Context>& server, Version v) {
    MemoryConn first = connect_memory(client, server);
    CHECK_FALSE(resumed(first));
    MemoryConn second = connect_memory(client, server);
    CHECK(resumed(second));
    end(first, false, true);  // the client drops the first
    end(second, true, true);
    MemoryConn third = connect_memory(client, server);
    CHECK(resumed(third) == (v == Version::tls1_3));
    end(third, true, true);
  });
}

TEST_CASE("across stacks, a server forgets a TLS 1.2 session it did not close properly") {
  for_each_pair([](const std::shared_ptr<Context>& client, const std::shared_ptr<Context>& server, Version v) {
    MemoryConn first = connect_memory(client, server);
    end(first, true, false);  // the server drops its side
    MemoryConn second = connect_memory(client, server);
    // TLS 1.3: a stateless ticket, which no server can take back.
    CHECK(resumed(second) == (v == Version::tls1_3));
    end(second, true, true);
  });
}
