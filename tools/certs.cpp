// The demo's PKI: --certs DIR, or a throwaway CA and a "localhost" server
// certificate made in-process (unitls::make_credential, with the crypto of a
// compiled-in backend: no openssl program needed, docs/contract.md "Making
// credentials").
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common.hpp"

namespace tool {

namespace fs = std::filesystem;

CertDir::~CertDir() {
  std::error_code ignored;
  if (temporary) fs::remove_all(dir, ignored);
}

namespace {

bool has_pki(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "ca.pem", ec) && fs::is_regular_file(dir / "server.pem", ec) &&
         fs::is_regular_file(dir / "server.key", ec);
}

bool write_file(const fs::path& path, const std::string& text, std::string& error) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    error = "cannot write " + path.string();
    return false;
  }
  return true;
}

// A throwaway CA and a "localhost" server certificate signed by it, ECDSA
// P-256, valid one day, made by `backend` ("" = the default one).
bool make_throwaway_pki(const fs::path& dir, const std::string& backend, std::string& error) {
  std::error_code ec;
  std::string why;
  const auto ca = unitls::make_credential(
      {.common_name = "unitls demo CA", .is_ca = true, .valid_for = std::chrono::hours(24)}, nullptr, ec, &why,
      backend);
  const auto server =
      ca ? unitls::make_credential({.common_name = "localhost",
                                    .dns_names = {"localhost"},
                                    .ip_addresses = {"127.0.0.1", "::1"},
                                    .valid_for = std::chrono::hours(24)},
                                   &*ca, ec, &why, backend)
         : std::nullopt;
  if (!server) {
    error = "cannot make a throwaway CA: " + why;
    return false;
  }
  return write_file(dir / "ca.pem", ca->certificate_pem, error) &&
         write_file(dir / "ca.key", ca->private_key_pem, error) &&
         write_file(dir / "server.pem", server->certificate_pem, error) &&
         write_file(dir / "server.key", server->private_key_pem, error);
}

}  // namespace

bool prepare_certs(const std::string& requested, CertDir& certs, std::string& error,
                   const std::string& backend) {
  if (!requested.empty()) {
    certs.dir = requested;
    certs.origin = requested;
    if (!has_pki(certs.dir)) {
      error = "--certs " + requested + ": expected ca.pem, server.pem and server.key in it";
      return false;
    }
    return true;
  }
  const fs::path base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
  // mkdtemp(3) replaces the six X's with a unique name.
  std::string pattern = (base / "unitls-demo-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    error = "cannot create a temporary directory under " + base.string();
    return false;
  }
  certs.dir = pattern;
  certs.temporary = true;
  certs.origin = "throwaway CA in " + pattern + " (made in-process with " +
                 (backend.empty() ? std::string(unitls::default_backend()) : backend) + ")";
  return make_throwaway_pki(certs.dir, backend, error);
}
}  // namespace tool
