// The fuzzer plays the client: its bytes reach a unitls server, between
// the server's calls, on every backend (fuzz_support.hpp, run_raw_peer).
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  unitls::fuzz::run_raw_peer(unitls::Role::server, data, size);
  return 0;
}
