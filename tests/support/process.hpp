// Child processes for the test suites that drive programs nobody here wrote
// (openssl s_server, gnutls-cli, python3, ...).
//
// A ChildProcess is spawned with posix_spawn; its stdout and stderr go to
// unlinked temporary files (a file never fills up, so a child can never block
// on its output while we wait for something else), and its stdin is one end
// of a socket pair (so writing to a child that died is an EPIPE, never a
// SIGPIPE for the test program). The destructor kills (SIGKILL) a child that
// still runs and reaps it: a test that fails half-way leaves no process
// behind. Every wait takes a bound.
//
// Header-only so that each suite takes it by #include alone.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "doctest.hpp"

extern char** environ;

namespace unitls::test {

class ChildProcess {
 public:
  struct Options {
    std::vector<std::string> argv;  // argv[0] is the program's full path
    // A descriptor the child inherits as its fd 3 (e.g. a listening socket);
    // -1 for none.
    int pass_as_fd3 = -1;
  };

  // Starts the program. REQUIREs that it could be spawned.
  explicit ChildProcess(Options options) : argv_(std::move(options.argv)) {
    REQUIRE(!argv_.empty());
    out_ = temp_file();
    err_ = temp_file();
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    stdin_ = pair[0];
    const int child_stdin = pair[1];

    // dup2 onto another number clears close-on-exec in the child; a source
    // that already is fd 3 is moved out of the way first.
    int fd3 = options.pass_as_fd3;
    int fd3_copy = -1;
    if (fd3 == 3) {
      fd3_copy = ::fcntl(fd3, F_DUPFD_CLOEXEC, 10);
      REQUIRE(fd3_copy >= 0);
      fd3 = fd3_copy;
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_stdin, 0);
    posix_spawn_file_actions_adddup2(&actions, out_, 1);
    posix_spawn_file_actions_adddup2(&actions, err_, 2);
    if (fd3 >= 0) posix_spawn_file_actions_adddup2(&actions, fd3, 3);

    // The child starts with default signal dispositions and an empty mask,
    // whatever the test program set up.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(child_stdin);
    if (fd3_copy >= 0) ::close(fd3_copy);
    if (rc != 0) {
      pid_ = -1;
      close_fds();
      FAIL("cannot start " << argv_[0] << ": " << std::strerror(rc));
    }
  }

  ~ChildProcess() {
    kill();
    close_fds();
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Writes all of data to the child's stdin. False when the child is gone.
  bool write_stdin(std::string_view data) {
    while (!data.empty() && stdin_ >= 0) {
      const ssize_t n = ::send(stdin_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return data.empty();
  }

  // The child reads end of file on its stdin.
  void close_stdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }

  // SIGKILL, then reap. No-op once the child has been reaped.
  void kill() {
    if (status_ || pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = status;
  }

  // Waits at most `limit` for the child to end; its exit status (see
  // exit_code()), or nullopt when it still runs.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (poll_exit()) return exit_code();
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Whether the child has ended (reaps it if so).
  bool exited() { return poll_exit(); }

  // The exit code of an ended child, 128 + N for one killed by signal N, -1
  // while it runs.
  int exit_code() const {
    if (!status_) return -1;
    if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
    if (WIFSIGNALED(*status_)) return 128 + WTERMSIG(*status_);
    return -1;
  }

  // Everything the child wrote to stdout / stderr so far.
  std::string out() const { return read_all(out_); }
  std::string err() const { return read_all(err_); }

  // Waits at most `limit` for stdout to contain text. False if the time runs
  // out or the child ends without writing it.
  bool wait_for_output(std::string_view text, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (out().find(text) != std::string::npos) return true;
      if (exited()) return out().find(text) != std::string::npos;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // The command line, how it ended and what it printed, for failure messages.
  std::string report() const {
    std::ostringstream os;
    os << "$";
    for (const auto& a : argv_) os << " " << a;
    os << "\n  " << (status_ ? "exit status " + std::to_string(exit_code()) : std::string("running"));
    os << "\n  --- stdout ---\n" << tail(out()) << "\n  --- stderr ---\n" << tail(err());
    return os.str();
  }

 private:
  static int temp_file() {
    const char* dir = std::getenv("TMPDIR");
    std::string path = std::string(dir && *dir ? dir : "/tmp") + "/unitls-peer-XXXXXX";
    const int fd = ::mkostemp(path.data(), O_CLOEXEC);
    REQUIRE_MESSAGE(fd >= 0, "mkstemp(" << path << "): " << std::strerror(errno));
    ::unlink(path.c_str());
    return fd;
  }

  static std::string read_all(int fd) {
    std::string text;
    char buf[4096];
    off_t offset = 0;
    for (;;) {
      const ssize_t n = ::pread(fd, buf, sizeof buf, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      offset += n;
    }
    return text;
  }

  // The last few KiB: enough to see why, short enough to read.
  static std::string tail(const std::string& text) {
    constexpr std::size_t keep = 3000;
    return text.size() <= keep ? text : "[...]" + text.substr(text.size() - keep);
  }

  bool poll_exit() {
    if (status_) return true;
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) status_ = status;
    return status_.has_value();
  }

  void close_fds() {
    close_stdin();
    for (int* fd : {&out_, &err_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  std::optional<int> status_;
  int stdin_ = -1;
  int out_ = -1;
  int err_ = -1;
};

}  // namespace unitls::test
