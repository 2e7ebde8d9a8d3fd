// A session resumes only under the server name it was made for, TLS 1.3
// included (docs/contract.md, "Server names"): `openssl s_client -sess_in`
// offers a session it saved under one -servername to a unitls server under
// another, which a unitls client never does (its cache is keyed by
// server_name). With additional_credentials the other name has another
// certificate: resuming would serve that name with the first one's
// authentication.
#include <memory>
#include <string>

#include <unitls/unitls.hpp>

#include "doctest.hpp"
#include "harness.hpp"
#include "peer_support.hpp"
#include "process.hpp"
#include "sockets.hpp"

namespace unitls::test::peers {
namespace {

// One s_client connection with this -servername, reading the session from
// sess_in when it is set and saving it to sess_out; whether the unitls side
// resumed it.
bool connect(Context& ctx, const Target& t, const std::string& openssl, const std::string& name,
             const std::string& sess_in, const std::string& sess_out) {
  const Listener listener = listen_loopback();
  ChildProcess::Options options{{openssl, "s_client", "-connect", "127.0.0.1:" + std::to_string(listener.port),
                                 "-CAfile", certs_dir() + "/ca.pem", "-servername", name,
                                 t.version == Version::tls1_2 ? "-tls1_2" : "-tls1_3", "-brief", "-nocommands",
                                 "-sess_out", sess_out}};
  if (!sess_in.empty()) {
    options.argv.push_back("-sess_in");
    options.argv.push_back(sess_in);
  }
  ChildProcess client(options);
  REQUIRE(client.write_stdin("hello\n"));
  Fd fd = accept_from(listener, client);
  REQUIRE_MESSAGE(fd.get() >= 0, client.report());
  bool resumed = false;
  {
    Watchdog dog;
    dog.watch(fd.get());
    auto s = ctx.wrap(make_fd_transport(fd.get(), false));
    REQUIRE(s != nullptr);
    blocking_handshake(*s);
    resumed = s->session_reused();
    CHECK(s->requested_server_name() == name);
    CHECK(blocking_read_exact(*s, 6) == "hello\n");
    blocking_write(*s, "bye\n");  // s_client has read the tickets once it prints this
    REQUIRE(client.wait_for_output("bye\n", peer_patience));
    client.close_stdin();
    CHECK(s->close(std::chrono::milliseconds(2000)) == SecureSocket::CloseResult::clean);
    CHECK_FALSE(dog.fired());
  }
  expect_exit_0(client);
  return resumed;
}

}  // namespace

TEST_CASE("a unitls server resumes openssl s_client's session under its own name only, TLS 1.3 included") {
  const std::string openssl = peer_program("UNITLS_PEER_OPENSSL");
  if (skip_unless_installed(openssl, "openssl")) return;
  for_each_target([&](const Target& t) {
    TempDir dir;
    Config c = server_config(t.version);
    c.backend = t.backend;
    c.additional_credentials = {
        {.certificate_file = cert_path("wrong_name.pem"), .private_key_file = cert_path("wrong_name.key")}};
    std::error_code ec;
    std::string why;
    auto ctx = Context::create(c, ec, &why);
    REQUIRE_MESSAGE(ctx, why);
    CHECK_FALSE(connect(*ctx, t, openssl, "wrong.example", "", dir.file("first")));
    CHECK(connect(*ctx, t, openssl, "wrong.example", dir.file("first"), dir.file("same")));  // the control
    CHECK_FALSE(connect(*ctx, t, openssl, "localhost", dir.file("first"), dir.file("other")));
  });
}

}  // namespace unitls::test::peers
