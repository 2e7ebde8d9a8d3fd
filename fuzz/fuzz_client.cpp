// The fuzzer plays the server: its bytes reach a unitls client, between
// the client's calls, on every backend (fuzz_support.hpp, run_raw_peer).
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  unitls::fuzz::run_raw_peer(unitls::Role::client, data, size);
  return 0;
}
