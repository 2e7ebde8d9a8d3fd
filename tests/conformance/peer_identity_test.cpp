// Who is on the other end (docs/contract.md, "Who is on the other end"):
// peer_certificate(), peer_chain() and requested_server_name() give the same
// values on every backend, as exact strings, for full and resumed
// handshakes. The expected facts of the test PKI come from its files and,
// where they are random (serial number, dates, fingerprint), from the openssl
// command line, which the test PKI is made with.
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <array>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

// What a command prints on stdout (REQUIREs that it ran).
std::string run(const std::string& command) {
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, command);
  std::string out;
  char buf[4096];
  while (const std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  REQUIRE_MESSAGE(::pclose(pipe) == 0, command);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// The value after "key=" in `openssl x509 -noout -<key>`'s output.
std::string openssl_field(const std::string& pem, const std::string& option) {
  const std::string line = run("openssl x509 -noout " + option + " -in '" + cert_path(pem) + "'");
  return line.substr(line.find('=') + 1);
}

std::vector<std::byte> file_bytes(const std::string& name) {
  const std::string s = cert_text(name);
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

// "Nov 27 00:55:54 2026 GMT", as `openssl x509 -dates` prints a time.
std::chrono::sys_seconds openssl_time(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%b %d %H:%M:%S %Y");
  REQUIRE_MESSAGE(!in.fail(), text);
  return std::chrono::sys_seconds(std::chrono::seconds(::timegm(&tm)));
}

// The facts of a test-PKI certificate as the openssl command line reads them.
void check_matches_openssl(const Certificate& c, const std::string& pem) {
  // OpenSSL prints whole bytes ("0EE4..."); the contract has no leading zeros.
  std::string serial = openssl_field(pem, "-serial");
  while (serial.size() > 1 && serial.front() == '0') serial.erase(0, 1);
  CHECK(c.serial == serial);
  CHECK(c.not_before == openssl_time(openssl_field(pem, "-startdate")));
  CHECK(c.not_after == openssl_time(openssl_field(pem, "-enddate")));
  std::string fingerprint;
  for (const char ch : openssl_field(pem, "-fingerprint -sha256"))
    if (ch != ':') fingerprint += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  CHECK(c.sha256_fingerprint == fingerprint);
}

void check_server_leaf(const Certificate& c) {
  CHECK(c.subject == "CN=localhost");
  CHECK(c.issuer == "CN=unitls test CA");
  CHECK(c.dns_names == std::vector<std::string>{"localhost"});
  CHECK(c.ip_addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(c.der == file_bytes("server.der"));
  check_matches_openssl(c, "server.pem");
}

void check_test_ca(const Certificate& c) {
  CHECK(c.subject == "CN=unitls test CA");
  CHECK(c.issuer == "CN=unitls test CA");
  CHECK(c.dns_names.empty());
  CHECK(c.ip_addresses.empty());
  CHECK(c.der == file_bytes("ca.der"));
  check_matches_openssl(c, "ca.pem");
}

// The server sends its certificate and the CA's (server_chain.pem).
void with_chain(Config&, Config& server) { server.certificate_file = cert_path("server_chain.pem"); }

// The server asks for, and verifies, the client's certificate.
void with_client_certificate(Config& client, Config& server) {
  client.certificate_file = cert_path("client.pem");
  client.private_key_file = cert_path("client.key");
  server.client_auth = ClientAuth::required;
  server.ca_file = cert_path("ca.pem");
}

// The DER of a test-PKI certificate with its outer SEQUENCE's length in
// four bytes where three do (30 82 hi lo -> 30 83 00 hi lo): BER, not DER,
// and outside the signed tbsCertificate, so the signature still holds.
// Every stack reads it; OpenSSL writes it back as 30 82 hi lo.
std::vector<std::byte> non_canonical(const std::string& der_name) {
  std::vector<std::byte> der = file_bytes(der_name);
  REQUIRE(der.size() > 4);
  REQUIRE(der[0] == std::byte{0x30});
  REQUIRE(der[1] == std::byte{0x82});
  der[1] = std::byte{0x83};
  der.insert(der.begin() + 2, std::byte{0});
  return der;
}

// A PEM file holding der, in the temporary directory, named for this run
// (the backends' runs go in parallel); its DER next to it as <path>.der.
std::string pem_file(const std::vector<std::byte>& der, const std::string& name) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("unitls-" + backend_under_test() + "-" + std::to_string(::getpid()) + "-" + name))
                               .string();
  std::ofstream(path + ".der", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(der.data()), static_cast<std::streamsize>(der.size()));
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (std::size_t i = 0; i < der.size(); i += 3) {
    unsigned n = std::to_integer<unsigned>(der[i]) << 16;
    if (i + 1 < der.size()) n |= std::to_integer<unsigned>(der[i + 1]) << 8;
    if (i + 2 < der.size()) n |= std::to_integer<unsigned>(der[i + 2]);
    b64 += alphabet[n >> 18 & 63];
    b64 += alphabet[n >> 12 & 63];
    b64 += i + 1 < der.size() ? alphabet[n >> 6 & 63] : '=';
    b64 += i + 2 < der.size() ? alphabet[n & 63] : '=';
  }
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  pem += "-----END CERTIFICATE-----\n";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << pem;
  return path;
}

// A backend whose own side sends a certificate_file's bytes unchanged
// (GnuTLS and mbedTLS do; OpenSSL re-encodes), to be the other end of the
// backend under test; "" when none is built for v.
std::string verbatim_sender(Version v) {
  const std::string under_test = backend_under_test();
  std::vector<std::string> wanted;
  if (under_test != "openssl") wanted.push_back(under_test);
  wanted.insert(wanted.end(), {"gnutls", "mbedtls"});
  for (const std::string& name : wanted) {
    if (name == "mbedtls" && v == Version::tls1_3) continue;  // TLS 1.2 only
    for (std::string_view built : available_backends())
      if (built == name) return name;
  }
  return "";
}

// The test PKI's server and client certificates with a BER outer length
// (non_canonical), as PEM files that go when the case ends.
struct BerCertificates {
  explicit BerCertificates(const std::string& tag)
      : server_der(non_canonical("server.der")),
        client_der(non_canonical("client.der")),
        server_pem(pem_file(server_der, "non_canonical_server" + tag + ".pem")),
        client_pem(pem_file(client_der, "non_canonical_client" + tag + ".pem")) {}
  ~BerCertificates() {
    for (const std::string& p : {server_pem, server_pem + ".der", client_pem, client_pem + ".der"}) std::remove(p.c_str());
  }
  BerCertificates(const BerCertificates&) = delete;
  BerCertificates& operator=(const BerCertificates&) = delete;
  const std::vector<std::byte> server_der, client_der;
  const std::string server_pem, client_pem;
};

}  // namespace

TEST_CASE(
    "peer_chain() gives a certificate's bytes exactly as the peer sent them, a non-canonical "
    "encoding included, on both sides") {
  const BerCertificates ber("");
  const auto& [server_der, client_der, server_pem, client_pem] = ber;
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    // A backend whose stack reads no BER certificate says so at create
    // (Capabilities::ber_certificates), for its own; it cannot verify the
    // peer's either.
    {
      Config probe = server_config(v);
      probe.certificate_file = server_pem;
      std::error_code ec;
      std::string why;
      if (!Context::create(probe, ec, &why) && ec == errc::unsupported) {
        CHECK_MESSAGE(why.find("BER") != std::string::npos, why);
        skip(why);
        continue;  // the next version's SUBCASE, skipped the same way
      }
    }
    const std::string sender = verbatim_sender(v);
    if (sender.empty()) {
      skip("no backend built that sends a certificate_file verbatim (GnuTLS, mbedTLS) for " + version_name(v));
      return;
    }
    CAPTURE(sender);
    for (const bool judging_server : {true, false}) {
      CAPTURE(judging_server);
      Config client = client_config(v);
      Config server = server_config(v);
      with_client_certificate(client, server);
      // The judged side runs the sender backend; the verifying side, the
      // backend under test, verifies (the signature covers only the
      // tbsCertificate, which is unchanged).
      Config& judged = judging_server ? server : client;
      judged.backend = sender;
      judged.certificate_file = judging_server ? server_pem : client_pem;
      MemoryConn conn = connect_memory(must_create(client), must_create(server));
      SecureSocket& verifier = judging_server ? *conn.client : *conn.server;
      const std::vector<std::byte>& sent = judging_server ? server_der : client_der;
      const std::vector<Certificate> chain = verifier.peer_chain();
      REQUIRE(chain.size() == 1);
      CHECK(chain[0].der == sent);
      CHECK(chain[0].subject == (judging_server ? "CN=localhost" : "CN=unitls test client"));
      // SHA-256 over the bytes sent, as the openssl command line computes it.
      const std::string pem = judging_server ? server_pem : client_pem;
      CHECK(chain[0].sha256_fingerprint == run("openssl dgst -sha256 -r '" + pem + ".der' | cut -d' ' -f1"));
      REQUIRE(verifier.peer_certificate().has_value());
      CHECK(verifier.peer_certificate()->der == sent);
    }
  }
}

TEST_CASE(
    "a backend whose stack cannot read a BER certificate rejects the peer's, and peer_chain() still gives "
    "the bytes the peer sent") {
  // The other side of the case above: where the backend under test
  // declares it reads no BER (Capabilities::ber_certificates), the peer's
  // is a rejected certificate ("cannot be parsed"), shown as the other
  // stacks show a certificate they reject.
  const BerCertificates ber("_rejected");
  const auto& [server_der, client_der, server_pem, client_pem] = ber;
  Config probe = server_config(Version::tls1_2);
  probe.certificate_file = server_pem;
  std::error_code ec;
  std::string why;
  if (Context::create(probe, ec, &why) || ec != errc::unsupported) {
    skip(backend_under_test() + " reads BER certificates: the case above is its");
    return;
  }
  std::string sender;  // one that sends it verbatim (not the backend under test: it cannot load it)
  for (const char* name : {"gnutls", "mbedtls"})
    for (std::string_view built : available_backends())
      if (sender.empty() && built == name) sender = name;
  if (sender.empty()) {
    skip("no backend built that sends a certificate_file verbatim (GnuTLS, mbedTLS)");
    return;
  }
  CAPTURE(sender);
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    if (v == Version::tls1_3 && sender == "mbedtls") {
      skip("no backend built that sends a certificate_file verbatim in TLS 1.3 (GnuTLS)");
      return;
    }
    for (const bool judging_server : {true, false}) {
      CAPTURE(judging_server);
      Config client = client_config(v);
      Config server = server_config(v);
      with_client_certificate(client, server);
      Config& judged = judging_server ? server : client;
      judged.backend = sender;
      judged.certificate_file = judging_server ? server_pem : client_pem;
      MemoryConn conn = open_memory(must_create(client), must_create(server));
      CHECK_FALSE(complete_handshake(conn));
      SecureSocket& verifier = judging_server ? *conn.client : *conn.server;
      SecureSocket& judged_socket = judging_server ? *conn.server : *conn.client;
      CHECK_MESSAGE(verifier.last_error() == errc::certificate_error, handshake_state(conn));
      // TLS 1.3: the peer read our alert (GnuTLS: "A TLS fatal alert has
      // been received"), sealed under the handshake's keys, where a
      // plaintext one is a record it cannot decrypt ("Decryption has
      // failed"). Its handshake meets the alert, or its next read: a client
      // is done before the server judges its certificate.
      if (v == Version::tls1_3) {
        for (int i = 0; i < 4 && judged_socket.last_error() != errc::protocol_error; ++i) {
          std::array<std::byte, 64> buf;
          if (judged_socket.handshake() == 1) (void)judged_socket.read(buf);
        }
        INFO(handshake_state(conn));
        CHECK(judged_socket.last_error() == errc::protocol_error);
        CHECK(judged_socket.native_error().message().find("fatal alert") != std::string::npos);
      }
      // What the peer sent, whatever the stack made of it: TLS 1.2 only,
      // where the Certificate message is plaintext (TLS 1.3:
      // docs/backend-notes.md, wolfSSL, "Not hidden yet").
      if (v == Version::tls1_2) {
        const std::vector<Certificate> chain = verifier.peer_chain();
        REQUIRE(chain.size() == 1);
        CHECK(chain[0].der == (judging_server ? server_der : client_der));
      }
    }
  }
}

TEST_CASE("a client's peer_chain() is the server's chain as sent, leaf first, described the same on every backend") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = connect_memory(v, with_chain);
    const std::vector<Certificate> chain = conn.client->peer_chain();
    REQUIRE(chain.size() == 2);
    check_server_leaf(chain[0]);
    check_test_ca(chain[1]);
    const std::optional<Certificate> leaf = conn.client->peer_certificate();
    REQUIRE(leaf.has_value());
    CHECK(*leaf == chain[0]);
  }
}

TEST_CASE("a server that verified a client certificate reports it; one that asked for none reports nothing") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn with = connect_memory(v, with_client_certificate);
    const std::optional<Certificate> client = with.server->peer_certificate();
    REQUIRE(client.has_value());
    CHECK(client->subject == "CN=unitls test client");
    CHECK(client->issuer == "CN=unitls test CA");
    CHECK(client->dns_names == std::vector<std::string>{"client.test"});
    CHECK(client->ip_addresses.empty());
    CHECK(client->der == file_bytes("client.der"));
    check_matches_openssl(*client, "client.pem");
    CHECK(with.server->peer_chain().size() == 1);

    MemoryConn without = connect_memory(v);
    CHECK_FALSE(without.server->peer_certificate().has_value());
    CHECK(without.server->peer_chain().empty());
  }
}

TEST_CASE("before the handshake completes there is no peer certificate and no requested server name") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    CHECK_FALSE(conn.client->peer_certificate().has_value());
    CHECK(conn.client->peer_chain().empty());
    CHECK(conn.server->requested_server_name().empty());
    // The client's hello is out, the server has answered: neither is done.
    CHECK(outcome(*conn.client, conn.client->handshake()) == failure(errc::want_read));
    (void)conn.server->handshake();
    CHECK_FALSE(conn.client->peer_certificate().has_value());
    CHECK(conn.server->requested_server_name().empty());
  }
}

TEST_CASE("a resumed connection reports the leaf of the handshake that made the session, alone, on both sides") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn first = connect_memory(v, [](Config& client, Config& server) {
      with_chain(client, server);
      with_client_certificate(client, server);
    });
    REQUIRE(first.client->peer_chain().size() == 2);
    end_properly(first);

    MemoryConn second = connect_memory(first.client_ctx, first.server_ctx);
    REQUIRE(second.client->session_reused());
    REQUIRE(second.server->session_reused());
    const std::vector<Certificate> server_chain = second.client->peer_chain();
    REQUIRE(server_chain.size() == 1);
    check_server_leaf(server_chain[0]);
    const std::vector<Certificate> client_chain = second.server->peer_chain();
    REQUIRE(client_chain.size() == 1);
    CHECK(client_chain[0].subject == "CN=unitls test client");
    CHECK(client_chain[0].der == file_bytes("client.der"));
    REQUIRE(second.server->peer_certificate().has_value());
    CHECK(*second.server->peer_certificate() == client_chain[0]);
  }
}

TEST_CASE("requested_server_name() is the SNI the client sent in this handshake, \"\" when it sent none") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn named = connect_memory(v);
    CHECK(named.server->requested_server_name() == "localhost");
    CHECK(named.client->requested_server_name().empty());  // a client is asked nothing
    end_properly(named);
    // A resumption sends its own ClientHello, and its name is what counts.
    MemoryConn again = connect_memory(named.client_ctx, named.server_ctx);
    REQUIRE(again.server->session_reused());
    CHECK(again.server->requested_server_name() == "localhost");

    MemoryConn anonymous = connect_memory(v, [](Config& client, Config&) {
      client.server_name.clear();
      client.verify_peer = false;
    });
    CHECK(anonymous.server->requested_server_name().empty());
  }
}

TEST_CASE("native_handle() is the stack's object for the connection, from wrap() on") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v);
    CHECK(conn.client->native_handle() != nullptr);
    CHECK(conn.server->native_handle() != nullptr);
    CHECK(conn.client->native_handle() != conn.server->native_handle());
  }
}

TEST_CASE("a server sends its leaf and the leaf's issuers in order, whatever the order of certificate_file") {
  // unordered_chain.pem: the leaf, the root, an unrelated CA, the
  // intermediate. Sent (every backend): leaf, intermediate, root.
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = connect_memory(v, [](Config&, Config& server) {
      server.certificate_file = cert_path("unordered_chain.pem");
      server.private_key_file = cert_path("intermediate_leaf.key");
    });
    const std::vector<Certificate> chain = conn.client->peer_chain();
    REQUIRE(chain.size() == 3);
    CHECK(chain[0].subject == "CN=localhost");
    CHECK(chain[0].issuer == "CN=unitls intermediate CA");
    CHECK(chain[1].subject == "CN=unitls intermediate CA");
    CHECK(chain[1].issuer == "CN=unitls test CA");
    check_test_ca(chain[2]);
  }
}
