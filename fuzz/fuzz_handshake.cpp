// A real handshake between two unitls sockets, through a relay the fuzzer
// controls: it decides when each side steps and what each flight looks like
// on the way (cut, flipped, dropped, forged, replayed bytes), so that the
// mutations land deep in handshakes whose earlier messages were genuine.
//
// Input: variant byte (variant_from); a byte choosing the roles (bit 0: the
// backend under test is the server) and the other side's backend (the rest,
// modulo the compiled-in backends); then RelayWorld::step operations.
#include "fuzz_support.hpp"

using namespace unitls;
using namespace unitls::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const std::string& backend : backends_to_fuzz()) {
    InputScope scope;
    Input in(data, size);
    const Pairing p = pairing_from(in, backend);
    RelayWorld w(p.client_backend, p.server_backend, p.variant);

    for (int ops = 0; ops < 256 && !in.empty(); ++ops) w.step(in);

    // Two stacks that completed a handshake with each other agree on what
    // they negotiated, and name it the same way (IANA names).
    if (w.client().connected() && w.server().connected()) {
      SecureSocket& c = w.client().socket();
      SecureSocket& s = w.server().socket();
      if (c.protocol_version() != s.protocol_version() || c.cipher() != s.cipher() ||
          c.alpn_selected() != s.alpn_selected())
        violation("the two ends disagree on the connection: client " + c.protocol_version() + " " +
                  c.cipher() + " alpn '" + c.alpn_selected() + "', server " + s.protocol_version() +
                  " " + s.cipher() + " alpn '" + s.alpn_selected() + "'");
    }
  }
  return 0;
}
