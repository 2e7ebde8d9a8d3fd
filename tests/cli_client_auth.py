#!/usr/bin/env python3
"""`unitls server --client-auth none|optional|required` on every backend (issue 12).

usage: cli_client_auth.py UNITLS CERTS_DIR BACKEND...
A `unitls server` of the backend under test and a `unitls client` of the same
backend: optional lets a client without a certificate in and verifies one that
is sent ("Verification: OK" on the server, the client's subject with
--showcerts); required fails a client without one (both exit 1, the server
says certificate_error); none asks for nothing. --client-auth on a client is a
usage error (exit 2).
"""
import os
import subprocess
import sys

from unitls_server import UnitlsServer, main_per_backend


def connect(unitls, certs, backend, auth, client_cert, expect_exit):
    def cert(name):
        return os.path.join(certs, name)

    extra = ["--client-auth", auth, "--showcerts"]
    if auth != "none":
        extra += ["--cafile", cert("ca.pem")]
    with UnitlsServer(unitls, backend, cert("server.pem"), cert("server.key"), b"hi\n",
                      extra=extra) as server:
        if server.problem:
            return server.problem, ""
        args = [unitls, "client", "localhost:" + server.port, "--backend", backend,
                "--cafile", cert("ca.pem"), "--timeout", "10000"]
        if client_cert:
            args += ["--cert", cert("client.pem"), "--key", cert("client.key")]
        client = subprocess.run(args, input=b"", capture_output=True, timeout=30)
        if client.returncode != expect_exit:
            return f"client exit {client.returncode}: {client.stderr.decode().strip()}", ""
        return server.finish(expect_exit=expect_exit), server.stderr


def check(unitls, certs, backend):
    subject = " 0 s:CN=unitls test client"
    for auth, client_cert, exit_code, verified in [("optional", False, 0, False),
                                                   ("optional", True, 0, True),
                                                   ("required", True, 0, True),
                                                   ("required", False, 1, False),
                                                   ("none", True, 0, False)]:
        problem, err = connect(unitls, certs, backend, auth, client_cert, exit_code)
        what = f"--client-auth {auth}, client {'with' if client_cert else 'without'} a certificate"
        if problem:
            return f"{what}: {problem}"
        lines = err.splitlines()
        if ("Verification: OK" in lines) != verified:
            return f"{what}: 'Verification: OK' {'missing' if verified else 'printed'}:\n{err}"
        if exit_code == 0 and (subject in lines) != (client_cert and auth != "none"):
            return f"{what}: the client's certificate {'missing' if client_cert else 'printed'}:\n{err}"
        if exit_code != 0 and "certificate_error" not in err:
            return f"{what}: the server does not say certificate_error:\n{err}"
    usage = subprocess.run([unitls, "client", "localhost:1", "--backend", backend, "--client-auth",
                            "required"], capture_output=True, timeout=30)
    if usage.returncode != 2 or b"--client-auth is for the server" not in usage.stderr:
        return f"client --client-auth: exit {usage.returncode}: {usage.stderr.decode().strip()}"
    return None


if __name__ == "__main__":
    sys.exit(main_per_backend(check, "unitls server --client-auth"))
