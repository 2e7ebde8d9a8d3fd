// shutdown() while it waits for the peer: two unitls sockets complete a real
// handshake through the relay and exchange data (deterministic set-up), one
// of them calls shutdown() (0: our close_notify is out), and from there the
// fuzzer drives both sides and the relay: the peer's data, its close_notify,
// its alerts, truncations and forged or damaged records reach the waiting
// side in any order.
//
// Input: variant byte (variant_from); a byte choosing the roles (bit 0: the
// side that closes first is the server; it runs the backend under test) and
// the other side's backend (the rest, modulo the compiled-in backends); then
// RelayWorld::step operations.
#include "fuzz_support.hpp"

using namespace unitls;
using namespace unitls::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const std::string& backend : backends_to_fuzz()) {
    InputScope scope;
    Input in(data, size);
    const Pairing p = pairing_from(in, backend);
    const bool closer_is_server = p.under_test_is_server;  // the closer runs the backend under test
    RelayWorld w(p.client_backend, p.server_backend, p.variant);

    if (!w.drive_handshake()) violation("a handshake between two unitls sockets failed");
    // Data both ways, so that TLS 1.3 tickets are read before the close.
    w.server().write(5);
    w.collect();
    w.deliver(RelayWorld::s2c);
    if (w.read(false, 100) != 5) violation("the client did not read the server's 5 bytes");
    w.client().write(5);
    w.collect();
    w.deliver(RelayWorld::c2s);
    if (w.read(true, 100) != 5) violation("the server did not read the client's 5 bytes");

    Checked& closer = w.side(closer_is_server);
    if (closer.shutdown() != 0) violation("the first shutdown() of an idle connection must return 0");
    w.collect();

    for (int ops = 0; ops < 256 && !in.empty(); ++ops) w.step(in);
  }
  return 0;
}
