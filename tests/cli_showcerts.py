#!/usr/bin/env python3
"""`unitls client --showcerts` on every backend (issue 12).

usage: cli_showcerts.py UNITLS CERTS_DIR BACKEND...
A `unitls server` of the same backend sends server_chain.pem (the leaf, then
the CA); the client must print "Verification: OK" and the chain as sent, with
the facts the openssl command line reads from the same files; with
--no-verify there is no "Verification: OK".
"""
import os
import subprocess
import sys

from unitls_server import UnitlsServer


def openssl(pem, option):
    out = subprocess.run(["openssl", "x509", "-noout", *option.split(), "-in", pem],
                         capture_output=True, check=True, text=True).stdout.strip()
    return out.split("=", 1)[1]


def fingerprint(pem):
    return openssl(pem, "-fingerprint -sha256").replace(":", "").lower()


def run_once(unitls, certs, backend, verify):
    with UnitlsServer(unitls, backend, os.path.join(certs, "server_chain.pem"),
                      os.path.join(certs, "server.key"), b"hello\n") as server:
        if server.problem:
            return server.problem
        args = [unitls, "client", "localhost:" + server.port, "--backend", backend, "--showcerts",
                "--timeout", "10000"]
        args += ["--cafile", os.path.join(certs, "ca.pem")] if verify else ["--no-verify"]
        client = subprocess.run(args, input=b"", capture_output=True, timeout=30)
        err = client.stderr.decode()
        if client.returncode != 0:
            return f"client exit {client.returncode}: {err.strip()}"
        server_pem = os.path.join(certs, "server.pem")
        ca_pem = os.path.join(certs, "ca.pem")
        expected = [
            "Certificate chain (2)",
            " 0 s:CN=localhost",
            "   i:CN=unitls test CA",
            "   names: DNS:localhost, IP:127.0.0.1",
            "   serial: " + openssl(server_pem, "-serial").lstrip("0"),
            "   sha256: " + fingerprint(server_pem),
            " 1 s:CN=unitls test CA",
            "   i:CN=unitls test CA",
            "   sha256: " + fingerprint(ca_pem),
        ]
        lines = err.splitlines()
        for want in expected:
            if want not in lines:
                return f"no line {want!r} in:\n{err}"
        if ("Verification: OK" in lines) != verify:
            return f"'Verification: OK' {'missing' if verify else 'printed without verification'}:\n{err}"
        return server.finish()


def main():
    unitls, certs, *backends = sys.argv[1:]
    failures = 0
    for backend in backends:
        for verify in (True, False):
            problem = run_once(unitls, certs, backend, verify)
            what = "verified" if verify else "--no-verify"
            print(f"unitls client --showcerts, {backend}, {what}: {'ok' if problem is None else 'FAILED: ' + problem}")
            failures += problem is not None
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
