// Credentials (docs/contract.md, "Credentials", "Several certificates",
// "Verification"): certificates, keys and trust anchors as files or PEM
// text, encrypted keys with their password, a server's additional
// certificates chosen by SNI, and the system trust store the core finds for
// every backend. The same answers and the same messages on every backend.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "harness.hpp"
#include "temp_dir.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

constexpr Version any_version = Version::tls1_2;

struct Created {
  std::shared_ptr<Context> context;
  std::error_code ec;
  std::string message;
};

Created create(const Config& c) {
  Created out;
  out.context = Context::create(c, out.ec, &out.message);
  return out;
}

// A handshake between the two contexts completes; the server's leaf as the
// client saw it.
std::string served_subject(const Config& client, const Config& server) {
  MemoryConn conn = connect_memory(must_create(client), must_create(server));
  const auto leaf = conn.client->peer_certificate();
  REQUIRE(leaf.has_value());
  return leaf->subject;
}

bool starts_with(const std::string& text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

// An environment variable set for one scope.
class EnvVar {
 public:
  EnvVar(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvVar() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("certificate, key and trust anchors given as PEM text serve as the files do") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Config client = client_config(v), server = server_config(v);
    client.ca_file.clear();
    client.ca_pem = cert_text("ca.pem");
    server.certificate_file.clear();
    server.private_key_file.clear();
    server.certificate_pem = cert_text("server.pem");
    server.private_key_pem = cert_text("server.key");
    CHECK(served_subject(client, server) == "CN=localhost");
  }
}

TEST_CASE("a file and PEM text for the same item, or PEM text that is not PEM, is invalid_argument naming it") {
  struct Row {
    std::string name;
    std::function<void(Config&)> tweak;
    std::string message;
  };
  const std::string server_pem = cert_text("server.pem");
  const std::vector<Row> rows = {
      {"certificate", [&](Config& s) { s.certificate_pem = server_pem; },
       "certificate_file and certificate_pem are both set; give one"},
      {"key", [&](Config& s) { s.private_key_pem = cert_text("server.key"); },
       "private_key_file and private_key_pem are both set; give one"},
      {"ca", [&](Config& s) { s.ca_pem = cert_text("ca.pem"); }, "ca_file and ca_pem are both set; give one"},
      {"additional certificate",
       [&](Config& s) {
         s.additional_credentials.push_back({.certificate_file = cert_path("wrong_name.pem"),
                                             .private_key_file = cert_path("wrong_name.key"),
                                             .certificate_pem = cert_text("wrong_name.pem")});
       },
       "additional_credentials[0].certificate_file and additional_credentials[0].certificate_pem are both "
       "set; give one"},
      {"not PEM",
       [&](Config& s) {
         s.certificate_file.clear();
         s.certificate_pem = "certificate";
       },
       "certificate_pem: not PEM (no -----BEGIN block; DER and other formats are not accepted)"},
      {"a key without a certificate",
       [&](Config& s) {
         s.additional_credentials.push_back({.private_key_pem = cert_text("wrong_name.key")});
       },
       "additional_credentials[0].private_key_pem is set but no certificate "
       "(additional_credentials[0].certificate_file or additional_credentials[0].certificate_pem)"},
      {"an empty credential", [&](Config& s) { s.additional_credentials.push_back({}); },
       "additional_credentials[0]: no certificate and key"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    Config server = server_config(any_version);
    row.tweak(server);
    const Created s = create(server);
    CHECK(s.context == nullptr);
    CHECK(s.ec == errc::invalid_argument);
    CHECK(s.message == row.message);
  }
  Config client = client_config(any_version);
  client.additional_credentials.push_back(
      {.certificate_file = cert_path("client.pem"), .private_key_file = cert_path("client.key")});
  const Created c = create(client);
  CHECK(c.ec == errc::invalid_argument);
  CHECK(c.message == "additional_credentials is a server option (a client has one certificate)");
}

TEST_CASE("an encrypted private key is used with its password, in every common format, on every backend") {
  // OpenSSL's default (PBES2, PBKDF2 hmacWithSHA256, AES-256-CBC), PBES2
  // with SHA-1 and AES-128 or 3DES, PKCS#12 3DES, the traditional PEM form.
  // mbedTLS 2.28 decrypts PBES2 only with DES by itself; its backend does
  // the AES ones with mbedTLS's primitives.
  for (const std::string key : {"encrypted.key", "encrypted_sha1.key", "encrypted_des3.key",
                                "encrypted_pkcs12.key", "encrypted_traditional.key"}) {
    CAPTURE(key);
    for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      Config client = client_config(v), server = server_config(v);
      server.private_key_file = cert_path(key);
      server.private_key_password = "unitls";
      CHECK(served_subject(client, server) == "CN=localhost");
      // As PEM text too, and for a client's certificate.
      Config pem_server = server_config(v);
      pem_server.private_key_file.clear();
      pem_server.private_key_pem = cert_text(key);
      pem_server.private_key_password = "unitls";
      Config mutual = client_config(v);
      mutual.certificate_file = cert_path("server.pem");  // EKU serverAuth: a client certificate it is not
      mutual.private_key_file = cert_path(key);
      mutual.private_key_password = "unitls";
      CHECK(create(mutual).context != nullptr);
      CHECK(served_subject(client, pem_server) == "CN=localhost");
    }
  }
}

TEST_CASE("a password is UTF-8 on every backend, PKCS#12 schemes included") {
  // PKCS#12 takes the password as a BMPString (RFC 7292 B.1): OpenSSL and
  // GnuTLS convert UTF-8; mbedTLS 2.28 widened each byte, and refused the
  // key (its backend now converts).
  for (const std::string key : {"encrypted_utf8.key", "encrypted_pkcs12_utf8.key"}) {
    CAPTURE(key);
    Config server = server_config(any_version);
    server.private_key_file = cert_path(key);
    server.private_key_password = "p\xc3\xa4ss";
    CHECK(served_subject(client_config(any_version), server) == "CN=localhost");
    server.private_key_password = "p\xe4ss";  // Latin-1: not UTF-8, refused before any stack reads it
    const Created s = create(server);
    CHECK(s.ec == errc::invalid_argument);
    CHECK(s.message == "private_key_password: not UTF-8");
  }
}

TEST_CASE("an encrypted key without its password, or with a wrong one, is invalid_argument naming the key") {
  const std::string path = cert_path("encrypted.key");
  Config server = server_config(any_version);
  server.private_key_file = path;
  Created s = create(server);
  CHECK(s.ec == errc::invalid_argument);
  CHECK(s.message == "private_key_file '" + path + "': the key is encrypted; give its password in private_key_password");
  for (const std::string key : {"encrypted.key", "encrypted_traditional.key", "encrypted_pkcs12.key"}) {
    CAPTURE(key);
    server.private_key_file = cert_path(key);
    server.private_key_password = "wrong";
    s = create(server);
    CHECK(s.ec == errc::invalid_argument);
    CHECK_MESSAGE(starts_with(s.message, "private_key_file '" + cert_path(key) +
                                             "': cannot be decrypted with its password (a wrong password, or a "
                                             "damaged key)"),
                  s.message);
  }
  // A password for a key that is not encrypted is not needed.
  server.private_key_file = cert_path("server.key");
  CHECK(create(server).context != nullptr);
}

TEST_CASE("a key encrypted with a scheme the backend cannot decrypt is unsupported, naming the scheme") {
  // scrypt (RFC 7914) and PBES2 with Camellia: OpenSSL decrypts them,
  // GnuTLS 3.7 and mbedTLS 2.28 do not; the backend's declared
  // capabilities say which, never a "wrong password".
  const struct {
    std::string key, scheme;
  } rows[] = {{"encrypted_scrypt.key", "PBES2 (scrypt, aes-256-cbc)"},
              {"encrypted_camellia.key", "PBES2 (PBKDF2 hmacWithSHA256, an unknown cipher)"}};
  for (const auto& row : rows) {
    CAPTURE(row.key);
    Config server = server_config(any_version);
    server.private_key_file = cert_path(row.key);
    server.private_key_password = "unitls";
    const Created s = create(server);
    if (s.context) {
      CHECK(served_subject(client_config(any_version), server) == "CN=localhost");
    } else {
      CHECK(s.ec == errc::unsupported);
      CHECK_MESSAGE(starts_with(s.message, "private_key_file '" + cert_path(row.key) + "': encrypted with " +
                                               row.scheme + ", which the " + backend_under_test() + " backend ("),
                    s.message);
    }
  }
}

TEST_CASE("a password over 1024 bytes is invalid_argument on every backend") {
  Config server = server_config(any_version);
  server.private_key_file = cert_path("encrypted.key");
  server.private_key_password = std::string(1025, 'p');
  const Created s = create(server);
  CHECK(s.ec == errc::invalid_argument);
  CHECK(s.message == "private_key_password: longer than 1024 bytes");
}

TEST_CASE("a server serves the additional certificate whose names match the client's SNI, else its main one") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Config server = server_config(v);
    server.additional_credentials = {
        {.certificate_file = cert_path("wrong_name.pem"), .private_key_file = cert_path("wrong_name.key")},
        {.certificate_pem = cert_text("wildcard.pem"), .private_key_pem = cert_text("wildcard.key")},
    };
    const struct {
      std::string server_name;
      std::string subject;
    } rows[] = {
        {"wrong.example", "CN=wrong.example"},
        {"WRONG.example", "CN=wrong.example"},  // names compare case-insensitively
        {"a.example.test", "CN=wildcard"},
        {"localhost", "CN=localhost"},
        {"nobody.example", "CN=localhost"},     // no match: the main one
        {"b.a.example.test", "CN=localhost"},   // a wildcard matches one label
        {"127.0.0.1", "CN=localhost"},          // an IP literal is not sent as SNI
    };
    for (const auto& row : rows) {
      CAPTURE(row.server_name);
      Config client = client_config(v);
      client.server_name = row.server_name;
      client.verify_peer = row.subject != "CN=localhost" || row.server_name == "localhost" ||
                           row.server_name == "127.0.0.1";
      CHECK(served_subject(client, server) == row.subject);
    }
  }
}

TEST_CASE("a TLS 1.2 session made for one certificate resumes only under its name") {
  if (skip_unless_supported(Version::tls1_2)) return;
  Config server = server_config(Version::tls1_2);
  server.additional_credentials = {
      {.certificate_file = cert_path("wrong_name.pem"), .private_key_file = cert_path("wrong_name.key")}};
  auto server_ctx = create(server).context;
  Config client = client_config(Version::tls1_2);
  client.server_name = "wrong.example";
  auto client_ctx = create(client).context;
  REQUIRE(server_ctx);
  REQUIRE(client_ctx);
  MemoryConn first = connect_memory(client_ctx, server_ctx);
  end_properly(first);
  MemoryConn second = connect_memory(client_ctx, server_ctx);
  CHECK(second.client->session_reused());
  REQUIRE(second.client->peer_certificate().has_value());
  CHECK(second.client->peer_certificate()->subject == "CN=wrong.example");
}

TEST_CASE("the system trust store is found the same way by every backend: SSL_CERT_FILE, SSL_CERT_DIR") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    Config client = client_config(v);
    client.ca_file.clear();  // the system store
    {
      EnvVar file("SSL_CERT_FILE", cert_path("ca.pem"));
      CHECK(served_subject(client, server_config(v)) == "CN=localhost");
    }
    {
      // And a directory, with the bundle: the test CA among another CA, a
      // DER file and a file that is not a certificate (skipped, as in a
      // real store).
      TempDir dir;
      dir.write("other.pem", cert_text("other_ca.pem"));
      dir.write("ca.pem", cert_text("ca.pem"));
      dir.write("ca.der", cert_text("ca.der"));
      dir.write("README", "not a certificate\n");
      EnvVar file("SSL_CERT_FILE", cert_path("other_ca.pem"));
      EnvVar env("SSL_CERT_DIR", dir.path());
      CHECK(served_subject(client, server_config(v)) == "CN=localhost");
    }
    {
      EnvVar file("SSL_CERT_FILE", cert_path("other_ca.pem"));
      EnvVar env("SSL_CERT_DIR", cert_path("no_such_directory"));
      const Created c = create(client);
      CHECK(c.ec == errc::invalid_argument);
      CHECK(starts_with(c.message, "SSL_CERT_DIR '" + cert_path("no_such_directory") + "': "));
    }
    {
      EnvVar file("SSL_CERT_FILE", cert_path("no_such_file.pem"));
      const Created c = create(client);
      CHECK(c.ec == errc::invalid_argument);
      CHECK(starts_with(c.message, "SSL_CERT_FILE '" + cert_path("no_such_file.pem") + "': "));
    }
    {
      // A store without the test CA: the test server is not trusted.
      EnvVar file("SSL_CERT_FILE", cert_path("other_ca.pem"));
      const Created c = create(client), s = create(server_config(v));
      REQUIRE(c.context);
      MemoryConn conn = open_memory(c.context, s.context, make_memory_pair());
      CHECK(run_handshake(conn).client == failure(errc::certificate_error));
    }
  }
}

TEST_CASE("ca_path: a directory of trust anchors, alone or with ca_file, the same on every backend") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    // The test CA among another CA, a DER file and a file that is not a
    // certificate (skipped, as in a system store).
    TempDir dir;
    dir.write("other.pem", cert_text("other_ca.pem"));
    dir.write("ca.pem", cert_text("ca.pem"));
    dir.write("ca.der", cert_text("ca.der"));
    dir.write("README", "not a certificate\n");
    Config client = client_config(v);
    client.ca_file.clear();
    client.ca_path = dir.path();
    CHECK(served_subject(client, server_config(v)) == "CN=localhost");
    // With a ca_file that trusts another CA: both count.
    client.ca_file = cert_path("other_ca.pem");
    CHECK(served_subject(client, server_config(v)) == "CN=localhost");
    // A server asking for client certificates may take its CAs from ca_path.
    Config server = server_config(v), mutual = client_config(v);
    server.client_auth = ClientAuth::required;
    server.ca_file.clear();
    server.ca_path = dir.path();
    mutual.certificate_file = cert_path("client.pem");
    mutual.private_key_file = cert_path("client.key");
    MemoryConn conn = connect_memory(must_create(mutual), must_create(server));
    const auto peer = conn.server->peer_certificate();
    REQUIRE(peer.has_value());
    CHECK(peer->subject == "CN=unitls test client");
    // A directory without the test CA: the server is not trusted.
    TempDir other;
    other.write("other.pem", cert_text("other_ca.pem"));
    client.ca_file.clear();
    client.ca_path = other.path();
    const Created c = create(client), s = create(server_config(v));
    REQUIRE(c.context);
    MemoryConn untrusted = open_memory(c.context, s.context, make_memory_pair());
    CHECK(run_handshake(untrusted).client == failure(errc::certificate_error));
  }
}

TEST_CASE("a ca_path that is no readable directory, or holds no trust anchor, is invalid_argument naming it") {
  Config client = client_config(any_version);
  client.ca_file.clear();
  client.ca_path = cert_path("no_such_directory");
  Created c = create(client);
  CHECK(c.ec == errc::invalid_argument);
  CHECK(starts_with(c.message, "ca_path '" + cert_path("no_such_directory") + "': "));
  client.ca_path = cert_path("ca.pem");
  c = create(client);
  CHECK(c.ec == errc::invalid_argument);
  CHECK(c.message == "ca_path '" + cert_path("ca.pem") + "': not a directory");
  TempDir empty;
  empty.write("README", "not a certificate\n");
  client.ca_path = empty.path();
  c = create(client);
  CHECK(c.ec == errc::invalid_argument);
  CHECK(starts_with(c.message, "ca_path '" + empty.path() + "': no trust anchor in it"));
  std::string with_nul = empty.path();
  with_nul += '\0';
  client.ca_path = with_nul;
  c = create(client);
  CHECK(c.ec == errc::invalid_argument);
  CHECK(c.message == "ca_path: contains a NUL byte");
}
