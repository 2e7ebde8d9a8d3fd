// A program built against an installed unitls, the way a user would build it:
//   c++ -std=c++20 consumer.cpp $(pkg-config --cflags --libs unitls)
// script/check-install runs it with the test PKI directory as argv[1]. It
// exits 0 only if a handshake and a bidirectional close over the in-memory
// pair went as docs/contract.md says.
#include <unitls/unitls.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace {

int failures = 0;

void check(bool ok, const char* what, const unitls::SecureSocket& s) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "consumer: FAILED %s (last_error %s, flags %u)\n", what,
               s.last_error().message().c_str(), s.get_shutdown());
}

bool wants_io(const unitls::SecureSocket& s) {
  return s.last_error() == unitls::errc::want_read || s.last_error() == unitls::errc::want_write;
}

std::unique_ptr<unitls::Context> context(const unitls::Config& config) {
  std::error_code ec;
  std::string message;
  auto ctx = unitls::Context::create(config, ec, &message);
  if (!ctx) std::fprintf(stderr, "consumer: Context::create: %s\n", message.c_str());
  return ctx;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer CERT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];

  std::printf("unitls %.*s; backends:", static_cast<int>(unitls::version.size()),
              unitls::version.data());
  for (std::string_view b : unitls::available_backends()) {
    std::printf(" %.*s%s", static_cast<int>(b.size()), b.data(),
                b == unitls::default_backend() ? " (default)" : "");
  }
  std::printf("\n");

  unitls::Config server_config;
  server_config.role = unitls::Role::server;
  server_config.certificate_file = dir + "/server.pem";
  server_config.private_key_file = dir + "/server.key";
  unitls::Config client_config;
  client_config.ca_file = dir + "/ca.pem";
  client_config.server_name = "localhost";

  auto server_ctx = context(server_config);
  auto client_ctx = context(client_config);
  if (!server_ctx || !client_ctx) return 1;

  unitls::MemoryPair pair = unitls::make_memory_pair();
  auto client = client_ctx->wrap(std::move(pair.client));
  auto server = server_ctx->wrap(std::move(pair.server));

  // The memory pair never blocks: step both sides until both are done.
  int c = 0, s = 0;
  for (int round = 0; round < 50 && (c != 1 || s != 1); ++round) {
    if (c != 1 && (c = client->handshake()) != 1 && !wants_io(*client)) break;
    if (s != 1 && (s = server->handshake()) != 1 && !wants_io(*server)) break;
  }
  check(c == 1, "client handshake", *client);
  check(s == 1, "server handshake", *server);
  if (failures != 0) return 1;
  std::printf("handshake: %s %s\n", client->protocol_version().c_str(), client->cipher().c_str());

  check(client->write(std::string_view("ping")) == 4, "client write", *client);
  std::string got;
  check(server->read(got) == 4 && got == "ping", "server read", *server);

  using unitls::received_shutdown;
  using unitls::sent_shutdown;
  check(client->shutdown() == 0 && client->get_shutdown() == sent_shutdown,
        "client shutdown() == 0, SENT", *client);
  check(server->read(got) == 0 && server->last_error() == unitls::errc::zero_return &&
            server->get_shutdown() == received_shutdown,
        "server read() == 0, zero_return, RECEIVED", *server);
  check(server->shutdown() == 1 && server->get_shutdown() == (sent_shutdown | received_shutdown),
        "server shutdown() == 1, SENT|RECEIVED", *server);
  check(client->shutdown() == 1 && client->get_shutdown() == (sent_shutdown | received_shutdown),
        "client shutdown() == 1, SENT|RECEIVED", *client);

  std::printf("shutdown: %s\n", failures == 0 ? "per contract" : "NOT per contract");
  return failures == 0 ? 0 : 1;
}
