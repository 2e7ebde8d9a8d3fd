// The demo's PKI: --certs DIR, a throwaway CA made with the openssl tool, or
// the build tree's test certificates.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>

#include "common.hpp"

extern char** environ;

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

std::optional<fs::path> find_program(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const fs::path candidate = fs::path(str(rest.substr(0, colon))) / str(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  }
  return std::nullopt;
}

// Runs a program without a shell (no quoting to get wrong), its output going
// to log. True when it exited 0.
bool run(const fs::path& program, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  std::string argv0 = program.string();
  argv.push_back(argv0.data());
  std::vector<std::string> copies = args;
  for (auto& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv0.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A throwaway CA and a "localhost" server certificate signed by it, ECDSA
// P-256 (every backend has it), valid one day.
bool make_throwaway_pki(const fs::path& openssl, const fs::path& dir, std::string& error) {
  const fs::path log = dir / "openssl.log";
  {
    std::ofstream ext(dir / "server.ext");
    ext << "basicConstraints=critical,CA:FALSE\n"
           "keyUsage=critical,digitalSignature\n"
           "extendedKeyUsage=serverAuth\n"
           "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    if (!ext) {
      error = "cannot write " + (dir / "server.ext").string();
      return false;
    }
  }
  std::random_device random;
  const std::string serial = "0x" + std::to_string(random()) + std::to_string(random());
  const auto p = [&](const char* name) { return (dir / name).string(); };
  const std::vector<std::vector<std::string>> steps = {
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       p("ca.key"), "-out", p("ca.pem"), "-days", "1", "-subj", "/CN=unitls demo CA", "-addext",
       "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
      {"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       p("server.key"), "-out", p("server.csr"), "-subj", "/CN=localhost"},
      {"x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
       "-set_serial", serial, "-days", "1", "-extfile", p("server.ext"), "-out", p("server.pem")},
  };
  for (const auto& step : steps) {
    if (!run(openssl, step, log)) {
      std::ifstream in(log);
      std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      error = "`openssl " + step[0] + "` failed while making a throwaway CA in " + dir.string() +
              (output.empty() ? std::string() : ":\n" + output);
      return false;
    }
  }
  return true;
}

}  // namespace

bool prepare_certs(const std::string& requested, CertDir& certs, std::string& error) {
  if (!requested.empty()) {
    certs.dir = requested;
    certs.origin = requested;
    if (!has_pki(certs.dir)) {
      error = "--certs " + requested + ": expected ca.pem, server.pem and server.key in it";
      return false;
    }
    return true;
  }
  if (const auto openssl = find_program("openssl")) {
    const fs::path base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
    std::string pattern = (base / "unitls-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      error = "cannot create a temporary directory under " + base.string();
      return false;
    }
    certs.dir = pattern;
    certs.temporary = true;
    certs.origin = "throwaway CA in " + pattern + " (made with " + openssl->string() + ")";
    return make_throwaway_pki(*openssl, certs.dir, error);
  }
  std::error_code ec;
  const fs::path built =
      fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / "tests" / "certs";
  if (!ec && has_pki(built)) {
    certs.dir = built;
    certs.origin = built.string() + " (the build's test PKI)";
    return true;
  }
  error =
      "the demo needs certificates: pass --certs DIR (with ca.pem, server.pem, server.key), "
      "or install the openssl command-line tool (apt-get install openssl) so a throwaway CA "
      "can be made";
  return false;
}
}  // namespace tool
