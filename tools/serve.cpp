// `unitls server --www` and `unitls server --echo`: many connections at once,
// until --naccept N or SIGINT/SIGTERM, from one poll() loop over the
// listener, a signalfd and every connection's non-blocking socket. Each
// connection is an Endpoint (the driver of `unitls client`, `server` and
// `demo`), so it closes in the --close style exactly as the relay does.
//
// No client can hold the others up: nothing blocks, and each connection has
// a deadline (--timeout, default 10 s; see Server::advance). A connection
// that runs out in the handshake is dropped; one that runs out while open is
// closed in --close style and given one more period; one that runs out in
// the close is dropped.
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "endpoint.hpp"
#include "options.hpp"

namespace tool {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int default_timeout_ms = 10000;
// A request head larger than this is answered with 431 and closed.
constexpr std::size_t max_request = 16 * 1024;

// "127.0.0.1:40000" or "[::1]:40000".
std::string address_of(const sockaddr_storage& addr, socklen_t len) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, serv,
                    sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  const bool v6 = addr.ss_family == AF_INET6;
  return (v6 ? "[" : "") + std::string(host) + (v6 ? "]:" : ":") + serv;
}

struct Connection {
  unsigned number = 0;
  std::unique_ptr<Endpoint> endpoint;
  Clock::time_point deadline;
  short wanted = 0;  // what the endpoint waits for on its socket
  bool connected = false;
  bool closing = false;  // end_input() called: our close is under way
  std::string request;   // --www: the request head so far
  std::string about;     // --www: what the page says of the connection
};

class Server {
 public:
  Server(const CommandLine& options, unitls::Context& context, int listener)
      : options_(options),
        context_(context),
        listener_(listener),
        timeout_(options.timeout_ms > 0 ? options.timeout_ms : default_timeout_ms) {}

  ~Server() {
    if (listener_ >= 0) ::close(listener_);
    if (signals_ >= 0) ::close(signals_);
  }

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int run();

 private:
  void accept_all();
  void advance(Connection& c);
  void on_data(Connection& c, std::span<const std::byte> bytes);
  void answer_request(Connection& c);
  void expire(Connection& c);
  void stop();
  void close_listener();
  // Logs the end of c and counts it; the caller erases it.
  void report(const Connection& c);
  void report_cut(const Connection& c, const std::string& why);

  const CommandLine& options_;
  unitls::Context& context_;
  int listener_;
  int signals_ = -1;
  std::chrono::milliseconds timeout_;
  std::vector<std::unique_ptr<Connection>> connections_;
  unsigned accepted_ = 0;
  bool accept_paused_ = false;  // out of descriptors: wait for a connection to end
  bool stopping_ = false;
  unsigned clean_ = 0, truncated_ = 0, failed_ = 0;
};

void Server::close_listener() {
  if (listener_ >= 0) ::close(listener_);
  listener_ = -1;
}

void Server::accept_all() {
  while (listener_ >= 0) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int fd = ::accept4(listener_, reinterpret_cast<sockaddr*>(&addr), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) accept_paused_ = !connections_.empty();
      // EAGAIN: no more for now; ECONNABORTED and the like: that client only.
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    auto c = std::make_unique<Connection>();
    c->number = ++accepted_;
    c->deadline = Clock::now() + timeout_;
    Connection* self = c.get();
    auto tls = context_.wrap_fd(fd);  // owns fd from here
    const unitls::SecureSocket* socket = tls.get();
    const std::string from = address_of(addr, len);
    Endpoint::Events events;
    events.connected = [this, self, socket, from](const Facts& f) {
      self->connected = true;
      std::fprintf(stderr, "connection %u from %s: %s %s group=%s alpn=%s backend=%s\n",
                   self->number, from.c_str(), f.version.c_str(), f.cipher.c_str(),
                   f.group.empty() ? "-" : f.group.c_str(), f.alpn.empty() ? "-" : f.alpn.c_str(),
                   f.backend.c_str());
      if (options_.mode != ServeMode::www) return;
      const auto peer = socket->peer_certificate();
      const std::string sni = socket->requested_server_name();
      self->about = "connection: " + std::to_string(self->number) + " from " + from +
                    "\nbackend: " + f.backend + "\nprotocol: " + f.version +
                    "\ncipher suite: " + f.cipher + "\ngroup: " + (f.group.empty() ? "-" : f.group) +
                    "\nalpn: " + (f.alpn.empty() ? "-" : f.alpn) +
                    "\nsession resumed: " + (socket->session_reused() ? "yes" : "no") +
                    "\nserver name: " + (sni.empty() ? "-" : sni) +
                    "\nclient certificate: " + (peer ? peer->subject : std::string("none")) + "\n";
    };
    events.data = [this, self](std::span<const std::byte> bytes) { on_data(*self, bytes); };
    if (options_.trace) {
      events.step = [self](const Step& step) {
        std::fprintf(stderr, "trace %u: %s\n", self->number, trace_line(step).c_str());
      };
    }
    c->endpoint = std::make_unique<Endpoint>(std::move(tls), fd, options_.close, std::move(events));
    c->endpoint->accept_eof(options_.tls.no_require_close_notify);
    connections_.push_back(std::move(c));
    advance(*connections_.back());
    if (options_.naccept > 0 && accepted_ >= static_cast<unsigned long>(options_.naccept)) {
      close_listener();  // as s_server -naccept: the rest are refused
    }
  }
}

void Server::on_data(Connection& c, std::span<const std::byte> bytes) {
  if (options_.mode == ServeMode::echo) {
    if (!c.closing) c.endpoint->send(bytes);
    return;
  }
  if (c.closing) return;  // the page is out: the rest of a pipelined request is not read
  c.request.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (c.request.find("\r\n\r\n") != std::string::npos ||
      c.request.find("\n\n") != std::string::npos || c.request.size() > max_request) {
    answer_request(c);
  }
}

// The page of s_server -www, in our words: what the handshake settled. An
// HTTP/1.0 answer with no length: the close marks its end, as s_server's.
void Server::answer_request(Connection& c) {
  const std::size_t eol = c.request.find_first_of("\r\n");
  const std::string first_line = c.request.substr(0, eol);
  std::string response;
  if (c.request.size() > max_request && c.request.find("\n\n") == std::string::npos &&
      c.request.find("\r\n\r\n") == std::string::npos) {
    response = "HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n\r\n"
               "the request head is over 16 KiB\n";
  } else {
    response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
               "unitls server --www\n" + c.about + "request: " + first_line + "\n";
  }
  c.endpoint->send(std::as_bytes(std::span(response.data(), response.size())));
  c.endpoint->end_input();
  c.closing = true;
}

// Each stage has its own deadline, one --timeout from its start: the
// handshake, the request (--www) or the first data (--echo), and our close.
// Only an --echo connection that is open gets more time with each event (its
// client may talk for as long as it likes); anywhere else a client that
// trickles bytes gains nothing.
void Server::advance(Connection& c) {
  const bool was_connected = c.connected, was_closing = c.closing;
  c.wanted = c.endpoint->advance();
  const bool next_stage = c.connected != was_connected || c.closing != was_closing;
  const bool talking = options_.mode == ServeMode::echo && c.connected && !c.closing;
  if (next_stage || talking) c.deadline = Clock::now() + timeout_;
}

void Server::report(const Connection& c) {
  const Endpoint& e = *c.endpoint;
  switch (e.outcome()) {
    case Endpoint::Outcome::clean:
    case Endpoint::Outcome::running:
      // "clean" in the summary: the close went as --close says, which for
      // quiet and drop is a truncation on purpose.
      ++clean_;
      if (options_.close == CloseStyle::quiet || options_.close == CloseStyle::drop) {
        std::fprintf(stderr, "connection %u: closed without close_notify (--close %s)\n", c.number,
                     str(name_of(options_.close)).c_str());
      } else {
        std::fprintf(stderr, "connection %u: closed cleanly (%s)\n", c.number,
                     str(name_of(options_.close)).c_str());
      }
      return;
    case Endpoint::Outcome::ended:
      ++truncated_;
      std::fprintf(stderr,
                   "connection %u: peer ended without close_notify (accepted: "
                   "--no-require-close-notify)\n",
                   c.number);
      return;
    case Endpoint::Outcome::truncated:
      if (c.connected) {
        ++truncated_;
        std::fprintf(stderr, "connection %u: peer closed without close_notify (truncation)\n",
                     c.number);
        return;
      }
      break;
    case Endpoint::Outcome::failed:
      break;
  }
  ++failed_;
  std::string why = e.failure();
  if (!e.verification_error().empty()) why += "; Verification error: " + e.verification_error();
  std::fprintf(stderr, "connection %u: %s\n", c.number, why.c_str());
}

void Server::report_cut(const Connection& c, const std::string& why) {
  ++failed_;
  std::fprintf(stderr, "connection %u: %s; socket closed\n", c.number, why.c_str());
}

// c's deadline has passed: close what is open, drop what is not.
void Server::expire(Connection& c) {
  if (c.connected && !c.closing) {
    std::fprintf(stderr, "connection %u: nothing for %lld ms; closing (%s)\n", c.number,
                 static_cast<long long>(timeout_.count()), str(name_of(options_.close)).c_str());
    c.endpoint->end_input();
    c.closing = true;
    advance(c);
    return;
  }
  const std::string where = c.connected ? "in the close" : "in the handshake";
  report_cut(c, "timed out " + where + " (" + std::to_string(timeout_.count()) + " ms)");
  c.endpoint.reset();  // closes the socket: no close_notify from a connection that is not ready
}

// SIGINT/SIGTERM: no new connections; the open ones are closed in --close
// style (bounded by the timeout as ever), those still in the handshake cut.
void Server::stop() {
  stopping_ = true;
  close_listener();
  for (auto& c : connections_) {
    if (!c->endpoint) continue;
    if (!c->connected) {
      report_cut(*c, "stopped in the handshake");
      c->endpoint.reset();
    } else if (!c->closing) {
      c->endpoint->end_input();
      c->closing = true;
      advance(*c);
    }
  }
}

int Server::run() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  signals_ = ::signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signals_ < 0) {
    std::fprintf(stderr, "unitls server: signalfd: %s\n", std::strerror(errno));
    return 1;
  }
  set_nonblocking(listener_);

  std::vector<pollfd> fds;
  for (;;) {
    // Connections that are over (or were cut) leave; a descriptor is free again.
    std::erase_if(connections_, [this](const std::unique_ptr<Connection>& c) {
      if (!c->endpoint) return true;
      if (c->endpoint->outcome() == Endpoint::Outcome::running) return false;
      report(*c);
      accept_paused_ = false;
      return true;
    });
    if (listener_ < 0 && connections_.empty()) break;

    fds.clear();
    fds.push_back({signals_, POLLIN, 0});
    fds.push_back({accept_paused_ ? -1 : listener_, POLLIN, 0});
    auto next = Clock::time_point::max();
    for (const auto& c : connections_) {
      fds.push_back({c->endpoint->fd(), c->wanted, 0});
      next = std::min(next, c->deadline);
    }
    int wait_ms = -1;
    if (next != Clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
      wait_ms = static_cast<int>(std::max<long long>(0, left.count() + 1));
    }
    const int ready = ::poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0 && errno != EINTR) {
      std::fprintf(stderr, "unitls server: poll: %s\n", std::strerror(errno));
      return 1;
    }

    if (fds[0].revents != 0) {
      signalfd_siginfo info;
      while (::read(signals_, &info, sizeof info) == sizeof info) {
        if (stopping_) {  // a second signal: cut everything, now
          std::fprintf(stderr, "unitls server: signal %u again: closing every socket\n", info.ssi_signo);
          for (auto& c : connections_) {
            if (c->endpoint && c->endpoint->outcome() == Endpoint::Outcome::running) {
              report_cut(*c, "stopped");
              c->endpoint.reset();
            }
          }
        } else {
          std::fprintf(stderr, "unitls server: signal %u: stopping\n", info.ssi_signo);
          stop();
        }
      }
    }
    const auto now = Clock::now();
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = *connections_[i];
      if (!c.endpoint || c.endpoint->outcome() != Endpoint::Outcome::running) continue;
      if (fds[i + 2].revents != 0) advance(c);
      else if (now >= c.deadline) expire(c);
    }
    if (listener_ >= 0 && fds[1].revents != 0) accept_all();
  }

  std::fprintf(stderr, "served %u connections: %u clean, %u truncated, %u failed\n", accepted_,
               clean_, truncated_, failed_);
  return 0;
}

}  // namespace

int serve(const CommandLine& options, unitls::Context& context, int listener) {
  Server server(options, context, listener);
  return server.run();
}

}  // namespace tool
