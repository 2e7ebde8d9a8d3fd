#!/usr/bin/env python3
"""`unitls client/server --keylogfile` and $SSLKEYLOGFILE on every backend (issue 12).

usage: cli_keylog.py UNITLS CERTS_DIR BACKEND...
A `unitls client` and a `unitls server` of the same backend:
  - with --keylogfile each writes the connection's NSS key log lines to its
    file, created 0600; both files hold the same lines (TLS 1.3: the five
    secrets; TLS 1.2, mbedTLS's only version: CLIENT_RANDOM), each once;
  - with SSLKEYLOGFILE set and no flag, the client writes the same lines
    there, each once: the library (GnuTLS would on its own) writes nothing
    of its own to $SSLKEYLOGFILE, only the program does;
  - with --keylogfile and SSLKEYLOGFILE both, the lines go to the flag's
    file and $SSLKEYLOGFILE stays untouched.
"""
import os
import re
import stat
import subprocess
import sys
import tempfile

from unitls_server import UnitlsServer

LINE = re.compile(r"^(CLIENT_RANDOM|CLIENT_HANDSHAKE_TRAFFIC_SECRET|SERVER_HANDSHAKE_TRAFFIC_SECRET|"
                  r"CLIENT_TRAFFIC_SECRET_0|SERVER_TRAFFIC_SECRET_0|EXPORTER_SECRET) "
                  r"[0-9a-f]{64} [0-9a-f]{64,96}$")
TLS13_LABELS = ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"]


def connect(unitls, certs, backend, client_args=(), server_args=(), client_env=None):
    env = {k: v for k, v in os.environ.items() if k != "SSLKEYLOGFILE"}
    with UnitlsServer(unitls, backend, os.path.join(certs, "server.pem"),
                      os.path.join(certs, "server.key"), b"hi\n", extra=list(server_args),
                      env=env) as server:
        if server.problem:
            return server.problem
        client = subprocess.run(
            [unitls, "client", "localhost:" + server.port, "--backend", backend, "--cafile",
             os.path.join(certs, "ca.pem"), "--timeout", "10000", *client_args],
            input=b"", capture_output=True, timeout=30, env={**env, **(client_env or {})})
        if client.returncode != 0:
            return f"client exit {client.returncode}: {client.stderr.decode().strip()}"
        return server.finish()


def key_log(path, backend, tls12=False):
    """The file's lines, or why they are not a key log of one connection."""
    if not os.path.exists(path):
        return None, f"{path} was not written"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode != 0o600:
        return None, f"{path} has mode {mode:o}, not 600"
    lines = open(path).read().splitlines()
    bad = [l for l in lines if not LINE.match(l)]
    if bad:
        return None, f"{path}: not NSS key log lines: {bad}"
    labels = [l.split()[0] for l in lines]
    want = ["CLIENT_RANDOM"] if backend == "mbedtls" or tls12 else TLS13_LABELS
    if labels != want:
        return None, f"{path}: labels {labels}, not {want} (each once)"
    return lines, None


# A backend that declares it cannot log TLS 1.3 secrets (wolfSSL built
# without HAVE_SECRET_CALLBACK) refuses a key log with TLS 1.3 allowed,
# naming the limit: its checks run pinned to TLS 1.2.
TLS13_REFUSED = "cannot log TLS 1.3 secrets"


def check(unitls, certs, backend, tmp):
    def path(name):
        return os.path.join(tmp, f"{backend}-{name}")

    # --keylogfile on both sides.
    pin = []
    problem = connect(unitls, certs, backend, client_args=["--keylogfile", path("client")],
                      server_args=["--keylogfile", path("server")])
    if problem and TLS13_REFUSED in problem:
        print(f"key log of the command line, {backend}: TLS 1.3 refused as declared, TLS 1.2 checked")
        pin = ["--tls1_2"]
        for name in ("client", "server"):
            if os.path.exists(path(name)):
                os.remove(path(name))
        problem = connect(unitls, certs, backend, client_args=["--keylogfile", path("client"), *pin],
                          server_args=["--keylogfile", path("server"), *pin])
    if problem:
        return f"--keylogfile: {problem}"
    client_lines, problem = key_log(path("client"), backend, bool(pin))
    if problem:
        return problem
    server_lines, problem = key_log(path("server"), backend, bool(pin))
    if problem:
        return problem
    if client_lines != server_lines:
        return f"client and server logged different lines:\n{client_lines}\n{server_lines}"

    # $SSLKEYLOGFILE alone: the program writes there, the library adds nothing.
    problem = connect(unitls, certs, backend, client_args=pin, server_args=pin,
                      client_env={"SSLKEYLOGFILE": path("env")})
    if problem:
        return f"SSLKEYLOGFILE: {problem}"
    _, problem = key_log(path("env"), backend, bool(pin))
    if problem:
        return f"SSLKEYLOGFILE: {problem}"

    # Both: the flag wins, and nothing touches $SSLKEYLOGFILE.
    problem = connect(unitls, certs, backend, client_args=["--keylogfile", path("flag"), *pin],
                      server_args=pin, client_env={"SSLKEYLOGFILE": path("ignored")})
    if problem:
        return f"--keylogfile and SSLKEYLOGFILE: {problem}"
    _, problem = key_log(path("flag"), backend, bool(pin))
    if problem:
        return f"--keylogfile and SSLKEYLOGFILE: {problem}"
    if os.path.exists(path("ignored")):
        return f"$SSLKEYLOGFILE was written although --keylogfile was given:\n{open(path('ignored')).read()}"
    return None


def main():
    unitls, certs, *backends = sys.argv[1:]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            problem = check(unitls, certs, backend, tmp)
            print(f"key log of the command line, {backend}: {'ok' if problem is None else 'FAILED: ' + problem}")
            failures += problem is not None
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
