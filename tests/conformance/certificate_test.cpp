// Certificate verification, identical on every backend: one table of
// certificates (the zoo made by tests/certs/make_certs.sh, whose header says
// what each file is) and the verdict each must get, run for
//   - a client verifying the server's certificate and name,
//   - a server verifying its client's certificate (mutual TLS),
//   - Context::create refusing files it cannot use (the message names the file).
// The rule: a chain to a trust anchor, the validity period, the name (RFC
// 6125: DNS names without regard to case; a wildcard only as the whole
// leftmost label and never right above a single label; an IP address only
// against iPAddress entries; the subject's CN only without dNSName entries)
// and the Extended Key Usage when there is one (serverAuth for servers,
// clientAuth for clients; anyExtendedKeyUsage alone satisfies neither). A
// ca_file certificate is a trust anchor only if it is self-signed or a CA (an
// intermediate CA counts). Both sides of every connection run the backend
// under test, over the in-memory pair.
#include <array>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"

using namespace unitls;
using namespace unitls::test;

namespace {

// Whose certificate the row is about.
enum class Checked {
  server,  // the client verifies the server's certificate and server_name
  client,  // the server (client_auth required, ca_file) verifies the client's certificate
};

// Where one side's connection ends.
struct End {
  enum Where {
    completes,            // handshake() returns 1 and data flows
    fails_in_handshake,   // handshake() returns -1 with `error`
    fails_on_first_read,  // handshake() returned 1, the first read() returns -1 with `error`
    refused_at_create,    // Context::create fails with `error`, naming the row's culprit file
  } where;
  errc error;
};

// What the verifying side and the other side (whose certificate or name is
// judged) see, per version.
struct Expect {
  End verifier;
  End other_tls12;
  End other_tls13;
};

constexpr End completes{End::completes, {}};
constexpr End rejects{End::fails_in_handshake, errc::certificate_error};
constexpr End alerted_in_handshake{End::fails_in_handshake, errc::protocol_error};
constexpr End alerted_on_first_read{End::fails_on_first_read, errc::protocol_error};
constexpr End invalid{End::refused_at_create, errc::invalid_argument};

constexpr Expect accepted{completes, completes, completes};
// The client judges the server's certificate before it sends anything of its
// own second flight; the server, waiting for it, gets the fatal alert inside
// handshake() in both versions.
constexpr Expect client_rejects{rejects, alerted_in_handshake, alerted_in_handshake};
// The server judges the client's certificate after the client's last flight.
// In TLS 1.2 the client is still waiting for the server's Finished, so the
// alert ends its handshake(); in TLS 1.3 the client's handshake is complete
// once it has sent its Finished, and the alert surfaces on its first read().
constexpr Expect server_rejects{rejects, alerted_in_handshake, alerted_on_first_read};
// Context::create fails for the side whose configuration names the culprit
// (the "verifier" column); the other side's context is created as usual.
constexpr Expect refused{invalid, completes, completes};

constexpr std::string_view no_certificate = "(none)";

struct Row {
  std::string_view name;
  Checked checked;
  // The judged side's certificate_file and private_key_file (files of the test
  // PKI). "" = the usual one (server.pem / client.pem); key "" = the
  // certificate's name with .key for .pem.
  std::string_view cert = "";
  std::string_view key = "";
  std::string_view ca = "";           // the verifying side's ca_file; "" = ca.pem
  std::string_view server_name = "";  // the client's; "" = "localhost"
  Expect expect = accepted;
  std::string_view culprit = "";  // refused: the file Context::create's message names
};

// clang-format off
const Row zoo[] = {
  // ---- a client verifies the server ----
  // Chains and anchors.
  {.name = "a leaf signed by the trusted CA", .checked = Checked::server},
  {.name = "a leaf sent with its CA", .checked = Checked::server, .cert = "server_chain.pem",
   .key = "server.key"},
  {.name = "a leaf sent with the intermediate CA that signed it", .checked = Checked::server,
   .cert = "intermediate_chain.pem", .key = "intermediate_leaf.key"},
  {.name = "a leaf signed by an intermediate CA that is the client's trust anchor",
   .checked = Checked::server, .cert = "intermediate_leaf.pem", .ca = "intermediate.pem"},
  {.name = "a leaf sent with its intermediate CA that is the client's trust anchor",
   .checked = Checked::server, .cert = "intermediate_chain.pem", .key = "intermediate_leaf.key",
   .ca = "intermediate.pem"},
  {.name = "a self-signed leaf that is the client's ca_file", .checked = Checked::server,
   .cert = "self_signed.pem", .ca = "self_signed.pem"},
  {.name = "a leaf signed by a CA the client does not trust", .checked = Checked::server,
   .cert = "untrusted.pem", .expect = client_rejects},
  {.name = "a leaf signed by an intermediate CA, sent without it", .checked = Checked::server,
   .cert = "intermediate_leaf.pem", .expect = client_rejects},
  {.name = "a leaf whose issuer is not a CA (CA:FALSE), sent with that issuer",
   .checked = Checked::server, .cert = "not_a_ca_chain.pem", .key = "not_a_ca_leaf.key",
   .expect = client_rejects},
  {.name = "a self-signed leaf the client does not trust", .checked = Checked::server,
   .cert = "self_signed.pem", .expect = client_rejects},
  {.name = "a leaf that is in the client's ca_file but is neither self-signed nor a CA",
   .checked = Checked::server, .ca = "leaf_bundle.pem", .expect = client_rejects},
  // Validity.
  {.name = "an expired leaf", .checked = Checked::server, .cert = "expired.pem",
   .expect = client_rejects},
  {.name = "a leaf not valid yet", .checked = Checked::server, .cert = "not_yet_valid.pem",
   .expect = client_rejects},
  // Names.
  {.name = "a server_name in another case than the DNS name", .checked = Checked::server,
   .server_name = "LocalHost"},
  {.name = "a DNS name in mixed case and a server_name in lower case", .checked = Checked::server,
   .cert = "mixed_case.pem", .server_name = "mixed.example.test"},
  {.name = "a leaf for another name", .checked = Checked::server, .cert = "wrong_name.pem",
   .expect = client_rejects},
  {.name = "a wildcard and one leftmost label", .checked = Checked::server, .cert = "wildcard.pem",
   .server_name = "www.example.test"},
  {.name = "a wildcard and one leftmost label in upper case", .checked = Checked::server,
   .cert = "wildcard.pem", .server_name = "WWW.Example.TEST"},
  {.name = "a wildcard and the bare parent domain", .checked = Checked::server,
   .cert = "wildcard.pem", .server_name = "example.test", .expect = client_rejects},
  {.name = "a wildcard and two labels in its place", .checked = Checked::server,
   .cert = "wildcard.pem", .server_name = "a.b.example.test", .expect = client_rejects},
  {.name = "a wildcard right above a single label (*.localhost)", .checked = Checked::server,
   .cert = "wildcard_localhost.pem", .server_name = "www.localhost", .expect = client_rejects},
  {.name = "a wildcard that is only part of a label (a*.example.test)", .checked = Checked::server,
   .cert = "partial_wildcard.pem", .server_name = "ab.example.test", .expect = client_rejects},
  {.name = "a wildcard that is not the leftmost label (a.*.example.test)",
   .checked = Checked::server, .cert = "inner_wildcard.pem", .server_name = "a.b.example.test",
   .expect = client_rejects},
  {.name = "an IPv4 server_name and an iPAddress entry next to a DNS name",
   .checked = Checked::server, .server_name = "127.0.0.1"},
  {.name = "an IPv4 server_name and a leaf with iPAddress entries only", .checked = Checked::server,
   .cert = "ip_only.pem", .server_name = "127.0.0.1"},
  {.name = "an IPv6 server_name and a leaf with iPAddress entries only", .checked = Checked::server,
   .cert = "ip_only.pem", .server_name = "::1"},
  {.name = "an IPv6 server_name and a leaf without that address", .checked = Checked::server,
   .server_name = "::1", .expect = client_rejects},
  {.name = "an IPv4 server_name and the same address written as a DNS name",
   .checked = Checked::server, .cert = "ip_as_dns.pem", .server_name = "127.0.0.1",
   .expect = client_rejects},
  {.name = "a DNS server_name and a leaf with iPAddress entries only", .checked = Checked::server,
   .cert = "ip_only.pem", .server_name = "localhost", .expect = client_rejects},
  {.name = "an IPv6 server_name written out in full", .checked = Checked::server,
   .cert = "ip_only.pem", .server_name = "0:0:0:0:0:0:0:1"},
  {.name = "a server_name with a trailing dot (an absolute name)", .checked = Checked::server,
   .server_name = "localhost."},
  // The subject's CN stands for a host name only in a certificate without
  // dNSName entries (RFC 6125 6.4.4; what OpenSSL does), and never for an IP
  // address.
  {.name = "a leaf without subjectAltName whose CN is the server_name", .checked = Checked::server,
   .cert = "cn_only.pem"},
  {.name = "a leaf with only an iPAddress entry whose CN is the server_name",
   .checked = Checked::server, .cert = "cn_and_ip.pem"},
  {.name = "a leaf whose CN is the server_name but whose dNSName entry is not",
   .checked = Checked::server, .cert = "mixed_case.pem", .server_name = "mixed",
   .expect = client_rejects},
  {.name = "an IPv4 server_name and a leaf without subjectAltName whose CN is that address",
   .checked = Checked::server, .cert = "cn_ip_only.pem", .server_name = "127.0.0.1",
   .expect = client_rejects},
  // Extended Key Usage of the server's certificate (a server refuses its own
  // certificate_file without serverAuth: see the refused rows below).
  {.name = "a server leaf with EKU serverAuth only", .checked = Checked::server,
   .cert = "eku_server_only.pem"},
  {.name = "a server leaf with EKU serverAuth and clientAuth", .checked = Checked::server,
   .cert = "eku_both.pem"},
  {.name = "a server leaf without EKU", .checked = Checked::server, .cert = "eku_none.pem"},

  // ---- a server verifies its client (mutual TLS) ----
  {.name = "a client leaf signed by the trusted CA", .checked = Checked::client},
  {.name = "a client leaf sent with the intermediate CA that signed it", .checked = Checked::client,
   .cert = "intermediate_chain.pem", .key = "intermediate_leaf.key"},
  {.name = "a client leaf signed by an intermediate CA that is the server's trust anchor",
   .checked = Checked::client, .cert = "intermediate_leaf.pem", .ca = "intermediate.pem"},
  {.name = "a self-signed client leaf that is the server's ca_file", .checked = Checked::client,
   .cert = "self_signed.pem", .ca = "self_signed.pem"},
  {.name = "a client that sends no certificate", .checked = Checked::client, .cert = no_certificate,
   .expect = server_rejects},
  {.name = "a client leaf signed by a CA the server does not trust", .checked = Checked::client,
   .cert = "untrusted_client.pem", .expect = server_rejects},
  {.name = "a client leaf signed by the CA when the server trusts another CA",
   .checked = Checked::client, .ca = "other_ca.pem", .expect = server_rejects},
  {.name = "a client leaf signed by an intermediate CA, sent without it",
   .checked = Checked::client, .cert = "intermediate_leaf.pem", .expect = server_rejects},
  {.name = "a client leaf whose issuer is not a CA (CA:FALSE), sent with that issuer",
   .checked = Checked::client, .cert = "not_a_ca_chain.pem", .key = "not_a_ca_leaf.key",
   .expect = server_rejects},
  {.name = "a self-signed client leaf the server does not trust", .checked = Checked::client,
   .cert = "self_signed.pem", .expect = server_rejects},
  {.name = "a client leaf that is in the server's ca_file but is neither self-signed nor a CA",
   .checked = Checked::client, .ca = "leaf_bundle.pem", .expect = server_rejects},
  {.name = "an expired client leaf", .checked = Checked::client, .cert = "expired.pem",
   .expect = server_rejects},
  {.name = "a client leaf not valid yet", .checked = Checked::client, .cert = "not_yet_valid.pem",
   .expect = server_rejects},
  {.name = "a client leaf with EKU clientAuth and serverAuth", .checked = Checked::client,
   .cert = "eku_both.pem"},
  {.name = "a client leaf without EKU", .checked = Checked::client, .cert = "eku_none.pem"},
  {.name = "a client leaf with EKU serverAuth only", .checked = Checked::client,
   .cert = "eku_server_only.pem", .expect = server_rejects},
  {.name = "a client leaf with EKU anyExtendedKeyUsage only", .checked = Checked::client,
   .cert = "eku_any.pem", .expect = server_rejects},

  // Extended Key Usage on an intermediate CA: it limits what the leaves under it
  // may do (RFC 5280 4.2.1.12, as OpenSSL and GnuTLS check a chain;
  // anyExtendedKeyUsage does not count). The leaves themselves allow both.
  {.name = "a server leaf under an intermediate CA with EKU serverAuth only",
   .checked = Checked::server, .cert = "server_eku_ca_chain.pem", .key = "server_eku_ca_leaf.key"},
  {.name = "a server leaf under an intermediate CA with EKU clientAuth only",
   .checked = Checked::server, .cert = "client_eku_ca_chain.pem", .key = "client_eku_ca_leaf.key",
   .expect = client_rejects},
  {.name = "a server leaf under an intermediate CA with EKU anyExtendedKeyUsage only",
   .checked = Checked::server, .cert = "any_eku_ca_chain.pem", .key = "any_eku_ca_leaf.key",
   .expect = client_rejects},
  // ... and on the trust anchor itself (an intermediate CA as ca_file), sent
  // along or not (OpenSSL checks the anchor's purpose too).
  {.name = "a server leaf whose trust anchor has EKU clientAuth only",
   .checked = Checked::server, .cert = "client_eku_ca_leaf.pem", .ca = "client_eku_ca.pem",
   .expect = client_rejects},
  {.name = "a server leaf sent with its trust anchor, which has EKU clientAuth only",
   .checked = Checked::server, .cert = "client_eku_ca_chain.pem", .key = "client_eku_ca_leaf.key",
   .ca = "client_eku_ca.pem", .expect = client_rejects},
  {.name = "a server leaf whose trust anchor has EKU serverAuth only",
   .checked = Checked::server, .cert = "server_eku_ca_leaf.pem", .ca = "server_eku_ca.pem"},
  {.name = "a client leaf under an intermediate CA with EKU clientAuth only",
   .checked = Checked::client, .cert = "client_eku_ca_chain.pem", .key = "client_eku_ca_leaf.key"},
  {.name = "a client leaf under an intermediate CA with EKU serverAuth only",
   .checked = Checked::client, .cert = "server_eku_ca_chain.pem", .key = "server_eku_ca_leaf.key",
   .expect = server_rejects},
  {.name = "a client leaf whose trust anchor has EKU serverAuth only",
   .checked = Checked::client, .cert = "server_eku_ca_leaf.pem", .ca = "server_eku_ca.pem",
   .expect = server_rejects},
  {.name = "a client leaf whose trust anchor has EKU clientAuth only",
   .checked = Checked::client, .cert = "client_eku_ca_leaf.pem", .ca = "client_eku_ca.pem"},
  {.name = "a client leaf under an intermediate CA with EKU anyExtendedKeyUsage only",
   .checked = Checked::client, .cert = "any_eku_ca_chain.pem", .key = "any_eku_ca_leaf.key",
   .expect = server_rejects},

  // ---- Context::create refuses what it cannot use ----
  {.name = "a server certificate_file in DER", .checked = Checked::server, .cert = "server.der",
   .key = "server.key", .expect = refused, .culprit = "server.der"},
  {.name = "a server private_key_file in DER", .checked = Checked::server, .key = "server_key.der",
   .expect = refused, .culprit = "server_key.der"},
  {.name = "a server private_key_file encrypted as PKCS#8", .checked = Checked::server,
   .key = "encrypted.key", .expect = refused, .culprit = "encrypted.key"},
  {.name = "a server private_key_file encrypted in the traditional PEM form",
   .checked = Checked::server, .key = "encrypted_traditional.key", .expect = refused,
   .culprit = "encrypted_traditional.key"},
  {.name = "a server certificate_file with EKU clientAuth only", .checked = Checked::server,
   .cert = "eku_client_only.pem", .expect = refused, .culprit = "eku_client_only.pem"},
  {.name = "a server certificate_file with an RSA key of 1024 bits", .checked = Checked::server,
   .cert = "rsa1024.pem", .expect = refused, .culprit = "rsa1024.pem"},
  {.name = "a client certificate_file with an RSA key of 1024 bits", .checked = Checked::client,
   .cert = "rsa1024.pem", .expect = refused, .culprit = "rsa1024.pem"},
  // (A peer that sends such a chain is rejected: tests/peers, "RSA-1024".)
  {.name = "a server certificate_file whose chain has an RSA-1024 intermediate CA",
   .checked = Checked::server, .cert = "rsa1024_ca_chain.pem", .key = "rsa1024_ca_leaf.key", .expect = refused,
   .culprit = "rsa1024_ca_chain.pem"},
  {.name = "a server certificate_file whose keyUsage leaves out digitalSignature",
   .checked = Checked::server, .cert = "ku_key_encipherment.pem", .expect = refused,
   .culprit = "ku_key_encipherment.pem"},
  {.name = "a client certificate_file whose keyUsage leaves out digitalSignature",
   .checked = Checked::client, .cert = "ku_key_encipherment.pem", .expect = refused,
   .culprit = "ku_key_encipherment.pem"},
  {.name = "a server certificate_file with EKU anyExtendedKeyUsage only",
   .checked = Checked::server, .cert = "eku_any.pem", .expect = refused, .culprit = "eku_any.pem"},
  {.name = "a client ca_file in DER", .checked = Checked::server, .ca = "ca.der", .expect = refused,
   .culprit = "ca.der"},
  {.name = "a client ca_file with no trust anchor (a CA:FALSE certificate, not self-signed)",
   .checked = Checked::server, .ca = "not_a_ca.pem", .expect = refused, .culprit = "not_a_ca.pem"},
  {.name = "a client certificate_file in DER", .checked = Checked::client, .cert = "server.der",
   .key = "server.key", .expect = refused, .culprit = "server.der"},
  {.name = "a client private_key_file in DER", .checked = Checked::client, .cert = "server.pem",
   .key = "server_key.der", .expect = refused, .culprit = "server_key.der"},
  {.name = "a client private_key_file encrypted as PKCS#8", .checked = Checked::client,
   .cert = "server.pem", .key = "encrypted.key", .expect = refused, .culprit = "encrypted.key"},
  {.name = "a server ca_file in DER", .checked = Checked::client, .ca = "ca.der", .expect = refused,
   .culprit = "ca.der"},
  {.name = "a server ca_file with no trust anchor (a leaf)", .checked = Checked::client,
   .ca = "client.pem", .expect = refused, .culprit = "client.pem"},
};
// clang-format on

Side verifier_of(const Row& row) {
  return row.checked == Checked::server ? Side::client : Side::server;
}

bool is_refused(const Row& row) { return row.expect.verifier.where == End::refused_at_create; }

std::string key_for(std::string_view cert) {
  std::string key(cert);
  if (key.ends_with(".pem")) key.replace(key.size() - 4, 4, ".key");
  return key;
}

// The usual certificate of the judged side.
std::string_view usual_certificate(const Row& row) {
  return row.checked == Checked::server ? "server.pem" : "client.pem";
}

// The row's files and names on top of client_config(v) / server_config(v).
void apply(const Row& row, Config& client, Config& server, ClientAuth auth = ClientAuth::required) {
  const bool judging_server = row.checked == Checked::server;
  Config& judged = judging_server ? server : client;
  Config& verifying = judging_server ? client : server;
  if (!judging_server) server.client_auth = auth;
  if (row.cert == no_certificate) {
    judged.certificate_file.clear();
    judged.private_key_file.clear();
  } else {
    const std::string_view cert = row.cert.empty() ? usual_certificate(row) : row.cert;
    judged.certificate_file = cert_path(cert);
    judged.private_key_file = cert_path(row.key.empty() ? key_for(cert) : std::string(row.key));
  }
  if (!row.ca.empty()) verifying.ca_file = cert_path(row.ca);
  if (!row.server_name.empty()) client.server_name = std::string(row.server_name);
}

// A dead connection answers every call with its error and sends nothing more.
void expect_dead(const MemoryConn& conn, Side side, errc error) {
  CAPTURE(side_name(side));
  SecureSocket& s = conn.socket(side);
  const auto sent = conn.bytes_from(side);
  std::array<std::byte, 32> buf;
  CHECK(outcome(s, s.read(buf)) == failure(error));
  CHECK(outcome(s, s.write("data")) == failure(error));
  CHECK(outcome(s, s.shutdown()) == failure(error));
  CHECK(s.send_close_notify() == error);
  CHECK(outcome(s, s.read(buf)) == failure(error));
  CHECK(s.get_shutdown() == 0);
  CHECK(conn.bytes_from(side) == sent);
}

// A transport that passes everything through and keeps a copy of what was
// written, to see which certificate went on the wire.
class Recorder final : public Transport {
 public:
  Recorder(std::unique_ptr<Transport> inner, std::shared_ptr<std::string> written)
      : inner_(std::move(inner)), written_(std::move(written)) {}
  std::ptrdiff_t read(std::span<std::byte> buf, std::error_code& ec) override {
    return inner_->read(buf, ec);
  }
  std::ptrdiff_t write(std::span<const std::byte> buf, std::error_code& ec) override {
    const std::ptrdiff_t n = inner_->write(buf, ec);
    if (n > 0) *written_ += to_string(buf.first(static_cast<std::size_t>(n)));
    return n;
  }
  std::error_code native_error() const noexcept override { return inner_->native_error(); }

 private:
  std::unique_ptr<Transport> inner_;
  std::shared_ptr<std::string> written_;
};

// The DER of the first certificate in a PEM file.
std::string first_certificate_der(const std::string& path) {
  std::ifstream in(path);
  const std::string pem{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
  const auto from = pem.find(begin), to = pem.find(end);
  REQUIRE_MESSAGE((from != std::string::npos && to != std::string::npos),
                  "no certificate in " << path);
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string der;
  unsigned bits = 0, nbits = 0;
  for (char c : std::string_view(pem).substr(from + begin.size(), to - from - begin.size())) {
    const auto value = alphabet.find(c);
    if (value == std::string_view::npos) continue;  // line breaks and '=' padding
    bits = (bits << 6) | static_cast<unsigned>(value);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      der += static_cast<char>((bits >> nbits) & 0xff);
    }
  }
  return der;
}

// open_memory() with the row's configuration, the judged side's transport
// recording what it writes.
MemoryConn open_recorded(const Row& row, Version v, const std::shared_ptr<std::string>& written,
                         ClientAuth auth) {
  Config client = client_config(v);
  Config server = server_config(v);
  apply(row, client, server, auth);
  std::error_code ec;
  std::string message;
  std::shared_ptr<Context> client_ctx = Context::create(client, ec, &message);
  REQUIRE_MESSAGE(client_ctx != nullptr, "client context: " << describe(ec) << ": " << message);
  std::shared_ptr<Context> server_ctx = Context::create(server, ec, &message);
  REQUIRE_MESSAGE(server_ctx != nullptr, "server context: " << describe(ec) << ": " << message);
  MemoryPair pair = make_memory_pair();
  REQUIRE(pair.link != nullptr);
  std::unique_ptr<Transport>& judged = row.checked == Checked::server ? pair.server : pair.client;
  judged = std::make_unique<Recorder>(std::move(judged), written);
  return open_memory(std::move(client_ctx), std::move(server_ctx), std::move(pair));
}

// What the verifying side's connection came to, to compare modes.
struct Verdict {
  Outcome verifier, other;
  std::error_code verifier_native;
  std::string verification_error;
};

// auth: the server's client_auth for rows that judge the client. Under
// optional a client without a certificate is let in; every certificate
// sent gets the verdict it gets under required.
Verdict run_connection(const Row& row, Version v, ClientAuth auth = ClientAuth::required) {
  auto written = std::make_shared<std::string>();
  MemoryConn conn = open_recorded(row, v, written, auth);
  const Side verifier = verifier_of(row);
  const Side other = peer_of(verifier);
  const bool let_in = auth == ClientAuth::optional && row.cert == no_certificate;
  const Expect expect = let_in ? accepted : row.expect;
  const End other_end = v == Version::tls1_2 ? expect.other_tls12 : expect.other_tls13;
  const HandshakeEnd ends = run_handshake(conn);
  INFO(handshake_state(conn));

  // The verdict must be about the certificate the row names, so the judged
  // side must have sent it, whatever CA names the server's
  // CertificateRequest listed. TLS 1.2 sends it in the clear; which
  // certificate a side picks does not depend on the version.
  if (v == Version::tls1_2 && row.cert != no_certificate) {
    const std::string sent(row.cert.empty() ? usual_certificate(row) : row.cert);
    const bool sent_it = written->find(first_certificate_der(cert_path(sent))) != std::string::npos;
    CHECK_MESSAGE(sent_it, side_name(other) << " did not send the certificate of " << sent);
  }

  const Verdict verdict{ends.of(verifier), ends.of(other), conn.socket(verifier).native_error(),
                        conn.socket(verifier).verification_error()};
  if (expect.verifier.where == End::completes) {
    CHECK(ends.client == success(1));
    CHECK(ends.server == success(1));
    if (ends.client == success(1) && ends.server == success(1)) exchange(conn);
    if (row.checked == Checked::client)
      CHECK(conn.server->peer_certificate().has_value() == (row.cert != no_certificate));
    return verdict;
  }

  const std::string verifying = side_name(verifier) + " (verifying)";
  const std::string judged = side_name(other) + " (judged)";
  CHECK_MESSAGE(ends.of(verifier) == failure(expect.verifier.error), verifying);
  if (other_end.where == End::fails_in_handshake) {
    CHECK_MESSAGE(ends.of(other) == failure(other_end.error), judged);
  } else {
    REQUIRE(other_end.where == End::fails_on_first_read);
    CHECK_MESSAGE(ends.of(other) == success(1), judged);
    if (ends.of(other).ret == 1) {
      // The judged side believes it is connected and may send data at once:
      // the side that rejected it must not deliver it (expect_dead reads).
      SecureSocket& s = conn.socket(other);
      s.write("not for you");
      std::array<std::byte, 32> buf;
      CHECK_MESSAGE(outcome(s, s.read(buf)) == failure(other_end.error), judged << ", first read");
    }
  }
  if (ends.of(verifier) == failure(expect.verifier.error)) expect_dead(conn, verifier, expect.verifier.error);
  if (conn.socket(other).last_error() == other_end.error) expect_dead(conn, other, other_end.error);
  return verdict;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

void run_create(const Row& row, Version v) {
  Config client = client_config(v);
  Config server = server_config(v);
  apply(row, client, server);
  // The culprit is the verifying side's ca_file, or else the judged side's
  // certificate or key.
  const Side culprit_side = row.culprit == row.ca ? verifier_of(row) : peer_of(verifier_of(row));
  const std::string path = cert_path(row.culprit);
  for (Side side : {Side::client, Side::server}) {
    CAPTURE(side_name(side));
    std::error_code ec;
    std::string message;
    auto ctx = Context::create(side == Side::client ? client : server, ec, &message);
    if (side == culprit_side) {
      CHECK(ctx == nullptr);
      CHECK(ec == row.expect.verifier.error);
      CHECK_MESSAGE(contains(message, path), "message: " << message);
    } else {
      CHECK_MESSAGE(ctx != nullptr, describe(ec) << ": " << message);
    }
  }
}

}  // namespace

TEST_CASE(
    "every backend gives each server certificate of the zoo the same verdict when a client "
    "verifies it") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      for (const Row& row : zoo) {
        if (row.checked != Checked::server || is_refused(row)) continue;
        SUBCASE(std::string(row.name).c_str()) { run_connection(row, v); }
      }
    }
}

TEST_CASE(
    "every backend gives each client certificate of the zoo the same verdict when a server "
    "verifies it (mutual TLS)") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      for (const Row& row : zoo) {
        if (row.checked != Checked::client || is_refused(row)) continue;
        SUBCASE(std::string(row.name).c_str()) { run_connection(row, v); }
      }
    }
}

TEST_CASE(
    "client_auth optional: every backend lets in a client without a certificate, and gives each "
    "client certificate of the zoo the verdict and native error it gets under required") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      for (const Row& row : zoo) {
        if (row.checked != Checked::client || is_refused(row)) continue;
        SUBCASE(std::string(row.name).c_str()) {
          const Verdict optional = run_connection(row, v, ClientAuth::optional);
          if (row.cert == no_certificate) continue;
          const Verdict required = run_connection(row, v, ClientAuth::required);
          CHECK(optional.verifier == required.verifier);
          CHECK(optional.other == required.other);
          CHECK(describe(optional.verifier_native) == describe(required.verifier_native));
          CHECK(optional.verification_error == required.verification_error);
        }
      }
    }
}

TEST_CASE(
    "client_auth none: a server asks for no certificate, and a client that has one sends nothing") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
    if (skip_unless_supported(v)) return;
    MemoryConn conn = open_memory(v, [](Config& client, Config& server) {
      client.certificate_file = cert_path("client.pem");
      client.private_key_file = cert_path("client.key");
      server.client_auth = ClientAuth::none;
      server.ca_file.clear();  // none needed
    });
    const HandshakeEnd ends = run_handshake(conn);
    CHECK(ends.client == success(1));
    CHECK(ends.server == success(1));
    CHECK_FALSE(conn.server->peer_certificate().has_value());
    CHECK(conn.server->peer_chain().empty());
  }
}

TEST_CASE(
    "every backend refuses the same certificate, key and CA files at Context::create with "
    "invalid_argument, naming the file") {
  for (Version v : all_versions) SUBCASE(version_name(v).c_str()) {
      if (skip_unless_supported(v)) return;
      for (const Row& row : zoo) {
        if (!is_refused(row)) continue;
        SUBCASE(std::string(row.name).c_str()) { run_create(row, v); }
      }
    }
}
