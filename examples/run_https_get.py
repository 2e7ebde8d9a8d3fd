#!/usr/bin/env python3
"""Runs examples/https_get against a `unitls server` of every backend, RUNS times each.

usage: run_https_get.py HTTPS_GET UNITLS CERTS_DIR BACKEND... (env RUNS, default 5)
Each server answers one connection with a canned HTTP/1.0 response and closes
with close_notify (--close bidi); https_get must print the body and exit 0
(a clean close), every time.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from unitls_server import UnitlsServer  # noqa: E402

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from unitls\n"


def run_once(https_get, unitls, certs, backend):
    with UnitlsServer(unitls, backend, os.path.join(certs, "server.pem"),
                      os.path.join(certs, "server.key"), RESPONSE) as server:
        if server.problem:
            return server.problem
        client = subprocess.run(
            [https_get, "127.0.0.1", server.port, os.path.join(certs, "ca.pem")],
            capture_output=True, timeout=30)
        if client.returncode != 0:
            return f"https_get exit {client.returncode}: {client.stderr.decode().strip()}"
        if b"hello from unitls" not in client.stdout:
            return f"https_get printed {client.stdout!r}"
        return server.finish()


def main():
    https_get, unitls, certs, *backends = sys.argv[1:]
    runs = int(os.environ.get("RUNS", "5"))
    failures = 0
    for backend in backends:
        for i in range(runs):
            problem = run_once(https_get, unitls, certs, backend)
            status = "ok" if problem is None else f"FAILED: {problem}"
            print(f"https_get against a {backend} server, run {i + 1}/{runs}: {status}")
            failures += problem is not None
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
