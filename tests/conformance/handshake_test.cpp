// The handshake over the memory pair, and the facts a connection reports.
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

TEST_CASE("a handshake completes on both sides and both report the same version and an IANA cipher") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = connect_memory(v);
    const char* expected = v == Version::tls1_2 ? "TLSv1.2" : "TLSv1.3";
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      SecureSocket& s = conn.socket(side);
      CHECK(s.backend() == backend_under_test());
      CHECK(s.protocol_version() == expected);
      CHECK(s.cipher().starts_with("TLS_"));
      CHECK(s.get_shutdown() == 0);
      CHECK_FALSE(s.get_quiet_shutdown());
    }
    CHECK(conn.client->cipher() == conn.server->cipher());
  }
}

TEST_CASE("handshake() returns 1 again once the handshake is complete, and clears last_error") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = connect_memory(v);
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      SecureSocket& s = conn.socket(side);
      const auto sent = conn.bytes_from(side);
      std::byte buf[8];
      CHECK(outcome(s, s.read(buf)) == failure(errc::want_read));
      CHECK(outcome(s, s.handshake()) == success(1));
      CHECK(conn.bytes_from(side) == sent);
    }
  }
}

TEST_CASE("connection facts are empty before the handshake") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      SecureSocket& s = conn.socket(side);
      CHECK(s.backend() == backend_under_test());
      CHECK(s.protocol_version() == "");
      CHECK(s.cipher() == "");
      CHECK(s.alpn_selected() == "");
      CHECK_FALSE(s.session_reused());
      CHECK(s.get_shutdown() == 0);
      CHECK_FALSE(s.last_error());
    }
  }
}

TEST_CASE("read and write before the handshake completes return -1 not_connected and send nothing") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    for (Side side : {Side::client, Side::server}) {
      CAPTURE(side_name(side));
      SecureSocket& s = conn.socket(side);
      std::byte buf[16];
      CHECK(outcome(s, s.read(buf)) == failure(errc::not_connected));
      CHECK(outcome(s, s.write("early")) == failure(errc::not_connected));
      CHECK(conn.bytes_from(side) == 0);
    }
    // Refusing early I/O does not spoil the connection.
    REQUIRE_MESSAGE(complete_handshake(conn), handshake_state(conn));
    exchange(conn);
  }
}

TEST_CASE("alpn_selected names the protocol both sides agreed on, and is empty when none was offered") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    SUBCASE("agreed") {
      MemoryConn conn = connect_memory(v, [](Config& c, Config& s) {
        c.alpn = {"h2", "http/1.1"};
        s.alpn = {"http/1.1"};
      });
      CHECK(conn.client->alpn_selected() == "http/1.1");
      CHECK(conn.server->alpn_selected() == "http/1.1");
    }
    SUBCASE("not offered") {
      MemoryConn conn = connect_memory(v, [](Config&, Config& s) { s.alpn = {"http/1.1"}; });
      CHECK(conn.client->alpn_selected() == "");
      CHECK(conn.server->alpn_selected() == "");
    }
  }
}

TEST_CASE("session_reused is false on a first connection") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = connect_memory(v);
    CHECK_FALSE(conn.client->session_reused());
    CHECK_FALSE(conn.server->session_reused());
  }
}

TEST_CASE("EOF during the handshake is unexpected_eof and the connection is dead") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
    conn.from(Side::server).inject_eof();
    CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::unexpected_eof));
    const auto sent = conn.bytes_from(Side::client);
    std::byte buf[16];
    CHECK(outcome(*conn.client, conn.client->read(buf)) == failure(errc::unexpected_eof));
    CHECK(outcome(*conn.client, conn.client->shutdown()) == failure(errc::unexpected_eof));
    CHECK(conn.bytes_from(Side::client) == sent);
  }
}

TEST_CASE("a rejected server certificate is certificate_error and the connection is dead") {
  struct Bad {
    std::string_view name;
    ConfigTweak tweak;
  };
  const Bad bads[] = {
      {"name mismatch", [](Config& client, Config&) { client.server_name = "wrong.example"; }},
      {"untrusted issuer",
       [](Config&, Config& server) {
         server.certificate_file = cert_path("untrusted.pem");
         server.private_key_file = cert_path("untrusted.key");
       }},
  };
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    for (const Bad& bad : bads) {
      CAPTURE(bad.name);
      MemoryConn conn = open_memory(v, bad.tweak);
      CHECK_FALSE(complete_handshake(conn));
      SecureSocket& client = *conn.client;
      CHECK(client.last_error() == errc::certificate_error);
      // Whether the failing handshake sent an alert is the backend's business; after it, nothing.
      const auto sent = conn.bytes_from(Side::client);
      std::byte buf[16];
      CHECK(outcome(client, client.read(buf)) == failure(errc::certificate_error));
      CHECK(outcome(client, client.write("x")) == failure(errc::certificate_error));
      CHECK(outcome(client, client.shutdown()) == failure(errc::certificate_error));
      CHECK(client.send_close_notify() == errc::certificate_error);
      CHECK(client.get_shutdown() == 0);
      CHECK(conn.bytes_from(Side::client) == sent);
    }
  }
}
