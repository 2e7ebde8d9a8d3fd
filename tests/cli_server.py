#!/usr/bin/env python3
"""`unitls server --www`, `--echo`, `--naccept`, SIGTERM and the one-line usage
errors, on every backend (issue 14).

usage: cli_server.py UNITLS CERTS_DIR BACKEND...
For each backend: usage errors are one line and exit 2; --naccept 3 serves
three clients (Python's ssl module, each closing with unwrap()) and exits 0 by
itself, refusing a fourth; --echo serves 10 clients at once (--bind
localhost); --www answers curl 20 times in a row and 20 times 5 at once, every
connection closed cleanly; a silent client and one that trickles its
ClientHello do not hold up curl and are cut at --timeout; SIGTERM closes an open connection with our close_notify and the
server exits 0. curl missing: its checks are skipped, and said so.
"""
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

from unitls_server import main_per_backend

CURL = shutil.which("curl")


class Server:
    """A `unitls server 0 ...` that serves many connections."""

    def __init__(self, unitls, certs, backend, *extra):
        self.certs = certs
        self.process = subprocess.Popen(
            [unitls, "server", "0", "--backend", backend, "--cert", os.path.join(certs, "server.pem"),
             "--key", os.path.join(certs, "server.key"), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        line = self.process.stderr.readline().decode()
        match = re.search(r"listening on (127\.0\.0\.1|\[::1\]):(\d+)", line)
        self.port = int(match.group(2)) if match else None
        self.problem = None if match else f"server did not listen: {line!r}"
        self.log = ""

    def finish(self, timeout=30):
        """None, or why the server did not exit 0; self.log is its stderr."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self.log = self.process.stderr.read().decode()
            return f"server still running after {timeout} s:\n{self.log}"
        self.log = self.process.stderr.read().decode()
        return None if code == 0 else f"server exit {code}:\n{self.log}"

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.finish()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def tls_client(certs, port, host="127.0.0.1"):
    context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    sock = socket.create_connection((host, port), timeout=20)
    return context.wrap_socket(sock, server_hostname="localhost")


def echo_once(certs, port, text, host="127.0.0.1"):
    """None, or what went wrong: text out, text back, close_notify both ways."""
    with tls_client(certs, port, host) as t:
        t.sendall(text)
        got = b""
        while len(got) < len(text):
            chunk = t.recv(65536)
            if not chunk:
                return f"echo cut after {len(got)} of {len(text)} bytes"
            got += chunk
        if got != text:
            return "the echo differs from what was sent"
        t.unwrap()  # our close_notify, then the server's
    return None


def clean_summary(log, count):
    want = f"served {count} connections: {count} clean, 0 truncated, 0 failed"
    return None if want in log else f"expected '{want}':\n{log}"


def check_usage_errors(unitls, certs):
    server = [unitls, "server", "0", "--cert", os.path.join(certs, "server.pem"), "--key",
              os.path.join(certs, "server.key")]
    for args, line in [
        ([unitls, "--x"], "unitls: unknown option --x; see unitls --help"),
        ([unitls, "client", "--x"], "unitls client: unknown option --x; see unitls client --help"),
        ([unitls, "client", "localhost:1", "--bind", "x"],
         "unitls client: --bind is for the server; see unitls client --help"),
        (server + ["--naccept"], "unitls server: --naccept needs a value (N); see unitls server --help"),
        (server + ["--www", "--echo"],
         "unitls server: --www and --echo exclude each other; see unitls server --help"),
        (server + ["--naccept", "2"], "unitls server: the stdin relay serves one connection; "
                                      "--naccept N needs --www or --echo; see unitls server --help"),
    ]:
        run = subprocess.run(args, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        if run.returncode != 2 or run.stderr.decode() != line + "\n" or run.stdout:
            return f"{' '.join(args[1:])}: exit {run.returncode}, stderr {run.stderr.decode()!r}"
    return None


def check_naccept(unitls, certs, backend):
    server = Server(unitls, certs, backend, "--echo", "--naccept", "3")
    try:
        if server.problem:
            return server.problem
        for i in range(3):
            if problem := echo_once(certs, server.port, b"client %d\n" % i):
                return f"--naccept 3, client {i + 1}: {problem}"
        if problem := server.finish():
            return f"--naccept 3: {problem}"
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
            return "--naccept 3: a fourth connection was accepted"
        except ConnectionRefusedError:
            pass
        return clean_summary(server.log, 3)
    finally:
        server.kill()


def check_echo_concurrent(unitls, certs, backend):
    server = Server(unitls, certs, backend, "--echo", "--bind", "localhost")
    try:
        if server.problem:
            return server.problem
        host = "localhost"
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            texts = [(b"%d " % i) * 20000 for i in range(10)]
            problems = [p for p in pool.map(lambda t: echo_once(certs, server.port, t, host), texts) if p]
        if problems:
            server.stop()
            return f"--echo, 10 at once: {problems[0]}\n{server.log}"
        if problem := server.stop():
            return f"--echo: {problem}"
        return clean_summary(server.log, 10)
    finally:
        server.kill()


def curl_page(certs, port):
    run = subprocess.run([CURL, "--silent", "--show-error", "--max-time", "20", "--cacert",
                          os.path.join(certs, "ca.pem"), f"https://localhost:{port}/page"],
                         capture_output=True, timeout=30)
    if run.returncode != 0:
        return None, f"curl exit {run.returncode}: {run.stderr.decode().strip()}"
    return run.stdout.decode(), None


def check_www(unitls, certs, backend):
    server = Server(unitls, certs, backend, "--www")
    try:
        if server.problem:
            return server.problem
        for i in range(20):
            page, problem = curl_page(certs, server.port)
            if problem:
                return f"--www, curl {i + 1} of 20 in a row: {problem}"
            for line in ["unitls server --www", f"backend: {backend}", "server name: localhost",
                         "client certificate: none", "request: GET /page HTTP/1.1"]:
                if line not in page.splitlines():
                    return f"--www: no '{line}' in the page:\n{page}"
        with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
            results = list(pool.map(lambda _: curl_page(certs, server.port), range(20)))
        problems = [p for _, p in results if p]
        if problems:
            return f"--www, curl 20 times 5 at once: {problems[0]}"
        if problem := server.stop():
            return f"--www: {problem}"
        return clean_summary(server.log, 40)
    finally:
        server.kill()


def check_slow_clients(unitls, certs, backend):
    """A silent client and one that trickles a byte of its ClientHello every
    200 ms: neither holds up curl, and both are cut one --timeout after they
    connected (the trickle buys no time)."""
    server = Server(unitls, certs, backend, "--www", "--timeout", "1500")
    try:
        if server.problem:
            return server.problem
        hello = bytes.fromhex("16030100c8010000c40303") + bytes(32)
        with socket.create_connection(("127.0.0.1", server.port)) as silent, \
                socket.create_connection(("127.0.0.1", server.port)) as trickle:
            time.sleep(0.2)  # accepted in this order: 1 silent, 2 trickle
            start = time.monotonic()
            _, problem = curl_page(certs, server.port)
            if problem:
                return f"--www with slow clients: {problem}"
            if time.monotonic() - start > 1.2:
                return "--www: curl waited for the slow clients"
            try:
                for byte in hello:
                    trickle.sendall(bytes([byte]))
                    time.sleep(0.2)
                    if time.monotonic() - start > 4:
                        return "the trickling client was not cut at --timeout"
            except OSError:
                pass  # cut
        if problem := server.stop():
            return problem
        for n in (1, 2):
            if f"connection {n}: timed out in the handshake (1500 ms); socket closed" not in server.log:
                return f"slow client {n} was not cut at --timeout:\n{server.log}"
        if "served 3 connections: 1 clean, 0 truncated, 2 failed" not in server.log:
            return f"unexpected summary:\n{server.log}"
        return None
    finally:
        server.kill()


def check_sigterm(unitls, certs, backend):
    server = Server(unitls, certs, backend, "--echo")
    try:
        if server.problem:
            return server.problem
        with tls_client(certs, server.port) as t:
            t.sendall(b"hello")
            if t.recv(5) != b"hello":
                return "SIGTERM: no echo"
            server.process.send_signal(signal.SIGTERM)
            if t.recv(5) != b"":  # b"": the server's close_notify
                return "SIGTERM: data instead of the server's close_notify"
            t.unwrap()  # ours, as the answer
        if problem := server.finish():
            return f"SIGTERM: {problem}"
        if "unitls server: signal 15: stopping" not in server.log:
            return f"SIGTERM: not announced:\n{server.log}"
        return clean_summary(server.log, 1)
    finally:
        server.kill()


def check(unitls, certs, backend):
    checks = [check_naccept, check_echo_concurrent, check_sigterm]
    if CURL:
        checks += [check_www, check_slow_clients]
    else:
        print("curl is not installed: --www with curl skipped")
    problem = check_usage_errors(unitls, certs)
    for c in checks:
        if problem:
            break
        problem = c(unitls, certs, backend)
    return problem


if __name__ == "__main__":
    sys.exit(main_per_backend(check, "unitls server --www/--echo/--naccept/SIGTERM"))
