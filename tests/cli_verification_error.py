#!/usr/bin/env python3
"""`Verification error:` of `unitls client` and `unitls server --client-auth` (issue 12).

usage: cli_verification_error.py UNITLS CERTS_DIR BACKEND...
Like `openssl s_client`, a side that rejects the peer's certificate prints
"Verification error: <reason>" before it fails (exit 1), in the same words on
every backend (SecureSocket::verification_error()): a client asking for
example.com gets the names of the server's certificate; a server with
--client-auth required names an untrusted client's issuer, or says that no
certificate came. A verified connection prints no such line.
"""
import os
import subprocess
import sys

from unitls_server import UnitlsServer, main_per_backend


def connect(unitls, certs, backend, server_name=None, client_cert=None, server_extra=(),
            client_exit=0, server_exit=0):
    def cert(name):
        return os.path.join(certs, name)

    with UnitlsServer(unitls, backend, cert("server.pem"), cert("server.key"), b"hi\n",
                      extra=list(server_extra)) as server:
        if server.problem:
            return server.problem, "", ""
        args = [unitls, "client", "127.0.0.1:" + server.port, "--backend", backend,
                "--cafile", cert("ca.pem"), "--timeout", "10000"]
        if server_name:
            args += ["--servername", server_name]
        if client_cert:
            args += ["--cert", cert(client_cert + ".pem"), "--key", cert(client_cert + ".key")]
        client = subprocess.run(args, input=b"", capture_output=True, timeout=30)
        err = client.stderr.decode()
        if client.returncode != client_exit:
            return f"client exit {client.returncode}: {err.strip()}", err, ""
        return server.finish(expect_exit=server_exit), err, server.stderr


def check(unitls, certs, backend):
    ca = ["--client-auth", "required", "--cafile", os.path.join(certs, "ca.pem")]
    cases = [
        # (what, connect() arguments, the side that rejects, its line or None)
        ("a client asking for another name", dict(server_name="example.com", client_exit=1, server_exit=1),
         "client", "Verification error: certificate names DNS:localhost, IP:127.0.0.1, not example.com"),
        ("a server and an untrusted client certificate",
         dict(client_cert="untrusted_client", server_extra=ca, client_exit=1, server_exit=1),
         "server", "Verification error: certificate not trusted (issuer CN=unitls untrusted CA)"),
        ("a server and a client without a certificate",
         dict(server_extra=ca, client_exit=1, server_exit=1),
         "server", "Verification error: no certificate"),
        ("a verified connection", dict(server_name="localhost", client_cert="client", server_extra=ca),
         None, None),
    ]
    for what, kwargs, rejecting, line in cases:
        problem, client_err, server_err = connect(unitls, certs, backend, **kwargs)
        if problem:
            return f"{what}: {problem}"
        for side, err in (("client", client_err), ("server", server_err)):
            printed = [l for l in err.splitlines() if l.startswith("Verification error:")]
            want = [line] if side == rejecting else []
            if printed != want:
                return f"{what}: the {side} printed {printed}, not {want}:\n{err}"
    return None


if __name__ == "__main__":
    sys.exit(main_per_backend(check, "Verification error line"))
