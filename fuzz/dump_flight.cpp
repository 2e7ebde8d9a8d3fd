// dump_flight OUTDIR: runs one real handshake (then a little data and a
// bidirectional close) for every pair of compiled-in backends and both TLS
// versions, and writes what each side put on the wire, flight by flight:
//   OUTDIR/<client>-<server>-<12|13>-c<k>   the client's k-th flight
//   OUTDIR/<client>-<server>-<12|13>-s<k>   the server's k-th flight
// fuzz/make_corpus.py turns them into seed inputs, so that the corpora are
// generated from the stacks at hand rather than committed as binaries.
// dump_flight --backends: the compiled-in backends, one per line.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_support.hpp"

using namespace unitls;
using namespace unitls::fuzz;

namespace {

bool save(const std::string& path, const std::vector<std::byte>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR (an existing directory) | --backends\n", argv[0]);
    return 2;
  }
  // For script/fuzz: the backends this build can fuzz, one per line.
  if (std::string(argv[1]) == "--backends") {
    for (const std::string& b : all_backends()) std::printf("%s\n", b.c_str());
    return 0;
  }
  const std::string out = argv[1];
  int files = 0;
  for (const std::string& cb : all_backends()) {
    for (const std::string& sb : all_backends()) {
      for (bool tls12 : {true, false}) {
        Variant v;
        v.tls1_2_only = tls12;
        RelayWorld w(cb, sb, v);
        const std::string stem = out + "/" + cb + "-" + sb + (tls12 ? "-12-" : "-13-");
        int k = 0;
        auto flight = [&](RelayWorld::Dir d) {
          w.collect();
          auto& p = w.pending(d);
          if (p.empty()) return;
          const std::string path = stem + (d == RelayWorld::c2s ? "c" : "s") + std::to_string(k);
          if (!save(path, p)) {
            std::perror(path.c_str());
            std::exit(1);
          }
          ++files;
          w.deliver(d);
        };
        // Step by step, so that each flight is a file of its own.
        for (int round = 0; round < 8 && !(w.client().connected() && w.server().connected()); ++round, ++k) {
          if (!w.client().connected()) w.client().handshake();
          flight(RelayWorld::c2s);
          if (!w.server().connected()) w.server().handshake();
          flight(RelayWorld::s2c);
        }
        if (!(w.client().connected() && w.server().connected())) {
          std::fprintf(stderr, "dump_flight: %s client with %s server: the handshake failed\n",
                       cb.c_str(), sb.c_str());
          return 1;
        }
        // Application data and the close: records of the established connection.
        w.server().write(100);
        flight(RelayWorld::s2c);
        w.read(false, 16384);
        w.client().write(100);
        w.client().shutdown();
        flight(RelayWorld::c2s);
        ++k;
        w.read(true, 16384);
        w.read(true, 16384);
        w.server().shutdown();
        flight(RelayWorld::s2c);
      }
    }
  }
  std::printf("dump_flight: %d files in %s\n", files, out.c_str());
  return 0;
}
