// The OpenSSL backend and the thread's error queue. OpenSSL reports a
// failed call through that queue, which the application shares: an entry
// the application left there (from its own use of libcrypto) must never
// be read as the error of a unitls call, and a call that succeeds must not
// pay for clearing the queue (docs/benchmarks.md). Built only with the
// OpenSSL backend; written against the public API plus OpenSSL's.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <unitls/unitls.hpp>

#include "doctest.hpp"

using namespace unitls;

namespace {

// What an application might leave behind: an entry of its own library, or
// a system error (OpenSSL reads the oldest entry to choose between
// SSL_ERROR_SSL and SSL_ERROR_SYSCALL).
struct Leftover {
  const char* name;
  int library;
  int reason;
};
constexpr Leftover leftovers[] = {
    {"an application entry", ERR_LIB_USER, 42},
    {"a system error entry", ERR_LIB_SYS, ENOENT},
    // libssl's own library, as from the application's failed
    // SSL_CTX_use_certificate_file: only the connection's state tells it from
    // an entry of the call's.
    {"an SSL library entry", ERR_LIB_SSL, SSL_R_BAD_VALUE},
};

void leave_on_queue(const Leftover& l) {
  ERR_clear_error();
  ERR_raise(l.library, l.reason);
  REQUIRE(ERR_peek_error() != 0);
}

// The entry left by leave_on_queue is still the only one.
bool still_on_queue(const Leftover& l) {
  const unsigned long e = ERR_peek_error();
  return e != 0 && ERR_GET_LIB(e) == l.library && ERR_GET_REASON(e) == l.reason &&
         ERR_peek_last_error() == e;
}

std::string certs(std::string_view name) {
  const char* dir = std::getenv("UNITLS_TEST_CERTS");
  REQUIRE(dir != nullptr);
  return std::string(dir) + "/" + std::string(name);
}

struct Pair {
  std::unique_ptr<Context> client_ctx, server_ctx;
  std::unique_ptr<SecureSocket> client, server;
  std::shared_ptr<MemoryLink> link;
};

// An OpenSSL client's and server's configuration for version v.
std::pair<Config, Config> configs(Version v) {
  Config c;
  c.backend = "openssl";
  c.ca_file = certs("ca.pem");
  c.server_name = "localhost";
  c.min_version = c.max_version = v;
  Config s;
  s.role = Role::server;
  s.backend = "openssl";
  s.certificate_file = certs("server.pem");
  s.private_key_file = certs("server.key");
  s.min_version = s.max_version = v;
  return {c, s};
}

// An OpenSSL client and server over a memory pair, handshake complete and
// the TLS 1.3 tickets read, nothing in flight.
Pair connected(Version v) {
  const auto [c, s] = configs(v);
  Pair p;
  std::error_code ec;
  p.client_ctx = Context::create(c, ec);
  REQUIRE(p.client_ctx);
  p.server_ctx = Context::create(s, ec);
  REQUIRE(p.server_ctx);
  MemoryPair m = make_memory_pair();
  p.link = m.link;
  p.client = p.client_ctx->wrap(std::move(m.client));
  p.server = p.server_ctx->wrap(std::move(m.server));
  int cr = 0, sr = 0;
  for (int i = 0; i < 32 && (cr != 1 || sr != 1); ++i) {
    if (cr != 1) cr = p.client->handshake();
    if (sr != 1) sr = p.server->handshake();
  }
  REQUIRE(cr == 1);
  REQUIRE(sr == 1);
  // The server's TLS 1.3 tickets arrive with its first record.
  std::string got;
  REQUIRE(p.server->write(std::string_view("ping")) == 4);
  REQUIRE(p.client->read(got) == 4);
  REQUIRE(p.link->server_to_client().buffered() == 0);
  ERR_clear_error();
  return p;
}

std::ptrdiff_t read_some(SecureSocket& s, std::string& out) {
  out.clear();
  return s.read(out);
}

constexpr Version versions[] = {Version::tls1_2, Version::tls1_3};
const char* name_of(Version v) { return v == Version::tls1_3 ? "TLS 1.3" : "TLS 1.2"; }

}  // namespace

TEST_CASE("A read with nothing to read is want_read although the application left an error on OpenSSL's queue") {
  for (Version v : versions) {
    for (const Leftover& l : leftovers) {
      SUBCASE((std::string(name_of(v)) + ", " + l.name).c_str()) {
        Pair p = connected(v);
        std::string got;
        leave_on_queue(l);
        CHECK(read_some(*p.server, got) == -1);
        CHECK(p.server->last_error() == errc::want_read);
        REQUIRE(p.client->write(std::string_view("hello")) == 5);
        CHECK(read_some(*p.server, got) == 5);
        CHECK(got == "hello");
        CHECK(!p.server->last_error());
      }
    }
  }
}

TEST_CASE("A read and a write that succeed leave the application's own entry on OpenSSL's queue") {
  // Clearing the queue around every call cost more than all the rest
  // unitls adds to a 1 KiB record; what is not ours is left alone.
  for (Version v : versions) {
    SUBCASE(name_of(v)) {
      Pair p = connected(v);
      std::string got;
      leave_on_queue(leftovers[0]);
      REQUIRE(p.client->write(std::string_view("hello")) == 5);
      REQUIRE(read_some(*p.server, got) == 5);
      CHECK(still_on_queue(leftovers[0]));
    }
  }
}

TEST_CASE("A write that finds the transport full is want_write although the application left an error on OpenSSL's queue") {
  for (Version v : versions) {
    for (const Leftover& l : leftovers) {
      SUBCASE((std::string(name_of(v)) + ", " + l.name).c_str()) {
        Pair p = connected(v);
        p.link->client_to_server().set_write_budget(0);
        leave_on_queue(l);
        CHECK(p.client->write(std::string_view("hello")) == -1);
        CHECK(p.client->last_error() == errc::want_write);
        p.link->client_to_server().set_write_budget(-1);
        CHECK(p.client->write(std::string_view("hello")) == 5);
        CHECK(!p.client->last_error());
        std::string got;
        CHECK(read_some(*p.server, got) == 5);
        CHECK(got == "hello");
      }
    }
  }
}

TEST_CASE("The peer's close_notify is the end of data although the application left an error on OpenSSL's queue") {
  for (Version v : versions) {
    for (const Leftover& l : leftovers) {
      SUBCASE((std::string(name_of(v)) + ", " + l.name).c_str()) {
        Pair p = connected(v);
        REQUIRE(p.client->shutdown() == 0);
        leave_on_queue(l);
        std::string got;
        CHECK(read_some(*p.server, got) == 0);
        CHECK(p.server->last_error() == errc::zero_return);
        CHECK(p.server->get_shutdown() == received_shutdown);
        CHECK(p.server->shutdown() == 1);
      }
    }
  }
}

TEST_CASE("A failing transport is a transport_error although the application left an error on OpenSSL's queue") {
  for (Version v : versions) {
    for (const Leftover& l : leftovers) {
      SUBCASE((std::string(name_of(v)) + ", " + l.name).c_str()) {
        Pair p = connected(v);
        p.link->client_to_server().inject_error(ECONNRESET);
        leave_on_queue(l);
        std::string got;
        CHECK(read_some(*p.server, got) == -1);
        CHECK(p.server->last_error() == errc::transport_error);
        CHECK(p.server->native_error() == std::error_code(ECONNRESET, std::system_category()));
      }
    }
  }
}

TEST_CASE("A truncation is unexpected_eof although the application left an error on OpenSSL's queue") {
  for (Version v : versions) {
    for (const Leftover& l : leftovers) {
      SUBCASE((std::string(name_of(v)) + ", " + l.name).c_str()) {
        Pair p = connected(v);
        p.link->client_to_server().inject_eof();
        leave_on_queue(l);
        std::string got;
        CHECK(read_some(*p.server, got) == -1);
        CHECK(p.server->last_error() == errc::unexpected_eof);
      }
    }
  }
}

TEST_CASE("A bad record is reported with OpenSSL's reason, not with the entry the application left on the queue") {
  for (Version v : versions) {
    for (const Leftover& l : leftovers) {
      SUBCASE((std::string(name_of(v)) + ", " + l.name).c_str()) {
        Pair p = connected(v);
        REQUIRE(p.client->write(std::string_view("hello")) == 5);
        REQUIRE(p.link->client_to_server().corrupt_last_byte());
        leave_on_queue(l);
        std::string got;
        CHECK(read_some(*p.server, got) == -1);
        CHECK(p.server->last_error() == errc::protocol_error);
        const std::error_code native = p.server->native_error();
        CHECK(std::string_view(native.category().name()) == "unitls.openssl");
        CHECK(ERR_GET_LIB(static_cast<unsigned long>(native.value())) == ERR_LIB_SSL);
        // Nothing of this call is left on the queue for the next one.
        CHECK(ERR_peek_error() == 0);
      }
    }
  }
}

TEST_CASE("A handshake completes although the application leaves an error on OpenSSL's queue before every step") {
  for (Version v : versions) {
    for (const Leftover& l : leftovers) {
      SUBCASE((std::string(name_of(v)) + ", " + l.name).c_str()) {
        const auto [c, s] = configs(v);
        std::error_code ec;
        auto client_ctx = Context::create(c, ec);
        REQUIRE(client_ctx);
        auto server_ctx = Context::create(s, ec);
        REQUIRE(server_ctx);
        MemoryPair m = make_memory_pair();
        auto client = client_ctx->wrap(std::move(m.client));
        auto server = server_ctx->wrap(std::move(m.server));
        int cr = 0, sr = 0;
        for (int i = 0; i < 32 && (cr != 1 || sr != 1); ++i) {
          if (cr != 1) {
            leave_on_queue(l);
            cr = client->handshake();
            if (cr != 1) REQUIRE(client->last_error() == errc::want_read);
          }
          if (sr != 1) {
            leave_on_queue(l);
            sr = server->handshake();
            if (sr != 1) REQUIRE(server->last_error() == errc::want_read);
          }
        }
        CHECK(cr == 1);
        CHECK(sr == 1);
        ERR_clear_error();
      }
    }
  }
}
